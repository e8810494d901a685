"""PyTorch backend: the IR as a `torch.fx.GraphModule`, plus a standalone `model.py` + weights.

Every IR node becomes the torch call its op registry entry names (`OpDef.torch_call`), in graph
order, so the GraphModule computes exactly what `compiler.interpreter.interpret` computes. Weights
become parameters/buffers under readable names derived from their value names
(`layer1.0.conv1.weight` -> `layer1_0_conv1_weight`), shared with the IR rather than copied.

With an output directory the backend writes (atomically, as one directory):

    model.py             a readable nn.Module whose forward is the fx-generated code; needs only
                         torch and safetensors, not nnforge. `load()` returns it ready to run.
    weights.safetensors  the parameters and buffers
"""
from __future__ import annotations

import builtins
import operator
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.fx as fx

from compiler.gcpause import gc_paused
from compiler.atomic import atomic_path
from compiler.backend import Artifact, Backend, register_backend
from compiler.codegen_names import docstring_text, python_identifier
from compiler.errors import BackendError
from compiler.interpreter import check_inputs
from compiler.ir import Graph, Value
from compiler.ops import get_op
from compiler.quant.codegen import helper_source

MODEL_FILE = "model.py"
WEIGHTS_FILE = "weights.safetensors"


@register_backend("pytorch")
@dataclass(frozen=True)
class PyTorchBackend(Backend):
    """Lower to a torch.fx GraphModule; with an output folder, also model.py + weights."""

    suffix = ""

    @gc_paused()
    def lower(self, graph: Graph, output: Path | None) -> Artifact:
        gm, params = build_graph_module(graph)
        files: list[Path] = []
        info: dict = {"class": type(gm).__name__, "nodes": len(gm.graph.nodes),
                      "parameters": len(params), "buffers": len(dict(gm.named_buffers()))}
        if output is not None:
            output = Path(output)
            with atomic_path(output, directory=True) as tmp:
                write_package(gm, graph, params, tmp)
                info["weights_bytes"] = (tmp / WEIGHTS_FILE).stat().st_size
            files = [output / MODEL_FILE, output / WEIGHTS_FILE]
        return Artifact(target=self.name, obj=gm, files=files, runner=_Runner(gm, graph), info=info)


class _Runner:
    """Runs the GraphModule without autograd; always returns a list in graph.outputs order."""

    def __init__(self, gm: fx.GraphModule, graph: Graph):
        self.gm, self.graph = gm, graph

    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        check_inputs(self.graph, inputs)
        with torch.no_grad():
            result = self.gm(*inputs)
        return [result] if isinstance(result, torch.Tensor) else list(result)


# ---- IR -> fx ------------------------------------------------------------------------------
def build_graph_module(graph: Graph) -> tuple[fx.GraphModule, set[str]]:
    """The GraphModule and its parameter names.

    forward returns the single output as a tensor, several as a tuple in graph.outputs order.
    """
    fx_graph = fx.Graph()
    root = torch.nn.Module()
    env: dict[Value, fx.Node] = {}
    taken: set[str] = set()
    params: set[str] = set()

    for value in graph.inputs:
        env[value] = fx_graph.placeholder(attribute_name(value.name, taken))

    def lookup(value: Value | None) -> fx.Node | None:
        if value is None:
            return None
        if value not in env:  # a weight, fetched with get_attr right before its first use
            if value.data is None:
                raise BackendError(f"value %{value.name} is used before it is defined",
                                   where=f"graph '{graph.name}'")
            attr = attribute_name(value.name, taken)
            tensor = value.data.detach()
            if value.is_param:
                root.register_parameter(attr, torch.nn.Parameter(tensor, requires_grad=False))
                params.add(attr)
            else:
                root.register_buffer(attr, tensor)
            env[value] = fx_graph.get_attr(attr)
        return env[value]

    for node in graph.nodes:
        args_in = [lookup(v) for v in node.inputs]
        fn, args, kwargs = get_op(node.op).torch_call(args_in, node.attrs)
        kind = "call_method" if isinstance(fn, str) else "call_function"
        result = fx_graph.create_node(kind, fn, tuple(args), dict(kwargs), name=_local_name(node.name))
        if len(node.outputs) == 1 and get_op(node.op).num_outputs is None:
            env[node.outputs[0]] = result
        else:
            for i, out in enumerate(node.outputs):
                env[out] = fx_graph.create_node("call_function", operator.getitem, (result, i), {},
                                                name=_local_name(out.name))
    results = tuple(lookup(v) for v in graph.outputs)
    fx_graph.output(results[0] if len(results) == 1 else results)
    fx_graph.lint()
    gm = fx.GraphModule(root, fx_graph, class_name=_class_name(graph.name))
    gm.eval()
    return gm, params


