"""target hls with structured sparsity: a conv or linear layer whose weight carries simd-sparsify's
SparsityAnnotation runs on the sparse matrix-vector unit (backends/hls/stages/sparse_mvu.py).

* the C simulation of a sparsified CNN equals the interpreter on its integer graph bit for bit,
  and every stage's cycle formula equals the loop iterations it counts;
* the unit's cycles follow the kept columns counted from the weights, against the dense formula
  at the same folding;
* at a frame rate the dense design reaches, the sparse one needs fewer multipliers;
* grouped layers keep the dense unit with a note; unannotated layers are exactly as before.
"""
from __future__ import annotations

import math
from functools import lru_cache

import pytest
import torch
from torch import nn

from backends.hls.stages import MVU, SparseMVU
from compiler import compile
from compiler.sparse.annotation import SparsityAnnotation
from tests.test_backend_hls import TwoConvs, assert_bit_exact, assert_cycles_counted, simulate
from tests.test_backend_hls import hls_cache  # noqa: F401  (the module's g++ cache)
from tests.test_quant_accuracy import digits_data, train_digits_cnn

SPARSE = "simd-sparsify{simd=4,sparsity=0.75}"
Z7020 = "hls{part=z7020,clock-mhz=100,fps=10000}"      # the dense digits CNN reaches it with 46 DSPs


@lru_cache(maxsize=None)
def digits(pipeline: str, target: str):
    """(artifact, C-sim logits, interpreter logits) of the digits CNN on the 360 test images."""
    xtr, _, xte, _ = digits_data()
    artifact, (got,), (ref,) = simulate(train_digits_cnn(), xte, xtr[:256], target=target, pipeline=pipeline)
    return artifact, got, ref


def test_sparsified_digits_cnn_is_bit_exact_and_counts_its_cycles(single_thread):
    artifact, got, ref = digits(SPARSE, Z7020)
    assert_bit_exact([got], [ref])
    assert_cycles_counted(artifact)
    stages = artifact.obj.design.stages
    assert [s.name for s in stages if isinstance(s, SparseMVU)] == ["conv1", "conv2", "fc1", "fc2"]
    assert artifact.info["folding"]["fps"] >= 10000
    _, _, _, yte = digits_data()
    print(f"\ndigits CNN at 75% SIMD-4 sparsity, no fine-tuning: C simulation "
          f"{100.0 * float((got.argmax(1) == yte).float().mean()):.2f}%")
    code = (artifact.obj.project / "src" / "stages" / "conv2.cpp").read_text()
    assert "window[conv2_columns[t * SIMD + s]]" in code and "#pragma HLS PIPELINE II=1" in code


def kept_per_fold(codes: torch.Tensor, pe: int) -> list[int]:
    """Counted from the integer graph's weight codes (symmetric: code 0 is weight 0): for each fold
    of PE output channels, the input positions where one of them is nonzero."""
    nonzero = codes.reshape(codes.shape[0], -1).ne(0)
    return [int(nonzero[i:i + pe].any(0).sum()) for i in range(0, len(nonzero), pe)]


def test_cycles_follow_the_kept_columns_counted_from_the_weights(single_thread):
    artifact, _, _ = digits(SPARSE, Z7020)
    rows = {r["stage"]: r for r in artifact.info["stages"]}
    for stage in artifact.obj.design.stages:
        if not isinstance(stage, SparseMVU):
            continue
        codes = stage.nodes[0].inputs[1]
        note, g = codes.annotation(SparsityAnnotation), stage.geometry
        for pe, simd in stage.fold_options():
            kept = kept_per_fold(codes.data, pe)
            steps, sf = sum(max(1, math.ceil(k / simd)) for k in kept), g.window // simd
            assert stage.cycles(pe, simd) == g.out_pixels * max(sf, steps) + min(sf, steps)
            assert 0 <= steps * simd - sum(kept) < len(kept) * simd         # at most a word of padding per fold
            assert MVU.cycles(stage, pe, simd) == g.out_pixels * len(kept) * sf   # the dense unit at this folding
        if stage.rows % note.lanes == 0:
            # PE = lanes: a fold is one group of rows; SIMD = 1: no padding. The dense unit's
            # OP x NF x SF cycles drop to the kept groups, plus the first window's words
            dense = MVU.cycles(stage, note.lanes, 1)
            assert sum(kept_per_fold(codes.data, note.lanes)) == note.kept
            assert stage.cycles(note.lanes, 1) - g.window == dense * note.density == g.out_pixels * note.kept
        info = rows[stage.name]["sparsity"]
        assert info["words"] == stage.steps() and info["kept_columns"] == sum(kept_per_fold(codes.data, stage.pe))
        assert info["dense_words"] == stage.rows // stage.pe * (g.window // stage.simd)


