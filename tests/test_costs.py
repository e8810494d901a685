"""The unified cost report: shared columns for every target, measured latency, evaluated accuracy,
and `nnforge report`."""
import json
from pathlib import Path

import pytest
import torch

from compiler import compile
from compiler.backend import Backend, get_backend
from compiler.cli import main
from compiler.costs import COLUMNS, CostSettings, check_section, cost_report, weight_bits
from compiler.evaluation import EvaluationError, load_evaluator, predictor
from compiler.interpreter import interpret
from tests.models.sweep_models import tiny, write_eval

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "tests" / "models" / "sweep_models.py") + ":tiny"
FAST = CostSettings(runs=3, warmup=1)


def test_weight_bits_count_quantized_weights_at_their_format():
    model, inputs = tiny()
    fp32 = compile(model, inputs, "fold-bn").graph
    int8 = compile(model, inputs, "fold-bn,quantize{weights=int8,activations=none}").graph
    floats = sum(v.type.numel for v in fp32.weights.values() if v.users)
    assert weight_bits(fp32) == 32 * floats
    weights = sum(v.type.numel for v in int8.weights.values() if v.users and v.name.endswith(".weight"))
    # int8 weights at 8 bits; biases and per-channel scales stay 32-bit
    assert weight_bits(int8) == weight_bits(fp32) - 24 * weights + 32 * (8 + 8 + 4)


def test_block_formats_count_their_shared_scales_once():
    model, inputs = tiny()
    graph = compile(model, inputs, "fold-bn,quantize{weights=mxfp4,activations=none}").graph
    plain = compile(model, inputs, "fold-bn").graph
    weights = sum(v.type.numel for v in plain.weights.values() if v.users and v.name.endswith(".weight"))
    assert weight_bits(graph) == weight_bits(plain) - weights * (32 - 4.25)


def test_every_target_reports_the_shared_columns_and_what_it_measures(tmp_path):
    model, inputs = tiny()
    evaluator = load_evaluator(write_eval(tmp_path))
    backends = [get_backend("onnx")(), get_backend("pytorch")()]
    result = compile(model, inputs, "fold-bn,quantize{weights=int8,activations=int8}", target=backends)
    report = cost_report(result.graph, backends, result.artifacts, evaluator, FAST)
    assert report.model["accuracy"] > 50 and report.model["basis"]["accuracy"].endswith("(nnforge interpreter)")
    for name, section in report.targets.items():
        for column in ("batch", "parameters", "macs", "weight_bits", "accuracy", "latency_s", "throughput_fps"):
            assert column in section, (name, column)
        assert section["latency_s"] > 0
        assert section["throughput_fps"] == pytest.approx(4 / section["latency_s"])
        assert section["basis"]["latency_s"].startswith("measured: ")
        assert section["parameters"] == report.model["parameters"]
    assert report.targets["onnx"]["basis"]["accuracy"].endswith("on onnxruntime")
    assert report.targets["pytorch"]["accuracy"] == report.model["accuracy"]  # bit-exact with the interpreter
    data = report.to_dict()
    assert set(data["columns"]) <= set(COLUMNS) and data["columns"]["latency_s"]["unit"] == "s"
    flat = report.flat()
    assert "onnx.latency_s" in flat and "onnx.parameters" not in flat  # shared counts appear once


def test_the_crossbar_target_reports_its_estimates_under_the_shared_columns():
    model, inputs = tiny()
    backend = get_backend("crossbar")()
    result = compile(model, inputs, "fold-bn,quantize{weights=int8,activations=int8}", target=backend)
    section = cost_report(result.graph, [backend], result.artifacts, None, FAST).targets["crossbar"]
    assert section["energy_j"] > 0 and section["tiles"] >= 1 and 0 < section["utilisation"] <= 1
    assert section["throughput_fps"] == pytest.approx(4 / section["latency_s"])
    assert section["basis"]["energy_j"].startswith("estimated: reram preset")


def test_the_hls_target_reports_its_estimates_under_the_shared_columns():
    model, inputs = tiny()
    backend = get_backend("hls")(simulate=False)
    calib = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    result = compile(model, inputs, "fold-bn,quantize{weights=int8,activations=uint8},integerize", target=backend,
                     calibration_data=calib)
    section = cost_report(result.graph, [backend], result.artifacts, None, FAST).targets["hls"]
    assert section["dsp"] > 0 and section["lut"] > 0 and section["part"] == "zu7ev"
    assert section["throughput_fps"] > 0 and section["latency_s"] > 0
    assert section["basis"]["dsp"].startswith("estimated: zu7ev at 200 MHz")


