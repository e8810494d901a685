"""Calibration data files (`--calibration-data`): plain numbers in, one clear error for anything
else, and NaN or inf refused with the file and the count."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from compiler import calibration
from compiler.cli import main
from compiler.errors import UserInputError
from compiler.ir import Graph, TensorType

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "examples" / "demo_model.py") + ":build"
BATCH = (4, 3, 32, 32)  # the demo model's input


def compile_with(capsys, path):
    code = main(["compile", DEMO, "--pipeline", "quantize{calibration=2}", "--calibration-data", str(path)])
    return code, capsys.readouterr().err


def test_nan_and_inf_are_refused_naming_the_file_and_the_count(tmp_path, capsys):
    data = np.random.default_rng(0).standard_normal(BATCH).astype(np.float32)
    data[0, 0, 0, :3] = np.nan
    data[1, 0, 0, 0] = np.inf
    np.save(tmp_path / "calib.npy", data)
    code, err = compile_with(capsys, tmp_path / "calib.npy")
    assert code == 2 and f"data file '{tmp_path / 'calib.npy'}' holds 4 NaN or infinite value(s)" in err


def test_nan_in_python_calibration_data_is_refused_with_the_count():
    g = Graph("g")
    x = g.add_input("x", TensorType((2, 3), torch.float32))
    g.outputs = [g.create_node("relu", [x]).output]
    data = torch.zeros(4, 3)
    data[3, 1] = float("-inf")
    with pytest.raises(UserInputError, match="holds 1 NaN or infinite value"):
        calibration.batches(g, data)


def test_big_endian_data_is_read_in_native_order(tmp_path, capsys):
    data = np.random.default_rng(0).standard_normal(BATCH).astype(">f4")
    np.save(tmp_path / "big_endian.npy", data)
    loaded = calibration.load_file(tmp_path / "big_endian.npy")
    assert loaded.dtype == np.float32 and loaded.dtype.isnative and np.array_equal(loaded, data)
    assert compile_with(capsys, tmp_path / "big_endian.npy")[0] == 0


def corrupt_member(path: Path) -> Path:
    np.savez_compressed(path, x=np.ones(BATCH, np.float32))
    raw = bytearray(path.read_bytes())
    raw[80] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def pickled(path: Path) -> Path:
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    return path


def not_an_array(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return path


CASES = [
    ("datetime.npy", lambda p: np.save(p, np.array(["2024-01-01"], dtype="datetime64[D]")), "datetime64[D] values"),
    ("strings.npy", lambda p: np.save(p, np.array(["a", "b"])), "<U1 values"),
    ("structured.npy", lambda p: np.save(p, np.zeros(3, dtype=[("a", "f4"), ("b", "i4")])), "not plain numbers"),
    ("complex.npy", lambda p: np.save(p, np.zeros(3, dtype=np.complex64)), "complex64 values"),
    ("empty.npy", lambda p: np.save(p, np.zeros((0, 3, 32, 32), np.float32)), "holds an empty array"),
    ("corrupt.npz", corrupt_member, "cannot read data file"),
    ("pickled.npz", pickled, "member 'x.npy' holds object values"),
    ("notes.npz", not_an_array, "holds 'notes.txt', which is not an array"),
    ("empty.npz", lambda p: zipfile.ZipFile(p, "w").close(), "holds no arrays"),
    ("truncated.npy", lambda p: p.write_bytes(b"\x93NUMPY\x01\x00"), "cannot read data file"),
    ("text.npy", lambda p: p.write_text("1,2,3"), "cannot read data file"),
    ("calib.csv", lambda p: p.write_text("1,2,3"), "must be a .npy or .npz file"),
]


@pytest.mark.parametrize("name, make, message", CASES, ids=[c[0] for c in CASES])
def test_unusable_calibration_files_are_one_clear_error(tmp_path, capsys, name, make, message):
    make(tmp_path / name)
    code, err = compile_with(capsys, tmp_path / name)
    assert code == 2 and message in err and "Traceback" not in err
