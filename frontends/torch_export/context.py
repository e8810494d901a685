"""The per-node context of the torch.export frontend: the torch.fx frontend's `FxNodeContext`, plus static
tensors.

Rules receive each argument as an IR `Value` (data-dependent), a `torch.Tensor` (static: it
depends on nothing but constants and buffers, so it was computed at import time), or a plain
Python value. `cx.tensor(x)` gives a Value either way; a static tensor becomes an IR constant,
or the named weight when it is a buffer of the module.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.fx as fx

from compiler.ir import Graph, Value
from frontends.torch_fx.context import FxNodeContext, Weights


class ExportNodeContext(FxNodeContext):
    __slots__ = ("constant_of",)

    def __init__(self, graph: Graph, weights: Weights, node: fx.Node, name: str, source: str, out: Any,
                 constant_of: Callable[[torch.Tensor, str], Value]):
        super().__init__(graph, weights, node, source, out)
        self.name = name
        self.constant_of = constant_of

    def tensor(self, value: Any, what: str = "input") -> Value:
        if isinstance(value, torch.Tensor):
            return self.constant_of(value, f"{self.name}.const")
        return super().tensor(value, what)

    def what(self) -> str:
        return aten_name(self.node.target)


def aten_name(target: Any) -> str:
    """`aten.view` for torch.ops.aten.view.default."""
    packet = getattr(target, "overloadpacket", None)
    if packet is not None:
        return str(packet).replace("::", ".")
    return getattr(target, "__name__", str(target))
