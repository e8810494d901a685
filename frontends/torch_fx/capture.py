"""Capture: trace a module with torch.fx and run the trace once on example inputs.

The run records every fx node's concrete result in a light form (`Capture.results`): a tensor
becomes its `TensorType` (shape and dtype), containers keep their structure, anything else (ints,
`torch.Size`, dtypes, floats from shape arithmetic) is kept as is. Tensors are kept whole only
for the nodes in `keep` (data-independent factories such as `torch.zeros_like`, whose value
becomes an IR constant) and for the graph output (the reference for the numeric check).

Every traced node also gets `meta["nnforge_loc"]`: `file.py:line` of the model code that created
it, found by walking up the Python stack to the first frame outside torch (much cheaper than
fx's `record_stack_traces`).
"""
from __future__ import annotations

import os
import sys
import sysconfig
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx

from compiler import memory
from compiler.errors import FrontendError
from compiler.ir import TensorType

LOC = "nnforge_loc"
_SKIP_DIRS = tuple(os.path.dirname(p) + os.sep for p in (torch.__file__, os.__file__)) + (
    sysconfig.get_paths()["stdlib"] + os.sep,)
_OWN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # frontends/
_code_kind: dict[Any, int] = {}  # code object -> 0 skip (torch/stdlib), 1 user code, 2 ours


def _kind(code) -> int:
    kind = _code_kind.get(code)
    if kind is None:
        path = os.path.abspath(code.co_filename)
        kind = 2 if path.startswith(_OWN_DIR) else 0 if path.startswith(_SKIP_DIRS) else 1
        _code_kind[code] = kind
    return kind


def user_location(frame=None) -> str:
    """`file.py:line` of the innermost frame that belongs to the model's own code."""
    frame = frame or sys._getframe(1)
    while frame is not None:
        kind = _kind(frame.f_code)
        if kind == 1:
            return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        if kind == 2:
            return ""
        frame = frame.f_back
    return ""


def traceback_location(tb) -> str:
    """The model-code location nearest the point where an exception was raised."""
    found = ""
    while tb is not None:
        if _kind(tb.tb_frame.f_code) == 1:
            found = f"{os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


class _Tracer(fx.Tracer):
    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        node.meta[LOC] = user_location(sys._getframe(1))
        return node


def trace(module: torch.nn.Module) -> fx.Graph:
    """Symbolically trace `module` into an fx graph (no GraphModule is built)."""
    try:
        return _Tracer().trace(module)
    except Exception as exc:  # noqa: BLE001 - every tracing failure becomes a FrontendError
        raise FrontendError(
            f"torch.fx could not trace {type(module).__name__}: {type(exc).__name__}: {exc}",
            where=traceback_location(exc.__traceback__),
            hint="symbolic tracing cannot follow data-dependent Python control flow (`if x.sum() > 0`, "
                 "loops over tensor values, len()/iteration of traced tensors); rewrite it with tensor "
                 "ops or static Python values") from None


def summarize(value: Any) -> Any:
    """A recorded result: tensors become TensorType, containers keep their shape."""
    if isinstance(value, torch.Tensor):
        return TensorType(tuple(value.shape), value.dtype)
    if isinstance(value, (tuple, list)):
        items = [summarize(v) for v in value]
        if all(a is b for a, b in zip(items, value)):
            return value  # no tensor inside: keep it as is (torch.Size stays a Size)
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {k: summarize(v) for k, v in value.items()}
    return value


def has_tensor(recorded: Any) -> bool:
    if isinstance(recorded, TensorType):
        return True
    if isinstance(recorded, (tuple, list)):
        return any(has_tensor(v) for v in recorded)
    if isinstance(recorded, dict):
        return any(has_tensor(v) for v in recorded.values())
    return False


@dataclass
class Capture:
    module: torch.nn.Module
    graph: fx.Graph
    results: dict[fx.Node, Any]   # node -> recorded result (see module docstring)
    output: Any                   # the real output of the run (tensors kept)


class _Recorder(fx.Interpreter):
    def __init__(self, module: torch.nn.Module, graph: fx.Graph, keep: Callable[[fx.Node], bool]):
        super().__init__(module, garbage_collect_values=True, graph=graph)
        self.results: dict[fx.Node, Any] = {}
        self.keep = keep
        self.failed: fx.Node | None = None
        self.extra_traceback = False

    def run_node(self, n: fx.Node) -> Any:
        try:
            result = super().run_node(n)
        except Exception:
            self.failed = n
            raise
        if not self.keep(n):
            self.results[n] = summarize(result)
        elif isinstance(result, torch.Tensor) and n.op != "output":
            self.results[n] = result.clone()  # a later in-place op must not change the recorded value
        else:
            self.results[n] = result
        return result


def run(module: torch.nn.Module, graph: fx.Graph, inputs: Sequence[Any],
        keep: Callable[[fx.Node], bool], where: Callable[[fx.Node], str]) -> Capture:
    """Run the traced graph on `inputs` (cloned: the model may modify them in place)."""
    inputs = [t.clone() if isinstance(t, torch.Tensor) else t for t in inputs]
    recorder = _Recorder(module, graph, keep)
    try:
        with torch.no_grad():
            output = recorder.run(*inputs)
    except Exception as exc:  # noqa: BLE001 - the user's forward failed on these inputs
        node = recorder.failed
        raise FrontendError(
            f"running {type(module).__name__} on the example inputs failed"
            f"{f' at {node.name}' if node is not None else ''}: {type(exc).__name__}: {exc}",
            where=where(node) if node is not None else "",
            hint="check the input shapes; a forward that takes integer inputs (token ids, masks) "
                 "needs real example_inputs, since input_shapes only makes float32 random tensors") from None
    return Capture(module, graph, recorder.results, output)


def prepare_inputs(graph: fx.Graph, example_inputs: Sequence[Any] | None,
                   input_shapes: Sequence[Sequence[int]] | None) -> list[Any]:
    """Example inputs from the caller, or float32 random ones of `input_shapes`."""
    if example_inputs is None and input_shapes is None:
        raise FrontendError("the torch.fx frontend needs example_inputs or input_shapes",
                            hint="pass example tensors, or one static shape per forward() input")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if input_shapes is not None and all(isinstance(d, int) for d in input_shapes):
        input_shapes = [tuple(input_shapes)]  # one shape given bare: (1, 3, 224, 224)
    if example_inputs is not None and input_shapes is not None:
        shapes = [tuple(s) for s in input_shapes]
        got = [tuple(t.shape) if isinstance(t, torch.Tensor) else None for t in example_inputs]
        if shapes != got:
            raise FrontendError(f"example_inputs have shapes {got} but input_shapes says {shapes}",
                                hint="pass only one of them, or make them agree")
    if example_inputs is None:
        memory.check(sum(memory.tensor_bytes(s, torch.float32) for s in input_shapes), "random example inputs")
        gen = torch.Generator().manual_seed(0)
        example_inputs = [torch.randn(tuple(s), generator=gen) for s in input_shapes]
    inputs = list(example_inputs)
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    required = [n for n in placeholders if not n.args]
    if not len(required) <= len(inputs) <= len(placeholders):
        names = ", ".join(n.target for n in placeholders)
        raise FrontendError(f"forward({names}) takes {len(required)}..{len(placeholders)} inputs, "
                            f"got {len(inputs)}", hint="pass one example input (or shape) per forward() argument")
    return inputs
