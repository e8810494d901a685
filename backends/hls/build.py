"""The dataflow design of an integer graph: stages, streams and the design's boundary.

`build_design` turns the groups of plan.py into stage objects (stages/), gives every stream the
narrowest type of its proven range (ranges.py), copies a value read by several stages with a
`Dup`, and records how the testbench converts the graph's float inputs and outputs. `size_fifos`
sets FIFO depths once the folding is known: a branch that reaches an add or concat early must
hold what it sends while the other branch fills its line buffers.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch

from backends.hls.plan import Group, Plan, plan_groups
from backends.hls.ranges import CONTAINER, Interval, centred_weight_matrix
from backends.hls.stages import (Add, Concat, Dup, Elementwise, Geometry, GlobalSum, LineBufferWindow,
                                 MaxPool, Pointwise, Port, Reorder, Splitter, Stage, matrix_unit)
from backends.hls.types import IntType
from compiler.errors import BackendError
from compiler.ir import Graph, Node, Value
from compiler.ops import get_op
from compiler.tiling import TilingAnnotation


@dataclass
class Boundary:
    """A design input (float -> codes by its quantize) or output (codes -> float by its dequantize)."""

    port: Port
    value: Value                     # the graph's input or output value
    node: Node | None                # the quantize / dequantize (None: an integer output as it is)
    scale: list[float] = field(default_factory=list)   # one, or one per channel
    zero_point: list[int] = field(default_factory=lambda: [0])
    qmin: int = 0
    qmax: int = 0
    order: list[int] | None = None   # per port stream element, its flat [C, H, W] index (None: raster order)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape[1:])


@dataclass
class Design:
    name: str
    graph: Graph
    stages: list[Stage]
    inputs: list[Boundary]
    outputs: list[Boundary]
    ranges: dict[Value, Interval]
    warnings: list[str] = field(default_factory=list)


def c_ident(name: str) -> str:
    ident = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_") or "v"
    return f"v_{ident}" if ident[0].isdigit() else ident


class _Names:
    def __init__(self) -> None:
        self.taken: set[str] = {"in", "out", "top"}

    def __call__(self, hint: str) -> str:
        base = c_ident(hint)
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}_{i}", i + 1
        self.taken.add(name)
        return name


def _channels(t: torch.Tensor | None) -> list:
    return [0] if t is None else t.reshape(-1).tolist()


class _Builder:
    def __init__(self, graph: Graph, ranges: dict[Value, Interval]):
        self.graph, self.ranges = graph, ranges
        self.batch = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].rank else 1
        self.names = _Names()
        self.stages: list[Stage] = []
        self.readers: dict[Value, list[Port]] = {}

    # ---- types and ports ----------------------------------------------------------------
    def type_of(self, v: Value) -> IntType:
        r = self.ranges[v]
        lo, hi = CONTAINER[v.dtype]
        return IntType.covering(max(r.lo, lo), min(r.hi, hi))

    def blocks(self, v: Value) -> int:
        """Blocks per frame: a value of block convolution is a batch of blocks per sample."""
        return blocks_per_sample(v, self.batch)

    def new_port(self, v: Value, hint: str | None = None) -> Port:
        h, w, c = (v.shape[2], v.shape[3], v.shape[1]) if v.rank == 4 else (1, 1, v.shape[1])
        return Port(self.names(hint or v.name), h, w, c, self.type_of(v), value=v.name, blocks=self.blocks(v))

    def publish(self, v: Value, port: Port, readers: int) -> None:
        """Make `port` (carrying v) available to its readers, through a Dup when there are several."""
        if readers <= 1:
            self.readers[v] = [port]
            return
        outs = [Port(self.names(f"{port.name}_{i}"), port.height, port.width, port.channels, port.elem, port.value,
                     blocks=port.blocks) for i in range(readers)]
        self.stages.append(Dup(self.names(f"{port.name}_dup"), (), [port], outs))
        self.readers[v] = list(outs)

    def take(self, v: Value) -> Port:
        return self.readers[v].pop(0)

    def ops(self, nodes: list[Node], channels: int) -> list[Elementwise]:
        out = []
        for n in nodes:
            src = next(v for v in n.inputs if v is not None and v.data is None)
            out.append(Elementwise.of(n, self.type_of(src), self.type_of(n.output), channels))
        return out

    # ---- stages ---------------------------------------------------------------------------
    def group(self, g: Group, readers: int) -> None:
        name = self.names(self._stage_name(g))
        ins = [self.take(v) for v in g.inputs]
        out = self.new_port(g.output)
        channels = g.output.shape[1]
        epilogue = self.ops(g.epilogue, channels)
        node = g.anchor
        if g.kind in ("int_conv", "int_linear"):
            self.layer(name, g, ins[0], out, epilogue)
        elif g.kind == "max_pool":
            a, x = node.attrs, g.inputs[0]
            geo = Geometry(x.shape[2], x.shape[3], x.shape[1], x.shape[1], tuple(a["kernel"]), tuple(a["stride"]),
                           tuple(a["padding"]), tuple(a["dilation"]), blocks=self.blocks(x))
            check_tiling(node, geo)
            self.stages.append(MaxPool(name, tuple(g.nodes), ins, [out], geometry=geo, epilogue=epilogue))
        elif g.kind == "reduce_sum":
            x = g.inputs[0]
            self.stages.append(GlobalSum(name, tuple(g.nodes), ins, [out], pixels=x.shape[2] * x.shape[3],
                                         sum_type=self.type_of(node.output), epilogue=epilogue))
        elif g.kind in ("add", "concat"):
            prologues = [self.ops(g.prologues.get(i, []), v.shape[1]) for i, v in enumerate(g.inputs)]
            cls, key = (Add, "sum_type") if g.kind == "add" else (Concat, "value_type")
            self.stages.append(cls(name, tuple(g.nodes), ins, [out], epilogue=epilogue, prologues=prologues,
                                   **{key: self.type_of(node.output)}))
        elif g.kind == "pointwise":
            self.stages.append(Pointwise(name, tuple(g.nodes), ins, [out], epilogue=epilogue))
        else:
            gather = stream_order_map(g.shape_nodes, g.inputs[0], g.shape_nodes[-1].output, self.batch)
            self.stages.append(Reorder(name, tuple(g.nodes), ins, [out], gather=gather, epilogue=epilogue))
        self.publish(g.output, out, readers)

    def _stage_name(self, g: Group) -> str:
        node = g.anchor or (g.shape_nodes or g.epilogue)[0]
        return node.name.removesuffix(".int").removesuffix(".requant")

    def layer(self, name: str, g: Group, inp: Port, out: Port, epilogue: list[Elementwise]) -> None:
        node, x = g.anchor, g.inputs[0]
        layout = get_op(node.op).layout
        w = centred_weight_matrix(node)
        rows = w.shape[0]
        if node.op == "int_conv":
            a, (kh, kw) = node.attrs, layout.weight_value(node).shape[2:]
            padding, edge = tuple(a["padding"]), "zeros"
            if g.pad is not None:      # an edge pad the window generator reads the edge for
                pads, edge = g.pad.attrs["pads"], g.pad.attrs["mode"]
                padding = (pads[2], pads[0])
            geo = Geometry(x.shape[2], x.shape[3], x.shape[1], rows, (kh, kw), tuple(a["stride"]),
                           padding, tuple(a["dilation"]), a["groups"], blocks=self.blocks(x), edge=edge)
            check_tiling(node, geo)
            w = w.reshape(rows, -1, kh, kw).permute(0, 2, 3, 1).reshape(rows, -1)
        elif g.flatten is not None:
            c, h, wd = x.shape[1:]
            geo = Geometry(h, wd, c, rows, (h, wd), flatten=True)
            w = w.reshape(rows, c, h, wd).permute(0, 2, 3, 1).reshape(rows, -1)
        else:
            geo = Geometry(1, 1, x.shape[1], rows)
        xz_t = node.inputs[3].data if len(node.inputs) > 3 and node.inputs[3] is not None else None
        xz = int(xz_t.reshape(-1)[0]) if xz_t is not None else 0
        xr = self.ranges[x]
        # sum (x - xz) w = sum (x - offset) w + (offset - xz) sum w: with the offset at the lowest code,
        # the window operand is unsigned and the zero point lives in the bias
        offset = min(xr.lo, 0)
        bias = layout.bias_value(node).data.to(torch.int64) if layout.bias_value(node) is not None else None
        if offset != xz:
            bias = (bias if bias is not None else torch.zeros(rows, dtype=torch.int64)) + (offset - xz) * w.sum(1)
        start = bias if bias is not None else torch.zeros(rows, dtype=torch.int64)
        span = xr.hi - offset
        acc_lo = int((start + w.clamp(max=0).sum(1) * span).min())
        acc_hi = int((start + w.clamp(min=0).sum(1) * span).max())
        box = CONTAINER[node.output.dtype]
        wname = self.names(f"{name}_{'split' if geo.in_stream_order else 'window'}")
        link = Port(self.names(f"{name}_windows"), 1, 1, 1, inp.elem)
        cls, sparse = matrix_unit(layout.weight_value(node), geo)   # SparseMVU where the weight is annotated
        mvu = cls(name, tuple(g.nodes), [link], [out], geometry=geo, weights=w.contiguous(), bias=bias,
                  x_offset=offset, x_type=IntType.covering(0, span),
                  w_type=IntType.covering(int(w.min()), int(w.max())),
                  acc_type=IntType.covering(max(acc_lo, box[0]), min(acc_hi, box[1])), acc_range=(acc_lo, acc_hi),
                  epilogue=epilogue, **sparse)
        window = (Splitter(wname, (node,), [inp], [link], geometry=geo) if geo.in_stream_order else
                  LineBufferWindow(wname, (node,), [inp], [link], geometry=geo, pad_code=xz))
        mvu.window_stage = window
        self.stages += [window, mvu]


def blocks_per_sample(v: Value, batch: int) -> int:
    return v.shape[0] // batch if v.rank == 4 and batch and v.shape[0] % batch == 0 else 1


def check_tiling(node: Node, geo: Geometry) -> None:
    """A layer's `TilingAnnotation` (block-conv) must describe the blocks its input holds."""
    tiling = node.annotation(TilingAnnotation)
    if tiling is None:
        return
    if tiling.blocks != geo.blocks or tuple(tiling.block) != (geo.height, geo.width):
        raise BackendError(f"layer '{node.name}' is annotated with {tiling.grid[0]}x{tiling.grid[1]} blocks of "
                           f"{tiling.block[0]}x{tiling.block[1]}, but its input holds {geo.blocks} block(s) of "
                           f"{geo.height}x{geo.width}", where=node.source,
                           hint="the graph was changed after block-conv; run block-conv again on the changed graph")


