"""Normalization ops (inference form: statistics are inputs, never updated)."""
from __future__ import annotations

import torch.nn.functional as F

from compiler.ops.nn import optional
from compiler.ir import TensorType
from compiler.ops.registry import Attr, OpDef, register_op, same_as_first

EPS = Attr("float", 1e-5, low=0.0)  # a negative epsilon makes the variance negative: NaN


def _batch_norm_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    from compiler.errors import IRError
    x = ins[0]
    channels = x.shape[1] if x.rank >= 2 else -1
    for stat in ins[1:]:
        if stat is not None and stat.shape != (channels,):
            raise IRError(f"batch_norm over {list(x.shape)} needs per-channel statistics of shape "
                          f"[{channels}], got {list(stat.shape)}")
    return [x]

register_op(OpDef(
    name="batch_norm", inputs=("x", "mean", "var", "weight?", "bias?"), category="norm",
    attrs={"eps": EPS},
    torch_call=lambda i, a: (F.batch_norm, (i[0], i[1], i[2], optional(i, 3), optional(i, 4)),
                             {"training": False, "momentum": 0.0, "eps": a["eps"]}),
    infer_fn=_batch_norm_infer,
    doc="Inference BatchNorm over dim 1 with running statistics."))

register_op(OpDef(
    name="layer_norm", inputs=("x", "weight?", "bias?"), category="norm",
    attrs={"normalized_shape": Attr("ints"), "eps": EPS},
    torch_call=lambda i, a: (F.layer_norm, (i[0], a["normalized_shape"], optional(i, 1),
                                            optional(i, 2), a["eps"]), {}),
    infer_fn=same_as_first,
    doc="LayerNorm over the trailing normalized_shape dims."))

register_op(OpDef(
    name="group_norm", inputs=("x", "weight?", "bias?"), category="norm",
    attrs={"num_groups": Attr("int"), "eps": EPS},
    torch_call=lambda i, a: (F.group_norm, (i[0], a["num_groups"], optional(i, 1), optional(i, 2),
                                            a["eps"]), {}),
    infer_fn=same_as_first,
    doc="GroupNorm: channels (dim 1) split into num_groups groups."))
