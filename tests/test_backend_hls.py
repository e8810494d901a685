"""target hls: the C simulation equals the integer interpreter bit for bit, the estimates are the
loops the C++ runs, the folding meets its target, and bad input gets one clear message.

g++ builds are cached in one temporary folder for the module (NNFORGE_HLS_CACHE), so a design
compiles once however many tests run it. Full-size zoo models are marked slow (-m slow).
"""
from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from backends.hls import HLSBackend
from compiler import compile
from compiler.errors import NNForgeError
from compiler.interpreter import interpret
from compiler.ir import Graph, TensorType
from tests.test_quant_accuracy import accuracy, digits_data, train_digits_cnn


@pytest.fixture(scope="module", autouse=True)
def hls_cache(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("NNFORGE_HLS_CACHE", str(tmp_path_factory.mktemp("hls-cache")))
    yield
    patch.undo()


def simulate(model, x, calib, target="hls", **kw):
    """Compile to hls; return (artifact, C-sim outputs, interpreter outputs on the integer graph)."""
    artifact = compile(model, (x[:1],), target=target, calibration_data=calib, **kw).artifact
    got = artifact.run(x)
    ref = [torch.cat(parts) for parts in zip(*(interpret(artifact.obj.graph, x[i:i + 1]) for i in range(len(x))))]
    return artifact, got, ref


def assert_bit_exact(got, ref):
    for g, r in zip(got, ref):
        assert g.dtype == r.dtype and torch.equal(g, r)


def assert_cycles_counted(artifact):
    """Every stage's cycle formula equals the loop iterations the C simulation counted, and g++
    (-Wall -Wextra) had nothing to warn about."""
    for row in artifact.info["stages"]:
        assert row["csim_cycles"] == row["cycles"], row["stage"]
    assert not [w for w in artifact.info["warnings"] if "C simulation counted" in w or w.startswith("g++")]


def test_digits_cnn_is_bit_exact_on_all_test_images_and_keeps_accuracy(single_thread):
    model = train_digits_cnn()
    xtr, _, xte, yte = digits_data()
    artifact, (got,), (ref,) = simulate(model, xte, xtr[:256])
    assert_bit_exact([got], [ref])
    assert_cycles_counted(artifact)
    fp32 = accuracy(model, xte, yte)
    hls = 100.0 * float((got.argmax(1) == yte).float().mean())
    print(f"\ndigits CNN: float {fp32:.2f}%, hls C simulation {hls:.2f}%")
    assert hls >= fp32 - 1.0
    info = artifact.info
    assert info["lowering"]["calibration"] == "user data" and info["estimate_seconds"] < 1.0
    assert {"in=u8", "weights=i8"} <= set(info["stages"][1]["bits"].split())


def small_zoo(name):
    from tests.zoo import build
    kwargs = {"resnet18": dict(width=8, input_size=32, num_classes=10),
              "mobilenetv2": dict(width_mult=0.25, num_classes=10),
              "unet": dict(base=4, input_size=32, bilinear_levels=())}[name]
    return build(name, batch=1, **kwargs)


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2", "unet"])
def test_small_zoo_cnns_are_bit_exact(name, single_thread):
    """Residual adds (ResNet), depthwise convs (MobileNetV2), transposed-conv upsampling and
    concats (UNet) through the C simulation, against the interpreter on the integer graph."""
    zoo = small_zoo(name)
    x = torch.rand(3, *zoo.example_inputs[0].shape[1:])
    artifact, got, ref = simulate(zoo.module, x, x)
    assert_bit_exact(got, ref)
    assert_cycles_counted(artifact)
    kinds = {row["kind"] for row in artifact.info["stages"]}
    assert {"window", "mvu"} <= kinds
    assert {"resnet18": "add", "mobilenetv2": "add", "unet": "concat"}[name] in kinds


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs", [("resnet18", {}), ("mobilenetv2", {}), ("unet", {"bilinear_levels": ()}),
                                         ("unet", {})])     # the default UNet: bilinear upsampling on odd levels
def test_zoo_cnns_at_their_test_size_are_bit_exact(name, kwargs):
    from tests.zoo import build
    zoo = build(name, batch=1, **kwargs)
    x = zoo.example_inputs[0]
    artifact, got, ref = simulate(zoo.module, x, torch.rand(4, *x.shape[1:]), target="hls{part=u250}")
    assert_bit_exact(got, ref)
    assert_cycles_counted(artifact)


