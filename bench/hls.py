"""target hls against hls4ml: the trained digits CNN (conv 8, conv 16, pool, linear) and a wider one.

For each model and tool, in a fresh process each (so g++ caches and peak memory are its own):
convert seconds, g++ seconds and peak resident MB of the largest compiler process, C simulation
seconds for the 360 test images (the best of up to 5 runs within 10 s, for both tools), accuracy, and the
largest error of the logits against the float model. nnforge's design (default target hls: w8a8, the fastest folding on a ZU7EV) is also checked
bit for bit against the interpreter on its integer graph; hls4ml runs its default precision
(ap_fixed<16,6>, reuse factor 1) with io_stream and io_parallel.

    python bench/hls.py [--wide 10] [--epochs 10] [--skip-hls4ml] [--quick]

--quick skips hls4ml's io_parallel build of the wide model (minutes of g++).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_quant_accuracy import digits_data, fit_digits  # noqa: E402


class DigitsCNN(nn.Module):
    """conv 8 -> conv 16 -> 2x2 max pool -> linear 10, all widths times `width`."""

    def __init__(self, width: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8 * width, 3, padding=1)
        self.conv2 = nn.Conv2d(8 * width, 16 * width, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * width * 4 * 4, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        return self.fc(torch.flatten(x, 1))


def train(width: int, epochs: int) -> DigitsCNN:
    torch.manual_seed(0)
    return fit_digits(DigitsCNN(width), epochs)


def scores(logits: np.ndarray, model: nn.Module) -> dict:
    _, _, xte, yte = digits_data()
    with torch.no_grad():
        ref = model(xte).numpy()
    return {"accuracy": float((logits.argmax(1) == yte.numpy()).mean() * 100),
            "max_error": float(np.abs(logits - ref).max())}


def best_time(run, budget: float = 20.0, runs: int = 5):
    """(result, fastest seconds) of up to `runs` runs, stopping once they have taken half the budget."""
    times, result = [], None
    while len(times) < runs and sum(times) < budget / 2:
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return result, min(times)


def run_nnforge(model: nn.Module) -> dict:
    from compiler import compile
    from compiler.interpreter import interpret
    xtr, _, xte, _ = digits_data()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NNFORGE_HLS_CACHE"] = tmp
        start = time.perf_counter()
        artifact = compile(model, (xte[:1],), target="hls", calibration_data=xtr[:512],
                           output=Path(tmp) / "design").artifact
        total = time.perf_counter() - start
        build = artifact.info["csim_build"]
        (logits,), csim = best_time(lambda: artifact.run(xte))
        graph = artifact.obj.graph
        ref = torch.cat([interpret(graph, xte[i:i + 1])[0] for i in range(len(xte))])
    return {"convert_s": total - build["seconds"], "gxx_s": build["seconds"], "gxx_mb": build["peak_rss_mb"],
            "csim_s": csim, "estimate_s": artifact.info["estimate_seconds"], "bit_exact": bool(torch.equal(ref, logits)),
            "fps": artifact.info["folding"]["fps"], "dsp": artifact.info["totals"]["DSP"],
            **scores(logits.numpy(), model)}


def run_hls4ml(model: nn.Module, io_type: str) -> dict:
    import resource
    import hls4ml
    _, _, xte, _ = digits_data()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        config = hls4ml.utils.config_from_pytorch_model(model, input_shape=(1, 8, 8), granularity="model")
        hls_model = hls4ml.converters.convert_from_pytorch_model(model, hls_config=config, output_dir=tmp,
                                                                 backend="Vivado", io_type=io_type)
        convert = time.perf_counter() - start
        start = time.perf_counter()
        hls_model.compile()
        gxx = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        x = np.ascontiguousarray(xte.numpy())
        logits, csim = best_time(lambda: np.asarray(hls_model.predict(x)).reshape(len(x), -1))
    return {"convert_s": convert, "gxx_s": gxx, "gxx_mb": peak, "csim_s": csim, **scores(logits, model)}


def worker(args) -> None:
    model = DigitsCNN(args.width)
    model.load_state_dict(torch.load(args.weights, weights_only=True))
    model.eval()
    torch.set_num_threads(1)
    result = run_nnforge(model) if args.tool == "nnforge" else run_hls4ml(model, args.tool.split(":")[1])
    print(json.dumps(result))


def measure(tool: str, width: int, weights: Path) -> dict:
    cmd = [sys.executable, __file__, "--worker", tool, "--width", str(width), "--weights", str(weights)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(rows: list[tuple[str, str, dict]]) -> None:
    print(f"{'model':8s} {'tool':22s} {'convert s':>9s} {'g++ s':>7s} {'g++ MB':>7s} {'C-sim s':>8s} "
          f"{'accuracy':>8s} {'max err':>8s}  notes")
    for model, tool, r in rows:
        if "error" in r:
            print(f"{model:8s} {tool:22s} failed: {r['error']}")
            continue
        notes = f"bit-exact={r['bit_exact']}, estimate {r['estimate_s']:.3f} s, {r['fps']:,.0f} fps, " \
                f"{r['dsp']} DSP" if "bit_exact" in r else ""
        print(f"{model:8s} {tool:22s} {r['convert_s']:9.3f} {r['gxx_s']:7.2f} {r['gxx_mb']:7.0f} {r['csim_s']:8.3f} "
              f"{r['accuracy']:7.2f}% {r['max_error']:8.4f}  {notes}")


def ratios(results: dict) -> None:
    def get(model, tool, key):
        r = results.get((model, tool), {})
        return r.get(key)
    checks = [
        ("g++ time, small: nnforge / hls4ml io_stream", get("small", "nnforge", "gxx_s"),
         get("small", "hls4ml io_stream", "gxx_s"), lambda a, b: a <= b, "<= 1x"),
        ("g++ time, wide: hls4ml io_parallel / nnforge", get("wide", "hls4ml io_parallel", "gxx_s"),
         get("wide", "nnforge", "gxx_s"), lambda a, b: a >= 5 * b, ">= 5x"),
        ("C-sim 360 images, small: hls4ml io_stream / nnforge", get("small", "hls4ml io_stream", "csim_s"),
         get("small", "nnforge", "csim_s"), lambda a, b: a >= 100 * b, ">= 100x"),
        ("C-sim 360 images, wide: hls4ml io_stream / nnforge", get("wide", "hls4ml io_stream", "csim_s"),
         get("wide", "nnforge", "csim_s"), lambda a, b: a >= 100 * b, ">= 100x"),
    ]
    for name, a, b, ok, target in checks:
        if a is None or b is None:
            continue
        ratio = a / b if name.startswith(("C-sim", "g++ time, wide")) else a / b
        print(f"{name}: {ratio:.2f}x (target {target}) {'OK' if ok(a, b) else 'MISSED'}")
    for model in ("small", "wide"):
        r = results.get((model, "nnforge"), {})
        if "bit_exact" in r:
            print(f"{model}: bit-exact against the integer interpreter: {r['bit_exact']}; "
                  f"estimates for every stage in {r['estimate_s']:.3f} s (target < 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wide", type=int, default=10, help="width multiplier of the wide model")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--skip-hls4ml", action="store_true")
    parser.add_argument("--quick", action="store_true", help="skip hls4ml io_parallel on the wide model")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--width", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--weights", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.tool = args.worker
        worker(args)
        return
    try:
        import hls4ml  # noqa: F401
        have_hls4ml = not args.skip_hls4ml
    except ImportError:
        print("hls4ml is not installed (pip install '.[bench]'): nnforge only")
        have_hls4ml = False
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs; digits: 360 test images")
    results: dict = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_name, width in (("small", 1), ("wide", args.wide)):
            model = train(width, args.epochs)
            params = sum(p.numel() for p in model.parameters())
            _, _, xte, yte = digits_data()
            with torch.no_grad():
                float_accuracy = float((model(xte).argmax(1) == yte).float().mean() * 100)
            print(f"{model_name}: width x{width}, {params:,} parameters, trained {args.epochs} epochs, "
                  f"float accuracy {float_accuracy:.2f}%")
            weights = Path(tmp) / f"{model_name}.pt"
            torch.save(model.state_dict(), weights)
            tools = ["nnforge"]
            if have_hls4ml:
                tools += ["hls4ml:io_stream"]
                if not (args.quick and model_name == "wide"):
                    tools += ["hls4ml:io_parallel"]
            for tool in tools:
                label = tool.replace(":", " ")
                results[(model_name, label)] = measure(tool, width, weights)
                rows.append((model_name, label, results[(model_name, label)]))
    print()
    report(rows)
    print()
    ratios(results)


if __name__ == "__main__":
    main()
