"""Small BERT-style encoder (HuggingFace BertModel layout).

Exercises: nn.Embedding lookups, position ids sliced (narrow) from a registered buffer with
shape arithmetic (input_ids.size()), all-zero token-type ids via torch.zeros_like,
additive attention mask built from an int mask input, separate q/k/v Linears with
view(B, S, heads, head_dim).permute(0, 2, 1, 3), explicit softmax attention, GELU FFN,
post-LN residuals, and a Tanh pooler over the first token. Two graph inputs.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class BertEmbeddings(nn.Module):
    def __init__(self, vocab_size: int, hidden: int, max_position: int, type_vocab_size: int, dropout: float):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab_size, hidden)
        self.position_embeddings = nn.Embedding(max_position, hidden)
        self.token_type_embeddings = nn.Embedding(type_vocab_size, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("position_ids", torch.arange(max_position).expand((1, -1)), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        batch_size, seq_length = input_ids.size()
        # == self.position_ids[:, :seq_length]; plain torch.fx does not proxy buffers, so a Python
        # slice of the real buffer with a traced length fails -- narrow() is the traceable spelling.
        position_ids = self.position_ids.narrow(1, 0, seq_length)
        token_type_ids = torch.zeros_like(input_ids)
        embeddings = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        embeddings = embeddings + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(embeddings))


class BertSelfAttention(nn.Module):
    def __init__(self, hidden: int, num_heads: int, dropout: float):
        super().__init__()
        assert hidden % num_heads == 0
        self.num_heads = num_heads
        self.head_dim = hidden // num_heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, S, _ = x.shape
        return x.view(B, S, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        B, S, H = hidden_states.size()
        q = self.split_heads(self.query(hidden_states))
        k = self.split_heads(self.key(hidden_states))
        v = self.split_heads(self.value(hidden_states))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores + attention_mask
        probs = self.dropout(nn.functional.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(B, S, H)


class BertLayer(nn.Module):
    def __init__(self, hidden: int, num_heads: int, intermediate: int, dropout: float):
        super().__init__()
        self.attention = BertSelfAttention(hidden, num_heads, dropout)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_dropout = nn.Dropout(dropout)
        self.attn_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.act = nn.GELU()
        self.output = nn.Linear(intermediate, hidden)
        self.out_dropout = nn.Dropout(dropout)
        self.out_norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        attn = self.attn_dropout(self.attn_out(self.attention(x, attention_mask)))
        x = self.attn_norm(attn + x)
        ffn = self.out_dropout(self.output(self.act(self.intermediate(x))))
        return self.out_norm(ffn + x)


class BertModel(nn.Module):
    def __init__(self, vocab_size: int = 1000, hidden: int = 64, num_layers: int = 2, num_heads: int = 4,
                 intermediate: int | None = None, max_position: int = 128, type_vocab_size: int = 2,
                 dropout: float = 0.1):
        super().__init__()
        self.embeddings = BertEmbeddings(vocab_size, hidden, max_position, type_vocab_size, dropout)
        self.layers = nn.ModuleList(
            [BertLayer(hidden, num_heads, intermediate or 4 * hidden, dropout) for _ in range(num_layers)])
        self.pooler = nn.Linear(hidden, hidden)
        self.pooler_act = nn.Tanh()
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        x = self.embeddings(input_ids)
        ext_mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, ext_mask)
        pooled = self.pooler_act(self.pooler(x[:, 0]))
        return x, pooled


def bert(vocab_size: int = 1000, hidden: int = 64, num_layers: int = 2, num_heads: int = 4,
         intermediate: int | None = None, max_position: int = 128) -> BertModel:
    return BertModel(vocab_size=vocab_size, hidden=hidden, num_layers=num_layers, num_heads=num_heads,
                     intermediate=intermediate, max_position=max_position)
