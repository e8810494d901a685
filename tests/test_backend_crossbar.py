"""The crossbar target: exact integer products on ideal tiles, whole graphs against the fake-quant
interpreter, device non-idealities, sparsity-aware placement, estimates, files and bad input."""
from __future__ import annotations

import json

import re

import pytest
import torch
from torch import nn

from backends.crossbar import CrossbarBackend
from backends.crossbar.tiles import input_cycles
from compiler import compile
from compiler.context import TargetDescription
from compiler.errors import BackendError, PipelineError
from compiler.interpreter import interpret
from compiler.ops import get_op
from compiler.pipeline import parse_pipeline
from tests.zoo import build

QUANT = "quantize{weights=int8,activations=int8,act-granularity=tensor,weight-clip=minmax,act-clip=minmax}"


class Mixed(nn.Module):
    """Every mapped layer kind: conv, depthwise conv, transposed conv, linear, matmul with a constant."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.dw = nn.Conv2d(12, 12, 3, padding=1, groups=12)
        self.up = nn.ConvTranspose2d(12, 6, 2, stride=2, groups=2)
        self.fc = nn.Linear(6 * 8 * 8, 20)
        self.proj = nn.Parameter(torch.randn(20, 7))

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = torch.relu(self.dw(x))
        x = self.up(x)
        return torch.matmul(torch.relu(self.fc(x.flatten(1))), self.proj)


def mixed_graph(pipeline: str = QUANT, dtype=torch.float32):
    torch.manual_seed(0)
    model = Mixed().eval().to(dtype)
    x = torch.randn(2, 3, 4, 4, dtype=dtype)
    return compile(model, (x,), pipeline).graph, x


def reference_product(sim, node, vectors: torch.Tensor) -> torch.Tensor:
    """sum(W_int * q) in int64, straight from the layer's integer matrices."""
    w = sim.mappings[node].layer.matrices.long()                 # [g, O, K]
    q = vectors.round().to(torch.int64)                          # [N, g, K]
    return torch.einsum("gok,ngk->ngo", w, q).reshape(q.shape[0], -1)


@pytest.mark.parametrize("signed", ["differential", "offset"])
@pytest.mark.parametrize("adc_bits", [0, 16])
@pytest.mark.parametrize("weights,acts", [("int8", "int8"), ("int4", "uint8-asym"), ("fp4-e2m1", "fp8-e4m3")])
def test_ideal_tiles_compute_the_exact_integer_product_of_every_layer(signed, adc_bits, weights, acts):
    graph, x = mixed_graph(f"quantize{{weights={weights},activations={acts},act-granularity=tensor}}")
    artifact = CrossbarBackend(rows=32, cols=32, device="ideal", adc_bits=adc_bits, signed=signed).lower(graph, None)
    sim = artifact.runner
    assert {n.op for n in sim.mappings} == {"conv", "conv_transpose", "linear", "matmul"}
    env = dict(zip(graph.inputs, [x]))
    for node in graph.nodes:  # feed each layer the interpreter's own input
        if node in sim.mappings:
            layout = sim.mappings[node].layer.layout
            vectors, _, _, qmin, qmax, _ = sim.layer_vectors(node, env[node.inputs[layout.activations[0]]])
            got = sim.integer_product(node, vectors, qmin, qmax)
            assert torch.equal(got.to(torch.int64), reference_product(sim, node, vectors)), node.name
            assert torch.equal(got, got.round())
        env.update(zip(node.outputs, get_op(node.op).run(
            [None if v is None else v.data if v.data is not None else env[v] for v in node.inputs], node.attrs)))


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2", "unet"])
def test_ideal_simulation_matches_the_fake_quant_interpreter_on_zoo_cnns(name):
    # float64: requantization then rounds the same way in both (in float32 a last-bit difference
    # between a conv kernel and the exact integer sum can flip an activation code downstream)
    zoo = build(name, batch=1, input_size=32)
    model = zoo.module.double()
    inputs = tuple(x.double() for x in zoo.example_inputs)
    result = compile(model, inputs, "fold-bn," + QUANT + "\ntarget crossbar{device=ideal,adc-bits=0}")
    expected = interpret(result.graph, *inputs)[0]
    got = result.artifact.run(*inputs)[0]
    assert result.artifact.info["mapped_layers"] >= 10
    assert (got - expected).abs().max() <= 1e-6 * expected.abs().max()


