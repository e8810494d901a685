"""Names from a model never become code: every identifier, string and comment written into
generated source passes through `compiler.codegen_names`.

A graph whose name closes the docstring of `model.py` and runs a shell command, and values named
`self`, `torch`, `class`, `__init__` or in other scripts, compile to a `model.py` that imports
in a fresh interpreter without running anything and computes what the IR computes. The C++ side
(string literals, identifiers, comments) is compiled with g++ -Wall -Werror and run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from compiler.api import compile
from compiler.codegen_names import (comment_text, cpp_identifier, cpp_string, docstring_text, python_identifier,
                                    python_string)
from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from compiler.ir_parser import parse_graph
from compiler.printer import print_graph

HOSTILE = ['g"""\nimport os; open(os.environ["NNFORGE_PWNED"], "w").write("x")\n"""', "self", "torch", "F",
           "class", "__init__", "forward", "load", "Path", "é名\u200bx", "1st", "a\\", "'; rm -rf /", "None",
           "x\r\ny", "__class__", "__dict__", "", "_", "compiler.quant.kernels.quantize_int"]


def hostile_graph() -> Graph:
    """A chain of nodes named after every hostile string, with a weight and an input named hostilely."""
    g = Graph(HOSTILE[0])
    x = g.add_input("self", TensorType((1, 4), torch.float32))
    value = g.create_node("linear", [x, g.add_weight("torch", torch.randn(4, 4)), None], name="F").output
    for name in HOSTILE:
        value = g.create_node("relu" if len(name) % 2 else "neg", [value], name=name).output
    g.outputs = [value, x]
    return g


def test_hostile_names_compile_to_a_model_py_that_imports_without_running_them(tmp_path: Path):
    graph = hostile_graph()
    out = tmp_path / "out"
    compile(graph, target="pytorch", output=out, check_equivalence=True)
    marker = tmp_path / "PWNED"
    feeds = (torch.randn(1, 4),)
    torch.save(feeds, tmp_path / "inputs.pt")
    script = textwrap.dedent("""
        import sys, torch
        sys.path.insert(0, ".")
        import model
        outputs = model.load()(*torch.load(sys.argv[1]))
        torch.save(list(outputs), sys.argv[2])
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["NNFORGE_PWNED"] = str(marker)
    proc = subprocess.run([sys.executable, "-I", "-c", script, str(tmp_path / "inputs.pt"), str(tmp_path / "o.pt")],
                          cwd=out, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    for got, expected in zip(torch.load(tmp_path / "o.pt"), interpret(graph, *feeds), strict=True):
        assert torch.equal(got, expected)
    source = (out / "model.py").read_text()
    assert source.isascii() and "import os" not in source.split('"""')[2]


def test_a_value_named_self_does_not_replace_the_module():
    graph = Graph("g")
    x = graph.add_input("x", TensorType((2,), torch.float32))
    graph.outputs = [graph.create_node("relu", [x], name="self").output]
    result = compile(graph, target="pytorch")
    assert "self = " not in result.artifact.obj.code
    assert torch.equal(result.artifact.run(torch.tensor([-1.0, 2.0]))[0], torch.tensor([0.0, 2.0]))


def test_hostile_graph_names_survive_the_ir_text_round_trip():
    graph = hostile_graph()
    text = print_graph(graph)
    again = parse_graph(text, {name: w.data for name, w in graph.weights.items()})
    assert again.name == graph.name and print_graph(again) == text


@pytest.mark.parametrize("hint", HOSTILE)
def test_python_identifiers_are_safe(hint: str):
    taken: set[str] = set()
    name = python_identifier(hint, reserved={"self", "torch"}, taken=taken)
    assert name.isidentifier() and name.isascii() and not name.startswith("_")
    assert name not in ("self", "torch") and not __import__("keyword").iskeyword(name)
    assert python_identifier(hint, reserved={"self", "torch"}, taken=taken) != name  # unique among taken
    assert eval(python_string(hint)) == hint
    assert eval(f'"""{docstring_text(hint)}"""') == hint


CPP_PROGRAM = """\
#include <cstdio>
#include <cstring>
// {comment}
int main() {{
    const char *{ident} = {literal};
    std::fwrite({ident}, 1, std::strlen({ident}), stdout);
    return 0;
}}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
def test_cpp_literals_identifiers_and_comments_compile_to_the_exact_text(tmp_path: Path):
    hint = HOSTILE[0] + "?\?=*/ /* \\\n" + "".join(HOSTILE)
    hint = hint.replace("\0", "")
    ident = cpp_identifier("__init__" + hint[:20], reserved={"main"})
    assert "__" not in ident and not ident.startswith("_") and ident.isascii()
    source = tmp_path / "t.cpp"
    source.write_text(CPP_PROGRAM.format(comment=comment_text(hint), ident=ident, literal=cpp_string(hint)))
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-o", str(tmp_path / "t"), str(source)],
                   check=True, capture_output=True, timeout=120)
    out = subprocess.run([str(tmp_path / "t")], capture_output=True, check=True, timeout=60).stdout
    assert out == hint.encode("utf-8")
    assert "\n" not in comment_text(hint) and "\\" not in comment_text(hint) and "*" not in comment_text(hint)
