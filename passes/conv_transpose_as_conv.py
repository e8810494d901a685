"""conv-transpose-as-conv: a transposed convolution whose kernel equals its stride as a 1x1
convolution followed by depth-to-space.

With kernel == stride (UNet's 2x2 / stride-2 upsampling), every output pixel (h*k + a, w*k + b)
reads exactly one input pixel (h, w) with weight tap (a, b), so

    conv_transpose(x, W[Cin, Cout, k, k], b) == depth_to_space(conv1x1(x, W'[Cout*k*k, Cin], b'), k)

where output channel o*k*k + a*k + b of the 1x1 conv holds W[:, o, a, b] and the bias repeats
k*k times; depth-to-space is reshape -> permute -> reshape. The rewrite is exact (the same
products and sums). It lets integer backends that have convolutions and shape ops (integerize,
the HLS dataflow backend) take decoder networks, whose conv_transpose has no integer rule.
Transposed convolutions with overlapping taps (kernel != stride), padding, dilation or groups
stay as they are.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from compiler.context import DEFAULT_CONTEXT, PassContext
from compiler.ir import Graph, Node
from compiler.passes import Pass, PassResult, register_pass
from passes.depth_to_space import depth_to_space


def _rewritable(node: Node) -> bool:
    a = node.attrs
    w = node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    return (node.op == "conv_transpose" and len(a["stride"]) == 2 and a["groups"] == 1
            and tuple(a["stride"]) == tuple(w.shape[2:]) and not any(a["padding"]) and not any(a["output_padding"])
            and all(d == 1 for d in a["dilation"]) and w.data is not None and (bias is None or bias.data is not None)
            and node.inputs[0].rank == 4)


def _rewrite(graph: Graph, node: Node) -> None:
    x, w = node.inputs[0], node.inputs[1]
    bias = node.inputs[2] if len(node.inputs) > 2 else None
    cin, cout, kh, kw = w.shape
    weight = graph.add_weight(f"{w.name}.as_conv", w.data.detach().permute(1, 2, 3, 0).reshape(cout * kh * kw, cin, 1, 1))
    inputs = [x, weight]
    if bias is not None:
        inputs.append(graph.add_weight(f"{bias.name}.as_conv", bias.data.detach().repeat_interleave(kh * kw)))
    common = {"before": node, "source": node.source}
    conv = graph.create_node("conv", inputs, {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1},
                             name=node.name, **common)
    graph.replace_all_uses(node.output, depth_to_space(conv.output, (kh, kw), node))


@register_pass("conv-transpose-as-conv")
@dataclass(frozen=True)
class ConvTransposeAsConv(Pass):
    """Transposed convolutions with kernel == stride as a 1x1 conv plus depth-to-space (exact)."""

    exact: ClassVar[bool] = True

    def run(self, graph: Graph, ctx: PassContext = DEFAULT_CONTEXT) -> PassResult:
        found = [n for n in graph.nodes if n.op == "conv_transpose" and _rewritable(n)]
        for node in found:
            _rewrite(graph, node)
        if found:
            graph.eliminate_dead_code()
        return PassResult(bool(found), {"rewritten": len(found)})
