"""The pipeline language: inline and file forms, printing round trips, and its error messages."""
import pytest

from compiler.errors import PipelineError
from compiler.pipeline import Pipeline, load_pipeline, parse_pipeline


def test_inline_form_parses_to_pass_instances():
    pipeline = parse_pipeline("fold-bn,dce,fold-constants{max-elements=64}")
    assert [p.name for p in pipeline.passes] == ["fold-bn", "dce", "fold-constants"]
    assert pipeline.passes[2].max_elements == 64
    assert pipeline.target is None


def test_file_form_has_comments_newlines_and_a_target_line():
    text = """
    # deploy to onnx
    target onnx{opset=18}

    fold-bn      # fold BatchNorm first
    fold-constants{
        max-elements=1024,
    }
    dce
    """
    pipeline = parse_pipeline(text)
    assert [p.name for p in pipeline.passes] == ["fold-bn", "fold-constants", "dce"]
    assert pipeline.target.name == "onnx" and pipeline.target.opset == 18


@pytest.mark.parametrize("text", [
    "fold-bn,dce",
    "fold-constants{max-elements=7},dce",
    "dce,dce,fold-bn",
])
def test_printing_gives_text_that_parses_back_to_an_equal_pipeline(text):
    pipeline = parse_pipeline(text)
    assert str(pipeline) == text
    assert parse_pipeline(str(pipeline)) == pipeline
    assert parse_pipeline(pipeline.to_file_text()) == pipeline


def test_file_text_keeps_the_target():
    pipeline = parse_pipeline("target onnx{opset=19}\nfold-bn")
    assert parse_pipeline(pipeline.to_file_text()) == pipeline


def test_syntax_error_shows_line_column_and_caret():
    with pytest.raises(PipelineError) as info:
        parse_pipeline("fold-bn\ndce{max=}\n")
    message = str(info.value)
    assert "line 2, column 9" in message
    assert "dce{max=}" in message and "^" in message


def test_unknown_pass_suggests_the_closest_names():
    with pytest.raises(PipelineError, match="unknown pass 'fold-nb'; did you mean 'fold-bn'"):
        parse_pipeline("dce,fold-nb")


def test_unknown_option_names_the_pass_and_its_options():
    with pytest.raises(PipelineError) as info:
        parse_pipeline("fold-constants{max-element=3}")
    assert "pass 'fold-constants' has no option 'max-element'; did you mean 'max-elements'" in str(info.value)


def test_ill_typed_option_names_the_expected_type():
    with pytest.raises(PipelineError, match="option 'max-elements' expects int, got 0.5"):
        parse_pipeline("fold-constants{max-elements=0.5}")


def test_errors_say_where_in_the_pipeline():
    with pytest.raises(PipelineError, match=r"at: <pipeline>:3:1"):
        parse_pipeline("dce\nfold-bn\nbogus")


def test_a_missing_pipeline_file_is_an_error(tmp_path):
    with pytest.raises(PipelineError, match="pipeline file not found"):
        load_pipeline(tmp_path / "missing.nnf")


def test_a_pipeline_file_is_read(tmp_path):
    path = tmp_path / "deploy.nnf"
    path.write_text("fold-bn\ndce\n")
    assert load_pipeline(path) == parse_pipeline("fold-bn,dce")


def test_empty_text_is_the_empty_pipeline():
    assert parse_pipeline("  # nothing\n\n") == Pipeline()
