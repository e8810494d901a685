"""Crash reproducers: the IR a failing pass received, its weights, and the pipeline text.

They go to `--reproducer-dir`, or by default to `nnforge-reproducers-<uid>` in the temp folder:
created 0700, and used only while it is a real folder (not a symlink) owned by this user with no
access for others. Each reproducer is a fresh pair of files, created exclusively (O_EXCL) without
following symlinks under a name no other failure uses, so a reproducer never overwrites anything.
"""
from __future__ import annotations

import os
import re
import secrets
import shlex
import stat
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

from compiler.errors import UserInputError
from compiler.ir import Value

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def default_dir() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return Path(tempfile.gettempdir()) / f"nnforge-reproducers-{uid}"


def private_dir(directory: Path) -> Path:
    """`directory`, created 0700 if missing; refused unless it is this user's own, private folder."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UserInputError(f"cannot create the reproducer folder {directory}: {exc.strerror}") from None
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != os.getuid()) \
            or info.st_mode & 0o077:
        raise UserInputError(f"refusing to write reproducers into {directory}: it is not a private folder of "
                             "this user (a symlink, another owner, or open to others)",
                             hint="remove it, or give --reproducer-dir")
    return directory


def write_reproducer(directory: Path | None, ir_text: str, weights: Mapping[str, Value],
                     passes: Sequence, index: int, error: str, detail: str = "") -> Path:
    """Write `<stamp>-<pass>-<random>.nnfir` (IR text with a header) and its `.safetensors` weights."""
    from safetensors.torch import save_file

    if directory is None:
        directory = private_dir(default_dir())
    else:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
    failing = passes[index]
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{re.sub(r'[^A-Za-z0-9_-]', '_', failing.name)}"
    for _ in range(100):
        stem = f"{base}-{secrets.token_hex(3)}"
        path = directory / f"{stem}.nnfir"
        try:
            ir_fd = os.open(path, _CREATE, 0o600)
        except FileExistsError:
            continue
        try:
            weights_fd = os.open(directory / f"{stem}.safetensors", _CREATE, 0o600)
        except FileExistsError:
            os.close(ir_fd)
            os.unlink(path)
            continue
        break
    else:  # pragma: no cover - 100 random names all taken
        raise FileExistsError(f"no free reproducer name in {directory}")
    rest = ",".join(str(p) for p in passes[index:])
    header = [
        "nnforge reproducer",
        f"error: {error}",
        f"pipeline: {','.join(str(p) for p in passes)}",
        f"failing pass ({index + 1} of {len(passes)}): {failing}",
        f"to reproduce: nnforge compile {shlex.quote(str(path))} --pipeline {shlex.quote(rest)}",
        f"weights: {stem}.safetensors",
        *detail.rstrip().splitlines(),
    ]
    with os.fdopen(ir_fd, "w", encoding="utf-8") as f:  # every header line a comment, whatever it holds
        f.write("".join(f"# {line}\n" for entry in header for line in entry.splitlines() or [""]) + "\n" + ir_text)
    os.close(weights_fd)  # created exclusively above; save_file fills that same new file
    tensors = {name: v.data.detach().contiguous().clone() for name, v in weights.items() if v.data is not None}
    save_file(tensors, str(directory / f"{stem}.safetensors"))
    return path
