"""The op registry, populated by importing each op family."""
from compiler.ops import activation, elementwise, nn, norm, pool, reduce, shape  # noqa: F401
from compiler.ops import logic, pointwise, select  # noqa: F401  (ops the ONNX frontend needs)
from compiler.ops import quant  # noqa: F401  (fake_quant; formats in compiler/quant/)
from compiler.ops import recurrent  # noqa: F401  (lstm, gru; kernels in recurrent_kernels.py)
from compiler.ops import integer  # noqa: F401  (the integer form: quantize, requantize, int_conv ...)
from compiler.ops.interfaces import Trait, WeightLayout
from compiler.ops.registry import Attr, OpDef, all_ops, find_op, get_op, register_op

__all__ = ["Attr", "OpDef", "Trait", "WeightLayout", "all_ops", "find_op", "get_op", "register_op"]