def test_bert_encoder_maps_linear_layers_and_keeps_attention_digital():
    zoo = build("bert", batch=1)
    result = compile(zoo.module, zoo.example_inputs, QUANT + "\ntarget crossbar{device=ideal,adc-bits=0}")
    design = result.artifact.obj
    assert {m.layer.node.op for m in design.mappings} == {"linear"}
    digital_ops = {d["op"] for d in design.digital}
    assert "softmax" in digital_ops and "matmul" in digital_ops      # attention: activation x activation
    got = result.artifact.run(*zoo.example_inputs)[0]
    expected = interpret(result.graph, *zoo.example_inputs)[0]
    assert got.shape == expected.shape and torch.isfinite(got).all()


def test_adc_resolution_and_range_decide_the_error():
    graph, x = mixed_graph()
    exact = interpret(graph, x)[0]

    def error(**opts):
        out = CrossbarBackend(device="ideal", **opts).lower(graph, None).run(x)[0]
        return float((out - exact).abs().max())

    assert error(adc_bits=12) < 1e-5                # covers 256 rows x 3 levels: exact
    assert error(adc_bits=4) > error(adc_bits=6) > 0
    assert error(adc_bits=6, adc_range=0.02) != error(adc_bits=6)   # clipping changes the result


def test_input_cycles_slice_signed_codes_in_twos_complement():
    assert input_cycles(-128, 127, 1) == [(k, 1, k == 7) for k in range(8)]
    assert input_cycles(0, 255, 2) == [(0, 2, False), (2, 2, False), (4, 2, False), (6, 2, False)]
    assert input_cycles(-8, 7, 3) == [(0, 3, False), (3, 1, True)]


def test_noise_is_seeded_and_each_run_draws_new_read_noise():
    graph, x = mixed_graph()
    first = CrossbarBackend(device="reram", seed=3).lower(graph, None)
    again = CrossbarBackend(device="reram", seed=3).lower(graph, None)
    other = CrossbarBackend(device="reram", seed=4).lower(graph, None)
    a1, a2 = first.run(x)[0], first.run(x)[0]
    assert torch.equal(a1, again.run(x)[0]) and torch.equal(a2, again.run(x)[0])
    assert not torch.equal(a1, a2)                      # read noise is new on every read
    assert not torch.equal(a1, other.run(x)[0])
    quiet = CrossbarBackend(device="reram", read_noise=0, seed=3).lower(graph, None)
    assert torch.equal(quiet.run(x)[0], quiet.run(x)[0])   # programming noise is fixed at programming


def _pair_read_spread(monkeypatch, combine: bool, device) -> torch.Tensor:
    """Read noise of differential pairs (no programming noise): the spread of g_eff around the
    pair's target difference, per (positive level, negative level) combination."""
    from backends.crossbar import conductance
    if not combine:
        monkeypatch.setattr(conductance, "PAIR_READ_MAX", -1.0)   # every cell draws its own read noise
    tables = conductance.LevelTables(device, 4)
    cells = tables.cells(4, 1)                                # one 2-bit slice: part value = level
    levels = torch.arange(4, dtype=torch.int32)
    grid = torch.stack(torch.meshgrid(levels, levels, indexing="ij")).reshape(2, 1, 1, 16)
    parts = grid.expand(2, 4, 4096, 16).contiguous()           # every combination, 4 x 4096 times
    gens = tuple(torch.Generator().manual_seed(s) for s in (1, 2, 3))
    g_eff, _ = conductance.effective(parts, None, torch.zeros(4, 16, dtype=torch.int64), device, cells,
                                     conductance.ReadCondition(0.0, False), gens)
    target = cells.target[grid[0, 0, 0]][:, 0] - cells.target[grid[1, 0, 0]][:, 0]
    return (g_eff - target).reshape(-1, 16).std(dim=0)


def test_a_pairs_read_noise_drawn_once_has_the_spread_of_two_cell_draws(monkeypatch):
    from backends.crossbar.conductance import pair_read_combines
    from backends.crossbar.devices import PRESETS
    device = PRESETS["reram"].scaled(programming=0.0, read=10.0)    # 10% read noise, no programming noise
    assert pair_read_combines(device) and pair_read_combines(PRESETS["reram"])
    assert not pair_read_combines(PRESETS["pcm"])                   # 1/f noise up to 0.8: clamped per cell
    assert not pair_read_combines(PRESETS["reram"].scaled(read=20.0))
    per_pair = _pair_read_spread(monkeypatch, True, device)
    per_cell = _pair_read_spread(monkeypatch, False, device)
    step = (device.g_max - device.g_min) / 3
    targets = (device.g_min + torch.arange(4) * step) / step
    expected = 0.1 * torch.sqrt(targets.view(4, 1) ** 2 + targets.view(1, 4) ** 2).flatten()
    assert torch.allclose(per_pair, expected, rtol=0.03)             # 16384 draws per combination
    assert torch.allclose(per_cell, expected, rtol=0.03)


