"""ATen layers -> IR: linear/matmul, convolutions, normalizations, pooling, resampling,
embedding, attention. Rules shared with the torch.fx frontend come from its lowering module.

Eval-mode BatchNorm arrives as `_native_batch_norm_legit_no_training` and becomes the IR's
`batch_norm`, so fold-bn folds it as it folds a traced `nn.BatchNorm2d`. `addmm(bias, x, w)`
(Hugging Face's GPT-2 `Conv1D`, weight stored [in, out]) becomes `matmul(x, w) + bias` with the
weight untouched: no transposed copy, and prune/quantize read matmul's weight axes from its rule.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from compiler.ir import TensorType, Value
from frontends.torch_export.attention import scaled_dot_product_attention
from frontends.torch_fx import lowering
from frontends.torch_fx.context import FxNodeContext
from frontends.torch_fx.shapes import Unusable

aten = torch.ops.aten


def linear(cx: FxNodeContext, x: Any, weight: Any, bias: Any = None) -> Value:
    return cx.emit("linear", [cx.tensor(x), cx.tensor(weight, "weight"), None if bias is None else cx.tensor(bias)])


def matmul(cx: FxNodeContext, a: Any, b: Any) -> Value:
    return cx.emit("matmul", [cx.tensor(a), cx.tensor(b)])


def addmm(cx: FxNodeContext, bias: Any, a: Any, b: Any, *, beta: Any = 1, alpha: Any = 1) -> Value:
    if beta != 1 or alpha != 1:
        raise cx.error(f"{cx.what()} with beta={beta}, alpha={alpha} is not supported (only 1, 1)")
    a, b, bias = cx.tensor(a), cx.tensor(b), cx.tensor(bias, "bias")
    product = cx.emit("matmul", [a, b], out=TensorType(a.shape[:-1] + b.shape[-1:], a.dtype))
    return cx.emit("add", [product, bias], suffix="bias")


def convolution(cx: FxNodeContext, x: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
                transposed: bool, output_padding: Any, groups: int) -> Value:
    if transposed:
        return conv_transpose(cx, x, weight, bias, stride, padding, output_padding, groups, dilation)
    return conv(cx, x, weight, bias, stride, padding, dilation, groups)


def conv(cx: FxNodeContext, x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
         dilation: Any = 1, groups: int = 1) -> Value:
    return lowering.conv(cx, cx.tensor(x), cx.tensor(weight, "weight"), _opt(cx, bias), stride, padding, dilation, groups)


def conv_transpose(cx: FxNodeContext, x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                   output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Value:
    return lowering.conv_transpose(cx, cx.tensor(x), cx.tensor(weight, "weight"), _opt(cx, bias), stride, padding,
                            output_padding, groups, dilation)


def batch_norm_no_training(cx: FxNodeContext, x: Any, weight: Any, bias: Any, mean: Any, var: Any, momentum: float,
                           eps: float) -> tuple:
    out = cx.emit("batch_norm", [cx.tensor(x), cx.tensor(mean), cx.tensor(var), _opt(cx, weight), _opt(cx, bias)],
                  {"eps": float(eps)}, out=cx.out[0])
    stats = Unusable(f"the saved statistics of {cx.what()} are not supported")
    return out, stats, stats


def batch_norm(cx: FxNodeContext, x: Any, weight: Any, bias: Any, mean: Any, var: Any, training: bool, momentum: float,
               eps: float, cudnn_enabled: bool = False) -> Value:
    return lowering.batch_norm(cx, cx.tensor(x), _opt(cx, mean), _opt(cx, var), _opt(cx, weight), _opt(cx, bias),
                        training, momentum, eps)


def training_batch_norm(cx: FxNodeContext, *args: Any, **kwargs: Any) -> Any:
    raise cx.error(f"{cx.what()}: BatchNorm in training mode (batch statistics) cannot be imported",
                   hint="call model.eval() first; BatchNorm needs running statistics")


def layer_norm(cx: FxNodeContext, x: Any, shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5,
               cudnn_enable: bool = True) -> Value:
    return lowering.layer_norm(cx, cx.tensor(x), shape, _opt(cx, weight), _opt(cx, bias), eps)


def native_layer_norm(cx: FxNodeContext, x: Any, shape: Any, weight: Any, bias: Any, eps: float) -> tuple:
    x = cx.tensor(x)
    out = cx.emit("layer_norm", [x, _opt(cx, weight), _opt(cx, bias)],
                  {"normalized_shape": tuple(shape), "eps": float(eps)}, out=cx.out[0])
    stats = Unusable(f"the saved statistics of {cx.what()} are not supported")
    return out, stats, stats


def group_norm(cx: FxNodeContext, x: Any, groups: int, weight: Any = None, bias: Any = None, eps: float = 1e-5,
               cudnn_enabled: bool = True) -> Value:
    return lowering.group_norm(cx, cx.tensor(x), groups, _opt(cx, weight), _opt(cx, bias), eps)


def native_group_norm(cx: FxNodeContext, x: Any, weight: Any, bias: Any, n: int, c: int, hw: int, groups: int,
                      eps: float) -> tuple:
    out = cx.emit("group_norm", [cx.tensor(x), _opt(cx, weight), _opt(cx, bias)],
                  {"num_groups": int(groups), "eps": float(eps)}, out=cx.out[0])
    stats = Unusable(f"the saved statistics of {cx.what()} are not supported")
    return out, stats, stats


def embedding(cx: FxNodeContext, weight: Any, indices: Any, padding_idx: int = -1, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Value:
    return cx.emit("embedding", [cx.tensor(indices, "indices"), cx.tensor(weight, "weight")])


def max_pool(nd: int, with_indices: bool) -> Callable:
    def rule(cx: FxNodeContext, x: Any, kernel_size: Any, stride: Any = (), padding: Any = 0, dilation: Any = 1,
             ceil_mode: bool = False) -> Any:
        args = (kernel_size, stride, padding, dilation, ceil_mode)
        if with_indices:
            return _pool_values(cx, lambda c, v: lowering.max_pool(c, nd, v, *args), x)
        return lowering.max_pool(cx, nd, cx.tensor(x), *args)
    return rule


def _pool_values(cx: FxNodeContext, lower: Callable, x: Any) -> tuple:
    """A (values, indices) pool: the values are the plain pool; the indices cannot be used."""
    saved, cx.out = cx.out, cx.out[0]
    try:
        values = lower(cx, cx.tensor(x))
    finally:
        cx.out = saved
    return values, Unusable(f"the indices returned by {cx.what()} are not supported")


def avg_pool(nd: int) -> Callable:
    def rule(cx: FxNodeContext, x: Any, kernel_size: Any, stride: Any = (), padding: Any = 0, ceil_mode: bool = False,
             count_include_pad: bool = True, divisor_override: Any = None) -> Value:
        return lowering.avg_pool(cx, nd, cx.tensor(x), kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override)
    return rule


def adaptive(op: str, nd: int) -> Callable:
    def rule(cx: FxNodeContext, x: Any, output_size: Any) -> Any:
        if isinstance(cx.out, tuple):  # adaptive_max_pool returns (values, indices)
            return _pool_values(cx, lambda c, v: lowering.adaptive_pool(c, op, nd, v, output_size), x)
        return lowering.adaptive_pool(cx, op, nd, cx.tensor(x), output_size)
    return rule


def upsample(mode: str) -> Callable:
    """upsample_* (.vec and per-dim-scale overloads): the size is what torch computed; given
    scales are checked to give that size exactly (lowering.resize), or the import is refused."""
    def rule(cx: FxNodeContext, x: Any, output_size: Any, *rest: Any) -> Value:
        align = rest[0] if mode not in ("nearest", "nearest-exact") and rest else None
        scales = rest[1:] if align is not None else rest
        flat = [s for item in scales for s in (item if isinstance(item, (list, tuple)) else [item]) if s is not None]
        return lowering.resize(cx, cx.tensor(x), None, flat or None, mode, align)
    return rule


def _opt(cx: FxNodeContext, value: Any) -> Value | None:
    return None if value is None else cx.tensor(value)


RULES: dict[Any, Callable] = {
    aten.linear: linear, aten.matmul: matmul, aten.mm: matmul, aten.bmm: matmul, aten.addmm: addmm,
    aten.convolution: convolution, aten.conv1d: conv, aten.conv2d: conv, aten.conv3d: conv,
    aten.conv_transpose1d: conv_transpose, aten.conv_transpose2d: conv_transpose,
    aten.conv_transpose3d: conv_transpose,
    aten._native_batch_norm_legit_no_training: batch_norm_no_training, aten.batch_norm: batch_norm,
    aten._native_batch_norm_legit: training_batch_norm, aten._native_batch_norm_legit_functional: training_batch_norm,
    aten.native_batch_norm: training_batch_norm,
    aten.layer_norm: layer_norm, aten.native_layer_norm: native_layer_norm,
    aten.group_norm: group_norm, aten.native_group_norm: native_group_norm,
    aten.embedding: embedding,
    aten.max_pool1d: max_pool(1, False), aten.max_pool2d: max_pool(2, False), aten.max_pool3d: max_pool(3, False),
    aten.max_pool2d_with_indices: max_pool(2, True), aten.max_pool3d_with_indices: max_pool(3, True),
    aten.avg_pool1d: avg_pool(1), aten.avg_pool2d: avg_pool(2), aten.avg_pool3d: avg_pool(3),
    aten.adaptive_avg_pool1d: adaptive("adaptive_avg_pool", 1),
    aten.adaptive_avg_pool2d: adaptive("adaptive_avg_pool", 2),
    aten._adaptive_avg_pool2d: adaptive("adaptive_avg_pool", 2),
    aten.adaptive_avg_pool3d: adaptive("adaptive_avg_pool", 3),
    aten._adaptive_avg_pool3d: adaptive("adaptive_avg_pool", 3),
    aten.adaptive_max_pool1d: adaptive("adaptive_max_pool", 1),
    aten.adaptive_max_pool2d: adaptive("adaptive_max_pool", 2),
    aten.upsample_nearest2d: upsample("nearest"), aten._upsample_nearest_exact2d: upsample("nearest-exact"),
    aten.upsample_bilinear2d: upsample("bilinear"), aten.upsample_nearest1d: upsample("nearest"),
    aten.upsample_linear1d: upsample("linear"),
    aten.scaled_dot_product_attention: scaled_dot_product_attention,
}
