"""Running an exported model (CPU), with inputs and outputs as torch tensors.

onnxruntime runs it; where onnxruntime has no kernel for a node (FP4 DequantizeLinear, for one),
`onnx.reference.ReferenceEvaluator` runs the same model instead, and `engine` says which did.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

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
    threads as torch does (`torch.set_num_threads`). `model` is the
    serialized ModelProto, or the path of a model with external data. `input_names` default to
    the IR's (the ONNX backend passes the names it wrote when they differ).
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
            options.log_severity_level = 3  # errors only
            options.intra_op_num_threads = torch.get_num_threads()  # one setting for both runtimes
            model = str(self.model) if isinstance(self.model, Path) else self.model
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
        feed = {name: t.detach().cpu().contiguous().numpy() for name, t in zip(self.input_names, inputs)}
        return [torch.from_numpy(np.asarray(r)) for r in self.session.run(self.output_names, feed)]


class _Reference:
    """onnx's reference evaluator behind onnxruntime's `run(names, feed)` interface."""

    def __init__(self, model: bytes | str):
        import onnx
        from onnx.reference import ReferenceEvaluator

        self.evaluator = ReferenceEvaluator(onnx.load_from_string(model) if isinstance(model, bytes) else model)

    def run(self, names, feed):
        return self.evaluator.run(names, feed)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split("NOT_IMPLEMENTED : ")[-1]
