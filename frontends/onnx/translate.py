"""Translate a checked ONNX graph into the IR, node by node, in the file's (topological) order.

The environment maps each ONNX tensor name to its IR Value. Graph inputs get the bound static
types; initializers become weights the first time a node reads them (unused ones never
materialize); every node goes through its mapping function (table.py) inside one error boundary,
so whatever goes wrong names the node, its op type and the opset.
"""
from __future__ import annotations

from typing import Any

import onnx

from compiler.errors import FrontendError, NNForgeError
from compiler.ir import Graph, TensorType, Value
from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.crosscheck import check_input_types, check_node
from frontends.onnx.loader import OnnxModel
from frontends.onnx.ops_quant import accumulator_rule
from frontends.onnx.quantized import Marker
from frontends.onnx.shapes import declared_dims, format_dims, graph_inputs
from frontends.onnx.table import MAPPINGS
from frontends.onnx.tensors import looks_like_parameter, to_torch


def sanitized(name: str) -> str:
    """The IR's spelling of an ONNX tensor name (Graph.unique_name's, before de-duplication)."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "._" else "_" for c in name).strip("_")


class Unavailable:
    """An optional ONNX output the mapping does not provide (e.g. BatchNormalization's training
    statistics); using it is an error that says why."""

    def __init__(self, why: str):
        self.why = why


class Translator:
    def __init__(self, model: OnnxModel, input_types: list[TensorType], shapes_given: bool):
        self.model = model
        self.opset = model.opset
        self.graph = Graph(model.name)
        self.env: dict[str, Value | Unavailable] = {}
        self.initializers = {t.name: i for i, t in enumerate(model.proto.graph.initializer)}
        self.sparse = {t.values.name for t in model.proto.graph.sparse_initializer}
        self.shapes_given = shapes_given
        for vi, t in zip(graph_inputs(model.proto.graph), input_types):
            if vi.name in self.env or not vi.name:
                raise FrontendError(f"graph input name '{vi.name}' is empty or repeated", hint="the model is malformed")
            self.env[vi.name] = self.graph.add_input(vi.name, t)

    def run(self) -> Graph:
        for index, node in enumerate(self.model.proto.graph.node):
            cx = OnnxNodeContext(self, node, index)
            self._bind(cx, self._guarded(cx, self._translate))
            self._guarded(cx, self._crosscheck)
        outputs = []
        for vi in self.model.proto.graph.output:
            value = self.env.get(vi.name)
            if not isinstance(value, Value):
                value = self.lookup(vi.name, None)
            if value.producer is not None and value not in outputs and value.name != sanitized(vi.name):
                value.name = self.graph.unique_name(vi.name)  # an alias (Identity, a no-op Reshape...)
            outputs.append(value)
        self.graph.outputs = outputs
        return self.graph

    def inline(self, branch: onnx.GraphProto, outer: OnnxNodeContext, label: str) -> list[Value]:
        """Translate a subgraph's nodes into the graph (outer names stay visible); its outputs."""
        for init in branch.initializer:
            if init.name in self.env:
                raise outer.error(f"{label} redefines tensor '{init.name}'", hint="the model is malformed (not SSA)")
            tensor = to_torch(init, self.model.base_dir, f"initializer '{init.name}' of {label}")
            self.env[init.name] = self.graph.add_weight(init.name, tensor, is_param=looks_like_parameter(tensor))
        for node in branch.node:
            cx = OnnxNodeContext(self, node, -1)  # no raw attribute bytes were read apart for subgraphs
            cx.where = f"node '{node.name or node.op_type}' ({node.op_type}) in the {label} of {outer.where}"
            self._bind(cx, self._guarded(cx, self._translate))
            self._guarded(cx, self._crosscheck)
        return [self.lookup(vi.name, outer) for vi in branch.output]

    # ---- one node ------------------------------------------------------------------------
    def _translate(self, cx: OnnxNodeContext) -> Any:
        if self._reads_markers(cx):  # quantized tensors: the mapping, or a rule keeping them quantized
            kept = accumulator_rule(cx)
            return kept if kept is not None else MAPPINGS[cx.op_type].fn(cx)
        check_input_types(cx.node, self.opset, [cx.input(i) for i in range(cx.num_inputs)], cx.where)
        return MAPPINGS[cx.op_type].fn(cx)

    def _reads_markers(self, cx: OnnxNodeContext) -> bool:
        return any(isinstance(self.env.get(name), Marker) for name in cx.node.input if name)

    def _guarded(self, cx: OnnxNodeContext, step) -> Any:
        """The error boundary around each node: whatever goes wrong names the node."""
        try:
            return step(cx)
        except NNForgeError as exc:
            if exc.where:
                raise
            raise FrontendError(f"{cx.op_type}: {exc.what}", where=cx.where,
                                hint=exc.hint or self._shape_hint()) from exc
        except Exception as exc:  # noqa: BLE001 - the boundary: malformed nodes never escape as crashes
            raise FrontendError(f"cannot translate {cx.op_type}: {type(exc).__name__}: {exc}", where=cx.where,
                                hint="the node's inputs or attributes do not fit together; if onnxruntime runs "
                                     "this model with these input shapes, please report an nnforge bug") from exc

    def _bind(self, cx: OnnxNodeContext, results: Any) -> None:
        if isinstance(results, (Value, Unavailable, Marker)) or results is None:
            results = [results]
        results = list(results)
        for i, name in enumerate(cx.outputs):
            if not name:
                continue
            result = results[i] if i < len(results) else None
            if result is None:
                result = Unavailable(f"nnforge does not compute output {i} of {cx.op_type}")
            if name in self.env or name in self.initializers or name in self.sparse:
                raise cx.error(f"tensor '{name}' is defined twice"
                               f"{' (it is also an initializer)' if name not in self.env else ''}",
                               hint="the model is malformed (not SSA)")
            self.env[name] = result

    def _crosscheck(self, cx: OnnxNodeContext) -> None:
        if any(isinstance(self.env.get(name), Marker) for name in [*cx.node.input, *cx.outputs] if name):
            return  # integer tensors held quantized have no IR type to compare
        inputs = [cx.input(i) for i in range(cx.num_inputs)]
        outputs = [self.env.get(name) if name else None for name in cx.outputs]
        check_node(cx.node, self.opset, inputs, outputs, cx.where)

    def _shape_hint(self) -> str:
        if not self.shapes_given:
            return ""
        declared = ", ".join(f"'{vi.name}' {format_dims(declared_dims(vi))}"
                             for vi in graph_inputs(self.model.proto.graph))
        return f"check the input shapes: the model declares {declared}"

    def _producer_cx(self, name: str) -> OnnxNodeContext:
        """The context of the (main-graph) node that defines tensor `name`, to emit on its behalf."""
        nodes = self.model.proto.graph.node
        index = next((i for i in range(len(nodes) - 1, -1, -1) if name in nodes[i].output), len(nodes) - 1)
        return OnnxNodeContext(self, nodes[index], index)

    # ---- values --------------------------------------------------------------------------
    def lookup(self, name: str, cx: OnnxNodeContext | None) -> Value:
        """The Value of tensor `name`; initializers become weights on first use."""
        value = self.env.get(name)
        if isinstance(value, Value):
            return value
        if isinstance(value, Marker):  # a consumer (or a graph output) that reads the integer tensor itself
            return value.materialize(cx if cx is not None else self._producer_cx(name))
        where = cx.where if cx is not None else f"graph output '{name}'"
        if isinstance(value, Unavailable):
            raise FrontendError(f"tensor '{name}' is not available: {value.why}", where=where,
                                hint="only inference-mode outputs can be used")
        index = self.initializers.get(name)
        if index is not None:
            proto = self.model.proto.graph.initializer[index]
            raw = self.model.raw_initializers[index] if self.model.raw_initializers else None
            tensor = to_torch(proto, self.model.base_dir, f"initializer '{name}'", raw)
            value = self.graph.add_weight(name, tensor, is_param=looks_like_parameter(tensor))
            self.env[name] = value
            return value
        if name in self.sparse:
            raise FrontendError(f"initializer '{name}' is sparse, which nnforge does not support", where=where)
        raise FrontendError(f"tensor '{name}' is used before any node, input or initializer defines it",
                            where=where, hint="the model is malformed, or its nodes are not in topological order")
