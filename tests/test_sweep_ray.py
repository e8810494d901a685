"""Sweeps on Ray: points as tasks on a local Ray instance (2 CPUs), the cache, retried workers,
and an unreachable cluster."""
from pathlib import Path

import pytest

from compiler.cli import main
from compiler.costs import CostSettings
from compiler.sweep import run_sweep
from tests.models.sweep_models import tiny, write_eval

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'nnforge[ray]'), so the Ray executor "
                                        "is not tested")
ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "models" / "sweep_models.py") + ":tiny"


def test_an_unreachable_cluster_is_one_message(tmp_path, capsys):
    # first in the file: later tests connect to a local instance, which a run would then reuse
    assert not ray.is_initialized()
    code = main(["sweep", TINY, "--pipeline", "fold-bn", "-o", str(tmp_path / "out"), "--executor", "ray",
                 "--address", "127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the Ray cluster at 127.0.0.1:9" in err and "ray start --head" in err


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def sweep(folder: Path, spec: str, evaluate: str):
    model, inputs = tiny()
    return run_sweep(model, spec, folder / "out", example_inputs=inputs, evaluate=evaluate, executor="ray",
                     settings=CostSettings(runs=3))


def test_points_run_as_ray_tasks_and_a_rerun_uses_the_cache(local_ray, tmp_path):
    spec = "fold-bn\nquantize{weights=sweep[int8, int4], activations=none}\ntarget onnx{opset=21}"
    result = sweep(tmp_path, spec, write_eval(tmp_path))
    assert result.computed == 2 and [r["status"] for r in result.rows] == ["ok", "ok"]
    assert all(r["onnx.latency_s"] > 0 and r["accuracy"] > 0 for r in result.rows)
    assert (tmp_path / "out" / result.rows[0]["folder"] / "model.onnx").is_file()  # artifacts came back as bytes
    again = sweep(tmp_path, spec, str(tmp_path / "evaluate.py") + ":evaluate")
    assert again.computed == 0 and again.rows == result.rows


def test_a_task_whose_worker_dies_is_retried(local_ray, tmp_path):
    once = "marker = Path(__file__).with_name('died')\nif not marker.exists():\n    marker.touch()\n    os._exit(3)\n" \
           "return 1.0"
    result = sweep(tmp_path, "fold-bn", write_eval(tmp_path, once))
    assert (tmp_path / "died").exists() and result.rows[0]["status"] == "ok"