class TwoConvs(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.a = nn.Conv2d(3, width, 3, padding=1)
        self.b = nn.Conv2d(width, 2 * width, 3, stride=2, padding=1)
        self.fc = nn.Linear(2 * width * 8 * 8, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.b(torch.relu(self.a(x)))).flatten(1))


@pytest.mark.parametrize("pipeline,target", [
    ("fold-bn,quantize{weights=int8,activations=int8,residuals=true}", "hls"),   # signed codes, given quantized
    ("", "hls{precision=w4a8}"),                                                 # 4-bit weights, lowered here
])
def test_signed_activations_and_narrow_weights_are_bit_exact(pipeline, target):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16)
    artifact = compile(TwoConvs().eval(), (x[:1],), pipeline, target=target, calibration_data=x).artifact
    ref = torch.cat([interpret(artifact.obj.graph, x[i:i + 1])[0] for i in range(len(x))])
    assert_bit_exact(artifact.run(x), [ref])
    mvus = [r for r in artifact.info["stages"] if r["kind"] == "mvu"]
    if "w4a8" in target:
        assert all("weights=i4" in r["bits"] for r in mvus)
    else:
        assert "in=i8" in mvus[0]["bits"]


def test_io_parallel_is_bit_exact_and_warns_about_partitioned_ports():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    artifact, got, ref = simulate(TwoConvs().eval(), x, x, target="hls{io=parallel}")
    assert_bit_exact(got, ref)
    top = (artifact.obj.project / "src" / "top.cpp").read_text()
    assert "ARRAY_RESHAPE variable=x_codes complete" in top and "array_to_stream" in top
    assert not artifact.info["warnings"]          # 16x16x3 = 768 codes: within the tool's limit
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval()
    big = compile(model, (torch.rand(1, 3, 48, 48),), target="hls{io=parallel,simulate=false}").artifact
    assert any(re.search(r"port: array '\w+_codes' is partitioned into 6,912 parts, beyond Vitis HLS's limit of "
                         r"4,096", w) for w in big.info["warnings"])


def test_project_folder_has_one_function_per_stage_and_weights_per_layer(tmp_path):
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16)
    out = tmp_path / "design"
    result = compile(TwoConvs().eval(), (x,), target="hls{part=z7020,clock-mhz=100,fps=2000}", output=out,
                     calibration_data=x)
    design = result.artifact.obj
    names = {p.name for p in (out / "src" / "stages").iterdir()}
    assert names == {f"{s.name}.cpp" for s in design.design.stages}
    assert {p.name for p in (out / "src" / "data").iterdir()} == {"a.cpp", "b.cpp", "fc.cpp"}
    top = (out / "src" / "top.cpp").read_text()
    assert "#pragma HLS DATAFLOW" in top and "INTERFACE mode=axis port=x_codes" in top
    for stage in design.design.stages:
        code = (out / "src" / "stages" / f"{stage.name}.cpp").read_text()
        assert "#pragma HLS PIPELINE II=1" in code
        if stage.kind == "mvu":     # rows (PE) and window elements (SIMD), in the order the ROM is stored
            rows, cols = (2, 1) if stage.rows_inner else (1, 2)
            assert f"ARRAY_PARTITION variable={stage.name}_weights cyclic factor={stage.pe} dim={rows}" in code
            assert f"ARRAY_RESHAPE variable={stage.name}_weights cyclic factor={stage.simd} dim={cols}" in code
            assert "#pragma HLS UNROLL" in code
    assert "set_part xc7z020clg400-1" in (out / "build.tcl").read_text()
    assert "create_clock -period 10.000" in (out / "build.tcl").read_text()
    assert {"README.md", "Makefile", "report.json", "stages.png"} <= {p.name for p in out.iterdir()}
    fold = result.artifact.info["folding"]
    assert fold["cycles"] <= 100e6 / 2000 and fold["fps"] >= 2000


