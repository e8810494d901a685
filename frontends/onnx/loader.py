"""Loading an ONNX model safely: size limits, parse errors, IR version and opset checks.

Models older than opset 11 are converted by onnx's version converter, and the model's `notes`
say so (the report repeats them).

The file is read once and parsed with protobuf directly (never `onnx.load`, which would follow
external-data locations on its own); external data is read later, tensor by tensor, through
`external.py`, confined to the model's folder.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from google.protobuf.message import DecodeError

from compiler.errors import FrontendError, UserInputError
from frontends.onnx.limits import MAX_MODEL_BYTES, MAX_OPSET, MIN_OPSET, format_bytes
from frontends.onnx.wire import RawData, WireError, read_stripped

DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass
class OnnxModel:
    proto: onnx.ModelProto
    base_dir: Path | None     # the folder external data must stay in; None for an in-memory proto
    label: str                # how messages name the model
    name: str                 # the IR graph's name
    opset: int                # the ai.onnx opset the graph is written against
    raw_initializers: list[np.ndarray | None] = field(default_factory=list)  # raw_data read apart (wire.py)
    raw_attributes: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)  # (node, attribute) -> raw
    notes: list[str] = field(default_factory=list)   # what loading changed (an opset conversion)

    def raw_attribute(self, node_index: int, attribute_index: int) -> np.ndarray | None:
        return self.raw_attributes.get((node_index, attribute_index))


def load(model: str | Path | onnx.ModelProto) -> OnnxModel:
    raw = RawData()
    if isinstance(model, onnx.ModelProto):
        proto, base_dir, label = model, None, "the ONNX model"
        name = model.graph.name or "onnx_model"
    else:
        path = Path(model)
        (proto, raw), base_dir, label, name = _parse_file(path), path.parent, path.name, path.stem
    opset = _check_versions(proto, label)
    _check_names(proto, label)
    raw_initializers, raw_attributes = _place(proto, raw, label)
    if opset >= MIN_OPSET:
        return OnnxModel(proto, base_dir, label, name, opset, raw_initializers, raw_attributes)
    converted = _upgrade(proto, raw_initializers, raw_attributes, label, opset)
    note = f"{label} uses opset {opset}: converted to opset {MIN_OPSET} with onnx.version_converter"
    return OnnxModel(converted, base_dir, label, name, _check_versions(converted, label), notes=[note])


def _upgrade(proto: onnx.ModelProto, raw_initializers: list, raw_attributes: dict, label: str,
             opset: int) -> onnx.ModelProto:
    """The model at MIN_OPSET, converted by onnx's version converter (its weights put back in the
    protobuf first: the converter rewrites nodes and needs the tensors whole)."""
    from onnx import version_converter

    for tensor, raw in zip(proto.graph.initializer, raw_initializers):
        if raw is not None:
            tensor.raw_data = raw.tobytes()
    for (n, a), raw in raw_attributes.items():
        proto.graph.node[n].attribute[a].t.raw_data = raw.tobytes()
    try:
        return version_converter.convert_version(proto, MIN_OPSET)
    except Exception as exc:  # noqa: BLE001 - the converter raises bare RuntimeErrors from C++
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise FrontendError(f"{label} uses opset {opset}; nnforge imports opsets {MIN_OPSET} to {MAX_OPSET}, and "
                            f"onnx.version_converter could not convert it: {text}",
                            hint="re-export the model at opset 11 or newer") from None


def _place(proto: onnx.ModelProto, raw: RawData, label: str):
    """Match the raw_data read apart with the tensors they were cut from (same wire order)."""
    if not raw.initializer and not raw.attribute_tensor:
        return [], {}
    slots = [(n, a) for n, node in enumerate(proto.graph.node) for a, attr in enumerate(node.attribute)
             if attr.HasField("t")]
    if len(raw.initializer) != len(proto.graph.initializer) or len(slots) != len(raw.attribute_tensor):
        raise FrontendError(f"{label} is not a valid ONNX model: its tensors do not parse consistently",
                            hint="the file is corrupted")
    return raw.initializer, {slot: r for slot, r in zip(slots, raw.attribute_tensor) if r is not None}


def _parse_file(path: Path) -> tuple[onnx.ModelProto, RawData]:
    """The ModelProto without initializer bytes, and those bytes (wire.py reads each once)."""
    try:
        if not path.is_file():
            raise UserInputError(f"ONNX model file not found: {path}", hint="check the path")
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise UserInputError(f"{path.name} is {format_bytes(size)}; a single ONNX protobuf file cannot "
                                 "exceed 2 GiB", hint="save the model with its weights as external data")
        with open(path, "rb") as f:
            stripped, raw = read_stripped(f, size)
    except OSError as exc:
        raise UserInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (WireError, MemoryError) as exc:
        raise _not_onnx(path, exc) from None
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(stripped)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise _not_onnx(path, exc) from None
    return proto, raw


def _not_onnx(path: Path, exc: Exception) -> FrontendError:
    return FrontendError(f"{path.name} is not a valid ONNX model: the protobuf does not parse ({exc})",
                         hint="the file is truncated or corrupted; re-export or re-download it")


def _check_versions(proto: onnx.ModelProto, label: str) -> int:
    if not proto.HasField("graph") or (not proto.graph.node and not proto.graph.output):
        raise FrontendError(f"{label} is not an ONNX model: it has no graph",
                            hint="the file is truncated, corrupted, or not an .onnx model")
    if proto.ir_version > onnx.IR_VERSION:
        raise FrontendError(f"{label} has ONNX IR version {proto.ir_version}; the installed onnx "
                            f"{onnx.__version__} reads up to {onnx.IR_VERSION}", hint="upgrade onnx")
    opsets = [o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS]
    if not opsets:
        raise FrontendError(f"{label} does not import the standard ai.onnx opset",
                            hint="every ONNX model needs an opset_import entry for domain ''")
    if len(set(opsets)) > 1:
        raise FrontendError(f"{label} imports the ai.onnx opset twice ({sorted(set(opsets))})")
    opset = opsets[0]
    if opset < 1:
        raise FrontendError(f"{label} declares opset {opset}, which does not exist")
    if opset > MAX_OPSET:
        raise FrontendError(f"{label} uses opset {opset}, newer than the installed onnx {onnx.__version__} "
                            f"knows (up to {MAX_OPSET})", hint="upgrade onnx, or export with an older opset")
    return opset


def _check_names(proto: onnx.ModelProto, label: str) -> None:
    """Every name must be text: protobuf hands invalid UTF-8 in a corrupted file over as bytes."""
    g = proto.graph
    names = [g.name, *(vi.name for vi in (*g.input, *g.output, *g.value_info)), *(t.name for t in g.initializer),
             *(o.domain for o in proto.opset_import), *(f.name for f in proto.functions),
             *(f.domain for f in proto.functions)]
    for node in g.node:
        names += [node.op_type, node.domain, node.name, *node.input, *node.output, *(a.name for a in node.attribute)]
    if not all(isinstance(n, str) for n in names):
        raise FrontendError(f"{label} is corrupted: some names are not valid UTF-8 text",
                            hint="re-export or re-download the model")
