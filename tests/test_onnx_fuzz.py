"""Fuzzing the ONNX frontend: valid models, mutated byte by byte and field by field, must import
or fail with a clean NNForgeError (never another exception, a crash or a hang).

Three seeds (a CNN, an exporter-style shape chain, a model touching most op families) are
mutated two ways: raw bytes of the serialized file (flips, truncation, insertion, deletion), and
protobuf fields (attribute values and types, op types, tensor names, initializer dims, types and
bytes, declared input dims, opset and IR versions, removed or duplicated nodes). The test prints
how many inputs it tried.
"""
from __future__ import annotations

import collections
import os
import time

import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.errors import NNForgeError
from frontends.onnx import MAPPINGS, import_onnx
from tests.fuzz_cases import edit_bytes
from tests.onnx_models import mixed_ops, shape_chain, small_cnn

SEEDS = {"small_cnn": (small_cnn(batch="N"), [(2, 3, 8, 8)]),
         "shape_chain": (shape_chain(), [(2, 3, 4, 4)]),
         "mixed_ops": (mixed_ops(), [(2, 4, 4, 4)])}
SEED_BYTES = {k: m.SerializeToString() for k, (m, _) in SEEDS.items()}
OP_TYPES = sorted(MAPPINGS) + ["If", "LSTM", "Einsum", "", "Conv\0", "\u00e9"]
EXAMPLES = int(os.environ.get("NNFORGE_FUZZ_EXAMPLES", "300"))   # per strategy; raise it to hunt locally
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 300,
                suppress_health_check=list(HealthCheck))
TRIED = {"bytes": 0, "fields": 0}
OUTCOMES: collections.Counter = collections.Counter()
INTERESTING_INTS = st.one_of(st.integers(-3, 12), st.sampled_from([0, -1, 2**31 - 1, 2**62, -2**63, 2**63 - 1]))
FLOATS = st.one_of(st.floats(-10, 10), st.sampled_from([0.0, float("nan"), float("inf"), -float("inf"), 1e30]))


def import_cleanly(model, shapes) -> None:
    started = time.perf_counter()
    try:
        import_onnx(model, input_shapes=shapes)
        OUTCOMES["imported"] += 1
    except NNForgeError as exc:
        assert exc.render()
        OUTCOMES[type(exc).__name__] += 1
    assert time.perf_counter() - started < 10, "import took too long"


# ---- raw bytes --------------------------------------------------------------------------------
EDITS = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                           st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6)


@FUZZ
@given(seed=st.sampled_from(sorted(SEEDS)), edits=EDITS)
def test_mutated_bytes_give_clean_errors(tmp_path_factory, seed, edits):
    data = bytearray(SEED_BYTES[seed])
    for kind, where, value in edits:
        if not data:
            break
        edit_bytes(data, kind, int(where * len(data)), value)
    path = tmp_path_factory.getbasetemp() / f"fuzz_{seed}.onnx"
    path.write_bytes(bytes(data))
    TRIED["bytes"] += 1
    import_cleanly(path, SEEDS[seed][1])


# ---- protobuf fields -------------------------------------------------------------------------
def _mutate(model: onnx.ModelProto, draw) -> None:
    g = model.graph
    kind = draw(st.sampled_from(["attr", "attr_type", "op_type", "input", "output", "init_dims", "init_type",
                                 "init_bytes", "input_dim", "opset", "ir", "drop_node", "dup_node", "domain"]))
    if kind in ("attr", "attr_type", "op_type", "input", "output", "drop_node", "dup_node", "domain") and g.node:
        node = g.node[draw(st.integers(0, len(g.node) - 1))]
        if kind == "attr" and node.attribute:
            attr = node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
            if attr.type == onnx.AttributeProto.INT:
                attr.i = draw(INTERESTING_INTS)
            elif attr.type == onnx.AttributeProto.INTS:
                attr.ints[:] = draw(st.lists(INTERESTING_INTS, max_size=6))
            elif attr.type == onnx.AttributeProto.FLOAT:
                attr.f = draw(FLOATS)
            elif attr.type == onnx.AttributeProto.STRING:
                attr.s = draw(st.sampled_from([b"", b"SAME_UPPER", b"reflect", b"linear", b"\xff\xfe", b"cubic"]))
        elif kind == "attr":
            node.attribute.append(onnx.helper.make_attribute(draw(st.sampled_from(["axis", "perm", "pads", "to"])),
                                                             draw(INTERESTING_INTS)))
        elif kind == "attr_type" and node.attribute:
            node.attribute[0].type = draw(st.integers(0, 14))
        elif kind == "op_type":
            node.op_type = draw(st.sampled_from(OP_TYPES))
        elif kind == "input" and node.input:
            names = [t.name for t in g.initializer] + [o for n in g.node for o in n.output] + ["", "nowhere"]
            node.input[draw(st.integers(0, len(node.input) - 1))] = draw(st.sampled_from(names))
        elif kind == "output" and node.output:
            node.output[0] = draw(st.sampled_from(["", "x", g.node[0].output[0], "fresh"]))
        elif kind == "drop_node":
            g.node.remove(node)
        elif kind == "dup_node":
            g.node.append(node)
        elif kind == "domain":
            node.domain = draw(st.sampled_from(["com.microsoft", "ai.onnx", "ai.onnx.ml"]))
    elif kind.startswith("init") and g.initializer:
        t = g.initializer[draw(st.integers(0, len(g.initializer) - 1))]
        if kind == "init_dims":
            t.dims[:] = draw(st.lists(INTERESTING_INTS, max_size=5))
        elif kind == "init_type":
            t.data_type = draw(st.integers(0, 26))
        else:
            t.raw_data = t.raw_data[: draw(st.integers(0, len(t.raw_data)))]
    elif kind == "input_dim" and g.input:
        dims = g.input[0].type.tensor_type.shape.dim
        if dims:
            dim = dims[draw(st.integers(0, len(dims) - 1))]
            value = draw(st.one_of(INTERESTING_INTS, st.sampled_from(["batch", "?", ""])))
            if isinstance(value, str):
                dim.dim_param = value
            else:
                dim.dim_value = value
    elif kind == "opset":
        model.opset_import[0].version = draw(st.integers(1, 40))
    elif kind == "ir":
        model.ir_version = draw(st.integers(0, 20))


@FUZZ
@given(seed=st.sampled_from(sorted(SEEDS)), data=st.data(), mutations=st.integers(1, 4),
       shapes_given=st.booleans())
def test_mutated_fields_give_clean_errors(seed, data, mutations, shapes_given):
    model = onnx.ModelProto()
    model.CopyFrom(SEEDS[seed][0])
    for _ in range(mutations):
        _mutate(model, data.draw)
    TRIED["fields"] += 1
    import_cleanly(model, SEEDS[seed][1] if shapes_given else None)


def test_report_how_many_inputs_were_tried():
    print(f"\nONNX frontend fuzz: {TRIED['bytes']} byte-mutated files and {TRIED['fields']} field-mutated "
          f"models, {sum(TRIED.values())} inputs in all; outcomes: {dict(OUTCOMES)}")
    assert sum(TRIED.values()) >= 500 or not all(TRIED.values())
