"""Crash reproducers: the IR a failing pass received, its weights, and the pipeline text."""
from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

from compiler.ir import Value


def default_dir() -> Path:
    return Path(tempfile.gettempdir()) / "nnforge-reproducers"


def write_reproducer(directory: Path | None, ir_text: str, weights: Mapping[str, Value],
                     passes: Sequence, index: int, error: str, detail: str = "") -> Path:
    """Write `<stamp>-<pass>.nnfir` (IR text with a header) and its `.safetensors` weights."""
    from safetensors.torch import save_file

    directory = Path(directory) if directory is not None else default_dir()
    directory.mkdir(parents=True, exist_ok=True)
    failing = passes[index]
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{re.sub(r'[^A-Za-z0-9_-]', '_', failing.name)}"
    path = directory / f"{stem}.nnfir"
    header = [
        "# nnforge reproducer",
        f"# error: {error}",
        f"# pipeline: {','.join(str(p) for p in passes)}",
        f"# failing pass ({index + 1} of {len(passes)}): {failing}",
        f"# to reproduce: nnforge compile {path} --pipeline '{','.join(str(p) for p in passes[index:])}'",
        f"# weights: {stem}.safetensors",
    ]
    header += [f"# {line}" for line in detail.rstrip().splitlines()]
    path.write_text("\n".join(header) + "\n\n" + ir_text)
    tensors = {name: v.data.detach().contiguous().clone() for name, v in weights.items() if v.data is not None}
    save_file(tensors, str(directory / f"{stem}.safetensors"))
    return path
