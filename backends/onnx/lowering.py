"""One lowering per IR op: `LOWERINGS[op](b, node)` emits ONNX nodes that define node.outputs.

Each lowering reproduces the op registry's torch reference (`compiler.ops`) exactly, up to float
rounding; what it cannot express at the builder's opset raises BackendError naming the node,
never an approximation. A test asserts this table covers the registry exactly.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from backends.onnx.builder import OnnxBuilder, onnx_dtype
from compiler.ir import Node

Lowering = Callable[[OnnxBuilder, Node], None]
LOWERINGS: dict[str, Lowering] = {}


def lowering(*ops: str) -> Callable[[Lowering], Lowering]:
    def wrap(fn: Lowering) -> Lowering:
        for op in ops:
            LOWERINGS[op] = fn
        return fn
    return wrap


def _n(values, rank: int) -> list[int]:
    """A per-spatial-dim list from torch's int-or-tuple convention (a 1-tuple broadcasts)."""
    values = list(values)
    return values * rank if len(values) == 1 else values


def _spatial(b: OnnxBuilder, node: Node, attr: str) -> int:
    """Number of spatial dims; ONNX convolutions and pools need the batch dim torch can omit."""
    k = len(node.attrs[attr])
    if len(node.inputs[0].shape) != k + 2:
        raise b.error(f"{node.op} on an unbatched input of shape {list(node.inputs[0].shape)}",
                      hint="reshape the input to add a batch dimension of 1")
    return k


# ---- one-to-one ops ------------------------------------------------------------------------
_SIMPLE = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "log": "Log",
           "sqrt": "Sqrt", "neg": "Neg", "abs": "Abs", "erf": "Erf", "hardswish": "HardSwish",
           "matmul": "MatMul"}


def _simple(op_type: str) -> Lowering:
    def lower(b: OnnxBuilder, node: Node) -> None:
        b.emit(op_type, b.inputs(node), [b.y(node)])
    lower.__name__ = f"lower_{op_type.lower()}"
    return lower


for _op, _onnx_op in _SIMPLE.items():
    LOWERINGS[_op] = _simple(_onnx_op)


# ---- nn ------------------------------------------------------------------------------------
@lowering("conv")
def conv(b: OnnxBuilder, node: Node) -> None:
    a, k = node.attrs, _spatial(b, node, "stride")
    b.emit("Conv", b.inputs(node), [b.y(node)], kernel_shape=list(node.inputs[1].shape[2:]),
           strides=_n(a["stride"], k), pads=_n(a["padding"], k) * 2,
           dilations=_n(a["dilation"], k), group=a["groups"])


@lowering("conv_transpose")
def conv_transpose(b: OnnxBuilder, node: Node) -> None:
    a, k = node.attrs, _spatial(b, node, "stride")
    b.emit("ConvTranspose", b.inputs(node), [b.y(node)], kernel_shape=list(node.inputs[1].shape[2:]),
           strides=_n(a["stride"], k), pads=_n(a["padding"], k) * 2,
           output_padding=_n(a["output_padding"], k), dilations=_n(a["dilation"], k),
           group=a["groups"])


