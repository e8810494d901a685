"""Leaf nn.Module classes -> IR. Looked up by exact class (fx traces through user subclasses).

A rule gets (cx, module, *forward_args). Weights are read from the module and registered once
per tensor under their qualified name (`layer1.0.conv1.weight`), sharing storage with the model.
"""
from __future__ import annotations

from typing import Any, Callable

import torch.fx as fx
from torch import nn

from compiler.errors import FrontendError
from compiler.ir import Value
from frontends.torch_fx import lowering
from frontends.torch_fx.context import FxNodeContext
from frontends.torch_fx.recurrent import recurrent

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def _w(cx: FxNodeContext, m: nn.Module, attr: str) -> Value | None:
    return cx.param(getattr(m, attr, None), f"{cx.node.target}.{attr}")


def training_problem(m: nn.Module) -> str | None:
    """Why a module cannot be imported in its current mode (checked before the model runs:
    a BatchNorm in training mode would update its statistics)."""
    if isinstance(m, _BATCH_NORMS):
        if m.training:
            return "is in training mode (it would normalize with batch statistics)"
        if not m.track_running_stats or m.running_mean is None:
            return "has track_running_stats=False (it always uses batch statistics)"
    if isinstance(m, _DROPOUTS) and m.training and m.p > 0:
        return "is in training mode (random dropout)"
    return None


def check_modes(graph: fx.Graph, submodules: dict[str, nn.Module], where: Callable[[fx.Node], str]) -> None:
    """Refuse modules that cannot be imported in their current mode, before the model runs."""
    for node in graph.nodes:
        if node.op == "call_module":
            module = submodules[node.target]
            problem = training_problem(module)
            if problem:
                raise FrontendError(f"{type(module).__name__} '{node.target}' {problem}", where=where(node),
                                    hint="call model.eval() before importing")


# ---- rules ------------------------------------------------------------------------------------
def _conv(cx: FxNodeContext, m: nn.Module, x: Any) -> Value:
    x = cx.tensor(x)
    w, b = _w(cx, m, "weight"), _w(cx, m, "bias")
    if m.padding_mode != "zeros":  # what nn.ConvNd does: pad with the mode, then convolve unpadded
        x = lowering.pad(cx, x, m._reversed_padding_repeated_twice, mode=m.padding_mode, suffix="pad")
        return lowering.conv(cx, x, w, b, m.stride, 0, m.dilation, m.groups)
    return lowering.conv(cx, x, w, b, m.stride, m.padding, m.dilation, m.groups)


def _conv_transpose(cx: FxNodeContext, m: nn.Module, x: Any, output_size: Any = None) -> Value:
    x = cx.tensor(x)
    output_padding = m.output_padding
    if output_size is not None:  # solve the output size torch produced for the output padding
        out, nd = cx.out_type().shape, len(m.stride)
        output_padding = tuple(
            out[2 + i] - ((x.shape[2 + i] - 1) * m.stride[i] - 2 * m.padding[i]
                          + m.dilation[i] * (m.kernel_size[i] - 1) + 1) for i in range(nd))
    return lowering.conv_transpose(cx, x, _w(cx, m, "weight"), _w(cx, m, "bias"), m.stride, m.padding,
                            output_padding, m.groups, m.dilation)


def _linear(cx: FxNodeContext, m: nn.Module, x: Any) -> Value:
    return cx.emit("linear", [cx.tensor(x), _w(cx, m, "weight"), _w(cx, m, "bias")])


def _batch_norm(cx: FxNodeContext, m: nn.Module, x: Any) -> Value:
    problem = training_problem(m)
    if problem:
        raise cx.error(f"BatchNorm '{cx.node.target}' {problem}", hint="call model.eval() before importing")
    return lowering.batch_norm(cx, x, _w(cx, m, "running_mean"), _w(cx, m, "running_var"),
                        _w(cx, m, "weight"), _w(cx, m, "bias"), eps=m.eps)


def _layer_norm(cx: FxNodeContext, m: nn.Module, x: Any) -> Value:
    return lowering.layer_norm(cx, x, m.normalized_shape, _w(cx, m, "weight"), _w(cx, m, "bias"), m.eps)


def _group_norm(cx: FxNodeContext, m: nn.Module, x: Any) -> Value:
    return lowering.group_norm(cx, x, m.num_groups, _w(cx, m, "weight"), _w(cx, m, "bias"), m.eps)


def _dropout(cx: FxNodeContext, m: nn.Module, x: Any) -> Value:
    problem = training_problem(m)
    if problem:
        raise cx.error(f"{cx.what()} {problem}", hint="call model.eval() before importing")
    return cx.tensor(x)


def _embedding(cx: FxNodeContext, m: nn.Module, x: Any) -> Value:
    return lowering.embedding(cx, x, _w(cx, m, "weight"), max_norm=m.max_norm)


def _reshape(cx: FxNodeContext, m: nn.Module, x: Any) -> Value:
    return cx.reshape_to_result(cx.tensor(x))


