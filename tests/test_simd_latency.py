"""The latency model and latency-constrained allocation of `simd-sparsify`.

Latency between measured densities is linear; tables are measured once and read back from the
per-host cache; the grid solver finds the least importance removed that meets a budget (checked
against brute force), is never worse than one uniform density, and a budget below the reachable
minimum is an error that states the minimum. `nnforge sparsity-latency` prints the table and
plots a layer.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from compiler.api import compile
from compiler.cli import main
from compiler.errors import NNForgeError
from compiler.frontend import import_model
from passes.simd_sparsity import latency
from passes.simd_sparsity.allocate import BudgetError, LayerChoices, allocate, uniform
from passes.simd_sparsity.latency import LatencyModel, LatencyTable
from passes.simd_sparsity.report import kernel_layers


@pytest.fixture
def latency_cache(tmp_path, monkeypatch):
    """Latency tables in a fresh file (the kernel build stays in the user's cache)."""
    path = tmp_path / "latency.json"
    monkeypatch.setattr(latency, "default_path", lambda: path)
    return path


def small_cnn() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 1), nn.ReLU(),
                          nn.Conv2d(64, 32, 3, padding=1)).eval()
    return model, torch.randn(1, 32, 24, 24)


def test_latency_is_linear_between_measured_densities():
    table = LatencyTable((0.0, 0.5, 1.0), (0.2, 1.0, 2.2), dense_ms=1.5)
    assert table.kernel(0.25) == pytest.approx(0.6)
    assert table.kernel(0.75) == pytest.approx(1.6)
    assert table.layer(0.75) == pytest.approx(1.6) and table.layer(1.0) == 1.5  # dense runs torch's kernel


def test_tables_are_measured_once_and_cached_per_host(latency_cache, single_thread):
    model, x = small_cnn()
    layer = kernel_layers(import_model(model, (x,)), 8)[0]
    first = LatencyModel()
    table = first.table(layer, 8)
    assert table.densities == latency.DENSITIES and all(t > 0 for t in table.kernel_ms)
    assert table.kernel_ms[0] < table.kernel_ms[-1]  # fewer groups, less time
    first.save()
    again = LatencyModel(latency_cache)
    assert again.table(layer, 8) == table  # read back, not measured again
    assert not again._dirty


def brute_force(layers: list[LayerChoices], rest: float, budget: float) -> float:
    best = np.inf
    for picks in itertools.product(*(range(len(c.densities)) for c in layers)):
        time = rest + sum(c.latency_ms[j] for c, j in zip(layers, picks))
        if time <= budget:
            best = min(best, sum(c.removed[j] for c, j in zip(layers, picks)))
    return best


def test_the_grid_solver_is_optimal_and_meets_the_budget():
    rng = np.random.default_rng(0)
    grid = np.array([0.25, 0.5, 0.75, 1.0])
    for trial in range(20):
        layers = []
        for _ in range(4):
            speed = rng.uniform(0.5, 3.0)
            scores = np.sort(rng.gamma(rng.uniform(0.3, 3.0), size=64))
            removed = np.array([scores[:round((1 - d) * 64)].sum() for d in grid])
            layers.append(LayerChoices(grid, speed * (0.1 + grid * rng.uniform(0.8, 1.2, 4)), removed))
        rest = 0.3
        dense = rest + sum(c.latency_ms[-1] for c in layers)
        budget = dense * rng.uniform(0.35, 0.9)
        chosen = allocate(layers, rest, budget, dense, bins=20000)
        assert chosen.predicted_ms <= budget
        assert chosen.removed <= brute_force(layers, rest, budget) + 1e-9
        base = uniform(layers, rest, budget)
        assert base is None or chosen.removed <= base.removed + 1e-9


def test_a_budget_below_the_reachable_minimum_states_the_minimum():
    grid = np.array([0.5, 1.0])
    layers = [LayerChoices(grid, np.array([1.0, 2.0]), np.array([3.0, 0.0]))] * 2
    with pytest.raises(BudgetError, match=r"below what the sparsest allowed layers reach: 2.500 ms \(0.556 of"):
        allocate(layers, 0.5, 2.0, dense_ms=4.5)


def test_the_pass_meets_a_latency_budget_and_reports_the_uniform_baseline(latency_cache, single_thread, tmp_path):
    model, x = small_cnn()
    result = compile(model, (x,), "simd-sparsify{latency-budget=0.6,simd=8}")
    stats = result.report.passes[0].stats
    assert stats["latency.predicted_ms"] <= stats["latency.budget_ms"] == pytest.approx(0.6 * stats["latency.dense_ms"])
    assert stats["importance_removed"] <= stats["uniform.importance_removed"]
    assert 0 < stats["density"] < 1 and latency_cache.is_file()
    with pytest.raises(NNForgeError, match="below what the sparsest allowed layers reach"):
        compile(model, (x,), "simd-sparsify{latency-budget=0.01,simd=8}", reproducer_dir=tmp_path)


def test_cli_prints_the_latency_table_and_plots_a_layer(latency_cache, single_thread, tmp_path, capsys):
    model_file = tmp_path / "cnn.py"
    model_file.write_text("import torch\nfrom torch import nn\n\ndef build():\n"
                          "    return nn.Sequential(nn.Conv2d(8, 16, 3), nn.ReLU(), nn.Conv2d(16, 16, 1)).eval()\n")
    png = tmp_path / "layer.png"
    code = main(["sparsity-latency", f"{model_file}:build", "--input-shape", "1x8x12x12", "--simd", "8",
                 "--layer", "2", "--plot", str(png)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "d=0.25" in out and "dense ms" in out and out.count("\n2 ") == 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = main(["sparsity-latency", f"{model_file}:build", "--input-shape", "1x8x12x12", "--layer", "nope"])
    assert code == 2 and "no layer the sparse kernel runs matches 'nope'" in capsys.readouterr().err


def test_a_budget_on_a_zoo_cnn_imported_from_onnx(latency_cache, single_thread, tmp_path):
    from compiler.backend import get_backend
    from tests.zoo import build

    zoo = build("resnet18", batch=1, input_size=32)
    onnx_file = tmp_path / "resnet18.onnx"
    compile(zoo.module, zoo.example_inputs, target="onnx", output=onnx_file)
    result = compile(onnx_file, zoo.example_inputs, "fold-bn,simd-sparsify{latency-budget=0.7}",
                     target=get_backend("pytorch")(sparse_kernel=True), check_equivalence=True)
    stats = result.report.passes[-1].stats
    assert stats["latency.predicted_ms"] <= stats["latency.budget_ms"]
    assert stats["importance_removed"] <= stats.get("uniform.importance_removed", 1.0)
    assert any(k.startswith("density.") for k in stats)  # densities differ per layer
    assert result.report.artifacts[0]["max_rel_diff"] <= 1e-5
