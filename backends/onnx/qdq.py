"""The integer form as the QDQ graph onnxruntime fuses into integer kernels (`onnx{quant=qdq}`).

onnxruntime runs QLinearConv / QLinearMatMul / int8 MaxPool when it finds the pattern its own
quantizer writes: DequantizeLinear on the int8 input and weight, an int32 bias DequantizeLinear'd
at scale s_x * s_w, the float layer, and QuantizeLinear on the output. `qdq_graph` rewrites an
integer graph (integerize's output) into that form, as IR the ordinary lowerings export:

    codes (int8/uint8)             stay integer tensors (QuantizeLinear outputs); int8 activation
                                   codes travel as uint8 with the zero point moved by 128 (exact)
    int32/int64 values             become their real value (q - z) * s in float
    int_conv / int_linear / int_matmul   dequantize(x), dequantize(w), dequantize(bias) -> conv/linear/matmul
    requantize to codes            quantize(real) at the output scale (round half to even, as ours)
    requantize to int32 (wide)     the real value itself, clamped when the rule clamps
    reduce_sum (a mean's sum)      reduce_mean of the real values

onnxruntime rounds the product acc * (s_x s_w / s_y) in float where the interpreter uses a 31-bit
fixed-point multiplier, and keeps wide values unrounded: outputs differ by one code on a few
elements (tests/test_onnx_qdq.py measures it).
"""
from __future__ import annotations

import torch

from compiler.errors import BackendError
from compiler.ir import Graph, Node, Value
from compiler.quant.int_annotation import IntAnnotation

CODES = (torch.int8, torch.uint8)
SAME_OP = frozenset({"max_pool", "reshape", "permute", "slice", "expand", "concat", "add"})


SHIFT = 128  # int8 activation codes travel as uint8 + 128, the operand type onnxruntime's x86 kernels fuse


def _shifted(v: Value) -> bool:
    """int8 activation codes (weights stay int8: onnxruntime's kernels take u8 activations, s8 weights)."""
    return v.data is None and v.dtype == torch.int8


class MissingScale(BackendError):
    """An integer value without an IntAnnotation: its real meaning (hence a QDQ form) is unknown."""