def _pad(mode: str) -> Callable:
    return lambda cx, m, x: lowering.pad(cx, cx.tensor(x), m.padding, mode, getattr(m, "value", 0.0))


def _simple(op: str, **attrs: str) -> Callable:
    """An activation whose IR attributes are read from same-named module attributes."""
    return lambda cx, m, x: lowering.unary(cx, op, x, **{k: getattr(m, a) for k, a in attrs.items()})


def _max_pool(nd: int) -> Callable:
    return lambda cx, m, x: lowering.max_pool(cx, nd, x, m.kernel_size, m.stride, m.padding, m.dilation,
                                       m.ceil_mode, m.return_indices)


def _avg_pool(nd: int) -> Callable:
    return lambda cx, m, x: lowering.avg_pool(cx, nd, x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                       m.count_include_pad, getattr(m, "divisor_override", None))


def _adaptive(op: str, nd: int) -> Callable:
    return lambda cx, m, x: lowering.adaptive_pool(cx, op, nd, x, m.output_size, getattr(m, "return_indices", False))


def _upsample(cx: FxNodeContext, m: nn.Module, x: Any) -> Value:
    return lowering.resize(cx, x, m.size, m.scale_factor, m.mode, m.align_corners, m.recompute_scale_factor)


MODULES: dict[type, Callable[..., Any]] = {
    nn.Conv1d: _conv, nn.Conv2d: _conv, nn.Conv3d: _conv,
    nn.ConvTranspose1d: _conv_transpose, nn.ConvTranspose2d: _conv_transpose, nn.ConvTranspose3d: _conv_transpose,
    nn.Linear: _linear,
    nn.BatchNorm1d: _batch_norm, nn.BatchNorm2d: _batch_norm, nn.BatchNorm3d: _batch_norm,
    nn.LayerNorm: _layer_norm, nn.GroupNorm: _group_norm,
    nn.ReLU: _simple("relu"), nn.Sigmoid: _simple("sigmoid"), nn.Tanh: _simple("tanh"),
    nn.SiLU: _simple("silu"), nn.Hardswish: _simple("hardswish"), nn.Hardsigmoid: _simple("hardsigmoid"),
    nn.GELU: _simple("gelu", approximate="approximate"),
    nn.LeakyReLU: _simple("leaky_relu", negative_slope="negative_slope"),
    nn.ReLU6: lambda cx, m, x: lowering.clip(cx, x, 0.0, 6.0),
    nn.Hardtanh: lambda cx, m, x: lowering.clip(cx, x, float(m.min_val), float(m.max_val)),
    nn.Softmax: lambda cx, m, x: lowering.softmax(cx, "softmax", x, m.dim),
    nn.LogSoftmax: lambda cx, m, x: lowering.softmax(cx, "log_softmax", x, m.dim),
    nn.Identity: lambda cx, m, x, *args, **kwargs: cx.tensor(x),
    nn.Flatten: _reshape, nn.Unflatten: _reshape,
    nn.MaxPool1d: _max_pool(1), nn.MaxPool2d: _max_pool(2), nn.MaxPool3d: _max_pool(3),
    nn.AvgPool1d: _avg_pool(1), nn.AvgPool2d: _avg_pool(2), nn.AvgPool3d: _avg_pool(3),
    nn.AdaptiveAvgPool1d: _adaptive("adaptive_avg_pool", 1), nn.AdaptiveAvgPool2d: _adaptive("adaptive_avg_pool", 2),
    nn.AdaptiveAvgPool3d: _adaptive("adaptive_avg_pool", 3),
    nn.AdaptiveMaxPool1d: _adaptive("adaptive_max_pool", 1), nn.AdaptiveMaxPool2d: _adaptive("adaptive_max_pool", 2),
    nn.AdaptiveMaxPool3d: _adaptive("adaptive_max_pool", 3),
    nn.Upsample: _upsample, nn.UpsamplingNearest2d: _upsample, nn.UpsamplingBilinear2d: _upsample,
    nn.Embedding: _embedding,
    nn.LSTM: recurrent, nn.GRU: recurrent,
    nn.ZeroPad1d: _pad("constant"), nn.ZeroPad2d: _pad("constant"), nn.ZeroPad3d: _pad("constant"),
    nn.ConstantPad1d: _pad("constant"), nn.ConstantPad2d: _pad("constant"), nn.ConstantPad3d: _pad("constant"),
    nn.ReflectionPad1d: _pad("reflect"), nn.ReflectionPad2d: _pad("reflect"), nn.ReflectionPad3d: _pad("reflect"),
    nn.ReplicationPad1d: _pad("replicate"), nn.ReplicationPad2d: _pad("replicate"),
    nn.ReplicationPad3d: _pad("replicate"),
    nn.CircularPad1d: _pad("circular"), nn.CircularPad2d: _pad("circular"), nn.CircularPad3d: _pad("circular"),
    **{cls: _dropout for cls in _DROPOUTS},
}

__all__ = ["MODULES", "check_modes", "training_problem"]