@lowering("linear")
def linear(b: OnnxBuilder, node: Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    bias = b.x(node, 2)
    if len(x.shape) == 2:
        b.emit("Gemm", [b.value(x), b.value(w)] + ([bias] if bias else []), [b.y(node)], transB=1)
        return
    wt = (b.tensor(w.data.detach().t(), "weight_t") if w.data is not None
          else b.emit("Transpose", [b.value(w)], perm=[1, 0]))
    if not bias:
        b.emit("MatMul", [b.value(x), wt], [b.y(node)])
    else:
        b.emit("Add", [b.emit("MatMul", [b.value(x), wt]), bias], [b.y(node)])


@lowering("embedding")
def embedding(b: OnnxBuilder, node: Node) -> None:
    b.emit("Gather", [b.x(node, 1), b.x(node, 0)], [b.y(node)], axis=0)


# ---- normalization -------------------------------------------------------------------------
def _or_fill(b: OnnxBuilder, node: Node, i: int, shape: tuple[int, ...], fill: float, tag: str) -> str:
    name = b.x(node, i)
    return name or b.tensor(torch.full(shape, fill, dtype=node.inputs[0].dtype), tag)


@lowering("batch_norm")
def batch_norm(b: OnnxBuilder, node: Node) -> None:
    channels = (node.inputs[0].shape[1],)
    b.emit("BatchNormalization", [b.x(node), _or_fill(b, node, 3, channels, 1.0, "scale"),
                                  _or_fill(b, node, 4, channels, 0.0, "bias"),
                                  b.x(node, 1), b.x(node, 2)],
           [b.y(node)], epsilon=node.attrs["eps"])


@lowering("layer_norm")
def layer_norm(b: OnnxBuilder, node: Node) -> None:
    shape = tuple(node.attrs["normalized_shape"])
    ins = [b.x(node), _or_fill(b, node, 1, shape, 1.0, "scale")] + ([b.x(node, 2)] if b.x(node, 2) else [])
    b.emit("LayerNormalization", ins, [b.y(node)], axis=-len(shape), epsilon=node.attrs["eps"])


@lowering("group_norm")
def group_norm(b: OnnxBuilder, node: Node) -> None:
    """Exact decomposition (GroupNormalization's scale/bias semantics changed at opset 21)."""
    x, groups = node.inputs[0], node.attrs["num_groups"]
    n, c = x.shape[0], x.shape[1]
    grouped = b.emit("Reshape", [b.x(node), b.ints([n, groups, -1], "grouped")])
    mean = b.reduce("ReduceMean", grouped, [2], keepdims=True)
    centered = b.emit("Sub", [grouped, mean])
    var = b.reduce("ReduceMean", b.emit("Mul", [centered, centered]), [2], keepdims=True)
    std = b.emit("Sqrt", [b.emit("Add", [var, b.scalar(node.attrs["eps"], x.dtype, "eps")])])
    normed = b.emit("Reshape", [b.emit("Div", [centered, std]), b.ints(x.shape, "shape")])
    per_channel = (c,) + (1,) * (len(x.shape) - 2)
    weight, bias = (node.inputs[i] if i < len(node.inputs) else None for i in (1, 2))
    steps = [("Mul", weight, "scale"), ("Add", bias, "bias")]
    steps = [(op, v, tag) for op, v, tag in steps if v is not None]
    if not steps:
        b.emit("Identity", [normed], [b.y(node)])
    for k, (op, v, tag) in enumerate(steps):
        out = [b.y(node)] if k == len(steps) - 1 else None
        normed = b.emit(op, [normed, b.reshaped(v, per_channel, tag)], out)


# ---- activations ---------------------------------------------------------------------------
@lowering("rsqrt")
def rsqrt(b: OnnxBuilder, node: Node) -> None:
    b.emit("Reciprocal", [b.emit("Sqrt", [b.x(node)])], [b.y(node)])


@lowering("silu")
def silu(b: OnnxBuilder, node: Node) -> None:
    b.emit("Mul", [b.x(node), b.emit("Sigmoid", [b.x(node)])], [b.y(node)])


@lowering("hardsigmoid")
def hardsigmoid(b: OnnxBuilder, node: Node) -> None:
    b.emit("HardSigmoid", [b.x(node)], [b.y(node)], alpha=1.0 / 6.0, beta=0.5)


@lowering("leaky_relu")
def leaky_relu(b: OnnxBuilder, node: Node) -> None:
    b.emit("LeakyRelu", [b.x(node)], [b.y(node)], alpha=node.attrs["negative_slope"])


@lowering("gelu")
def gelu(b: OnnxBuilder, node: Node) -> None:
    approximate, dtype = node.attrs["approximate"], node.inputs[0].dtype
    if b.opset >= 20:
        b.emit("Gelu", [b.x(node)], [b.y(node)], approximate=approximate)
        return
    x = b.x(node)
    if approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.emit("Mul", [b.emit("Mul", [x, x]), x])
        inner = b.emit("Add", [x, b.emit("Mul", [cube, b.scalar(0.044715, dtype, "c")])])
        core = b.emit("Tanh", [b.emit("Mul", [inner, b.scalar(math.sqrt(2 / math.pi), dtype, "k")])])
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        core = b.emit("Erf", [b.emit("Mul", [x, b.scalar(1 / math.sqrt(2), dtype, "inv_sqrt2")])])
    one_plus = b.emit("Add", [core, b.scalar(1.0, dtype, "one")])
    half_x = b.emit("Mul", [x, b.scalar(0.5, dtype, "half")])
    b.emit("Mul", [half_x, one_plus], [b.y(node)])


@lowering("clip")
def clip(b: OnnxBuilder, node: Node) -> None:
    dtype = node.outputs[0].dtype
    bounds = ["" if node.attrs[k] is None else b.scalar(node.attrs[k], dtype, k) for k in ("min", "max")]
    while bounds and not bounds[-1]:
        bounds.pop()
    b.emit("Clip", [b.x_as(node, 0, dtype)] + bounds, [b.y(node)])


@lowering("softmax", "log_softmax")
def softmax(b: OnnxBuilder, node: Node) -> None:
    op_type = "Softmax" if node.op == "softmax" else "LogSoftmax"
    b.emit(op_type, [b.x(node)], [b.y(node)], axis=node.attrs["dim"])


# ---- elementwise binary ----------------------------------------------------------------------
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "pow": "Pow", "maximum": "Max", "minimum": "Min"}


