"""ModelProto assembly: names, helper nodes, initializers, value_info and the opset.

Lowerings talk to an `OnnxBuilder`: `b.x(node, i)` is the ONNX name of an IR input (graph input,
weight or node result; weights become initializers only if some emitted node reads them),
`b.y(node, i)` the name of an IR output, and `b.emit(...)` appends a node. IR value names are
kept as ONNX tensor names so they read the same in Netron; helper tensors are named
`<ir node>/<tag>` ('/' never occurs in IR names, so they cannot collide). Graph inputs and
outputs take the source model's names (`graph.interface`) when it has them.
"""
from __future__ import annotations

import itertools
from typing import Any, Sequence

import onnx
import torch
from onnx import TensorProto, helper

from compiler.errors import BackendError
from compiler.ir import Graph, Node, TensorType, Value

PRODUCER = "nnforge"
MIN_OPSET, MAX_OPSET = 17, 24  # the opsets the lowerings are written and tested for

TORCH_TO_ONNX = {
    torch.float32: TensorProto.FLOAT, torch.float64: TensorProto.DOUBLE,
    torch.float16: TensorProto.FLOAT16, torch.bfloat16: TensorProto.BFLOAT16,
    torch.int64: TensorProto.INT64, torch.int32: TensorProto.INT32,
    torch.int16: TensorProto.INT16, torch.int8: TensorProto.INT8,
    torch.uint8: TensorProto.UINT8, torch.bool: TensorProto.BOOL,
}


def onnx_dtype(dtype: torch.dtype, where: str = "") -> int:
    try:
        return TORCH_TO_ONNX[dtype]
    except KeyError:
        raise BackendError(f"dtype {dtype} has no ONNX equivalent here", where=where,
                           hint=f"supported: {', '.join(str(d) for d in TORCH_TO_ONNX)}") from None


def fill_tensor(proto: TensorProto, name: str, tensor: torch.Tensor) -> int:
    """Fill `proto` in place from a CPU tensor (no copy of its own when contiguous); returns bytes."""
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if not t.is_contiguous():
        t = t.contiguous()
    proto.name = name
    proto.data_type = onnx_dtype(t.dtype, where=f"weight %{name}")
    proto.dims.extend(t.shape)
    array = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
    proto.raw_data = array.tobytes()
    return array.nbytes


