"""PyTorch backend: the IR as a `torch.fx.GraphModule`, plus a standalone `model.py` + weights.

Every IR node becomes the torch call its op registry entry names (`OpDef.torch_call`), in graph
order, so the GraphModule computes exactly what `compiler.interpreter.interpret` computes. Weights
become parameters/buffers under readable names derived from their value names
(`layer1.0.conv1.weight` -> `layer1_0_conv1_weight`), shared with the IR rather than copied.

With an output directory the backend writes (atomically, as one directory):

    model.py             a readable nn.Module whose forward is the fx-generated code; needs only
                         torch and safetensors, not nnforge. `load()` returns it ready to run.
                         Arguments and results keep the source model's order; Python needs
                         identifiers, so SOURCE_INPUTS / SOURCE_OUTPUTS map them to its names.
    weights.safetensors  the parameters and buffers

`sparse-kernel=true` runs layers pruned by `simd-sparsify` through the SIMD-group sparse kernel
(backends/pytorch_sparse.py) in the GraphModule; the standalone model.py keeps torch's dense
calls on the masked weights (the same numbers, no C++ compiler needed where it runs).
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
from compiler.costs import CostSettings, median_seconds
from compiler.codegen_names import docstring_text, python_identifier
from compiler.errors import BackendError
from compiler.interpreter import check_inputs
from compiler.ir import Graph, Value
from compiler.ops import get_op
from compiler.quant.codegen import helper_source
from backends.pytorch_sparse import sparse_call

MODEL_FILE = "model.py"
WEIGHTS_FILE = "weights.safetensors"


@register_backend("pytorch")
@dataclass(frozen=True)
class PyTorchBackend(Backend):
    """Lower to a torch.fx GraphModule; with an output folder, also model.py + weights.
    `sparse-kernel`: run simd-sparsified layers through the sparse C++ kernel."""

    suffix = ""
    sparse_kernel: bool = False

    @gc_paused()
    def lower(self, graph: Graph, output: Path | None) -> Artifact:
        gm, params = build_graph_module(graph, sparse_kernel=self.sparse_kernel)
        files: list[Path] = []
        info: dict = {"class": type(gm).__name__, "nodes": len(gm.graph.nodes),
                      "parameters": len(params), "buffers": len(dict(gm.named_buffers()))}
        if output is not None:
            output = Path(output)
            with atomic_path(output, directory=True) as tmp:
                dense_gm, dense_params = build_graph_module(graph) if self.sparse_kernel else (gm, params)
                write_package(dense_gm, graph, dense_params, tmp)
                info["weights_bytes"] = (tmp / WEIGHTS_FILE).stat().st_size
            files = [output / MODEL_FILE, output / WEIGHTS_FILE]
        return Artifact(target=self.name, obj=gm, files=files, runner=_Runner(gm, graph), info=info)

    def costs(self, graph: Graph, artifact: Artifact, settings: CostSettings) -> dict:
        """Latency of the GraphModule measured in torch (eager, no autograd) on `settings.threads`."""
        from compiler.api import random_inputs

        inputs = random_inputs(graph)
        previous = torch.get_num_threads()
        torch.set_num_threads(settings.threads)
        try:
            latency = median_seconds(lambda: artifact.run(*inputs), settings)
        finally:
            torch.set_num_threads(previous)
        batch = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else 1
        how = f"measured: torch {torch.__version__} eager CPU, {settings.describe()}"
        out = {"latency_s": latency, "throughput_fps": batch / latency, "runtime": f"torch {torch.__version__}",
               "basis": {"latency_s": how, "throughput_fps": how}}
        if "weights_bytes" in artifact.info:
            out["artifact_bytes"] = sum(f.stat().st_size for f in artifact.files)
            out["basis"]["artifact_bytes"] = "counted: model.py + weights.safetensors"
        return out


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
def build_graph_module(graph: Graph, sparse_kernel: bool = False) -> tuple[fx.GraphModule, set[str]]:
    """The GraphModule and its parameter names.

    forward returns the single output as a tensor, several as a tuple in graph.outputs order.
    With `sparse_kernel`, simd-sparsified layers call the sparse kernel.
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

    def add_buffer(hint: str, tensor: torch.Tensor) -> fx.Node:
        attr = attribute_name(hint, taken)
        root.register_buffer(attr, tensor)
        return fx_graph.get_attr(attr)

    for node in graph.nodes:
        sparse = sparse_call(node, lookup, add_buffer) if sparse_kernel else None
        if sparse is not None:
            fn, args, kwargs = *sparse, {}
        else:
            fn, args, kwargs = get_op(node.op).torch_call([lookup(v) for v in node.inputs], node.attrs)
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
# The source model's input and output names: forward takes the inputs in this order and returns
# the outputs in this order (a library that feeds the original by name maps through these).
SOURCE_INPUTS = {source_inputs!r}
SOURCE_OUTPUTS = {source_outputs!r}


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


def _source_names(graph: Graph) -> tuple[list[str], list[str]]:
    """Input and output names of the model file the graph came from (else the IR's)."""
    face = graph.interface
    if face is not None and face.fits(len(graph.inputs), len(graph.outputs)):
        return [p.name for p in face.inputs], [p.name for p in face.outputs]
    return [v.name for v in graph.inputs], [v.name for v in graph.outputs]


def render_model_py(gm: fx.GraphModule, graph: Graph, params: set[str]) -> str:
    placeholders = [n.target for n in gm.graph.nodes if n.op == "placeholder"]
    forward = textwrap.indent(gm.code.strip("\n"), "    ").rstrip() + "\n"
    return _TEMPLATE.format(
        class_name=type(gm).__name__, graph_name=docstring_text(graph.name), weights=WEIGHTS_FILE,
        args=", ".join(placeholders), outputs=", ".join(_local_name(v.name) for v in graph.outputs) or "()",
        params=tuple(sorted(params)),
        inputs={p: (tuple(v.shape), str(v.dtype).removeprefix("torch."))
                for p, v in zip(placeholders, graph.inputs)},
        source_inputs=tuple(_source_names(graph)[0]), source_outputs=tuple(_source_names(graph)[1]),
        forward=forward, helpers=helper_source(gm))  # fake-quant kernels, when used
