"""Rewrite a planned graph so its blocked layers really run block by block, with existing ops.

A map [N, C, H, W] cut into a grid of blocks is held as a batch of blocks [N*gh*gw, C, bh, bw]
(`cut`: reshape, permute, reshape; `stitch` undoes it). A blocked convolution then is `pad`
(replicate or reflect; zeros stay the convolution's own padding) and the convolution with the
batch of blocks as its input, so every block is padded and convolved on its own; a blocked
pooling layer is the pooling op on the batch of blocks.

Values stay in the blocked layout as long as their consumers allow it, so a chain of layers is
cut once and stitched once: ops that work per position and channel (activations, BatchNorm,
elementwise arithmetic with per-channel or scalar operands, channel concat/split/slice, per-tensor
or per-channel fake-quant) run on the batch of blocks as they are. Everything else reads the
stitched map, and a layer whose grid differs from its input's is fed a re-cut map.
"""
from __future__ import annotations

import dataclasses

from compiler.ir import Graph, Node, TensorType, Value
from compiler.ops import Trait, get_op
from compiler.tiling import TilingAnnotation
from passes.block_conv.geometry import Decision, Tiling, block_pads

# ops that see one position and the channels, with their channel-axis attribute (if any)
_CHANNEL_WISE = {"batch_norm": None, "fake_quant": "axis", "concat": "dim", "split": "dim", "slice": "dim"}


@dataclasses.dataclass
class _Blocked:
    tiling: Tiling
    plain: TensorType  # the value's type as a whole map


