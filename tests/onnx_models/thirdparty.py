"""Small equivalents of third-party ONNX files that users bring, built in code.

Each mirrors what a real exporter left in a file nnforge had to take as it is: a byte classifier
that one-hots its input with `Equal` against a constant 0..256 range (a file-type classifier), a
TensorFlow export whose tensor names carry `:0` and whose input dim is dynamic, a Keras BERT
attention block written with `Einsum`, and onnxruntime's quantized forms of a small CNN.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.onnx_models import make_model, randn, value_info

BYTES = 257          # 0..255 and a padding token


def byte_classifier(length: int = 64, hidden: int = 32, classes: int = 5) -> onnx.ModelProto:
    """int32 bytes [1, length] -> one-hot over 0..256 by Equal against a Range -> dense layers."""
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    nodes = [
        helper.make_node("Range", ["start", "limit", "delta"], ["vocab"], name="vocab"),
        helper.make_node("Unsqueeze", ["bytes", "last"], ["bytes_1"], name="unsqueeze"),
        helper.make_node("Cast", ["bytes_1"], ["bytes_i64"], name="cast_ids", to=TensorProto.INT64),
        helper.make_node("Equal", ["bytes_i64", "vocab"], ["one_hot_b"], name="one_hot"),
        helper.make_node("Cast", ["one_hot_b"], ["one_hot"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("MatMul", ["one_hot", "embed"], ["embedded"], name="embed"),
        helper.make_node("Relu", ["embedded"], ["act"], name="relu"),
        helper.make_node("ReduceMean", ["act", "seq_axis"], ["pooled"], name="pool", keepdims=0),
        helper.make_node("Gemm", ["pooled", "fc1_w", "fc1_b"], ["fc1"], name="fc1", transB=1),
        helper.make_node("Relu", ["fc1"], ["fc1_act"], name="fc1_relu"),
        helper.make_node("Gemm", ["fc1_act", "fc2_w", "fc2_b"], ["logits"], name="fc2", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=-1),
    ]
    inits = {"start": np.array(0, np.int64), "limit": np.array(BYTES, np.int64), "delta": np.array(1, np.int64),
             "last": i64(-1), "seq_axis": i64(1), "embed": randn(BYTES, hidden), "fc1_w": randn(hidden, hidden),
             "fc1_b": randn(hidden), "fc2_w": randn(classes, hidden), "fc2_b": randn(classes)}
    return make_model(nodes, [value_info("bytes", TensorProto.INT32, [1, length])],
                      [value_info("probs", TensorProto.FLOAT, [1, classes])], inits, 18, "byte_classifier")


def byte_inputs(length: int = 64, seed: int = 0) -> np.ndarray:
    """Text-like bytes: mostly printable ASCII, some newlines, a few high bytes."""
    rng = np.random.default_rng(seed)
    data = rng.integers(32, 127, size=(1, length))
    data[0, rng.integers(0, length, size=length // 16)] = 10
    data[0, rng.integers(0, length, size=length // 32)] = rng.integers(128, 256, size=length // 32)
    return data.astype(np.int32)


TF_INPUTS = ("serving_default_input_2:0", "serving_default_gain:0")
TF_OUTPUTS = ("dense_5", "dense_6:0")


def tf_named(batch: str = "unk__7") -> onnx.ModelProto:
    """tf2onnx-style names (`:0` suffixes, `/` scopes) and a dynamic batch; conv -> BatchNorm gives
    output `dense_5`, which fold-bn rewrites, and a gain input scales the second output."""
    c = 4
    nodes = [
        helper.make_node("Conv", [TF_INPUTS[0], "conv/kernel:0", "conv/bias:0"], ["StatefulPartitionedCall/conv:0"],
                         name="StatefulPartitionedCall/conv", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["StatefulPartitionedCall/conv:0", "bn/gamma:0", "bn/beta:0",
                                                "bn/mean:0", "bn/var:0"], [TF_OUTPUTS[0]], name="bn"),
        helper.make_node("Mul", [TF_OUTPUTS[0], TF_INPUTS[1]], ["StatefulPartitionedCall/mul:0"], name="mul"),
        helper.make_node("Relu", ["StatefulPartitionedCall/mul:0"], [TF_OUTPUTS[1]], name="relu"),
    ]
    inits = {"conv/kernel:0": randn(c, 3, 3, 3), "conv/bias:0": randn(c), "bn/gamma:0": randn(c),
             "bn/beta:0": randn(c), "bn/mean:0": randn(c), "bn/var:0": np.abs(randn(c)) + 0.5}
    inputs = [value_info(TF_INPUTS[0], TensorProto.FLOAT, [batch, 3, 8, 8]),
              value_info(TF_INPUTS[1], TensorProto.FLOAT, [batch, c, 1, 1])]
    outputs = [value_info(TF_OUTPUTS[0], TensorProto.FLOAT, [batch, c, 8, 8]),
               value_info(TF_OUTPUTS[1], TensorProto.FLOAT, [batch, c, 8, 8])]
    return make_model(nodes, inputs, outputs, inits, 13, "tf_named")


def opset9_classifier() -> onnx.ModelProto:
    """A ResNet-style stem as old exporters wrote it at opset 9: Upsample (removed at opset 10),
    BatchNormalization with its opset-9 signature, Flatten + Gemm, Softmax over axis 1."""
    c = 4
    nodes = [
        helper.make_node("Upsample", ["x", "scales"], ["up"], name="upsample", mode="nearest"),
        helper.make_node("Conv", ["up", "w", "b"], ["conv"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["conv", "scale", "shift", "mean", "var"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1),
    ]
    inits = {"scales": np.array([1, 1, 2, 2], np.float32), "w": randn(c, 3, 3, 3), "b": randn(c),
             "scale": randn(c), "shift": randn(c), "mean": randn(c), "var": np.abs(randn(c)) + 0.5,
             "fc_w": randn(10, c), "fc_b": randn(10)}
    return make_model(nodes, [value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                      [value_info("probs", TensorProto.FLOAT, [1, 10])], inits, 9, "opset9_classifier")


def keras_attention(seq: int = 6, hidden: int = 16, heads: int = 2) -> onnx.ModelProto:
    """A Keras BERT attention block as tf2onnx writes it: projections and head contractions as
    Einsum, the merged-heads shape computed with Shape -> Slice -> ReduceProd -> Concat."""
    d = hidden // heads
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    nodes = [
        helper.make_node("Einsum", ["x", "wq"], ["q"], name="query", equation="abc,cde->abde"),
        helper.make_node("Einsum", ["x", "wk"], ["k"], name="key", equation="abc,cde->abde"),
        helper.make_node("Einsum", ["x", "wv"], ["v"], name="value", equation="abc,cde->abde"),
        helper.make_node("Einsum", ["k", "q"], ["scores"], name="scores", equation="aecd,abcd->acbe"),
        helper.make_node("Softmax", ["scores"], ["probs"], name="softmax", axis=-1),
        helper.make_node("Einsum", ["probs", "v"], ["context"], name="context", equation="acbe,aecd->abcd"),
        helper.make_node("Einsum", ["context", "wo"], ["projected"], name="output", equation="abcd,cde->abe"),
        helper.make_node("Shape", ["context"], ["shape"], name="shape"),
        helper.make_node("Slice", ["shape", "s0", "s2"], ["lead"], name="lead"),
        helper.make_node("Slice", ["shape", "s2", "s4"], ["tail"], name="tail"),
        helper.make_node("ReduceProd", ["tail"], ["merged"], name="merged", keepdims=1),
        helper.make_node("Concat", ["lead", "merged"], ["target"], name="target", axis=0),
        helper.make_node("Reshape", ["context", "target"], ["heads_merged"], name="merge_heads"),
        helper.make_node("Add", ["projected", "heads_merged"], ["sum"], name="residual"),
        helper.make_node("Add", ["sum", "bias"], ["y"], name="bias"),
    ]
    inits = {"wq": randn(hidden, heads, d, scale=0.3), "wk": randn(hidden, heads, d, scale=0.3),
             "wv": randn(hidden, heads, d), "wo": randn(heads, d, hidden, scale=0.3), "bias": randn(hidden),
             "s0": i64(0), "s2": i64(2), "s4": i64(4)}
    return make_model(nodes, [value_info("x", TensorProto.FLOAT, [1, seq, hidden])],
                      [value_info("y", TensorProto.FLOAT, [1, seq, hidden])], inits, 13, "keras_attention")


def _branch(name: str, nodes, outputs, initializers=None) -> onnx.GraphProto:
    inits = [numpy_helper.from_array(a, n) for n, a in (initializers or {}).items()]
    return helper.make_graph(nodes, name, [], outputs, inits)


def sample_rate_switch(samples: int = 64) -> onnx.ModelProto:
    """Silero-style: one branch per input length (a 16 kHz and an 8 kHz front end), chosen by an If
    whose condition compares a Shape-derived length with a constant; the else branch nests another
    If on a flag initializer. Branches read outer tensors and carry their own initializers."""
    out = value_info("features", TensorProto.FLOAT, None)
    then_nodes = [helper.make_node("MatMul", ["audio", "w16"], ["proj16"], name="proj16"),
                  helper.make_node("Tanh", ["proj16"], ["features"], name="tanh16")]
    inner_then = _branch("inner_then", [helper.make_node("Sigmoid", ["proj8"], ["sig8"], name="sig8")],
                         [value_info("sig8", TensorProto.FLOAT, None)])
    inner_else = _branch("inner_else", [helper.make_node("Relu", ["proj8"], ["relu8"], name="relu8")],
                         [value_info("relu8", TensorProto.FLOAT, None)])
    else_nodes = [helper.make_node("MatMul", ["audio", "w8"], ["proj8"], name="proj8"),
                  helper.make_node("If", ["use_sigmoid"], ["features"], name="activation",
                                   then_branch=inner_then, else_branch=inner_else)]
    nodes = [
        helper.make_node("Shape", ["audio"], ["shape"], name="shape"),
        helper.make_node("Gather", ["shape", "one"], ["length"], name="length", axis=0),
        helper.make_node("Equal", ["length", "len16"], ["is16k"], name="is16k"),
        helper.make_node("If", ["is16k"], ["branch_out"], name="sample_rate",
                         then_branch=_branch("then", then_nodes, [out]),
                         else_branch=_branch("else", else_nodes, [out], {"w8": randn(samples, 8)})),
        helper.make_node("Add", ["branch_out", "bias"], ["y"], name="bias"),
    ]
    inits = {"one": np.array(1, np.int64), "len16": np.array(samples * 2, np.int64),
             "use_sigmoid": np.array(True), "w16": randn(samples * 2, 8), "bias": randn(8)}
    return make_model(nodes, [value_info("audio", TensorProto.FLOAT, [1, "samples"])],
                      [value_info("y", TensorProto.FLOAT, [1, 8])], inits, 16, "sample_rate_switch")
