"""Running an exported model in onnxruntime (CPU), with inputs and outputs as torch tensors."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from compiler.interpreter import check_inputs
from compiler.ir import Graph


class OrtRunner:
    """Feeds graph inputs by name; returns outputs in graph.outputs order.

    The InferenceSession is created on the first call, so lowering never pays for it.
    `model` is the serialized ModelProto, or the path of a model with external data.
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
            options.log_severity_level = 3  # errors only
            model = str(self.model) if isinstance(self.model, Path) else self.model
            self._session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        return self._session

    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        check_inputs(self.graph, inputs)
        feed = {name: t.detach().cpu().contiguous().numpy() for name, t in zip(self.input_names, inputs)}
        return [torch.from_numpy(r) for r in self.session.run(self.output_names, feed)]
