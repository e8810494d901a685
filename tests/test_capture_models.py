"""Real-world models through compile()'s default capture: tiny Hugging Face transformers models
built from configs (random init, no hub) and the whole zoo.

For each model, `capture="auto"` captures with torch.export; the IR interpreter, the PyTorch
backend and onnxruntime reproduce the module's own outputs within rtol 1e-4 / atol 1e-5 of the
output scale; the IR weights are the module's tensors under their qualified names; and
`prune{ratio=0.3}` and `quantize{weights=int8,activations=int8}` run on the captured graph, with
their ONNX models running in onnxruntime. Each model is captured once (a module-scoped cache).
"""
from __future__ import annotations

import importlib.util

import numpy as np

import pytest
import torch
from torch.utils._pytree import tree_leaves

from compiler import compile
from compiler.interpreter import interpret
from tests import hf_models, zoo
from tests.prune_util import assert_close, clone

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
CASES = [pytest.param(("hf", n), id=f"hf-{n}", marks=pytest.mark.skipif(
    not HAS_TRANSFORMERS, reason="transformers is not installed (pip install -e '.[dev]')")) for n in hf_models.NAMES]
CASES += [pytest.param(("zoo", n), id=f"zoo-{n}") for n in zoo.NAMES]
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def captured(single_thread):
    cache = {}

    def get(case):
        if case not in cache:
            kind, name = case
            if kind == "hf":
                module, inputs = hf_models.build(name)
            else:
                z = zoo.build(name)
                module, inputs = z.module, z.example_inputs
            with torch.no_grad():
                reference = [t for t in tree_leaves(module(*inputs)) if isinstance(t, torch.Tensor)]
            cache[case] = module, inputs, reference, compile(module, inputs, target=["pytorch", "onnx"])
        return cache[case]
    return get


@pytest.mark.parametrize("case", CASES)
def test_auto_capture_uses_export_and_matches_the_module(captured, case):
    module, inputs, reference, result = captured(case)
    facts = result.report.model["import"]
    assert (facts["capture"], facts["requested"]) == ("export", "auto")
    assert len(facts["outputs"]) == len(reference) == len(result.graph.outputs)
    torch_backend, onnx_backend = result.artifacts
    assert_close(interpret(result.graph, *inputs), reference, "interpreter", RTOL, ATOL)
    assert_close(torch_backend.run(*inputs), reference, "pytorch backend", RTOL, ATOL)
    assert_close(onnx_backend.run(*inputs), reference, "onnxruntime", RTOL, ATOL)


@pytest.mark.parametrize("case", CASES)
def test_weights_are_the_modules_own_tensors_under_qualified_names(captured, case):
    module, _, _, result = captured(case)
    params = dict(module.named_parameters())
    state = {**dict(module.named_buffers()), **params}
    used = [w for w in result.graph.weights.values() if w.is_param]
    assert used, "the graph reads no parameters"
    for w in used:
        assert w.name in params, f"%{w.name} is not a qualified parameter name of the module"
        assert w.data.data_ptr() == state[w.name].data_ptr(), f"%{w.name} was copied"


@pytest.mark.parametrize("pipeline", ["prune{ratio=0.3}", "quantize{weights=int8,activations=int8}"])
@pytest.mark.parametrize("case", CASES)
def test_prune_and_quantize_run_in_onnxruntime(captured, case, pipeline):
    _, inputs, reference, result = captured(case)
    out = compile(clone(result.graph), inputs, pipeline, target="onnx")
    got = out.artifact.run(*inputs)
    assert [g.shape for g in got] == [r.shape for r in reference]
    assert all(torch.isfinite(g).all() for g in got if g.is_floating_point())
    if pipeline.startswith("prune"):
        assert out.report.model["after"]["params"] < out.report.model["before"]["params"]
    else:
        assert out.report.passes[0].stats["layers"] > 0


@pytest.mark.parametrize("case, heads, per_unit", [
    pytest.param(("hf", "bert"), 4, {"encoder.layer.0.attention.self.query.weight": 8}, id="hf-bert"),
    pytest.param(("hf", "vit"), 4, {"layers.0.attention.q_proj.weight": 8}, id="hf-vit"),
    # grouped-query attention: a unit is one kv head with the two query heads it serves
    pytest.param(("hf", "llama"), 2, {"layers.0.self_attn.q_proj.weight": 16,
                                      "layers.0.self_attn.k_proj.weight": 8}, id="hf-llama-gqa"),
])
def test_attention_heads_are_pruning_units_after_export(captured, case, heads, per_unit):
    if not HAS_TRANSFORMERS:
        pytest.skip("transformers is not installed")
    from passes.prune import analyze

    analysis = analyze(captured(case)[3].graph)
    first = next(g for g in analysis.groups if g.prunable)
    assert first.size == heads
    for name, rows in per_unit.items():
        members = [analysis.sites[i] for i in first.sites
                   for v, d in analysis.sites[i].members if v.name == name and d == 0]
        assert members, f"{name} is not in the head group"
        counts = np.bincount(members[0].units[members[0].units >= 0])
        assert set(counts[counts > 0].tolist()) == {rows}
