"""The ONNX target's columns of the cost report: latency measured in onnxruntime.

The measurement runs the model as it deploys: onnxruntime with all graph optimizations, so QDQ
groups fuse into integer kernels (the artifact's own runner keeps QDQ as written, for exact
checks), on `settings.threads` threads. A model onnxruntime has no kernel for (FP4 codes) gets
no latency, and the basis says why.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.backend import Artifact
from compiler.costs import CostSettings, median_seconds
from compiler.ir import Graph


def onnx_costs(graph: Graph, artifact: Artifact, settings: CostSettings) -> dict[str, Any]:
    import onnxruntime as ort

    from compiler.api import random_inputs

    out: dict[str, Any] = {"artifact_bytes": artifact.info.get("bytes"), "runtime": f"onnxruntime {ort.__version__}"}
    basis = {"artifact_bytes": "counted: serialized model (and external data)"}
    runner = artifact.runner
    if runner is None:
        basis["latency_s"] = "not measured: the model was built in memory only (over 2 GB)"
        return {**out, "latency_s": None, "basis": basis}
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = settings.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    model = runner.model if isinstance(runner.model, bytes) else str(runner.model)
    feed = {name: np.ascontiguousarray(t.numpy()) for name, t in zip(runner.input_names, random_inputs(graph))}
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        session.run(runner.output_names, feed)
    except Exception as exc:  # noqa: BLE001 - onnxruntime refusing the model (no kernel) is a fact, not a failure
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split("NOT_IMPLEMENTED : ")[-1]
        basis["latency_s"] = f"not measured: onnxruntime cannot run this model ({line})"
        return {**out, "latency_s": None, "basis": basis}
    latency = median_seconds(lambda: session.run(runner.output_names, feed), settings)
    batch = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else 1
    out.update(latency_s=latency, throughput_fps=batch / latency)
    how = f"measured: onnxruntime {ort.__version__} CPU, all graph optimizations, {settings.describe()}"
    basis.update(latency_s=how, throughput_fps=how)
    return {**out, "basis": basis}
