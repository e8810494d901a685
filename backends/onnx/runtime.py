"""Running an exported model in onnxruntime (CPU), with inputs and outputs as torch tensors."""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import onnx
import torch

from compiler.atomic import current_path
from compiler.errors import BackendError
from compiler.interpreter import check_inputs
from compiler.ir import Graph


class OrtRunner:
    """Feeds graph inputs by name; returns outputs in graph.outputs order.

    The InferenceSession is created on the first call, so lowering never pays for it.
    `model` is the serialized ModelProto, or the path of a model with external data.
    onnxruntime's refusals (no CPU kernel for an op or dtype, a model it cannot load) are one
    BackendError naming what it said.
    """

    def __init__(self, model: bytes | Path, graph: Graph, output_names: Sequence[str]):
        self.model = model
        self.graph = graph
        self.input_names = [v.name for v in graph.inputs]
        self.output_names = list(output_names)
        self._session = None

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 4  # fatal only: refusals come back as one BackendError
            model = str(current_path(self.model)) if isinstance(self.model, Path) else self.model
            with _ort_errors("load"):
                self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        return self._session

    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        check_inputs(self.graph, inputs)
        session = self.session
        bfloat16 = any(v.dtype == torch.bfloat16 for v in (*self.graph.inputs, *self.graph.outputs))
        with _ort_errors("run"):
            if bfloat16:  # numpy has no bfloat16: pass raw 16-bit buffers tagged with the ONNX type
                values = session.run_with_ort_values(
                    self.output_names, {n: _ort_value(t) for n, t in zip(self.input_names, inputs)})
                return [_from_ort_value(v) for v in values]
            feed = {name: t.detach().cpu().contiguous().numpy() for name, t in zip(self.input_names, inputs)}
            return [torch.from_numpy(r) for r in session.run(self.output_names, feed)]


def _ort_value(t: torch.Tensor):
    import onnxruntime as ort

    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(t.view(torch.int16).numpy(),
                                                               onnx.TensorProto.BFLOAT16)
    return ort.OrtValue.ortvalue_from_numpy(t.numpy())


def _from_ort_value(value) -> torch.Tensor:
    if value.data_type() == "tensor(bfloat16)":
        out = torch.empty(value.shape(), dtype=torch.bfloat16)
        ctypes.memmove(out.data_ptr(), value.data_ptr(), out.numel() * out.element_size())
        return out
    return torch.from_numpy(value.numpy())


@contextmanager
def _ort_errors(what: str) -> Iterator[None]:
    """onnxruntime raises its own exception classes (not RuntimeError): one message for them."""
    try:
        yield
    except Exception as exc:
        if type(exc).__module__ != "onnxruntime.capi.onnxruntime_pybind11_state":
            raise
        message = (str(exc).split(" : ", 2)[-1].strip().splitlines() or [""])[0][:500]
        raise BackendError(f"onnxruntime cannot {what} the exported model: {message}",
                           hint="onnxruntime's CPU kernels do not cover every op and dtype the IR "
                                "allows (bfloat16, FP4); the .onnx file itself is valid ONNX") from None
