"""Lowering rules shared by the module, function and method tables.

Each rule takes the context and torch-style arguments (already translated) and emits canonical
IR ops with attributes that follow the op registry's schema exactly. Static facts the rule cannot
recompute cheaply (the output size of interpolate or adaptive pooling) come from the recorded
result, which is what torch itself computed.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from compiler.ir import TensorType, Value
from frontends.torch_fx.context import FxNodeContext

SCALARS = (bool, int, float)


# ---- small helpers ---------------------------------------------------------------------------
def ntuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        if len(value) == 1 and n > 1:
            return tuple(int(value[0]) for _ in range(n))
        return tuple(int(v) for v in value)
    return (int(value),) * n


def norm_dim(cx: FxNodeContext, dim: int, rank: int) -> int:
    if not -max(rank, 1) <= dim < max(rank, 1):
        raise cx.error(f"{cx.what()}: dim {dim} is out of range for a tensor of rank {rank}")
    return dim % max(rank, 1)


def norm_dims(cx: FxNodeContext, dims: Any, rank: int) -> tuple[int, ...]:
    """Reduction dims: None or () means all dims; the result is sorted and non-negative."""
    if dims is None or (isinstance(dims, (tuple, list)) and len(dims) == 0):
        return tuple(range(rank))
    if isinstance(dims, int):
        dims = (dims,)
    return tuple(sorted({norm_dim(cx, int(d), rank) for d in dims}))


# ---- elementwise -----------------------------------------------------------------------------
def unary(cx: FxNodeContext, op: str, x: Any, **attrs: Any) -> Value:
    return cx.emit(op, [cx.tensor(x)], attrs)


def operand(cx: FxNodeContext, value: Any, dtype: torch.dtype) -> Value:
    """A binary-op operand: a Value, or a Python scalar made a 0-d constant.

    The constant takes the dtype of the op's result, which reproduces torch's promotion for
    Python scalars (a float scalar keeps a float tensor's dtype and makes an integer tensor's
    result the default float dtype; an int scalar keeps the tensor's dtype)."""
    if isinstance(value, Value):
        return value
    if isinstance(value, SCALARS):
        return cx.scalar(value, dtype)
    raise cx.error(f"{cx.what()}: unsupported operand of type {type(value).__name__}")


def binary(cx: FxNodeContext, op: str, a: Any, b: Any, attrs: dict | None = None) -> Value:
    dtype = cx.out_type().dtype
    return cx.emit(op, [operand(cx, a, dtype), operand(cx, b, dtype)], attrs)


def scaled(cx: FxNodeContext, b: Any, alpha: Any) -> Any:
    """b * alpha for torch.add/sub's alpha argument."""
    if alpha == 1:
        return b
    if isinstance(b, SCALARS):
        return b * alpha
    dtype = cx.out_type().dtype
    return cx.emit("mul", [b, cx.scalar(alpha, dtype)], suffix="alpha", out=TensorType(b.shape, dtype))


def clip(cx: FxNodeContext, x: Any, lo: Any = None, hi: Any = None) -> Value:
    x = cx.tensor(x)
    if isinstance(lo, Value) or isinstance(hi, Value):  # tensor bounds: max then min
        if lo is not None:
            x = cx.emit("maximum", [x, operand(cx, lo, x.dtype)], suffix="min" if hi is not None else "")
        if hi is not None:
            x = cx.emit("minimum", [x, operand(cx, hi, x.dtype)])
        return x
    return cx.emit("clip", [x], {"min": lo, "max": hi})


def softmax(cx: FxNodeContext, op: str, x: Any, dim: Any, dtype: torch.dtype | None = None) -> Value:
    x = cx.tensor(x)
    if dim is None:
        raise cx.error(f"{cx.what()} without dim is not supported (implicit dim is deprecated)",
                       hint="pass dim= explicitly")
    if dtype is not None:
        x = cx.cast(x, dtype, suffix="cast")
    return cx.emit(op, [x], {"dim": norm_dim(cx, dim, x.type.rank)})


def reduce(cx: FxNodeContext, op: str, x: Any, dim: Any = None, keepdim: bool = False,
           dtype: torch.dtype | None = None) -> Value:
    x = cx.tensor(x)
    if dtype is not None:
        x = cx.cast(x, dtype, suffix="cast")
    return cx.emit(op, [x], {"dims": norm_dims(cx, dim, x.type.rank), "keepdim": bool(keepdim)})


# ---- convolution -----------------------------------------------------------------------------
def pad(cx: FxNodeContext, x: Value, pads: Sequence[int], mode: str = "constant", value: float | None = None,
        *, suffix: str = "") -> Value:
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise cx.error(f"{cx.what()}: padding mode '{mode}' is not supported")
    pads = tuple(int(p) for p in pads)
    if len(pads) % 2 or len(pads) > 2 * x.type.rank:
        raise cx.error(f"{cx.what()}: pad {list(pads)} does not fit a tensor of rank {x.type.rank}")
    attrs = {"pads": pads, "mode": mode, "value": float(value or 0.0)}
    return cx.emit("pad", [x], attrs, suffix=suffix, out=None if suffix else cx.out_type())


def conv(cx: FxNodeContext, x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
         dilation: Any = 1, groups: int = 1) -> Value:
    """F.convNd semantics, including padding='same'/'valid' (asymmetric 'same' gets a pad node)."""
    x, weight = cx.tensor(x), cx.tensor(weight, "weight")
    nd = weight.type.rank - 2
    stride, dilation = ntuple(stride, nd), ntuple(dilation, nd)
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0,) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise cx.error(f"{cx.what()}: padding='same' needs stride 1, got {list(stride)}")
            total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
            padding = tuple(t // 2 for t in total)
            extra = [t - 2 * p for t, p in zip(total, padding)]
            if any(extra):  # torch pads the odd element on the right
                x = pad(cx, x, [v for e in reversed(extra) for v in (0, e)], suffix="pad")
        else:
            raise cx.error(f"{cx.what()}: unknown padding '{padding}'")
    attrs = {"stride": stride, "padding": ntuple(padding, nd), "dilation": dilation, "groups": int(groups)}
    return cx.emit("conv", [x, weight, bias], attrs)


def conv_transpose(cx: FxNodeContext, x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                   output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Value:
    x, weight = cx.tensor(x), cx.tensor(weight, "weight")
    nd = weight.type.rank - 2
    attrs = {"stride": ntuple(stride, nd), "padding": ntuple(padding, nd),
             "output_padding": ntuple(output_padding, nd), "dilation": ntuple(dilation, nd),
             "groups": int(groups)}
    return cx.emit("conv_transpose", [x, weight, bias], attrs)


# ---- pooling and resampling ---------------------------------------------------------------
def max_pool(cx: FxNodeContext, nd: int, x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
             dilation: Any = 1, ceil_mode: bool = False, return_indices: bool = False) -> Value:
    if return_indices:
        raise cx.error(f"{cx.what()} with return_indices=True is not supported")
    kernel = ntuple(kernel_size, nd)
    stride = kernel if stride is None or stride == [] or stride == () else ntuple(stride, nd)
    attrs = {"kernel": kernel, "stride": stride, "padding": ntuple(padding, nd),
             "dilation": ntuple(dilation, nd), "ceil_mode": bool(ceil_mode)}
    return cx.emit("max_pool", [cx.tensor(x)], attrs)


def avg_pool(cx: FxNodeContext, nd: int, x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
             ceil_mode: bool = False, count_include_pad: bool = True, divisor_override: Any = None) -> Value:
    if divisor_override is not None:
        raise cx.error(f"{cx.what()} with divisor_override is not supported")
    kernel = ntuple(kernel_size, nd)
    stride = kernel if stride is None or stride == [] or stride == () else ntuple(stride, nd)
    attrs = {"kernel": kernel, "stride": stride, "padding": ntuple(padding, nd),
             "ceil_mode": bool(ceil_mode), "count_include_pad": bool(count_include_pad)}
    return cx.emit("avg_pool", [cx.tensor(x)], attrs)


def adaptive_pool(cx: FxNodeContext, op: str, nd: int, x: Any, output_size: Any = None,
                  return_indices: bool = False) -> Value:
    if return_indices:
        raise cx.error(f"{cx.what()} with return_indices=True is not supported")
    size = cx.out_type().shape[-nd:]  # what torch resolved (None entries keep the input size)
    return cx.emit(op, [cx.tensor(x)], {"output_size": size})


def resize(cx: FxNodeContext, x: Any, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
           align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
           antialias: bool = False) -> Value:
    """F.interpolate to the static output size torch computed.

    A scale_factor is only exact as a size when torch would use the same source-coordinate
    scale either way; otherwise the import is refused rather than silently shifted."""
    x = cx.tensor(x)
    if antialias:
        raise cx.error(f"{cx.what()} with antialias=True is not supported")
    if mode not in ("nearest", "linear", "bilinear", "bicubic", "trilinear", "nearest-exact"):
        raise cx.error(f"{cx.what()}: interpolation mode '{mode}' is not supported")
    out = cx.out_type()
    spatial = out.shape[2:]
    if scale_factor is not None and not recompute_scale_factor and not align_corners:
        factors = ntuple_float(scale_factor, len(spatial))
        for n_in, n_out, f in zip(x.shape[2:], spatial, factors):
            as_scale = torch.tensor(1.0 / f, dtype=torch.float32)
            as_size = torch.tensor(float(n_in), dtype=torch.float32) / n_out
            if not torch.equal(as_scale, as_size):
                raise cx.error(
                    f"{cx.what()}: scale_factor {f} on size {n_in} is not an exact output size ({n_out})",
                    hint="pass size= or recompute_scale_factor=True so the resampling grid is static")
    attrs = {"size": spatial, "mode": mode,
             "align_corners": bool(align_corners) if mode in ("linear", "bilinear", "bicubic", "trilinear") else None}
    return cx.emit("resize", [x], attrs)


def ntuple_float(value: Any, n: int) -> tuple[float, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(float(v) for v in value)
    return (float(value),) * n


# ---- normalization -------------------------------------------------------------------------
def batch_norm(cx: FxNodeContext, x: Any, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
               training: bool = False, momentum: Any = 0.1, eps: float = 1e-5) -> Value:
    if training or running_mean is None or running_var is None:
        raise cx.error(f"{cx.what()} in training mode (batch statistics) cannot be imported",
                       hint="call model.eval() first; BatchNorm needs running statistics")
    return cx.emit("batch_norm", [cx.tensor(x), running_mean, running_var, weight, bias], {"eps": float(eps)})


def layer_norm(cx: FxNodeContext, x: Any, normalized_shape: Any, weight: Any = None, bias: Any = None,
               eps: float = 1e-5) -> Value:
    shape = ntuple(normalized_shape, 1) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    return cx.emit("layer_norm", [cx.tensor(x), weight, bias], {"normalized_shape": shape, "eps": float(eps)})


def group_norm(cx: FxNodeContext, x: Any, num_groups: int, weight: Any = None, bias: Any = None,
               eps: float = 1e-5) -> Value:
    return cx.emit("group_norm", [cx.tensor(x), weight, bias], {"num_groups": int(num_groups), "eps": float(eps)})


def embedding(cx: FxNodeContext, indices: Any, weight: Any, padding_idx: Any = None, max_norm: Any = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Value:
    if max_norm is not None:
        raise cx.error(f"{cx.what()} with max_norm is not supported (it rewrites the weight in place)")
    return cx.emit("embedding", [cx.tensor(indices, "indices"), cx.tensor(weight, "weight")])


def dropout(cx: FxNodeContext, x: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Value:
    if training and p > 0:
        raise cx.error(f"{cx.what()} with training=True is random and cannot be imported",
                       hint="call model.eval() first (dropout is the identity at inference)")
    return cx.tensor(x)
