"""Energy, latency and area per layer and in total, from the mapping and costs.CostParameters.

A mapped layer applies N input vectors (output positions of a conv, tokens of a linear layer),
each in S DAC cycles; in every cycle each used row's DAC fires, the used cells conduct, and each
used ADC column is converted once, shifted and added. Its tiles work in parallel, so a layer
takes N * S tile cycles; layers run one after another (no pipelining between layers). The
digital unit dequantizes mapped outputs and runs every node that is not a matrix product;
activation bytes move through an SRAM buffer. Energy components: cell reads, DAC, ADC,
shift-add, digital unit, buffer. Area: cells, ADCs (with their shift-add units) and DACs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from backends.crossbar.costs import CostParameters
from backends.crossbar.devices import DeviceModel
from backends.crossbar.mapping import LayerMapping
from backends.crossbar.tiles import input_cycles, slice_levels, sliced_matrices
from compiler.ir import Graph, Node
from compiler.ops import Trait, get_op

COMPONENTS = ("cell_read", "dac", "adc", "shift_add", "digital", "buffer")


@dataclass
class LayerEstimate:
    name: str
    op: str
    unit: str                       # "crossbar" or "digital"
    energy: dict[str, float] = field(default_factory=dict)   # J per component
    latency: float = 0.0            # s
    area: dict[str, float] = field(default_factory=dict)     # m^2 per component
    vectors: int = 0
    cycles: int = 0
    conversions: int = 0
    ops: int = 0

    @property
    def total_energy(self) -> float:
        return sum(self.energy.values())


def vectors_of(mapping: LayerMapping) -> int:
    layer, node = mapping.layer, mapping.layer.node
    if layer.kind == "gather":
        return node.outputs[0].type.numel // (layer.groups * layer.matrices.shape[1])
    x = node.inputs[layer.layout.activations[0]]
    return x.type.numel // (layer.groups * layer.matrices.shape[2])


def cycles_of(mapping: LayerMapping, dac_bits: int, input_bits: int | None) -> int:
    codes = mapping.layer.inputs
    if codes.scale is None:  # dynamic: signed codes of input-bits
        return math.ceil((input_bits or 8) / dac_bits)
    return len(input_cycles(codes.qmin, codes.qmax, dac_bits))


def exact_adc_bits(mapping: LayerMapping, dac_bits: int) -> int:
    """The ADC resolution at which the largest partial sum of the layer is converted exactly."""
    worst = max(mapping.rows_used, default=1) * (2 ** mapping.spec.cell_bits - 1) * (2 ** dac_bits - 1)
    return worst.bit_length() + 1


def conductance_sum(mapping: LayerMapping, device: DeviceModel) -> float:
    """Sum of the programmed target conductances of the layer's cells, in siemens."""
    spec, slices = mapping.spec, mapping.slices
    levels = 0
    if spec.signed == "differential":  # zeros hold level 0, so every nonzero weight counts once
        codes = mapping.layer.matrices.flatten()
        low = int(codes.min()) if codes.numel() else 0
        counts = torch.bincount(codes.to(torch.int32) - low)          # of each code low, low + 1, ...
        magnitudes = (torch.arange(len(counts)) + low).abs()
        per_value = slice_levels(magnitudes, slices, spec.cell_bits).sum(dim=1)
        levels = int((counts * per_value).sum())
    for part in sliced_matrices(mapping) if spec.signed == "offset" else ():
        for p in mapping.pieces:
            block = part[p.group][p.row_pos:p.row_pos + len(p.rows),
                                  p.out_pos * slices:(p.out_pos + len(p.outputs)) * slices]
            levels += int(block.sum(dtype=torch.int64))
    reference = int(slice_levels(torch.tensor([mapping.offset]), slices, spec.cell_bits).sum())
    levels += reference * sum(mapping.rows_used)
    step = (device.g_max - device.g_min) / (2 ** spec.cell_bits - 1)
    return (mapping.cells * device.g_min + levels * step) * 1e-6


