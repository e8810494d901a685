"""Resolving the CLI's MODEL argument: `file.py:callable`, `package.module:callable`, or a file
that a frontend reads directly (`model.onnx`)."""
from __future__ import annotations

import importlib
import math
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compiler.errors import UserInputError

MODEL_FILE_SUFFIXES = (".onnx", ".nnfir")


@dataclass
class LoadedModel:
    model: Any                                  # an nn.Module or a model file path
    example_inputs: tuple[torch.Tensor, ...] | None
    name: str


def load_model(spec: str) -> LoadedModel:
    """Load the model a CLI user named, with one clear error for each way it can go wrong."""
    path = Path(spec)
    if path.suffix.lower() in MODEL_FILE_SUFFIXES:
        if not _is_file(path):
            raise UserInputError(f"model file not found: {spec[:200]}", hint="check the path")
        return LoadedModel(path, None, path.stem)
    if ":" not in spec:
        raise UserInputError(f"cannot tell how to load model '{spec}'",
                             hint="name a callable as path/to/file.py:make_model or "
                                  "package.module:make_model, or give a .onnx file")
    where, _, attr = spec.rpartition(":")
    factory = getattr(_import(where), attr, None) if attr else None
    if factory is None:
        raise UserInputError(f"'{where}' has no attribute '{attr}'", hint="name the function that builds the model")
    if isinstance(factory, torch.nn.Module) or not callable(factory):
        return _unpack(factory, spec, attr)
    try:
        made = factory()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit(0) or a BaseException subclass must not end nnforge quietly
        raise UserInputError(f"'{spec}' raised {type(exc).__name__}: {exc}",
                             hint="call it in Python to see the full error, or use --debug") from exc
    return _unpack(made, spec, attr)


def _import(where: str):
    if where.endswith(".py"):
        path = Path(where)
        if not _is_file(path):
            raise UserInputError(f"model file not found: {where[:200]}", hint="check the path")
        module_name = f"_nnforge_user_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent.resolve()))
        try:
            spec.loader.exec_module(module)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise UserInputError(f"could not load {where}: {type(exc).__name__}: {exc}",
                                 hint="run the file with python to see the full error") from exc
        finally:
            sys.path.remove(str(path.parent.resolve()))
        return module
    try:
        return importlib.import_module(where)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise UserInputError(f"could not import module '{where}': {type(exc).__name__}: {exc}",
                             hint="is the package installed or on PYTHONPATH?") from exc


def _unpack(made: Any, spec: str, name: str) -> LoadedModel:
    inputs = None
    if isinstance(made, tuple) and len(made) == 2:
        made, inputs = made
        inputs = (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)
        if not all(isinstance(t, torch.Tensor) for t in inputs):
            raise UserInputError(f"'{spec}' returned example inputs that are not tensors",
                                 hint="return (module, (tensor, ...))")
    if not isinstance(made, torch.nn.Module):
        raise UserInputError(f"'{spec}' returned a {type(made).__name__}, not a torch.nn.Module",
                             hint="return an nn.Module, or a tuple (module, example_inputs)")
    return LoadedModel(made.eval(), inputs, name)


MAX_DIM = 2**31 - 1   # torch's kernels index dims with 32-bit ints in places
MAX_RANK = 16
MAX_ELEMENTS = 2**48  # far past any memory; keeps every size computation inside int64


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system, among others
        return False


def parse_shape(text: str) -> tuple[int, ...]:
    """`1x3x224x224` -> (1, 3, 224, 224); `scalar` -> () (a 0-d input, such as a sample rate)."""
    if text.strip().lower() == "scalar":
        return ()
    parts = text.lower().split("x")
    dims = tuple(int(d) for d in parts) if all(d.isascii() and d.isdigit() and len(d) <= 12 for d in parts) else ()
    if not dims or not 0 < len(dims) <= MAX_RANK or any(not 0 < d <= MAX_DIM for d in dims) \
            or math.prod(dims) > MAX_ELEMENTS:
        raise UserInputError(f"bad input shape '{text[:80]}'",
                             hint=f"write up to {MAX_RANK} dims as positive integers (at most {MAX_DIM}) "
                                  "joined by x, e.g. 1x3x224x224 (or 'scalar' for a 0-d input)")
    return dims
