"""Which IR nodes become which dataflow stage: support check, fusion and fan-out.

The integer graph (docs/integer-form.md) maps onto stages like this:

* `quantize` of a graph input and `dequantize` of a graph output: the design's boundary (the
  testbench converts floats to codes and back, exactly as the ops define);
* `int_conv`, `int_linear`, `max_pool`, `reduce_sum` (spatial), `add`, `concat` (channels):
  one stage each (a conv or linear is a window generator plus a matrix-vector unit);
* `requantize` and `maximum`/`minimum` with a constant: fused into the stage producing their input
  when they are its only reader (an epilogue), else into the add / concat they feed (a prologue),
  else their own pointwise stage;
* `reshape`, `permute`, `slice`, `expand` and edge padding (`pad` replicate / reflect): nothing
  when the stream order does not change, folded into the next linear layer's weights for a
  flatten, else a reorder stage (block convolution's cut into blocks and stitch back are two);
* an edge `pad` read only by an unpadded `int_conv` (block convolution's replicate / reflect
  blocks): part of that convolution's window generator, which reads the edge it copies;
* anything else (a float island, attention's int_matmul, a softmax) has no stage: every such node
  is listed in one error with its source location.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from compiler.errors import BackendError
from compiler.ir import Graph, Node, Value
from compiler.tiling import EDGE_PADDING

ANCHORS = frozenset({"int_conv", "int_linear", "max_pool", "reduce_sum", "add", "concat"})
ELEMENTWISE = frozenset({"requantize", "maximum", "minimum"})
SHAPE = frozenset({"reshape", "permute", "slice", "expand"})


def moves(node: Node) -> bool:
    """Whether the node only moves elements: a shape op, or padding that copies the edge."""
    return node.op in SHAPE or (node.op == "pad" and node.attrs["mode"] in EDGE_PADDING)


def edge_pad(conv: Node) -> Node | None:
    """The edge `pad` the convolution's window generator takes over: spatial, symmetric, read only
    by this unpadded convolution (how block-conv pads blocks with replicate or reflect)."""
    pad = conv.inputs[0].producer
    if pad is None or pad.op != "pad" or pad.attrs["mode"] not in EDGE_PADDING or pad.output.users != [conv]:
        return None
    p = list(pad.attrs["pads"])
    symmetric = len(p) == 4 and p[0] == p[1] and p[2] == p[3]
    return pad if symmetric and not any(conv.attrs["padding"]) and streamed(pad.inputs[0]) else None


def streamed(v: Value) -> bool:
    """Whether a value can be a stream: an integer tensor [B, C, H, W] or [B, F]."""
    return v.data is None and not v.dtype.is_floating_point and v.rank in (2, 4)


def _constant_operand(node: Node) -> Value | None:
    consts = [v for v in node.inputs if v is not None and v.data is not None]
    return consts[0] if len(consts) == 1 else None


def _per_channel_ok(t, v: Value) -> bool:
    """A constant that is one value, or one per channel of `v` broadcast along axis 1."""
    if t.numel() == 1:
        return True
    shape = [1] * v.rank
    shape[1] = v.shape[1]
    return list(t.shape) in (shape, shape[1:], [v.shape[1]])


def why_unsupported(node: Node, graph: Graph) -> str | None:
    """The reason a node has no HLS stage, or None."""
    op, ins = node.op, [v for v in node.inputs if v is not None]
    streams = [v for v in ins if v.data is None]
    if op == "quantize":
        if node.inputs[0] not in graph.inputs:
            return "a quantize inside the graph ends a float island, which has no integer stage"
        if sum(u.op == "quantize" for u in node.inputs[0].users) > 1:
            return f"graph input %{node.inputs[0].name} is quantized more than once (one design input each)"
        return None if node.attrs["axis"] in (None, 1) else "per-channel quantization along a non-channel axis"
    if op == "dequantize":
        if node.output not in graph.outputs or not streamed(node.inputs[0]):
            return "a dequantize inside the graph starts a float island, which has no integer stage"
        return None if node.attrs["axis"] in (None, 1) else "per-channel dequantization along a non-channel axis"
    if moves(node) and not node.inputs[0].dtype.is_floating_point:
        inner_in = node.inputs[0].producer is not None and moves(node.inputs[0].producer)
        inner_out = node.output.users and all(moves(u) for u in node.output.users)
        if (streamed(node.inputs[0]) or inner_in) and (streamed(node.output) or inner_out):
            return None     # a chain of shape ops needs streams at its two ends only
    if not streams or not all(streamed(v) for v in streams) or not all(streamed(v) for v in node.outputs):
        kind = "float" if any(v.dtype.is_floating_point for v in ins + node.outputs) else "integer"
        return f"no HLS stage for {op} on {kind} tensors of rank {[v.rank for v in streams] or '-'}"
    if op == "int_conv":
        if len(node.attrs["stride"]) != 2:
            return f"only 2-d convolutions have a stage ({len(node.attrs['stride'])}-d given)"
        return None if len(node.inputs) < 4 or node.inputs[3] is None or node.inputs[3].data.numel() == 1 else \
            "per-channel input zero points"
    if op == "int_linear":
        return None
    if op == "max_pool":
        a = node.attrs
        return None if len(a["kernel"]) == 2 and not a["ceil_mode"] else "only 2-d max pooling without ceil_mode"
    if op == "reduce_sum":
        dims = sorted(d % 4 for d in node.attrs["dims"]) if node.inputs[0].rank == 4 else []
        return None if dims == [2, 3] else "only a sum over both spatial dims (a global average pool)"
    if op == "add":
        return None if len(streams) == 2 and streams[0].shape == streams[1].shape else \
            "only an add of two streams of one shape (no broadcasting, no constant)"
    if op == "concat":
        return None if node.attrs["dim"] % node.output.rank == 1 and len(streams) == len(ins) else \
            "only a concat along channels"
    if op == "requantize":
        axis = node.attrs["axis"]
        return None if axis is None or axis % node.output.rank == 1 else "per-channel parameters along a non-channel axis"
    if op in ("maximum", "minimum"):
        const = _constant_operand(node)
        return None if const is not None and _per_channel_ok(const.data, node.output) else \
            f"only {op} with a per-tensor or per-channel constant"
    return f"no HLS stage for {op}"


def check_supported(graph: Graph) -> None:
    """One error naming every node without a stage, with its source location."""
    problems = []
    for node in graph.nodes:
        reason = why_unsupported(node, graph)
        if reason is not None:
            where = f" at {node.source}" if node.source else ""
            problems.append(f"  {node.op} '{node.name}'{where}: {reason}")
    for v in graph.outputs:
        if v.producer is None or (v.producer.op != "dequantize" and not streamed(v)):
            problems.append(f"  output %{v.name}: not computed by the integer form")
    if problems:
        raise BackendError(f"{len(problems)} node(s) of graph '{graph.name}' have no HLS stage:\n" + "\n".join(problems),
                           hint="the HLS backend implements the integer form (fold-bn, quantize{...}, integerize); "
                                "float islands (ops integerize leaves float) need an integer rule first, or give "
                                "the float model to target hls, which lowers it itself")


@dataclass(eq=False)
class Group:
    """The nodes one stage implements."""

    anchor: Node | None                         # None: a pointwise or reorder group
    kind: str                                   # an anchor op, "pointwise" or "reorder"
    inputs: list[Value]
    epilogue: list[Node] = field(default_factory=list)
    shape_nodes: list[Node] = field(default_factory=list)
    prologues: dict[int, list[Node]] = field(default_factory=dict)
    flatten: Value | None = None                 # an int_linear reading this [B, C, H, W] value flattened
    pad: Node | None = None                      # the edge pad an int_conv's window generator does

    @property
    def output(self) -> Value:
        last = (self.epilogue or self.shape_nodes or [self.anchor])[-1]
        return last.output

    @property
    def nodes(self) -> list[Node]:
        pro = [n for ops in self.prologues.values() for n in ops] + ([self.pad] if self.pad else [])
        return pro + ([self.anchor] if self.anchor else []) + self.shape_nodes + self.epilogue


@dataclass
class Plan:
    groups: list[Group]
    design_inputs: list[Node]                   # the quantize nodes at the boundary
    design_outputs: list[tuple[Value, Node | None]]   # (integer value, dequantize or None)
    readers: dict[Value, int] = field(default_factory=dict)   # stream value -> stage inputs + outputs reading it


def plan_groups(graph: Graph) -> Plan:
    check_supported(graph)
    inputs = [n for n in graph.nodes if n.op == "quantize"]
    outputs = [(v.producer.inputs[0], v.producer) if v.producer.op == "dequantize" else (v, None) for v in graph.outputs]
    out_values = {v for v, _ in outputs}
    owner: dict[Value, Group] = {}
    groups: list[Group] = []

    def sole_reader(v: Value, node: Node) -> bool:
        return v.users == [node] and v not in out_values

    absorbed = {edge_pad(n) for n in graph.nodes if n.op == "int_conv"} - {None}
    for node in graph.nodes:
        if node.op in ("quantize", "dequantize") or node in absorbed:
            continue
        if node.op in ELEMENTWISE or moves(node):
            src = next(v for v in node.inputs if v is not None and v.data is None)
            g = owner.get(src)
            fuse = g is not None and g.output is src and sole_reader(src, node)
            if moves(node):
                fuse = fuse and g.kind == "reorder" and not g.epilogue
            if fuse:
                (g.shape_nodes if moves(node) else g.epilogue).append(node)
            else:
                g = Group(None, "reorder" if moves(node) else "pointwise", [src])
                (g.shape_nodes if moves(node) else g.epilogue).append(node)
                groups.append(g)
            owner[node.output] = g
            continue
        pad = edge_pad(node) if node.op == "int_conv" else None
        first = pad.inputs[0] if pad is not None else None
        g = Group(node, node.op, [first] if first is not None else
                  [v for v in node.inputs[:1 if node.op in ("int_conv", "int_linear") else None]
                   if v is not None and v.data is None], pad=pad)
        groups.append(g)
        owner[node.output] = g
    groups = _into_prologues(groups, owner, out_values)
    groups = _absorb_flattens(groups, owner, out_values)
    plan = Plan(groups, inputs, outputs)
    for g in groups:
        for v in g.inputs:
            plan.readers[v] = plan.readers.get(v, 0) + 1
    for v, _ in outputs:
        plan.readers[v] = plan.readers.get(v, 0) + 1
    return plan


def _into_prologues(groups: list[Group], owner: dict[Value, Group], out_values: set) -> list[Group]:
    """A pointwise group whose only reader is an add or concat becomes that stage's prologue."""
    keep = []
    for g in groups:
        users = g.output.users
        if g.kind == "pointwise" and len(users) == 1 and users[0].op in ("add", "concat") \
                and g.output not in out_values and users[0].inputs.count(g.output) == 1:
            consumer = owner[users[0].output]
            i = consumer.inputs.index(g.output)
            consumer.inputs[i] = g.inputs[0]
            consumer.prologues[i] = g.epilogue + consumer.prologues.get(i, [])
            continue
        keep.append(g)
    return keep


def _is_flatten(g: Group) -> bool:
    src, out = g.inputs[0], g.output
    return (g.kind == "reorder" and not g.epilogue and [n.op for n in g.shape_nodes] == ["reshape"]
            and src.rank == 4 and out.rank == 2 and out.shape == (src.shape[0], src.type.numel // src.shape[0]))


def _absorb_flattens(groups: list[Group], owner: dict[Value, Group], out_values: set) -> list[Group]:
    """A flatten read only by linear layers disappears: they read the frame in stream order."""
    keep = []
    for g in groups:
        users = g.output.users
        if _is_flatten(g) and g.output not in out_values and users and all(u.op == "int_linear" for u in users):
            for u in users:
                linear = next(c for c in groups if c.anchor is u)
                linear.inputs = [g.inputs[0]]
                linear.flatten = g.inputs[0]
            continue
        keep.append(g)
    return keep
