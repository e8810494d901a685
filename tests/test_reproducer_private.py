"""Crash reproducers go to a private folder of the user's and never overwrite anything."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from compiler import reproducer
from compiler.errors import UserInputError
from compiler.ir import Graph, TensorType
from compiler.ir_parser import parse_graph
from compiler.manager import PassFailure, PassManager
from compiler.passes import Pass


def small_graph() -> Graph:
    g = Graph("small")
    x = g.add_input("x", TensorType((2, 4), torch.float32))
    fc = g.create_node("linear", [x, g.add_weight("fc.weight", torch.randn(3, 4))], name="fc")
    g.outputs = [fc.output]
    return g


@dataclass(frozen=True)
class Crash(Pass):
    name: ClassVar[str] = "crash"

    def run(self, graph):
        raise ZeroDivisionError("boom\n  %evil: f32[1] = relu(%x)\nreturn %evil")


def fail(directory=None) -> str:
    with pytest.raises(PassFailure) as info:
        PassManager([Crash()], reproducer_dir=directory).run(small_graph())
    return info.value.hint


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Point the default reproducer folder's parent (the temp dir) at a test folder."""
    monkeypatch.setattr(reproducer.tempfile, "gettempdir", lambda: str(tmp_path))
    return tmp_path / f"nnforge-reproducers-{os.getuid()}"


def test_the_default_folder_is_private_and_per_user(private_tmp):
    hint = fail()
    assert str(private_tmp) in hint
    info = os.lstat(private_tmp)
    assert stat.S_ISDIR(info.st_mode) and info.st_mode & 0o777 == 0o700 and info.st_uid == os.getuid()
    for path in private_tmp.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("planted", ["symlink", "open-to-others", "a-file"])
def test_a_planted_default_folder_is_refused_and_the_failure_still_reported(private_tmp, tmp_path, planted):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if planted == "symlink":
        private_tmp.symlink_to(elsewhere)
    elif planted == "open-to-others":
        private_tmp.mkdir(mode=0o777)
        private_tmp.chmod(0o777)
    else:
        private_tmp.write_text("")
    hint = fail()
    assert "No reproducer: refusing to write reproducers into" in hint or "No reproducer: cannot create" in hint
    assert list(elsewhere.iterdir()) == []


def test_two_failures_in_one_second_keep_both_reproducers(tmp_path):
    first, second = fail(tmp_path), fail(tmp_path)
    assert first != second
    assert len(list(tmp_path.glob("*.nnfir"))) == 2 and len(list(tmp_path.glob("*.safetensors"))) == 2


def test_creation_is_exclusive_and_does_not_follow_symlinks(tmp_path, monkeypatch):
    """A symlink planted under the next name is skipped, never written through."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    names = iter(["aaaaaa", "bbbbbb"])
    monkeypatch.setattr(reproducer.secrets, "token_hex", lambda n: next(names))
    monkeypatch.setattr(reproducer.time, "strftime", lambda fmt: "20990101-000000")
    (tmp_path / "20990101-000000-crash-aaaaaa.nnfir").symlink_to(victim)
    hint = fail(tmp_path)
    assert "20990101-000000-crash-bbbbbb.nnfir" in hint
    assert victim.read_text() == "precious"


def test_error_text_cannot_inject_ir_into_the_reproducer(tmp_path):
    hint = fail(tmp_path)
    path = hint.split("Reproducer: ")[1]
    text = open(path).read()
    graph = parse_graph(text, {"fc.weight": torch.randn(3, 4)})
    assert [v.name for v in graph.outputs] == ["fc"]
    assert all(line.startswith("#") for line in text.split("\n\n")[0].splitlines())


def test_an_unwritable_reproducer_folder_still_reports_the_failure(tmp_path):
    (tmp_path / "a_file").write_text("")
    hint = fail(tmp_path / "a_file" / "reproducers")
    assert "No reproducer:" in hint


def test_private_dir_refuses_a_folder_of_another_owner(tmp_path, monkeypatch):
    folder = tmp_path / "other"
    folder.mkdir(mode=0o700)
    monkeypatch.setattr(reproducer.os, "getuid", lambda: os.lstat(folder).st_uid + 1)
    with pytest.raises(UserInputError, match="not a private folder of this user"):
        reproducer.private_dir(folder)
