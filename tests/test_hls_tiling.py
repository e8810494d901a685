"""target hls on block-convolution graphs (`block-conv`, docs/block-conv.md): every layer runs
block by block, its line buffer one block wide and each block padded on its own (zeros,
replicate or reflect), the cut into blocks and the stitch back are reorder buffers of one row of
blocks, and the C simulation equals the interpreter on the integer graph bit for bit.
"""
from __future__ import annotations

import pytest
import torch

from backends.hls.stages import Add, LineBufferWindow, MaxPool, Reorder
from compiler import compile
from compiler.errors import NNForgeError
from compiler.tiling import TilingAnnotation
from tests.test_backend_hls import TwoConvs, assert_bit_exact, assert_cycles_counted, simulate, small_zoo
from tests.test_backend_hls import hls_cache  # noqa: F401  (the module's shared g++ cache)


def stages_of(artifact, kind):
    return [s for s in artifact.obj.design.stages if isinstance(s, kind)]


@pytest.mark.parametrize("padding", ["zeros", "replicate", "reflect"])
def test_blocked_layers_are_bit_exact_in_every_padding_mode(padding):
    torch.manual_seed(0)
    x = torch.rand(4, 3, 16, 16)
    artifact, got, ref = simulate(TwoConvs().eval(), x, x, pipeline=f"block-conv{{block=8,padding={padding}}}")
    assert_bit_exact(got, ref)
    assert_cycles_counted(artifact)
    windows = stages_of(artifact, LineBufferWindow)
    assert [(w.geometry.blocks, w.geometry.width, w.geometry.edge) for w in windows] == \
        [(4, 8, padding), (4, 8, padding)]                    # one block wide, four blocks per frame
    assert all(s.inputs[0].blocks == 4 for s in windows)
    cut, stitch_and_flatten = stages_of(artifact, Reorder)    # the edge pads are the windows' own
    assert cut.depth <= 8 * 16 < cut.inputs[0].words          # one row of blocks, not the frame


@pytest.mark.parametrize("name,pipeline", [
    ("resnet18", "block-conv{block=8,padding=replicate}"),                     # max pool, residual adds
    ("mobilenetv2", "block-conv{pattern=hierarchical,grid=2,padding=reflect}"),  # depthwise, blocked and plain
    ("unet", "block-conv{block=16}"),                                          # concats, upsampling
])
def test_blocked_zoo_cnns_are_bit_exact(name, pipeline, single_thread):
    zoo = small_zoo(name)
    x = torch.rand(3, *zoo.example_inputs[0].shape[1:])
    artifact, got, ref = simulate(zoo.module, x, x, pipeline=pipeline)
    assert_bit_exact(got, ref)
    assert_cycles_counted(artifact)
    assert any(w.geometry.blocks > 1 for w in stages_of(artifact, LineBufferWindow))
    if name == "resnet18":
        assert any(p.geometry.blocks > 1 for p in stages_of(artifact, MaxPool))


def test_blocks_shrink_line_buffers_and_skip_fifos():
    """The point of block convolution on a dataflow design: line buffers one block wide, and a
    residual branch that waits for one block's rows instead of the frame's."""
    zoo = small_zoo("resnet18")
    x = torch.rand(2, *zoo.example_inputs[0].shape[1:])
    designs = {}
    blocking = "block-conv{pattern=hierarchical,grid=2}"
    for pipeline in ("", blocking):
        artifact = compile(zoo.module, (x[:1],), pipeline, target="hls{simulate=false}", calibration_data=x).artifact
        designs[pipeline] = artifact.obj.design
    plain, blocked = designs[""], designs[blocking]

    def line_buffer_elements(design):
        return sum(w.geometry.rows * w.geometry.width * w.geometry.channels
                   for w in design.stages if isinstance(w, (LineBufferWindow, MaxPool)))

    def skip_fifo_words(design):
        return sum(p.depth for s in design.stages if isinstance(s, Add) for p in s.inputs)

    assert line_buffer_elements(blocked) < 0.7 * line_buffer_elements(plain)
    assert skip_fifo_words(blocked) < skip_fifo_words(plain)


def test_an_annotation_that_does_not_match_the_blocks_is_refused():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    graph = compile(TwoConvs().eval(), (x[:1],), "block-conv{block=8},quantize,integerize",
                    calibration_data=x).graph
    conv = next(n for n in graph.nodes if n.annotation(TilingAnnotation) is not None)
    conv.annotate(TilingAnnotation(block=(4, 4), grid=(4, 4)))
    with pytest.raises(NNForgeError, match=rf"layer '{conv.name}' is annotated with 4x4 blocks of 4x4, but its "
                                           r"input holds 4 block\(s\) of 8x8"):
        compile(graph, (x[:1],), target="hls{simulate=false}")


@pytest.mark.parametrize("name", ["mobilenetv2", "unet"])
def test_host_reorder_moves_the_cut_and_the_stitch_into_the_ports(name):
    """hls{host-reorder=true}: the host sends blocks and takes blocks back (the testbench
    reorders), so no reorder stage sits at the ports and the design is no slower for them."""
    zoo = small_zoo(name)
    x = torch.rand(3, *zoo.example_inputs[0].shape[1:])
    pipeline = "block-conv{pattern=hierarchical,grid=2}"
    plain = compile(zoo.module, (x[:1],), pipeline, target="hls{simulate=false}", calibration_data=x).artifact
    artifact, got, ref = simulate(zoo.module, x, x, pipeline=pipeline, target="hls{host-reorder=true}")
    assert_bit_exact(got, ref)
    assert_cycles_counted(artifact)
    design = artifact.obj.design
    assert design.inputs[0].port.blocks == 4 and design.inputs[0].order is not None
    assert isinstance(plain.obj.design.stages[0], Reorder) and not isinstance(design.stages[0], Reorder)
    if name == "unet":      # its last convolution is blocked too: the output port carries blocks
        assert design.outputs[0].port.blocks == 4 and design.outputs[0].order is not None
        assert len(stages_of(artifact, Reorder)) == len(stages_of(plain, Reorder)) - 2
    assert artifact.info["folding"]["fps"] >= plain.info["folding"]["fps"]