class Rewriter:
    """One rewrite of one graph; `run` returns how many cut/stitch conversions it inserted."""

    def __init__(self, graph: Graph, decisions: dict[Node, Decision], padding: str, groups: dict[Node, int]):
        self.graph, self.decisions, self.padding, self.groups = graph, decisions, padding, groups
        self.blocked: dict[Value, _Blocked] = {}
        self.memo: dict[tuple[Value, Tiling | None], Value] = {}
        self.conversions = 0

    def run(self) -> int:
        for node in list(self.graph.nodes):
            decision = self.decisions.get(node)
            if decision is not None and decision.blocked:
                self._block_layer(node, decision)
            elif node.inputs and node.inputs[0] in self.blocked and \
                    (scale := upsampling(node, self.blocked[node.inputs[0]].plain)) is not None:
                self._upsample_blocks(node, scale)
            elif (tiling := self._channel_wise_tiling(node)) is not None:
                self._run_on_blocks(node, tiling)
            else:
                for i, v in enumerate(node.inputs):
                    if v in self.blocked:
                        self.graph.set_input(node, i, self._plain(v, node))
        self.graph.outputs = [self._plain(v, None) if v in self.blocked else v for v in self.graph.outputs]
        return self.conversions

    # ---- the three kinds of node ------------------------------------------------------------
    def _block_layer(self, node: Node, decision: Decision) -> None:
        x = self._tiled(node.inputs[0], decision.tiling_in, node)
        pads = block_pads(node)
        if self.padding != "zeros" and any(pads):
            x = self.graph.create_node("pad", [x], {"pads": (pads[1], pads[1], pads[0], pads[0]),
                                                    "mode": self.padding},
                                       name=f"{node.name}.pad", source=node.source, before=node).output
            node.attrs["padding"] = (0, 0)
        plain = node.outputs[0].type
        self.graph.set_input(node, 0, x)
        self._retype(node)
        self.blocked[node.outputs[0]] = _Blocked(decision.tiling_out, plain)
        node.annotate(TilingAnnotation(block=decision.tiling_in.block, grid=decision.tiling_in.grid,
                                       padding=self.padding if node.op == "conv" else "zeros",
                                       group=self.groups.get(node, -1)))

    def _run_on_blocks(self, node: Node, tiling: Tiling) -> None:
        plain = [out.type for out in node.outputs]
        for i in self._map_inputs(node):
            self.graph.set_input(node, i, self._tiled(node.inputs[i], tiling, node))
        self._retype(node)
        for out, t in zip(node.outputs, plain):
            self.blocked[out] = _Blocked(tiling, t)

    def _upsample_blocks(self, node: Node, scale: tuple[int, int]) -> None:
        """Each block upsampled on its own is the block of the upsampled map: the grid stays, the
        blocks grow by the factors (exact: no output pixel reads two blocks)."""
        held, plain = self.blocked[node.inputs[0]], node.outputs[0].type
        block = (held.tiling.block[0] * scale[0], held.tiling.block[1] * scale[1])
        if node.op == "resize":
            node.attrs["size"] = tuple(block)
        self._retype(node)
        self.blocked[node.outputs[0]] = _Blocked(Tiling(held.tiling.grid, block), plain)

    def _channel_wise_tiling(self, node: Node) -> Tiling | None:
        """The tiling a non-layer node can run on as it is, or None when it needs whole maps."""
        tilings = [self.blocked[v].tiling for v in node.inputs if v in self.blocked]
        if not tilings or any(out.rank != 4 for out in node.outputs):
            return None
        if node.op in _CHANNEL_WISE:
            axis_attr = _CHANNEL_WISE[node.op]
            axis = node.attrs[axis_attr] if axis_attr else 1
            per_block = node.op == "fake_quant" and node.attrs["block_size"]
            return None if per_block or (axis is not None and axis % 4 != 1) else tilings[0]
        if not get_op(node.op).has(Trait.ELEMENTWISE):
            return None
        shape = node.outputs[0].shape
        for v in node.inputs:
            if v is None or v in self.blocked or v.shape == shape:
                continue
            aligned = (1,) * (4 - v.rank) + tuple(v.shape) if v.rank <= 4 else None
            if aligned is None or aligned[0] != 1 or aligned[2] != 1 or aligned[3] != 1:
                return None  # broadcasts along batch or space: needs the whole map
        return tilings[0]

    def _map_inputs(self, node: Node) -> list[int]:
        """Inputs holding whole maps (the rest are per-channel or scalar operands)."""
        if node.op in ("batch_norm", "fake_quant"):
            return [0]
        out_shape = node.outputs[0].shape
        return [i for i, v in enumerate(node.inputs) if v is not None and
                (v in self.blocked or (v.rank == 4 and v.shape[-2:] == out_shape[-2:] and v.shape[-2:] != (1, 1)))]

    # ---- conversions --------------------------------------------------------------------------
    def _tiled(self, value: Value, tiling: Tiling, before: Node) -> Value:
        held = self.blocked.get(value)
        if held is not None and held.tiling == tiling:
            return value
        key = (value, tiling)
        if key not in self.memo:
            plain = self._plain(value, before) if held is not None else value
            self.memo[key] = self._cut(plain, tiling, before)
        return self.memo[key]

    def _plain(self, value: Value, before: Node | None) -> Value:
        key = (value, None)
        if key not in self.memo:
            self.memo[key] = self._stitch(value, self.blocked[value], before)
        return self.memo[key]

    def _cut(self, x: Value, tiling: Tiling, before: Node) -> Value:
        n, c, _, _ = x.shape
        (gh, gw), (bh, bw) = tiling.grid, tiling.block
        steps = [("reshape", {"shape": (n, c, gh, bh, gw, bw)}), ("permute", {"dims": (0, 2, 4, 1, 3, 5)}),
                 ("reshape", {"shape": (n * gh * gw, c, bh, bw)})]
        return self._chain(x, steps, f"{x.name}.blocks", before)

    def _stitch(self, x: Value, held: _Blocked, before: Node | None) -> Value:
        n, c, _, _ = held.plain.shape
        (gh, gw), (bh, bw) = held.tiling.grid, x.shape[-2:]
        steps = [("reshape", {"shape": (n, gh, gw, c, bh, bw)}), ("permute", {"dims": (0, 3, 1, 4, 2, 5)}),
                 ("reshape", {"shape": (n, c, gh * bh, gw * bw)})]
        return self._chain(x, steps, f"{x.name}.map", before)

    def _chain(self, x: Value, steps: list, name: str, before: Node | None) -> Value:
        self.conversions += 1
        source = x.producer.source if x.producer is not None else ""
        for i, (op, attrs) in enumerate(steps):
            x = self.graph.create_node(op, [x], attrs, name=name if i == len(steps) - 1 else f"{name}.{i}",
                                       source=source, before=before).output
        return x

    def _retype(self, node: Node) -> None:
        types = get_op(node.op).infer([None if v is None else v.type for v in node.inputs], node.attrs)
        for out, t in zip(node.outputs, types):
            out.type = t


def upsampling(node: Node, x: TensorType) -> tuple[int, int] | None:
    """The factors of an upsampling of the map `x` whose output pixels each read one input pixel:
    a transposed convolution whose kernel equals its stride (no padding, dilation or groups) or a
    nearest resize by whole factors. Such an op runs on blocks exactly; anything that mixes
    neighbours (bilinear) would change at block edges, so it gets whole maps."""
    a = node.attrs
    if len(x.shape) != 4:
        return None
    if node.op == "conv_transpose":
        kernel = tuple(node.inputs[1].shape[2:])
        plain = a["groups"] == 1 and not any(a["padding"]) and not any(a["output_padding"]) \
            and all(d == 1 for d in a["dilation"])
        return tuple(a["stride"]) if plain and len(kernel) == 2 and tuple(a["stride"]) == kernel else None
    if node.op == "resize" and a["mode"] in ("nearest", "nearest-exact") and len(a["size"]) == 2 \
            and all(s % n == 0 for s, n in zip(a["size"], x.shape[2:])):
        return a["size"][0] // x.shape[2], a["size"][1] // x.shape[3]
    return None


def rewrite(graph: Graph, decisions: dict[Node, Decision], padding: str, groups: dict[Node, int]) -> int:
    """Apply the decisions in place; returns the number of cut/stitch conversions inserted."""
    return Rewriter(graph, decisions, padding, groups).run()