def test_folding_meets_a_target_fps_with_the_cheapest_design():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 16, 16)
    slow = compile(TwoConvs().eval(), (x,), target="hls{fps=1000,simulate=false}").artifact.info
    fast = compile(TwoConvs().eval(), (x,), target="hls{simulate=false}").artifact.info
    assert slow["folding"]["fps"] >= 1000 and fast["folding"]["fps"] > slow["folding"]["fps"]
    assert slow["totals"]["DSP"] < fast["totals"]["DSP"]
    assert fast["folding"]["binding"]


def test_unreachable_fps_names_the_best_rate_and_the_binding_resource():
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(NNForgeError, match=r"not reachable on z7020: the best reachable is [\d,.]+ fps; bound by"):
        compile(TwoConvs(width=32).eval(), (x,), target="hls{part=z7020,fps=1e7,simulate=false}")


def test_unknown_part_suggests_close_names():
    with pytest.raises(NNForgeError, match=r"unknown part 'zu7eg'; did you mean .*'zu7ev'"):
        HLSBackend(part="zu7eg")
    assert HLSBackend(part="xczu3eg-sbva484-2-i").fpga.name == "zu3eg"
    assert HLSBackend(part="pynq-z2").fpga.name == "z7020"


class Gated(nn.Module):
    """A sigmoid: integerize has no integer rule for it, so it stays a float island."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.out = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        return self.out(torch.sigmoid(self.conv(x)))


def test_ops_without_a_stage_are_listed_together_with_their_source():
    with pytest.raises(NNForgeError) as info:
        compile(Gated().eval(), (torch.rand(1, 3, 8, 8),), target="hls{simulate=false}")
    text = str(info.value)
    assert re.search(r"3 node\(s\) of graph 'Gated' have no HLS stage", text)
    assert re.search(r"sigmoid 'sigmoid' at \(test_backend_hls\.py:\d+\)", text) and "dequantize" in text
    assert "integerize has no integer rule for these ops" in text


def overflowing_add() -> Graph:
    """u8 codes scaled by 2^23 into two int32 values and added: 255 * 2^24 passes int32."""
    g = Graph("wide_add")
    x = g.add_input("x", TensorType((1, 4), torch.float32))
    one = g.add_constant("one", torch.tensor(1.0))
    q = g.create_node("quantize", [x, one], {"qmin": 0, "qmax": 255, "axis": None, "dtype": torch.uint8}, name="x.q")
    m, shift = g.add_constant("m", torch.tensor(2**30, dtype=torch.int32)), g.add_constant("sh", torch.tensor(7, dtype=torch.int32))
    wide = {"qmin": -2**31, "qmax": 2**31 - 1, "axis": None, "dtype": torch.int32}
    a = g.create_node("requantize", [q.output, m, shift], wide, name="a")
    b = g.create_node("requantize", [q.output, m, shift], wide, name="b")
    total = g.create_node("add", [a.output, b.output], name="total", source="model.py:7")
    g.outputs = [g.create_node("dequantize", [total.output, one], {"axis": None}, name="y").output]
    return g


def test_overflow_on_calibration_data_names_the_layer_and_the_range():
    small, large = torch.full((1, 4), 100.0), torch.full((1, 4), 255.0)
    artifact, got, ref = simulate(overflowing_add(), small, small)
    assert_bit_exact(got, ref)
    assert artifact.info["calibration_ranges"]["total"] == [2 * 100 * 2**23] * 2
    with pytest.raises(NNForgeError, match=r"layer 'total' \(add\) overflows its torch.int32 result on the calibration "
                                           r"data: it reaches \[4278190080, 4278190080\]"):
        compile(overflowing_add(), (large,), target="hls{simulate=false}", calibration_data=large)


def test_compiler_errors_give_the_first_lines_and_the_project(tmp_path, monkeypatch):
    fake = tmp_path / "fake-gxx"
    fake.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo fake; exit 0; fi\n"
                    "echo 'design.h:1:1: error: something is wrong' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(NNForgeError, match=r"g\+\+ failed on unity.cpp[\s\S]*error: something is wrong[\s\S]*at: .*design"):
        compile(TwoConvs().eval(), (x,), target="hls", output=tmp_path / "design")
    monkeypatch.setenv("CXX", "no-such-compiler")
    with pytest.raises(NNForgeError, match="'no-such-compiler' is not on PATH"):
        compile(TwoConvs().eval(), (x,), target="hls")
