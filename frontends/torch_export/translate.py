"""Translate an exported (and decomposed) program into the IR, node by node.

Every fx node is either *static* or *data-dependent*. Graph inputs and parameters are
data-dependent; a node is data-dependent when any of its inputs is, except the `*_like` and
`new_*` factories, which read only their input's (static) shape. Static nodes (position ids,
causal masks, rotary tables, anything built from shapes, constants and buffers) are evaluated
right here with the real ATen op, and their results become IR constants where data-dependent
nodes read them. Data-dependent nodes go through the rule tables (rules_*.py); before anything
is built, every such node without a rule is collected, so one error lists them all.

Parameters and buffers become IR weights named by their qualified module names and holding the
module's own tensors (`detach()` shares storage: nothing is copied); tied weights stay one value.
"""
from __future__ import annotations

import operator
from collections import Counter
from typing import Any

import torch
import torch.fx as fx
from torch.export import ExportedProgram
from torch.export.graph_signature import InputKind, OutputKind
from torch.fx.node import map_aggregate

from compiler.errors import FrontendError, IRError
from compiler.ir import Graph, TensorType, Value
from frontends.torch_export import naming, rules_math, rules_nn, rules_shape
from frontends.torch_export.context import ExportNodeContext, aten_name
from frontends.torch_export.indexing import gather, index
from frontends.torch_fx.context import Weights
from frontends.torch_fx.shapes import Unusable

aten = torch.ops.aten
RULES = {**rules_math.RULES, **rules_shape.RULES, **rules_nn.RULES,
         aten.index: index, aten.gather: gather, operator.getitem: lambda cx, obj, i: obj[i]}
# factories that read only the shape and dtype of their first argument
SHAPE_ONLY = frozenset({aten.full_like, aten.zeros_like, aten.ones_like, aten.empty_like, aten.new_full,
                        aten.new_zeros, aten.new_ones, aten.new_empty, aten.scalar_tensor})


def rule_key(target: Any) -> Any:
    return getattr(target, "overloadpacket", target)


def inside_op_set(program: ExportedProgram) -> bool:
    """Whether every data-dependent op of the program has a rule (static ones are evaluated)."""
    specs = {s.arg.name: s for s in program.graph_signature.input_specs}
    return all(n.op != "call_function" or rule_key(n.target) in RULES
               for n in _data_dependent(program.graph, specs))


class Translator:
    def __init__(self, program: ExportedProgram, module: torch.nn.Module):
        self.program, self.module = program, module
        self.graph = Graph(type(module).__name__)
        self.weights = Weights(self.graph)
        self.env: dict[fx.Node, Any] = {}
        self.named: dict[int, tuple[torch.Tensor, str]] = {}  # static tensor id -> (tensor, IR name)

    def run(self) -> tuple[Graph, list[str]]:
        fx_graph = self.program.graph_module.graph
        specs = {s.arg.name: s for s in self.program.graph_signature.input_specs}
        dynamic = _data_dependent(fx_graph, specs)
        _check_supported(fx_graph, dynamic, type(self.module).__name__)
        for node in fx_graph.nodes:
            if node.op == "placeholder":
                self.env[node] = self.placeholder(node, specs[node.name])
            elif node.op == "call_function":
                self.env[node] = self.call(node) if node in dynamic else self.evaluate(node)
            elif node.op == "output":
                return self.graph, self.outputs(node)
            else:
                raise FrontendError(f"the exported graph has a '{node.op}' node ({node.target}), which nnforge "
                                    "does not translate (control flow such as torch.cond is not supported)",
                                    where=naming.source(node))
        raise FrontendError("the exported graph has no output")

    # ---- inputs, weights, constants ------------------------------------------------------
    def placeholder(self, node: fx.Node, spec) -> Any:
        if spec.kind == InputKind.PARAMETER:
            return self.weights.get(self.module.get_parameter(spec.target), spec.target)
        if spec.kind in (InputKind.BUFFER, InputKind.CONSTANT_TENSOR):
            tensor = self.module.get_buffer(spec.target) if spec.kind == InputKind.BUFFER \
                else self.program.constants[spec.target]
            self.named[id(tensor)] = (tensor, spec.target)
            return tensor
        if spec.kind == InputKind.USER_INPUT:
            val = node.meta.get("val")
            if isinstance(val, torch.Tensor):
                return self.graph.add_input(node.name, TensorType(tuple(val.shape), val.dtype))
            return val
        raise FrontendError(f"exported input '{node.name}' of kind {spec.kind.name} is not supported")

    def constant_of(self, tensor: torch.Tensor, hint: str) -> Value:
        """The IR value of a static tensor: its buffer's weight, or a named constant."""
        _, name = self.named.get(id(tensor), (None, hint))
        return self.weights.get(tensor, name)

    # ---- static nodes ----------------------------------------------------------------------
    def evaluate(self, node: fx.Node) -> Any:
        def concrete(a: Any) -> Any:
            value = self.env[a] if isinstance(a, fx.Node) else a
            if isinstance(value, Value):  # only shape-only factories read a data-dependent input
                return torch.empty(value.shape, dtype=value.dtype)
            return value
        args = map_aggregate(node.args, concrete)
        kwargs = map_aggregate(node.kwargs, concrete)
        with torch.no_grad():
            result = node.target(*args, **kwargs)
        if isinstance(result, torch.Tensor):
            self.named.setdefault(id(result), (result, naming.node_name(node, [])))
        return result

    # ---- data-dependent nodes ------------------------------------------------------------
    def call(self, node: fx.Node) -> Any:
        args = map_aggregate(node.args, self.lookup)
        kwargs = map_aggregate(node.kwargs, self.lookup)
        if node.target is operator.getitem:
            return args[0][args[1]]
        reads = [v.name for v in _values(args) if v.data is not None]
        reads += [self.named[id(t)][1] for t in _tensors(args) if id(t) in self.named]
        cx = ExportNodeContext(self.graph, self.weights, node, naming.node_name(node, reads), naming.source(node),
                      _out_type(node.meta.get("val")), self.constant_of)
        try:
            return RULES[rule_key(node.target)](cx, *args, **kwargs)
        except TypeError as exc:  # the node's arguments do not fit the rule's ATen signature
            raise FrontendError(f"unsupported arguments for {aten_name(node.target)}: {exc}",
                                where=naming.source(node)) from None
        except IRError as exc:
            raise FrontendError(f"{aten_name(node.target)}: {exc.what}", where=naming.source(node)) from None

    def lookup(self, a: Any) -> Any:
        if not isinstance(a, fx.Node):
            return a
        value = self.env[a]
        if isinstance(value, Unusable):
            raise FrontendError(value.reason, where=naming.source(a))
        return value

    # ---- outputs ---------------------------------------------------------------------------
    def outputs(self, node: fx.Node) -> list[str]:
        specs = self.program.graph_signature.output_specs
        writes = [f"{s.kind.name.lower().replace('_', ' ')} of '{s.target}'" for s in specs
                  if s.kind != OutputKind.USER_OUTPUT]
        if writes:
            raise FrontendError(f"{self.graph.name}.forward writes state ({', '.join(writes)})",
                                hint="call model.eval() first (BatchNorm in training mode updates its running "
                                     "statistics); a forward that updates buffers or inputs cannot be imported")
        args = node.args[0]
        names = naming.output_names(self.program.call_spec.out_spec)
        if len(names) != len(args):
            names = [str(i) for i in range(len(args))]
        values, kept = [], []
        for arg, name in zip(args, names):
            value = self.lookup(arg)
            if value is None:
                continue
            if isinstance(value, torch.Tensor):
                value = self.constant_of(value, name)
            if not isinstance(value, Value):
                raise FrontendError(f"the model returns a {type(value).__name__} ({value!r}) as '{name}'; only "
                                    "tensors can be graph outputs", where=naming.source(node))
            values.append(value)
            kept.append(name)
        self.graph.outputs = values
        return kept