def test_a_frame_rate_takes_fewer_multipliers_when_sparse(single_thread):
    xtr, _, xte, _ = digits_data()
    estimate = Z7020.replace("}", ",simulate=false}")
    dense = compile(train_digits_cnn(), (xte[:1],), target=estimate, calibration_data=xtr[:256]).artifact.info
    sparse = digits(SPARSE, Z7020)[0].info
    lanes = {name: sum(r["PE"] * r["SIMD"] for r in info["stages"] if r["kind"] == "mvu")
             for name, info in (("dense", dense), ("sparse", sparse))}
    assert dense["folding"]["fps"] >= 10000 and sparse["folding"]["fps"] >= 10000
    assert lanes["sparse"] < lanes["dense"]
    assert sparse["totals"]["DSP"] < dense["totals"]["DSP"] and sparse["totals"]["BRAM18"] < dense["totals"]["BRAM18"]
    print(f"\ndigits CNN at 10,000 fps on z7020: multipliers {lanes['dense']} -> {lanes['sparse']}, "
          f"DSP {dense['totals']['DSP']} -> {sparse['totals']['DSP']}, LUT {dense['totals']['LUT']} -> "
          f"{sparse['totals']['LUT']}, BRAM18 {dense['totals']['BRAM18']} -> {sparse['totals']['BRAM18']}")


class Grouped(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.g = nn.Conv2d(16, 16, 3, padding=1, groups=2)
        self.fc = nn.Linear(16 * 8 * 8, 8)

    def forward(self, x):
        return self.fc(torch.relu(self.g(torch.relu(self.a(x)))).flatten(1))


def test_grouped_layer_keeps_the_dense_unit_with_a_note():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8)
    artifact, got, ref = simulate(Grouped().eval(), x, x, target="hls{fps=20000}",
                                  pipeline="simd-sparsify{simd=4,sparsity=0.5}")
    assert_bit_exact(got, ref)
    assert_cycles_counted(artifact)
    stages = {s.name: s for s in artifact.obj.design.stages}
    assert stages["g"].nodes[0].inputs[1].annotation(SparsityAnnotation) is not None     # annotated, still dense
    assert type(stages["g"]) is MVU and isinstance(stages["a"], SparseMVU) and isinstance(stages["fc"], SparseMVU)
    row = next(r for r in artifact.info["stages"] if r["stage"] == "g")
    assert "sparsity" not in row and "keeps the dense vector unit" in row["notes"][0]
    assert "// Note: the weight has SIMD-4 structured sparsity" in \
        (artifact.obj.project / "src" / "stages" / "g.cpp").read_text()


def test_a_window_too_long_to_gather_from_keeps_the_dense_unit():
    x = torch.randn(4, 5000)
    model = nn.Linear(5000, 8).eval()
    artifact = compile(model, (x[:1],), "simd-sparsify{simd=4,sparsity=0.5}", target="hls{simulate=false}",
                       calibration_data=x).artifact
    mvu = next(s for s in artifact.obj.design.stages if s.kind == "mvu")
    assert type(mvu) is MVU and "longer than the 4,096 registers" in mvu.notes[0]


def test_unannotated_layers_are_unchanged():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16)
    model = TwoConvs().eval()
    target = "hls{fps=2000,simulate=false}"
    dense = compile(model, (x[:1],), target=target, calibration_data=x).artifact.obj
    only_b = compile(model, (x[:1],), "simd-sparsify{simd=4,sparsity=0.5,only=[b]}", target=target,
                     calibration_data=x).artifact.obj
    kinds = {s.name: type(s) for s in only_b.design.stages}
    assert kinds["a"] is MVU and kinds["b"] is SparseMVU and kinds["fc"] is MVU
    for path in ("src/stages/a.cpp", "src/data/a.cpp", "src/stages/a_window.cpp"):
        assert (dense.project / path).read_text() == (only_b.project / path).read_text(), path


@pytest.mark.parametrize("pipeline", [
    "simd-sparsify{simd=8,sparsity=0.5},fold-bn,quantize{weights=int8,activations=int8,residuals=true}",
    "simd-sparsify{pattern=nm,n=2,m=4}",
])
def test_signed_codes_and_n_m_sparsity_are_bit_exact(pipeline):
    """Signed activations (the input offset in the bias) and 2:4 sparsity through the same unit."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16)
    artifact, got, ref = simulate(TwoConvs(width=8).eval(), x, x, target="hls{fps=3000}", pipeline=pipeline)
    assert_bit_exact(got, ref)
    assert_cycles_counted(artifact)
    sparse = [r for r in artifact.info["stages"] if "sparsity" in r]
    assert sparse and all(r["sparsity"]["kept_columns"] < r["sparsity"]["columns"] for r in sparse)
    if "nm" in pipeline:
        assert all(r["sparsity"]["pattern"] == "2:4" for r in sparse)
