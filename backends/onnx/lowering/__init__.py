"""One lowering per IR op: `LOWERINGS[op](b, node)` emits ONNX nodes that define node.outputs.

Each lowering reproduces the op registry's torch reference (`compiler.ops`) exactly, up to float
rounding; what it cannot express at the builder's opset raises BackendError naming the node,
never an approximation. A test asserts this table covers the registry exactly.

`registry.py` holds the table, the `@lowering(*ops)` decorator that fills it and the helpers
several families share. Each family module registers its ops on import, one module per op family
as in `compiler/ops/`: nn, norm, activation, elementwise, shape, pool, reduce, recurrent, and
integer (the integer form's ops, exact: docs/integer-form.md).
`fake_quant` is lowered by `backends/onnx/quant.py`, next to the QDQ format tables.
"""
from backends.onnx.lowering.registry import LOWERINGS, Lowering, lowering
from backends.onnx.lowering import activation, elementwise, nn, norm, pool, reduce, shape  # noqa: F401
from backends.onnx.lowering import integer, recurrent  # noqa: F401  (integer form; lstm, gru)

__all__ = ["LOWERINGS", "Lowering", "lowering"]
