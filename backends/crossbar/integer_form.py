"""The integer form of one weighted layer, as the crossbar computes it.

A mapped layer is a set of integer matrices (one per group, [outputs, inputs]) with one scale per
output, and a rule turning its activation into integer input codes. The crossbar computes
acc = sum(W_int * q) exactly in integers; the digital unit subtracts the input zero point
(zp * column sums) and dequantizes: y = acc * weight_scale * input_scale (+ bias), or, for a
layer of the integer form, adds the int32 bias and hands on the int32 accumulator.

Where the integers come from:
* `from_fake_quant`: the `quantize` pass's graph: the weight is the output of a `fake_quant` node
  (QuantAnnotation role=weight) and the activation input the output of another (role=activation).
  Codes are read back from the fake-quant values: W_int = round(fq(W) / (scale * quantum)), with
  quantum = 1 for integer formats and the smallest subnormal step for ExMy formats, so int2-8,
  asymmetric and per-tensor/per-channel FP formats all become exact integers.
* `on_the_fly`: a layer the graph left float: symmetric per-output-channel weights at
  `weight-bits`, inputs quantized per call at `input-bits` (dynamic, per tensor).
* the integer form, from the `integerize` pass: `int_conv` / `int_linear` / `int_matmul` with
  a constant of weight codes. The matrices are the codes minus the weight zero point, the input
  codes arrive as integers with the node's zero point, the scales are read from the IntAnnotations
  (for the report; the product needs none). Such a layer's result is the op's int32 accumulator,
  bias included, so every other node of the graph runs as the interpreter runs it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from compiler.errors import BackendError
from compiler.ir import Node, Value
from compiler.ops import get_op
from compiler.ops.interfaces import WeightLayout
from compiler.quant import QuantAnnotation
from compiler.quant.formats import BlockFormat, FloatFormat, FormatError, IntFormat, parse_format
from compiler.quant.int_annotation import IntAnnotation
from compiler.quant.integer import broadcast_along
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
        if not x.dtype.is_floating_point:  # the integer form: the tensor holds the codes
            return x.float(), self.scale * self.quantum, self.zero_point, self.qmin, self.qmax
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
    accumulator: bool = False   # the result is the int32 accumulator (integer form), not a float

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
        island = _dequantized_codes(x)
        if island is not None:
            return island
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


def _code_range_of(value: Value, ann: IntAnnotation | None) -> tuple[int, int]:
    """The codes an integer-form value holds: its annotated format's range, else its dtype's."""
    try:
        fmt = parse_format(ann.format) if ann is not None else None
    except FormatError:  # int32 and wider: no code format, the dtype bounds it
        fmt = None
    if isinstance(fmt, IntFormat):
        return fmt.qmin, fmt.qmax
    info = torch.iinfo(value.dtype)
    return info.min, info.max


def _annotated_scale(node: Node, ann: IntAnnotation | None) -> torch.Tensor | None:
    scale = node.graph.weights.get(ann.scale) if ann is not None and node.graph is not None else None
    return None if scale is None else scale.data.double()


def _zero_point(node: Node, operand: int, what: str) -> torch.Tensor | None:
    """The constant zero point of operand 0 or 1: the integer ops list one optional zero-point input
    per operand, in operand order, after the operands and the bias."""
    slots = [i for i, name in enumerate(get_op(node.op).inputs) if name.rstrip("?").endswith("zero_point")]
    v = node.inputs[slots[operand]] if slots[operand] < len(node.inputs) else None
    if v is None:
        return None
    if v.data is None:
        raise BackendError(f"{_where(node)}: its {what} zero point %{v.name} is computed at run time",
                           where=_where(node), hint="fold it into a constant first (fold-constants)")
    return v.data.to(torch.int64)


def _integer_weight(node: Node, layout: WeightLayout, w: Value):
    """An integer-form weight: (codes - zero point in the weight's shape, per-element scale, wmin, wmax, format)."""
    ann = w.annotation(IntAnnotation)
    codes, (lo, hi) = w.data.to(torch.int64), _code_range_of(w, ann)
    zp = _zero_point(node, layout.weight, "weight")
    if zp is not None:  # per tensor, or per output channel
        codes = codes - broadcast_along(zp, codes.dim(), layout.out_axis)
        lo, hi = lo - int(zp.max()), hi - int(zp.min())
    scale = _annotated_scale(node, ann)
    scale_full = (torch.ones(()) if scale is None else expand_scale(scale, codes, ann.axis, 0)).double()
    fmt_name = ann.format if ann is not None else str(w.dtype).removeprefix("torch.")
    return codes, scale_full.expand(codes.shape), lo, hi, fmt_name


def _dequantized_codes(x: Value) -> InputCodes | None:
    """A float layer's input that is `dequantize(codes)` per tensor (a float island of the integer
    form, e.g. a transposed conv integerize leaves in float): its own codes, read back exactly."""
    deq = x.producer
    if deq is None or deq.op != "dequantize" or deq.inputs[0].dtype not in (torch.int8, torch.uint8, torch.int16):
        return None
    scale, zp = deq.inputs[1], deq.inputs[2] if len(deq.inputs) > 2 else None
    if scale.data is None or scale.data.numel() != 1 or (zp is not None and (zp.data is None or zp.data.numel() != 1)):
        return None
    qmin, qmax = _code_range_of(deq.inputs[0], deq.inputs[0].annotation(IntAnnotation))
    return InputCodes(scale=float(scale.data.double()), zero_point=0 if zp is None else int(zp.data.item()),
                      qmin=qmin, qmax=qmax, source=str(deq.inputs[0].dtype).removeprefix("torch."))


def _integer_input(node: Node, layout: WeightLayout) -> InputCodes:
    x = node.inputs[layout.activations[0]]
    if x.dtype not in (torch.int8, torch.uint8, torch.int16):
        raise BackendError(f"{_where(node)}: its input %{x.name} holds {str(x.dtype).removeprefix('torch.')} "
                           f"codes; the DACs take 8- or 16-bit codes", where=_where(node),
                           hint="requantize the input to int8/uint8 codes (integerize does)")
    ann = x.annotation(IntAnnotation)
    zp = _zero_point(node, layout.activations[0], "input")
    if (ann is not None and ann.axis is not None) or (zp is not None and bool((zp != zp.flatten()[0]).any())):
        raise BackendError(f"{_where(node)}: input %{x.name} is quantized per channel; a crossbar column "
                           f"mixes all input channels at one input scale", where=_where(node),
                           hint="quantize activations with act-granularity=tensor")
    scale = _annotated_scale(node, ann)
    qmin, qmax = _code_range_of(x, ann)
    return InputCodes(scale=1.0 if scale is None else float(scale.flatten()[0]),
                      zero_point=0 if zp is None else int(zp.flatten()[0]), qmin=qmin, qmax=qmax,
                      source=ann.format if ann is not None else str(x.dtype).removeprefix("torch."))


def integer_layer(node: Node, weight_bits: int | None, input_bits: int | None) -> IntegerLayer | None:
    """The layer's integer form, or None when it is not a product with a constant matrix.

    A float weight (possibly behind a fake_quant) is quantized as the graph says or on the fly;
    an integer weight is the codes constant of the integer form."""
    layout = get_op(node.op).layout
    if layout is None or layout.in_axis is None or not layout.activations:
        return None
    w, fq = constant_weight(node, layout)
    if w is None or w.dtype == torch.bool:
        return None
    if not layout.spatial_attr and w.rank != 2:  # a batch of matrices (batched matmul): runs digitally
        return None
    if w.dtype.is_floating_point:
        codes, scale_full, wmin, wmax, fmt_name = _weight_codes(node, layout, w, fq, weight_bits)
        inputs, accumulator = _input_codes(node, layout, input_bits), False
    else:  # the integer form: codes in, int32 accumulator out
        codes, scale_full, wmin, wmax, fmt_name = _integer_weight(node, layout, w)
        inputs, accumulator = _integer_input(node, layout), True
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
                        inputs, kind, fmt_name, kernel, accumulator)
