"""Outputs are never lost: all of one compile's outputs are committed together, only after every
lowering, check and the report succeeded; folders are replaced crash-safely; a killed process
leaves nothing that outlives the next write; new files follow the umask."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from compiler import atomic
from compiler.atomic import BACKUP_PREFIX, STAGE_PREFIX, atomic_path, transaction
from compiler.cli import main
from compiler.errors import UserInputError

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "examples" / "demo_model.py") + ":build"
MODELS = str(ROOT / "tests" / "models" / "cli_models.py")


# child processes import compiler.atomic without compiler/__init__ (and so without torch)
LIGHT_IMPORT = f"""
import sys, types
package = types.ModuleType("compiler")
package.__path__ = [{str(ROOT / "compiler")!r}]
sys.modules["compiler"] = package
"""


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def write_tree(folder: Path, text: str) -> None:
    (folder / "a.txt").write_text(text)
    (folder / "b.txt").write_text(text)


# ---- one compile, one commit ------------------------------------------------------------------
def test_a_late_failing_target_leaves_every_earlier_output_untouched(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "pytorch").mkdir(parents=True)
    (out / "pytorch" / "model.py").write_text("the previous good model")
    code, err = run(capsys, "compile", f"{MODELS}:circular_pad", "--target", "pytorch,onnx", "-o", out)
    assert code == 2 and "circular" in err
    assert listing(out) == ["pytorch"] and listing(out / "pytorch") == ["model.py"]
    assert (out / "pytorch" / "model.py").read_text() == "the previous good model"


def test_folders_made_for_a_failed_compile_are_removed_again(tmp_path, capsys):
    target = tmp_path / "new" / "sub" / "m.onnx"
    code, _ = run(capsys, "compile", f"{MODELS}:circular_pad", "--target", "onnx", "-o", target)
    assert code == 2 and listing(tmp_path) == []


def test_an_equivalence_check_that_cannot_run_the_result_replaces_nothing(tmp_path, capsys, monkeypatch):
    from backends.onnx.runtime import OrtRunner
    from compiler.errors import BackendError

    def refuse(self, inputs):  # a runtime that refuses the model outright (neither onnxruntime nor
        raise BackendError("onnxruntime cannot load the exported model: no kernel")  # the reference)
    monkeypatch.setattr(OrtRunner, "__call__", refuse)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "bf16.onnx")
    (tmp_path / "m.onnx").write_bytes(b"previous")
    code, err = run(capsys, "compile", tmp_path / "bf16.onnx", "-o", tmp_path / "m.onnx", "--check-equivalence")
    assert code == 2 and "onnxruntime cannot load the exported model" in err and "Traceback" not in err
    assert (tmp_path / "m.onnx").read_bytes() == b"previous"
    assert listing(tmp_path) == ["bf16.onnx", "m.onnx"]


def test_an_unwritable_report_replaces_no_model(tmp_path, capsys):
    (tmp_path / "m.onnx").write_bytes(b"previous")
    (tmp_path / "a_file").write_text("")
    code, err = run(capsys, "compile", DEMO, "--target", "onnx", "-o", tmp_path / "m.onnx",
                    "--report", tmp_path / "a_file" / "report.json")
    assert code == 2 and "cannot write" in err
    assert (tmp_path / "m.onnx").read_bytes() == b"previous"
    assert listing(tmp_path) == ["a_file", "m.onnx"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_outputs_commit_together_or_roll_back(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_RENAMEAT2", None)
    (tmp_path / "first").write_text("old first")
    real_rename = os.rename

    def failing_rename(src, dst, *args, **kwargs):
        if Path(dst).name == "second":
            raise OSError(28, "No space left on device", str(dst))
        return real_rename(src, dst, *args, **kwargs)
    monkeypatch.setattr(atomic.os, "rename", failing_rename)
    with pytest.raises(UserInputError, match="cannot write .*second.*No space left"):
        with transaction():
            with atomic_path(tmp_path / "first") as staged:
                staged.write_text("new first")
            with atomic_path(tmp_path / "second") as staged:
                staged.write_text("new second")
    assert (tmp_path / "first").read_text() == "old first"
    assert listing(tmp_path) == ["first"]


# ---- crash safety ------------------------------------------------------------------------------
def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_folder_moved_aside_by_a_killed_commit_is_put_back_by_the_next_write(tmp_path):
    """Without renameat2 a folder is replaced by two renames; a kill between them leaves the old
    tree as a backup in the staging folder, and the next write into that folder restores it."""
    stage = tmp_path / f"{STAGE_PREFIX}{atomic._HOST}-{dead_pid()}-abc{atomic.STAGE_SUFFIX}"
    backup = stage / f"{BACKUP_PREFIX}out"
    backup.mkdir(parents=True)
    write_tree(backup, "the user's model")
    (stage / "out").mkdir()  # the new tree that never got moved
    with atomic_path(tmp_path / "report.json") as staged:
        staged.write_text("{}")
    assert listing(tmp_path) == ["out", "report.json"]
    assert (tmp_path / "out" / "a.txt").read_text() == "the user's model"


def test_a_killed_writer_leaves_nothing_after_the_next_write(tmp_path):
    script = LIGHT_IMPORT + textwrap.dedent(f"""
        import os, signal
        from compiler.atomic import atomic_path
        with atomic_path({str(tmp_path / "model.onnx")!r}) as staged:
            staged.write_bytes(b"x" * 1_000_000)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert any(name.startswith(STAGE_PREFIX) for name in listing(tmp_path))
    with atomic_path(tmp_path / "model.onnx") as staged:
        staged.write_bytes(b"model")
    assert listing(tmp_path) == ["model.onnx"]


