"""The integer form of one weighted layer, as the crossbar computes it.

A mapped layer is a set of integer matrices (one per group, [outputs, inputs]) with one scale per
output, and a rule turning its float activation into integer input codes. The crossbar computes
acc = sum(W_int * q) exactly in integers; the digital unit subtracts the input zero point
(zp * column sums) and dequantizes: y = acc * weight_scale * input_scale (+ bias).

Where the integers come from:
* `from_fake_quant`: the `quantize` pass's graph: the weight is the output of a `fake_quant` node
  (QuantAnnotation role=weight) and the activation input the output of another (role=activation).
  Codes are read back from the fake-quant values: W_int = round(fq(W) / (scale * quantum)), with
  quantum = 1 for integer formats and the smallest subnormal step for ExMy formats, so int2-8,
  asymmetric and per-tensor/per-channel FP formats all become exact integers.
* `on_the_fly`: a layer the graph left float: symmetric per-output-channel weights at
  `weight-bits`, inputs quantized per call at `input-bits` (dynamic, per tensor).
* An integer-lowered graph (explicit int weights and activations, int32 accumulation) plugs in
  as one more constructor here that reads those nodes; nothing downstream changes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from compiler.errors import BackendError
from compiler.ir import Node, Value
from compiler.ops import get_op
from compiler.ops.interfaces import WeightLayout
from compiler.quant import QuantAnnotation
from compiler.quant.formats import BlockFormat, FloatFormat, IntFormat, parse_format
from compiler.quant.kernels import expand_scale


def _where(node: Node) -> str:
    return f"layer '{node.name}' ({node.op})"


def quantum(fmt) -> float:
    """The spacing every value of the format's grid is an integer multiple of (at unit scale)."""
    if isinstance(fmt, FloatFormat):
        return 2.0 ** (fmt.min_exponent - fmt.mantissa_bits)
    return 1.0


def code_range(fmt, zero_point: torch.Tensor | None) -> tuple[int, int]:
    """Smallest and largest integer code (after subtracting the zero point)."""
    if isinstance(fmt, FloatFormat):
        top = int(round(fmt.max_value / quantum(fmt)))
        return -top, top
    if zero_point is None:
        return fmt.qmin, fmt.qmax
    return int(fmt.qmin - zero_point.max().item()), int(fmt.qmax - zero_point.min().item())


@dataclass
class InputCodes:
    """How a float activation becomes DAC codes q (acc is then sum W * (q - zero_point)).

    Static (from the graph's fake_quant): codes = round(xq / (scale * quantum)) + zero_point.
    Dynamic (`bits` set, scale None): a per-tensor scale from each call's own range; unsigned
    codes when the tensor is non-negative (after a ReLU), signed otherwise.
    """

    scale: float | None
    zero_point: int = 0
    qmin: int = 0
    qmax: int = 0
    quantum: float = 1.0
    bits: int = 0
    source: str = "graph"

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, float, int, int, int]:
        """(codes as float32 integers, scale per code, zero point, code min, code max)."""
        if self.scale is not None:
            step = self.scale * self.quantum
            codes = torch.round(x.double() / step) + self.zero_point
            return codes.float(), step, self.zero_point, self.qmin, self.qmax
        fmt = IntFormat(self.bits, signed=bool((x < 0).any()))
        amax = float(x.abs().max()) if x.numel() else 0.0
        scale = amax / fmt.qmax if amax > 0 else 1.0
        codes = torch.clamp(torch.round(x.double() / scale), fmt.qmin, fmt.qmax)
        return codes.float(), scale, 0, fmt.qmin, fmt.qmax


@dataclass
class IntegerLayer:
    """One mapped layer in integer form (crossbar orientation: outputs x inputs per group)."""

    node: Node
    layout: WeightLayout
    matrices: torch.Tensor      # int8/16/32 [groups, outputs per group, inputs per group]
    out_scale: torch.Tensor     # float64 [groups, outputs per group]
    wmin: int                   # the weight format's code range (fixes the number of slices)
    wmax: int
    inputs: InputCodes
    kind: str                   # "gather" (conv, im2col), "rows" (linear/matmul), "scatter" (transposed conv)
    weight_format: str
    kernel: tuple[int, ...] = ()

    @property
    def groups(self) -> int:
        return self.matrices.shape[0]


def constant_weight(node: Node, layout: WeightLayout) -> tuple[Value | None, Node | None]:
    """(the float weight value, the fake_quant node quantizing it) when the weight is a constant."""
    w = layout.weight_value(node)
    if w is None:
        return None, None
    if w.data is not None:
        return w, None
    producer = w.producer
    if producer is not None and producer.op == "fake_quant" and producer.inputs[0].data is not None:
        return producer.inputs[0], producer
    return None, None


def _fake_quant_args(fq: Node) -> tuple[list, dict]:
    return [None if v is None else v.data for v in fq.inputs], fq.attrs


def _quant_of(fq: Node) -> QuantAnnotation:
    """The annotation quantize put on the fake_quant output (rebuilt from the attributes if a
    hand-written graph has none)."""
    ann = fq.output.annotation(QuantAnnotation)
    if ann is not None:
        return ann
    axis, block = fq.attrs["axis"], fq.attrs["block_size"]
    return QuantAnnotation(format=fq.attrs["format"], axis=axis, block_size=block,
                           granularity="tensor" if axis is None else "group" if block else "channel")


