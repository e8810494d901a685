"""Tiny Hugging Face `transformers` models from configs (random init, no hub access) with
deterministic example inputs: the real-world models the torch.export frontend must capture.

`build(name)` returns (module in eval mode, example inputs). Text models get a padded second
sequence (attention mask zeros) where their forward takes a mask, so mask building is exercised.
"""
from __future__ import annotations

from typing import Callable

import torch

NAMES = ("bert", "distilbert", "gpt2", "llama", "vit", "resnet", "mobilenetv2", "convnext")


def _tokens(vocab: int, batch: int = 2, length: int = 8, mask: bool = True) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, vocab, (batch, length), generator=g)
    if not mask:
        return (ids,)
    attention = torch.ones(batch, length, dtype=torch.int64)
    attention[1:, length - 2:] = 0
    return ids, attention


def _image(size: int = 32) -> tuple[torch.Tensor]:
    return (torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1)),)


def _bert(t):
    cfg = t.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=37, max_position_embeddings=64)
    return t.BertModel(cfg), _tokens(99)


def _distilbert(t):
    cfg = t.DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64)
    return t.DistilBertModel(cfg), _tokens(99)


def _gpt2(t):
    cfg = t.GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=64, use_cache=False,
                       bos_token_id=0, eos_token_id=0)
    return t.GPT2Model(cfg), _tokens(99, mask=False)


def _llama(t):
    cfg = t.LlamaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, intermediate_size=48, max_position_embeddings=64, use_cache=False)
    return t.LlamaModel(cfg), _tokens(99, mask=False)


def _vit(t):
    cfg = t.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=37)
    return t.ViTModel(cfg), _image()


def _resnet(t):
    cfg = t.ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1],
                         layer_type="bottleneck")
    return t.ResNetModel(cfg), _image()


def _mobilenetv2(t):
    return t.MobileNetV2Model(t.MobileNetV2Config(num_channels=3, image_size=32, depth_multiplier=0.25)), _image()


def _convnext(t):
    cfg = t.ConvNextConfig(num_channels=3, hidden_sizes=[8, 16, 16, 32], depths=[1, 1, 1, 1])
    return t.ConvNextModel(cfg), _image()


_FACTORIES: dict[str, Callable] = {"bert": _bert, "distilbert": _distilbert, "gpt2": _gpt2, "llama": _llama,
                                   "vit": _vit, "resnet": _resnet, "mobilenetv2": _mobilenetv2,
                                   "convnext": _convnext}


@torch.no_grad()
def build(name: str) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    import transformers
    from tests.zoo import randomize_batchnorm

    torch.manual_seed(0)
    module, inputs = _FACTORIES[name](transformers)
    return randomize_batchnorm(module).eval(), inputs
