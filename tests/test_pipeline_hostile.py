"""Hostile pipeline text and option values: one PipelineError each, never a raw exception, a
recursion error, a hang or a huge allocation. Every number option declares its range."""
from __future__ import annotations

import typing
from pathlib import Path

import pytest

from compiler.backend import all_backends
from compiler.errors import PipelineError
from compiler.options import option_fields, option_range
from compiler.passes import all_passes, get_pass
from compiler.pipeline import load_pipeline, names_a_file, parse_pipeline

HOSTILE_TEXT = [
    ("prune{ratio=0.1,ratio=0.2}", "option 'ratio' given twice"),
    ("prune{ratios={a=0.1,a=0.2}}", "option 'a' given twice"),
    ("prune{ratios=" + "{a=" * 500 + "0.1" + "}" * 501, "nests options 501 deep"),
    ("prune{ignore=" + "[" * 5000 + "]" * 5000 + "}", "nests options 5001 deep"),
    ('prune{ignore=["\\N{x}"]}', "bad string"),
    ('prune{ignore=["\\ud800"]}', None),  # a lone surrogate is text, not an error
    ("prune{steps=" + "9" * 5000 + "}", "has 5000 characters"),
    ("prune{ratio=1e999}", "must be in [0.0, 1.0)"),
    ("prune{ratio=nan}", "expects float"),
    ("prune{steps=1000000000}", "option 'steps' must be in [1, 100]"),
    ("prune{seed=-1,importance=random}", "option 'seed' must be in [0, 2147483647]"),
    ("prune{seed=99999999999999999999,importance=random}", "option 'seed' must be in"),
    ("prune{ratios={a=1.5}}", "option 'ratios' must be in [0.0, 1.0)"),
    ("quantize{rounds=1000000000,search=fp-bias}", "option 'rounds' must be in [1, 16]"),
    ("quantize{candidates=1000000000}", "option 'candidates' must be in [2, 1000]"),
    ("quantize{block-size=1000000000,granularity=group}", "option 'block-size' must be in [1, 4096]"),
    ("quantize{percentile=50}", "option 'percentile' must be in (50.0, 100.0]"),
    ("fold-constants{max-elements=-1}", "option 'max-elements' must be in [0, 2147483647]"),
    ("target onnx{opset=99}\ndce", "option 'opset' must be in [17, 24]"),
    ("dce," * 200 + "dce{", "syntax error"),
    ("\0", "syntax error"),
]


@pytest.mark.parametrize("text, message", HOSTILE_TEXT, ids=[f"{i}:{t[:30]}" for i, (t, _) in enumerate(HOSTILE_TEXT)])
def test_hostile_pipeline_text_is_one_clear_error(text, message):
    if message is None:
        parse_pipeline(text)
        return
    with pytest.raises(PipelineError) as info:
        load_pipeline(text)
    assert message in info.value.render()


def test_a_long_inline_pipeline_is_parsed_not_tried_as_a_path():
    text = ",".join(["fold-bn", "dce"] * 200)
    assert len(text) > 255 and not names_a_file(text)
    assert len(load_pipeline(text).passes) == 400


@pytest.mark.parametrize("text, is_file", [
    ("deploy.nnf", True), ("configs/deploy", True), ("./x.txt", True), ("dce", False), ("fold-bn,dce", False),
    ('prune{ignore=["a/b"]}', False), ("prune{ratio=0.5}", False), ("x.nnf\ndce", False),
])
def test_file_or_inline_is_decided_by_syntax(text, is_file):
    assert names_a_file(text) is is_file


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe dce", "is not UTF-8 text"),
    (b"x" * (2**20 + 1), "is over 1048576 bytes"),
])
def test_unreadable_pipeline_files_are_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.nnf"
    path.write_bytes(content)
    with pytest.raises(PipelineError, match=message):
        load_pipeline(str(path))


def test_pipeline_file_paths_that_cannot_be_read(tmp_path):
    with pytest.raises(PipelineError, match="cannot read pipeline file .*: File name too long"):
        load_pipeline(str(tmp_path / ("x" * 300 + ".nnf")))
    (tmp_path / "folder.nnf").mkdir()
    with pytest.raises(PipelineError, match="pipeline file not found"):
        load_pipeline(tmp_path / "folder.nnf")


def test_strings_round_trip_with_quotes_newlines_and_unicode():
    text = 'prune{ignore=["a\\"b", "line\\nbreak", "é", "target", "none"]}'
    pipeline = parse_pipeline(text)
    assert pipeline.passes[0].ignore == ('a"b', "line\nbreak", "é", "target", "none")
    assert parse_pipeline(str(pipeline)) == pipeline


def test_hand_built_passes_are_range_checked_too():
    with pytest.raises(ValueError, match="option 'steps' must be in"):
        get_pass("prune")(steps=10**9)


def _numeric(tp) -> bool:
    return tp in (int, float) or any(_numeric(a) for a in typing.get_args(tp))


@pytest.mark.parametrize("kind, registry", [("pass", all_passes), ("target", all_backends)])
def test_every_number_option_declares_its_range(kind, registry):
    missing = [f"{kind} {name}: {key}" for name, cls in registry().items()
               for key, (field, tp) in option_fields(cls).items()
               if _numeric(tp) and tp is not bool and option_range(field) is None]
    assert not missing, f"number options without a declared range (use compiler.options.option): {missing}"


@pytest.mark.parametrize("registry", [all_passes, all_backends])
def test_every_default_lies_in_its_declared_range(registry):
    for cls in registry().values():
        cls()  # __post_init__ range-checks the defaults like any other value


def test_a_pipeline_file_argument_to_the_cli(tmp_path, capsys):
    from compiler.cli import main
    path = tmp_path / "p.nnf"
    path.write_bytes(b"dce{\n")
    code = main(["compile", str(Path(__file__).resolve().parents[1] / "examples" / "demo_model.py") + ":build",
                 "--pipeline", str(path)])
    assert code == 2 and "syntax error" in capsys.readouterr().err
