"""QONNX export (`target qonnx`): fake_quant as QONNX's Quant and FloatQuant, for FINN and hls4ml.

    int2..int8, uint2..uint8    Quant(x, scale, zero_point, bitwidth) {signed, narrow, rounding_mode=ROUND}
    fpN-eXmY (FP4 E2M1/E3M0/E1M2, FP6, FP8)
                                FloatQuant(x, scale, exponent_bitwidth, mantissa_bitwidth,
                                           exponent_bias, max_val) {has_inf=0, has_nan=0, saturation=1}
    mxfp4, nvfp4 (weights)      FloatQuant E2M1 with the block scales expanded to the weight's shape

QONNX custom ops live in the domain `qonnx.custom_op.general`; scales broadcast numpy-style, so a
per-channel scale is reshaped along its axis. A real-valued exponent bias is already folded into
nnforge's scale, so FloatQuant gets the format's default (integer) bias and that scale. Every other
op uses the ONNX lowerings; the model runs in qonnx's own executor (`qonnx` package, dev extra).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from onnx import helper

from backends.onnx.builder import OnnxBuilder
from backends.onnx.builder import MAX_OPSET, MIN_OPSET
from compiler.atomic import atomic_path
from compiler.backend import Artifact, Backend, register_backend
from compiler.errors import BackendError
from compiler.interpreter import check_inputs
from compiler.ir import Graph, Node
from compiler.options import option
from compiler.quant.formats import BlockFormat, FloatFormat, IntFormat, parse_format
from compiler.quant.kernels import expand_scale

DOMAIN = "qonnx.custom_op.general"


def _broadcast_scale(node: Node, i: int) -> torch.Tensor:
    """Input i (scale or zero point) shaped to broadcast against x numpy-style."""
    x, t = node.inputs[0], node.inputs[i].data.detach().float()
    axis, block = node.attrs["axis"], node.attrs["block_size"]
    if axis is None or t.dim() == 0:
        return t.reshape(())
    if block:
        return expand_scale(t, torch.empty(x.shape, device="meta"), axis, block).contiguous()
    shape = [1] * x.rank
    shape[axis % x.rank] = -1
    return t.reshape(shape)


def lower_fake_quant(b: OnnxBuilder, node: Node) -> None:
    fmt = parse_format(node.attrs["format"])
    if node.inputs[1].data is None:
        raise b.error("QONNX needs constant scales")
    scale = _broadcast_scale(node, 1)
    f32 = lambda value: b.tensor(torch.tensor(float(value)), "param")  # noqa: E731
    if isinstance(fmt, IntFormat):
        zp = _broadcast_scale(node, 2) if len(node.inputs) > 2 and node.inputs[2] is not None else torch.tensor(0.0)
        b.emit("Quant", [b.x(node), b.tensor(scale, "scale"), b.tensor(zp, "zero_point"), f32(fmt.bits)],
               [b.y(node)], domain=DOMAIN, signed=int(fmt.signed), narrow=int(fmt.narrow), rounding_mode="ROUND")
        return
    if isinstance(fmt, BlockFormat):
        if node.inputs[0].data is None:
            raise b.error(f"{fmt.name} on activations has no QONNX form")
        if len(node.inputs) > 3 and node.inputs[3] is not None:
            scale = scale * node.inputs[3].data.detach().float()
        fmt = fmt.element
    assert isinstance(fmt, FloatFormat)
    b.emit("FloatQuant", [b.x(node), b.tensor(scale, "scale"), f32(fmt.exponent_bits), f32(fmt.mantissa_bits),
                          f32(fmt.default_bias), f32(fmt.max_value)],
           [b.y(node)], domain=DOMAIN, has_inf=0, has_nan=0, has_subnormal=1, saturation=1, rounding_mode="ROUND")


class QonnxRunner:
    """Runs the model in qonnx's executor (node by node; standard ops through onnxruntime)."""

    def __init__(self, model: onnx.ModelProto, graph: Graph):
        self.model, self.graph = model, graph

    def __call__(self, inputs) -> list[torch.Tensor]:
        try:
            from qonnx.core.modelwrapper import ModelWrapper
            from qonnx.core.onnx_exec import execute_onnx
            from qonnx.transformation.infer_shapes import InferShapes
        except ImportError:
            raise BackendError("running a QONNX model needs the qonnx package",
                               hint="pip install qonnx (in nnforge's dev extra)") from None
        check_inputs(self.graph, inputs)
        wrapper = ModelWrapper(onnx.ModelProto.FromString(self.model.SerializeToString())).transform(InferShapes())
        feed = {v.name: t.detach().cpu().numpy() for v, t in zip(self.graph.inputs, inputs)}
        out = execute_onnx(wrapper, feed)
        return [torch.from_numpy(out[o.name]) for o in self.model.graph.output]


@register_backend("qonnx")
@dataclass(frozen=True)
class QonnxBackend(Backend):
    """Lower to QONNX (ONNX + Quant/FloatQuant custom ops); with an output path, write the file."""

    suffix = ".qonnx.onnx"  # beside model.onnx when compiling to every target
    opset: int = option(17, low=MIN_OPSET, high=MAX_OPSET)

    def lower(self, graph: Graph, output: Path | None) -> Artifact:
        from backends.onnx import build_model
        start = time.perf_counter()
        model, weight_bytes = build_model(graph, self.opset, {"fake_quant": lower_fake_quant})
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
        counts: dict[str, int] = {}
        for n in model.graph.node:
            if n.domain == DOMAIN:
                counts[n.op_type] = counts.get(n.op_type, 0) + 1
        info = {"opset": self.opset, "nodes": len(model.graph.node), "weight_bytes": weight_bytes,
                **{f"qonnx.{k}": v for k, v in sorted(counts.items())}}
        files = []
        if output is not None:
            with atomic_path(Path(output)) as tmp:
                tmp.write_bytes(model.SerializeToString())
            files.append(Path(output))
        info["export_s"] = round(time.perf_counter() - start, 4)
        return Artifact(target=self.name, obj=model, files=files, runner=QonnxRunner(model, graph), info=info)