def test_a_live_writers_staging_folder_is_left_alone(tmp_path):
    live = tmp_path / f"{STAGE_PREFIX}{atomic._HOST}-{os.getppid()}-abc{atomic.STAGE_SUFFIX}"
    live.mkdir()
    with atomic_path(tmp_path / "x") as staged:
        staged.write_text("x")
    assert live.is_dir()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_concurrent_compiles_to_one_folder_each_commit_whole(tmp_path, monkeypatch, exchange):
    script = LIGHT_IMPORT + textwrap.dedent(f"""
        from compiler import atomic
        if not {exchange}:
            atomic._RENAMEAT2 = None
        for i in range(40):
            with atomic.atomic_path({str(tmp_path / "out")!r}, directory=True) as staged:
                text = f"{{sys.argv[1]}}-{{i}}"
                (staged / "a.txt").write_text(text)
                (staged / "b.txt").write_text(text)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)], stderr=subprocess.PIPE, text=True)
             for n in range(4)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    assert listing(tmp_path) == ["out"]
    assert listing(tmp_path / "out") == ["a.txt", "b.txt"]
    assert (tmp_path / "out" / "a.txt").read_text() == (tmp_path / "out" / "b.txt").read_text()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_switching_a_path_between_file_and_folder(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_RENAMEAT2", None)
    target = tmp_path / "out"
    target.write_text("a file")
    with atomic_path(target, directory=True) as staged:
        write_tree(staged, "a folder")
    assert listing(tmp_path) == ["out"] and listing(target) == ["a.txt", "b.txt"]
    with atomic_path(target, directory=True) as staged:
        write_tree(staged, "again")
    assert listing(tmp_path) == ["out"] and (target / "a.txt").read_text() == "again"
    with pytest.raises(UserInputError, match="is a folder, and this output is a single file"):
        with atomic_path(target):
            pass
    assert listing(tmp_path) == ["out"]


# ---- permissions -------------------------------------------------------------------------------
@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                       (0o002, 0o664, 0o775)])
def test_new_outputs_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    old = os.umask(umask)
    try:
        (tmp_path / "m.onnx").write_text("old")
        os.chmod(tmp_path / "m.onnx", 0o644)
        with transaction():
            with atomic_path(tmp_path / "m.onnx") as staged:
                staged.write_text("new")
            with atomic_path(tmp_path / "pytorch", directory=True) as staged:
                (staged / "model.py").write_text("")
    finally:
        os.umask(old)
    assert (tmp_path / "m.onnx").stat().st_mode & 0o777 == file_mode
    assert (tmp_path / "pytorch").stat().st_mode & 0o777 == dir_mode
    assert (tmp_path / "pytorch" / "model.py").stat().st_mode & 0o777 == file_mode


# ---- paths the user gets wrong -----------------------------------------------------------------
@pytest.mark.parametrize("output, message", [
    ("a_file/m.onnx", "cannot write"),
    ("a_folder", "is a folder, and this output is a single file"),
    ("x" * 300 + ".onnx", "File name too long"),
])
def test_unusable_output_paths_are_one_clear_error(tmp_path, capsys, output, message):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_folder").mkdir()
    code, err = run(capsys, "compile", DEMO, "--target", "onnx", "-o", tmp_path / output)
    assert code == 2 and message in err and "Traceback" not in err
    assert listing(tmp_path) == ["a_file", "a_folder"]


def test_an_unwritable_output_folder_is_one_clear_error(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    target = folder / "m.onnx" if os.geteuid() != 0 else Path("/proc/nnforge-test/m.onnx")  # root writes anywhere
    try:
        code, err = run(capsys, "compile", DEMO, "--target", "onnx", "-o", target)
    finally:
        folder.chmod(0o755)
    assert code == 2 and "cannot write" in err and "Traceback" not in err


def test_an_empty_output_path_is_refused(capsys):
    with pytest.raises(SystemExit) as info:
        main(["compile", DEMO, "--target", "onnx", "-o", ""])
    assert info.value.code == 2 and "the path is empty" in capsys.readouterr().err
