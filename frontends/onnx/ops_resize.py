"""ONNX Resize -> the IR's `resize` (F.interpolate) where the two agree exactly, else gathers.

Output sizes come from `sizes`, or from `scales` as floor(in * scale) in float32 (what
onnxruntime computes). Nearest mode is decided per axis by comparing index maps: onnxruntime's
source index for every output position (its coordinate transform and rounding, in float32)
against torch's `nearest` and `nearest-exact` maps; when neither matches, or when batch/channel
dims are resized, it becomes one `gather` per resized axis with the exact static indices.
Linear and cubic modes need a coordinate transform torch has (half_pixel, pytorch_half_pixel,
align_corners) and a scale equal to out/in; anything else is refused, never approximated.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from compiler.ir import TensorType, Value
from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.table import onnx_op

_F32 = np.float32
_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _transform(ctm: str, dst: np.ndarray, scale: np.float32, n_in: int, n_out: int) -> np.ndarray:
    """onnxruntime's source coordinate of each output position (float32)."""
    if ctm == "half_pixel":
        return (dst + _F32(0.5)) / scale - _F32(0.5)
    if ctm == "pytorch_half_pixel":
        return (dst + _F32(0.5)) / scale - _F32(0.5) if n_out > 1 else np.zeros_like(dst)
    if ctm == "asymmetric":
        return dst / scale
    if ctm == "tf_half_pixel_for_nn":
        return (dst + _F32(0.5)) / scale
    if ctm == "align_corners":
        return np.zeros_like(dst) if n_out == 1 else dst * _F32(n_in - 1) / _F32(n_out - 1)
    if ctm == "half_pixel_symmetric":
        adjustment = _F32(n_out) / (scale * _F32(n_in))
        offset = _F32(n_in) / _F32(2) * (_F32(1) - adjustment)
        return offset + (dst + _F32(0.5)) / scale - _F32(0.5)
    raise ValueError(ctm)


def onnx_nearest_map(ctm: str, nearest: str, scale: float, n_in: int, n_out: int) -> list[int]:
    x = _transform(ctm, np.arange(n_out, dtype=_F32), _F32(scale), n_in, n_out)
    if nearest == "round_prefer_floor":
        idx = np.where(x == np.floor(x) + _F32(0.5), np.floor(x), np.sign(x) * np.floor(np.abs(x) + _F32(0.5)))
    elif nearest == "round_prefer_ceil":
        idx = np.sign(x) * np.floor(np.abs(x) + _F32(0.5))
    elif nearest == "floor":
        idx = np.floor(x)
    else:
        idx = np.ceil(x)
    return np.clip(idx, 0, n_in - 1).astype(np.int64).tolist()


def torch_nearest_map(mode: str, n_in: int, n_out: int) -> list[int]:
    src = torch.arange(n_in, dtype=torch.float64).reshape(1, 1, n_in)
    return F.interpolate(src, size=n_out, mode=mode)[0, 0].long().tolist()


def _sizes_and_scales(cx: OnnxNodeContext, x: Value) -> tuple[list[int], list[float]]:
    axes = cx.attr("axes", "ints", None)
    axes = list(range(x.rank)) if axes is None else [cx.normalize_axis(a, x.rank) for a in axes]
    sizes = cx.ints(3, "sizes") if cx.input(3) is not None else None
    scales_t = cx.static(2, "scales") if cx.input(2) is not None else None
    scales = None if scales_t is None or scales_t.numel() == 0 else [float(v) for v in scales_t.reshape(-1).tolist()]
    if sizes:
        if cx.attr("keep_aspect_ratio_policy", "str", "stretch") != "stretch":
            raise cx.unsupported("keep_aspect_ratio_policy other than 'stretch'")
        if len(sizes) != len(axes) or min(sizes) < 1:
            raise cx.error(f"sizes {sizes} do not fit axes {axes}")
        out = list(x.shape)
        for a, n in zip(axes, sizes):
            out[a] = n
        return _bounded(cx, x, out), [float(_F32(o) / _F32(n)) if n else 1.0 for o, n in zip(out, x.shape)]
    if not scales or len(scales) != len(axes) or not all(0 < s < math.inf for s in scales):
        raise cx.error(f"needs finite positive scales or sizes for axes {axes}, got scales {scales} and sizes {sizes}")
    full = [1.0] * x.rank
    for a, s in zip(axes, scales):
        full[a] = s
    with np.errstate(over="ignore"):  # an overflow is reported below, not warned about
        scaled = [float(_F32(n) * _F32(s)) for n, s in zip(x.shape, full)]
    if not all(math.isfinite(v) for v in scaled):
        raise cx.error(f"scales {scales} overflow float32 on an input of shape {list(x.shape)}")
    out = [int(math.floor(v)) for v in scaled]
    if min(out) < 1:
        raise cx.error(f"scales {scales} shrink {list(x.shape)} to nothing")
    return _bounded(cx, x, out), full


