"""Running the mapped graph: crossbar layers on tiles, everything else in the digital unit.

Nodes run in graph order. A mapped layer encodes its float input into DAC codes, forms input
vectors (patches.py), computes the integer product on its tiles (tiles.mvm with the conductances
of conductance.py), removes the input zero point, dequantizes with the weight and input scales
and adds the bias. Every other node (residual adds, pooling, norms, activations, attention
softmax and activation-by-activation matmuls, the fake_quant of activations) runs in float
through the op registry, as the interpreter runs it. Weight fake_quant nodes read only by mapped
layers are absorbed (their weights live in the tiles).

A graph in integer form (after `integerize`) runs the same way: its int_conv / int_linear /
int_matmul layers read integer codes straight into the DACs and hand on the int32 accumulator
(bias included; a noisy product rounded to the nearest integer), and its requantize, quantize,
dequantize, max_pool and int32 adds run through the op registry as in the interpreter. With ideal
devices and converters every accumulator is the interpreter's, so the outputs are bit for bit.
"""
from __future__ import annotations

from typing import Sequence

import torch

from backends.crossbar import patches
from backends.crossbar.conductance import LevelTables, ReadCondition, effective
from backends.crossbar.devices import DeviceModel
from backends.crossbar.mapping import LayerMapping
from backends.crossbar.scratch import Scratch
from backends.crossbar.tiles import Converters, TileArrays, build_arrays, chunk_parts, dac_planes, mvm_into, tile_pieces

TILE_CHUNK = 16   # tiles whose conductances exist at once (16 x 256 x 128 cell pairs: 2 MiB per float tensor)
from compiler.context import DEFAULT_CONTEXT
from compiler.interpreter import check_inputs
from compiler.ir import Graph, Node, Value
from compiler.ops import get_op

INT32 = torch.iinfo(torch.int32)