def stream_order_map(nodes: list[Node], src: Value, dst: Value, batch: int) -> torch.Tensor:
    """For each element of `dst` in stream order, the stream-order element of `src` it copies."""
    t = torch.arange(src.type.numel, dtype=torch.int64).reshape(src.shape)
    for n in nodes:
        t = get_op(n.op).run([t] + [v.data if v is not None else None for v in n.inputs[1:]], n.attrs)[0]
    per_sample = src.type.numel // batch
    first = t[:t.shape[0] // batch].reshape(-1)
    if int(first.min()) < 0 or int(first.max()) >= per_sample:
        raise BackendError(f"'{nodes[0].name}' mixes the samples of a batch; a stage sees one sample at a time",
                           where=nodes[0].source)
    return to_stream_order(src, batch)[first][from_stream_order(dst, batch)]


def from_stream_order(v: Value, batch: int) -> torch.Tensor:
    """For each stream position of one sample of v, its flat index in [blocks, C, H, W] order
    (the stream is the blocks one after another, each pixel by pixel, channels innermost)."""
    shape = (blocks_per_sample(v, batch),) + tuple(v.shape[1:]) if v.rank == 4 else tuple(v.shape[1:])
    idx = torch.arange(math.prod(shape), dtype=torch.int64).reshape(shape)
    return (idx.permute(0, 2, 3, 1) if len(shape) == 4 else idx).reshape(-1)


def to_stream_order(v: Value, batch: int) -> torch.Tensor:
    """For each flat [blocks, C, H, W] index of one sample of v, its stream position."""
    order = from_stream_order(v, batch)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel(), dtype=torch.int64)
    return inverse


