"""Passes on IR text: each case in tests/ir_rewrites/*.txt is an input graph, a pipeline and the
graph it must print afterwards (the spirit of xDSL's filecheck tests, with the whole text compared).

A case reads

    == what the case shows
    pipeline: <pipeline text>
    stats: <key>=<count>, ...          (optional: the last pass's stats, exactly)
    graph ... { ... }                  (the input)
    --
    graph ... { ... }                  (the expected output)

Lines starting with `#` are comments. Besides the text, the outputs before and after must agree
on random inputs (these passes are exact).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from compiler.interpreter import interpret
from compiler.ir_parser import parse_graph
from compiler.manager import PassManager
from compiler.pipeline import parse_pipeline
from compiler.printer import print_graph

CASES_DIR = Path(__file__).with_name("ir_rewrites")


@dataclass(frozen=True)
class Case:
    file: str
    title: str
    pipeline: str
    stats: dict[str, int] | None
    before: str
    after: str

    @property
    def id(self) -> str:
        return f"{self.file}: {self.title}"


def read_cases(path: Path) -> list[Case]:
    cases = []
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#"))
    for block in text.split("\n== ")[1:]:
        title, rest = block.split("\n", 1)
        header, graphs = rest.split("\ngraph ", 1)
        fields = dict(line.split(": ", 1) for line in header.splitlines() if line.strip())
        before, after = ("graph " + graphs).split("\n--\n")
        stats = None
        if "stats" in fields:
            stats = {k: int(v) for k, v in (item.split("=") for item in fields["stats"].split(", "))}
        cases.append(Case(path.stem, title.strip(), fields["pipeline"], stats, before.strip() + "\n",
                          after.strip() + "\n"))
    return cases


CASES = [case for path in sorted(CASES_DIR.glob("*.txt")) for case in read_cases(path)]


def random_inputs(graph) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(v.shape, generator=gen).to(v.dtype) if v.dtype.is_floating_point
            else torch.randint(-5, 6, v.shape, generator=gen).to(v.dtype) for v in graph.inputs]


def test_every_case_file_holds_cases():
    assert {c.file for c in CASES} >= {"canonicalize", "fold_bn"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_pass_turns_the_input_text_into_the_expected_text(case: Case):
    graph = parse_graph(case.before)
    assert print_graph(graph) == case.before, "the input is not in printed form"
    inputs = random_inputs(graph)
    expected = interpret(graph, *inputs)
    records = PassManager(parse_pipeline(case.pipeline).passes).run(graph)
    assert print_graph(graph) == case.after
    if case.stats is not None:
        assert records[-1].stats == case.stats
    for got, want in zip(interpret(graph, *inputs), expected):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
