"""ATen elementwise ops, comparisons, reductions and casts -> IR.

Each rule takes the ATen schema's arguments. A Python scalar operand becomes a 0-d constant of
the result's dtype (torch's promotion for scalars); a static tensor operand keeps its own dtype
(0-d tensors promote like scalars in torch and in the IR's type inference alike).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from compiler.ir import TensorType, Value
from frontends.torch_fx import lowering
from frontends.torch_fx.context import FxNodeContext

aten = torch.ops.aten


def operand(cx: FxNodeContext, value: Any, dtype: torch.dtype) -> Value:
    if isinstance(value, (bool, int, float)):
        return cx.scalar(value, dtype)
    return cx.tensor(value)


def binary(op: str, **fixed: Any) -> Callable:
    def rule(cx: FxNodeContext, a: Any, b: Any, **attrs: Any) -> Value:
        dtype = cx.out_type().dtype
        return cx.emit(op, [operand(cx, a, dtype), operand(cx, b, dtype)], {**fixed, **attrs} or None)
    return rule


def _scaled(cx: FxNodeContext, b: Any, alpha: Any) -> Any:
    if alpha == 1:
        return b
    if isinstance(b, (bool, int, float)):
        return b * alpha
    dtype = cx.out_type().dtype
    b = cx.tensor(b)
    return cx.emit("mul", [b, cx.scalar(alpha, dtype)], suffix="alpha", out=TensorType(b.shape, dtype))


def add(cx: FxNodeContext, a: Any, b: Any, alpha: Any = 1) -> Value:
    return binary("add")(cx, a, _scaled(cx, b, alpha))


def sub(cx: FxNodeContext, a: Any, b: Any, alpha: Any = 1) -> Value:
    return binary("sub")(cx, a, _scaled(cx, b, alpha))


def rsub(cx: FxNodeContext, a: Any, b: Any, alpha: Any = 1) -> Value:
    return binary("sub")(cx, b, _scaled(cx, a, alpha))


def div(cx: FxNodeContext, a: Any, b: Any, rounding_mode: str | None = None) -> Value:
    return binary("div")(cx, a, b, rounding_mode=rounding_mode)


def not_equal(cx: FxNodeContext, a: Any, b: Any) -> Value:
    dtype = _common(cx, a, b)
    eq = cx.emit("equal", [operand(cx, a, dtype), operand(cx, b, dtype)], suffix="eq",
                 out=TensorType(cx.out_type().shape, torch.bool))
    return cx.emit("logical_not", [eq])


def compare(op: str) -> Callable:
    def rule(cx: FxNodeContext, a: Any, b: Any) -> Value:
        dtype = _common(cx, a, b)
        return cx.emit(op, [operand(cx, a, dtype), operand(cx, b, dtype)])
    return rule


def _common(cx: FxNodeContext, a: Any, b: Any) -> torch.dtype:
    """The dtype a scalar operand of a comparison takes: the tensor side's."""
    for v in (a, b):
        if isinstance(v, (Value, torch.Tensor)):
            return v.dtype
    raise cx.error(f"{cx.what()} of two Python scalars")


def bitwise(op: str) -> Callable:
    """bitwise and/or/xor/not of bools are the logical ops; of integers they have no IR op."""
    def rule(cx: FxNodeContext, *args: Any) -> Value:
        if cx.out_type().dtype != torch.bool:
            raise cx.error(f"{cx.what()} on {cx.out_type().dtype} has no IR op (only bool masks are supported)")
        return cx.emit(op, [operand(cx, a, torch.bool) for a in args])
    return rule


def where(cx: FxNodeContext, cond: Any, a: Any, b: Any) -> Value:
    dtype = cx.out_type().dtype
    return cx.emit("where", [cx.tensor(cond), operand(cx, a, dtype), operand(cx, b, dtype)])


def unary(op: str, **attrs: Any) -> Callable:
    return lambda cx, x, *rest, **kw: cx.emit(op, [cx.tensor(x)], attrs or None)


def gelu(cx: FxNodeContext, x: Any, approximate: str = "none") -> Value:
    return cx.emit("gelu", [cx.tensor(x)], {"approximate": approximate})