def crossbar_layer(mapping: LayerMapping, device: DeviceModel, costs: CostParameters, dac_bits: int,
                   adc_bits: int, input_bits: int | None) -> LayerEstimate:
    node = mapping.layer.node
    n, s = vectors_of(mapping), cycles_of(mapping, dac_bits, input_bits)
    bits = adc_bits or exact_adc_bits(mapping, dac_bits)
    adc_cols = sum(len(p.outputs) * mapping.slices for p in mapping.pieces)
    rows = sum(mapping.rows_used)
    conversions = n * s * adc_cols
    outputs = node.outputs[0].type.numel
    digital_ops = 2 * outputs
    in_bytes = math.ceil((input_bits or 8) / 8)
    spec = mapping.spec
    energy = {
        "cell_read": costs.read_voltage ** 2 * costs.read_pulse * conductance_sum(mapping, device)
        * n * s * costs.input_activity,
        "dac": n * s * rows * costs.dac_energy(dac_bits),
        "adc": conversions * costs.adc_energy(bits),
        "shift_add": conversions * costs.shift_add_energy,
        "digital": digital_ops * costs.digital_op_energy,
        "buffer": (n * rows * in_bytes + outputs * 4) * costs.buffer_energy_per_byte,
    }
    adcs = mapping.tiles * math.ceil(spec.cols / costs.columns_per_adc)
    area = {"cells": mapping.tiles * spec.rows * spec.cols * costs.cell_area,
            "adc": adcs * (costs.adc_area(bits) + costs.shift_add_area),
            "dac": mapping.tiles * spec.rows * costs.dac_area(dac_bits)}
    latency = n * s * costs.tile_time(bits) + digital_ops / (costs.digital_lanes * costs.clock_hz)
    return LayerEstimate(node.name, node.op, "crossbar", energy, latency, area, n, s, conversions, digital_ops)


def digital_node(node: Node, costs: CostParameters, input_bits: int | None) -> LayerEstimate | None:
    opdef = get_op(node.op)
    if opdef.has(Trait.SHAPE_ONLY):
        return None
    outs = sum(v.type.numel for v in node.outputs)
    macs = opdef.macs([v.type if v is not None else None for v in node.inputs], [v.type for v in node.outputs],
                      node.attrs)
    ops = max(outs, macs)
    moved = sum(v.type.numel for v in node.inputs if v is not None and v.data is None) + outs
    energy = {"digital": macs * costs.digital_mac_energy + (ops - macs) * costs.digital_op_energy,
              "buffer": moved * math.ceil((input_bits or 8) / 8) * costs.buffer_energy_per_byte}
    return LayerEstimate(node.name, node.op, "digital", energy, ops / (costs.digital_lanes * costs.clock_hz),
                         ops=ops)


def estimate(graph: Graph, mappings: dict[Node, LayerMapping], device: DeviceModel, *, dac_bits: int,
             adc_bits: int, input_bits: int | None, absorbed: set[Node],
             costs: CostParameters | None = None) -> list[LayerEstimate]:
    """One estimate per mapped layer and per digital node, in graph order."""
    costs = costs or CostParameters()
    rows = []
    for node in graph.nodes:
        if node in mappings:
            rows.append(crossbar_layer(mappings[node], device, costs, dac_bits, adc_bits, input_bits))
        elif node not in absorbed:
            row = digital_node(node, costs, input_bits)
            if row is not None:
                rows.append(row)
    return rows


def totals(rows: list[LayerEstimate]) -> dict:
    energy = {c: sum(r.energy.get(c, 0.0) for r in rows) for c in COMPONENTS}
    area: dict[str, float] = {}
    for r in rows:
        for k, v in r.area.items():
            area[k] = area.get(k, 0.0) + v
    return {"energy_j": energy, "energy_total_j": sum(energy.values()),
            "latency_s": sum(r.latency for r in rows), "area_m2": area, "area_total_mm2": sum(area.values()) * 1e6,
            "adc_conversions": sum(r.conversions for r in rows)}
