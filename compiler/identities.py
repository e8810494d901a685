"""Identity rules: ops that hand back one of their inputs unchanged, as rewrite rules (data).

Each rule forwards the value bound as "x", and only when the node's result has exactly x's type
(shape and dtype): `x * ones` that broadcasts x to a larger shape, or promotes int to float, is
no identity and stays; so does a node whose result carries an annotation x does not. Every rule
is exact, bit for bit, with one caveat: `x + 0` turns a -0.0 in x into +0.0 (equal as numbers,
different in sign).

They forward existing values and never build nodes, so the frontends ask the data-movement ones
(`MOVEMENT_IDENTITIES`) about each node before emitting it (`identity_result`), and the
canonicalize pass applies all of them with the driver, next to its rules that compose permutes
and reshapes (passes/canonicalize.py). The frontends leave arithmetic identities (`x + 0` in a
model's source) to canonicalize, so an imported graph still shows what the model computes.
"""
from __future__ import annotations

from typing import Callable, Sequence

from compiler.ir import Graph, Node, TensorType, Value
from compiler.ops import get_op
from compiler.pattern import Operand, Pattern
from compiler.rewrite import Match, Rule, replacement_of, rules_by_op

X = Operand("x")


def constant_equal_to(number: float) -> Operand:
    """A constant whose every element equals `number` (NaN never does)."""
    return Operand(constant=True, where=lambda v: bool((v.data == number).all()))


def forward_x(m: Match) -> Value | None:
    """The rewrite of every identity rule: x itself, when the result has x's exact type and
    carries no annotation x lacks (an annotation says something about that very value)."""
    x, node = m["x"], m.node
    if len(node.outputs) != 1 or node.annotations:
        return None
    out = node.outputs[0]
    if out.type != x.type or any(x.annotations.get(kind) != a for kind, a in out.annotations.items()):
        return None
    return x


def identity(name: str, op: str | tuple[str, ...], *inputs: Pattern | Operand | None,
             where: Callable[[Node], bool] | None = None) -> Rule:
    """A rule that replaces `op` (with inputs matching `inputs`, x alone by default) by x."""
    return Rule(name, Pattern(op, tuple(inputs) or (X,), where=where), forward_x)


def _identity_permutation(node: Node) -> bool:
    rank = len(node.attrs["dims"])
    return all(d % rank == i for i, d in enumerate(node.attrs["dims"]))


def _no_window(node: Node) -> bool:
    return all(k == 1 for k in node.attrs["kernel"]) and not any(node.attrs["padding"])


def _exact_division(node: Node) -> bool:
    """x / 1 is x, except that float floor / trunc division rounds x."""
    return node.attrs["rounding_mode"] is None or not node.outputs[0].dtype.is_floating_point


ONE, ZERO = constant_equal_to(1), constant_equal_to(0)
REDUCTIONS = ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min")

# data movement that moves nothing (the result type equals x's: see forward_x)
MOVEMENT_IDENTITIES: tuple[Rule, ...] = (
    identity("reshape-identity", "reshape"),
    identity("permute-identity", "permute", where=_identity_permutation),
    identity("cast-identity", "cast"),
    identity("expand-identity", "expand"),
    identity("tile-identity", "tile"),
    identity("slice-identity", "slice", where=lambda n: n.attrs["start"] == 0),
    identity("pad-identity", "pad", where=lambda n: not any(n.attrs["pads"])),
    identity("concat-identity", "concat", where=lambda n: len(n.inputs) == 1),
    identity("split-identity", "split"),
)

IDENTITY_RULES: tuple[Rule, ...] = MOVEMENT_IDENTITIES + (
    # arithmetic with the neutral element
    identity("mul-by-one", "mul", X, ONE),    # both orders: mul and add declare Trait.COMMUTATIVE
    identity("add-zero", "add", X, ZERO),
    identity("sub-zero", "sub", X, ZERO),
    identity("div-by-one", "div", X, ONE, where=_exact_division),
    # windows of one element
    identity("pool-identity", ("avg_pool", "max_pool"), where=_no_window),
    identity("adaptive-pool-identity", ("adaptive_avg_pool", "adaptive_max_pool")),
    identity("resize-identity", "resize", where=lambda n: n.attrs["mode"] in ("nearest", "nearest-exact")),
    identity("reduce-identity", REDUCTIONS),  # over dims of size 1, kept
    # the same value twice, or an involution applied twice
    identity("max-min-of-same", ("maximum", "minimum"), X, X),
    identity("where-same", "where", None, X, X),
    identity("double-negation", "neg", Pattern("neg", (X,))),
    identity("double-not", "logical_not", Pattern("logical_not", (X,))),
)

_MOVEMENT_BY_OP = rules_by_op(MOVEMENT_IDENTITIES)


def identity_result(graph: Graph, op: str, inputs: Sequence[Value | None], attrs: dict | None = None,
                    out_types: Sequence[TensorType] | None = None) -> list[Value] | None:
    """The existing values `op(inputs)` would only move unchanged, or None: asked before emitting
    the node, so such an identity never enters the graph (`out_types` inferred when not given)."""
    if op not in _MOVEMENT_BY_OP:
        return None
    opdef = get_op(op)
    attrs = opdef.complete_attrs(attrs or {})
    if out_types is None:
        out_types = opdef.infer([None if v is None else v.type for v in inputs], attrs)
    return replacement_of(graph, _MOVEMENT_BY_OP, op, inputs, attrs, out_types)
