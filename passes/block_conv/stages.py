"""A graph as a sequence of stages, the unit the on-chip memory analysis schedules.

A stage is one layer (a node with a constant weight, or a pooling/resampling op) plus the nodes
that only post-process its result (activation, BatchNorm, residual add, concat, reshape): an
accelerator runs those in the layer's output path. Each glue node joins the stage of its latest
producer, so stage order is a topological order. What crosses stages is a feature map; its size
per frame comes from its shape and bit width (the value's QuantAnnotation when the graph is
quantized, 16 bits otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from compiler.ir import Graph, Node, Value
from compiler.ops import Trait, get_op
from compiler.quant.annotation import QuantAnnotation
from passes.block_conv.geometry import Decision

DEFAULT_BITS = 16
_RESAMPLING = ("max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool", "resize")


@dataclass
class Stage:
    index: int
    nodes: list[Node] = field(default_factory=list)
    layer: Node | None = None
    grid: tuple[int, int] = (1, 1)   # blocks its input is cut into (1x1: the whole map)
    weight_bytes: float = 0.0
    line_rows: int = 0               # input rows a line buffer keeps (kernel height - 1)
    line_bytes: float = 0.0          # its line buffer, in bytes per frame

    @property
    def name(self) -> str:
        return (self.layer or self.nodes[0]).name


@dataclass
class StageGraph:
    stages: list[Stage]
    stage_of: dict[Node, int]
    frames: int
    value_bits: dict[Value, float]
    edges: dict[Value, tuple[int, list[int]]]  # crossing value -> (producer stage or -1, consumer stages)
    outputs: set[Value]

    def bytes_of(self, value: Value) -> float:
        """Bytes of one frame of `value`."""
        return value.type.numel / self.frames * self.value_bits[value] / 8


def bits_of(value: Value) -> float:
    quant = value.annotation(QuantAnnotation)
    return quant.spec().storage_bits if quant is not None else DEFAULT_BITS


def is_layer(node: Node) -> bool:
    layout = get_op(node.op).layout
    if layout is not None:
        weight = layout.weight_value(node)
        return weight is not None and _constant_source(weight) is not None
    return node.op in _RESAMPLING


def _is_activation(value: Value | None) -> bool:
    return value is not None and value.data is None and _constant_source(value) is None


def _constant_source(value: Value) -> Value | None:
    """The constant behind a weight input, through a fake-quant of the weight."""
    while value.data is None and value.producer is not None and value.producer.op == "fake_quant":
        value = value.producer.inputs[0]
    return value if value.data is not None else None


def build_stages(graph: Graph, decisions: dict[Node, Decision]) -> StageGraph:
    stages: list[Stage] = []
    stage_of: dict[Node, int] = {}
    waiting: list[Node] = []  # glue reading only graph inputs: it runs in the next layer's input path
    for node in graph.nodes:
        if not any(_is_activation(v) for v in node.inputs):
            continue  # weight preparation (a fake-quant of a weight): part of its layer's weights
        producers = [stage_of[v.producer] for v in node.inputs
                     if v is not None and v.producer is not None and v.producer in stage_of]
        if not is_layer(node) and not producers:
            waiting.append(node)
            continue
        if is_layer(node):
            stages.append(Stage(len(stages), layer=node))
        stage = stages[-1] if is_layer(node) else stages[max(producers)]
        for early in waiting + [node]:
            stage.nodes.append(early)
            stage_of[early] = stage.index
        waiting = []
    if waiting:  # glue after no layer at all
        stages.append(Stage(len(stages), nodes=waiting))
        stage_of.update((n, len(stages) - 1) for n in waiting)
    frames = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].rank >= 2 else 1
    bits = {v: bits_of(v) for v in graph.values() if v.data is None}
    for stage in stages:
        _describe_layer(stage, decisions.get(stage.layer), frames, bits)
    edges: dict[Value, tuple[int, list[int]]] = {}
    for node in graph.nodes:
        for v in node.inputs:
            if not _is_activation(v):
                continue
            producer = stage_of[v.producer] if v.producer is not None else -1
            if producer != stage_of[node]:
                consumers = edges.setdefault(v, (producer, []))[1]
                if stage_of[node] not in consumers:
                    consumers.append(stage_of[node])
    outputs = {v for v in graph.outputs if v.data is None}
    for v in outputs:
        edges.setdefault(v, (stage_of[v.producer] if v.producer is not None else -1, []))
    return StageGraph(stages, stage_of, frames, bits, edges, outputs)


def _describe_layer(stage: Stage, decision: Decision | None, frames: int, bits: dict[Value, float]) -> None:
    node = stage.layer
    if node is None:
        return
    if decision is not None and decision.blocked and all(_positionwise(n) for n in stage.nodes if n is not node):
        stage.grid = decision.tiling_in.grid
    layout = get_op(node.op).layout
    if layout is not None:
        weight = layout.weight_value(node)
        stage.weight_bytes = sum(v.type.numel * bits_of(v) / 8 for v in (weight, layout.bias_value(node))
                                 if v is not None)
    x = node.inputs[0]
    if x.rank == 4 and x.data is None:
        kernel = _kernel_rows(node)
        per_row = x.shape[1] * x.shape[3] * bits[x] / 8
        stage.line_rows = kernel - 1
        stage.line_bytes = per_row * max(kernel - 1, 0) + x.shape[1] * kernel * kernel * bits[x] / 8
        if kernel > x.shape[2]:  # a global reduction keeps one accumulator per output element
            stage.line_bytes = node.outputs[0].type.numel / frames * bits[node.outputs[0]] / 8
    elif node.outputs[0].data is None:  # a dense layer keeps its accumulators
        stage.line_bytes = node.outputs[0].type.numel / frames * bits[node.outputs[0]] / 8


def _positionwise(node: Node) -> bool:
    """Whether a glue node computes each position of the map from that position alone (so a
    stage that contains it can still run block by block)."""
    opdef = get_op(node.op)
    return opdef.has(Trait.ELEMENTWISE) or opdef.has(Trait.SHAPE_ONLY) or node.op in ("batch_norm", "fake_quant")


def _kernel_rows(node: Node) -> int:
    """Input rows one output row reads: the dilated kernel height (a whole map for global ops)."""
    if node.op == "conv":
        w = node.inputs[1]
        return node.attrs["dilation"][0] * (w.shape[2] - 1) + 1
    if node.op in ("max_pool", "avg_pool"):
        dilation = node.attrs.get("dilation", (1, 1))
        return dilation[0] * (node.attrs["kernel"][0] - 1) + 1
    if node.op == "resize":
        return 2
    if node.op == "conv_transpose":
        return max(1, node.inputs[1].shape[2] // node.attrs["stride"][0])
    return node.inputs[0].shape[2] + 1  # adaptive pooling: the whole map
