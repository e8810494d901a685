"""Small equivalents of third-party ONNX files that users bring, built in code.

Each mirrors what a real exporter left in a file nnforge had to take as it is: a byte classifier
that one-hots its input with `Equal` against a constant 0..256 range (a file-type classifier), a
TensorFlow export whose tensor names carry `:0` and whose input dim is dynamic, a Keras BERT
attention block written with `Einsum`, and onnxruntime's quantized forms of a small CNN.
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from tests.onnx_models import make_model, randn, value_info

BYTES = 257          # 0..255 and a padding token


def byte_classifier(length: int = 64, hidden: int = 32, classes: int = 5) -> "onnx.ModelProto":  # noqa: F821
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
