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
    exact = [a for a in data["artifacts"] if not a["target"].startswith("hls")]   # hls quantizes a float model
    assert len(exact) < len(data["artifacts"]) and all(a["max_abs_diff"] < 1e-4 for a in exact)
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
