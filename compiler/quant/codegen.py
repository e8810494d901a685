"""Source for a generated standalone model.py that calls the fake-quant kernels.

torch.fx names a non-torch function after its qualified name (`compiler_quant_kernels_quantize_int`).
The generated file must not import nnforge, so `helper_source` returns the kernels module's source
plus those aliases, or "" when the GraphModule uses none of them.
"""
from __future__ import annotations

import inspect

import torch.fx as fx

from compiler.quant import kernels


def helper_source(gm: fx.GraphModule) -> str:
    names = sorted(name for name, obj in gm.graph.python_code("self").globals.items()
                   if getattr(obj, "__module__", None) == kernels.__name__)
    if not names:
        return ""
    body = inspect.getsource(kernels).split('"""', 2)[2].replace("from __future__ import annotations\n", "")
    aliases = "\n".join(f"{name} = {getattr(gm.graph.python_code('self').globals[name], '__name__')}"
                        for name in names)
    return f"\n# ---- fake-quant kernels (nnforge compiler/quant/kernels.py) ----{body.rstrip()}\n\n{aliases}\n\n"
