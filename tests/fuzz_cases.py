"""Seeded hostile inputs for the whole compiler, shared by tests/test_fuzz_hardening.py (a short
run) and bench/fuzz.py (tens of thousands of cases with per-case time and memory limits).

Three kinds, each case rebuilt from (kind, index) alone so a failure reruns by its number:

* `onnx`: a seed model (small CNN, exporter-style shape chain, most op families) mutated in its
  bytes or its protobuf fields, then compiled end to end (pipeline, one or two targets, sometimes
  written to disk and checked for equivalence);
* `pipeline`: pipeline text built from real and bogus pass names, options and values (huge, NaN,
  bad escapes, deep nesting), sometimes mangled character by character, then parsed and, when it
  parses, run on a small conv net;
* `nnfir`: printed IR of a few graphs (one quantized, one with inf/NaN constants) mutated line
  by line and token by token, then loaded from disk with its weights and compiled.

`outcome(kind, index, workdir)` runs one case and names what happened: `ok`, `clean` (one
NNForgeError), `internal` (an NNForgeError admitting an nnforge bug: a pass crash, a rejected
lowering), `memory` (an allocation failed: the process hit its memory limit) or `traceback` (any
other exception).
"""
from __future__ import annotations

import math
import random
import struct
import re
import traceback
import types
import typing
from functools import lru_cache
from pathlib import Path

import onnx
import torch

from compiler import memory
from compiler.api import compile
from compiler.errors import NNForgeError
from compiler.ir import Graph, TensorType
from compiler.ops import all_ops
from compiler.passes import all_passes
from compiler.options import format_value, option_fields, option_range
from compiler.printer import print_graph
from tests.onnx_models import mixed_ops, shape_chain, small_cnn

KINDS = ("onnx", "pipeline", "nnfir")
CASE_MEMORY = "256MiB"  # nnforge's own bound for each case; bench/fuzz.py puts a hard limit above it
INTERNAL = ("bug in nnforge", "please report")


def outcome(kind: str, index: int, workdir: Path) -> tuple[str, str]:
    """(outcome, detail) of case `index` of `kind`."""
    rng = random.Random(f"{kind}-{index}")
    try:
        with memory.memory_limit(CASE_MEMORY):
            CASES[kind](rng, Path(workdir))
        return "ok", ""
    except NNForgeError as exc:
        text = exc.render()
        return ("internal" if any(s in text for s in INTERNAL) else "clean"), text.splitlines()[0][:200]
    except MemoryError:
        return "memory", "MemoryError"
    except RuntimeError as exc:  # torch and onnxruntime report a failed allocation this way
        if any(s in str(exc) for s in ("can't allocate memory", "bad_alloc", "Failed to allocate")):
            return "memory", str(exc)[:200]
        return "traceback", "".join(traceback.format_exception(exc))[-1500:]
    except Exception as exc:  # noqa: BLE001 - this is what the fuzzer hunts
        return "traceback", "".join(traceback.format_exception(exc))[-1500:]


# ---- onnx ----------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _onnx_seeds() -> dict[str, tuple[bytes, list[tuple[int, ...]]]]:
    return {"small_cnn": (small_cnn(batch="N").SerializeToString(), [(2, 3, 8, 8)]),
            "shape_chain": (shape_chain().SerializeToString(), [(2, 3, 4, 4)]),
            "mixed_ops": (mixed_ops().SerializeToString(), [(2, 4, 4, 4)])}


INTS = [-3, -1, 0, 1, 2, 3, 7, 12, 2**31 - 1, 2**31, 2**62, -2**63, 2**63 - 1]
FLOATS = [0.0, -0.0, 0.5, -1.0, 1e30, -1e-30, math.nan, math.inf, -math.inf]