def _bounded(cx: OnnxNodeContext, x: Value, out: list[int]) -> list[int]:
    cx.check_type(TensorType(tuple(out), x.dtype))  # before the index maps are built for that size
    return out


@onnx_op("Resize", ir="resize, or gather per axis (nearest)",
         note="nearest: any coordinate transform and rounding; linear/cubic: half_pixel, pytorch_half_pixel or "
              "align_corners with scale = out/in, cubic_coeff_a -0.75; no antialias, tf_crop_and_resize or "
              "keep_aspect_ratio_policy")
def resize(cx: OnnxNodeContext):
    x = cx.x
    mode = cx.attr("mode", "str", "nearest")
    ctm = cx.attr("coordinate_transformation_mode", "str", "half_pixel")
    out, scales = _sizes_and_scales(cx, x)
    if tuple(out) == x.shape:
        return x
    if ctm == "tf_crop_and_resize":
        raise cx.unsupported("coordinate_transformation_mode 'tf_crop_and_resize'")
    if mode == "nearest":
        return _nearest(cx, x, out, scales, ctm)
    if mode not in ("linear", "cubic"):
        raise cx.unsupported(f"mode '{mode}'")
    return _interpolated(cx, x, out, scales, mode, ctm)


def _nearest(cx: OnnxNodeContext, x: Value, out: list[int], scales: list[float], ctm: str) -> Value:
    nearest = cx.attr("nearest_mode", "str", "round_prefer_floor")
    if nearest not in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil") or ctm not in (
            "half_pixel", "pytorch_half_pixel", "asymmetric", "tf_half_pixel_for_nn", "align_corners",
            "half_pixel_symmetric"):
        raise cx.unsupported(f"nearest_mode '{nearest}' with coordinate_transformation_mode '{ctm}'")
    changed = [a for a in range(x.rank) if out[a] != x.shape[a]]
    maps = {a: onnx_nearest_map(ctm, nearest, scales[a], x.shape[a], out[a]) for a in changed}
    spatial = all(a >= 2 for a in changed) and 3 <= x.rank <= 5
    for mode in ("nearest", "nearest-exact"):
        if spatial and all(maps[a] == torch_nearest_map(mode, x.shape[a], out[a]) for a in changed):
            return cx.emit("resize", [x], {"size": tuple(out[2:]), "mode": mode})
    y = x
    for k, a in enumerate(changed):
        index = cx.constant(torch.tensor(maps[a], dtype=torch.int64), f"index{a}")
        y = cx.emit("gather", [y, index], {"dim": a}, suffix="" if k == len(changed) - 1 else f"axis{a}")
    return y


def _interpolated(cx: OnnxNodeContext, x: Value, out: list[int], scales: list[float], mode: str, ctm: str) -> Value:
    k = x.rank - 2
    if out[:2] != list(x.shape[:2]) or not 1 <= k <= 3:
        raise cx.unsupported(f"{mode} resizing of {list(x.shape)} to {out} (only the 1-3 spatial dims "
                             "of a batched input can be interpolated)")
    if cx.flag("antialias", 0) and any(o < n for o, n in zip(out, x.shape)):
        raise cx.unsupported("antialias when downsampling")
    for o, n, s in zip(out[2:], x.shape[2:], scales[2:]):
        if not math.isclose(s, o / n, rel_tol=1e-6):
            raise cx.unsupported(f"{mode} resizing with scale {s} where the output size {o} / input {n} "
                                 f"is {o / n:.6g} (torch interpolates with out/in)")
    if ctm == "pytorch_half_pixel" and min(out[2:]) == 1:
        raise cx.unsupported("pytorch_half_pixel with an output dim of 1")
    if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
        raise cx.unsupported(f"{mode} with coordinate_transformation_mode '{ctm}'")
    align = ctm == "align_corners"
    if mode == "cubic":
        a = cx.attr("cubic_coeff_a", "float", -0.75)
        if k != 2 or abs(a + 0.75) > 1e-6 or cx.flag("exclude_outside", 0):
            raise cx.unsupported(f"cubic resizing with {k} spatial dims, cubic_coeff_a={a} or exclude_outside "
                                 "(torch's bicubic is 2-d with a = -0.75)")
        return cx.emit("resize", [x], {"size": tuple(out[2:]), "mode": "bicubic", "align_corners": align})
    return cx.emit("resize", [x], {"size": tuple(out[2:]), "mode": _LINEAR[k], "align_corners": align})
