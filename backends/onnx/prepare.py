"""What the ONNX backend exports for a quantized graph, and at which opset.

    quant=qdq    (default) the QDQ form onnxruntime fuses into integer kernels: a fake-quant graph is
                 integerized first (the `integerize` pass, on a copy), an integer graph rewritten by
                 backends/onnx/qdq.py. A graph integerize refuses (FP4, MXFP4, NVFP4, FP8, per-channel
                 activations) is exported as `plain`, and the artifact's info says why.
    quant=exact  the integer form op by op (ConvInteger, MatMulInteger, fixed-point requantize):
                 bit-exact with the integer interpreter, slower in onnxruntime.
    quant=plain  fake_quant nodes as QuantizeLinear/DequantizeLinear pairs where they are: bit-exact
                 with the fake-quant interpreter.

`opset=auto` picks the lowest opset that carries every format in the exported graph.
"""
from __future__ import annotations

from backends.onnx.qdq import MissingScale, is_integer_form, qdq_graph
from compiler.errors import BackendError, NNForgeError
from compiler.ir import Graph
from compiler.ir_parser import parse_graph
from compiler.printer import print_graph
from compiler.quant.formats import BlockFormat, FloatFormat, FormatError, IntFormat, parse_format

BASE_OPSET = 17


def export_graph(graph: Graph, quant: str) -> tuple[Graph, str]:
    """(the graph to lower, a note for the artifact's info)."""
    quantized = any(n.op == "fake_quant" for n in graph.nodes)
    fake_quant = any(n.op == "fake_quant" and n.inputs[0].data is None for n in graph.nodes)
    if quant == "plain" or not (fake_quant or is_integer_form(graph)):
        return graph, "plain" if quantized else "none"
    if fake_quant:
        try:
            graph = integerized(graph)
        except NNForgeError as exc:
            if quant == "exact":
                raise BackendError(f"quant=exact needs an integer form: {exc.what}", hint=exc.hint) from None
            return graph, f"plain (no integer form: {exc.what})"
    if quant == "exact":
        return graph, "exact"
    try:
        return qdq_graph(graph), "qdq"
    except MissingScale as exc:  # hand-built integer graphs: their op-by-op form is still exact
        return graph, f"exact ({exc.what})"


def integerized(graph: Graph) -> Graph:
    from compiler.passes import get_pass  # through the registry: backends do not import passes
    copy = parse_graph(print_graph(graph), {name: w.data for name, w in graph.weights.items()})
    get_pass("integerize")().run(copy)
    return copy


def format_opset(fmt, block_size: int) -> int:
    """The lowest opset whose QuantizeLinear/DequantizeLinear carries `fmt`."""
    if isinstance(fmt, IntFormat):
        need = 25 if fmt.bits == 2 else 21 if fmt.bits == 4 else BASE_OPSET
    elif isinstance(fmt, FloatFormat):
        need = 23 if fmt.total_bits == 4 else 19 if fmt.total_bits == 8 else BASE_OPSET
    elif isinstance(fmt, BlockFormat):
        need = 24 if fmt.scale_format == "e8m0" else 23
    else:
        need = BASE_OPSET
    return max(need, 21) if block_size else need


def auto_opset(graph: Graph, max_opset: int) -> int:
    """The lowest opset (from 17) that carries every quantized format in `graph`."""
    need = BASE_OPSET
    for node in graph.nodes:
        if node.op == "fake_quant":
            try:
                fmt = parse_format(node.attrs["format"])
            except FormatError:
                continue
            need = max(need, format_opset(fmt, node.attrs["block_size"]))
    if need > max_opset:
        raise BackendError(f"the graph's formats need ONNX opset {need}; nnforge builds up to {max_opset}",
                           hint="int2 needs opset 25: quantize to int3 or wider for ONNX")
    return need
