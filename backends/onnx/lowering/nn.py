"""Layers with weights: convolutions, linear, embedding, matmul, einsum."""
from __future__ import annotations

from backends.onnx.builder import OnnxBuilder
from backends.onnx.lowering.registry import lowering, one_to_one, per_spatial_dim, spatial_rank
from compiler.ir import Node


lowering("matmul")(one_to_one("MatMul"))


@lowering("conv")
def conv(b: OnnxBuilder, node: Node) -> None:
    a, k = node.attrs, spatial_rank(b, node, "stride")
    b.emit("Conv", b.inputs(node), [b.y(node)], kernel_shape=list(node.inputs[1].shape[2:]),
           strides=per_spatial_dim(a["stride"], k), pads=per_spatial_dim(a["padding"], k) * 2,
           dilations=per_spatial_dim(a["dilation"], k), group=a["groups"])


@lowering("conv_transpose")
def conv_transpose(b: OnnxBuilder, node: Node) -> None:
    a, k = node.attrs, spatial_rank(b, node, "stride")
    b.emit("ConvTranspose", b.inputs(node), [b.y(node)], kernel_shape=list(node.inputs[1].shape[2:]),
           strides=per_spatial_dim(a["stride"], k), pads=per_spatial_dim(a["padding"], k) * 2,
           output_padding=per_spatial_dim(a["output_padding"], k),
           dilations=per_spatial_dim(a["dilation"], k), group=a["groups"])


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


@lowering("einsum")
def einsum(b: OnnxBuilder, node: Node) -> None:
    b.emit("Einsum", b.inputs(node), [b.y(node)], equation=node.attrs["equation"])
