"""ONNX backend: a ModelProto built straight from the IR, checked, and run in onnxruntime.

    target onnx{opset=21}          opset auto (default: the lowest carrying every format) or 17..24
    target onnx{quant=exact}       quantized graphs: qdq (default, fused by onnxruntime), exact, plain
                                   (backends/onnx/prepare.py); check=false skips onnx.checker

One lowering per IR op lives in `lowering/` (a module per op family); `builder.py` assembles the
ModelProto (IR value names are kept as tensor names, weights become initializers with one copy
each); `runtime.py` runs it. A graph imported from a file keeps that file's input and output names,
order and dtypes (`graph.interface`); the IR is static, so dynamic dims of the original are fixed
to the shapes it was compiled for, and `info["specialised_dims"]` lists each. The model is
serialized once; those bytes are checked (full_check: strict shape inference), written atomically
and handed to onnxruntime.

Models whose protobuf would pass 2 GB keep their weights in external data (`<output>.data` next to
the .onnx file). The checker (full_check included) then runs on a copy of the small model proto
whose initializers are declared as typed graph inputs, since the data file only gets its final
name once everything succeeded; onnxruntime reads the data file when the runner first runs.
Without an output path such a model is built in memory only: it is not checked and has no runner.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnx
from onnx.external_data_helper import set_external_data

from backends.onnx.builder import MAX_OPSET, MIN_OPSET, OnnxBuilder
from backends.onnx.costs import onnx_costs
from backends.onnx.lowering import LOWERINGS
from backends.onnx.prepare import auto_opset, export_graph
from backends.onnx.runtime import OrtRunner
from backends.onnx import quant as _quant  # noqa: F401,E402  (fake_quant QDQ lowering)
from compiler.atomic import atomic_path
from compiler.backend import Artifact, Backend, register_backend
from compiler.costs import CostSettings
from compiler.errors import BackendError
from compiler.gcpause import gc_paused
from compiler.ir import Graph
from compiler.options import option
from compiler.quant.formats import parse_format

PROTOBUF_LIMIT = 2**31 - 1        # larger models go to external data
STRUCTURE_MARGIN = 2**26         # room left for everything but initializer data
EXTERNAL_THRESHOLD = 1024         # initializers at least this big move to the .data file

__all__ = ["OnnxBackend", "build_model", "LOWERINGS"]


def build_model(graph: Graph, opset: int, overrides: dict | None = None) -> tuple[onnx.ModelProto, int]:
    """Lower every node through LOWERINGS (or `overrides`, per op); unsupported ops raise
    BackendError naming the node.

    Returns the model and its initializers' byte count (ModelProto.ByteSize() costs as much as
    serializing, so the size check uses this instead)."""
    if not graph.outputs:
        raise BackendError(f"graph '{graph.name}' has no outputs; onnxruntime cannot load such a model",
                           hint="a model must return at least one tensor")
    b = OnnxBuilder(graph, opset)
    for node in graph.nodes:
        b.current = node
        lower = (overrides or {}).get(node.op) or LOWERINGS.get(node.op)
        if lower is None:
            raise b.error(f"no ONNX lowering for op '{node.op}'")
        lower(b, node)
    b.current = None
    model = b.finish(doc=f"graph '{graph.name}' lowered by nnforge")
    return model, b.initializer_bytes


@register_backend("onnx")
@dataclass(frozen=True)
class OnnxBackend(Backend):
    """Lower to an ONNX ModelProto; with an output path, write the .onnx file."""

    suffix = ".onnx"
    opset: int | Literal["auto"] = option("auto", low=MIN_OPSET, high=MAX_OPSET)
    quant: Literal["qdq", "exact", "plain"] = "qdq"
    check: bool = True

    @gc_paused()
    def lower(self, graph: Graph, output: Path | None) -> Artifact:
        start = time.perf_counter()
        graph, quant = export_graph(graph, self.quant)
        opset = auto_opset(graph, MAX_OPSET) if self.opset == "auto" else self.opset
        model, weight_bytes = build_model(graph, opset)
        info = {"opset": opset, "ir_version": model.ir_version, "nodes": len(model.graph.node),
                "initializers": len(model.graph.initializer), "weight_bytes": weight_bytes, "quant": quant}
        output = Path(output) if output is not None else None
        outputs = [o.name for o in model.graph.output]
        inputs = [i.name for i in model.graph.input]
        fixed = _specialised(graph)
        if fixed:
            info["specialised_dims"] = fixed
        if weight_bytes > PROTOBUF_LIMIT - STRUCTURE_MARGIN:
            return self._lower_external(graph, model, output, inputs, outputs, info)
        data = model.SerializeToString()
        info["bytes"] = len(data)
        info["export_s"] = round(time.perf_counter() - start, 4)  # IR -> ModelProto -> bytes
        info["check"] = self._check(data)
        info["check_s"] = round(time.perf_counter() - start - info["export_s"], 4)
        files = []
        if output is not None:
            with atomic_path(output) as tmp:
                tmp.write_bytes(data)
            files.append(output)
        return Artifact(target=self.name, obj=model, files=files, runner=OrtRunner(data, graph, outputs, inputs),
                        info=info)

    def costs(self, graph: Graph, artifact: Artifact, settings: CostSettings) -> dict:
        """Latency and throughput measured in onnxruntime (backends/onnx/costs.py)."""
        return onnx_costs(graph, artifact, settings)

    def refuses(self, fmt: str) -> str:
        """Why this target cannot carry quantization format `fmt` ("" when it can)."""
        need = _quant.code_type(parse_format(fmt))
        if need is None:
            return f"no ONNX tensor type holds {fmt}"
        return f"{fmt} needs opset {need[1]}" if self.opset < need[1] else ""

    def _check(self, model: bytes | onnx.ModelProto) -> str:
        if not self.check:
            return "skipped"
        try:
            onnx.checker.check_model(model, full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
            raise BackendError(f"onnx.checker rejected the exported model: {exc}",
                               hint="this is a bug in nnforge's ONNX lowering; please report it") from None
        return "passed (full_check)"

    def _lower_external(self, graph: Graph, model: onnx.ModelProto, output: Path | None,
                        inputs: list[str], outputs: list[str], info: dict) -> Artifact:
        if output is None:
            info["check"] = "skipped: over 2 GB, in memory only"
            return Artifact(target=self.name, obj=model, runner=None, info=info)
        data_path = output.with_name(output.name + ".data")
        with atomic_path(data_path) as tmp_data:
            with open(tmp_data, "wb") as f:
                for tensor in model.graph.initializer:
                    if len(tensor.raw_data) >= EXTERNAL_THRESHOLD:
                        offset = f.tell()
                        f.write(tensor.raw_data)
                        set_external_data(tensor, data_path.name, offset, len(tensor.raw_data))
                        tensor.data_location = onnx.TensorProto.EXTERNAL
                        tensor.ClearField("raw_data")
            data = model.SerializeToString()
            info["check"] = self._check(_weights_as_inputs(data))
            with atomic_path(output) as tmp:
                tmp.write_bytes(data)
            info["bytes"] = len(data) + tmp_data.stat().st_size
        info["external_data"] = data_path.name
        return Artifact(target=self.name, obj=model, files=[output, data_path],
                        runner=OrtRunner(output, graph, outputs, inputs), info=info)


def _specialised(graph: Graph) -> list[str]:
    """The source model's dynamic dims that the (static) IR fixed, as `'x' dim 0 (batch) = 1`."""
    face = graph.interface
    if face is None or not face.fits(len(graph.inputs), len(graph.outputs)):
        return []
    return [f"'{port.name}' {d}" for port, v in zip(face.inputs + face.outputs, graph.inputs + graph.outputs)
            for d in port.specialised(v.shape)]


def _weights_as_inputs(data: bytes) -> onnx.ModelProto:
    """A copy of a (small, external-data) model whose initializers are typed graph inputs."""
    probe = onnx.ModelProto()
    probe.ParseFromString(data)
    for tensor in probe.graph.initializer:
        probe.graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type,
                                                                    list(tensor.dims)))
    probe.graph.ClearField("initializer")
    return probe


from backends.onnx import qonnx as _qonnx  # noqa: F401,E402  (target qonnx)