def leaky_relu(cx: FxNodeContext, x: Any, negative_slope: float = 0.01) -> Value:
    return cx.emit("leaky_relu", [cx.tensor(x)], {"negative_slope": float(negative_slope)})


def clamp(cx: FxNodeContext, x: Any, min: Any = None, max: Any = None) -> Value:
    """`clip` has float bounds; tensor bounds, and any bound of an integer tensor, become
    maximum/minimum with operands of the result's dtype."""
    x = cx.tensor(x)
    if not x.dtype.is_floating_point or isinstance(min, torch.Tensor) or isinstance(max, torch.Tensor):
        dtype = cx.out_type().dtype
        min, max = (None if b is None else operand(cx, b, dtype) for b in (min, max))
    return lowering.clip(cx, x, min, max)


def softmax(op: str) -> Callable:
    def rule(cx: FxNodeContext, x: Any, dim: int, dtype_or_half: Any = None) -> Value:
        x = cx.tensor(x)
        out = cx.out_type().dtype
        return cx.emit(op, [cx.cast(x, out, suffix="cast")], {"dim": lowering.norm_dim(cx, dim, x.rank)})
    return rule


def reduce(op: str) -> Callable:
    def rule(cx: FxNodeContext, x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Value:
        x = cx.tensor(x)
        if dtype is not None or (op == "reduce_sum" and cx.out_type().dtype != x.dtype):
            x = cx.cast(x, cx.out_type().dtype, suffix="cast")
        return cx.emit(op, [x], {"dims": lowering.norm_dims(cx, dim, x.rank), "keepdim": bool(keepdim)})
    return rule


def max_min(op: str, arg: str, binary_op: str) -> Callable:
    """max(x) reduces everything; max(x, dim) gives (values, indices); max(x, other) is elementwise."""
    def rule(cx: FxNodeContext, x: Any, dim: Any = None, keepdim: bool = False) -> Any:
        if isinstance(dim, (Value, torch.Tensor)):
            return binary(binary_op)(cx, x, dim)
        x = cx.tensor(x)
        if dim is None:
            return cx.emit(op, [x], {"dims": (), "keepdim": False})
        d = lowering.norm_dim(cx, dim, x.rank)
        values_type, indices_type = cx.out
        attrs = {"dims": (d,), "keepdim": bool(keepdim)}
        values = cx.emit(op, [x], attrs, out=values_type)
        indices = cx.emit(arg, [x], {"dim": d, "keepdim": bool(keepdim)}, suffix="indices", out=indices_type)
        return values, indices
    return rule


def argmax_min(op: str) -> Callable:
    def rule(cx: FxNodeContext, x: Any, dim: Any = None, keepdim: bool = False) -> Value:
        x = cx.tensor(x)
        if dim is None:
            x, dim = cx.reshape(x, (x.type.numel,), suffix="flat"), 0
            if keepdim:
                raise cx.error(f"{cx.what()} without dim but keepdim=True is not supported")
        return cx.emit(op, [x], {"dim": lowering.norm_dim(cx, dim, x.rank), "keepdim": bool(keepdim)})
    return rule


def any_all(op: str) -> Callable:
    """any/all over dims: the max/min of the 0/1 truth values (a cast pair around a reduction)."""
    def rule(cx: FxNodeContext, x: Any, dim: Any = None, keepdim: bool = False) -> Value:
        x = cx.tensor(x)
        if x.dtype != torch.bool:
            x = cx.emit("logical_not", [cx.emit("equal", [x, cx.scalar(0, x.dtype)], suffix="zero",
                                                out=TensorType(x.shape, torch.bool))], suffix="truth",
                        out=TensorType(x.shape, torch.bool))
        out = cx.out_type()
        as_int = cx.cast(x, torch.int32, suffix="int")
        reduced = cx.emit(op, [as_int], {"dims": lowering.norm_dims(cx, dim, x.rank), "keepdim": bool(keepdim)},
                          suffix="reduce", out=TensorType(out.shape, torch.int32))
        return cx.emit("cast", [reduced], {"dtype": torch.bool})
    return rule


def cumsum(cx: FxNodeContext, x: Any, dim: int, dtype: Any = None) -> Value:
    x = cx.tensor(x)
    if dtype is not None:
        x = cx.cast(x, dtype, suffix="cast")
    return cx.emit("cumsum", [x], {"dim": lowering.norm_dim(cx, dim, x.rank)})


def cast(cx: FxNodeContext, x: Any, *args: Any, **kwargs: Any) -> Value:
    """_to_copy / to: a cast to the dtype torch produced (devices and layouts are ignored)."""
    return cx.cast(cx.tensor(x), cx.out_type().dtype)


def identity(cx: FxNodeContext, x: Any, *args: Any, **kwargs: Any) -> Value:
    return cx.tensor(x)


def dropout(cx: FxNodeContext, x: Any, p: float = 0.5, train: Any = False) -> Value:
    if train and p > 0:
        raise cx.error(f"{cx.what()} with train=True is random and cannot be imported",
                       hint="call model.eval() first (dropout is the identity at inference)")
    return cx.tensor(x)


def no_op(cx: FxNodeContext, *args: Any, **kwargs: Any) -> None:
    """Runtime assertions on metadata: shapes and dtypes are static, nothing to check."""
    return None


RULES: dict[Any, Callable] = {
    aten.add: add, aten.sub: sub, aten.rsub: rsub, aten.mul: binary("mul"), aten.div: div,
    aten.true_divide: div, aten.floor_divide: binary("div", rounding_mode="floor"),
    aten.pow: binary("pow"), aten.maximum: binary("maximum"), aten.minimum: binary("minimum"),
    aten.eq: compare("equal"), aten.ne: not_equal, aten.lt: compare("less"), aten.gt: compare("greater"),
    aten.le: compare("less_equal"), aten.ge: compare("greater_equal"),
    aten.logical_and: binary("logical_and"), aten.logical_or: binary("logical_or"),
    aten.logical_xor: binary("logical_xor"), aten.logical_not: unary("logical_not"),
    aten.bitwise_and: bitwise("logical_and"), aten.bitwise_or: bitwise("logical_or"),
    aten.bitwise_xor: bitwise("logical_xor"), aten.bitwise_not: bitwise("logical_not"),
    aten.__and__: bitwise("logical_and"), aten.__or__: bitwise("logical_or"), aten.__xor__: bitwise("logical_xor"),
    aten.where: where,
    **{getattr(aten, op): unary(op) for op in (
        "relu", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "exp", "log", "sqrt", "rsqrt", "neg",
        "abs", "erf", "sin", "cos", "floor", "ceil", "round", "reciprocal")},
    aten.gelu: gelu, aten.leaky_relu: leaky_relu,
    aten.hardtanh: lambda cx, x, min_val=-1.0, max_val=1.0: lowering.clip(cx, x, float(min_val), float(max_val)),
    aten.relu6: lambda cx, x: lowering.clip(cx, x, 0.0, 6.0),
    aten.clamp: clamp, aten.clip: clamp,
    aten.clamp_min: lambda cx, x, min: clamp(cx, x, min, None),
    aten.clamp_max: lambda cx, x, max: clamp(cx, x, None, max),
    aten._softmax: softmax("softmax"), aten.softmax: softmax("softmax"),
    aten._log_softmax: softmax("log_softmax"), aten.log_softmax: softmax("log_softmax"),
    aten.mean: reduce("reduce_mean"), aten.sum: reduce("reduce_sum"),
    aten.amax: reduce("reduce_max"), aten.amin: reduce("reduce_min"),
    aten.max: max_min("reduce_max", "argmax", "maximum"), aten.min: max_min("reduce_min", "argmin", "minimum"),
    aten.argmax: argmax_min("argmax"), aten.argmin: argmax_min("argmin"),
    aten.any: any_all("reduce_max"), aten.all: any_all("reduce_min"),
    aten.cumsum: cumsum,
    aten._to_copy: cast, aten.to: cast, aten._assert_tensor_metadata: no_op, aten._assert_scalar: no_op,
    aten.clone: identity, aten.alias: identity, aten.detach: identity, aten.lift_fresh_copy: identity,
    aten.contiguous: identity, aten.dropout: dropout,
}