def test_a_model_onnxruntime_cannot_run_gets_no_latency_and_says_why():
    model, inputs = tiny()
    backend = get_backend("onnx")(opset=23)
    result = compile(model, inputs, "fold-bn,quantize{weights=fp4-e2m1,activations=none}", target=backend)
    section = cost_report(result.graph, [backend], result.artifacts, None, FAST).targets["onnx"]
    assert section["latency_s"] is None
    assert section["basis"]["latency_s"].startswith("not measured: onnxruntime cannot run this model")


def test_a_backend_without_measurements_adds_nothing_and_bad_sections_are_refused():
    assert Backend.costs(get_backend("pytorch")(), None, None, FAST) == {}
    with pytest.raises(TypeError, match="column 'tiles' is a list"):
        check_section(get_backend("onnx")(), {"tiles": [1, 2]})


def test_predict_takes_any_number_of_samples():
    model, inputs = tiny()
    graph = compile(model, inputs, "fold-bn").graph
    predict = predictor(lambda *xs: interpret(graph, *xs), graph)
    x = torch.randn(10, 1, 8, 8)  # two full batches of 4 and a padded one
    with torch.no_grad():
        torch.testing.assert_close(predict(x), model(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(EvaluationError, match=r"the graph takes \[N, 1, 8, 8\]"):
        predict(torch.randn(3, 8, 8))


def test_evaluation_errors_name_the_callable(tmp_path):
    model, inputs = tiny()
    graph = compile(model, inputs, "").graph
    run = lambda *xs: interpret(graph, *xs)  # noqa: E731
    raising = load_evaluator(write_eval(tmp_path, "raise ValueError('no labels here')"))
    with pytest.raises(EvaluationError, match=r"evaluate' raised ValueError: no labels here"):
        raising(run, graph)
    (tmp_path / "text.py").write_text("def evaluate(predict):\n    return 'good'\n")
    with pytest.raises(EvaluationError, match="returned accuracy='good'"):
        load_evaluator(f"{tmp_path / 'text.py'}:evaluate")(run, graph)
    with pytest.raises(EvaluationError, match="'.*text.py:score' not found"):
        load_evaluator(f"{tmp_path / 'text.py'}:score")
    with pytest.raises(Exception, match="evaluation file not found"):
        load_evaluator(f"{tmp_path / 'missing.py'}:evaluate")


def test_report_command_prints_one_table_for_every_target(tmp_path, capsys):
    spec = write_eval(tmp_path)
    code = main(["report", TINY, "--pipeline", "fold-bn,quantize{weights=int8,activations=int8}", "--targets", "onnx,pytorch",
                 "--eval", spec, "--calibration-data", str(_calibration(tmp_path)), "-o", str(tmp_path / "out"),
                 "--runs", "3", "--check-equivalence"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "costs" in out and "latency s" in out and "accuracy" in out
    assert "onnx latency_s, throughput_fps: measured: onnxruntime" in out
    data = json.loads((tmp_path / "out" / "costs.json").read_text())
    assert set(data["targets"]) == {"onnx", "pytorch"}
    assert (tmp_path / "out" / "model.onnx").is_file() and (tmp_path / "out" / "report.json").is_file()


def test_report_command_bad_input_is_one_message(tmp_path, capsys):
    assert main(["report", TINY, "--pipeline", "prune{ratio=sweep[0.3, 0.5]}", "--targets", "onnx"]) == 2
    assert "is a sweep axis" in capsys.readouterr().err
    assert main(["report", TINY, "--pipeline", "fold-bn"]) == 2
    assert "no target to report on" in capsys.readouterr().err
    spec = write_eval(tmp_path, "return float('nan')")
    assert main(["report", TINY, "--targets", "pytorch", "--eval", spec]) == 2
    assert "returned accuracy=nan" in capsys.readouterr().err


def _calibration(folder: Path) -> Path:
    import numpy as np

    path = folder / "calibration.npy"
    np.save(path, torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(4)).numpy())
    return path


def test_every_column_is_documented():
    page = (ROOT / "docs" / "costs.md").read_text()
    for column in COLUMNS:
        assert f"`{column}`" in page, column
