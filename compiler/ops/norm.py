"""Normalization ops (inference form: statistics are inputs, never updated)."""
from __future__ import annotations

import torch.nn.functional as F

from compiler.ops.nn import optional
from compiler.ir import TensorType
from compiler.ops.interfaces import Trait
from compiler.ops.registry import Attr, OpDef, raise_shape, register_op, same_dtype

EPS = Attr("float", 1e-5, low=0.0)  # a negative epsilon makes the variance negative: NaN


def _batch_norm_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    from compiler.errors import IRError
    x = ins[0]
    channels = x.shape[1] if x.rank >= 2 else -1
    for stat in ins[1:]:
        if stat is not None and stat.shape != (channels,):
            raise IRError(f"batch_norm over {list(x.shape)} needs per-channel statistics of shape "
                          f"[{channels}], got {list(stat.shape)}")
    same_dtype("batch_norm", ins)
    return [x]


def _layer_norm_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x, shape = ins[0], tuple(a["normalized_shape"])
    if not shape or len(shape) > x.rank or x.shape[x.rank - len(shape):] != shape:
        raise_shape("layer_norm", ins, f"normalized_shape {list(shape)} is not the input's trailing dims")
    if any(t is not None and t.shape != shape for t in ins[1:]):
        raise_shape("layer_norm", ins, f"weight and bias must have shape {list(shape)}")
    same_dtype("layer_norm", ins)
    return [x]


def _group_norm_infer(ins: list[TensorType | None], a: dict) -> list[TensorType]:
    x = ins[0]
    if x.rank < 2 or x.shape[1] % a["num_groups"]:
        raise_shape("group_norm", ins, f"{a['num_groups']} groups do not divide the channels (dim 1)")
    if any(t is not None and t.shape != (x.shape[1],) for t in ins[1:]):
        raise_shape("group_norm", ins, "weight and bias must have one value per channel")
    same_dtype("group_norm", ins)
    return [x]

register_op(OpDef(
    name="batch_norm", inputs=("x", "mean", "var", "weight?", "bias?"), category="norm",
    attrs={"eps": EPS},
    torch_call=lambda i, a: (F.batch_norm, (i[0], i[1], i[2], optional(i, 3), optional(i, 4)),
                             {"training": False, "momentum": 0.0, "eps": a["eps"]}),
    infer_fn=_batch_norm_infer, traits=Trait.CHANNEL_PRESERVING,
    doc="Inference BatchNorm over dim 1 with running statistics."))

register_op(OpDef(
    name="layer_norm", inputs=("x", "weight?", "bias?"), category="norm",
    attrs={"normalized_shape": Attr("ints"), "eps": EPS},
    torch_call=lambda i, a: (F.layer_norm, (i[0], a["normalized_shape"], optional(i, 1),
                                            optional(i, 2), a["eps"]), {}),
    infer_fn=_layer_norm_infer,
    doc="LayerNorm over the trailing normalized_shape dims."))

register_op(OpDef(
    name="group_norm", inputs=("x", "weight?", "bias?"), category="norm",
    attrs={"num_groups": Attr("int", low=1, high=2**31 - 1), "eps": EPS},
    torch_call=lambda i, a: (F.group_norm, (i[0], a["num_groups"], optional(i, 1), optional(i, 2),
                                            a["eps"]), {}),
    infer_fn=_group_norm_infer,
    doc="GroupNorm: channels (dim 1) split into num_groups groups."))
