"""The integer form a design implements, from whatever graph the backend is given.

* an integer graph (after `integerize`): as it is;
* a quantized graph (fake_quant nodes): `integerize`;
* a float graph: `fold-bn, conv-transpose-as-conv, resize-as-conv, quantize{...}, integerize` at the backend's
  `precision` (`w8a8`: int8 weights per channel, uint8 activations per tensor with a zero point,
  residual adds and concats quantized too, so every accumulator is requantized to 8 bits), with
  calibration ranges from the compile's calibration data or example inputs. The activation
  quantizers saturate at those ranges, so a design never wraps around on data like it; the
  backend reports which calibration data it used.

The given graph is never changed: the lowering runs on a copy.
"""
from __future__ import annotations

import re

from compiler.context import PassContext
from compiler.errors import PipelineError
from compiler.ir import Graph
from compiler.ir_parser import parse_graph
from compiler.manager import PassManager
from compiler.pipeline import parse_pipeline
from compiler.printer import print_graph

INTEGER_OPS = frozenset({"int_conv", "int_linear", "int_matmul", "requantize"})
_PRECISION = re.compile(r"^(?:w(?P<w>\d)a(?P<a>\d)|int(?P<n>\d))$")


def parse_precision(text: str) -> tuple[int, int]:
    """(weight bits, activation bits) of `w8a8`, `w4a8`, `int8`, ... (2 to 8 bits each)."""
    m = _PRECISION.match(text.strip().lower())
    bits = None if m is None else ((int(m["n"]), int(m["n"])) if m["n"] else (int(m["w"]), int(m["a"])))
    if bits is None or not all(2 <= b <= 8 for b in bits):
        raise PipelineError(f"target 'hls': precision '{text}' is not wNaM or intN with 2..8 bits",
                            hint="precision=w8a8 (default), w4a8, int4, ...")
    return bits


def lowering_pipeline(graph: Graph, precision: str) -> str:
    """The passes that take this graph to the integer form ('' when it is there already)."""
    ops = {n.op for n in graph.nodes}
    if ops & INTEGER_OPS:
        return ""
    if "fake_quant" in ops:
        return "integerize"
    w, a = parse_precision(precision)
    return (f"fold-bn,conv-transpose-as-conv,resize-as-conv,quantize{{weights=int{w},activations=uint{a},"
            "residuals=true},integerize")


def integer_form(graph: Graph, precision: str, ctx: PassContext) -> tuple[Graph, str, str]:
    """(the integer graph, the pipeline run on a copy of `graph`, the calibration source)."""
    pipeline = lowering_pipeline(graph, precision)
    if not pipeline:
        return graph, "", ""
    copy = parse_graph(print_graph(graph), weights={k: v.data for k, v in graph.weights.items()})
    PassManager(parse_pipeline(pipeline).passes, context=ctx).run(copy)
    source = ctx.calibration.source if ctx.calibration is not None else "generated inputs"
    return copy, pipeline, source
