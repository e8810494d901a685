"""Names and source locations for what torch.export produced.

* IR nodes are named after the module they run in: the op that reads a module's own weight
  takes the module's path (`encoder.layer.0.attention.self.query`), other ops the path plus
  the op (`encoder.layer.0.attention.self.permute`), as torch.fx names nodes after modules.
* A node's source is `module.path (file.py:line)`: the innermost frame of its recorded stack
  trace that belongs to the model's code (not torch, not the standard library).
* Outputs are named by their path in the returned structure: `last_hidden_state`,
  `past_key_values.0.1`, `0` for the first item of a tuple, `output` for a lone tensor.
"""
from __future__ import annotations

import os
import re
import sysconfig

import torch.fx as fx
from torch.utils._pytree import TreeSpec

import torch

_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_TORCH = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep
_INSTALLED = tuple(os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("purelib", "platlib"))


def _is_model_code(path: str) -> bool:
    """Not torch and not the standard library; installed packages (transformers) are model code."""
    path = os.path.abspath(path)
    if path.startswith(_TORCH):
        return False
    return path.startswith(_INSTALLED) or not path.startswith(_STDLIB)


def module_path(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack")
    return next(reversed(stack.values()))[0] if stack else ""


def op_name(node: fx.Node) -> str:
    """`view` for aten.view.default, `native_batch_norm_legit_no_training` for its underscored form."""
    packet = getattr(node.target, "overloadpacket", None)
    name = getattr(packet, "__name__", None) or getattr(node.target, "__name__", str(node.target))
    return name.lstrip("_")


def node_name(node: fx.Node, weight_names: list[str]) -> str:
    path = module_path(node)
    if path and any(w.startswith(path + ".") and "." not in w[len(path) + 1:] for w in weight_names):
        return path
    return f"{path}.{op_name(node)}" if path else op_name(node)


def location(node: fx.Node) -> str:
    """`file.py:line` of the innermost model-code frame in the node's stack trace."""
    found = ""
    for path, line in _FRAME.findall(node.meta.get("stack_trace") or ""):
        if _is_model_code(path):
            found = f"{os.path.basename(path)}:{line}"
    return found


def source(node: fx.Node) -> str:
    path, loc = module_path(node), location(node)
    if path and loc:
        return f"{path} ({loc})"
    return path or (f"({loc})" if loc else "")


def output_names(spec: TreeSpec) -> list[str]:
    """One dotted path per leaf of the returned structure, in pytree (flattening) order."""
    names: list[str] = []

    def walk(s: TreeSpec, prefix: str) -> None:
        if s.is_leaf():
            names.append(prefix or "output")
            return
        keys = _keys(s)
        for key, child in zip(keys, s.children()):
            walk(child, f"{prefix}.{key}" if prefix else str(key))
    walk(spec, "")
    return names


def _keys(spec: TreeSpec) -> list:
    context = spec.context
    if isinstance(context, (list, tuple)) and len(context) == spec.num_children:
        return list(context)
    fields = getattr(spec.type, "_fields", None)  # namedtuple
    if fields is not None and len(fields) == spec.num_children:
        return list(fields)
    return list(range(spec.num_children))
