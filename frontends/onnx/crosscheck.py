"""ONNX's own rules, node by node: its type constraints before a node is translated, its shape
inference against nnforge's after.

Before: every input's element type must be one the op's schema (at the model's opset) allows,
and inputs sharing a type parameter must share the type, as onnxruntime demands when it loads a
model. After: onnx infers the node's outputs from the very input types (and the small static
input values) nnforge used; every dim and element type ONNX knows must equal the IR's. Asking per
node keeps one disagreement from spreading through the graph, and it is cheap: no weights are
serialized. Known divergences of the ONNX spec from onnxruntime (whose behavior nnforge
reproduces) are skipped, by op and attribute.
"""
from __future__ import annotations

from functools import lru_cache

import onnx
import torch
from onnx import helper

from compiler.errors import FrontendError
from compiler.ir import TensorType, Value
from compiler.printer import format_type
from frontends.onnx.tensors import ONNX_TO_TORCH

TORCH_TO_ONNX = {t: o for o, t in ONNX_TO_TORCH.items()}
TYPE_STRS = {t: f"tensor({onnx.helper.tensor_dtype_to_string(o).removeprefix('TensorProto.').lower()})"
             for t, o in TORCH_TO_ONNX.items()}
TYPE_STRS[torch.float32], TYPE_STRS[torch.float16] = "tensor(float)", "tensor(float16)"
DATA_LIMIT = 4096   # static inputs up to this many elements are passed as data (shapes, axes, scales)


def _spec_differs_from_onnxruntime(node: onnx.NodeProto) -> bool:
    """ONNX shape inference keeps a ceil_mode window that starts in the end padding; onnxruntime
    (and torch) drop it."""
    if node.op_type in ("MaxPool", "AveragePool"):
        return any(a.name == "ceil_mode" and a.i for a in node.attribute)
    return False


@lru_cache(maxsize=512)
def _schema(op_type: str, opset: int) -> onnx.defs.OpSchema:
    return onnx.defs.get_schema(op_type, opset, "")


@lru_cache(maxsize=4096)
def _type_proto(t: TensorType) -> onnx.TypeProto:
    return helper.make_tensor_type_proto(TORCH_TO_ONNX[t.dtype], list(t.shape))


def _tensor_proto(name: str, data: torch.Tensor) -> onnx.TensorProto:
    t = data.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.float()
    proto = onnx.numpy_helper.from_array(t.numpy(), name)
    if data.dtype == torch.bfloat16:
        proto.data_type = onnx.TensorProto.BFLOAT16
    return proto


def check_input_types(node: onnx.NodeProto, opset: int, inputs: list[Value | None], where: str) -> None:
    """Raise FrontendError when an input's element type is not one the op's schema allows."""
    schema = _schema(node.op_type, opset)
    formals = schema.inputs
    allowed_by_param = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    variadic = bool(formals) and formals[-1].option == onnx.defs.OpSchema.FormalParameterOption.Variadic
    if len(inputs) > len(formals) and not variadic:
        raise FrontendError(f"{node.op_type} takes at most {len(formals)} inputs at opset {opset}, the node has "
                            f"{len(inputs)}", where=where)
    bound: dict[str, str] = {}
    for i, value in enumerate(inputs):
        if value is None:
            continue
        formal = formals[min(i, len(formals) - 1)]
        allowed = allowed_by_param.get(formal.type_str, {formal.type_str})
        got = TYPE_STRS[value.dtype]
        if got not in allowed:
            raise FrontendError(f"input {i} ('{node.input[i]}') is {got}, but {node.op_type} at opset {opset} takes "
                                f"{', '.join(sorted(allowed))}", where=where, hint="the model is malformed")
        if formal.type_str in allowed_by_param and bound.setdefault(formal.type_str, got) != got:
            raise FrontendError(f"inputs of {node.op_type} sharing type {formal.type_str} differ: "
                                f"{bound[formal.type_str]} and {got}", where=where, hint="the model is malformed")


def check_node(node: onnx.NodeProto, opset: int, inputs: list[Value | None], outputs: list, where: str) -> None:
    """Raise FrontendError when ONNX infers a type for an output that the IR does not have."""
    schema = _schema(node.op_type, opset)
    if _spec_differs_from_onnxruntime(node) or schema.deprecated:  # onnx infers nothing for deprecated ops
        return
    if node.op_type == "If":  # the inlined branch's nodes were checked one by one
        return
    types, data = {}, {}
    for name, value in zip(node.input, inputs):
        if not name or value is None:
            continue
        types[name] = _type_proto(value.type)
        if value.data is not None and value.type.numel <= DATA_LIMIT:
            data[name] = _tensor_proto(name, value.data)
    try:
        inferred = onnx.shape_inference.infer_node_outputs(
            schema, node, types, data,
            opset_imports=[helper.make_opsetid("", opset)])
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise FrontendError(f"ONNX shape inference rejects this node: {str(exc).strip()}", where=where,
                            hint="the node's inputs do not fit its attributes (check --input-shape)") from None
    for name, value in zip(node.output, outputs):
        got = inferred.get(name)
        if not name or not isinstance(value, Value) or got is None or not got.HasField("tensor_type"):
            continue
        _compare(name, got.tensor_type, value, where)


def _compare(name: str, expected: onnx.TypeProto.Tensor, value: Value, where: str) -> None:
    dtype = ONNX_TO_TORCH.get(expected.elem_type)
    problem = ""
    if expected.elem_type and dtype != value.dtype:
        problem = f"element type {onnx.TensorProto.DataType.Name(expected.elem_type)}"
    elif expected.HasField("shape"):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in expected.shape.dim]
        if len(dims) != value.rank or any(d is not None and d != n for d, n in zip(dims, value.shape)):
            problem = "shape [" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
    if problem:
        raise FrontendError(f"tensor '{name}': nnforge computes {format_type(value.type)}, ONNX shape inference "
                            f"{problem}", where=where,
                            hint="this is a bug in nnforge's ONNX frontend; please report it with the model")
