"""The per-node translation context handed to every lowering rule.

A rule (in modules.py, functions.py, methods.py, indexing.py) receives a `FxNodeContext` first, then the fx
node's arguments with every fx node replaced by its translation: an IR `Value` for a tensor, a
tuple of Values for a tuple of tensors, a plain Python value for anything else. It emits IR nodes
through the context and returns the Value (or tuple of Values) that stands for the fx result.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.fx as fx

from compiler.errors import FrontendError
from compiler.identities import identity_result
from compiler.ir import Graph, TensorType, Value


class Weights:
    """One IR weight per source tensor, so shared (tied) parameters stay shared."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._by_id: dict[int, tuple[torch.Tensor, Value]] = {}

    def get(self, tensor: torch.Tensor, name: str) -> Value:
        hit = self._by_id.get(id(tensor))
        if hit is not None:
            return hit[1]
        data = tensor.detach()  # shares storage: weights are never copied
        value = self.graph.add_weight(name, data, is_param=isinstance(tensor, torch.nn.Parameter))
        self._by_id[id(tensor)] = (tensor, value)  # keep `tensor` alive so its id stays unique
        return value


class FxNodeContext:
    """What a lowering rule knows about the fx node it translates, and how it emits IR."""

    __slots__ = ("graph", "weights", "node", "name", "source", "out")

    def __init__(self, graph: Graph, weights: Weights, node: fx.Node, source: str, out: Any):
        self.graph, self.weights, self.node = graph, weights, node
        self.name = node.name
        self.source = source
        self.out = out  # the recorded result: TensorType, or a structure of them

    # ---- emitting ------------------------------------------------------------------------
    def emit(self, op: str, inputs: Sequence[Value | None], attrs: dict | None = None, *,
             suffix: str = "", out: TensorType | None = None) -> Value:
        """Emit a one-result node. Without `suffix` it is the node standing for the fx result:
        it takes the fx node's name and the recorded result type. A data-movement identity
        (compiler/identities.py) emits nothing and returns the input it passes through."""
        if out is None and not suffix and isinstance(self.out, TensorType):
            out = self.out
        same = identity_result(self.graph, op, inputs, attrs, None if out is None else [out])
        if same is not None:
            return same[0]
        node = self.graph.create_node(op, inputs, attrs, name=f"{self.name}_{suffix}" if suffix else self.name,
                                      source=self.source, out_types=[out] if out is not None else None)
        return node.outputs[0]

    def emit_multi(self, op: str, inputs: Sequence[Value | None], attrs: dict,
                   outs: Sequence[TensorType], *, suffix: str = "") -> list[Value]:
        same = identity_result(self.graph, op, inputs, attrs, outs)
        if same is not None:
            return same
        node = self.graph.create_node(op, inputs, attrs, name=f"{self.name}_{suffix}" if suffix else self.name,
                                      source=self.source, out_types=list(outs))
        return node.outputs

    def reshape(self, x: Value, shape: Sequence[int], *, suffix: str = "") -> Value:
        """Reshape to a static shape (no node when the shape does not change)."""
        shape = tuple(int(d) for d in shape)
        return self.emit("reshape", [x], {"shape": shape}, suffix=suffix,
                         out=TensorType(shape, x.dtype))

    def reshape_to_result(self, x: Value) -> Value:
        return self.reshape(x, self.out_type().shape)

    def cast(self, x: Value, dtype: torch.dtype, *, suffix: str = "") -> Value:
        return self.emit("cast", [x], {"dtype": dtype}, suffix=suffix, out=TensorType(x.shape, dtype))

    # ---- constants and weights -------------------------------------------------------
    def constant(self, tensor: torch.Tensor, suffix: str = "const") -> Value:
        return self.graph.add_constant(f"{self.name}.{suffix}", tensor)

    def scalar(self, value: int | float | bool, dtype: torch.dtype) -> Value:
        """A Python scalar operand as a 0-d constant of `dtype`."""
        return self.constant(torch.tensor(value, dtype=dtype))

    def param(self, tensor: torch.Tensor | None, name: str) -> Value | None:
        return None if tensor is None else self.weights.get(tensor, name)

    # ---- checks -------------------------------------------------------------------------
    def out_type(self) -> TensorType:
        if not isinstance(self.out, TensorType):
            raise self.error(f"expected {self.what()} to produce one tensor")
        return self.out

    def tensor(self, value: Any, what: str = "input") -> Value:
        if not isinstance(value, Value):
            raise self.error(f"{self.what()}: {what} must be a tensor, got {type(value).__name__}")
        return value

    def what(self) -> str:
        """The fx operation, as the user wrote it."""
        return describe(self.node)

    def error(self, what: str, hint: str = "") -> FrontendError:
        return FrontendError(what, where=self.source, hint=hint)


def describe(node: fx.Node, module: torch.nn.Module | None = None) -> str:
    """Name of what an fx node calls: `nn.Conv2d`, `torch.nonzero`, `Tensor.masked_fill`."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "call_module":
        cls = type(module) if module is not None else None
        if cls is None:
            return f"module '{node.target}'"
        prefix = "nn." if cls.__module__.startswith("torch.nn") else f"{cls.__module__}."
        return f"{prefix}{cls.__qualname__} ('{node.target}')"
    if node.op == "call_function":
        return qualified_name(node.target)
    return f"{node.op} {node.target}"


_C_MODULES = {"torch._C._nn": ("torch.nn.functional", ""), "torch._C._fft": ("torch.fft", "fft_"),
              "torch._C._linalg": ("torch.linalg", "linalg_"), "torch._C._special": ("torch.special", "special_")}


def qualified_name(fn: Any) -> str:
    """The public name of a traced callable: `torch.nonzero`, `torch.fft.fft`, `operator.add`."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):  # a classmethod, e.g. a custom autograd Function's apply
        return f"{owner.__module__}.{owner.__qualname__}.{fn.__name__}"
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    if "<locals>" in name:
        name = getattr(fn, "__name__", name)
    if name.startswith("_VariableFunctionsClass."):
        name = name.split(".", 1)[1]
    if module in _C_MODULES:
        module, prefix = _C_MODULES[module]
        name = name.removeprefix(prefix)
    elif module == "torch.functional":
        module = "torch"
    elif module == "_operator":
        module = "operator"
    elif module.startswith("torch.nn.functional"):
        module = "torch.nn.functional"
    return f"{module}.{name}" if module and module != "builtins" else name
