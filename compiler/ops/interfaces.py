"""Op interfaces: structure declared once on an `OpDef`, read by every pass and backend.

`WeightLayout` says where a layer's weight and bias are, which weight axis holds the output and
which the input channels, what `groups` means, where the activations keep their channels, and how
the weight unrolls into one matrix per group (the rows a matrix-vector unit or a crossbar column
computes). Traits are flags passes ask about instead of keeping op-name lists of their own.
MLIR's op interfaces and xDSL's traits are the model.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from compiler.ir import Node


class Trait(enum.Flag):
    """Facts about an op that passes query (`get_op(node.op).has(Trait.ELEMENTWISE)`)."""

    NONE = 0
    ELEMENTWISE = enum.auto()         # output element i reads only element i of each (broadcast) input
    SHAPE_ONLY = enum.auto()          # moves or selects data without arithmetic (reshape, permute, slice)
    COMMUTATIVE = enum.auto()         # op(a, b) == op(b, a)
    CHANNEL_PRESERVING = enum.auto()  # output channel c depends only on input channel c, same shape class
    LAYER = enum.auto()               # carries a weight: has a WeightLayout


@dataclass(frozen=True)
class WeightLayout:
    """Where a weighted op keeps its weight and how its channels are laid out.

    Axes of the weight may be negative (counted from the end). `out_axis` holds the output
    channels (features the result carries), `in_axis` the input channels the op contracts
    (None for a lookup such as embedding). With a `groups` attribute, exactly one of the two axes
    holds per-group channels: `grouped_axis` names which one (conv: the input axis, weight
    [out, in/g, *k]; conv_transpose: the output axis, weight [in, out/g, *k]).
    `row_axis` is the axis whose slices get their own scale in per-channel quantization (a
    dot-product row; an embedding table's row), `reduce_axis` the one a block of a block format
    runs along. `activations` are the inputs that carry activations; `spatial_attr` names the
    attribute whose length is the number of trailing spatial dims (activation channels sit just
    before them); without it, activations keep their channels last. `transposed` marks an op
    that scatters each input element over an output window instead of gathering a window per
    output (border outputs then read fewer weights).
    """

    out_axis: int
    in_axis: int | None
    weight: int = 1
    bias: int | None = 2
    activations: tuple[int, ...] = (0,)
    groups: str | None = None
    grouped_axis: str = "in"
    row_axis: int | None = None
    reduce_axis: int | None = None
    spatial_attr: str | None = None
    transposed: bool = False  # scatters each input element over a window (transposed conv)

    # ---- reading a node -------------------------------------------------------------------
    def group_count(self, node: Node) -> int:
        return int(node.attrs[self.groups]) if self.groups else 1

    def weight_value(self, node: Node):
        return node.inputs[self.weight] if self.weight < len(node.inputs) else None

    def bias_value(self, node: Node):
        if self.bias is None or self.bias >= len(node.inputs):
            return None
        return node.inputs[self.bias]

    def _spatial(self, node: Node) -> int:
        return len(node.attrs[self.spatial_attr]) if self.spatial_attr else 0

    def channel_axis_from_end(self, node: Node) -> int:
        """Where activations keep their channels, counted from the end (-1: channels last)."""
        return -self._spatial(node) - 1

    def input_channel_axis(self, node: Node) -> int:
        """Axis of the activation input holding the channels the weight contracts."""
        return node.inputs[self.activations[0]].rank + self.channel_axis_from_end(node)

    def output_channel_axis(self, node: Node) -> int:
        """Axis of the result holding the output channels."""
        return node.outputs[0].rank + self.channel_axis_from_end(node)

    @property
    def channels_last(self) -> bool:
        return self.spatial_attr is None

    def output_channels_match_rows(self, node: Node) -> bool:
        """Whether slice i of the weight's `out_axis` computes output channel i (not true for a
        grouped transposed conv, whose weight holds out/groups channels per group)."""
        return self.group_count(node) == 1 or self.grouped_axis == "in"

    @property
    def quant_row_axis(self) -> int:
        return self.out_axis if self.row_axis is None else self.row_axis

    @property
    def quant_reduce_axis(self) -> int:
        if self.reduce_axis is not None:
            return self.reduce_axis
        return self.in_axis if self.in_axis is not None else -1

    # ---- weight algebra -------------------------------------------------------------------
    def _split_axis(self, w: torch.Tensor) -> int:
        """The weight axis that numbers channels across all groups (the other one is per group)."""
        return (self.in_axis if self.grouped_axis == "out" else self.out_axis) % w.dim()

    def _grouped(self, w: torch.Tensor, groups: int) -> torch.Tensor:
        """w viewed as [g, *w.shape] with the group taken out of the split axis: weight axis a is
        axis a + 1 of the view."""
        split, shape = self._split_axis(w), list(w.shape)
        view = w.reshape(shape[:split] + [groups, shape[split] // groups] + shape[split + 1:])
        return view.movedim(split, 0)

    def _scale_grouped(self, w: torch.Tensor, s: torch.Tensor, groups: int, axis: int) -> torch.Tensor:
        view = self._grouped(w, groups)
        per_group = s.view(groups, -1)
        shape = [1] * view.dim()
        shape[0], shape[axis + 1] = groups, per_group.shape[1]
        return (view * per_group.view(shape)).movedim(0, self._split_axis(w)).reshape(w.shape)

    def scale_output_channels(self, w: torch.Tensor, s: torch.Tensor, node: Node) -> torch.Tensor:
        """w with output channel c (numbered across groups) multiplied by s[c]."""
        groups = self.group_count(node)
        axis = self.out_axis % w.dim()
        if groups == 1 or self.grouped_axis == "in":
            return w * s.view([-1 if d == axis else 1 for d in range(w.dim())])
        return self._scale_grouped(w, s, groups, axis)

    def scale_input_channels(self, w: torch.Tensor, s: torch.Tensor, node: Node) -> torch.Tensor:
        """w with every weight reading input channel c (numbered across groups) multiplied by s[c]."""
        groups = self.group_count(node)
        axis = self.in_axis % w.dim()
        if groups == 1 or self.grouped_axis == "out":
            return w * s.view([-1 if d == axis else 1 for d in range(w.dim())])
        return self._scale_grouped(w, s, groups, axis)

    def matrices(self, w: torch.Tensor, node: Node) -> torch.Tensor:
        """The weight unrolled into one [rows, cols] matrix per group: [g, out/g, in/g * kernel].

        Row r of group j computes output channel j * out/g + r as a dot product with the group's
        input patch (input channel major, kernel positions minor), as an im2col matrix-vector unit
        or a crossbar column sees it.
        """
        if self.in_axis is None:
            raise ValueError("a lookup op has no matrix form")
        groups = self.group_count(node)
        view = w.unsqueeze(0) if groups == 1 else self._grouped(w, groups)
        out_axis, in_axis = self.out_axis % w.dim() + 1, self.in_axis % w.dim() + 1
        rest = [d for d in range(1, view.dim()) if d not in (out_axis, in_axis)]
        ordered = view.permute([0, out_axis, in_axis] + rest)
        return ordered.reshape(ordered.shape[0], ordered.shape[1], -1)
