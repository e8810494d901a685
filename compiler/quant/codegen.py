"""Source for a generated standalone model.py that calls nnforge's torch-only kernels.

torch.fx names a non-torch function after its qualified name (`compiler_quant_kernels_quantize_int`).
The generated file must not import nnforge, so `helper_source` returns the source of each kernel
module the GraphModule calls into (fake-quant and integer kernels, recurrent layers) plus those
aliases, or "" when it uses none of them.
"""
from __future__ import annotations

import inspect

import torch.fx as fx

from compiler.ops import recurrent_kernels
from compiler.quant import integer, kernels

KERNEL_MODULES = (kernels, integer, recurrent_kernels)


def helper_source(gm: fx.GraphModule) -> str:
    used = gm.graph.python_code("self").globals
    parts = []
    for module in KERNEL_MODULES:
        names = sorted(name for name, obj in used.items() if getattr(obj, "__module__", None) == module.__name__)
        if not names:
            continue
        body = inspect.getsource(module).split('"""', 2)[2].replace("from __future__ import annotations\n", "")
        body = body.replace("\nimport torch\n", "\n")  # model.py imports torch already
        aliases = "\n".join(f"{name} = {used[name].__name__}" for name in names)
        path = module.__name__.replace(".", "/") + ".py"
        parts.append(f"\n# ---- kernels (nnforge {path}) ----\n\n\n{body.strip()}\n\n{aliases}\n")
    return "".join(parts) + ("\n" if parts else "")