# ---- analysis before translation ------------------------------------------------------------
def _data_dependent(fx_graph: fx.Graph, specs: dict) -> set[fx.Node]:
    dynamic: set[fx.Node] = set()
    for node in fx_graph.nodes:
        if node.op == "placeholder":
            kind = specs[node.name].kind
            if kind == InputKind.PARAMETER or (kind == InputKind.USER_INPUT
                                               and isinstance(node.meta.get("val"), torch.Tensor)):
                dynamic.add(node)
        elif node.op == "call_function" and rule_key(node.target) not in SHAPE_ONLY:
            if any(n in dynamic for n in node.all_input_nodes):
                dynamic.add(node)
    return dynamic


def _check_supported(fx_graph: fx.Graph, dynamic: set[fx.Node], model: str) -> None:
    """Every data-dependent op needs a rule, and no static op may be random: one error lists all."""
    missing: Counter = Counter()
    where: dict[str, str] = {}
    for node in fx_graph.nodes:
        if node.op != "call_function":
            continue
        random = (rule_key(node.target) not in RULES and isinstance(node.target, torch._ops.OpOverload)
                  and torch.Tag.nondeterministic_seeded in node.target.tags)  # rules refuse randomness themselves
        if (node in dynamic and rule_key(node.target) not in RULES) or random:
            name = aten_name(node.target) + (" (random)" if random else "")
            missing[name] += 1
            where.setdefault(name, naming.source(node))
    if missing:
        listing = "; ".join(f"{name} x{count} (first at {where[name] or 'the top level'})"
                            for name, count in missing.most_common())
        raise FrontendError(f"torch.export captured {model}, but {len(missing)} ATen op(s) have no IR "
                            f"translation: {listing}", where=next(iter(where.values())),
                            hint="nothing was mistranslated; capture='fx' may handle these layers, or add a "
                                 "rule to frontends/torch_export/rules_*.py (see docs/capture.md)")


def _out_type(val: Any) -> Any:
    if isinstance(val, torch.Tensor):
        return TensorType(tuple(val.shape), val.dtype)
    if isinstance(val, (tuple, list)):
        return tuple(_out_type(v) for v in val)
    return val


def _values(structure: Any) -> list[Value]:
    return [a for a in _leaves(structure) if isinstance(a, Value)]


def _tensors(structure: Any) -> list[torch.Tensor]:
    return [a for a in _leaves(structure) if isinstance(a, torch.Tensor)]


def _leaves(structure: Any) -> list[Any]:
    if isinstance(structure, (tuple, list)):
        return [leaf for item in structure for leaf in _leaves(item)]
    return [structure]
