"""In-place operations (`x.relu_()`, `nn.ReLU(inplace=True)`, `F.relu(x, inplace=True)`).

They are translated functionally: the op's result is a new IR value, and every later reader of
the mutated tensor reads that value instead (the translator rebinds the mutated fx node). That is
exact unless the mutated tensor shares storage with another one that is read later: mutating a
view (`x[:, 0].mul_(2)`, `x.view(-1).relu_()`) while its base is still used is refused, as is
mutating a parameter or buffer of the model. These checks run before the model is run.
"""
from __future__ import annotations

import operator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from compiler.errors import FrontendError
from frontends.torch_fx.context import describe

INPLACE_FUNCTIONS = frozenset({operator.iadd, operator.isub, operator.imul, operator.itruediv,
                               operator.ifloordiv, operator.ipow, operator.imatmul})
_INPLACE_ARG = {F.relu: 1, F.relu6: 1, F.silu: 1, F.hardswish: 1, F.hardsigmoid: 1, F.leaky_relu: 2,
                F.hardtanh: 3, F.dropout: 3, F.dropout1d: 3, F.dropout2d: 3, F.dropout3d: 3,
                F.alpha_dropout: 3, F.feature_alpha_dropout: 3}  # position of a positional `inplace`
_VIEW_METHODS = frozenset({"view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "squeeze",
                           "unsqueeze", "permute", "transpose", "swapaxes", "swapdims", "t", "narrow", "expand",
                           "expand_as", "chunk", "split", "unbind", "contiguous", "detach", "to", "type_as",
                           "float", "half", "double", "int", "long", "bool", "bfloat16", "type", "cpu", "cuda"})
_VIEW_FUNCTIONS = frozenset({operator.getitem, getattr, torch.flatten, torch.reshape, torch.squeeze,
                             torch.unsqueeze, torch.unflatten, torch.permute, torch.transpose, torch.t,
                             torch.narrow, torch.chunk, torch.split, torch.unbind, torch.broadcast_to,
                             torch.swapaxes, torch.swapdims})
_VIEW_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)


def mutated(node: fx.Node, module: nn.Module | None) -> fx.Node | None:
    """The fx node whose tensor `node` modifies in place, or None for an out-of-place op."""
    if node.op == "call_method":
        inplace = node.target.endswith("_") and not node.target.endswith("__")
    elif node.op == "call_function":
        index = _INPLACE_ARG.get(node.target) if _hashable_in(node.target, _INPLACE_ARG.keys()) else None
        inplace = (_hashable_in(node.target, INPLACE_FUNCTIONS) or node.kwargs.get("inplace") is True
                   or (index is not None and len(node.args) > index and node.args[index] is True))
    elif node.op == "call_module":
        inplace = getattr(module, "inplace", False) is True
    else:
        return None
    target = node.args[0] if node.args else None
    return target if inplace and isinstance(target, fx.Node) else None


def check(graph: fx.Graph, submodules: dict[str, nn.Module], where) -> None:
    """Refuse in-place ops whose functional translation would not be exact."""
    order = {n: i for i, n in enumerate(graph.nodes)}
    for node in graph.nodes:
        module = submodules[node.target] if node.op == "call_module" else None
        target = mutated(node, module)
        if target is None:
            continue
        here, view = order[node], target
        while True:
            if view.op == "get_attr":
                raise FrontendError(f"in-place {describe(node, module)} modifies the model's tensor "
                                    f"'{view.target}'", where=where(node),
                                    hint="use the out-of-place op; importing must not change the model")
            if not _is_view(view, submodules):
                break
            base = view.args[0]
            if isinstance(base, fx.Node) and any(order[u] > here for u in base.users):
                raise FrontendError(f"in-place {describe(node, module)} modifies a view of '{base.name}', "
                                    "which is read again later", where=where(node),
                                    hint="use the out-of-place op (e.g. inplace=False, x = x * 2)")
            if not isinstance(base, fx.Node):
                break
            view = base


def _is_view(node: fx.Node, submodules: dict[str, nn.Module]) -> bool:
    if node.op == "call_method":
        return node.target in _VIEW_METHODS
    if node.op == "call_function":
        return _hashable_in(node.target, _VIEW_FUNCTIONS)
    if node.op == "call_module":
        return isinstance(submodules[node.target], _VIEW_MODULES)
    return False


def _hashable_in(target, table) -> bool:
    try:
        return target in table
    except TypeError:
        return False
