"""Elementwise unary ops: activations and math functions."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from compiler.ir import TensorType
from compiler.ops.interfaces import Trait
from compiler.ops.registry import Attr, OpDef, raise_shape, register_op, same_as_first, scalar_fits


def _to_float(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    """Transcendental functions of integers give float32 (torch's default dtype)."""
    x = ins[0]
    return [x if x.dtype.is_floating_point else TensorType(x.shape, torch.float32)]


def _clip_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    if attrs["min"] is None and attrs["max"] is None:
        raise_shape("clip", ins, "needs a min, a max, or both")  # torch.clamp refuses neither
    for bound in ("min", "max"):
        scalar_fits("clip", ins, bound, attrs[bound])
    return [ins[0]]


def _leaky_relu_infer(ins: list[TensorType | None], attrs: dict) -> list[TensorType]:
    scalar_fits("leaky_relu", ins, "negative_slope", attrs["negative_slope"])
    return [ins[0]]


def _unary(name: str, fn, doc: str, *, floating: bool = False, infer=None, traits: Trait = Trait.ELEMENTWISE
           | Trait.CHANNEL_PRESERVING, verify=None, **attrs: Attr) -> None:
    names = list(attrs)
    register_op(OpDef(
        name=name, inputs=("x",), category="activation", attrs=dict(attrs),
        torch_call=lambda i, a: (fn, (i[0],), {k: a[k] for k in names}),
        infer_fn=infer or (_to_float if floating else same_as_first), doc=doc, traits=traits, verify_fn=verify))


def _clip_bounds(ins: list[TensorType | None], a: dict) -> list[str]:
    if a["min"] is None and a["max"] is None:
        return ["clip needs a min or a max bound (with neither it is an identity)"]
    if a["min"] is not None and a["max"] is not None and a["min"] > a["max"]:
        return [f"clip min {a['min']} is above max {a['max']}"]
    return []


_unary("relu", torch.relu, "max(x, 0)")
_unary("sigmoid", torch.sigmoid, "1 / (1 + exp(-x))", floating=True)
_unary("tanh", torch.tanh, "hyperbolic tangent", floating=True)
_unary("silu", F.silu, "x * sigmoid(x) (Swish)")
_unary("hardswish", F.hardswish, "x * relu6(x + 3) / 6")
_unary("hardsigmoid", F.hardsigmoid, "relu6(x + 3) / 6")
_unary("exp", torch.exp, "e ** x", floating=True)
_unary("log", torch.log, "natural logarithm", floating=True)
_unary("sqrt", torch.sqrt, "square root", floating=True)
_unary("rsqrt", torch.rsqrt, "1 / sqrt(x)", floating=True)
_unary("neg", torch.neg, "-x")
_unary("abs", torch.abs, "|x|")
_unary("erf", torch.erf, "Gauss error function", floating=True)
_unary("sin", torch.sin, "sine (rotary position embeddings)", floating=True)
_unary("cos", torch.cos, "cosine (rotary position embeddings)", floating=True)
_unary("gelu", F.gelu, "Gaussian error linear unit (exact, or tanh approximation)",
       approximate=Attr("str", "none", choices=("none", "tanh")))
_unary("leaky_relu", F.leaky_relu, "x if x > 0 else negative_slope * x", infer=_leaky_relu_infer,
       negative_slope=Attr("float", 0.01))
_unary("clip", torch.clamp, "clamp(x, min, max); ReLU6 is clip{min=0, max=6}", infer=_clip_infer,
       verify=_clip_bounds, min=Attr("float?", None), max=Attr("float?", None))
_unary("softmax", torch.softmax, "softmax along dim", traits=Trait.NONE, dim=Attr("int"))
_unary("log_softmax", torch.log_softmax, "log of softmax along dim", traits=Trait.NONE, dim=Attr("int"))
