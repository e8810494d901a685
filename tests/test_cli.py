"""The `nnforge` command line: what users see, and exit code 2 for every user error."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from compiler.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "examples" / "demo_model.py") + ":build"
MODELS = str(ROOT / "tests" / "models" / "cli_models.py")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compile_writes_every_target_and_a_report(tmp_path, capsys):
    report = tmp_path / "report.json"
    code, out, err = run(capsys, "compile", DEMO, "--pipeline", str(ROOT / "examples" / "deploy.nnf"),
                         "--target", "all", "-o", str(tmp_path / "out"), "--report", str(report),
                         "--check-equivalence")
    assert code == 0, err
    assert (tmp_path / "out" / "model.onnx").is_file()
    assert (tmp_path / "out" / "pytorch" / "model.py").is_file()
    data = json.loads(report.read_text())
    first = data["passes"][0]
    for key in ("name", "options", "seconds", "nodes_before", "nodes_after", "params_before",
                "params_after", "macs_before", "macs_after", "max_abs_diff"):
        assert key in first
    assert [p["name"] for p in data["passes"]] == ["fold-bn", "fold-constants", "dce"]
    assert data["passes"][0]["stats"]["folded"] == 6
    exact = [a for a in data["artifacts"] if a["target"] in ("pytorch", "onnx")]
    assert len(exact) == 2 and all(a["max_abs_diff"] < 1e-4 for a in exact)
    assert (tmp_path / "out" / "crossbar" / "mapping.json").is_file()   # a lossy target: noise, 8-bit codes
    assert "fold-bn" in out


def test_an_input_shape_builds_the_model_for_that_shape(tmp_path, capsys):
    code, _, err = run(capsys, "compile", DEMO, "--input-shape", "1x3x64x64", "--target", "onnx",
                       "-o", str(tmp_path / "m.onnx"))
    assert code == 0, err
    import onnx
    dims = [d.dim_value for d in onnx.load(tmp_path / "m.onnx").graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 64]


def test_print_ir_after_all_dumps_each_pass(capsys):
    code, _, err = run(capsys, "compile", DEMO, "--pipeline", "fold-bn,dce", "--print-ir-after-all")
    assert code == 0
    assert "IR after fold-bn" in err and "IR after dce" in err
    assert "graph " in err


def test_passes_lists_options_and_docs(capsys):
    code, out, _ = run(capsys, "passes")
    assert code == 0
    assert "fold-bn" in out and "fold-constants" in out and "max-elements: int" in out


def test_inspect_prints_a_layer_table_with_totals(capsys):
    code, out, _ = run(capsys, "inspect", DEMO)
    assert code == 0
    assert "conv" in out and "total" in out
    assert "linear" in out


def test_inspect_counts_a_shared_weight_once(capsys):
    code, out, _ = run(capsys, "inspect", f"{MODELS}:tied_embedding")
    assert code == 0
    total = 50 * 16 + 16 * 16 + 16  # embedding (read twice), mix weight and bias
    assert "total" in out and f"{total:,}" in out.split("total")[-1].splitlines()[0]
    assert "(shared with embed" in out


@pytest.mark.parametrize("argv, message", [
    (["compile", DEMO, "--pipeline", "fold-bn,,{"], "syntax error"),
    (["compile", DEMO, "--pipeline", "fold-nb"], "did you mean 'fold-bn'"),
    (["compile", DEMO, "--pipeline", "fold-constants{max-elements=x}"], "expects int"),
    (["compile", "missing.py:build"], "model file not found"),
    (["compile", DEMO.replace(":build", ":nope")], "has no attribute 'nope'"),
    (["compile", f"{MODELS}:not_a_module"], "not a torch.nn.Module"),
    (["compile", f"{MODELS}:raises", "--input-shape", "1x3"], "the factory failed"),
    (["compile", DEMO, "--input-shape", "1x5x32x32"], "input"),
    (["compile", DEMO, "--input-shape", "1xax3"], "bad input shape"),
    (["compile", f"{MODELS}:two_inputs"], "no input shape"),
    (["compile", DEMO, "--target", "tflite"], "unknown target 'tflite'"),
    (["compile", "model.unknown"], "cannot tell how to load"),
])
def test_user_errors_are_one_message_and_exit_code_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_a_failed_compile_leaves_an_existing_output_untouched(tmp_path, capsys):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"previous good model")
    code, _, err = run(capsys, "compile", f"{MODELS}:circular_pad", "--target", "onnx", "-o", str(out))
    assert code == 2 and "circular" in err
    assert out.read_bytes() == b"previous good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_debug_shows_the_traceback(capsys):
    code, _, err = run(capsys, "compile", DEMO, "--pipeline", "fold-nb", "--debug")
    assert code == 2 and "Traceback" in err


def test_the_console_script_exits_with_code_2():
    proc = subprocess.run([sys.executable, "-m", "compiler.cli", "compile", "missing.py:build"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "model file not found: missing.py" in proc.stderr


def test_calibration_data_feeds_the_quantize_pass(tmp_path, capsys):
    import numpy as np
    batches = tmp_path / "calib.npy"
    np.save(batches, np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32))
    code, out, err = run(capsys, "compile", DEMO, "--input-shape", "8x3x32x32",
                         "--pipeline", "fold-bn,quantize{weights=int8,activations=int8}",
                         "--calibration-data", str(batches), "--target", "onnx", "-o", str(tmp_path / "q.onnx"))
    assert code == 0, err
    assert "quantize" in out


def test_calibration_data_of_the_wrong_shape_is_refused(tmp_path, capsys):
    import numpy as np
    batches = tmp_path / "calib.npy"
    np.save(batches, np.zeros((8, 5, 32, 32), dtype=np.float32))
    code, _, err = run(capsys, "compile", DEMO, "--pipeline", "quantize{weights=int8}",
                       "--calibration-data", str(batches))
    assert code == 2 and "calibration" in err and "Traceback" not in err


def test_error_text_with_brackets_is_printed_verbatim(capsys):
    code, _, err = run(capsys, "compile", DEMO, "--input-shape", "1x5x32x32")
    assert code == 2 and "[" in err


def test_inspect_groups_lists_the_coupled_channels(capsys):
    code, out, _ = run(capsys, "inspect", DEMO, "--groups")
    assert code == 0
    assert "block1_conv2" in out or "block1.conv2" in out


# ---- calibration: never silently on made-up inputs ------------------------------------------
def test_activation_quantization_without_calibration_data_is_refused(capsys):
    code, _, err = run(capsys, "compile", DEMO, "--pipeline", "fold-bn,quantize{weights=int8,activations=int8}")
    assert code == 2 and "Traceback" not in err
    assert "--calibration-data" in err and ".npy" in err and ".npz" in err and "random" in err


def test_weight_only_quantization_needs_no_calibration_data(capsys):
    code, _, err = run(capsys, "compile", DEMO, "--pipeline", "quantize{weights=int4,activations=none}")
    assert code == 0, err


def test_random_calibration_is_explicit_and_warned_about(tmp_path, capsys):
    report = tmp_path / "report.json"
    code, out, err = run(capsys, "compile", DEMO, "--pipeline", "quantize{weights=int8,activations=int8}",
                         "--calibration-data", "random", "--check-equivalence", "--report", str(report))
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["passes"][0]["stats"]["calibration.source"] == "generated inputs"
    assert any("calibrated on generated inputs" in w for w in data["warnings"])
    assert "warning:" in out and "calibrated on generated inputs" in out
    assert data["equivalence_inputs"] == "example inputs" and "equivalence checked on: example inputs" in out


def test_the_equivalence_check_runs_on_real_calibration_data_when_there_are_no_examples(tmp_path, capsys):
    import numpy as np
    from tests.onnx_models import small_cnn
    import onnx
    model = tmp_path / "cnn.onnx"
    onnx.save(small_cnn(batch=2), model)
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(0).standard_normal((6, 3, 8, 8)).astype(np.float32))
    report = tmp_path / "report.json"
    code, out, err = run(capsys, "compile", str(model), "--pipeline", "quantize", "--calibration-data", str(calib),
                         "--check-equivalence", "--report", str(report), "--target", "onnx",
                         "-o", str(tmp_path / "q.onnx"))
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["equivalence_inputs"] == "calibration data, batch 0" and data["warnings"] == []


def test_fp4_onnx_equivalence_runs_in_the_reference_evaluator(tmp_path, capsys):
    spec = tmp_path / "fp4.nnf"
    spec.write_text("quantize{weights=nvfp4,activations=none}\ntarget onnx{opset=23}\n")
    report = tmp_path / "report.json"
    code, out, err = run(capsys, "compile", DEMO, "--pipeline", str(spec), "--check-equivalence",
                         "-o", str(tmp_path / "fp4.onnx"), "--report", str(report))
    assert code == 0, err
    row = json.loads(report.read_text())["artifacts"][0]
    assert row["runtime"].startswith("onnx.reference") and row["max_rel_diff"] < 1e-4
    assert "run by onnx.reference" in out
