"""Sweeps on local worker processes: the table, the point cache, failures that do not stop the
sweep, and `nnforge sweep`."""
import csv
import json
import shutil
import sys
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.sweep import run_sweep
from compiler.sweep.pareto import HIGHER, LOWER, Axis, pareto
from tests.models.sweep_models import tiny, write_eval

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "models" / "sweep_models.py") + ":tiny"
SPEC = "fold-bn\nprune{ratio=sweep[0.25, 0.5]}\nquantize{weights=sweep[int8, int4], activations=none}\n" \
       "target onnx{opset=21}\ntarget pytorch"
DRIFT = """
data = np.load(Path(__file__).with_name("data.npz"))
if np.abs(predict(data["x"]).numpy() - data["logits"]).max() > 1e-3:
    {action}
return 100.0
"""


def sweep(tmp_path, spec=SPEC, out="out", **options):
    model, inputs = tiny()
    options.setdefault("workers", 2)
    options.setdefault("settings", __import__("compiler.costs", fromlist=["CostSettings"]).CostSettings(runs=3))
    return run_sweep(model, spec, tmp_path / out, example_inputs=inputs, **options)


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    return folder, sweep(folder, evaluate=write_eval(folder))


def test_one_row_per_point_with_every_option_and_metric(first):
    folder, result = first
    assert [r["status"] for r in result.rows] == ["ok"] * 4
    with open(result.paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    header = list(rows[0])
    for column in ("prune.ratio", "quantize.weights", "quantize.activations", "parameters", "weight_bits", "accuracy",
                   "onnx.latency_s", "onnx.accuracy", "pytorch.latency_s", "folder"):
        assert column in header, column
    assert header.index("prune.ratio") < header.index("parameters") < header.index("onnx.latency_s")
    by_ratio = {r["label"]: r for r in result.rows}
    assert by_ratio["prune.ratio=0.5 quantize.weights=int4"]["weight_bits"] < \
        by_ratio["prune.ratio=0.25 quantize.weights=int8"]["weight_bits"]
    data = json.loads(result.paths["json"].read_text())
    assert {f["title"] for f in data["fronts"]} >= {"accuracy vs model size", "onnx: accuracy vs throughput"}
    point = folder / "out" / result.rows[0]["folder"]
    for name in ("model.onnx", "pytorch/model.py", "costs.json", "report.json", "result.json"):
        assert (point / name).is_file(), name


def test_a_rerun_computes_nothing_and_an_interrupted_sweep_resumes(first, tmp_path):
    folder, result = first
    spec = str(folder / "evaluate.py") + ":evaluate"
    copy = tmp_path / "out"
    shutil.copytree(folder / "out", copy)
    again = sweep(tmp_path, evaluate=spec)
    assert again.computed == 0 and again.rows == result.rows
    shutil.rmtree(copy / result.rows[2]["folder"])  # as if stopped before this point finished
    (copy / "points" / ".deadbeef.tmp-1").mkdir()  # a half-written point of a killed run
    resumed = sweep(tmp_path, evaluate=spec)
    assert resumed.computed == 1 and [r["status"] for r in resumed.rows] == ["ok"] * 4


def test_editing_the_evaluation_file_evaluates_every_point_again(first, tmp_path):
    folder, _ = first
    shutil.copytree(folder / "out", tmp_path / "out")
    spec = write_eval(tmp_path, "return 42.0")
    again = sweep(tmp_path, evaluate=spec)
    assert again.computed == 4 and {r["accuracy"] for r in again.rows} == {42.0}


def test_failing_points_are_recorded_and_the_sweep_goes_on(tmp_path):
    spec = write_eval(tmp_path, DRIFT.replace("{action}", "raise RuntimeError('outputs drifted')"))
    result = sweep(tmp_path, "fold-bn\n---\nquantize{weights=int4, activations=none}\ntarget onnx{opset=21}",
                   evaluate=spec)
    by_label = {r["label"]: r for r in result.rows}
    assert by_label["fold-bn"]["status"] == "ok" and by_label["fold-bn"]["accuracy"] == 100.0
    failed = by_label["quantize{weights=int4,activations=none}"]
    assert failed["status"] == "failed"
    assert "evaluate' raised RuntimeError: outputs drifted" in failed["error"]
    assert "outputs drifted" in result.paths["html"].read_text()


def test_a_target_that_cannot_carry_a_point_leaves_the_others_columns(tmp_path):
    result = sweep(tmp_path, "quantize{weights=sweep[int8, int4], activations=none}\ntarget onnx{opset=17}\ntarget pytorch")
    int8, int4 = result.rows
    assert int8["status"] == "ok"
    assert int4["status"] == "partial" and "target onnx: cannot lower to ONNX opset 17: int4 needs opset 21" in int4["error"]
    assert int4["pytorch.latency_s"] > 0 and "onnx.latency_s" not in int4


def test_a_worker_that_dies_is_retried_and_one_that_always_dies_is_reported(tmp_path):
    once = "marker = Path(__file__).with_name('died')\nif not marker.exists():\n    marker.touch()\n    os._exit(3)\n" \
           "return 1.0"
    result = sweep(tmp_path, "fold-bn\n---\ndce", evaluate=write_eval(tmp_path, once))
    assert [r["status"] for r in result.rows] == ["ok", "ok"] and max(r["attempts"] for r in result.rows) == 2
    always = write_eval(tmp_path, DRIFT.replace("{action}", "os._exit(3)"))
    result = sweep(tmp_path, "fold-bn\n---\nquantize{weights=int4,activations=none}", "again", evaluate=always)
    ok, crashed = result.rows
    assert ok["status"] == "ok" and crashed["status"] == "crashed" and crashed["attempts"] == 3
    assert "worker process died 3 times" in crashed["error"]
    assert not (tmp_path / "again" / crashed["folder"]).exists()  # not cached: the next run tries again


def test_pareto_keeps_the_points_nothing_beats():
    rows = [{"size": 10, "acc": 90}, {"size": 5, "acc": 80}, {"size": 8, "acc": 70}, {"size": 20, "acc": 90},
            {"size": 3, "acc": None}, {"size": 4, "acc": 60}]
    assert pareto(rows, Axis("size", LOWER, ""), Axis("acc", HIGHER, "")) == (5, 1, 0)
    assert pareto(rows, Axis("size", HIGHER, ""), Axis("acc", HIGHER, "")) == (3,)


def test_sweep_command_runs_points_and_prints_a_summary(tmp_path, capsys):
    spec = tmp_path / "sweep.nnf"
    spec.write_text("fold-bn\nquantize{weights=sweep[int8, int4], activations=int8}\n")
    code = main(["sweep", TINY, "--pipeline", str(spec), "--targets", "onnx{opset=21}", "-o", str(tmp_path / "out"),
                 "--eval", write_eval(tmp_path), "--calibration-data", str(_calibration(tmp_path)), "--runs", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "[2/2]" in err and "2 points: 2 ok (2 computed, 0 from earlier runs)" in out
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.parametrize("argv, message", [
    (["--pipeline", "quantize{weights=sweep[int8, int4]}"], "calibrates on input data, and no --calibration-data"),
    (["--pipeline", "prune{ratio=sweep[0.5, most]}"], "option 'ratio' expects float, got most"),
    (["--pipeline", "fold-bn", "--workers", "0"], "--workers must be at least 1"),
    (["--pipeline", "fold-bn", "--address", "localhost:6379"], "--address names a Ray cluster"),
])
def test_sweep_command_bad_input_is_one_message(tmp_path, capsys, argv, message):
    assert main(["sweep", TINY, "-o", str(tmp_path / "out"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_output_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "out").write_text("results")
    assert main(["sweep", TINY, "--pipeline", "fold-bn", "-o", str(tmp_path / "out")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_ray_requested_but_not_installed_names_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["sweep", TINY, "--pipeline", "fold-bn", "-o", str(tmp_path / "out"), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "--executor ray needs Ray, which is not installed" in err and "pip install 'nnforge[ray]'" in err


def _calibration(folder: Path) -> Path:
    import numpy as np

    path = folder / "calibration.npy"
    np.save(path, np.random.default_rng(0).normal(size=(8, 1, 8, 8)).astype("float32"))
    return path
