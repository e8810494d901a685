"""Every zoo model, compiled to both targets, computes what the original module computes
(BatchNorm statistics and affine parameters are randomized by the zoo, so BN is no identity)."""
import pytest
import torch

from compiler import compile
from tests.zoo import NAMES, build

PIPELINE = "fold-bn,fold-constants,dce"


def flat(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    items = out.values() if isinstance(out, dict) else out
    return [t for o in items if o is not None for t in flat(o)]


def reference_outputs(zoo) -> list[torch.Tensor]:
    with torch.no_grad():
        return flat(zoo.module(*zoo.example_inputs))


def max_scaled_diff(got: list[torch.Tensor], want: list[torch.Tensor]) -> float:
    """Max abs difference relative to each output's scale (its largest magnitude, at least 1)."""
    assert len(got) == len(want)
    return max(((g - w).abs().max() / w.abs().max().clamp(min=1.0)).item() for g, w in zip(got, want))


@pytest.mark.parametrize("name", NAMES)
def test_both_backends_reproduce_the_original(name):
    zoo = build(name)
    reference = reference_outputs(zoo)
    result = compile(zoo.module, zoo.example_inputs, target=["pytorch", "onnx"])
    torch_model, onnx_model = result.artifacts
    assert max_scaled_diff(torch_model.run(*zoo.example_inputs), reference) <= 1e-5
    for got, want in zip(onnx_model.run(*zoo.example_inputs), reference, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_the_deployment_pipeline_keeps_outputs_to_float_rounding(name):
    zoo = build(name)
    reference = reference_outputs(zoo)
    result = compile(zoo.module, zoo.example_inputs, pipeline=PIPELINE, target=["pytorch", "onnx"],
                     check_equivalence=True)
    assert all(p.max_rel_diff <= 1e-5 for p in result.report.passes)
    for artifact in result.artifacts:
        assert max_scaled_diff(artifact.run(*zoo.example_inputs), reference) <= 1e-5, artifact.target


@pytest.mark.parametrize("name", ["resnet18", "repvgg", "mobilenetv2", "yolo"])
def test_every_batchnorm_after_a_conv_is_folded(name):
    zoo = build(name)
    result = compile(zoo.module, zoo.example_inputs, pipeline=PIPELINE)
    assert not [n for n in result.graph.nodes if n.op == "batch_norm" and n.inputs[0].producer
                and n.inputs[0].producer.op == "conv" and len(n.inputs[0].users) == 1]
    assert result.report.passes[0].stats["folded"] > 0