class OnnxBuilder:
    """Accumulates the ONNX graph for one IR graph; lowerings call its helpers."""

    def __init__(self, graph: Graph, opset: int):
        self.graph, self.opset = graph, opset
        self.model = onnx.ModelProto()
        self.nodes: list[onnx.NodeProto] = []
        self.current: Node | None = None
        self._weights: dict[str, Value] = {}   # IR weights some ONNX node reads, by name
        self._constants: list[tuple[str, torch.Tensor]] = []
        self._counter = itertools.count()
        self.initializer_bytes = 0  # known after finish(): decides external data before serializing
        self.input_names: list[str] = []  # the graph inputs' ONNX names, known after finish()
        self._output_names_ir: list[str] = []

    # ---- names --------------------------------------------------------------------------
    @property
    def where(self) -> str:
        node = self.current
        return f"node %{node.name} ({node.op})" if node is not None else f"graph '{self.graph.name}'"

    def error(self, what: str, hint: str = "") -> BackendError:
        return BackendError(f"cannot lower to ONNX opset {self.opset}: {what}", where=self.where, hint=hint)

    def value(self, v: Value | None) -> str:
        """The ONNX name of an IR value ('' for a missing optional input)."""
        if v is None:
            return ""
        if v.data is not None:
            self._weights[v.name] = v
        return v.name

    def x(self, node: Node, i: int = 0) -> str:
        return self.value(node.inputs[i]) if i < len(node.inputs) else ""

    def y(self, node: Node, i: int = 0) -> str:
        return node.outputs[i].name

    def inputs(self, node: Node) -> list[str]:
        """All input names, trailing missing optionals dropped (ONNX wants them absent)."""
        names = [self.value(v) for v in node.inputs]
        while names and not names[-1]:
            names.pop()
        return names

    def fresh(self, tag: str) -> str:
        base = self.current.name if self.current is not None else "nnforge"
        return f"{base}/{tag}_{next(self._counter)}"

    # ---- emission -----------------------------------------------------------------------
    def emit(self, op_type: str, inputs: Sequence[str], outputs: Sequence[str] | int | None = None,
             **attrs: Any) -> str | list[str]:
        """Append a node; returns its output name (or the list of names when asked for several)."""
        many = isinstance(outputs, int) or (outputs is not None and len(outputs) != 1)
        if outputs is None or isinstance(outputs, int):
            outputs = [self.fresh(op_type.lower()) for _ in range(outputs or 1)]
        node = self.current
        final = node is not None and any(o == v.name for o in outputs for v in node.outputs)
        name = node.name if final else self.fresh(op_type)
        proto = helper.make_node(op_type, list(inputs), list(outputs), name=name,
                                 **{k: v for k, v in attrs.items() if v is not None})
        if final and node.source:
            proto.doc_string = node.source
        self.nodes.append(proto)
        return list(outputs) if many else outputs[0]

    def ints(self, values: Sequence[int], tag: str) -> str:
        """A 1-D int64 initializer (shapes, axes, sizes)."""
        return self.tensor(torch.tensor(list(values), dtype=torch.int64), tag)

    def scalar(self, value: float | int | bool, dtype: torch.dtype, tag: str) -> str:
        """A 0-d initializer of an IR dtype."""
        return self.tensor(torch.tensor(value, dtype=dtype), tag)

    def tensor(self, t: torch.Tensor, tag: str) -> str:
        """A helper initializer holding `t` (not copied until the model is assembled)."""
        name = self.fresh(tag)
        self._constants.append((name, t))
        return name

    def cast(self, name: str, src: torch.dtype, dst: torch.dtype) -> str:
        if src == dst or not name:
            return name
        return self.emit("Cast", [name], to=onnx_dtype(dst, self.where))

    def x_as(self, node: Node, i: int, dtype: torch.dtype) -> str:
        """Input i converted to `dtype` (torch's type promotion made explicit)."""
        v = node.inputs[i]
        return self.cast(self.value(v), v.dtype, dtype) if v is not None else ""

    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: bool,
               outputs: Sequence[str] | None = None) -> str:
        """ReduceX over `axes`: an input from opset 13 (ReduceSum) / 18 (the others), else an attr."""
        axes_as_input = self.opset >= (13 if op_type == "ReduceSum" else 18)
        if axes_as_input:
            ins = [x, self.ints(axes, "axes")] if axes else [x]
            return self.emit(op_type, ins, outputs, keepdims=int(keepdims))
        return self.emit(op_type, [x], outputs, keepdims=int(keepdims), axes=list(axes) or None)

    def reshaped(self, v: Value, shape: Sequence[int], tag: str) -> str:
        """`v` with a new static shape: a reshaped initializer view for weights, else a Reshape."""
        if v.data is not None:
            return self.tensor(v.data.detach().reshape(tuple(shape)), tag)
        return self.emit("Reshape", [self.value(v), self.ints(shape, "shape")])

    # ---- assembly -----------------------------------------------------------------------
    def finish(self, doc: str = "") -> onnx.ModelProto:
        """Fill self.model: graph inputs/outputs with static types, initializers, value_info."""
        model, g = self.model, self.model.graph
        g.name = self.graph.name
        model.producer_name = PRODUCER
        model.opset_import.append(helper.make_opsetid("", self.opset))
        model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
        if doc:
            model.doc_string = doc
        outputs = self._output_names()
        inputs = [v.name for v in self.graph.inputs]
        rename = self._source_names(inputs, outputs)
        inputs, outputs = [rename.get(n, n) for n in inputs], [rename.get(n, n) for n in outputs]
        for proto in self.nodes:
            proto.input[:] = [rename.get(n, n) for n in proto.input]
            proto.output[:] = [rename.get(n, n) for n in proto.output]
        g.node.extend(self.nodes)
        for name, v in zip(inputs, self.graph.inputs):
            g.input.append(_value_info(name, v.type))
        for name, v in zip(outputs, self.graph.outputs):
            g.output.append(_value_info(name, v.type))
        for name, v in self._weights.items():
            self.initializer_bytes += fill_tensor(g.initializer.add(), rename.get(name, name), v.data)
        for name, t in self._constants:
            self.initializer_bytes += fill_tensor(g.initializer.add(), name, t)
        graph_io = {v.name for v in self.graph.inputs} | set(self._output_names_ir)
        for node in self.graph.nodes:
            for v in node.outputs:
                if v.name not in graph_io:
                    g.value_info.append(_value_info(rename.get(v.name, v.name), v.type))
        self.input_names = inputs
        return model

    def _source_names(self, inputs: list[str], outputs: list[str]) -> dict[str, str]:
        """ONNX name -> the source model's name for graph inputs and outputs (graph.interface), so
        the artifact is a drop-in replacement; a tensor already holding such a name moves aside."""
        face = self.graph.interface
        if face is None or not face.fits(len(inputs), len(outputs)):
            return {}
        rename = {cur: port.name for cur, port in zip(inputs + outputs, face.inputs + face.outputs)
                  if cur != port.name}
        taken = set(rename.values())
        names = {n for proto in self.nodes for n in [*proto.input, *proto.output]} | set(self._weights)
        for n in names - set(rename):
            if n in taken:
                rename[n] = f"{n}/moved"   # '/' never occurs in IR names: no new clash
        return rename

    def _output_names(self) -> list[str]:
        """Graph outputs; an input, a weight or a repeated value gets an Identity of its own."""
        self.current = None
        names, seen = [], {v.name for v in self.graph.inputs}
        for i, v in enumerate(self.graph.outputs):
            name = v.name
            if name in seen or v.producer is None:
                name = self.emit("Identity", [self.value(v)], [f"{v.name}/output_{i}"])
            seen.add(name)
            names.append(name)
        self._output_names_ir = names
        return names


def _value_info(name: str, t: TensorType) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, onnx_dtype(t.dtype, where=f"value %{name}"), list(t.shape))