class CrossbarSimulator:
    """The artifact's runner: `sim(inputs) -> outputs`; a seed fixes every draw."""

    def __init__(self, graph: Graph, mappings: dict[Node, LayerMapping], device: DeviceModel,
                 converters: Converters, condition: ReadCondition, seed: int, dtype: torch.dtype = torch.float32):
        self.graph, self.mappings, self.dtype = graph, mappings, dtype
        self.tables = LevelTables(device, converters.cell_levels)
        self.device, self.converters, self.condition, self.seed = device, converters, condition, seed
        self.arrays: dict[Node, TileArrays] = {node: build_arrays(m) for node, m in mappings.items()}
        self.pieces = {node: tile_pieces(m) for node, m in mappings.items()}
        self.scratch = Scratch()   # per-chunk temporaries, reused across chunks and layers
        self.order = {node: i for i, node in enumerate(mappings)}
        self.read_gen = torch.Generator().manual_seed(seed * 7919 + 17)
        self.absorbed = {n for n in graph.nodes if n.op == "fake_quant" and n.outputs[0].users
                         and all(u in mappings and get_op(u.op).layout.weight_value(u) is n.outputs[0]
                                 for u in n.outputs[0].users) and n.outputs[0] not in graph.outputs}

    # ---- one layer ---------------------------------------------------------------------------
    def integer_product(self, node: Node, vectors: torch.Tensor, qmin: int, qmax: int) -> torch.Tensor:
        """The crossbar's sum(W_int * q) for input code vectors [N, groups, inputs]: [N, outputs].

        Tiles go in chunks of TILE_CHUNK: their levels, conductances and products are made and
        dropped before the next chunk, so memory stays bounded on any layer size."""
        m, arrays, by_tile = self.mappings[node], self.arrays[node], self.pieces[node]
        base = self.seed * 1_000_003 + self.order[node] * 3
        gens = (torch.Generator().manual_seed(base), torch.Generator().manual_seed(base + 1), self.read_gen)
        planes = dac_planes(vectors.reshape(vectors.shape[0], -1).float(), qmin, qmax, self.converters)
        out = torch.zeros((vectors.shape[0], arrays.outputs + 1), dtype=torch.float64)
        offset = m.spec.signed == "offset"
        largest = max(abs(m.layer.wmin), m.layer.wmax) if not offset else m.layer.wmax + m.offset
        cells = self.tables.cells(largest + 1, m.slices)
        for first in range(0, m.tiles, TILE_CHUNK):
            last = min(m.tiles, first + TILE_CHUNK)
            rows = int(arrays.rows_used[first:last].max())     # cells past these are never read
            cols = int(arrays.adc_used[first:last].max())
            with DEFAULT_CONTEXT.torch_threads(parallel=False):  # elementwise work on small chunks
                parts = chunk_parts(m, [p for t in range(first, last) for p in by_tile[t]], first, rows,
                                    cols // m.slices, last - first)
                g_eff, gain = effective(parts, m.offset if offset else None, arrays.adc_slice[first:last, :cols],
                                        self.device, cells, self.condition, gens, self.scratch)
            mvm_into(out, planes, qmin, qmax, arrays, first, g_eff, self.converters, gain, self.dtype, self.scratch)
        return out[:, :-1]

    def layer_vectors(self, node: Node, x: torch.Tensor):
        """(input code vectors [N, groups, inputs], scale, zero point, qmin, qmax, output shaper)."""
        layer = self.mappings[node].layer
        codes, step, zp, qmin, qmax = layer.inputs.encode(x)
        out_type = node.outputs[0].type
        groups = layer.groups
        if layer.kind == "rows":
            vectors = codes.reshape(-1, 1, codes.shape[-1])
            return vectors, step, zp, qmin, qmax, lambda acc: acc.reshape(out_type.shape)
        spatial = len(node.attrs["stride"])
        batched = codes.dim() == spatial + 2
        if not batched:
            codes = codes.unsqueeze(0)
        out_shape = out_type.shape if batched else (1,) + out_type.shape
        if layer.kind == "gather":
            vectors, out_spatial = patches.gather(codes, node.attrs, layer.kernel, groups, float(zp))
            shape = lambda acc: patches.gather_output(acc, codes.shape[0], out_spatial).reshape(out_type.shape)
        else:
            vectors = patches.scatter_input(codes, groups)
            shape = lambda acc: patches.scatter_output(acc, codes.shape[0], tuple(codes.shape[2:]), out_shape[1],
                                                       layer.kernel, node.attrs, tuple(out_shape[2:])
                                                       ).reshape(out_type.shape)
        return vectors, step, zp, qmin, qmax, shape

    def layer_output(self, node: Node, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        layer = self.mappings[node].layer
        vectors, step, zp, qmin, qmax, shape = self.layer_vectors(node, x)
        acc = self.integer_product(node, vectors, qmin, qmax)
        if zp:
            acc = acc - zp * layer.matrices.sum(dim=2).flatten().double()
        if layer.accumulator:
            return self.accumulator(node, shape(acc), bias)
        y = shape((acc * (layer.out_scale.flatten() * step)).float())
        if bias is not None:
            axis = layer.layout.output_channel_axis(node)
            y = y + bias.view([-1 if d == axis else 1 for d in range(y.dim())])
        return y.to(x.dtype)

    def accumulator(self, node: Node, acc: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """The integer form's int32 result: acc (float64, exact integers on ideal tiles) plus the
        int32 bias, rounded (noisy products) and saturated to int32. Contiguous like the
        interpreter's (torch's uint8 max_pool2d fails on the channels-last strides of im2col)."""
        if bias is not None:
            axis = self.mappings[node].layer.layout.output_channel_axis(node)
            acc = acc + bias.double().view([-1 if d == axis else 1 for d in range(acc.dim())])
        return acc.round().clamp(INT32.min, INT32.max).to(torch.int32).contiguous()

    # ---- the graph ---------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        graph = self.graph
        check_inputs(graph, inputs)
        env: dict[Value, torch.Tensor] = dict(zip(graph.inputs, inputs))
        nodes = [n for n in graph.nodes if n not in self.absorbed]
        last_use = {v: i for i, node in enumerate(nodes) for v in node.inputs if v is not None and v.producer}
        keep = set(graph.outputs)

        def value(v: Value | None):
            return None if v is None else v.data if v.data is not None else env[v]

        for i, node in enumerate(nodes):
            if node in self.mappings:
                layout = self.mappings[node].layer.layout
                env[node.outputs[0]] = self.layer_output(node, value(node.inputs[layout.activations[0]]),
                                                         value(layout.bias_value(node)))
            else:
                env.update(zip(node.outputs, get_op(node.op).run([value(v) for v in node.inputs], node.attrs)))
            for v in node.inputs:
                if v is not None and last_use.get(v) == i and v not in keep:
                    env.pop(v, None)
        return [value(v) for v in graph.outputs]
