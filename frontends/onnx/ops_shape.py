"""Data-movement ONNX ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Split, Slice,
Pad, Expand, Tile, Gather, DepthToSpace and SpaceToDepth. Shape-like inputs (Reshape's shape,
Slice's starts/ends, Pad's pads...) must be static after folding."""
from __future__ import annotations

import math

import torch

from compiler.ir import Value
from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.table import onnx_op


def _axes(cx: OnnxNodeContext, input_index: int, rank: int) -> list[int] | None:
    """Axes from the `axes` attribute (older opsets) or an input (newer ones), normalized."""
    axes = cx.ints(input_index, "axes") if cx.input(input_index) is not None else cx.attr("axes", "ints", None)
    if axes is None:
        return None
    normalized = [cx.normalize_axis(a, rank, "axis") for a in axes]
    if len(set(normalized)) != len(normalized):
        raise cx.error(f"axes {axes} repeat an axis")
    return normalized


@onnx_op("Reshape", ir="reshape", note="the target shape must be static; 0 copies a dim unless allowzero")
def reshape(cx: OnnxNodeContext):
    x, target = cx.x, cx.ints(1, "the target shape")
    allowzero = cx.flag("allowzero", 0)
    shape = []
    for i, d in enumerate(target):
        if d == 0 and not allowzero:
            if i >= x.rank:
                raise cx.error(f"shape {target} copies dim {i} (0), but the input has rank {x.rank}")
            d = x.shape[i]
        elif d < -1:
            raise cx.error(f"shape {target} has an invalid dim {d}")
        shape.append(d)
    if shape.count(-1) > 1:
        raise cx.error(f"shape {target} infers more than one dim (-1)")
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        if known == 0 or x.type.numel % known:
            raise cx.error(f"cannot reshape {list(x.shape)} ({x.type.numel} elements) to {target}")
        shape[shape.index(-1)] = x.type.numel // known
    if math.prod(shape) != x.type.numel:
        raise cx.error(f"cannot reshape {list(x.shape)} ({x.type.numel} elements) to {shape}",
                       hint="the input shapes do not fit this model (check --input-shape)")
    return cx.reshape(x, shape)


