"""aten.scaled_dot_product_attention -> the IR pattern the passes understand.

    scores = matmul(q, permute(k)) * scale        (+ mask: add a float bias, or -inf where False)
    out    = matmul(softmax(scores, -1), v)

With `enable_gqa`, each key/value head serves `Hq / Hkv` query heads: k and v are repeated along
the head dim (reshape, expand, reshape), the pattern prune follows to remove query heads with
their key/value head. A causal mask is a static lower-triangular constant. Dropout must be 0
(it is random).
"""
from __future__ import annotations

import math
from typing import Any

import torch

from compiler.ir import TensorType, Value
from frontends.torch_fx.context import FxNodeContext


def scaled_dot_product_attention(cx: FxNodeContext, q: Any, k: Any, v: Any, attn_mask: Any = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Value:
    if dropout_p:
        raise cx.error(f"{cx.what()} with dropout_p={dropout_p} is random and cannot be imported",
                       hint="call model.eval() first (attention dropout is off at inference)")
    q, k, v = cx.tensor(q), cx.tensor(k, "key"), cx.tensor(v, "value")
    if enable_gqa and k.shape[-3] != q.shape[-3]:
        k, v = _repeat_heads(cx, k, q.shape[-3], "key"), _repeat_heads(cx, v, q.shape[-3], "value")
    length, source = q.shape[-2], k.shape[-2]
    batch = q.shape[:-2]
    scores_type = TensorType(tuple(torch.broadcast_shapes(batch, k.shape[:-2])) + (length, source), q.dtype)
    kt = cx.emit(
        "permute", [k], {"dims": tuple(range(k.rank - 2)) + (k.rank - 1, k.rank - 2)}, suffix="key_t",
        out=TensorType(k.shape[:-2] + (k.shape[-1], source), k.dtype))
    scores = cx.emit("matmul", [q, kt], suffix="scores", out=scores_type)
    factor = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    scores = cx.emit("mul", [scores, cx.scalar(factor, q.dtype)], suffix="scaled", out=scores_type)
    if is_causal:
        causal = torch.ones(length, source, dtype=torch.bool).tril()
        scores = _masked(cx, scores, cx.graph.add_constant(f"{cx.name}.causal_mask", causal), "causal")
    if attn_mask is not None:
        mask = cx.tensor(attn_mask, "mask")
        if mask.dtype == torch.bool:
            scores = _masked(cx, scores, mask, "masked")
        else:
            shape = tuple(torch.broadcast_shapes(scores.shape, mask.shape))
            scores = cx.emit("add", [scores, mask], suffix="biased", out=TensorType(shape, q.dtype))
    probs = cx.emit("softmax", [scores], {"dim": scores.rank - 1}, suffix="probs")
    return cx.emit("matmul", [probs, v])


def _masked(cx: FxNodeContext, scores: Value, mask: Value, suffix: str) -> Value:
    """-inf where the mask is False (torch's boolean attention mask keeps what is True)."""
    shape = tuple(torch.broadcast_shapes(scores.shape, mask.shape))
    return cx.emit("where", [mask, scores, cx.scalar(-math.inf, scores.dtype)], suffix=suffix,
                   out=TensorType(shape, scores.dtype))


def _repeat_heads(cx: FxNodeContext, x: Value, heads: int, what: str) -> Value:
    """[..., Hkv, S, E] -> [..., Hq, S, E], each kv head repeated Hq/Hkv times in place."""
    *lead, kv, s, e = x.shape
    groups = heads // kv
    lead = tuple(lead)
    y = cx.reshape(x, lead + (kv, 1, s, e), suffix=f"{what}_heads")
    wide = lead + (kv, groups, s, e)
    y = cx.emit("expand", [y], {"shape": wide}, suffix=f"{what}_repeat", out=TensorType(wide, x.dtype))
    return cx.reshape(y, lead + (heads, s, e), suffix=f"{what}_grouped")
