"""The op registry: every op's shape inference agrees with what its torch reference computes."""
import pytest
import torch

from compiler.errors import IRError
from compiler.ir import TensorType
from compiler.ops import get_op
from tests.op_cases import OP_CASES


def reference_types(case):
    graph, feeds = case.build()
    node = graph.nodes[0]
    data = iter(feeds)
    args = [None if v is None else (v.data if v.data is not None else next(data)) for v in node.inputs]
    return node, [TensorType.of(t) for t in get_op(node.op).run(args, node.attrs)]


@pytest.mark.parametrize("case", OP_CASES, ids=lambda c: c.id)
def test_inferred_types_match_the_reference(case):
    node, actual = reference_types(case)
    opdef = get_op(node.op)
    inferred = opdef.infer([None if v is None else v.type for v in node.inputs], node.attrs)
    assert inferred == actual


@pytest.mark.parametrize("op, shapes, attrs, message", [
    ("conv", [(1, 3, 8, 8), (4, 2, 3, 3)], {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)},
     "input has 3 channels, the weight expects 2"),
    ("conv", [(1, 3, 2, 2), (4, 3, 3, 3)], {"stride": (1, 1), "padding": (0, 0), "dilation": (1, 1)},
     "kernel is larger"),
    ("matmul", [(2, 3), (4, 5)], {}, "inner dims 3 and 4 differ"),
    ("concat", [(2, 3), (3, 4)], {"dim": 0}, "every dim but 0"),
    ("split", [(2, 6)], {"sizes": (2, 3), "dim": 1}, "do not add up"),
    ("reshape", [(2, 6)], {"shape": (5, 2)}, "keep the element count"),
    ("permute", [(2, 6)], {"dims": (0, 0)}, "not a permutation"),
    ("linear", [(2, 6), (4, 5)], {}, "the weight must be [out, in]"),
    ("batch_norm", [(2, 6, 4), (5,), (6,)], {}, "per-channel statistics"),
    ("add", [(2, 3), (4,)], {}, "do not broadcast"),
])
def test_shape_inference_rejects_inputs_with_a_reason(op, shapes, attrs, message):
    types = [TensorType(s, torch.float32) for s in shapes]
    with pytest.raises(IRError, match=message.replace("[", r"\[")):
        get_op(op).infer(types, get_op(op).complete_attrs(attrs))


@pytest.mark.parametrize("op, attrs", [("sqrt", {}), ("exp", {}), ("sigmoid", {}), ("erf", {}),
                                       ("div", {}), ("div", {"rounding_mode": "floor"})])
def test_integer_inputs_follow_torch_type_promotion(op, attrs):
    opdef = get_op(op)
    attrs = opdef.complete_attrs(attrs)
    x = torch.arange(1, 7, dtype=torch.int64).reshape(2, 3)
    args = [x, x][:len(opdef.inputs)]
    (expected,) = opdef.run(args, attrs)
    assert opdef.infer([TensorType.of(a) for a in args], attrs) == [TensorType.of(expected)]
