"""Source for a generated standalone model.py that calls the fake-quant and integer kernels.

torch.fx names a non-torch function after its qualified name (`compiler_quant_kernels_quantize_int`).
The generated file must not import nnforge, so `helper_source` returns the source of each kernel
module the GraphModule uses plus those aliases, or "" when it uses none of them.
"""
from __future__ import annotations

import inspect

import torch.fx as fx

from compiler.quant import integer, kernels

MODULES = (kernels, integer)


def helper_source(gm: fx.GraphModule) -> str:
    globals_ = gm.graph.python_code("self").globals
    parts = []
    for module in MODULES:
        names = sorted(name for name, obj in globals_.items() if getattr(obj, "__module__", None) == module.__name__)
        if not names:
            continue
        body = inspect.getsource(module).split('"""', 2)[2].replace("from __future__ import annotations\n", "")
        aliases = "\n".join(f"{name} = {globals_[name].__name__}" for name in names)
        parts.append(f"\n# ---- {module.__name__.replace('.', '/')}.py (nnforge) ----{body.rstrip()}\n\n{aliases}\n\n")
    return "".join(parts)