def test_scratch_buffers_are_reused_and_grow():
    from backends.crossbar.scratch import Scratch
    scratch = Scratch()
    a = scratch("x", (4, 8))
    assert scratch("x", (2, 3)).data_ptr() == a.data_ptr() and scratch.nbytes() == 4 * 8 * 4
    assert scratch("x", (8, 8)).shape == (8, 8) and scratch.nbytes() == 8 * 8 * 4
    assert scratch("x", (2,), torch.float64).dtype == torch.float64


def test_pcm_drift_shrinks_outputs_and_compensation_restores_them():
    graph, x = mixed_graph()
    exact = interpret(graph, x)[0]

    def run(**opts):
        return CrossbarBackend(device="pcm", adc_bits=0, read_noise=0, programming_noise=0, **opts).lower(graph, None).run(x)[0]

    fresh, day = run(time=1.0), run(time=86400.0)
    compensated = run(time=86400.0, drift_compensation=True)
    assert day.abs().mean() < fresh.abs().mean()
    assert (compensated - exact).abs().mean() < (day - exact).abs().mean()


def test_stuck_off_cells_silence_the_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 8, bias=False)).eval()
    x = torch.randn(4, 16)
    graph = compile(model, (x,), QUANT).graph
    dead = CrossbarBackend(device="ideal", adc_bits=0, stuck_off=1.0).lower(graph, None).run(x)[0]
    assert dead.abs().max() == 0
    noisy = CrossbarBackend(device="ideal", adc_bits=0, stuck_on=0.2).lower(graph, None).run(x)[0]
    assert not torch.allclose(noisy, interpret(graph, x)[0], atol=1e-3)


def test_all_zero_rows_columns_and_tiles_take_no_cells():
    torch.manual_seed(0)
    fc = nn.Linear(600, 100, bias=False)
    with torch.no_grad():
        fc.weight[:, 100:300] = 0        # pruned input channels: zero rows
        fc.weight[40:70] = 0             # pruned outputs: zero columns
        fc.weight[:, 300:] = 0           # and a zero block of whole tiles
        fc.weight[:10, 300:] = 1e-2
    x = torch.randn(3, 600)
    graph = compile(nn.Sequential(fc).eval(), (x,), QUANT).graph
    sparse = CrossbarBackend(device="ideal", adc_bits=0).lower(graph, None)
    dense = CrossbarBackend(device="ideal", adc_bits=0, sparse=False).lower(graph, None)
    m = sparse.obj.mappings[0]
    assert m.zero_rows == 200 and m.zero_outputs == 30
    assert sparse.info["tiles"] < dense.info["tiles"] == m.dense_tiles
    assert sparse.info["cells_saved"] == m.dense_cells - m.cells > 0
    assert torch.equal(sparse.run(x)[0], dense.run(x)[0])


def test_depthwise_groups_share_tiles_along_the_diagonal():
    conv = nn.Conv2d(64, 64, 3, padding=1, groups=64)
    x = torch.randn(1, 64, 6, 6)
    graph = compile(nn.Sequential(conv).eval(), (x,), QUANT).graph
    design = CrossbarBackend(device="ideal").lower(graph, None).obj
    m = design.mappings[0]
    assert m.tiles == 3           # 256 rows / 9 = 28 groups per tile (columns: 28 x 8 <= 256)
    assert len({p.tile for p in m.pieces}) == 3 and len(m.pieces) == 64
    for tile in range(m.tiles):   # pieces on one tile never share rows or columns
        spans = [(p.row, p.row + len(p.rows), p.col, p.col + 8) for p in m.pieces if p.tile == tile]
        for i, a in enumerate(spans):
            for b in spans[i + 1:]:
                assert a[1] <= b[0] and a[3] <= b[2]


def test_offset_encoding_uses_one_column_per_slice_plus_references():
    graph, x = mixed_graph()
    diff = CrossbarBackend(device="ideal", signed="differential").lower(graph, None).obj.mappings[0]
    off = CrossbarBackend(device="ideal", signed="offset").lower(graph, None).obj.mappings[0]
    assert diff.cols_per_output == 2 * diff.slices and off.cols_per_output == off.slices
    assert off.reserved_cols == off.slices and off.offset == 128


