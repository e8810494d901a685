"""Reference PyTorch model zoo for nnforge tests.

Every model is plain ``torch.nn`` written the way users write it (shape unpacking,
flatten/view/reshape/permute, cat/chunk/split, interpolate, dropout, ...), and every model is
``torch.fx.symbolic_trace``-able.

``build(name)`` returns a :class:`ZooModel` with a small, test-sized configuration: the model
in eval mode with randomized BatchNorm statistics (so BN is never an identity) and
deterministic example inputs. Keyword arguments override the defaults:

* ``batch`` / ``input_size`` (image models) or ``batch`` / ``seq_len`` (bert) shape the inputs;
* everything else goes to the model factory (``num_classes``, ``width``, ``width_mult``, ...).

bench/ builds bigger variants the same way, e.g. ``build("resnet50", input_size=224)`` is the
standard ResNet-50 (25,557,032 params) with a 1x3x224x224 input, and
``build("resnet18", width=16)`` is a thin ResNet-18.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from .bert import bert
from .densenet import densenet
from .mobilenetv2 import mobilenetv2
from .repvgg import repvgg
from .resnet import resnet18, resnet50
from .unet import unet
from .vit import vit
from .yolo import yolo
from .dbb import dbb_resnet18
from .acnet import acnet
from .mobileone import mobileone
from .gqa import gqa


@dataclass(frozen=True)
class ZooModel:
    name: str
    module: torch.nn.Module      # in eval mode
    example_inputs: tuple        # tuple of tensors, deterministic (seeded)


@dataclass(frozen=True)
class _Spec:
    factory: Callable[..., nn.Module]
    model_kwargs: dict[str, Any]
    input_kwargs: dict[str, Any]      # defaults for batch / input_size / seq_len
    kind: str = "image"               # "image" or "tokens"
    size_kwarg: str | None = None     # factory kwarg that must follow input_size (e.g. ViT img_size)


_SPECS: dict[str, _Spec] = {
    "resnet18": _Spec(resnet18, {}, {"batch": 2, "input_size": 64}),
    "resnet50": _Spec(resnet50, {}, {"batch": 1, "input_size": 64}),
    "mobilenetv2": _Spec(mobilenetv2, {}, {"batch": 2, "input_size": 32}),
    "repvgg": _Spec(repvgg, {}, {"batch": 2, "input_size": 32}),
    "vit": _Spec(vit, {}, {"batch": 2, "input_size": 32}, size_kwarg="img_size"),
    "bert": _Spec(bert, {}, {"batch": 2, "seq_len": 16}, kind="tokens"),
    "unet": _Spec(unet, {}, {"batch": 2, "input_size": 64}),
    "yolo": _Spec(yolo, {}, {"batch": 2, "input_size": 64}),
    "densenet": _Spec(densenet, {}, {"batch": 2, "input_size": 32}),
    "dbb": _Spec(dbb_resnet18, {"width": 8, "num_classes": 10}, {"batch": 1, "input_size": 32}),
    "acnet": _Spec(acnet, {}, {"batch": 2, "input_size": 32}),
    "mobileone": _Spec(mobileone, {}, {"batch": 2, "input_size": 32}),
    "gqa": _Spec(gqa, {}, {"batch": 2, "seq_len": 16}, kind="tokens"),
}

NAMES: tuple[str, ...] = tuple(_SPECS)

_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def randomize_batchnorm(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running stats and affine params (in place); returns module."""
    g = torch.Generator().manual_seed(seed)

    def uniform(t: torch.Tensor, lo: float, hi: float) -> None:
        t.copy_(torch.rand(t.shape, generator=g, dtype=torch.float32).mul_(hi - lo).add_(lo).to(t.dtype))

    for m in module.modules():
        if isinstance(m, _BATCHNORMS):
            if m.running_mean is not None:
                uniform(m.running_mean, -0.2, 0.2)
                uniform(m.running_var, 0.5, 2.0)
            if m.weight is not None:
                uniform(m.weight, 0.5, 1.5)
                uniform(m.bias, -0.2, 0.2)
    return module


def _make_inputs(spec: _Spec, module: nn.Module, model_kwargs: dict, inp: dict, seed: int) -> tuple:
    g = torch.Generator().manual_seed(seed + 1)
    batch = inp["batch"]
    if spec.kind == "tokens":
        seq_len = inp["seq_len"]
        vocab = module.embeddings.word_embeddings.num_embeddings
        input_ids = torch.randint(1, vocab, (batch, seq_len), generator=g, dtype=torch.int64)
        attention_mask = torch.ones(batch, seq_len, dtype=torch.int64)
        pad = min(3, seq_len - 1)
        if pad > 0 and batch > 1:   # later sequences end with a few padding tokens
            attention_mask[1:, seq_len - pad:] = 0
            input_ids[1:, seq_len - pad:] = 0
        return input_ids, attention_mask
    size = inp["input_size"]
    in_chans = model_kwargs.get("in_chans", 3)
    return (torch.randn(batch, in_chans, size, size, generator=g),)


def build(name: str, *, seed: int = 0, **kwargs: Any) -> ZooModel:
    """Build zoo model `name` (seeded, BN randomized, eval mode) with deterministic example inputs."""
    if name not in _SPECS:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(NAMES)}")
    spec = _SPECS[name]
    inp = {k: kwargs.pop(k, v) for k, v in spec.input_kwargs.items()}
    model_kwargs = {**spec.model_kwargs, **kwargs}
    if spec.size_kwarg is not None:
        model_kwargs.setdefault(spec.size_kwarg, inp["input_size"])
    torch.manual_seed(seed)
    module = spec.factory(**model_kwargs)
    randomize_batchnorm(module, seed)
    module.eval()
    example_inputs = _make_inputs(spec, module, model_kwargs, inp, seed)
    return ZooModel(name=name, module=module, example_inputs=example_inputs)


__all__ = ["ZooModel", "NAMES", "build", "randomize_batchnorm"]
