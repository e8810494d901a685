"""`If` whose condition folds to a constant: the branch it picks is inlined, node by node.

Exporters leave such Ifs where a Python branch depended on a shape or a flag (silero-style
models: one subgraph per sample rate, chosen by a comparison that folds once shapes are static).
An If whose condition depends on the input data stays unsupported, with a clear error.
"""
from __future__ import annotations

from frontends.onnx.context import OnnxNodeContext
from frontends.onnx.table import onnx_op


@onnx_op("If", ir="(the branch a constant condition picks, inlined)",
         note="the condition must fold to a constant (shapes, flags); branches may nest")
def if_(cx: OnnxNodeContext):
    cond = cx.required(0, "the condition")
    if cond.data is None:
        raise cx.error(f"the condition '{cx.node.input[0]}' depends on the input data, so the branch cannot be "
                       "chosen at import", hint="nnforge inlines an If only when its condition folds to a "
                                                "constant; export the model for one branch (e.g. one sample rate)")
    if cond.data.numel() != 1:
        raise cx.error(f"the condition must hold one value, got shape {list(cond.data.shape)}")
    branch = "then_branch" if bool(cond.data.reshape(())) else "else_branch"
    return cx.tr.inline(cx.attr(branch, "graph"), cx, branch)
