"""Translate a captured fx graph into the IR, node by node.

The environment maps each fx node to its translation: a `Value` for a tensor, a tuple/list of
them for a tuple/list of tensors, and a plain Python constant for every node whose recorded
result holds no tensor (shapes are static, so `B, C, H, W = x.shape`, `x.size(1)`, `h // 2`
evaluate at import time). Rules come from the module, function and method tables.
"""
from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx as fx
from torch.fx.node import map_aggregate

from compiler.errors import FrontendError, IRError
from compiler.ir import Graph, TensorType, Value
from frontends.torch_fx import functions, inplace, methods
from frontends.torch_fx.capture import LOC, Capture, has_tensor
from frontends.torch_fx.context import FxNodeContext, Weights, describe
from frontends.torch_fx.modules import MODULES
from frontends.torch_fx.shapes import Unusable


def source_of(node: fx.Node) -> str:
    """`module.path (file.py:line)`: the innermost module the node belongs to, and the model's line."""
    if node.op == "call_module":
        path = node.target
    else:
        stack = node.meta.get("nn_module_stack")
        path = next(reversed(stack.values()))[0] if stack else ""
    loc = node.meta.get(LOC, "")
    if path and loc:
        return f"{path} ({loc})"
    return path or (f"({loc})" if loc else "")


def is_factory(node: fx.Node) -> bool:
    """Nodes whose whole tensor result the capture keeps (it becomes an IR constant)."""
    if node.op == "call_function":
        return node.target in functions.FACTORIES
    return node.op == "call_method" and node.target in methods.FACTORIES


