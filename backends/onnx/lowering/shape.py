"""Ops that move, select or convert data without arithmetic: reshape, permute, concat, split,
slice, expand, pad, cast, gather, tile."""
from __future__ import annotations

from backends.onnx.builder import OnnxBuilder, onnx_dtype
from backends.onnx.lowering.registry import lowering
from compiler.ir import Node


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


@lowering("gather")
def gather(b: OnnxBuilder, node: Node) -> None:
    b.emit("Gather", [b.x(node), b.x(node, 1)], [b.y(node)], axis=node.attrs["dim"])


@lowering("tile")
def tile(b: OnnxBuilder, node: Node) -> None:
    b.emit("Tile", [b.x(node), b.ints(node.attrs["repeats"], "repeats")], [b.y(node)])
