"""Evaluation callables (`--eval file.py:evaluate`) and the predict function they are handed.

The user writes `evaluate(predict) -> float | dict[str, float]`: `predict(x)` runs one compiled
artifact (or the IR) on any number of samples and returns its outputs, so the same function
scores the interpreter, onnxruntime, a C simulation or a noisy crossbar simulation. A float is
the `accuracy` column; a dict gives one column per key.

An `Evaluator` carries the callable's source text, not a reference to it: sweep workers (local
processes or Ray tasks on other machines) rebuild it from that text, and the cache key of a sweep
point includes it, so editing the file re-evaluates every point.
"""
from __future__ import annotations

import hashlib
import importlib
import math
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from compiler.errors import UserInputError
from compiler.ir import Graph


class EvaluationError(UserInputError):
    """The evaluation callable raised, or returned something that is not a metric."""


def predictor(run: Callable[..., Sequence[torch.Tensor]], graph: Graph) -> Callable[..., Any]:
    """`predict(*inputs)` for inputs of any leading size N: runs `run` on batches of the graph's
    static batch (the last one padded with zeros), returns the outputs' first N rows (one tensor,
    or a tuple for several outputs)."""
    types_ = [v.type for v in graph.inputs]
    batch = types_[0].shape[0] if types_ and types_[0].shape else None

    def predict(*inputs: Any) -> Any:
        if len(inputs) != len(types_):
            raise EvaluationError(f"predict() takes {len(types_)} input(s), one per graph input; got {len(inputs)}")
        tensors = [torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(t.dtype)
                   for x, t in zip(inputs, types_)]
        if batch is None:
            return _unpack(run(*tensors))
        n = tensors[0].shape[0]
        for x, t in zip(tensors, types_):
            if x.shape[0] != n or tuple(x.shape[1:]) != t.shape[1:]:
                raise EvaluationError(f"predict() got an input of shape {list(x.shape)}; the graph takes "
                                      f"[N, {', '.join(str(d) for d in t.shape[1:])}] (N samples, any N)")
        chunks = []
        for start in range(0, n, batch):
            part = [x[start:start + batch] for x in tensors]
            short = batch - part[0].shape[0]
            if short:
                part = [torch.cat([p, p.new_zeros((short, *p.shape[1:]))]) for p in part]
            chunks.append([o[:batch - short] for o in run(*part)])
        outputs = [torch.cat([c[i] for c in chunks]) for i in range(len(chunks[0]))] if chunks else []
        return _unpack(outputs)

    return predict


def _unpack(outputs: Sequence[torch.Tensor]) -> Any:
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


@dataclass(frozen=True)
class Evaluator:
    """`spec` as the user wrote it; `source` the text of the file (None for an importable module,
    which every worker imports by name); `path` where the file was."""

    spec: str
    attribute: str
    source: str | None = None
    path: str = ""
    module: str = ""

    @property
    def fingerprint(self) -> str:
        text = self.source if self.source is not None else self.module + ":" + self.attribute
        return hashlib.sha256(f"{self.attribute}\n{text}".encode()).hexdigest()

    def function(self) -> Callable[..., Any]:
        """The callable, built once per process (sweep workers evaluate many points)."""
        fn = _LOADED.get(self.fingerprint)
        if fn is None:
            module = _module_from_source(self) if self.source is not None else _import(self)
            fn = getattr(module, self.attribute, None)
            if not callable(fn):
                raise EvaluationError(f"evaluation callable '{self.spec}' not found",
                                      hint=f"define `def {self.attribute}(predict): ...` returning a number")
            _LOADED[self.fingerprint] = fn
        return fn

    def __call__(self, run: Callable[..., Sequence[torch.Tensor]], graph: Graph) -> dict[str, float]:
        """The callable's metrics for one runnable thing (artifact or interpreter)."""
        fn = self.function()
        try:
            with torch.no_grad():
                result = fn(predictor(run, graph))
        except EvaluationError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's code: any failure is reported, not raised raw
            raise EvaluationError(f"evaluation callable '{self.spec}' raised {type(exc).__name__}: {exc}",
                                  hint="run it on the model in Python to see the traceback, or use --debug") from exc
        return _metrics(self.spec, result)


def _metrics(spec: str, result: Any) -> dict[str, float]:
    values = result if isinstance(result, dict) else {"accuracy": result}
    out = {}
    for name, value in values.items():
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise EvaluationError(f"evaluation callable '{spec}' returned {name}={value!r}",
                                  hint="return a finite number (the accuracy) or a dict of name -> number")
        out[str(name)] = float(value)
    return out


_LOADED: dict[str, Callable[..., Any]] = {}


def _import(ev: Evaluator) -> types.ModuleType:
    try:
        return importlib.import_module(ev.module)
    except Exception as exc:  # noqa: BLE001
        raise EvaluationError(f"could not import module '{ev.module}': {type(exc).__name__}: {exc}",
                              hint="is the package installed or on PYTHONPATH?") from exc


def _module_from_source(ev: Evaluator) -> types.ModuleType:
    module = types.ModuleType(f"_nnforge_eval_{Path(ev.path).stem}")
    module.__file__ = ev.path
    folder = str(Path(ev.path).parent)
    added = Path(folder).is_dir() and folder not in sys.path
    if added:
        sys.path.insert(0, folder)  # the file's own imports of its neighbours
    try:
        exec(compile(ev.source, ev.path, "exec"), module.__dict__)  # noqa: S102 - the user's own file
    except Exception as exc:  # noqa: BLE001
        raise EvaluationError(f"could not load {ev.path}: {type(exc).__name__}: {exc}",
                              hint="run the file with python to see the full error") from exc
    finally:
        if added:
            sys.path.remove(folder)
    return module


def load_evaluator(spec: str) -> Evaluator:
    """`path/to/file.py:callable` (the file's text travels with the evaluator) or
    `package.module:callable` (imported by name wherever it runs)."""
    where, sep, attribute = spec.rpartition(":")
    if not sep or not where or not attribute.isidentifier():
        raise UserInputError(f"cannot tell which function '{spec}' names",
                             hint="write --eval path/to/file.py:evaluate or --eval package.module:evaluate")
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise UserInputError(f"evaluation file not found: {where}", hint="check the path")
        evaluator = Evaluator(spec, attribute, source=path.read_text(), path=str(path.resolve()))
    else:
        evaluator = Evaluator(spec, attribute, module=where)
    evaluator.function()  # fail now, with one message, rather than in every sweep point
    return evaluator