class Translator:
    def __init__(self, capture: Capture, submodules: dict[str, torch.nn.Module], name: str):
        self.capture = capture
        self.submodules = submodules
        self.graph = Graph(name)
        self.weights = Weights(self.graph)
        self.env: dict[fx.Node, Any] = {}

    def run(self) -> Graph:
        for node in self.capture.graph.nodes:
            if node.op == "output":
                self.graph.outputs = self.outputs(node)
            else:
                self.env[node] = self.visit(node)
        return self.graph

    # ---- one node -----------------------------------------------------------------------
    def visit(self, node: fx.Node) -> Any:
        recorded = self.capture.results[node]
        if node.op == "placeholder":
            if isinstance(recorded, TensorType):
                return self.graph.add_input(node.name, recorded)
            return recorded
        if node.op == "get_attr":
            obj = _fetch(self.capture.module, node.target)
            return self.weights.get(obj, node.target) if isinstance(obj, torch.Tensor) else obj
        args = map_aggregate(node.args, self._lookup)
        kwargs = map_aggregate(node.kwargs, self._lookup)
        module = self.submodules[node.target] if node.op == "call_module" else None
        consumed = _values_in((args, kwargs))
        if is_factory(node):
            return self.factory(node, recorded, args, consumed)
        if not has_tensor(recorded):
            self.check_metadata(node, consumed)
            return recorded
        rule = self.rule(node, module)
        cx = FxNodeContext(self.graph, self.weights, node, source_of(node), recorded)
        try:
            result = rule(cx, module, *args, **kwargs) if module is not None else rule(cx, *args, **kwargs)
        except TypeError as exc:  # the call's arguments do not fit the rule's torch signature
            raise FrontendError(f"unsupported arguments for {describe(node, module)}: {exc}",
                                where=source_of(node)) from None
        except IRError as exc:  # the IR op refused what the rule built
            raise FrontendError(f"{describe(node, module)}: {exc.what}", where=source_of(node)) from None
        target = inplace.mutated(node, module)
        if target is not None:  # later readers of the mutated tensor read the new value
            self.env[target] = result
        return result

    def _lookup(self, a: Any) -> Any:
        if not isinstance(a, fx.Node):
            return a
        value = self.env[a]
        if isinstance(value, Unusable):
            raise FrontendError(value.reason, where=source_of(a))
        return value

    def rule(self, node: fx.Node, module: torch.nn.Module | None) -> Any:
        """The lowering rule for a node (an in-place method uses its out-of-place rule)."""
        rule = None
        if node.op == "call_module":
            rule = MODULES.get(type(module))
        elif node.op == "call_function":
            rule = functions.FUNCTIONS.get(node.target) if _hashable(node.target) else None
        elif node.op == "call_method":
            name = node.target
            rule = methods.METHODS.get(name[:-1] if name.endswith("_") and not name.endswith("__") else name)
        if rule is None:
            raise FrontendError(f"unsupported operation: {describe(node, module)}", where=source_of(node),
                                hint="supported ops are listed in frontends/torch_fx/{modules,functions,methods}.py; "
                                     "rewrite the model with supported ops or extend the tables")
        return rule

    # ---- checks and special nodes --------------------------------------------------------
    def factory(self, node: fx.Node, tensor: Any, args: tuple, consumed: list[Value]) -> Value:
        like = node.target in functions.LIKE_FACTORIES or node.op == "call_method"
        allowed = {id(args[0])} if like and args else set()
        if any(id(v) not in allowed for v in consumed):
            raise FrontendError(f"{describe(node)} with tensor-valued arguments is data-dependent",
                                where=source_of(node), hint="only shapes and Python values may build tensors")
        return self.graph.add_constant(node.name, tensor)

    def check_metadata(self, node: fx.Node, consumed: list[Value]) -> None:
        """A Python value computed from a tensor must be static metadata (shape, dtype, ...)."""
        if not consumed:
            return
        if node.op == "call_method" and node.target in methods.METADATA:
            return
        if node.op == "call_function":
            if node.target is getattr and node.args[1] in functions.METADATA_ATTRS:
                return
            if _hashable(node.target) and node.target in functions.METADATA:
                return
            if node.target in (getattr, operator.getitem) and not isinstance(self.env.get(node.args[0]), Value):
                return  # picking a Python value out of a container that also holds tensors
        raise FrontendError(f"{describe(node)} turns tensor data into a Python value, which would be frozen "
                            "into the graph", where=source_of(node),
                            hint="data-dependent Python values (item(), tolist(), comparisons) cannot be "
                                 "imported; keep the computation in tensor ops")

    def outputs(self, node: fx.Node) -> list[Value]:
        """Graph outputs: the returned structure flattened depth-first (tuple/list items in order,
        dict values in insertion order); None entries are skipped."""
        flat: list[Value] = []
        for leaf in flatten(map_aggregate(node.args[0], self._lookup)):
            if leaf is None:
                continue
            if isinstance(leaf, Unusable):
                raise FrontendError(leaf.reason, where=source_of(node))
            if not isinstance(leaf, Value):
                raise FrontendError(f"the model returns a {type(leaf).__name__} ({leaf!r}); only tensors can "
                                    "be graph outputs", where=source_of(node))
            flat.append(leaf)
        return flat


def flatten(structure: Any) -> list[Any]:
    """Leaves of nested tuples/lists/dicts, depth-first (dicts in insertion order)."""
    if isinstance(structure, (tuple, list)):
        return [leaf for item in structure for leaf in flatten(item)]
    if isinstance(structure, dict):
        return [leaf for item in structure.values() for leaf in flatten(item)]
    return [structure]


def _values_in(structure: Any) -> list[Value]:
    found: list[Value] = []

    def visit(a: Any) -> None:
        if isinstance(a, Value):
            found.append(a)
        elif isinstance(a, (tuple, list)):
            for item in a:
                visit(item)
        elif isinstance(a, dict):
            for item in a.values():
                visit(item)
    visit(structure)
    return found


def _fetch(module: torch.nn.Module, target: str) -> Any:
    obj: Any = module
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _hashable(target: Any) -> bool:
    try:
        hash(target)
    except TypeError:
        return False
    return True
