"""Sweep executors: a 24-point sweep of the bundled digits CNN (4 pruning ratios x 3 weight formats
x 2 ONNX opsets), each point compiled, lowered, timed in onnxruntime and evaluated on the 360 test
images, run on 1 and 2 local worker processes and on Ray with 2 CPUs; then the same sweep again
over the first run's folder, where every point comes from the cache.

Prints per run the wall time of the points (the executor), the summed wall and CPU time of the
points, the executor's overhead per point ((points wall x workers - summed point wall) / points),
the share of its cores the run got (summed CPU / (points wall x workers): 1.0 on an idle machine),
the speed-up of 2 workers over 1, and the cached rerun's total as a share of the first run's.

    python bench/sweep.py            # best of 2 runs per executor
    python bench/sweep.py --quick    # one run each, no Ray
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compiler.costs import CostSettings  # noqa: E402
from compiler.model_loader import load_model  # noqa: E402
from compiler.sweep import run_sweep  # noqa: E402

SPEC = """
reparam
prune{ratio=sweep[0.1, 0.2, 0.3, 0.4]}
quantize{weights=sweep[int8, int4, fp4-e2m1], activations=int8}
dce
target onnx{opset=sweep[23, 24]}
"""


def one(model, inputs, calibration, out: Path, **executor) -> dict:
    result = run_sweep(model, SPEC, out, example_inputs=inputs, calibration_data=calibration,
                       evaluate=str(ROOT / "examples" / "digits_cnn.py") + ":evaluate", settings=CostSettings(),
                       **executor)
    assert not result.failed, [r["error"] for r in result.failed]
    compute = sum(r["seconds"] for r in result.rows)
    cpu = sum(r["cpu_seconds"] for r in result.rows)
    return {**result.seconds, "compute": compute, "cpu": cpu, "points_n": len(result.rows), "computed": result.computed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run per executor, no Ray")
    args = parser.parse_args()
    repeats = 1 if args.quick else 2
    loaded = load_model(str(ROOT / "examples" / "digits_cnn.py") + ":build")
    calibration = np.load(ROOT / "examples" / "digits_calibration.npy")
    runs: dict[str, tuple[int, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        warm = run_sweep(loaded.model, "reparam", root / "warm", example_inputs=loaded.example_inputs, workers=1)
        del warm  # the first capture in a process pays torch.export's start-up; not the executors' cost
        executors = [("local, 1 worker", 1, {"workers": 1}), ("local, 2 workers", 2, {"workers": 2})]
        if not args.quick:
            try:
                import ray
            except ImportError:
                print("ray: not installed (pip install 'nnforge[ray]'), Ray run skipped")
            else:
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                executors.append(("ray, 2 CPUs", 2, {"executor": "ray"}))
        for repeat in range(repeats):
            for name, workers, options in executors:
                out = root / f"{name}-{repeat}".replace(" ", "").replace(",", "-")
                timing = one(loaded.model, loaded.example_inputs, calibration, out, **options)
                if name not in runs or timing["points"] < runs[name][1]["points"]:
                    runs[name] = (workers, {**timing, "folder": out})
        first = runs["local, 1 worker"][1]
        cached = one(loaded.model, loaded.example_inputs, calibration, first["folder"], workers=1)
    print(f"sweep: 24 points (prune 4 x quantize 3 x onnx opset 2) of the digits CNN; torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, best of {repeats}; point = compile + lower + onnxruntime latency + accuracy")
    print(f"{'executor':18s} {'points s':>9s} {'point wall s':>13s} {'point CPU s':>12s} {'overhead/pt s':>14s} "
          f"{'core share':>11s} {'total s':>8s}")
    for name, (workers, t) in runs.items():
        overhead = (t["points"] * workers - t["compute"]) / t["points_n"]
        share = t["cpu"] / (t["points"] * workers)
        print(f"{name:18s} {t['points']:9.2f} {t['compute']:13.2f} {t['cpu']:12.2f} {overhead:14.3f} {share:11.2f} "
              f"{t['total']:8.2f}")
    one_worker, two_workers = runs["local, 1 worker"][1], runs["local, 2 workers"][1]
    speedup = one_worker["points"] / two_workers["points"]
    print(f"speed-up of 2 local workers over 1: {speedup:.2f}x (expect >= 1.6x on 2 idle cores); "
          f"in CPU time per wall second: {(two_workers['cpu'] / two_workers['points']) / (one_worker['cpu'] / one_worker['points']):.2f}x")
    if "ray, 2 CPUs" in runs:
        print(f"speed-up of Ray (2 CPUs) over 1 local worker: {one_worker['points'] / runs['ray, 2 CPUs'][1]['points']:.2f}x")
    share = cached["total"] / first["total"]
    print(f"cached rerun: {cached['computed']} points computed, {cached['total']:.2f} s total = "
          f"{100 * share:.1f}% of the first run's {first['total']:.2f} s (limit 5%) {'OK' if share < 0.05 else 'OVER'}")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"benchmark wall time {time.perf_counter() - start:.0f} s")
