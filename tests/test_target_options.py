"""Target options a user expects: ONNX opset=auto, command-line targets with options merged with
the pipeline file's target line, and granularity spellings from other tools."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from compiler import compile
from compiler.backend import get_backend
from compiler.cli import main
from compiler.errors import PipelineError
from compiler.pipeline import parse_pipeline, split_targets
from tests.test_integerize import Chain

DEMO = str(Path(__file__).resolve().parents[1] / "examples" / "demo_model.py") + ":build"


@pytest.mark.parametrize("weights, opset", [("none", 17), ("int8", 17), ("int4", 21), ("fp4-e2m1", 23),
                                            ("nvfp4", 23), ("mxfp4", 24)])
def test_auto_opset_is_the_lowest_that_carries_every_format(weights, opset):
    x = torch.randn(2, 3, 8, 8)
    result = compile(Chain().eval(), (x,), f"quantize{{weights={weights}}}", target="onnx{quant=plain}",
                     calibration_data=x)
    assert result.artifact.info["opset"] == opset


def test_opset_24_is_accepted():
    assert get_backend("onnx")(opset=24).opset == 24
    with pytest.raises(ValueError, match=r"must be in \[17, 24\]"):
        get_backend("onnx")(opset=26)


def run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_cli_target_keeps_the_pipeline_files_target_options(tmp_path, capsys):
    spec = tmp_path / "deploy.nnf"
    spec.write_text("fold-bn\nquantize{weights=int8,activations=none}\ntarget onnx{opset=21}\n")
    report = tmp_path / "r.json"
    code, _ = run(capsys, "compile", DEMO, "--pipeline", str(spec), "--target", "onnx",
                  "-o", str(tmp_path / "m.onnx"), "--report", str(report))
    assert code == 0 and json.loads(report.read_text())["artifacts"][0]["info"]["opset"] == 21


def test_cli_target_with_options_and_a_conflict_naming_both(tmp_path, capsys):
    spec = tmp_path / "deploy.nnf"
    spec.write_text("fold-bn\ntarget onnx{opset=21}\n")
    code, err = run(capsys, "compile", DEMO, "--pipeline", str(spec), "--target", "onnx{opset=22}",
                    "-o", str(tmp_path / "m.onnx"))
    assert code == 2 and "onnx{opset=22}" in err and "target onnx{opset=21}" in err
    code, _ = run(capsys, "compile", DEMO, "--pipeline", "fold-bn", "--target", "onnx{opset=24,quant=exact},pytorch",
                  "-o", str(tmp_path / "out"))
    assert code == 0 and (tmp_path / "out" / "model.onnx").is_file()


def test_split_targets_keeps_commas_inside_braces():
    assert split_targets("onnx{opset=21,quant=exact}, pytorch") == ["onnx{opset=21,quant=exact}", "pytorch"]


@pytest.mark.parametrize("spelling, meaning", [("per-channel", "channel"), ("per_channel", "channel"),
                                               ("per-tensor", "tensor"), ("per-group", "group"),
                                               ("channel-wise", "channel"), ("Channel", "channel")])
def test_granularity_spellings_from_other_tools(spelling, meaning):
    (q,) = parse_pipeline(f"quantize{{granularity={spelling}}}").passes
    assert q.granularity == meaning


def test_an_unknown_granularity_names_the_words_to_use():
    with pytest.raises(PipelineError, match="expects tensor | channel | group, got rowwise"):
        parse_pipeline("quantize{granularity=rowwise}")
