"""ONNX backend: a ModelProto built straight from the IR, checked, and run in onnxruntime.

    target onnx{opset=18}          opset 17..24; check=false skips onnx.checker

One lowering per IR op lives in `lowering.py`; `builder.py` assembles the ModelProto (IR value
names are kept as tensor names, weights become initializers with one copy each); `runtime.py`
runs it. The model is serialized once; those bytes are checked (full_check: strict shape
inference), written atomically and handed to onnxruntime.

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

import onnx
from onnx.external_data_helper import set_external_data

from backends.onnx.builder import OnnxBuilder
from backends.onnx.lowering import LOWERINGS
from backends.onnx.runtime import OrtRunner
from backends.onnx import quant as _quant  # noqa: F401,E402  (fake_quant QDQ lowering)
from compiler.atomic import atomic_path
from compiler.backend import Artifact, Backend, register_backend
from compiler.errors import BackendError
from compiler.gcpause import gc_paused
from compiler.ir import Graph
from compiler.options import option

MIN_OPSET, MAX_OPSET = 17, 24
PROTOBUF_LIMIT = 2**31 - 1        # larger models go to external data
STRUCTURE_MARGIN = 2**26         # room left for everything but initializer data
EXTERNAL_THRESHOLD = 1024         # initializers at least this big move to the .data file

__all__ = ["OnnxBackend", "build_model", "LOWERINGS"]


def build_model(graph: Graph, opset: int) -> tuple[onnx.ModelProto, int]:
    """Lower every node through LOWERINGS; unsupported ops raise BackendError naming the node.

    Returns the model and its initializers' byte count (ModelProto.ByteSize() costs as much as
    serializing, so the size check uses this instead)."""
    if not graph.outputs:
        raise BackendError(f"graph '{graph.name}' has no outputs; onnxruntime cannot load such a model",
                           hint="a model must return at least one tensor")
    b = OnnxBuilder(graph, opset)
    for node in graph.nodes:
        b.current = node
        lower = LOWERINGS.get(node.op)
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
    opset: int = option(17, low=MIN_OPSET, high=MAX_OPSET)
    check: bool = True

    @gc_paused()
    def lower(self, graph: Graph, output: Path | None) -> Artifact:
        start = time.perf_counter()
        model, weight_bytes = build_model(graph, self.opset)
        info = {"opset": self.opset, "ir_version": model.ir_version, "nodes": len(model.graph.node),
                "initializers": len(model.graph.initializer), "weight_bytes": weight_bytes}
        output = Path(output) if output is not None else None
        outputs = [o.name for o in model.graph.output]
        if weight_bytes > PROTOBUF_LIMIT - STRUCTURE_MARGIN:
            return self._lower_external(graph, model, output, outputs, info)
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
        return Artifact(target=self.name, obj=model, files=files, runner=OrtRunner(data, graph, outputs),
                        info=info)

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
                        outputs: list[str], info: dict) -> Artifact:
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
                        runner=OrtRunner(output, graph, outputs), info=info)


def _weights_as_inputs(data: bytes) -> onnx.ModelProto:
    """A copy of a (small, external-data) model whose initializers are typed graph inputs."""
    probe = onnx.ModelProto()
    probe.ParseFromString(data)
    for tensor in probe.graph.initializer:
        probe.graph.input.append(onnx.helper.make_tensor_value_info(tensor.name, tensor.data_type,
                                                                    list(tensor.dims)))
    probe.graph.ClearField("initializer")
    return probe
