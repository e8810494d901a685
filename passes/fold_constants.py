"""fold-constants: evaluate nodes whose inputs are all constants, ahead of time.

A value is constant when it holds data (weights and constants; graph inputs never do). One sweep
in topological order runs each all-constant node through the op registry's torch reference and
replaces its outputs with new constants, so a folded result feeds the next fold in the same
sweep. Dead nodes are left to `dce`, results larger than `max-elements` are not materialized, and
ops the registry marks not foldable (fake_quant: it carries the number format) are kept.

Folded constants own their memory (contiguous, never aliasing the user's weights) and are
non-trainable, with one exception so parameter counts stay honest: a pure data movement
(reshape, permute, slice, split) of parameters only stays a parameter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from compiler.errors import IRError
from compiler import memory
from compiler.ir import Graph, Node, TensorType
from compiler.ops import get_op
from compiler.options import option
from compiler.passes import Pass, PassResult, register_pass

# Ops that only move a parameter's numbers around: their result is still that parameter.
PARAM_PRESERVING = frozenset({"reshape", "permute", "slice", "split"})


def _owned(result: torch.Tensor, inputs: list[torch.Tensor]) -> torch.Tensor:
    """The result as a contiguous tensor that shares no storage with any input."""
    ptr = result.untyped_storage().data_ptr()
    if any(t.untyped_storage().data_ptr() == ptr for t in inputs):
        return result.clone(memory_format=torch.contiguous_format)
    return result.contiguous()


@register_pass("fold-constants")
@dataclass(frozen=True)
class FoldConstants(Pass):
    """Evaluate nodes whose inputs are all constants and replace them with constants."""

    exact: ClassVar[bool] = True
    max_elements: int = option(1 << 24, low=0, high=2**31 - 1)

    def run(self, graph: Graph) -> PassResult:
        outputs = set(graph.outputs)
        folded = skipped = 0
        for node in graph.nodes:
            args = [v for v in node.inputs if v is not None]
            if not args or any(v.data is None for v in args) or not get_op(node.op).foldable:
                continue
            if all(not out.users and out not in outputs for out in node.outputs):
                continue  # dead: dce removes it without computing it
            if any(out.type.numel > self.max_elements for out in node.outputs) or \
                    sum(memory.tensor_bytes(out.shape, out.dtype) for out in node.outputs) > memory.limit():
                skipped += 1
                continue
            self._fold(graph, node)
            folded += 1
        stats: dict[str, int | float | str] = {"folded": folded, "skipped": skipped}
        if folded:
            stats["removed_weights"] = graph.remove_unused_weights()
        return PassResult(folded > 0, stats)

    @staticmethod
    def _fold(graph: Graph, node: Node) -> None:
        inputs = [v for v in node.inputs if v is not None]
        with torch.no_grad():
            results = get_op(node.op).run([None if v is None else v.data for v in node.inputs],
                                          node.attrs)
        is_param = node.op in PARAM_PRESERVING and all(v.is_param for v in inputs)
        datas = [v.data for v in inputs]
        for out, result in zip(node.outputs, results, strict=True):
            if TensorType.of(result) != out.type:
                raise IRError(f"folding {node.name} ({node.op}) gave {list(result.shape)} "
                              f"{result.dtype}, but its output is typed {out.type}")
            const = graph.add_weight(f"{out.name}.folded", _owned(result.detach(), datas),
                                     is_param=is_param)
            const.annotations.update(out.annotations)
            graph.replace_all_uses(out, const)
        graph.erase_node(node)
