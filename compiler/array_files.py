"""Reading `.npy` / `.npz` data files without trusting them (the CLI's `--calibration-data`).

Every array's header is read before its data: the dtype must be plain numbers (bool, int, uint,
float, either byte order), the shape must hold at least one element, and the bytes it declares
must fit both the file (a 1 KB `.npy` claiming 3.6 TiB is refused) and the memory limit of
`compiler.memory` (so is a 6 MB `.npz` that would expand to 6 GiB). Pickles are never loaded.
Arrays come back in native byte order; float arrays holding NaN or inf are refused with a count.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from compiler import memory
from compiler.errors import UserInputError

NUMERIC_KINDS = "biuf"  # bool, signed and unsigned int, float
HEADER_LIMIT = 10_000   # bytes of a .npy header (numpy's own default bound)


def load_arrays(path: str | Path) -> np.ndarray | dict[str, np.ndarray]:
    """An .npy array, or an .npz archive as name -> array in file order, validated."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as archive:
                arrays = _read_archive(path, archive)
        else:
            with open(path, "rb") as f:
                arrays = {"": _read_array(path, f, path.stat().st_size, "")}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise UserInputError(f"cannot read data file '{path}': {reason}",
                             hint="write it with numpy.save / numpy.savez from a numeric array") from None
    return arrays[""] if set(arrays) == {""} else arrays


def _read_archive(path: Path, archive: zipfile.ZipFile) -> dict[str, np.ndarray]:
    members = archive.infolist()
    if not members:
        raise UserInputError(f"data file '{path}' holds no arrays")
    declared = 0
    for info in members:
        if not info.filename.endswith(".npy"):
            raise UserInputError(f"data file '{path}' holds '{info.filename}', which is not an array",
                                 hint="an .npz archive must hold only .npy arrays (numpy.savez)")
        with archive.open(info) as f:
            declared += _header_bytes(path, f, info.file_size, info.filename)
    memory.check(declared, f"reading '{path}'")
    out = {}
    for info in members:
        with archive.open(info) as f:
            out[info.filename[:-4]] = _read_array(path, f, info.file_size, info.filename)
    return out


def _header_bytes(path: Path, f: BinaryIO, size: int, member: str) -> int:
    """The data bytes a .npy header declares, after checking its dtype and that the file holds them."""
    where = f"'{path}'" + (f" member '{member}'" if member else "")
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=HEADER_LIMIT)
    else:
        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=HEADER_LIMIT)
    if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype:
        raise UserInputError(f"data file {where} holds {dtype} values, not plain numbers",
                             hint="save a numeric array (float32, int64, ...)")
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=object))
    if nbytes == 0:
        raise UserInputError(f"data file {where} holds an empty array of shape {list(shape)}")
    if nbytes > size - f.tell():
        raise UserInputError(f"data file {where} declares {memory.format_bytes(nbytes)} of shape {list(shape)}, "
                             f"but holds only {memory.format_bytes(max(size - f.tell(), 0))}",
                             hint="the file is truncated or corrupted")
    return nbytes


def _read_array(path: Path, f: BinaryIO, size: int, member: str) -> np.ndarray:
    where = f"'{path}'" + (f" member '{member}'" if member else "")
    nbytes = _header_bytes(path, f, size, member)
    if not member:
        memory.check(nbytes, f"reading '{path}'")
    f.seek(0)
    array = np.lib.format.read_array(f, allow_pickle=False, max_header_size=HEADER_LIMIT)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if array.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise UserInputError(f"data file {where} holds {bad} NaN or infinite value(s)",
                                 hint="calibration needs finite data; clean or drop those samples")
    return array
