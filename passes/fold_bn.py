"""fold-bn: fold an inference batch_norm into the conv / conv_transpose / linear that feeds it.

BN in inference is a per-channel affine map y = x * s + t with s = gamma / sqrt(var + eps) and
t = beta - mean * s. When the producer's output feeds only the BN, scaling the producer's weight
per output channel and rewriting its bias gives the same function with one node less:

    w' = w * s        b' = (b - mean) * s + beta        (missing b = 0, gamma = 1, beta = 0)

The arithmetic is done in float64 and cast back to the weight's dtype. New weight values are
created; the user's tensors are never touched.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch

from compiler.ir import Graph, Node
from compiler.passes import Pass, PassResult, register_pass


def _scale_out_dim0(w: torch.Tensor, s: torch.Tensor, node: Node) -> torch.Tensor:
    """conv [out, in/g, *k] and linear [out, in]: output channels are dim 0."""
    return w * s.view(-1, *([1] * (w.dim() - 1)))


def _scale_conv_transpose(w: torch.Tensor, s: torch.Tensor, node: Node) -> torch.Tensor:
    """conv_transpose [in, out/g, *k]: output channel g*(out/g)+j lives at [group g rows, j]."""
    g = node.attrs["groups"]
    cin, cout_g, *k = w.shape
    grouped = w.reshape(g, cin // g, cout_g, *k)
    return (grouped * s.view(g, 1, cout_g, *([1] * len(k)))).reshape(w.shape)


def _linear_channels_match(node: Node) -> str | None:
    # BN normalizes dim 1; linear's out features are the last dim: equal only for [N, C].
    return None if node.outputs[0].type.rank == 2 else "linear-not-2d"


# Producer op -> (weight scaling rule, extra applicability check returning a skip reason).
RULES: dict[str, tuple[Callable, Callable[[Node], str | None]]] = {
    "conv": (_scale_out_dim0, lambda n: None),
    "conv_transpose": (_scale_conv_transpose, lambda n: None),
    "linear": (_scale_out_dim0, _linear_channels_match),
}


def _arg(node: Node, i: int):
    return node.inputs[i] if i < len(node.inputs) else None


@register_pass("fold-bn")
@dataclass(frozen=True)
class FoldBatchNorm(Pass):
    """Fold inference BatchNorm into the preceding conv, conv_transpose or linear (exact)."""

    exact: ClassVar[bool] = True

    def run(self, graph: Graph) -> PassResult:
        skipped: Counter[str] = Counter()
        folded = 0
        for bn in [n for n in graph.nodes if n.op == "batch_norm"]:
            reason = self._fold(graph, bn)
            if reason is None:
                folded += 1
            else:
                skipped[reason] += 1
        stats: dict[str, int | float | str] = {"folded": folded, "skipped": sum(skipped.values())}
        stats.update({f"skipped.{r}": c for r, c in sorted(skipped.items())})
        if folded:
            stats["removed_weights"] = graph.remove_unused_weights()
        return PassResult(folded > 0, stats)

    @staticmethod
    def _fold(graph: Graph, bn: Node) -> str | None:
        """Fold one BN; return None on success or the reason it was left alone."""
        x = bn.inputs[0]
        prod = x.producer
        if prod is None or prod.op not in RULES:
            return "unsupported-producer"
        if len(x.users) != 1 or x in graph.outputs:
            return "producer-output-shared"
        weight, bias = prod.inputs[1], _arg(prod, 2)
        stats = [bn.inputs[1], bn.inputs[2], _arg(bn, 3), _arg(bn, 4)]
        if weight.data is None or (bias is not None and bias.data is None) or \
                any(v is not None and v.data is None for v in stats):
            return "non-constant-operand"
        if not weight.dtype.is_floating_point:
            return "non-float-weight"
        if any(v is not None and v.type.numel != x.shape[1] for v in stats):
            return "channel-mismatch"
        scale_weight, check = RULES[prod.op]
        reason = check(prod)
        if reason is not None:
            return reason

        f64 = [None if v is None else v.data.detach().to(torch.float64) for v in stats]
        mean, var, gamma, beta = f64
        scale = torch.rsqrt(var + bn.attrs["eps"])
        if gamma is not None:
            scale = scale * gamma
        b = bias.data.detach().to(torch.float64) if bias is not None else torch.zeros_like(mean)
        new_b = (b - mean) * scale + (beta if beta is not None else 0.0)
        new_w = scale_weight(weight.data.detach().to(torch.float64), scale, prod)

        dtype = weight.dtype
        w_val = graph.rebind_weight(weight, new_w.to(dtype), prod)
        if bias is not None:
            b_val = graph.rebind_weight(bias, new_b.to(dtype), prod)
        else:
            stem = weight.name.removesuffix(".weight") if weight.name.endswith(".weight") else prod.name
            b_val = graph.add_weight(f"{stem}.bias", new_b.to(dtype), is_param=weight.is_param)
        graph.set_input(prod, 1, w_val)
        graph.set_input(prod, 2, b_val)
        graph.replace_all_uses(bn.outputs[0], x)
        graph.erase_node(bn)
        return None
