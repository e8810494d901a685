"""The per-node translation context handed to every mapping function.

A mapping function reads the ONNX node's inputs (`cx.input(i)`: an IR Value, or None when the
optional input is absent) and attributes (`cx.attr("axis", "int", 0)`), and emits IR through
`cx.emit`. Inputs that are static (weights, Constant nodes, anything folded) are Values holding
`data`; `cx.emit` folds a node whose inputs are all static into a new constant right away
(compiler/constant_folding.py, the folder fold-constants uses too), so exporters' shape
arithmetic (Shape -> Gather -> Concat -> Reshape) becomes plain constants; and it emits nothing
for a data-movement identity (compiler/identities.py: a no-op Reshape, Transpose, Slice...).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import onnx
import torch
from onnx import AttributeProto

from compiler.constant_folding import fold
from compiler.errors import FrontendError
from compiler.identities import identity_result
from compiler.ir import Graph, TensorType, Value
from compiler.ops import get_op
from frontends.onnx.quantized import Marker
from frontends.onnx.limits import MAX_RANK, MAX_TENSOR_BYTES, format_bytes, nbytes
from frontends.onnx.tensors import looks_like_parameter, to_torch

if TYPE_CHECKING:
    from frontends.onnx.translate import Translator

REQUIRED = object()
MAX_INTS = 4096   # shapes, axes, pads, repeats: far more than any real model has
_KINDS = {"int": AttributeProto.INT, "float": AttributeProto.FLOAT, "str": AttributeProto.STRING,
          "ints": AttributeProto.INTS, "floats": AttributeProto.FLOATS, "tensor": AttributeProto.TENSOR,
          "graph": AttributeProto.GRAPH, "strs": AttributeProto.STRINGS}


def node_label(node: onnx.NodeProto, index: int) -> str:
    """`'conv1'` for a named node, else `#12 (output 'y')`: how messages point at a node."""
    if node.name:
        return f"'{node.name}'"
    return f"#{index} (output '{node.output[0]}')" if node.output else f"#{index}"


class OnnxNodeContext:
    """What a mapping function knows about the ONNX node it translates, and how it emits IR."""

    def __init__(self, translator: "Translator", node: onnx.NodeProto, index: int):
        self.tr = translator
        self.graph: Graph = translator.graph
        self.node = node
        self.op_type = node.op_type
        self.opset = translator.opset
        self.where = f"node {node_label(node, index)} ({node.op_type}, opset {self.opset})"
        self.source = f"{node.name} ({node.op_type})" if node.name else node.op_type
        self.index = index
        self.outputs = list(node.output)
        self._attrs = {a.name: a for a in node.attribute}     # a repeated name: the last one counts
        self._attr_index = {a.name: i for i, a in enumerate(node.attribute)}

    # ---- inputs -----------------------------------------------------------------------------
    @property
    def num_inputs(self) -> int:
        return len(self.node.input)

    def input(self, i: int) -> Value | None:
        """Input i, or None when it is absent (past the end, or named '')."""
        if i >= len(self.node.input) or not self.node.input[i]:
            return None
        return self.tr.lookup(self.node.input[i], self)

    def raw_input(self, i: int):
        """Input i as the translator holds it: a Value, a quantized-tensor marker (quantized.py) that
        quantization-aware mappings consume as such, or None when absent."""
        if i >= len(self.node.input) or not self.node.input[i]:
            return None
        held = self.tr.env.get(self.node.input[i])
        return held if isinstance(held, Marker) else self.input(i)

    def required(self, i: int, what: str = "") -> Value:
        value = self.input(i)
        if value is None:
            raise self.error(f"input {i}{f' ({what})' if what else ''} is missing")
        return value

    @property
    def x(self) -> Value:
        return self.required(0)

    def static(self, i: int, what: str) -> torch.Tensor:
        """The value of input i, which must be present and known at import time (callers check
        `cx.input(i) is not None` first for an optional one)."""
        value = self.required(i, what)
        if value.data is None:
            raise self.error(
                f"{what} (input '{self.node.input[i]}') is computed at run time, but nnforge needs it "
                "to be static", hint="give every dynamic input dimension with --input-shape; values "
                                     "that depend on the input data itself cannot be imported")
        return value.data

    def ints(self, i: int, what: str) -> list[int]:
        data = self.static(i, what)
        if data.dtype.is_floating_point or data.dtype == torch.bool or data.dim() > 1 or data.numel() > MAX_INTS:
            raise self.error(f"{what} must be a 1-D integer tensor (of at most {MAX_INTS} values), got "
                             f"{data.dtype} {list(data.shape)}")
        return [int(v) for v in data.reshape(-1).tolist()]

    def scalar(self, i: int, what: str) -> float | int | bool:
        data = self.static(i, what)
        if data.numel() != 1:
            raise self.error(f"{what} must hold one value, got shape {list(data.shape)}")
        return data.reshape(()).item()

    # ---- attributes -------------------------------------------------------------------------
    def attr(self, name: str, kind: str, default: Any = REQUIRED) -> Any:
        proto = self._attrs.get(name)
        if proto is None:
            if default is REQUIRED:
                raise self.error(f"required attribute '{name}' is missing")
            return default
        if proto.type != _KINDS[kind]:
            got = AttributeProto.AttributeType.Name(proto.type) if proto.type in \
                AttributeProto.AttributeType.values() else str(proto.type)
            raise self.error(f"attribute '{name}' must be {kind.upper()}, got {got}")
        value = onnx.helper.get_attribute_value(proto)
        if kind == "str":
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                raise self.error(f"attribute '{name}' is not valid UTF-8") from None
        if kind == "strs":
            return [v.decode("utf-8", "replace") for v in value]
        return list(value) if kind in ("ints", "floats") else value

    def flag(self, name: str, default: int) -> bool:
        """A 0/1 INT attribute (keepdims, ceil_mode, ...): other values are malformed, not true."""
        value = self.attr(name, "int", default)
        if value not in (0, 1):
            raise self.error(f"attribute '{name}' must be 0 or 1, got {value}")
        return bool(value)

    def tensor_attr(self, name: str) -> torch.Tensor | None:
        """A TENSOR attribute's value (its bytes read apart from the protobuf when loaded from a file)."""
        proto = self.attr(name, "tensor", None)
        if proto is None:
            return None
        raw = self.tr.model.raw_attribute(self.index, self._attr_index[name])
        return to_torch(proto, self.tr.model.base_dir, f"attribute '{name}' of {self.where}", raw)

    def has_attr(self, name: str) -> bool:
        return name in self._attrs

    # ---- emission ---------------------------------------------------------------------------
    def name(self, suffix: str = "", index: int = 0) -> str:
        base = self.outputs[index] if index < len(self.outputs) and self.outputs[index] else self.op_type
        return f"{base}_{suffix}" if suffix else base

    def emit(self, op: str, inputs: Sequence[Value | None], attrs: dict | None = None, *,
             suffix: str = "") -> Value:
        """One IR node (or, when every input is static, the folded constant). Without `suffix`
        it stands for the node's first output and takes its name."""
        results = self.emit_multi(op, inputs, attrs, suffix=suffix)
        if len(results) != 1:
            raise self.error(f"internal: op '{op}' gave {len(results)} results where one was expected")
        return results[0]

    def emit_multi(self, op: str, inputs: Sequence[Value | None], attrs: dict | None = None, *,
                   suffix: str = "") -> list[Value]:
        opdef = get_op(op)
        attrs = opdef.complete_attrs(attrs or {})
        types = opdef.infer([None if v is None else v.type for v in inputs], attrs)
        for t in types:
            self.check_type(t)
        many = len(types) > 1
        names = [self.name(suffix, i if many else 0) + (f"_{i}" if many and suffix else "") for i in range(len(types))]
        same = identity_result(self.graph, op, inputs, attrs, types)
        if same is not None:
            return same
        folded = fold(self.graph, op, inputs, attrs, types, names)
        if not isinstance(folded, str):
            return folded
        node_name = (self.node.name or self.op_type) + (f"_{suffix}" if suffix else "") if many else names[0]
        node = self.graph.create_node(op, inputs, attrs, name=node_name, source=self.source, out_types=types)
        if many:  # the node takes the ONNX node's name, each result its ONNX output's
            for out, name in zip(node.outputs, names):
                out.name = self.graph.unique_name(name)
        return node.outputs

    def constant(self, tensor: torch.Tensor, suffix: str = "", *, from_model: bool = False) -> Value:
        """A constant; `from_model` for the model's own tensors (Constant nodes), which may be weights."""
        self.check_type(TensorType.of(tensor))
        return self.graph.add_weight(self.name(suffix), tensor, is_param=from_model and looks_like_parameter(tensor))

    def reshape(self, x: Value, shape: Sequence[int], *, suffix: str = "") -> Value:
        """`x` with a static shape (no node when it is already that shape)."""
        return self.emit("reshape", [x], {"shape": tuple(int(d) for d in shape)}, suffix=suffix)

    def cast(self, x: Value, dtype: torch.dtype, *, suffix: str = "") -> Value:
        return self.emit("cast", [x], {"dtype": dtype}, suffix=suffix)

    def like(self, value: float | int | bool, ref: Value, suffix: str) -> Value:
        """A 0-d constant in `ref`'s dtype (a scalar operand for an elementwise op)."""
        return self.constant(torch.tensor(value, dtype=ref.dtype), suffix)

    # ---- checks ---------------------------------------------------------------------------
    def check_type(self, t: TensorType) -> None:
        if len(t.shape) > MAX_RANK:
            raise self.error(f"a result of rank {len(t.shape)} is more than the {MAX_RANK} dims nnforge allows")
        size = nbytes(t.shape, t.dtype.itemsize)
        if size > MAX_TENSOR_BYTES:
            raise self.error(f"a result of shape {list(t.shape)} would need {format_bytes(size)} "
                             f"(more than the {format_bytes(MAX_TENSOR_BYTES)} allowed for one tensor)",
                             hint="check --input-shape; the model may declare absurd dimensions")

    def normalize_axis(self, axis: int, rank: int, what: str = "axis") -> int:
        if not -rank <= axis < rank:
            raise self.error(f"{what} {axis} is out of range for rank {rank}")
        return axis % rank

    def error(self, what: str, hint: str = "") -> FrontendError:
        return FrontendError(what, where=self.where, hint=hint)

    def unsupported(self, what: str, hint: str = "") -> FrontendError:
        return FrontendError(f"{self.op_type}: {what} is not supported", where=self.where, hint=hint)
