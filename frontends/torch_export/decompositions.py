"""The fixed op set the torch.export frontend translates: core ATen, with a few ops kept whole.

`torch.export.export` gives a graph of ATen ops; `run_decompositions(decomposition_table())`
lowers it to PyTorch's core ATen op set (about 190 ops), except for the ops in `KEPT`. Those
are kept whole because each is one IR op (or one small IR pattern) whose structure the passes
read: `linear` keeps its weight layout for fold-bn, prune and quantize (decomposed, it would be
a transpose and an `addmm`), `layer_norm`/`group_norm` stay normalizations instead of
mean/var arithmetic, convolutions keep their rank, and `scaled_dot_product_attention` becomes
the matmul/softmax/matmul pattern the pruning analysis follows head by head (its own ATen
decomposition also breaks on strided views in torch 2.13).

Which ATen ops then have an IR translation is the rule table in `rules_*.py`; docs/capture.md
lists both.
"""
from __future__ import annotations

import torch

_aten = torch.ops.aten

KEPT = (
    _aten.linear.default, _aten.matmul.default,
    _aten.conv1d.default, _aten.conv2d.default, _aten.conv3d.default,
    _aten.conv1d.padding, _aten.conv2d.padding, _aten.conv3d.padding,
    _aten.conv_transpose1d.default, _aten.conv_transpose2d.input, _aten.conv_transpose3d.input,
    _aten.layer_norm.default, _aten.group_norm.default,
    _aten.scaled_dot_product_attention.default,
    _aten.silu.default, _aten.hardswish.default, _aten.hardsigmoid.default, _aten.relu6.default,
    _aten.softmax.int, _aten.log_softmax.int,
    _aten.pad.default, _aten.adaptive_avg_pool1d.default, _aten.adaptive_avg_pool2d.default,
    _aten.upsample_nearest2d.default,
)


def decomposition_table() -> dict:
    """torch.export's default (core ATen) table without the ops in KEPT."""
    table = torch.export.default_decompositions()
    for op in KEPT:
        table.pop(op, None)
    return table