def build_design(graph: Graph, ranges: dict[Value, Interval], host_reorder: bool = False) -> Design:
    """The design of an integer graph. `host_reorder`: a reorder right behind a design input or in
    front of an output (block-conv's cut and stitch, a transpose) becomes the port's element order,
    which the host (and the testbench) applies, instead of a stage."""
    plan = plan_groups(graph)
    b = _Builder(graph, ranges)
    to_host = _host_reorders(plan, b.batch) if host_reorder else {}
    inputs = []
    for q in plan.design_inputs:
        zp = q.inputs[2].data if len(q.inputs) > 2 and q.inputs[2] is not None else None
        moved = to_host.get(q.output)
        value, order = (moved[0].output, moved[1]) if moved else (q.output, None)
        port = b.new_port(value, f"{q.inputs[0].name}_codes")
        inputs.append(Boundary(port, q.inputs[0], q, [float(s) for s in _channels(q.inputs[1].data)],
                               [int(z) for z in _channels(zp)], q.attrs["qmin"], q.attrs["qmax"], order))
        b.publish(value, port, plan.readers.get(value, 0))
    moved_groups = {id(g) for g, _ in to_host.values()}
    for g in plan.groups:
        if id(g) not in moved_groups:
            b.group(g, plan.readers.get(g.output, 0))
    outputs = []
    for (v, deq), graph_out in zip(plan.design_outputs, graph.outputs):
        moved = to_host.get(v)
        port, order = (b.take(moved[0].inputs[0]), moved[1]) if moved else (b.take(v), None)
        if deq is None:
            outputs.append(Boundary(port, graph_out, None, order=order))
            continue
        zp = deq.inputs[2].data if len(deq.inputs) > 2 and deq.inputs[2] is not None else None
        outputs.append(Boundary(port, graph_out, deq, [float(s) for s in _channels(deq.inputs[1].data)],
                                [int(z) for z in _channels(zp)], order=order))
    for i, stage in enumerate(b.stages):
        stage.index = i
    return Design(graph.name, graph, b.stages, inputs, outputs, ranges)