@lowering(*_BINARY)
def binary(b: OnnxBuilder, node: Node) -> None:
    """Inputs are cast to the promoted result dtype first: that is what torch computes in."""
    dtype = node.outputs[0].dtype
    if dtype == torch.bool:
        raise b.error(f"'{node.op}' on bool tensors has no ONNX arithmetic equivalent",
                      hint="cast to an integer dtype first")
    b.emit(_BINARY[node.op], [b.x_as(node, 0, dtype), b.x_as(node, 1, dtype)], [b.y(node)])


@lowering("div")
def div(b: OnnxBuilder, node: Node) -> None:
    dtype, mode = node.outputs[0].dtype, node.attrs["rounding_mode"]
    x, y = b.x_as(node, 0, dtype), b.x_as(node, 1, dtype)
    if mode is None:
        b.emit("Div", [x, y], [b.y(node)])
    elif dtype == torch.bool:
        raise b.error("integer division of bool tensors")
    elif not dtype.is_floating_point:
        _int_div(b, x, y, dtype, mode, b.y(node))
    elif mode == "trunc":  # trunc(x / y)
        q = b.emit("Div", [x, y])
        negative = b.emit("Less", [q, b.scalar(0, dtype, "zero")])
        b.emit("Where", [negative, b.emit("Ceil", [q]), b.emit("Floor", [q])], [b.y(node)])
    else:
        _float_floor_div(b, x, y, dtype, b.y(node))


def _int_div(b: OnnxBuilder, x: str, y: str, dtype: torch.dtype, mode: str, out: str) -> None:
    """ONNX integer Div truncates; floor mode steps down when the remainder's sign differs."""
    if mode == "trunc":
        b.emit("Div", [x, y], [out])
        return
    q = b.emit("Div", [x, y])
    r = b.emit("Sub", [x, b.emit("Mul", [q, y])])
    zero = b.scalar(0, dtype, "zero")
    signs_differ = b.emit("Xor", [b.emit("Less", [r, zero]), b.emit("Less", [y, zero])])
    adjust = b.emit("And", [b.emit("Not", [b.emit("Equal", [r, zero])]), signs_differ])
    b.emit("Sub", [q, b.emit("Cast", [adjust], to=onnx_dtype(dtype))], [out])


def _float_floor_div(b: OnnxBuilder, x: str, y: str, dtype: torch.dtype, out: str) -> None:
    """torch's div_floor_floating, step by step (not floor(x / y), which rounds differently)."""
    zero, one, half = (b.scalar(v, dtype, t) for v, t in ((0, "zero"), (1, "one"), (0.5, "half")))
    mod = b.emit("Mod", [x, y], fmod=1)
    div = b.emit("Div", [b.emit("Sub", [x, mod]), y])
    signs_differ = b.emit("Xor", [b.emit("Less", [y, zero]), b.emit("Less", [mod, zero])])
    step_down = b.emit("And", [b.emit("Not", [b.emit("Equal", [mod, zero])]), signs_differ])
    div = b.emit("Where", [step_down, b.emit("Sub", [div, one]), div])
    floor = b.emit("Floor", [div])
    floor = b.emit("Where", [b.emit("Greater", [b.emit("Sub", [div, floor]), half]),
                             b.emit("Add", [floor, one]), floor])
    # div == 0 keeps the sign of x / y; y == 0 gives the IEEE quotient
    true_div = b.emit("Div", [x, y])
    floor = b.emit("Where", [b.emit("Equal", [div, zero]), b.emit("Mul", [true_div, zero]), floor])
    b.emit("Where", [b.emit("Equal", [y, zero]), true_div, floor], [out])


