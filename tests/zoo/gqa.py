"""Small decoder-style encoder with grouped-query attention (Llama/HF `repeat_kv` layout).

Exercises: nn.Embedding, pre-LN blocks, separate q/k/v projections where k and v have fewer
heads than q (num_kv_heads divides num_heads), `repeat_kv` written as
`x[:, :, None].expand(B, kv, groups, S, hd).reshape(B, heads, S, hd)`, additive attention mask
from an int mask input, SiLU-gated MLP (gate * up), a tied-free LM head. Two graph inputs
(input_ids, attention_mask), like the BERT zoo model.
"""
from __future__ import annotations

import torch
from torch import nn


class Embeddings(nn.Module):
    def __init__(self, vocab_size: int, hidden: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(input_ids)


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """(B, kv_heads, S, hd) -> (B, kv_heads * groups, S, hd), each kv head repeated `groups` times."""
    b, kv, s, hd = x.shape
    return x[:, :, None, :, :].expand(b, kv, groups, s, hd).reshape(b, kv * groups, s, hd)


class GQAttention(nn.Module):
    def __init__(self, hidden: int, num_heads: int, num_kv_heads: int):
        super().__init__()
        assert hidden % num_heads == 0 and num_heads % num_kv_heads == 0
        self.num_heads, self.num_kv_heads = num_heads, num_kv_heads
        self.head_dim = hidden // num_heads
        self.q_proj = nn.Linear(hidden, num_heads * self.head_dim)
        self.k_proj = nn.Linear(hidden, num_kv_heads * self.head_dim)
        self.v_proj = nn.Linear(hidden, num_kv_heads * self.head_dim)
        self.o_proj = nn.Linear(num_heads * self.head_dim, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, S, _ = x.shape
        q = self.q_proj(x).view(B, S, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, S, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, S, self.num_kv_heads, self.head_dim).transpose(1, 2)
        groups = self.num_heads // self.num_kv_heads
        k, v = repeat_kv(k, groups), repeat_kv(v, groups)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.head_dim ** -0.5 + mask
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(B, S, self.num_heads * self.head_dim)
        return self.o_proj(out)


class GatedMlp(nn.Module):
    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, hidden: int, num_heads: int, num_kv_heads: int, intermediate: int):
        super().__init__()
        self.input_norm = nn.LayerNorm(hidden)
        self.attn = GQAttention(hidden, num_heads, num_kv_heads)
        self.post_norm = nn.LayerNorm(hidden)
        self.mlp = GatedMlp(hidden, intermediate)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.input_norm(x), mask)
        return x + self.mlp(self.post_norm(x))


class GQAModel(nn.Module):
    def __init__(self, vocab_size: int = 256, hidden: int = 64, num_layers: int = 2, num_heads: int = 8,
                 num_kv_heads: int = 2, intermediate: int = 128):
        super().__init__()
        self.embeddings = Embeddings(vocab_size, hidden)
        self.layers = nn.ModuleList(Block(hidden, num_heads, num_kv_heads, intermediate) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden)
        self.lm_head = nn.Linear(hidden, vocab_size, bias=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids)
        mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask)
        return self.lm_head(self.norm(x))


def gqa(vocab_size: int = 256, hidden: int = 64, num_layers: int = 2, num_heads: int = 8,
        num_kv_heads: int = 2, intermediate: int = 128) -> GQAModel:
    return GQAModel(vocab_size=vocab_size, hidden=hidden, num_layers=num_layers, num_heads=num_heads,
                    num_kv_heads=num_kv_heads, intermediate=intermediate)
