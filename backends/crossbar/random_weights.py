"""Random-weight networks on resistive memory: fixed random conductances, trained topology or readout.

The seed works program nothing: electroforming leaves every cell at a random conductance, and
the network is trained around those fixed values (arXiv 2311.07164: pruning edges of a random
network on a 40 nm ReRAM macro, pruning an edge = RESET of its differential pair; DEPLM, arXiv
2312.09262: fixed random features, only the readout trained). `RandomConductanceNetwork` takes
an IR graph, and for every conv/linear layer with a constant weight draws G+ and G- once per
weight (seeded) from the device's post-forming distribution, N(formed_mean, formed_std) x g_max
clipped to [g_min, g_max] (an assumed Gaussian; the presets give its moments). The weight is
gain * (G+ - G-) / g_max with one digital gain per layer (Kaiming scale over the kept fraction).

* `train_masks`: edge-popup (Ramanujan et al., CVPR 2020): a score per weight, the top `keep`
  fraction of each layer kept, gradients passed straight through the top-k selection to the
  scores; the conductances never change.
* `train_readout`: every layer random and fixed except the last, solved by ridge regression on
  the features (an extreme learning machine, as DEPLM).
* `reset_list`: the cell pairs to RESET for pruned edges, addressed on tiles by the crossbar
  mapping with one differential pair per weight.
* `apply_to(graph)`: the network as trained, rebound into a graph for the crossbar target.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from backends.crossbar.devices import get_device
from backends.crossbar.integer_form import IntegerLayer, InputCodes, constant_weight
from backends.crossbar.mapping import TileSpec, map_layer
from compiler.ir import Graph, Node, Value
from compiler.ops import get_op


class _TopK(torch.autograd.Function):
    """Mask of the `keep` fraction of largest scores; the gradient passes straight through."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, keep: float) -> torch.Tensor:
        k = max(1, int(round(keep * scores.numel())))
        mask = torch.zeros_like(scores)
        mask.view(-1)[scores.flatten().topk(k).indices] = 1.0
        return mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad, None


@dataclass
class RandomLayer:
    node: Node
    value: Value               # the graph's weight value
    g_pos: torch.Tensor        # µS, fixed after forming
    g_neg: torch.Tensor
    gain: float
    scores: torch.Tensor       # edge-popup scores (trained in mask mode)

    @property
    def random_weight(self) -> torch.Tensor:
        return self.gain * (self.g_pos - self.g_neg)