# ---- shape ---------------------------------------------------------------------------------
@lowering("reshape")
def reshape(b: OnnxBuilder, node: Node) -> None:
    shape = node.outputs[0].shape
    b.emit("Reshape", [b.x(node), b.ints(shape, "shape")], [b.y(node)],
           allowzero=1 if 0 in shape else None)


@lowering("permute")
def permute(b: OnnxBuilder, node: Node) -> None:
    rank = len(node.inputs[0].shape)
    b.emit("Transpose", [b.x(node)], [b.y(node)], perm=[d % rank for d in node.attrs["dims"]])


@lowering("concat")
def concat(b: OnnxBuilder, node: Node) -> None:
    dtype = node.outputs[0].dtype
    b.emit("Concat", [b.x_as(node, i, dtype) for i in range(len(node.inputs))], [b.y(node)],
           axis=node.attrs["dim"])


@lowering("split")
def split(b: OnnxBuilder, node: Node) -> None:
    b.emit("Split", [b.x(node), b.ints(node.attrs["sizes"], "sizes")],
           [v.name for v in node.outputs], axis=node.attrs["dim"])


@lowering("slice")
def slice_(b: OnnxBuilder, node: Node) -> None:
    a = node.attrs
    if a["step"] < 1:
        raise b.error(f"slice step must be positive, got {a['step']}")
    b.emit("Slice", [b.x(node), b.ints([a["start"]], "starts"), b.ints([a["end"]], "ends"),
                     b.ints([a["dim"]], "axes"), b.ints([a["step"]], "steps")], [b.y(node)])


