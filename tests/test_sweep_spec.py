"""Sweep specs: `sweep[...]` axes in the pipeline language, alternatives, and their errors."""
import re

import pytest

from compiler.errors import PipelineError
from compiler.pipeline import parse_pipeline
from compiler.sweep.spec import parse_sweep


def test_axes_multiply_into_points_with_canonical_texts():
    points = parse_sweep("prune{ratio=sweep[0.3, 0.5]}, quantize{weights=sweep[int8, int4, fp4-e2m1]}\n"
                         "target onnx{opset=sweep[21, 23]}")
    assert len(points) == 12
    first = points[0]
    assert first.axes == ("prune.ratio", "quantize.weights", "onnx.opset")
    assert first.options == {"prune.ratio": 0.3, "quantize.weights": "int8", "onnx.opset": 21}
    assert first.label == "prune.ratio=0.3 quantize.weights=int8 onnx.opset=21"
    assert first.targets == ("onnx{opset=21}",)
    assert parse_pipeline(points[-1].pipeline) == parse_pipeline("prune{ratio=0.5},quantize{weights=fp4-e2m1}")
    assert [p.index for p in points] == list(range(12))


def test_options_written_without_sweep_are_columns_too():
    (point,) = parse_sweep("quantize{weights=int4, activations=int8}")
    assert point.options == {"quantize.weights": "int4", "quantize.activations": "int8"}
    assert point.axes == () and point.label == point.pipeline


def test_alternatives_give_an_explicit_list_of_points():
    points = parse_sweep("fold-bn\n---\nfold-bn, prune{ratio=0.5}\n---\nfold-bn, prune{ratio=0.5}\n"
                         "---\nprune{ratio=sweep[0.2, 0.4]}")
    assert [p.pipeline for p in points] == ["fold-bn", "fold-bn,prune", "prune{ratio=0.2}", "prune{ratio=0.4}"]


def test_an_empty_alternative_is_the_unchanged_model():
    points = parse_sweep("# baseline first\n---\nprune{ratio=0.5}")
    assert [p.pipeline for p in points] == ["", "prune"] and points[0].label == "(no passes)"


def test_a_pass_given_twice_gets_numbered_columns():
    (point,) = parse_sweep("prune{ratio=0.2}, fold-bn, prune{ratio=0.3}")
    assert point.options == {"prune.ratio": 0.2, "prune#2.ratio": 0.3}


def test_every_point_lowers_to_all_targets_and_command_line_targets_join():
    points = parse_sweep("quantize{weights=sweep[int8, int4]}\ntarget onnx{opset=21}", extra_targets=["pytorch", "onnx"])
    assert all(p.targets == ("onnx{opset=21}", "pytorch") for p in points)


def test_an_ill_typed_axis_value_names_the_pass_option_and_value():
    with pytest.raises(PipelineError) as info:
        parse_sweep("fold-bn\nprune{ratio=sweep[0.3, half]}")
    text = str(info.value)
    assert "pass 'prune': option 'ratio' expects float, got half" in text
    assert "value 2 of the sweep axis prune.ratio" in text and "<sweep>:2:1" in text
    with pytest.raises(PipelineError, match="'int9'"):
        parse_sweep("quantize{weights=sweep[int8, int9]}")
    with pytest.raises(PipelineError, match=re.escape("option 'opset' must be in [17, 24], got 30")):
        parse_sweep("target onnx{opset=sweep[17, 30]}")


def test_errors_in_later_alternatives_keep_their_line_numbers():
    with pytest.raises(PipelineError, match=r"unknown pass 'bogus'.*\n  at: <sweep>:4:1"):
        parse_sweep("fold-bn\n---\ndce\nbogus")


@pytest.mark.parametrize("text, message", [
    ("prune{ratio=sweep[]}", "sweep\\[\\] has no values"),
    ("prune{ignore=[a, sweep[b, c]]}", "a whole option value"),
    ("target onnx\ntarget onnx{opset=21}", "target 'onnx' is named twice"),
])
def test_malformed_sweeps_are_one_message(text, message):
    with pytest.raises(PipelineError, match=message):
        parse_sweep(text)


def test_a_plain_pipeline_refuses_a_sweep_axis():
    with pytest.raises(PipelineError, match="option 'ratio' is a sweep axis") as info:
        parse_pipeline("prune{ratio=sweep[0.3, 0.5]}")
    assert "nnforge sweep" in info.value.hint


def test_sweep_is_still_an_ordinary_word_without_brackets():
    assert parse_pipeline('quantize{skip=[sweep]}').passes[0].skip == ("sweep",)