@onnx_op("Flatten", ir="reshape")
def flatten(cx: OnnxNodeContext):
    x = cx.x
    axis = cx.attr("axis", "int", 1)
    if not -x.rank <= axis <= x.rank:
        raise cx.error(f"axis {axis} is out of range for rank {x.rank}")
    axis = axis + x.rank if axis < 0 else axis
    return cx.reshape(x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


@onnx_op("Squeeze", ir="reshape", note="axes from the attribute (< 13) or the input (>= 13)")
def squeeze(cx: OnnxNodeContext):
    x = cx.x
    axes = _axes(cx, 1, x.rank)
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    if any(x.shape[a] != 1 for a in axes):
        raise cx.error(f"cannot squeeze axes {axes} of shape {list(x.shape)}: they are not all 1")
    return cx.reshape(x, [d for i, d in enumerate(x.shape) if i not in axes])


@onnx_op("Unsqueeze", ir="reshape", note="axes from the attribute (< 13) or the input (>= 13)")
def unsqueeze(cx: OnnxNodeContext):
    x = cx.x
    count = len(cx.ints(1, "axes") if cx.input(1) is not None else cx.attr("axes", "ints"))
    axes = set(_axes(cx, 1, x.rank + count))
    dims = iter(x.shape)
    return cx.reshape(x, [1 if i in axes else next(dims) for i in range(x.rank + count)])


@onnx_op("Transpose", ir="permute")
def transpose(cx: OnnxNodeContext):
    x = cx.x
    perm = cx.attr("perm", "ints", list(reversed(range(x.rank))))
    if sorted(perm) != list(range(x.rank)):
        raise cx.error(f"perm {perm} is not a permutation of the {x.rank} dims")
    return cx.emit("permute", [x], {"dims": tuple(perm)})


@onnx_op("Concat", ir="concat")
def concat(cx: OnnxNodeContext):
    values = [cx.required(i) for i in range(cx.num_inputs)]
    if not values:
        raise cx.error("needs at least one input")
    axis = cx.normalize_axis(cx.attr("axis", "int"), values[0].rank)
    return cx.emit("concat", values, {"dim": axis})


@onnx_op("Split", ir="split", note="sizes from the attribute (< 13), the input (>= 13), num_outputs (>= 18) "
                                   "or equal parts")
def split(cx: OnnxNodeContext):
    x = cx.x
    axis = cx.normalize_axis(cx.attr("axis", "int", 0), x.rank)
    n, size = len(cx.outputs), x.shape[axis]
    sizes = cx.ints(1, "split sizes") if cx.input(1) is not None else cx.attr("split", "ints", None)
    if sizes is None:
        parts = cx.attr("num_outputs", "int", n)
        if parts != n or n < 1:
            raise cx.error(f"num_outputs={parts} but the node has {n} outputs")
        chunk = -(-size // n)
        if cx.opset < 18 and size % n:
            raise cx.error(f"dim {axis} ({size}) does not split into {n} equal parts")
        sizes = [min(chunk, max(size - chunk * i, 0)) for i in range(n)]
    if len(sizes) != n or sum(sizes) != size or any(s < 0 for s in sizes):
        raise cx.error(f"split sizes {sizes} do not cut dim {axis} ({size}) into {n} outputs")
    return cx.emit_multi("split", [x], {"sizes": tuple(sizes), "dim": axis})


@onnx_op("Slice", ir="slice, or gather for negative steps", note="starts/ends/axes/steps must be static")
def slice_(cx: OnnxNodeContext):
    x = cx.x
    starts, ends = cx.ints(1, "starts"), cx.ints(2, "ends")
    axes = _axes(cx, 3, x.rank) if cx.input(3) is not None else list(range(len(starts)))
    steps = cx.ints(4, "steps") if cx.input(4) is not None else [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise cx.error("starts, ends, axes and steps differ in length")
    out = x
    todo = [item for item in zip(axes, starts, ends, steps)]
    for k, (axis, start, end, step) in enumerate(todo):
        suffix = "" if k == len(todo) - 1 else f"axis{axis}"
        out = _slice_axis(cx, out, axis, start, end, step, suffix)
    return out


def _slice_axis(cx: OnnxNodeContext, x: Value, axis: int, start: int, end: int, step: int, suffix: str) -> Value:
    dim = x.shape[axis]
    if step == 0:
        raise cx.error("a slice step is 0")
    start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        return cx.emit("slice", [x], {"dim": axis, "start": start, "end": max(start, end), "step": step},
                       suffix=suffix)
    start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    indices = torch.arange(start, end, step, dtype=torch.int64) if dim else torch.zeros(0, dtype=torch.int64)
    return cx.emit("gather", [x, cx.constant(indices, f"indices{axis}")], {"dim": axis}, suffix=suffix)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


@onnx_op("Pad", ir="pad", note="pads, constant_value and axes must be static; reflect/edge/wrap pad at "
                               "most the last 3 dims of a batched input")
def pad(cx: OnnxNodeContext):
    x = cx.x
    mode = cx.attr("mode", "str", "constant")
    if mode not in _PAD_MODES:
        raise cx.unsupported(f"mode '{mode}'")
    pads = cx.ints(1, "pads")
    axes = _axes(cx, 3, x.rank) if cx.input(3) is not None else list(range(x.rank))
    if len(pads) != 2 * len(axes):
        raise cx.error(f"{len(pads)} pads for {len(axes)} axes")
    begin, end = [0] * x.rank, [0] * x.rank
    for i, a in enumerate(axes):
        begin[a], end[a] = pads[i], pads[i + len(axes)]
    padded = [a for a in range(x.rank) if begin[a] or end[a]]
    if not padded:
        return x
    first = padded[0]
    if mode != "constant":  # torch pads the last 1-3 dims after one or two leading (batch) dims
        first = 2 if first >= 2 and x.rank >= 3 else 1
        if padded[0] < 1 or not 1 <= x.rank - first <= 3 or any(p < 0 for p in begin + end):
            raise cx.unsupported(f"{mode} padding of dims {padded} of a rank-{x.rank} input")
    torch_pads = []
    for a in reversed(range(first, x.rank)):
        torch_pads += [begin[a], end[a]]
    attrs = {"pads": tuple(torch_pads), "mode": _PAD_MODES[mode]}
    if mode == "constant":
        value = cx.scalar(2, "constant_value") if cx.input(2) is not None else 0
        attrs["value"] = float(value)
    return cx.emit("pad", [x], attrs)


@onnx_op("Expand", ir="expand", note="the shape must be static; broadcasting goes both ways, as in ONNX")
def expand(cx: OnnxNodeContext):
    x, shape = cx.x, cx.ints(1, "the shape")
    try:
        out = tuple(torch.broadcast_shapes(x.shape, tuple(shape)))
    except RuntimeError:
        raise cx.error(f"cannot broadcast {list(x.shape)} with {shape}") from None
    return cx.emit("expand", [x], {"shape": out})


@onnx_op("Tile", ir="tile", note="repeats must be static")
def tile(cx: OnnxNodeContext):
    x, repeats = cx.x, cx.ints(1, "repeats")
    if len(repeats) != x.rank or any(r < 0 for r in repeats):
        raise cx.error(f"repeats {repeats} need one non-negative entry per dim of {list(x.shape)}")
    return cx.emit("tile", [x], {"repeats": tuple(repeats)})


@onnx_op("Gather", ir="slice+reshape, embedding or gather",
         note="a static scalar index is a slice; dynamic indices into a 2-D weight along axis 0 an embedding")
def gather(cx: OnnxNodeContext):
    data, indices = cx.required(0), cx.required(1)
    axis = cx.normalize_axis(cx.attr("axis", "int", 0), data.rank)
    if indices.dtype not in (torch.int64, torch.int32):
        raise cx.error(f"indices must be int64 or int32, got {indices.dtype}")
    size = data.shape[axis]
    if indices.data is not None:
        idx = indices.data
        if idx.numel() and not bool(((idx >= -size) & (idx < size)).all()):
            raise cx.error(f"indices {idx.reshape(-1).tolist()[:8]} are out of range for dim {axis} ({size})")
        if idx.dim() == 0 and data.data is None:
            i = int(idx) % size
            picked = cx.emit("slice", [data], {"dim": axis, "start": i, "end": i + 1}, suffix="slice")
            return cx.reshape(picked, data.shape[:axis] + data.shape[axis + 1:])
        return cx.emit("gather", [data, indices], {"dim": axis})
    if axis == 0 and data.rank == 2 and data.data is not None and data.dtype.is_floating_point:
        return cx.emit("embedding", [indices, data])
    return cx.emit("gather", [data, indices], {"dim": axis})


@onnx_op("DepthToSpace", ir="reshape + permute + reshape", note="DCR and CRD modes")
def depth_to_space(cx: OnnxNodeContext):
    x, b = cx.x, cx.attr("blocksize", "int")
    mode = cx.attr("mode", "str", "DCR")
    if x.rank != 4 or b < 1 or x.shape[1] % (b * b) or mode not in ("DCR", "CRD"):
        raise cx.error(f"cannot rearrange {list(x.shape)} with blocksize {b} in mode '{mode}'")
    n, c, h, w = x.shape
    if mode == "DCR":
        split, perm = (n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2)
    else:
        split, perm = (n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3)
    moved = cx.emit("permute", [cx.reshape(x, split, suffix="blocks")], {"dims": perm}, suffix="moved")
    return cx.reshape(moved, (n, c // (b * b), h * b, w * b))


@onnx_op("SpaceToDepth", ir="reshape + permute + reshape")
def space_to_depth(cx: OnnxNodeContext):
    x, b = cx.x, cx.attr("blocksize", "int")
    if x.rank != 4 or b < 1 or x.shape[2] % b or x.shape[3] % b:
        raise cx.error(f"cannot rearrange {list(x.shape)} with blocksize {b}")
    n, c, h, w = x.shape
    blocks = cx.reshape(x, (n, c, h // b, b, w // b, b), suffix="blocks")
    moved = cx.emit("permute", [blocks], {"dims": (0, 3, 5, 1, 2, 4)}, suffix="moved")
    return cx.reshape(moved, (n, c * b * b, h // b, w // b))