@lowering("expand")
def expand(b: OnnxBuilder, node: Node) -> None:
    b.emit("Expand", [b.x(node), b.ints(node.outputs[0].shape, "shape")], [b.y(node)])


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@lowering("pad")
def pad(b: OnnxBuilder, node: Node) -> None:
    """torch pads run (before, after) from the last dim backwards; ONNX wants all begins, then ends."""
    x, mode, pads = node.inputs[0], node.attrs["mode"], node.attrs["pads"]
    if mode == "circular" and b.opset < 19:
        raise b.error("circular padding needs Pad mode 'wrap'", hint="use target onnx{opset=19} or later")
    rank = len(x.shape)
    begins, ends = [0] * rank, [0] * rank
    for k in range(len(pads) // 2):
        begins[rank - 1 - k], ends[rank - 1 - k] = pads[2 * k], pads[2 * k + 1]
    ins = [b.x(node), b.ints(begins + ends, "pads")]
    if mode == "constant":
        value = node.attrs["value"]
        ins.append(b.scalar(value if x.dtype.is_floating_point else int(value), x.dtype, "value"))
    b.emit("Pad", ins, [b.y(node)], mode=_PAD_MODES[mode])


@lowering("cast")
def cast(b: OnnxBuilder, node: Node) -> None:
    b.emit("Cast", [b.x(node)], [b.y(node)], to=onnx_dtype(node.attrs["dtype"], b.where))


# ---- pooling and resampling ------------------------------------------------------------------
def _pool_geometry(b: OnnxBuilder, node: Node, dilation) -> tuple[list[int], list[int], list[int],
                                                                  list[int], bool]:
    """kernel, strides, begin pads, end pads and whether ceil_mode overhangs.

    ONNX's ceil_mode output size differs from torch's (torch drops a last window that would start
    in the end padding), so ceil_mode is never emitted: torch's output size (the IR type) is
    reached in floor mode by extending the end pads over the overhang.
    """
    a, k = node.attrs, _spatial(b, node, "kernel")
    kernel, stride = list(a["kernel"]), _n(a["stride"] or a["kernel"], k)
    pads, dilation = _n(a["padding"], k), _n(dilation, k)
    size_in, size_out = node.inputs[0].shape[2:], node.outputs[0].shape[2:]
    extra = [max(0, (o - 1) * s + d * (kk - 1) + 1 - (i + 2 * p))
             for i, o, s, kk, p, d in zip(size_in, size_out, stride, kernel, pads, dilation)]
    return kernel, stride, pads, [p + e for p, e in zip(pads, extra)], any(extra)


@lowering("max_pool")
def max_pool(b: OnnxBuilder, node: Node) -> None:
    """onnxruntime wants pads < kernel; a dilated ceil overhang can exceed that, so such pads
    become an explicit Pad with the dtype's lowest value (never the max of a window)."""
    kernel, stride, begins, ends, _ = _pool_geometry(b, node, node.attrs["dilation"])
    x, dtype = b.x(node), node.inputs[0].dtype
    if any(p >= k for p, k in zip(begins + ends, kernel + kernel)):
        lowest = -math.inf if dtype.is_floating_point else torch.iinfo(dtype).min
        pads = b.ints([0, 0] + begins + [0, 0] + ends, "pads")
        x = b.emit("Pad", [x, pads, b.scalar(lowest, dtype, "lowest")])
        begins = ends = [0] * len(kernel)
    b.emit("MaxPool", [x], [b.y(node)], kernel_shape=kernel, strides=stride,
           pads=begins + ends, dilations=_n(node.attrs["dilation"], len(kernel)))


@lowering("avg_pool")
def avg_pool(b: OnnxBuilder, node: Node) -> None:
    """Over a ceil overhang torch divides by the window clipped to input + declared padding: the
    declared padding (when counted) becomes an explicit zero Pad and the overhang is excluded."""
    kernel, stride, begins, ends, overhang = _pool_geometry(b, node, (1,))
    x, include_pad = b.x(node), node.attrs["count_include_pad"]
    if overhang and include_pad and any(begins):
        zeros = [0, 0]
        x = b.emit("Pad", [x, b.ints(zeros + begins + zeros + begins, "pads")])
        ends = [e - p for e, p in zip(ends, begins)]
        begins = [0] * len(kernel)
    b.emit("AveragePool", [x], [b.y(node)], kernel_shape=kernel, strides=stride, pads=begins + ends,
           count_include_pad=int(include_pad and not overhang))


@lowering("adaptive_avg_pool", "adaptive_max_pool")
def adaptive_pool(b: OnnxBuilder, node: Node) -> None:
    """Global pooling for 1x1 output; a fixed kernel = stride when the sizes divide; else an error."""
    kind = "Average" if node.op == "adaptive_avg_pool" else "Max"
    _spatial(b, node, "output_size")
    size_in, size_out = node.inputs[0].shape[2:], node.outputs[0].shape[2:]
    if all(o == 1 for o in size_out):
        b.emit(f"Global{kind}Pool", [b.x(node)], [b.y(node)])
    elif all(i % o == 0 for i, o in zip(size_in, size_out)):
        kernel = [i // o for i, o in zip(size_in, size_out)]
        b.emit(f"{kind}Pool", [b.x(node)], [b.y(node)], kernel_shape=kernel, strides=kernel)
    else:
        raise b.error(f"adaptive pooling from {list(size_in)} to {list(size_out)} has uneven windows",
                      hint="use an input size divisible by the output size, or a fixed pooling op")


_RESIZE = {  # IR mode -> (ONNX mode, extra attributes)
    "nearest": ("nearest", {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}),
    "nearest-exact": ("nearest", {"coordinate_transformation_mode": "half_pixel",
                                  "nearest_mode": "round_prefer_ceil"}),
    "linear": ("linear", {}), "bilinear": ("linear", {}), "trilinear": ("linear", {}),
    "bicubic": ("cubic", {"cubic_coeff_a": -0.75}),
}


@lowering("resize")
def resize(b: OnnxBuilder, node: Node) -> None:
    mode, extra = _RESIZE[node.attrs["mode"]]
    extra = dict(extra)
    if mode != "nearest":
        extra["coordinate_transformation_mode"] = ("align_corners" if node.attrs["align_corners"]
                                                   else "half_pixel")
    sizes = b.ints(node.outputs[0].shape, "sizes")
    b.emit("Resize", [b.x(node), "", "", sizes], [b.y(node)], mode=mode, **extra)


# ---- reductions ------------------------------------------------------------------------------
_REDUCE = {"reduce_mean": "ReduceMean", "reduce_sum": "ReduceSum", "reduce_max": "ReduceMax",
           "reduce_min": "ReduceMin"}


@lowering(*_REDUCE)
def reduce(b: OnnxBuilder, node: Node) -> None:
    x = b.x_as(node, 0, node.outputs[0].dtype)  # torch sums integers in int64
    b.reduce(_REDUCE[node.op], x, node.attrs["dims"], node.attrs["keepdim"], [b.y(node)])


# ---- ops added for the ONNX frontend (their lowerings live in lowering_extra.py) -------------
from backends.onnx import lowering_extra, lowering_recurrent  # noqa: E402,F401
from backends.onnx import lowering_capture  # noqa: E402,F401  (ops of the torch.export frontend)
