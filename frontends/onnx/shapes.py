"""Graph input shapes: the declared ones, bound to static ones, and the declared outputs checked.

Exporters leave input dims dynamic (a dim_param such as `batch`, `height` or `?`, a dim of -1,
or no dim at all). Every such dim is fixed by the caller: `input_shapes` (the CLI's
`--input-shape`, one per graph input in order) or the shapes of `example_inputs`. Static dims
the model declares must be kept. From there the static shapes propagate through every node.
"""
from __future__ import annotations

from typing import Sequence

import onnx
import torch

from compiler.errors import FrontendError, UserInputError
from compiler.ir import TensorType, Value
from compiler.printer import format_type
from frontends.onnx.limits import MAX_RANK, MAX_TENSOR_BYTES, format_bytes, nbytes
from frontends.onnx.tensors import torch_dtype

Dim = int | str     # a static size, or the name of a dynamic one ("?" when unnamed)


def graph_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """The inputs a caller feeds: declared inputs that are not also initializers (defaults)."""
    initialized = {t.name for t in graph.initializer}
    return [vi for vi in graph.input if vi.name not in initialized]


def declared_dims(vi: onnx.ValueInfoProto) -> list[Dim] | None:
    """The declared dims (None when not even the rank is declared)."""
    tensor_type = vi.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else (d.dim_param or "?")
            for d in tensor_type.shape.dim]


def format_dims(dims: list[Dim] | None) -> str:
    """`(batch, 3, height, width)`: parentheses, since named dims in brackets read as rich markup."""
    return "(unknown rank)" if dims is None else "(" + ", ".join(str(d) for d in dims) + ")"


def input_dtype(vi: onnx.ValueInfoProto) -> torch.dtype:
    if not vi.type.HasField("tensor_type"):
        raise FrontendError(f"graph input '{vi.name}' is not a tensor (sequences, maps and optionals are "
                            "not supported)")
    return torch_dtype(vi.type.tensor_type.elem_type, f"graph input '{vi.name}'")


def bind_inputs(graph: onnx.GraphProto, example_inputs: Sequence[torch.Tensor] | None,
                input_shapes: Sequence[Sequence[int]] | None) -> list[TensorType]:
    """One static TensorType per graph input, or a clear error saying what to pass."""
    inputs = graph_inputs(graph)
    dtypes = [input_dtype(vi) for vi in inputs]
    if example_inputs is not None:
        given = [tuple(t.shape) for t in example_inputs]
        _check_count(inputs, len(given), "example inputs")
        for vi, t, dtype in zip(inputs, example_inputs, dtypes):
            if t.dtype != dtype:
                raise UserInputError(f"example input for '{vi.name}' is {t.dtype}, the model declares {dtype}")
    elif input_shapes is not None:
        given = [tuple(s) for s in input_shapes]
        _check_count(inputs, len(given), "--input-shape values")
    else:
        given = [_declared_static(vi) for vi in inputs]
        missing = [vi for vi, shape in zip(inputs, given) if shape is None]
        if missing:
            listed = ", ".join(f"'{vi.name}' {format_dims(declared_dims(vi))}" for vi in missing)
            example = " ".join(f"--input-shape {_template(vi)}" for vi in inputs)
            raise UserInputError(f"the model has dynamic input dimensions: {listed}",
                                 hint=f"fix every input's shape, one --input-shape per input in order, "
                                      f"e.g. {example} (input_shapes=[...] in Python)")
    types = []
    for vi, shape, dtype in zip(inputs, given, dtypes):
        _check_fits(vi, shape, dtype)
        types.append(TensorType(tuple(int(d) for d in shape), dtype))
    return types


def _check_count(inputs: list[onnx.ValueInfoProto], count: int, what: str) -> None:
    if count != len(inputs):
        names = ", ".join(f"'{vi.name}' {format_dims(declared_dims(vi))}" for vi in inputs)
        raise UserInputError(f"the model takes {len(inputs)} input(s) ({names}), got {count} {what}",
                             hint="give one shape per graph input, in order")


def _declared_static(vi: onnx.ValueInfoProto) -> tuple[int, ...] | None:
    dims = declared_dims(vi)
    if dims is None or any(isinstance(d, str) for d in dims):
        return None
    return tuple(dims)


def _template(vi: onnx.ValueInfoProto) -> str:
    dims = declared_dims(vi)
    if dims is None:
        return "<shape>"
    return "x".join(str(d) if isinstance(d, int) else f"<{d}>" for d in dims) or "scalar"


def _check_fits(vi: onnx.ValueInfoProto, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    dims = declared_dims(vi)
    if any(not isinstance(d, int) or d < 0 for d in shape) or len(shape) > MAX_RANK:
        raise UserInputError(f"shape {list(shape)} for input '{vi.name}' is not a list of at most {MAX_RANK} "
                             "non-negative dims")
    if dims is not None:
        if len(dims) != len(shape):
            raise UserInputError(f"input '{vi.name}' has rank {len(dims)} {format_dims(dims)}, the given shape "
                                 f"{'x'.join(map(str, shape)) or 'scalar'} has rank {len(shape)}",
                                 hint=f"pass a shape like {_template(vi)}")
        wrong = [i for i, (d, s) in enumerate(zip(dims, shape)) if isinstance(d, int) and d != s]
        if wrong:
            raise UserInputError(f"input '{vi.name}' declares {format_dims(dims)}; the given shape "
                                 f"{list(shape)} differs at dim {wrong[0]} (the model fixes it to {dims[wrong[0]]})",
                                 hint=f"only the named dims can change: {_template(vi)}")
    size = nbytes(shape, dtype.itemsize)
    if size > MAX_TENSOR_BYTES:
        raise UserInputError(f"input '{vi.name}' of shape {list(shape)} would need {format_bytes(size)}",
                             hint="pick a smaller --input-shape")


def check_outputs(graph: onnx.GraphProto, outputs: list[Value], label: str) -> None:
    """Static dims the model declares for its outputs must match what the graph computes."""
    for vi, value in zip(graph.output, outputs):
        dims = declared_dims(vi)
        if dims is None:
            continue
        if len(dims) != value.rank or any(isinstance(d, int) and d != n for d, n in zip(dims, value.shape)):
            raise FrontendError(f"{label} declares output '{vi.name}' as {format_dims(dims)}, but with these input "
                                f"shapes it is {format_type(value.type)}",
                                hint="the input shapes do not fit the model (check --input-shape), or the "
                                     "model's declared shapes contradict its weights")
        elem = vi.type.tensor_type.elem_type
        if elem and torch_dtype(elem, f"graph output '{vi.name}'") != value.dtype:
            raise FrontendError(f"{label} declares output '{vi.name}' as {torch_dtype(elem, '')}, but it computes "
                                f"{value.dtype}")
