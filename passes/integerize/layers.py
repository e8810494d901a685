"""Quantized layers as integer layers: weight codes, int32 bias, int32 accumulators.

conv(fq(x), fq(W), b)  ->  int_conv(q_x, q_W, round(b / (s_x s_W)), z_x, z_W)   at scale s_x * s_W
linear, and matmul of two quantized activations (attention) alike. The accumulator's scale is
per output channel when the weight's is.
"""
from __future__ import annotations

import torch

from compiler.ir import Node, Value
from compiler.names import layer_names
from compiler.ops import get_op
from compiler.quant.formats import IntFormat, parse_format
from compiler.sparse.annotation import SparsityAnnotation
from passes.integerize.rep import INT32, Emitter, IntegerizeError, Rep

INT_LAYERS = {"conv": "int_conv", "linear": "int_linear", "matmul": "int_matmul"}
def layer_name(node: Node) -> str:
    return layer_names(node)[0] if layer_names(node) else node.name


def keep_hint(node: Node) -> str:
    return f"keep such layers in fake-quant: integerize{{skip=[{layer_name(node)}, ...]}} leaves them as float islands"


def int_format(fq: Node, layer: Node) -> IntFormat:
    """The integer format of a fake_quant feeding `layer`, or IntegerizeError naming both."""
    fmt = parse_format(fq.attrs["format"])
    if not isinstance(fmt, IntFormat):
        raise IntegerizeError(
            f"layer '{layer_name(layer)}' is quantized to {fmt.name}, which has no integer form "
            f"(integerize takes int2..int8 and uint2..uint8)", hint=keep_hint(layer))
    if fq.attrs["block_size"]:
        raise IntegerizeError(
            f"layer '{layer_name(layer)}' has per-group {fmt.name} scales (blocks of {fq.attrs['block_size']}): "
            f"one int32 accumulator cannot sum products at different scales",
            hint="quantize weights per channel (granularity=channel), or " + keep_hint(layer))
    return fmt


def storage_dtype(fmt: IntFormat) -> torch.dtype:
    return torch.int8 if fmt.signed else torch.uint8


def weight_codes(fq: Node, layer: Node, em: Emitter) -> tuple[Value, torch.Tensor, Value | None, int | None]:
    """(codes constant, scale float64, zero-point constant or None, scale axis) of a quantized weight."""
    fmt = int_format(fq, layer)
    w, scale = fq.inputs[0].data.detach(), fq.inputs[1].data.detach()
    zp = fq.inputs[2].data.detach() if len(fq.inputs) > 2 and fq.inputs[2] is not None else None
    axis = fq.attrs["axis"]
    codes = torch.from_numpy(fmt.encode(w, scale, zp, axis=axis).astype("int32")).to(storage_dtype(fmt))
    stem = fq.inputs[0].name
    codes_v = em.const(f"{stem}.codes", codes)
    zp_v = None
    if zp is not None and bool((zp != 0).any()):
        zp_v = em.const(f"{stem}.codes.zero_point", zp.round().to(torch.int32).reshape(scale.shape))
    scale_v = em.const(f"{stem}.codes.scale", scale.float())
    em.annotate(codes_v, scale_v, zp_v, axis, fmt.name)
    sparsity = fq.inputs[0].annotation(SparsityAnnotation)
    if sparsity is not None:  # a pruned weight encodes to the zero point: the centred codes keep the pattern
        codes_v.annotate(sparsity)
    return codes_v, scale.double(), zp_v, axis


def lower_layer(node: Node, reps: dict[Value, Rep], em: Emitter) -> Rep | None:
    """The accumulator Rep of a quantized layer, or None when its inputs are not quantized (float)."""
    layout = get_op(node.op).layout
    if node.op == "matmul" and all(v in reps and _is_codes(reps[v]) for v in node.inputs):
        return _int_matmul(node, reps, em)
    x, w_q = node.inputs[layout.activations[0]], layout.weight_value(node)
    fq = w_q.producer if w_q is not None else None
    if fq is None or fq.op != "fake_quant" or fq.inputs[0].data is None:
        return None
    if x not in reps or not _is_codes(reps[x]):
        return None
    xr = reps[x]
    if not xr.per_tensor:
        raise IntegerizeError(f"layer '{layer_name(node)}' reads per-channel activation scales: one int32 "
                              "accumulator cannot sum products at different scales",
                              hint="quantize activations per tensor (act-granularity=tensor), or fold "
                                   "pre-shifted scales first (fold-preshifted-bias)")
    codes, w_scale, w_zp, w_axis = weight_codes(fq, node, em)
    acc_scale = xr.scale * w_scale
    x_zp = em.zp_const(f"{node.name}.x", xr.zero_point)
    out_axis = layout.output_channel_axis(node) if w_scale.dim() else None
    if node.op == "matmul":
        if w_zp is not None:
            raise IntegerizeError(f"layer '{layer_name(node)}': asymmetric weights of a matmul are not supported",
                                  hint="quantize matmul weights symmetrically (int8), or " + keep_hint(node))
        acc = em.node("int_matmul", [xr.value, codes, x_zp], {}, f"{node.name}.int")
        return _acc(em, node, acc, acc_scale, out_axis)
    bias = _bias(node, layout, acc_scale, em)
    inputs = [xr.value, codes, bias, x_zp, w_zp]
    while inputs[-1] is None:
        inputs.pop()
    acc = em.node(INT_LAYERS[node.op], inputs, dict(node.attrs), f"{node.name}.int")
    acc.producer.annotations.update(node.annotations)   # what the layer is (block-conv's tiling) stays true
    return _acc(em, node, acc, acc_scale, out_axis)


def _is_codes(rep: Rep) -> bool:
    return rep.value.dtype in (torch.int8, torch.uint8) and rep.lo is None and rep.hi is None and not rep.pending


def _bias(node: Node, layout, acc_scale: torch.Tensor, em: Emitter) -> Value | None:
    b = layout.bias_value(node)
    if b is None:
        return None
    if b.data is None:
        raise IntegerizeError(f"layer '{layer_name(node)}' has a bias computed at run time",
                              hint="fold it into a constant first (fold-constants)")
    q = torch.round(b.data.detach().double() / acc_scale.expand_as(b.data))
    if q.abs().max() > INT32[1]:
        raise IntegerizeError(f"layer '{layer_name(node)}': its bias does not fit int32 at scale s_x * s_w")
    return em.const(f"{node.name}.bias.int32", q.to(torch.int32))


def _acc(em: Emitter, node: Node, acc: Value, scale: torch.Tensor, axis: int | None) -> Rep:
    scale_v = em.const(f"{node.name}.acc_scale", scale.float())
    em.annotate(acc, scale_v, None, axis, "int32")
    return Rep(acc, scale, axis)


def _int_matmul(node: Node, reps: dict[Value, Rep], em: Emitter) -> Rep:
    a, b = (reps[v] for v in node.inputs)
    if not (a.per_tensor and b.per_tensor):
        raise IntegerizeError(f"matmul '{node.name}' reads per-channel activation scales",
                              hint="quantize activations per tensor (act-granularity=tensor)")
    inputs = [a.value, b.value, em.zp_const(f"{node.name}.a", a.zero_point),
              em.zp_const(f"{node.name}.b", b.zero_point)]
    if inputs[3] is not None and inputs[2] is None:
        inputs[2] = em.const(f"{node.name}.a.zero_point", torch.tensor(0, dtype=torch.int32))
    while inputs[-1] is None:
        inputs.pop()
    acc = em.node("int_matmul", inputs, {}, f"{node.name}.int")
    return _acc(em, node, acc, a.scale * b.scale, None)
