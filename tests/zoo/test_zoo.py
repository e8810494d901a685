"""Sanity tests for the reference model zoo: finite, deterministic, fx-traceable, BN randomized."""
from __future__ import annotations

import pytest
import torch
import torch.fx
from torch import nn

from tests.zoo import NAMES, ZooModel, build, randomize_batchnorm


def _flat(out) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for o in out for t in _flat(o)]


def _num_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_names():
    assert NAMES == ("resnet18", "resnet50", "mobilenetv2", "repvgg", "vit", "bert", "unet", "yolo", "densenet",
                     "dbb", "acnet", "mobileone", "gqa")


@pytest.mark.parametrize("name", NAMES)
def test_model(name: str):
    zm = build(name)
    assert isinstance(zm, ZooModel) and zm.name == name
    m = zm.module
    assert not m.training
    assert isinstance(zm.example_inputs, tuple) and all(isinstance(t, torch.Tensor) for t in zm.example_inputs)

    with torch.no_grad():
        out1 = _flat(m(*zm.example_inputs))
        out2 = _flat(m(*zm.example_inputs))
    assert out1
    for a, b in zip(out1, out2, strict=True):
        assert torch.isfinite(a).all()
        assert torch.equal(a, b)

    traced = torch.fx.symbolic_trace(m)
    traced.eval()
    with torch.no_grad():
        out3 = _flat(traced(*zm.example_inputs))
    for a, c in zip(out1, out3, strict=True):
        assert a.shape == c.shape
        assert torch.equal(a, c) or torch.allclose(a, c, atol=1e-6, rtol=1e-5)

    bns = [mod for mod in m.modules() if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for bn in bns:
        assert not torch.all(bn.running_var == 1)
        assert (bn.running_var > 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_build_is_deterministic(name: str):
    a, b = build(name), build(name)
    for x, y in zip(a.example_inputs, b.example_inputs, strict=True):
        assert torch.equal(x, y)
    sa, sb = a.module.state_dict(), b.module.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resnet_param_counts():
    r50 = build("resnet50", input_size=224)
    assert _num_params(r50.module) == 25_557_032
    assert tuple(r50.example_inputs[0].shape) == (1, 3, 224, 224)
    assert _num_params(build("resnet18").module) == 11_689_512


def test_kwargs_override():
    thin = build("resnet18", width=16, num_classes=10, batch=3, input_size=32)
    (x,) = thin.example_inputs
    assert tuple(x.shape) == (3, 3, 32, 32)
    with torch.no_grad():
        assert tuple(thin.module(x).shape) == (3, 10)
    v = build("vit", input_size=48)
    with torch.no_grad():
        assert tuple(v.module(*v.example_inputs).shape) == (2, 10)
    b = build("bert", seq_len=8, batch=1)
    assert tuple(b.example_inputs[0].shape) == (1, 8) and b.example_inputs[1].dtype == torch.int64


def test_randomize_batchnorm_returns_module():
    bn = nn.BatchNorm1d(4)
    assert randomize_batchnorm(nn.Sequential(bn), seed=3)[0] is bn
    assert not torch.all(bn.running_var == 1) and not torch.all(bn.weight == 1)
