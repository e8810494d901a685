"""The common scale of a residual add or a concat: fine enough that the sum stays within one code.

The operands are brought to s = s_q / 2^F in int32, where s_q is the scale of the quantizer the
result flows into (found by following relu/clip/max-pool/reshape/add users) and F the pass's
`fraction-bits` (16): each operand then carries at most 2^-(F+1) of a code of rounding error, and
int32 holds +-2^(31-F) codes of that quantizer (2^(23-F) times an 8-bit range) for the values it
would clip. With no
quantizer downstream, the finest operand scale is used, 2^F times finer for 8-bit codes.
"""
from __future__ import annotations

import torch

from compiler.ir import Node, Value
from compiler.quant.formats import IntFormat, parse_format

PASS_THROUGH = frozenset({"relu", "clip", "max_pool", "reshape", "permute", "slice", "expand", "add", "concat",
                          "adaptive_avg_pool", "reduce_mean"})


def downstream_quantizer_scale(value: Value, limit: int = 64) -> float | None:
    """The scale of the first per-tensor integer quantizer `value` flows into, breadth first."""
    frontier, seen = [value], {value}
    while frontier and limit > 0:
        nxt = []
        for v in frontier:
            for user in v.users:
                limit -= 1
                if user.op == "fake_quant" and user.inputs[0] is v and _per_tensor_int(user):
                    return float(user.inputs[1].data.reshape(()))
                if user.op in PASS_THROUGH:
                    for out in user.outputs:
                        if out not in seen:
                            seen.add(out)
                            nxt.append(out)
        frontier = nxt
    return None


def _per_tensor_int(fq: Node) -> bool:
    scale = fq.inputs[1].data
    return scale is not None and scale.numel() == 1 and isinstance(parse_format(fq.attrs["format"]), IntFormat)


def common_scale(node: Node, reps: list, fraction_bits: int) -> torch.Tensor:
    s_q = downstream_quantizer_scale(node.output)
    if s_q is not None:
        return torch.tensor(s_q * 2.0 ** -fraction_bits, dtype=torch.float64)
    finest = min(rep.min_scale() * (2.0 ** -fraction_bits if rep.value.dtype.itemsize == 1 else 1.0)
                 for rep in reps if rep is not None)
    return torch.tensor(finest, dtype=torch.float64)