def attribute_name(hint: str, taken: set[str]) -> str:
    """A readable, unique Python identifier that does not shadow an nn.Module attribute."""
    return python_identifier(hint, reserved=_RESERVED, taken=taken)


# names the generated model.py and its forward() rely on: never a parameter, input or local
_MODULE_GLOBALS = {"self", "torch", "operator", "F", "inf", "nan", "Path", "load_file", "WEIGHTS",
                   "PARAMETERS", "INPUTS", "load", "example_inputs"}
_RESERVED = frozenset(dir(torch.nn.Module())) | frozenset(dir(builtins)) | _MODULE_GLOBALS


def _local_name(hint: str) -> str:
    """A forward() local for an IR value (torch.fx then makes it unique)."""
    return python_identifier(hint, reserved=_RESERVED)


def _class_name(graph_name: str) -> str:
    words = python_identifier(graph_name).split("_")
    name = "".join(w[:1].upper() + w[1:] for w in words if w)
    return python_identifier(name if name[:1].isalpha() else "Model", reserved=_RESERVED)


# ---- model.py + weights.safetensors ----------------------------------------------------------
def write_package(gm: fx.GraphModule, graph: Graph, params: set[str], folder: Path) -> None:
    from safetensors.torch import save_file

    tensors = _exclusive_contiguous(dict(gm.state_dict(keep_vars=False)))
    save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"generator": "nnforge"})
    (folder / MODEL_FILE).write_text(render_model_py(gm, graph, params))


def _exclusive_contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses non-contiguous tensors and tensors sharing storage: copy only those."""
    seen: set[int] = set()
    out = {}
    for name, t in tensors.items():
        t = t.detach()
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if not t.is_contiguous() or (ptr is not None and ptr in seen):
            t = t.clone(memory_format=torch.contiguous_format)
        if ptr is not None:
            seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


_TEMPLATE = '''\
"""{class_name}: generated by nnforge from graph '{graph_name}'.

Standalone: needs torch and safetensors only. Weights live in {weights} next to this file.

    from model import load
    model = load()
    {outputs} = model({args})
"""
import operator  # noqa: F401
from math import inf, nan  # noqa: F401
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: F401
from safetensors.torch import load_file
{helpers}
WEIGHTS = Path(__file__).resolve().with_name("{weights}")
PARAMETERS = {params!r}
INPUTS = {inputs!r}  # name -> (shape, dtype)


class {class_name}(torch.nn.Module):
    def __init__(self, weights: str | Path = WEIGHTS):
        super().__init__()
        for name, tensor in load_file(str(weights)).items():
            if name in PARAMETERS:
                self.register_parameter(name, torch.nn.Parameter(tensor, requires_grad=False))
            else:
                self.register_buffer(name, tensor)

{forward}

def load(weights: str | Path = WEIGHTS) -> {class_name}:
    """The model in eval mode with its weights loaded."""
    return {class_name}(weights).eval()


def example_inputs(seed: int = 0) -> tuple:
    """Random inputs of the declared shapes and dtypes."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for shape, dtype in INPUTS.values():
        dtype = getattr(torch, dtype)
        if dtype.is_floating_point:
            out.append(torch.randn(shape, generator=g).to(dtype))
        else:
            out.append(torch.randint(0, 2, shape, generator=g).to(dtype))
    return tuple(out)


if __name__ == "__main__":
    with torch.no_grad():
        outputs = load()(*example_inputs())
    for i, y in enumerate([outputs] if isinstance(outputs, torch.Tensor) else outputs):
        print(f"output {{i}}: {{tuple(y.shape)}} {{y.dtype}}")
'''


def render_model_py(gm: fx.GraphModule, graph: Graph, params: set[str]) -> str:
    placeholders = [n.target for n in gm.graph.nodes if n.op == "placeholder"]
    forward = textwrap.indent(gm.code.strip("\n"), "    ").rstrip() + "\n"
    return _TEMPLATE.format(
        class_name=type(gm).__name__, graph_name=docstring_text(graph.name), weights=WEIGHTS_FILE,
        args=", ".join(placeholders), outputs=", ".join(_local_name(v.name) for v in graph.outputs) or "()",
        params=tuple(sorted(params)),
        inputs={p: (tuple(v.shape), str(v.dtype).removeprefix("torch."))
                for p, v in zip(placeholders, graph.inputs)},
        forward=forward, helpers=helper_source(gm))  # fake-quant kernels, when used