class RandomConductanceNetwork:
    def __init__(self, graph: Graph, device: str = "reram", seed: int = 0, keep: float = 0.5):
        self.graph, self.device, self.keep = graph, get_device(device), keep
        gen = torch.Generator().manual_seed(seed)
        self.layers: list[RandomLayer] = []
        d = self.device
        for node in graph.nodes:
            layout = get_op(node.op).layout
            if layout is None or layout.in_axis is None or not layout.activations:
                continue
            value, _ = constant_weight(node, layout)
            if value is None or node.inputs[layout.weight] is not value:
                continue
            shape = value.shape
            draw = lambda: (torch.randn(shape, generator=gen) * d.formed_std + d.formed_mean).mul(d.g_max) \
                .clamp(d.g_min, d.g_max)
            g_pos, g_neg = draw(), draw()
            fan_in = value.type.numel // shape[layout.out_axis]
            spread = float((g_pos - g_neg).std())
            gain = math.sqrt(2.0 / (fan_in * keep)) / spread
            scores = torch.rand(shape, generator=gen) * 1e-2
            self.layers.append(RandomLayer(node, value, g_pos, g_neg, gain, scores))
        if not self.layers:
            raise ValueError(f"graph '{graph.name}' has no conv/linear layer with a constant weight")
        self.readout: tuple[torch.Tensor, torch.Tensor] | None = None

    # ---- running the graph with substituted weights ------------------------------------------
    def _weights(self, masked: bool) -> dict[Value, torch.Tensor]:
        out = {}
        for layer in self.layers:
            w = layer.random_weight
            if masked:
                w = w * _TopK.apply(layer.scores, self.keep)
            out[layer.value] = w
        return out

    def forward(self, x: torch.Tensor, *, masked: bool = True, features: bool = False) -> torch.Tensor:
        """The graph's first output (or, with `features`, the last layer's input), differentiable
        in the scores."""
        weights = self._weights(masked)
        last = self.layers[-1].node
        env: dict[Value, torch.Tensor] = {self.graph.inputs[0]: x}
        for node in self.graph.nodes:
            args = [None if v is None else weights.get(v, v.data if v.data is not None else env.get(v))
                    for v in node.inputs]
            if node is last and features:
                return args[get_op(node.op).layout.activations[0]]
            if node is last and self.readout is not None:
                w, b = self.readout
                env[node.outputs[0]] = args[get_op(node.op).layout.activations[0]] @ w.t() + b
                continue
            env.update(zip(node.outputs, get_op(node.op).run(args, node.attrs)))
        return env[self.graph.outputs[0]]

    # ---- the two training modes ----------------------------------------------------------------
    @property
    def batch(self) -> int:
        """The graph's static batch: every call runs batches of exactly this size."""
        return self.graph.inputs[0].shape[0]

    def _padded(self, x: torch.Tensor, fn) -> torch.Tensor:
        """fn over x in graph-sized batches, the last one padded with zeros (and cut again)."""
        out = []
        for i in range(0, len(x), self.batch):
            part = x[i:i + self.batch]
            pad = self.batch - len(part)
            if pad:
                part = torch.cat([part, part.new_zeros((pad,) + part.shape[1:])])
            out.append(fn(part)[:self.batch - pad])
        return torch.cat(out)

    def train_masks(self, x: torch.Tensor, y: torch.Tensor, *, epochs: int = 30,
                    lr: float = 0.05, seed: int = 0) -> list[float]:
        """Edge-popup on (x, y); returns the mean loss per epoch. Conductances stay fixed."""
        batch = self.batch
        params = [layer.scores.requires_grad_(True) for layer in self.layers]
        opt = torch.optim.Adam(params, lr=lr)
        gen = torch.Generator().manual_seed(seed)
        history = []
        for _ in range(epochs):
            order, total = torch.randperm(len(x), generator=gen), 0.0
            for i in range(0, len(x) - batch + 1, batch):
                idx = order[i:i + batch]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(self.forward(x[idx]), y[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            history.append(total / len(x))
        for p in params:
            p.requires_grad_(False)
        return history

    @torch.no_grad()
    def train_readout(self, x: torch.Tensor, y: torch.Tensor, *, ridge: float = 1e-2) -> None:
        """Fixed random layers, the last one solved in closed form (ridge regression on one-hot targets)."""
        feats = self._padded(x, lambda b: self.forward(b, masked=False, features=True).flatten(1))
        targets = torch.nn.functional.one_hot(y, int(y.max()) + 1).double()
        f = torch.cat([feats.double(), torch.ones(len(feats), 1, dtype=torch.float64)], dim=1)
        solution = torch.linalg.solve(f.t() @ f + ridge * torch.eye(f.shape[1], dtype=torch.float64), f.t() @ targets)
        self.readout = (solution[:-1].t().float().contiguous(), solution[-1].float())

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, *, masked: bool = True) -> float:
        predicted = self._padded(x, lambda b: self.forward(b, masked=masked).argmax(1))
        return 100.0 * float((predicted == y).float().mean())

    # ---- export --------------------------------------------------------------------------------
    def masks(self) -> dict[str, torch.Tensor]:
        return {layer.node.name: _TopK.apply(layer.scores.detach(), self.keep) for layer in self.layers}

    def apply_to(self, graph: Graph, *, masked: bool = True) -> None:
        """Rebind this network's weights (random x mask) into `graph`, a graph of the same model
        (for instance a fresh import), so it can be compiled to the crossbar target."""
        by_name = {layer.node.name: layer for layer in self.layers}
        masks = self.masks() if masked else {}
        for node in graph.nodes:
            layer = by_name.get(node.name)
            if layer is not None:
                w = layer.random_weight * masks[node.name] if masked else layer.random_weight
                value = node.inputs[get_op(node.op).layout.weight]
                graph.set_input(node, get_op(node.op).layout.weight, graph.rebind_weight(value, w.clone(), node))

    def reset_list(self, rows: int = 256, cols: int = 256) -> list[dict]:
        """The differential pairs to RESET for every pruned edge: layer, group, output, input (the
        unrolled matrix index), tile (numbered across layers), tile row and the pair's columns,
        on a dense mapping with one pair per weight."""
        spec = TileSpec(rows, cols, cell_bits=1, signed="differential", sparse=False)
        records, first_tile = [], 0
        for layer, mask in zip(self.layers, self.masks().values()):
            layout = get_op(layer.node.op).layout
            pruned = layout.matrices(mask, layer.node) == 0                           # [g, O, K]
            ones = torch.ones(pruned.shape, dtype=torch.int8)
            mapping = map_layer(IntegerLayer(layer.node, layout, ones, torch.ones(pruned.shape[:2], dtype=torch.float64),
                                             -1, 1, InputCodes(scale=1.0), "rows", "analog"), spec)
            for p in mapping.pieces:
                block = pruned[p.group].index_select(0, p.outputs).index_select(1, p.rows)
                for o, r in torch.nonzero(block).tolist():
                    col = p.col + 2 * o
                    records.append({"layer": layer.node.name, "group": p.group, "output": int(p.outputs[o]),
                                    "input": int(p.rows[r]), "tile": first_tile + p.tile, "row": p.row + r,
                                    "col_pos": col, "col_neg": col + 1})
            first_tile += mapping.tiles
        return records
