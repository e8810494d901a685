"""Crossbar target side by side with aihwkit (where it runs), on the same models and data.

1. ResNet-50 at 224: map + one noisy inference (ReRAM preset): seconds and peak memory against
   the weight bytes; aihwkit: convert_to_analog + program + one inference with its PCM model.
2. digits CNN (scikit-learn's digits, trained here): map + one noisy inference, and accuracy under
   the PCM preset at t = 1 s, 1 h, 1 day with and without global drift compensation (mean over
   seeds), against aihwkit's PCMLikeNoiseModel at the same times.
3. A BERT-base-sized encoder (12 x 768, seq 128): map without running out of memory, and one
   noisy inference.
4. Random-weight networks on digits: edge-popup mask training and readout training on fixed
   random ReRAM conductances against the same network trained normally.
5. Sparsity-aware placement on a ResNet-18 with zeroed input channels; 6. (--images) the digits
   CNN's estimate table, tile map and energy breakdown.

    python bench/crossbar.py [--quick] [--images docs/images] [--aihwkit-python /path/to/python]

aihwkit 1.1.0 (the newest wheel for this Python) runs here only as TorchInferenceRPUConfig (its
C++ tiles fail with torch 2.13: "weights must be a CPU tensor"), and `pip install aihwkit` replaces
torch, so it is not in an extra: install it with `pip install --no-deps aihwkit==1.1.0` in a
virtualenv made with --system-site-packages and pass that interpreter as --aihwkit-python.
Each measurement runs in a fresh process, so its peak memory (ru_maxrss) is its own. Timings are
from one run on a shared machine: compare the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TIMES = {"1 s": 1.0, "1 h": 3600.0, "1 day": 86400.0}
SEEDS = (0, 1, 2)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _trained_digits():
    from tests.test_quant_accuracy import BATCH, digits_data, train_digits_cnn
    xtr, ytr, xte, yte = digits_data()
    return train_digits_cnn(), BATCH, xte, yte


def _accuracy(run, x, y, batch) -> float:
    correct = sum(int((run(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return 100.0 * correct / len(x)


# ---- child measurements (one per process) -------------------------------------------------------
def child_resnet50_nnforge(precision: str) -> dict:
    from backends.crossbar import CrossbarBackend
    from compiler.frontend import import_model
    from tests.zoo import build
    zoo = build("resnet50", input_size=224)
    graph = import_model(zoo.module, zoo.example_inputs, None)
    weight_mb = sum(v.data.numel() * v.data.element_size() for v in graph.weights.values()) / 2 ** 20
    base, start = _rss_mb(), time.perf_counter()
    artifact = CrossbarBackend(device="reram", precision=precision).lower(graph, None)
    mapped = time.perf_counter()
    artifact.run(*zoo.example_inputs)
    done = time.perf_counter()
    return {"map_s": mapped - start, "sim_s": done - mapped, "peak_mb": _rss_mb() - base, "weight_mb": weight_mb,
            "tiles": artifact.info["tiles"], "energy_mj": artifact.info["energy_j"] * 1e3,
            "latency_ms": artifact.info["latency_s"] * 1e3, "area_mm2": artifact.info["area_mm2"]}


def _aihwkit_config(drift_compensation: bool):
    from aihwkit.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from aihwkit.simulator.configs import TorchInferenceRPUConfig
    config = TorchInferenceRPUConfig()
    config.noise_model = PCMLikeNoiseModel(g_max=25.0)
    config.drift_compensation = GlobalDriftCompensation() if drift_compensation else None
    return config


def child_resnet50_aihwkit() -> dict:
    from aihwkit.nn.conversion import convert_to_analog
    from tests.zoo import build
    zoo = build("resnet50", input_size=224)
    base, start = _rss_mb(), time.perf_counter()
    analog = convert_to_analog(zoo.module, _aihwkit_config(True)).eval()
    converted = time.perf_counter()
    with torch.no_grad():
        analog.program_analog_weights()
        analog.drift_analog_weights(1.0)
        analog(*zoo.example_inputs)
    done = time.perf_counter()
    return {"map_s": converted - start, "sim_s": done - converted, "peak_mb": _rss_mb() - base}


def child_digits_nnforge() -> dict:
    from compiler import compile
    from compiler.interpreter import interpret
    model, batch, x, y = _trained_digits()
    float_acc = _accuracy(lambda b: model(b), x, y, batch)
    pipeline = "fold-bn,quantize{weights=int8,activations=int8,act-granularity=tensor}"
    result = compile(model, (x[:batch],), pipeline, calibration_data=x[:160])
    graph = result.graph
    out = {"float": float_acc, "int8 fake-quant": _accuracy(lambda b: interpret(graph, b)[0], x, y, batch)}
    from backends.crossbar import CrossbarBackend
    start = time.perf_counter()
    artifact = CrossbarBackend(device="ideal", adc_bits=0).lower(graph, None)
    out["ideal crossbar"] = _accuracy(lambda b: artifact.run(b)[0], x, y, batch)
    out["map_s"] = time.perf_counter() - start
    start = time.perf_counter()
    noisy = CrossbarBackend(device="pcm", time=1.0).lower(graph, None)
    noisy.run(x[:batch])
    out["map_sim_s"] = time.perf_counter() - start
    for label, t in TIMES.items():
        for comp in (False, True):
            accs = [_accuracy(lambda b: CrossbarBackend(device="pcm", time=t, drift_compensation=comp, seed=s)
                              .lower(graph, None).run(b)[0], x, y, batch) for s in SEEDS]
            out[f"pcm {label}{' +gdc' if comp else ''}"] = (min(accs), sum(accs) / len(accs), max(accs))
    return out


def child_digits_aihwkit() -> dict:
    from aihwkit.nn.conversion import convert_to_analog
    model, batch, x, y = _trained_digits()
    out = {}
    start = time.perf_counter()
    analog = convert_to_analog(model, _aihwkit_config(False)).eval()
    with torch.no_grad():
        analog.program_analog_weights()
        analog.drift_analog_weights(1.0)
        analog(x[:batch])
    out["map_sim_s"] = time.perf_counter() - start
    for label, t in TIMES.items():
        for comp in (False, True):
            accs = []
            for seed in SEEDS:
                torch.manual_seed(seed)
                analog = convert_to_analog(model, _aihwkit_config(comp)).eval()
                with torch.no_grad():
                    analog.program_analog_weights()
                    analog.drift_analog_weights(t)
                    accs.append(_accuracy(lambda b: analog(b), x, y, batch))
            out[f"pcm {label}{' +gdc' if comp else ''}"] = (min(accs), sum(accs) / len(accs), max(accs))
    return out


def child_bert(quick: bool) -> dict:
    from backends.crossbar import CrossbarBackend
    from compiler.frontend import import_model
    from tests.zoo import build
    layers, hidden, seq = (4, 768, 32) if quick else (12, 768, 128)
    zoo = build("bert", vocab_size=30522, hidden=hidden, num_layers=layers, num_heads=12, intermediate=4 * hidden,
                max_position=512, batch=1, seq_len=seq)
    graph = import_model(zoo.module, zoo.example_inputs, None)
    weight_mb = sum(v.data.numel() * v.data.element_size() for v in graph.weights.values()) / 2 ** 20
    base, start = _rss_mb(), time.perf_counter()
    artifact = CrossbarBackend(device="reram", precision="bfloat16").lower(graph, None)
    mapped = time.perf_counter()
    artifact.run(*zoo.example_inputs)
    return {"layers": layers, "seq": seq, "map_s": mapped - start, "sim_s": time.perf_counter() - mapped,
            "peak_mb": _rss_mb() - base, "weight_mb": weight_mb, "tiles": artifact.info["tiles"],
            "mapped_layers": artifact.info["mapped_layers"]}


def child_random_weights(quick: bool) -> dict:
    from torch import nn
    from backends.crossbar.random_weights import RandomConductanceNetwork
    from compiler import compile
    from tests.test_quant_accuracy import digits_data

    class DigitsNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1)
            self.fc1, self.fc2 = nn.Linear(64 * 16, 128), nn.Linear(128, 10)

        def forward(self, x):
            x = nn.functional.max_pool2d(torch.relu(self.conv2(torch.relu(self.conv1(x)))), 2)
            return self.fc2(torch.relu(self.fc1(x.flatten(1))))

    xtr, ytr, xte, yte = digits_data()
    torch.manual_seed(0)
    model = DigitsNet()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(12):
        order = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xtr[order[i:i + 64]]), ytr[order[i:i + 64]]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        normal = 100.0 * float((model(xte).argmax(1) == yte).float().mean())
    graph = compile(DigitsNet().eval(), (xtr[:64],), "dce").graph
    epochs = 8 if quick else 20
    start = time.perf_counter()
    masked = RandomConductanceNetwork(graph, "reram", seed=0, keep=0.5)
    masked.train_masks(xtr, ytr, epochs=epochs, lr=0.2)
    mask_s = time.perf_counter() - start
    readout = RandomConductanceNetwork(graph, "reram", seed=0)
    readout.train_readout(xtr, ytr)
    return {"normal": normal, "mask": masked.accuracy(xte, yte), "readout": readout.accuracy(xte, yte, masked=False),
            "epochs": epochs, "mask_s": mask_s, "resets": len(masked.reset_list())}


def child_sparsity() -> dict:
    """ResNet-18 with the weakest half of each conv's input channels zeroed (not removed), as
    unshrunk channel pruning or SIMD-structured sparsity leave them: cells and tiles saved."""
    from backends.crossbar import CrossbarBackend
    from compiler.frontend import import_model
    from tests.zoo import build
    zoo = build("resnet18", input_size=224, batch=1)
    with torch.no_grad():
        for module in zoo.module.modules():
            if isinstance(module, torch.nn.Conv2d) and module.in_channels > 3:
                norms = module.weight.abs().sum(dim=(0, 2, 3))
                module.weight[:, norms.argsort()[:module.in_channels // 2]] = 0
    graph = import_model(zoo.module, zoo.example_inputs, None)
    sparse = CrossbarBackend(device="ideal").lower(graph, None)
    dense = CrossbarBackend(device="ideal", sparse=False).lower(graph, None)
    exact = [CrossbarBackend(device="ideal", adc_bits=0, sparse=flag).lower(graph, None).run(*zoo.example_inputs)[0]
             for flag in (True, False)]   # an ADC step follows a tile's used rows: compare at an ideal ADC
    same = bool(torch.equal(*exact))
    return {"tiles": sparse.info["tiles"], "dense_tiles": dense.info["tiles"], "cells": sparse.info["cells"],
            "dense_cells": dense.info["cells"], "same_outputs": same,
            "energy_ratio": sparse.info["energy_j"] / dense.info["energy_j"]}


def child_images(folder: str) -> dict:
    import shutil
    import tempfile
    from backends.crossbar import CrossbarBackend
    from compiler import compile
    model, batch, x, _ = _trained_digits()
    pipeline = "fold-bn,quantize{weights=int8,activations=int8,act-granularity=tensor}"
    graph = compile(model, (x[:batch],), pipeline, calibration_data=x[:160]).graph
    with tempfile.TemporaryDirectory() as tmp:
        artifact = CrossbarBackend(rows=128, cols=128, device="pcm").lower(graph, Path(tmp) / "digits")
        for name, target in (("tile_map.png", "crossbar_tile_map.png"), ("energy.png", "crossbar_energy.png")):
            shutil.copy(Path(tmp) / "digits" / name, Path(folder) / target)
        return {"table": artifact.obj.table(), "summary": artifact.info}


CHILDREN = {"resnet50_nnforge": child_resnet50_nnforge, "resnet50_aihwkit": child_resnet50_aihwkit,
            "digits_nnforge": child_digits_nnforge, "digits_aihwkit": child_digits_aihwkit, "bert": child_bert,
            "random_weights": child_random_weights, "sparsity": child_sparsity, "images": child_images}


# ---- the parent: run each child in its own process and print ------------------------------------
def run_child(python: str, name: str, *args: str) -> dict | None:
    proc = subprocess.run([python, __file__, "--child", name, *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        print(f"  {name} failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _aihwkit_python(given: str | None) -> str | None:
    for python in ([given] if given else [sys.executable]):
        if subprocess.run([python, "-c", "import aihwkit"], capture_output=True).returncode == 0:
            return python
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller BERT and fewer mask epochs")
    parser.add_argument("--images", default=None, help="folder for the digits CNN tile map and energy PNGs")
    parser.add_argument("--aihwkit-python", default=None, help="an interpreter with aihwkit installed")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fn = CHILDREN[args.child]
        extra = {"bert": [bool(args.rest and args.rest[0] == "1")], "random_weights": [bool(args.rest and args.rest[0] == "1")],
                 "resnet50_nnforge": args.rest[:1], "images": args.rest[:1]}.get(args.child, [])
        print(json.dumps(fn(*extra)))
        return
    me, peer = sys.executable, _aihwkit_python(args.aihwkit_python)
    quick = "1" if args.quick else "0"
    print(f"aihwkit: {'found at ' + peer if peer else 'not installed (see the docstring); nnforge only'}")

    print("\n1. ResNet-50 at 224, map + one noisy inference (1 image)")
    weight = None
    for label, result in (("nnforge float32", run_child(me, "resnet50_nnforge", "float32")),
                          ("nnforge bfloat16", run_child(me, "resnet50_nnforge", "bfloat16")),
                          ("aihwkit", run_child(peer, "resnet50_aihwkit") if peer else None)):
        if result:
            weight = result.get("weight_mb", weight)
            ratio = f" ({result['peak_mb'] / weight:.2f}x weights)" if weight else ""
            print(f"  {label:<17} map {result['map_s']:6.2f} s  sim {result['sim_s']:6.2f} s  "
                  f"total {result['map_s'] + result['sim_s']:6.2f} s  peak +{result['peak_mb']:.0f} MB{ratio}")
            if "tiles" in result:
                print(f"  {'':<17} {result['tiles']} tiles, {result['energy_mj']:.2f} mJ, {result['latency_ms']:.2f} ms, "
                      f"{result['area_mm2']:.1f} mm^2 per image")
    print(f"  weights: {weight:.0f} MB" if weight else "")

    print("\n2. digits CNN under PCM (accuracy %, 360 test images; min / mean / max over 3 seeds)")
    ours = run_child(me, "digits_nnforge")
    theirs = run_child(peer, "digits_aihwkit") if peer else None
    if ours:
        print(f"  float {ours['float']:.1f}, int8 fake-quant {ours['int8 fake-quant']:.1f}, "
              f"ideal crossbar {ours['ideal crossbar']:.1f}; map + one noisy batch {ours['map_sim_s']:.2f} s"
              + (f" (aihwkit {theirs['map_sim_s']:.2f} s)" if theirs else ""))
        print(f"  {'condition':<18} {'nnforge crossbar':>20} {'aihwkit':>20}")
        for key in [k for k in ours if k.startswith("pcm")]:
            fmt = lambda v: f"{v[0]:.1f} / {v[1]:.1f} / {v[2]:.1f}" if v else "-"
            print(f"  {key:<18} {fmt(ours[key]):>20} {fmt(theirs.get(key) if theirs else None):>20}")

    print("\n3. BERT-base-sized encoder")
    bert = run_child(me, "bert", quick)
    if bert:
        print(f"  {bert['layers']} layers x 768, seq {bert['seq']}: {bert['mapped_layers']} layers on {bert['tiles']} tiles, "
              f"map {bert['map_s']:.1f} s, one noisy inference {bert['sim_s']:.1f} s, peak +{bert['peak_mb']:.0f} MB "
              f"({bert['weight_mb']:.0f} MB of weights)")

    print("\n4. random-weight networks on digits (fixed random ReRAM conductances)")
    rw = run_child(me, "random_weights", quick)
    if rw:
        print(f"  normal training {rw['normal']:.1f}%, edge-popup mask ({rw['epochs']} epochs, {rw['mask_s']:.1f} s) "
              f"{rw['mask']:.1f}%, readout only {rw['readout']:.1f}%; {rw['resets']} pairs to RESET")

    print("\n5. sparsity-aware placement: ResNet-18 at 224, half of each conv's input channels zero")
    sp = run_child(me, "sparsity")
    if sp:
        print(f"  tiles {sp['dense_tiles']} -> {sp['tiles']}, cells {sp['dense_cells'] / 1e6:.1f}M -> "
              f"{sp['cells'] / 1e6:.1f}M, energy x{sp['energy_ratio']:.2f}, identical outputs: {sp['same_outputs']}")

    if args.images:
        Path(args.images).mkdir(parents=True, exist_ok=True)
        images = run_child(me, "images", args.images)
        if images:
            print(f"\n6. digits CNN on 128 x 128 PCM tiles (PNGs in {args.images})\n{images['table']}")


if __name__ == "__main__":
    main()