class _Converter:
    """Walks the integer graph once, building the QDQ graph beside it."""

    def __init__(self, source: Graph):
        self.src = source
        self.out = Graph(source.name)
        self.env: dict[Value, Value] = {}       # source value -> value in the QDQ graph
        self.real: set[Value] = set()           # source integer values held as real floats
        self.current: Node | None = None

    # ---- helpers ----------------------------------------------------------------------
    def const(self, name: str, t: torch.Tensor) -> Value:
        return self.out.add_constant(name, t)

    def node(self, op: str, inputs: list, attrs: dict | None = None, name: str = "") -> Value:
        src = self.current
        return self.out.create_node(op, inputs, attrs or {}, name=name or src.name, source=src.source).output

    def meaning(self, v: Value) -> tuple[torch.Tensor, torch.Tensor | None, int | None]:
        """(scale float32, zero point int32 or None, axis) of an integer source value."""
        ann = v.annotation(IntAnnotation)
        if ann is None:
            raise MissingScale(f"integer value %{v.name} carries no int annotation (scale unknown)",
                               hint="export graphs produced by integerize")
        scale = self.src.weights[ann.scale].data.float()
        zp = self.src.weights[ann.zero_point].data.to(torch.int32) if ann.zero_point else None
        return scale, zp, ann.axis

    def operand(self, v: Value | None) -> Value | None:
        """v as it is in the QDQ graph (codes stay codes, integer values are their reals)."""
        if v is None:
            return None
        if v.data is not None and v not in self.env:  # a weight: one constant however often it is read
            self.env[v] = self.const(v.name, v.data)
        return self.env[v]

    def unshifted(self, v: Value) -> Value:
        """int8 codes back from their uint8 + 128 form (an exact integer requantize), for a graph output."""
        one, zero = torch.tensor(2**30, dtype=torch.int32), torch.tensor(30, dtype=torch.int32)
        ins = [self.env[v], self.const(f"{v.name}.one", one), self.const(f"{v.name}.shift", zero),
               self.const(f"{v.name}.offset", torch.tensor(SHIFT, dtype=torch.int32))]
        return self.out.create_node("requantize", ins, {"qmin": -128, "qmax": 127, "axis": None, "dtype": torch.int8},
                                    name=f"{v.name}.int8").output

    def dequantized(self, v: Value) -> Value:
        """The real value of source value v, as a float value of the QDQ graph."""
        if v in self.real or v.dtype.is_floating_point:
            return self.operand(v)
        scale, zp, axis = self.meaning(v)
        if _shifted(v):
            zp = (zp if zp is not None else torch.tensor(0, dtype=torch.int32)) + SHIFT
        inputs = [self.operand(v), self.const(f"{v.name}.scale", scale)]
        if zp is not None:
            inputs.append(self.const(f"{v.name}.zp", zp))
        return self.node("dequantize", inputs, {"axis": axis}, f"{v.name}.real")

    def codes(self, real: Value, scale: torch.Tensor, zp: torch.Tensor | None, attrs: dict) -> Value:
        """quantize(real) to 8-bit codes; int8 activations as uint8 shifted by 128."""
        qmin, qmax, dtype = attrs["qmin"], attrs["qmax"], attrs["dtype"]
        if dtype == torch.int8:
            zp = (zp if zp is not None else torch.tensor(0, dtype=torch.int32)) + SHIFT
            qmin, qmax, dtype = qmin + SHIFT, qmax + SHIFT, torch.uint8
        ins = [real, self.const(f"{self.current.name}.scale", scale.float().reshape(()))]
        if zp is not None:
            ins.append(self.const(f"{self.current.name}.zp", zp.to(torch.int32).reshape(())))
        return self.node("quantize", ins, {"qmin": qmin, "qmax": qmax, "dtype": dtype, "axis": None})

    # ---- conversion -------------------------------------------------------------------
    def run(self) -> Graph:
        for v in self.src.inputs:
            self.env[v] = self.out.add_input(v.name, v.type)
        for node in self.src.nodes:
            self.current = node
            self.convert(node)
        self.current = None
        self.out.outputs = [self.unshifted(v) if _shifted(v) else self.operand(v) for v in self.src.outputs]
        self.out.eliminate_dead_code()
        return self.out

    def convert(self, node: Node) -> None:
        if len(node.outputs) != 1:  # split, topk: data movement on whatever form their input has
            inputs = [self.dequantized(v) if v is not None and v in self.real else self.operand(v)
                      for v in node.inputs]
            created = self.out.create_node(node.op, inputs, dict(node.attrs), name=node.name, source=node.source)
            self.env.update(zip(node.outputs, created.outputs))
            if any(v in self.real for v in node.inputs if v is not None):
                self.real.update(node.outputs)
            return
        op, y = node.op, node.output
        if op in ("int_conv", "int_linear", "int_matmul"):
            self.layer(node)
        elif op == "requantize":
            self.requantize(node)
        elif op == "dequantize":
            self.env[y] = self.dequantized(node.inputs[0])
        elif op == "quantize" and y.dtype in CODES:
            zp = node.inputs[2].data if len(node.inputs) > 2 and node.inputs[2] is not None else None
            self.env[y] = self.codes(self.operand(node.inputs[0]), node.inputs[1].data, zp, node.attrs)
        elif op in ("maximum", "minimum") and _shifted(node.inputs[0]):
            bound = (node.inputs[1].data.to(torch.int32) + SHIFT).to(torch.uint8)
            self.env[y] = self.node(op, [self.env[node.inputs[0]], self.const(f"{node.name}.bound", bound)])
        elif op == "reduce_sum" and not node.inputs[0].dtype.is_floating_point:
            real = self.dequantized(node.inputs[0])
            self.env[y] = self.node("reduce_mean", [real], dict(node.attrs))
            self.real.add(y)
        elif op in ("maximum", "minimum") and node.inputs[0] in self.real:
            bound = node.inputs[1]
            scale, zp, axis = self.meaning(node.inputs[0])
            if scale.dim():
                scale = scale.reshape([-1 if d == axis % bound.rank else 1 for d in range(bound.rank)])
            real_bound = (bound.data.to(torch.int64) - (0 if zp is None else zp.to(torch.int64))).float() * scale
            self.env[y] = self.node(op, [self.env[node.inputs[0]], self.const(f"{node.name}.bound", real_bound)])
            self.real.add(y)
        elif op in SAME_OP and any(v in self.real for v in node.inputs if v is not None):
            inputs = [None if v is None else self.dequantized(v) for v in node.inputs]
            self.env[y] = self.node(op, inputs, dict(node.attrs))
            self.real.add(y)
        else:
            inputs = [self.operand(v) for v in node.inputs]
            created = self.out.create_node(op, inputs, dict(node.attrs), name=node.name, source=node.source)
            self.env.update(zip(node.outputs, created.outputs))

    def layer(self, node: Node) -> None:
        x, w = node.inputs[0], node.inputs[1]
        xs, ws = self.dequantized(x), self.dequantized(w)
        if node.op == "int_matmul":
            self.env[node.output] = self.node("matmul", [xs, ws])
        else:
            bias = node.inputs[2] if len(node.inputs) > 2 else None
            b = None
            if bias is not None:
                acc_scale, _, _ = self.meaning(node.output)
                b_codes = self.const(f"{node.name}.bias_codes", bias.data)
                b = self.node("dequantize", [b_codes, self.const(f"{node.name}.bias_scale", acc_scale)],
                              {"axis": 0 if acc_scale.dim() else None}, f"{node.name}.bias")
            float_op = {"int_conv": "conv", "int_linear": "linear"}[node.op]
            self.env[node.output] = self.node(float_op, [xs, ws, b], dict(node.attrs))
        self.real.add(node.output)

    def requantize(self, node: Node) -> None:
        x, y, a = node.inputs[0], node.output, node.attrs
        real = self.dequantized(x)
        scale, zp, _ = self.meaning(y)
        if a["dtype"] in CODES:
            self.env[y] = self.codes(real, scale, zp, a)
            return
        z = 0 if zp is None else int(zp)
        lo = None if a["qmin"] <= -2**31 else float((a["qmin"] - z) * scale)
        hi = None if a["qmax"] >= 2**31 - 1 else float((a["qmax"] - z) * scale)
        self.env[y] = real if lo is None and hi is None else self.node("clip", [real], {"min": lo, "max": hi})
        self.real.add(y)


def qdq_graph(graph: Graph) -> Graph:
    """A float QDQ graph computing what the integer graph computes, for onnxruntime to fuse."""
    return _Converter(graph).run()


def is_integer_form(graph: Graph) -> bool:
    return any(n.op in ("requantize", "int_conv", "int_linear", "int_matmul") for n in graph.nodes)