def _onnx_case(rng: random.Random, workdir: Path) -> None:
    name = rng.choice(sorted(_onnx_seeds()))
    data, shapes = _onnx_seeds()[name]
    if rng.random() < 0.25:
        data = _mutate_bytes(rng, bytearray(data))
    else:
        model = onnx.ModelProto()
        model.ParseFromString(data)
        for _ in range(rng.randint(1, 3)):
            _mutate_fields(rng, model)
        data = model.SerializeToString()
    path = workdir / "case.onnx"
    path.write_bytes(data)
    target = rng.choice(["onnx", "pytorch", ["onnx", "pytorch"]])
    output = None
    if rng.random() < 0.3:
        output = [workdir / "out.onnx", workdir / "out_pt"] if isinstance(target, list) else \
            workdir / ("out.onnx" if target == "onnx" else "out_pt")
    compile(path, input_shapes=shapes if rng.random() < 0.9 else None, target=target, output=output,
            pipeline=rng.choice(["", "fold-constants,dce", "fold-bn,dce", "reparam"]),
            check_equivalence=rng.random() < 0.5)


BYTE_EDITS = ("flip", "set", "insert", "delete", "truncate")


def edit_bytes(data: bytearray, kind: str, i: int, value: int) -> None:
    """One mutation of a file's bytes at offset `i` (the hypothesis test and the seeded run share it)."""
    if kind == "flip":
        data[i] ^= 1 << (value % 8)
    elif kind == "set":
        data[i] = value
    elif kind == "insert":
        data[i:i] = bytes([value]) * (1 + value % 7)
    elif kind == "delete":
        del data[i:i + 1 + value % 16]
    else:
        del data[i:]


def _mutate_bytes(rng: random.Random, data: bytearray) -> bytes:
    for _ in range(rng.randint(1, 6)):
        if not data:
            break
        i, value = rng.randrange(len(data)), rng.randrange(256)
        edit_bytes(data, rng.choice(BYTE_EDITS), i, value)
    return bytes(data)