def _host_reorders(plan: Plan, batch: int) -> dict[Value, tuple[Group, list[int]]]:
    """The reorders next to the design's ports, keyed by the port's IR value: (group, for each
    element of the port's stream, its flat [C, H, W] index in the graph's input / output sample)."""
    found: dict[Value, tuple[Group, list[int]]] = {}
    starts = {q.output for q in plan.design_inputs}
    ends = {v for v, _ in plan.design_outputs}
    for g in plan.groups:
        if g.kind != "reorder" or g.epilogue:
            continue
        src, dst = g.inputs[0], g.output
        if src in starts and plan.readers.get(src) == 1:
            gather = stream_order_map(g.shape_nodes, src, dst, batch)
            found[src] = g, from_stream_order(src, batch)[gather].tolist()
        elif dst in ends and plan.readers.get(dst) == 1 and plan.readers.get(src) == 1 and src not in starts:
            gather = stream_order_map(g.shape_nodes, src, dst, batch)
            if gather.numel() == src.type.numel // batch and torch.equal(gather.sort().values, torch.arange(gather.numel())):
                found[dst] = g, from_stream_order(dst, batch)[torch.argsort(gather)].tolist()
    return found


def size_fifos(design: Design) -> None:
    """FIFO depths of streams that meet at an add or concat: the lead of the late branch, in words
    of the early one (the fraction of a frame each stage reads before its first output, summed)."""
    arrival: dict[int, float] = {id(b.port): 0.0 for b in design.inputs}
    for stage in design.stages:
        start = max((arrival.get(id(p), 0.0) for p in stage.inputs), default=0.0)
        for p in stage.outputs:
            arrival[id(p)] = start + stage.lead()
        if isinstance(stage, (Add, Concat)) and len(stage.inputs) > 1:
            latest = max(arrival.get(id(p), 0.0) for p in stage.inputs)
            for p in stage.inputs:
                p.depth = max(2, min(p.words + 2, math.ceil((latest - arrival.get(id(p), 0.0)) * p.words) + 2))