def test_estimates_follow_the_converters():
    graph, x = mixed_graph()

    def totals(**opts):
        return CrossbarBackend(device="ideal", **opts).lower(graph, None).obj.totals

    base, wide = totals(adc_bits=8), totals(adc_bits=9)
    assert wide["energy_j"]["adc"] == pytest.approx(2 * base["energy_j"]["adc"])
    assert all(v > 0 for v in base["energy_j"].values())
    assert totals(dac_bits=2)["latency_s"] < base["latency_s"]       # 4 input cycles instead of 8


def test_output_folder_holds_mapping_csv_report_and_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    graph, x = mixed_graph()
    artifact = CrossbarBackend(rows=64, cols=64, device="ideal").lower(graph, tmp_path / "xbar")
    names = sorted(p.name for p in artifact.files)
    assert names == ["energy.png", "mapping.json", "network.csv", "report.json", "tile_map.png"]
    mapping = json.loads((tmp_path / "xbar" / "mapping.json").read_text())
    layers = {layer["name"]: layer for layer in mapping["layers"]}
    conv = layers["conv"]
    assert conv["matrix"] == [12, 27] and conv["slices"] == 4 and conv["encoding"] == "differential"
    assert conv["tiles"][0]["pieces"][0]["inputs"] == [[0, 27]]
    assert sum(t["tile_count"] for t in mapping["layers"]) == artifact.info["tiles"]
    rows = (tmp_path / "xbar" / "network.csv").read_text().splitlines()
    assert rows[0] == "4,4,3,3,3,12,0,1" and len(rows) == 5
    report = json.loads((tmp_path / "xbar" / "report.json").read_text())
    assert report["summary"]["tiles"] == artifact.info["tiles"]
    assert (tmp_path / "xbar" / "tile_map.png").read_bytes()[:4] == b"\x89PNG"


def test_target_description_reaches_the_passes():
    result = compile(Mixed().eval(), (torch.randn(2, 3, 4, 4),), "dce\ntarget crossbar{rows=128,cols=64,cell-bits=1}")
    assert str(result.artifact.target) == "crossbar"
    backend = parse_pipeline("target crossbar{rows=128,cols=64,cell-bits=1}").target
    described = backend.describe_target(TargetDescription())
    assert (described.crossbar_rows, described.crossbar_cols, described.cell_bits) == (128, 64, 1)


def test_float_graphs_quantize_on_the_fly_unless_bits_are_none():
    graph, x = mixed_graph("dce")
    out = CrossbarBackend(device="ideal", adc_bits=0).lower(graph, None).run(x)[0]
    exact = interpret(graph, x)[0]
    assert (out - exact).abs().max() < 0.05 * exact.abs().max()
    with pytest.raises(BackendError, match="'weight-bits' is none") as err:
        CrossbarBackend(weight_bits=None).lower(graph, None)
    assert "layer 'conv'" in str(err.value)
    with pytest.raises(BackendError, match="'input-bits' is none"):
        CrossbarBackend(input_bits=None).lower(graph, None)


@pytest.mark.parametrize("text,match", [
    ("rows=0", "option 'rows' must be in [1, 65536], got 0"),
    ("device=memristor", "option 'device' expects reram | pcm | ideal, got memristor"),
    ("adc-bits=1", "option 'adc-bits'"),
    ("stuck-on=2.0", "option 'stuck-on'"),
])
def test_bad_options_name_the_option(text, match):
    with pytest.raises(PipelineError, match=re.escape(match)):
        parse_pipeline(f"target crossbar{{{text}}}")


def test_an_unknown_preset_from_python_names_the_option():
    with pytest.raises(PipelineError, match="option 'device' names no preset: 'memristor'"):
        CrossbarBackend(device="memristor")


def test_a_layer_that_fits_no_tile_names_the_layer_and_the_option():
    graph, _ = mixed_graph()
    with pytest.raises(BackendError, match="one output needs 8 columns") as err:
        CrossbarBackend(cols=6).lower(graph, None)
    assert "layer 'conv'" in str(err.value) and "cols=6" in str(err.value)


def test_block_scaled_weights_are_refused_with_a_hint():
    graph, _ = mixed_graph("quantize{weights=mxfp4,activations=int8,act-granularity=tensor}")
    with pytest.raises(BackendError, match="per group") as err:
        CrossbarBackend().lower(graph, None)
    assert "granularity=channel" in err.value.hint
