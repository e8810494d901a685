"""The pass manager: verification, timing, equivalence checks and crash reproducers."""
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from compiler.ir import Graph, TensorType
from compiler.manager import PassFailure, PassManager
from compiler.passes import Pass, PassResult
from compiler.pipeline import parse_pipeline


def small_graph() -> Graph:
    g = Graph("small")
    x = g.add_input("x", TensorType((2, 4), torch.float32))
    w = g.add_weight("fc.weight", torch.randn(3, 4))
    fc = g.create_node("linear", [x, w], name="fc")
    dead = g.create_node("relu", [x], name="dead")
    out = g.create_node("relu", [fc.output], name="out")
    g.outputs = [out.output]
    assert dead in g
    return g


@dataclass(frozen=True)
class BreakTypes(Pass):
    """Corrupts an output type, as a buggy rewrite would."""
    name: ClassVar[str] = "break-types"

    def run(self, graph, ctx):
        graph.nodes[-1].outputs[0].type = TensorType((9,), torch.float32)
        return PassResult(True)


@dataclass(frozen=True)
class Crash(Pass):
    name: ClassVar[str] = "crash"

    def run(self, graph, ctx):
        raise ZeroDivisionError("boom")


@dataclass(frozen=True)
class Negate(Pass):
    """Claims to be exact but flips the sign of the output."""
    name: ClassVar[str] = "negate"

    def run(self, graph, ctx):
        out = graph.outputs[0]
        neg = graph.create_node("neg", [out])
        graph.outputs = [neg.output]
        return PassResult(True)


def test_each_pass_gets_a_report_row_with_sizes_and_timing():
    records = PassManager(parse_pipeline("dce").passes).run(small_graph())
    (row,) = records
    assert row.name == "dce" and row.changed
    assert (row.nodes_before, row.nodes_after) == (3, 2)
    assert row.params_before == row.params_after == 12
    assert row.macs_before == row.macs_after == 2 * 3 * 4
    assert row.seconds >= 0 and row.verify_seconds > 0


def test_verification_after_a_pass_catches_broken_ir_and_writes_a_reproducer(tmp_path):
    manager = PassManager([*parse_pipeline("dce").passes, BreakTypes()], reproducer_dir=tmp_path)
    with pytest.raises(PassFailure) as info:
        manager.run(small_graph())
    message = str(info.value)
    assert "IR is invalid after pass 'break-types'" in message
    assert "pass 2 of 2" in message
    (repro,) = tmp_path.glob("*.nnfir")
    assert str(repro) in message
    text = repro.read_text()
    assert "# pipeline: dce,break-types" in text
    assert "%out: f32[2,3] = relu(%fc)" in text  # the IR as the failing pass received it
    assert (tmp_path / (repro.stem + ".safetensors")).is_file()


def test_a_crashing_pass_names_itself_and_keeps_the_traceback(tmp_path):
    with pytest.raises(PassFailure, match="pass 'crash' crashed: ZeroDivisionError"):
        PassManager([Crash()], reproducer_dir=tmp_path).run(small_graph())
    (repro,) = tmp_path.glob("*.nnfir")
    assert "ZeroDivisionError: boom" in repro.read_text()


def test_equivalence_check_records_differences_per_pass():
    x = torch.randn(2, 4)
    records = PassManager(parse_pipeline("dce,fold-constants").passes, check_equivalence=True,
                          equivalence_inputs=(x,)).run(small_graph())
    assert all(r.max_abs_diff == 0.0 and r.max_rel_diff == 0.0 for r in records)


def test_an_exact_pass_that_changes_outputs_is_stopped(tmp_path):
    manager = PassManager([Negate()], check_equivalence=True, equivalence_inputs=(torch.randn(2, 4),),
                          reproducer_dir=tmp_path)
    with pytest.raises(PassFailure, match="exact pass 'negate' changed the outputs"):
        manager.run(small_graph())


def test_ir_can_be_dumped_after_every_pass():
    dumps = []
    PassManager(parse_pipeline("dce,fold-constants").passes,
                ir_dump=lambda name, text: dumps.append((name, text))).run(small_graph())
    assert [name for name, _ in dumps] == ["dce", "fold-constants"]
    assert "dead" not in dumps[0][1]
