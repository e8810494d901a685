"""Deployed W8A8 speed and accuracy: nnforge's QDQ export against onnxruntime.quantization.quantize_static.

One run prints, in onnxruntime on the CPU with one thread:
1. median latency of the FP32 export, nnforge W8A8 (fold-bn, quantize{weights=int8,
   activations=uint8, residuals=true}, exported as onnx{quant=qdq}: integerized, then the QDQ form
   onnxruntime fuses) and quantize_static (QDQ, per channel, uint8 activations, int8 weights) on
   ResNet-50 and MobileNetV2 at 224x224 and the zoo BERT (hidden 256, 4 layers, sequence 128),
   with the time each tool took to quantize;
2. how closely onnxruntime runs nnforge's integer form on those models: codes that differ from
   the integer interpreter's, layer by layer (each layer fed the interpreter's input codes) and end
   to end, and the integer form's relative output error against the fake-quant graph;
3. the digits CNN: accuracy of FP32, nnforge W8A8 and quantize_static in onnxruntime and of brevitas
   PTQ (fake-quant torch), and each tool's quantize time.

    python bench/quant_deploy.py [--runs 20] [--calibration 4] [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.quant import brevitas_w8a8  # noqa: E402
from compiler import compile  # noqa: E402
from compiler.interpreter import interpret  # noqa: E402
from tests.integer_agreement import end_to_end_mismatches, per_layer_mismatches  # noqa: E402
from tests.test_integerize import integerized, randomize_bn  # noqa: E402
from tests.test_quant_accuracy import BATCH, accuracy, digits_data, train_digits_cnn  # noqa: E402

W8A8 = "fold-bn,quantize{weights=int8,activations=uint8,residuals=true}"


def session(model_bytes: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def median_latencies(models: list[bytes], feed: dict, runs: int) -> list[float]:
    """Median seconds per run of each model, the models taking turns so they share the machine's load."""
    sessions = [session(m) for m in models]
    for s in sessions:
        for _ in range(3):
            s.run(None, feed)
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(runs):
        for s, record in zip(sessions, times):
            start = time.perf_counter()
            s.run(None, feed)
            record.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def quantize_static(fp32: bytes, batches: list[dict]) -> tuple[bytes, float]:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType
    from onnxruntime.quantization import quantize_static as ort_quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(batches)

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32)
        start = time.perf_counter()
        ort_quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
        return dst.read_bytes(), time.perf_counter() - start


def models(quick: bool):
    from tests.zoo.bert import bert
    from tests.zoo.mobilenetv2 import mobilenetv2
    from tests.zoo.resnet import resnet50

    size = 112 if quick else 224
    gen = torch.Generator().manual_seed(0)
    image = lambda: (torch.rand(1, 3, size, size, generator=gen),)  # noqa: E731
    yield f"ResNet-50 ({size})", randomize_bn(resnet50()), image
    yield f"MobileNetV2 ({size})", randomize_bn(mobilenetv2()), image
    seq = 32 if quick else 128
    tokens = lambda: (torch.randint(0, 1000, (1, seq), generator=gen),  # noqa: E731
                      torch.ones(1, seq, dtype=torch.int64))
    yield f"BERT h256 x4 (seq {seq})", bert(hidden=256, num_layers=4, max_position=seq).eval(), tokens


def latency_table(runs: int, calibration: int, quick: bool) -> None:
    print(f"latency, onnxruntime CPU, 1 thread, median of {runs} interleaved runs (batch 1); "
          f"calibration {calibration} batches")
    print(f"  {'model':24s} {'FP32 ms':>8s} {'nnforge ms':>11s} {'q_static ms':>12s} "
          f"{'nnf/q_static':>13s} {'nnf/FP32':>9s} {'nnf quant s':>12s} {'q_static s':>11s}")
    agreement = []
    for name, model, sample in models(quick):
        example = sample()
        calib = [sample() for _ in range(calibration)]
        fp32 = compile(model, example, "fold-bn", target="onnx")
        names = [v.name for v in fp32.graph.inputs]
        feed = {n: t.numpy() for n, t in zip(names, example)}
        rows = {n: torch.cat([b[i] for b in calib]) for i, n in enumerate(names)}
        start = time.perf_counter()
        ours = compile(model, example, W8A8, target="onnx", calibration_data=rows)
        ours_s = time.perf_counter() - start
        static, static_s = quantize_static(fp32.artifact.obj.SerializeToString(),
                                           [{n: t.numpy() for n, t in zip(names, b)} for b in calib])
        t_fp32, t_ours, t_static = median_latencies(
            [fp32.artifact.obj.SerializeToString(), ours.artifact.obj.SerializeToString(), static], feed, runs)
        print(f"  {name:24s} {t_fp32 * 1e3:8.2f} {t_ours * 1e3:11.2f} {t_static * 1e3:12.2f} "
              f"{t_ours / t_static:13.2f} {t_ours / t_fp32:9.2f} {ours_s:12.2f} {static_s:11.2f}", flush=True)
        agreement.append((name, ours.graph, example))
    print("onnxruntime (quant=qdq) against the integer interpreter, codes of every requantized tensor;")
    print("integer form against the fake-quant graph, relative output error")
    for name, graph, example in agreement:
        ints = integerized(graph)
        worst, fraction, layers = per_layer_mismatches(ints, *example)
        e2e_worst, e2e_fraction = end_to_end_mismatches(ints, *example)
        ref, got = interpret(graph, *example)[-1], interpret(ints, *example)[-1]
        rel = float((got - ref).norm() / ref.norm())
        print(f"  {name:24s} per layer ({layers} layers): max {worst} code, {fraction:.4%} differ; "
              f"end to end: max {e2e_worst}, {e2e_fraction:.3%} differ; integer vs fake-quant {rel:.4f}", flush=True)


def digits_table(calibration: int) -> None:
    xtr, _, xte, yte = digits_data()
    model = train_digits_cnn()
    calib = xtr[:BATCH * calibration]
    ort_accuracy = lambda data: accuracy(  # noqa: E731
        lambda b: torch.from_numpy(session(data).run(None, {"x": b.numpy()})[0]), xte, yte)
    fp32 = compile(model, (xte[:BATCH],), "fold-bn", target="onnx").artifact.obj.SerializeToString()
    start = time.perf_counter()
    ours = compile(model, (xte[:BATCH],), W8A8, target="onnx", calibration_data=calib)
    ours_s = time.perf_counter() - start
    static, static_s = quantize_static(fp32, [{"x": calib[i:i + BATCH].numpy()} for i in range(0, len(calib), BATCH)])
    rows = [("FP32 (onnxruntime)", ort_accuracy(fp32), None),
            ("nnforge W8A8 (onnxruntime)", ort_accuracy(ours.artifact.obj.SerializeToString()), ours_s),
            ("quantize_static (onnxruntime)", ort_accuracy(static), static_s)]
    brevitas = brevitas_w8a8(model, xtr, xte, yte, calibration)
    rows.append(("brevitas PTQ (torch)", *brevitas[:2]) if brevitas
                else ("brevitas PTQ: not installed", float("nan"), None))
    print(f"digits CNN, {len(xte)} test images, calibration {calibration} x {BATCH} training images")
    for name, acc, seconds in rows:
        print(f"  {name:32s} {acc:6.2f}%   quantize {'' if seconds is None else f'{seconds:.3f} s'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--calibration", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="112x112 images, sequence 32")
    args = parser.parse_args()
    torch.set_num_threads(1)
    np.random.seed(0)
    digits_table(args.calibration)
    latency_table(args.runs, args.calibration, args.quick)


if __name__ == "__main__":
    main()
