"""Files a model names beside itself, resolved with symlinks followed and kept inside its folder.

ONNX external data and the `.safetensors` weights of an `.nnfir` file are read only when the
resolved path stays in the folder of the model file that names them: absolute paths, `..`
escapes and symlinks pointing elsewhere are refused, as are missing, special or unresolvable
files. Nothing outside the folder is ever opened.
"""
from __future__ import annotations

from pathlib import Path, PureWindowsPath

from compiler.errors import FrontendError


def confined_file(base_dir: Path, location: str, where: str, what: str) -> Path:
    """The regular file `location` names relative to `base_dir`, which it must not leave."""
    if not location or "\0" in location:
        raise FrontendError(f"{where} has {what} without a usable location")
    if Path(location).is_absolute() or PureWindowsPath(location).drive or location.startswith(("\\", "/")):
        raise FrontendError(f"{where}: {what} location '{location}' is an absolute path",
                            hint=f"{what} must be a relative path inside the model's folder")
    try:
        root = base_dir.resolve()
        target = (root / location).resolve()
        inside, regular = target.is_relative_to(root), target.is_file()
    except (OSError, RuntimeError) as exc:  # symlink loops, over-long names
        reason = getattr(exc, "strerror", None) or exc
        raise FrontendError(f"{where}: {what} location '{location[:200]}' cannot be resolved: {reason}") from None
    if not inside:
        raise FrontendError(f"{where}: {what} location '{location}' points outside the model's folder "
                            f"({root})", hint=f"refusing to read it; {what} must stay next to the model")
    if not regular:
        raise FrontendError(f"{where}: {what} file '{location}' is missing (looked in {root})",
                            hint="copy the file next to the model file")
    return target
