"""Small ONNX models built in code for the ONNX frontend tests (no binaries are committed).

`single_op(...)` builds a one-node model; `make_model(...)` any graph; `ort_run(...)` runs a model
in onnxruntime. `small_cnn()` and `shape_chain()` are the seeds the fuzz test mutates.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(0)


@dataclass(frozen=True)
class Init:
    """Marks an op input as an initializer (a weight or static operand) instead of a graph input."""

    array: np.ndarray


def value_info(name: str, elem: int, shape: Sequence[int | str] | None) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, None if shape is None else list(shape))


def make_model(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
               initializers: dict[str, np.ndarray] | None = None, opset: int = 17, name: str = "g") -> onnx.ModelProto:
    inits = [numpy_helper.from_array(np.asarray(a), n) for n, a in (initializers or {}).items()]
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    imports = [helper.make_opsetid("", opset)]
    return helper.make_model(graph, opset_imports=imports, ir_version=helper.find_min_ir_version_for(imports),
                             producer_name="nnforge-tests")


def single_op(op_type: str, inputs: Sequence[np.ndarray | Init | None], attrs: dict | None = None,
              opset: int = 17, outputs: int = 1) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """One `op_type` node; arrays become graph inputs x0, x1..., Init arrays initializers w1...,
    None an absent optional input."""
    names, graph_inputs, inits, feeds = [], [], {}, {}
    for i, item in enumerate(inputs):
        if item is None:
            names.append("")
        elif isinstance(item, Init):
            names.append(f"w{i}")
            inits[f"w{i}"] = item.array
        else:
            names.append(f"x{i}")
            feeds[f"x{i}"] = item
            graph_inputs.append(value_info(f"x{i}", helper.np_dtype_to_tensor_dtype(item.dtype), item.shape))
    out_names = [f"y{i}" for i in range(outputs)]
    node = helper.make_node(op_type, names, out_names, name=f"the_{op_type.lower()}", **(attrs or {}))
    outs = [helper.make_empty_tensor_value_info(n) for n in out_names]
    return make_model([node], graph_inputs, outs, inits, opset, name=op_type), feeds


def ort_run(model: onnx.ModelProto | bytes | Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else \
        str(model) if isinstance(model, Path) else model
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def randn(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def small_cnn(opset: int = 13, batch: int | str = 1) -> onnx.ModelProto:
    """conv -> batchnorm -> relu -> maxpool -> flatten -> gemm -> softmax, with a dynamic batch."""
    c = 4
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["conv"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["conv", "scale", "shift", "mean", "var"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["relu"], name="relu"),
        helper.make_node("MaxPool", ["relu"], ["pool"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
    ]
    inits = {"w": randn(c, 3, 3, 3), "b": randn(c), "scale": randn(c), "shift": randn(c),
             "mean": randn(c), "var": np.abs(randn(c)) + 0.5, "fc_w": randn(5, c * 4 * 4), "fc_b": randn(5)}
    return make_model(nodes, [value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
                      [value_info("probs", TensorProto.FLOAT, [batch, 5])], inits, opset, "small_cnn")


def shape_chain(opset: int = 13) -> onnx.ModelProto:
    """What exporters emit for x.view(x.size(0), -1) with a dynamic batch: Shape -> Gather ->
    Unsqueeze -> Concat -> Reshape, then MatMul + Add."""
    unsqueeze = (helper.make_node("Unsqueeze", ["n"], ["n1"], name="unsqueeze", axes=[0]) if opset < 13 else
                 helper.make_node("Unsqueeze", ["n", "zero_axes"], ["n1"], name="unsqueeze"))
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["n"], name="gather", axis=0),
        unsqueeze,
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "w"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "b"], ["y"], name="add"),
    ]
    inits = {"zero": np.array(0, dtype=np.int64), "zero_axes": np.array([0], dtype=np.int64),
             "minus_one": np.array([-1], dtype=np.int64), "w": randn(48, 6), "b": randn(6)}
    if opset < 13:
        del inits["zero_axes"]
    return make_model(nodes, [value_info("x", TensorProto.FLOAT, ["batch", 3, 4, 4])],
                      [value_info("y", TensorProto.FLOAT, ["batch", 6])], inits, opset, "shape_chain")


def mixed_ops(opset: int = 18) -> onnx.ModelProto:
    """A bit of everything the mapping table handles: resize, pad, slice, split, concat, topk,
    gather, where, reductions, layer norm, transpose and a folded shape chain."""
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["up"], name="resize", mode="nearest"),
        helper.make_node("Pad", ["up", "pads"], ["padded"], name="pad", mode="reflect"),
        helper.make_node("Slice", ["padded", "starts", "ends", "axes", "steps"], ["sliced"], name="slice"),
        helper.make_node("Split", ["sliced"], ["s0", "s1"], name="split", axis=1, num_outputs=2),
        helper.make_node("Concat", ["s1", "s0"], ["cat"], name="concat", axis=1),
        helper.make_node("Shape", ["cat"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsqueeze"),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["cat", "target"], ["flat"], name="reshape"),
        helper.make_node("LayerNormalization", ["flat", "gamma", "beta"], ["normed"], name="ln"),
        helper.make_node("TopK", ["normed", "k"], ["values", "indices"], name="topk"),
        helper.make_node("ReduceMean", ["values", "axes1"], ["mean"], name="mean", keepdims=1),
        helper.make_node("Greater", ["values", "mean"], ["mask"], name="greater"),
        helper.make_node("Where", ["mask", "values", "mean"], ["picked"], name="where"),
        helper.make_node("Transpose", ["picked"], ["y"], name="transpose", perm=[1, 0]),
    ]
    n_flat = 4 * 8 * 5
    inits = {"scales": np.array([1, 1, 2, 2], dtype=np.float32), "pads": i64(0, 0, 1, 1, 0, 0, 1, 1),
             "starts": i64(1, 0), "ends": i64(9, 100), "axes": i64(2, 3), "steps": i64(1, 2),
             "zero": np.array(0, dtype=np.int64), "axes0": i64(0), "minus_one": i64(-1),
             "gamma": randn(n_flat), "beta": randn(n_flat), "k": i64(5), "axes1": i64(-1)}
    return make_model(nodes, [value_info("x", TensorProto.FLOAT, ["batch", 4, 4, 4])],
                      [value_info("y", TensorProto.FLOAT, [5, "batch"])], inits, opset, "mixed_ops")


def warm_up():
    """Import a few tiny models so that lazy imports and first calls (torch's meta kernels; the
    first `div` inference alone imports torch._dynamo) are paid before a measurement; returns
    import_onnx."""
    from frontends.onnx import import_onnx

    import_onnx(small_cnn())
    import_onnx(mixed_ops(), input_shapes=[(1, 4, 4, 4)])
    for op, dtype in (("Div", np.float32), ("Div", np.int64), ("Mul", np.float32)):
        import_onnx(single_op(op, [np.ones(3, dtype), Init(np.ones(3, dtype))])[0])
    return import_onnx
