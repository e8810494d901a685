"""The printed IR parses back to the same graph, so reproducers and golden files can be run."""
from dataclasses import dataclass

import pytest
import torch

from compiler import compile
from compiler.annotations import Annotation
from compiler.errors import IRError
from compiler.frontend import import_model
from compiler.interpreter import interpret
from compiler.ir_parser import parse_graph
from compiler.manager import PassFailure
from compiler.printer import print_graph
from tests.test_manager import Crash
from tests.zoo import NAMES, build


@pytest.mark.parametrize("name", NAMES)
def test_print_parse_print_is_the_identity_and_runs_the_same(name):
    zoo = build(name)
    graph = import_model(zoo.module, zoo.example_inputs)
    text = print_graph(graph)
    parsed = parse_graph(text, {k: v.data for k, v in graph.weights.items()})
    assert print_graph(parsed) == text
    for a, b in zip(interpret(graph, *zoo.example_inputs), interpret(parsed, *zoo.example_inputs)):
        assert torch.equal(a, b)


@dataclass(frozen=True)
class Marked(Annotation):
    tag = "test-marked"
    bits: int
    scheme: str


def test_annotations_and_inline_constants_round_trip():
    text = (
        "graph g(%x: f32[2,3] @test-marked<bits=4, scheme='sym'>) {\n"
        "  %scale: f32[3] = constant [0.5,2.0,-1.0]\n"
        "  %y: f32[2,3] @test-marked<bits=8, scheme='asym'> = mul(%x, %scale)  # scale (model.py:3)\n"
        "  %z: f32[2,3] = clip(%y) {max=6.0, min=None}\n"
        "  return %z, %y\n"
        "}\n")
    graph = parse_graph(text)
    assert print_graph(graph) == text
    assert graph.inputs[0].annotation(Marked) == Marked(bits=4, scheme="sym")
    assert graph.nodes[0].source == "scale (model.py:3)"


@pytest.mark.parametrize("text, message", [
    ("graph g(%x: f32[2]) {\n  %y: f32[2] = relu(%q)\n  return %y\n}\n", "undefined values: %q"),
    ("graph g(%x: f32[2]) {\n  %w: f32[2] = weight\n  return %w\n}\n", "no data for weight %w"),
    ("graph g(%x: f32[2]) {\n  %y: f32[3] = relu(%x)\n  return %y\n}\n", "disagree with inferred"),
    ("graph g(%x: f32[2]) {\n  %y: f32[2] = relu(%x\n  return %y\n}\n", "cannot parse IR text at line 2"),
    ("graph g(%x: q7[2]) {\n  return %x\n}\n", "unknown dtype 'q7'"),
])
def test_bad_ir_text_is_a_clear_error(text, message):
    with pytest.raises(IRError, match=message):
        parse_graph(text)


def test_a_reproducer_reruns_the_failing_pass(tmp_path):
    zoo = build("repvgg")
    with pytest.raises(PassFailure) as info:
        compile(zoo.module, zoo.example_inputs, pipeline=[*_passes("fold-bn"), Crash()], reproducer_dir=tmp_path)
    (repro,) = tmp_path.glob("*.nnfir")
    assert "nnforge compile" in repro.read_text()
    with pytest.raises(PassFailure, match="pass 'crash' crashed"):
        compile(repro, pipeline=[Crash()], reproducer_dir=tmp_path / "again")
    result = compile(repro, pipeline="dce", target="onnx", check_equivalence=True)
    expected = zoo.module(*zoo.example_inputs)
    torch.testing.assert_close(result.artifact.run(*zoo.example_inputs)[0], expected, rtol=1e-4, atol=1e-5)
    assert str(repro) in str(info.value)


def _passes(text):
    from compiler.pipeline import parse_pipeline
    return list(parse_pipeline(text).passes)