def _weight_codes(node: Node, layout: WeightLayout, w: Value, fq: Node | None, weight_bits: int | None):
    """(integer weight tensor in the weight's own shape, per-element scale, wmin, wmax, format name)."""
    data = w.data.detach()
    if fq is None:
        if weight_bits is None:
            raise BackendError(f"{_where(node)} is not quantized and option 'weight-bits' is none",
                               where=_where(node),
                               hint="run `quantize` before the target, or give crossbar{weight-bits=8}")
        fmt = IntFormat(weight_bits)
        axis = layout.quant_row_axis % data.dim()
        dims = [d for d in range(data.dim()) if d != axis]
        amax = data.abs().amax(dim=dims) if dims else data.abs()
        scale = torch.where(amax > 0, amax / fmt.qmax, torch.ones_like(amax)).double()
        s = expand_scale(scale, data, axis, 0)
        codes = torch.clamp(torch.round(data.double() / s), fmt.qmin, fmt.qmax)
        return codes, s.expand_as(data), fmt.qmin, fmt.qmax, fmt.name
    ann = _quant_of(fq)
    fmt = parse_format(ann.format)
    if isinstance(fmt, BlockFormat) or ann.granularity == "group":
        raise BackendError(f"{_where(node)}: weights quantized per group ({fmt.name}, block "
                           f"{ann.block_size}) have several scales along one dot product",
                           where=_where(node), hint="a crossbar column sums a whole dot product at one "
                           "scale: quantize with granularity=channel or tensor")
    args, attrs = _fake_quant_args(fq)
    value = get_op("fake_quant").run(args, attrs)[0].double()
    scale, zp = args[1].double(), args[2] if len(args) > 2 else None
    s = expand_scale(scale, data, attrs["axis"], 0).expand_as(data) * quantum(fmt)
    codes = torch.round(value / s)
    lo, hi = code_range(fmt, zp)
    return codes, s, lo, hi, fmt.name


def _per_output(scale_full: torch.Tensor, node: Node, layout: WeightLayout) -> torch.Tensor:
    """The per-element weight scale as one scale per matrix row; an error if it varies along a row."""
    per_row = layout.matrices(scale_full, node)
    first = per_row[..., :1]
    if not torch.allclose(per_row, first.expand_as(per_row), rtol=0, atol=0):
        raise BackendError(f"{_where(node)}: the weight scale varies along the dot product",
                           where=_where(node), hint="quantize weights per output channel or per tensor")
    return first[..., 0]


def _input_codes(node: Node, layout: WeightLayout, input_bits: int | None) -> InputCodes:
    x = node.inputs[layout.activations[0]]
    fq = x.producer if x.producer is not None and x.producer.op == "fake_quant" else None
    if fq is None:
        if input_bits is None:
            raise BackendError(f"{_where(node)}: its input %{x.name} is not quantized and option "
                               f"'input-bits' is none", where=_where(node),
                               hint="run `quantize` (activations=int8) first, or give crossbar{input-bits=8}")
        return InputCodes(scale=None, bits=input_bits, source="dynamic")
    ann = _quant_of(fq)
    fmt = parse_format(ann.format)
    if ann.granularity != "tensor" or isinstance(fmt, BlockFormat):
        raise BackendError(f"{_where(node)}: input %{x.name} is quantized per channel; a crossbar "
                           f"column mixes all input channels at one input scale", where=_where(node),
                           hint="quantize activations with act-granularity=tensor")
    args, _ = _fake_quant_args(fq)
    zp = args[2] if len(args) > 2 and args[2] is not None else None
    if isinstance(fmt, FloatFormat):
        top = int(round(fmt.max_value / quantum(fmt)))
        qmin, qmax = -top, top
    else:
        qmin, qmax = fmt.qmin, fmt.qmax
    return InputCodes(scale=float(args[1].double()), zero_point=int(zp.item()) if zp is not None else 0,
                      qmin=qmin, qmax=qmax, quantum=quantum(fmt), source=fmt.name)


def _compact(lo: int, hi: int) -> torch.dtype:
    """The narrowest integer dtype holding the codes (a ResNet-50 keeps 25 MB of int8, not 200 MB)."""
    for dtype in (torch.int8, torch.int16, torch.int32):
        info = torch.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return dtype
    return torch.int64


def integer_layer(node: Node, weight_bits: int | None, input_bits: int | None) -> IntegerLayer | None:
    """The layer's integer form, or None when it is not a product with a constant matrix."""
    layout = get_op(node.op).layout
    if layout is None or layout.in_axis is None or not layout.activations:
        return None
    w, fq = constant_weight(node, layout)
    if w is None or not w.dtype.is_floating_point:
        return None
    if not layout.spatial_attr and w.rank != 2:  # a batch of matrices (batched matmul): runs digitally
        return None
    codes, scale_full, wmin, wmax, fmt_name = _weight_codes(node, layout, w, fq, weight_bits)
    matrices = layout.matrices(codes, node)
    out_scale = _per_output(scale_full, node, layout)
    kernel = tuple(w.shape[2:]) if layout.spatial_attr else ()
    kind = "rows" if not layout.spatial_attr else "scatter" if layout.transposed else "gather"
    if kind == "scatter":  # each input channel feeds out/g x kernel columns, overlap-added by the digital unit
        g, out_g, k_total = matrices.shape
        ksize = int(torch.tensor(kernel).prod()) if kernel else 1
        m = matrices.reshape(g, out_g, k_total // ksize, ksize).permute(0, 1, 3, 2)
        matrices = m.reshape(g, out_g * ksize, k_total // ksize)
        out_scale = out_scale.repeat_interleave(ksize, dim=1)
    return IntegerLayer(node, layout, matrices.to(_compact(wmin, wmax)).contiguous(), out_scale.double(), wmin, wmax,
                        _input_codes(node, layout, input_bits), kind, fmt_name, kernel)