def _mutate_fields(rng: random.Random, model: onnx.ModelProto) -> None:
    g = model.graph
    kind = rng.choice(["attr", "attr", "attr_type", "op_type", "input", "output", "init_dims", "init_type",
                       "init_bytes", "init_values", "init_values", "input_dim", "opset", "drop_node", "dup_node",
                       "name"])
    node = rng.choice(g.node) if g.node else None
    if kind == "attr" and node is not None and node.attribute:
        attr = rng.choice(node.attribute)
        if attr.type == onnx.AttributeProto.INT:
            attr.i = rng.choice(INTS)
        elif attr.type == onnx.AttributeProto.INTS:
            attr.ints[:] = [rng.choice(INTS) for _ in range(rng.randint(0, 6))]
        elif attr.type == onnx.AttributeProto.FLOAT:
            attr.f = rng.choice(FLOATS)
        elif attr.type == onnx.AttributeProto.STRING:
            attr.s = rng.choice([b"", b"SAME_UPPER", b"reflect", b"linear", b"\xff\xfe", b"cubic", b"wrap"])
    elif kind == "attr" and node is not None:
        node.attribute.append(onnx.helper.make_attribute(rng.choice(["axis", "perm", "pads", "to", "epsilon"]),
                                                         rng.choice(INTS)))
    elif kind == "attr_type" and node is not None and node.attribute:
        node.attribute[0].type = rng.randint(0, 14)
    elif kind == "op_type" and node is not None:
        node.op_type = rng.choice(["Relu", "Conv", "MaxPool", "Gemm", "Softmax", "Reshape", "Concat", "Pad",
                                   "LayerNormalization", "If", "Einsum", "", "\u00e9"])
    elif kind == "input" and node is not None and node.input:
        names = [t.name for t in g.initializer] + [o for n in g.node for o in n.output] + ["", "nowhere"]
        node.input[rng.randrange(len(node.input))] = rng.choice(names)
    elif kind == "output" and node is not None and node.output:
        node.output[0] = rng.choice(["", "x", g.node[0].output[0], "fresh", *(t.name for t in g.initializer)])
    elif kind == "drop_node" and node is not None:
        g.node.remove(node)
    elif kind == "dup_node" and node is not None:
        g.node.append(node)
    elif kind.startswith("init") and g.initializer:
        t = rng.choice(g.initializer)
        if kind == "init_dims":
            t.dims[:] = [rng.choice(INTS) for _ in range(rng.randint(0, 5))]
        elif kind == "init_type":
            t.data_type = rng.randint(0, 26)
        elif kind == "init_values" and t.data_type == onnx.TensorProto.FLOAT and len(t.raw_data) >= 4:
            values = bytearray(t.raw_data)
            for _ in range(rng.randint(1, 4)):
                i = 4 * rng.randrange(len(values) // 4)
                values[i:i + 4] = struct.pack("<f", rng.choice(FLOATS + [3e38, -3e38, 1e-45]))
            t.raw_data = bytes(values)
        elif kind == "init_bytes":
            t.raw_data = t.raw_data[:rng.randint(0, len(t.raw_data))]
    elif kind == "input_dim" and g.input and g.input[0].type.tensor_type.shape.dim:
        dim = rng.choice(g.input[0].type.tensor_type.shape.dim)
        if rng.random() < 0.3:
            dim.dim_param = rng.choice(["batch", "?", ""])
        else:
            dim.dim_value = rng.choice(INTS)
    elif kind == "opset":
        model.opset_import[0].version = rng.randint(1, 40)
    elif kind == "name":
        g.name = rng.choice(['g"""\nimport os\n"""', "self", "", "\u00e9\u200b", "x" * 300, "graph"])


# ---- pipeline ------------------------------------------------------------------------------------
def _value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if roll < 0.3:
        return str(rng.choice(INTS + [0, 1, 2, 4, 8, 16, 32, 100, -2**31, 10**30]))
    if roll < 0.45:
        return rng.choice(["0.5", "0.0", "1e-3", "1e999", "-1e999", "nan", "inf", "0.999", "100.0", "1e-320"])
    if roll < 0.6:
        return rng.choice(["l1", "random", "taylor", "global", "int4", "fp4-e2m1", "mxfp4", "nvfp4", "none",
                           "true", "false", "fp-bias", "group", "channel", "tensor", "percentile", "int9"])
    if roll < 0.7:
        return rng.choice(['"x"', '"\\N{x}"', '"\\ud800"', '"a\\"b"', '"\\u00e9"', '"\\q"', '"', '"fc*"', '""'])
    if roll < 0.85 and depth < 3:
        items = [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        return "[" + ",".join(items) + "]"
    if roll < 0.95 and depth < 3:
        items = [f"{rng.choice(['a', 'fc', 'conv', 'layer1'])}={_value(rng, depth + 1)}"
                 for _ in range(rng.randint(0, 3))]
        return "{" + ",".join(items) + "}"
    if rng.random() < 0.3:
        depth = rng.choice([33, 200, 600])
        return "[" * depth + "1" + "]" * depth
    return rng.choice(["1", "[]", "{}", "[[1]]"])


def _plausible_value(rng: random.Random, field, tp) -> str:
    """A value of the option's own type, often at the edges of its declared range."""
    bounds, origin, args = option_range(field), typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return format_value(rng.choice(args))
    if origin in (typing.Union, types.UnionType):
        return _plausible_value(rng, field, rng.choice([a for a in args if a is not type(None)]))
    if origin in (list, tuple):
        return "[" + ",".join(rng.choice(["fc", "conv", "c1.w", "*"]) for _ in range(rng.randint(0, 2))) + "]"
    if origin is dict:
        inner = _plausible_value(rng, field, args[1])
        return "{" + f"{rng.choice(['fc', 'c1', 'conv'])}={inner}" + "}"
    if tp is bool:
        return rng.choice(["true", "false"])
    if tp is str:
        return rng.choice(["int8", "int4", "int2", "uint8", "fp4-e2m1", "fp8-e4m3", "mxfp4", "nvfp4", "int8-asym",
                           "none"])
    if bounds is not None and tp in (int, float):
        low = bounds.low if bounds.low is not None else -10
        high = bounds.high if bounds.high is not None else 10
        picks = [low, high, low + (high - low) * rng.random(), low + 1, min(high, low + 3)]
        value = rng.choice(picks)
        if tp is int:
            return str(int(value))
        return repr(float(value))
    return _value(rng)


def _pipeline_text(rng: random.Random) -> str:
    passes = all_passes()
    items = []
    plausible = rng.random() < 0.6
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(sorted(passes) + ([] if plausible else ["fold_bn", "prune2", "target", ""]))
        fields = option_fields(passes[name]) if name in passes else {}
        opts = {}
        for _ in range(rng.randint(0, 4)):
            key = rng.choice(list(fields) + ([] if plausible else ["bogus", "ratio", "seed"]) or ["x"])
            opts[key] = _plausible_value(rng, *fields[key]) if plausible and key in fields else _value(rng)
        text = ",".join(f"{k}={v}" for k, v in opts.items())
        items.append(name + ("{" + text + "}" if opts or rng.random() < 0.1 else ""))
    if rng.random() < 0.15:
        items.insert(0, "target " + rng.choice(["onnx{opset=" + rng.choice(["13", "18", "99"]) + "}", "pytorch", "x"]))
    text = rng.choice([",", "\n", ", ", "\n# note\n"]).join(items)
    if not plausible and rng.random() < 0.4:
        chars = list(text)
        for _ in range(rng.randint(1, 5)):
            i = rng.randint(0, len(chars))
            if rng.random() < 0.5 and chars:
                del chars[min(i, len(chars) - 1)]
            else:
                chars.insert(i, rng.choice('{}[]=,"\\\n#x0-.\0\xe9'))
        text = "".join(chars)
    return text


def tiny_cnn() -> Graph:
    """conv -> batch_norm -> relu -> conv -> relu -> pool -> linear: every pass has work here."""
    gen = torch.Generator().manual_seed(0)
    g = Graph("tiny")
    x = g.add_input("x", TensorType((2, 3, 8, 8), torch.float32))
    conv = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
    h = g.create_node("conv", [x, g.add_weight("c1.w", torch.randn(8, 3, 3, 3, generator=gen)), None], conv).output
    bn = [g.add_constant(f"bn.{k}", torch.rand(8, generator=gen) + 0.5) for k in ("mean", "var")]
    h = g.create_node("batch_norm", [h, *bn, g.add_weight("bn.w", torch.randn(8, generator=gen)),
                                     g.add_weight("bn.b", torch.randn(8, generator=gen))]).output
    h = g.create_node("relu", [h]).output
    h = g.create_node("conv", [h, g.add_weight("c2.w", torch.randn(8, 8, 3, 3, generator=gen)),
                               g.add_weight("c2.b", torch.randn(8, generator=gen))], conv).output
    h = g.create_node("relu", [h]).output
    h = g.create_node("adaptive_avg_pool", [h], {"output_size": (1, 1)}).output
    h = g.create_node("reshape", [h], {"shape": (2, 8)}).output
    g.outputs = [g.create_node("linear", [h, g.add_weight("fc.w", torch.randn(4, 8, generator=gen)), None]).output]
    return g


def _pipeline_case(rng: random.Random, workdir: Path) -> None:
    from compiler.pipeline import parse_pipeline
    pipeline = parse_pipeline(_pipeline_text(rng))
    if pipeline.passes:
        compile(tiny_cnn(), pipeline=pipeline, check_equivalence=rng.random() < 0.3)


# ---- nnfir ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _nnfir_seeds() -> dict[str, tuple[str, dict[str, torch.Tensor]]]:
    special = Graph("special")
    x = special.add_input("x", TensorType((1, 3), torch.float32))
    c = special.add_constant("c", torch.tensor([-math.inf, 0.5, math.nan]))
    special.outputs = [special.create_node("clip", [special.create_node("add", [x, c]).output],
                                           {"min": -1.0, "max": math.inf}).output]
    quantized = compile(tiny_cnn(), pipeline="fold-bn,quantize{weights=int4,calibration=1}").graph
    seeds = {"tiny": tiny_cnn(), "special": special, "quantized": quantized}
    return {k: (print_graph(g), {n: w.data.detach().contiguous().clone() for n, w in g.weights.items()
                                 if w.data is not None})
            for k, g in seeds.items()}


TOKEN = re.compile(r"%[A-Za-z0-9_.]+|-?[0-9][0-9.e+-]*|[A-Za-z_][A-Za-z0-9_.\-]*|\S")
REPLACEMENTS = ["9" * 60, "-1", "0", "2147483648", "nan", "-inf", "1e999", "f16", "i8", "bf16", "bool", "%x",
                "%nowhere",
                "None", "[", "]", "{", "}", '"\\N{x}"', "@quant<format='int8'>", "@quant<(((>", "relu", "conv", "=",
                ",", "return", "graph", "weight", "constant", "\u00e9", "\"", "#"]


def _nnfir_case(rng: random.Random, workdir: Path) -> None:
    from safetensors.torch import save_file
    text, weights = _nnfir_seeds()[rng.choice(sorted(_nnfir_seeds()))]
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        kind = rng.choices(["delete", "duplicate", "swap", "token", "insert", "nest"], [1, 1, 1, 6, 1, 0.5])[0]
        if kind == "delete" and len(lines) > 1:
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "token":
            spans = [m.span() for m in TOKEN.finditer(lines[i]) if rng.random() < 0.2 or m.group()[-1].isalnum()]
            if spans:
                a, b = rng.choice(spans)
                lines[i] = lines[i][:a] + _replacement(rng, lines[i][a:b], text) + lines[i][b:]
        elif kind == "insert":
            j = rng.randint(0, len(lines[i]))
            lines[i] = lines[i][:j] + rng.choice(REPLACEMENTS) + lines[i][j:]
        else:
            depth = rng.choice([3, 8, 40, 400])
            lines[i] = lines[i].replace("[", "[" * depth, 1).replace("]", "]" * depth, 1)
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if rng.random() < 0.05:
        data = data[:rng.randrange(len(data) + 1)] + bytes([rng.randrange(128, 256)])
    (workdir / "case.nnfir").write_bytes(data)
    save_file(weights, str(workdir / "case.safetensors"))
    compile(workdir / "case.nnfir", target=rng.choice(["onnx", "pytorch", ["onnx", "pytorch"]]),
            check_equivalence=rng.random() < 0.5)


def _replacement(rng: random.Random, token: str, text: str) -> str:
    """Half the time a token of the same kind (a graph that still parses, with other numbers,
    values, ops or dtypes), else anything from REPLACEMENTS."""
    if rng.random() < 0.75:
        if token[0].isdigit() or token[0] == "-":
            return rng.choice(["0", "1", "2", "3", "4", "8", "-1", "-2", "0.0", "1e-9", "65536"])
        if token.startswith("%"):
            return rng.choice(re.findall(r"%[A-Za-z0-9_.]+", text))
        if token in ("f32", "f16", "bf16", "f64", "i64", "i32", "i8", "u8", "bool"):
            return rng.choice(["f32", "f16", "bf16", "f64", "i64", "i32", "i8", "u8", "bool"])
        if token in all_ops():
            return rng.choice(sorted(all_ops()))
    return rng.choice(REPLACEMENTS)


CASES = {"onnx": _onnx_case, "pipeline": _pipeline_case, "nnfir": _nnfir_case}
