"""Running an exported model (CPU), with inputs and outputs as torch tensors.

onnxruntime runs it; where onnxruntime has no kernel for a node (FP4 DequantizeLinear, for one),
`onnx.reference.ReferenceEvaluator` runs the same model instead, and `engine` says which did.
Any other refusal of onnxruntime's (a model it cannot load, a dtype it cannot run) is one
BackendError naming what it said.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import onnx
import torch

from compiler.atomic import current_path
from compiler.errors import BackendError
from compiler.interpreter import check_inputs
from compiler.ir import Graph

ONNXRUNTIME = "onnxruntime"
# onnxruntime rewrites QDQ groups into integer kernels; one of its rewrites quantizes the float
# input of a weight-only DequantizeLinear -> MatMul at run time (DynamicQuantizeMatMul), which
# changes the numbers. The runner checks what the exported model means, so it runs QDQ as written.
EXACT_ONLY = ["QDQSelectorActionTransformer"]


class OrtRunner:
    """Feeds graph inputs by name; returns outputs in graph.outputs order.

    The session is created on the first call, so lowering never pays for it, and runs on as many
    threads as torch does (`torch.set_num_threads`). `model` is the serialized ModelProto, or the
    path of a model with external data. `input_names` default to the IR's (the ONNX backend passes
    the names it wrote when they differ).
    """

    def __init__(self, model: bytes | Path, graph: Graph, output_names: Sequence[str],
                 input_names: Sequence[str] | None = None):
        self.model = model
        self.graph = graph
        self.input_names = list(input_names) if input_names is not None else [v.name for v in graph.inputs]
        self.output_names = list(output_names)
        self.engine = ""            # set on first use: onnxruntime, or the reference evaluator and why
        self._session = None

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort
            from onnxruntime.capi.onnxruntime_pybind11_state import NotImplemented as NoKernel

            options = ort.SessionOptions()
            options.log_severity_level = 4  # fatal only: refusals come back as one BackendError
            options.intra_op_num_threads = torch.get_num_threads()  # one setting for both runtimes
            model = str(current_path(self.model)) if isinstance(self.model, Path) else self.model
            with _ort_errors("load"):
                try:
                    self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"],
                                                         disabled_optimizers=EXACT_ONLY)
                    self.engine = ONNXRUNTIME
                except NoKernel as exc:
                    self._session = _Reference(model)
                    self.engine = f"onnx.reference ({_first_line(exc)})"
        return self._session

    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        check_inputs(self.graph, inputs)
        session = self.session
        bfloat16 = any(v.dtype == torch.bfloat16 for v in (*self.graph.inputs, *self.graph.outputs))
        with _ort_errors("run"):
            if bfloat16 and self.engine == ONNXRUNTIME:  # numpy has no bfloat16: raw 16-bit buffers
                values = session.run_with_ort_values(
                    self.output_names, {n: _ort_value(t) for n, t in zip(self.input_names, inputs)})
                return [_from_ort_value(v) for v in values]
            feed = {name: _to_numpy(t) for name, t in zip(self.input_names, inputs)}
            return [_from_numpy(np.asarray(r)) for r in session.run(self.output_names, feed)]


class _Reference:
    """onnx's reference evaluator behind onnxruntime's `run(names, feed)` interface."""

    def __init__(self, model: bytes | str):
        from onnx.reference import ReferenceEvaluator

        self.evaluator = ReferenceEvaluator(onnx.load_from_string(model) if isinstance(model, bytes) else model)

    def run(self, names, feed):
        return self.evaluator.run(names, feed)


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    """numpy has no bfloat16 of its own: the reference evaluator takes ml_dtypes' (exact widening)."""
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        import ml_dtypes
        return t.float().numpy().astype(ml_dtypes.bfloat16)
    return t.numpy()


def _from_numpy(a: np.ndarray) -> torch.Tensor:
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(a)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split("NOT_IMPLEMENTED : ")[-1]


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
