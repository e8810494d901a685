"""The collect-all support check, run before any translation.

`unsupported_ops(model)` walks every node once and returns every op the mapping table cannot
take (control flow, custom domains, ops without a mapping, ops the model's opset does not
define), grouped by op type with the nodes that use it. `require_supported` raises one
FrontendError listing all of them, so `nnforge inspect model.onnx` shows the whole list at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import onnx

from compiler.errors import FrontendError
from frontends.onnx.loader import DEFAULT_DOMAINS, OnnxModel
from frontends.onnx.table import CONTROL_FLOW, MAPPINGS

SHOWN_NODES = 3


@dataclass
class Unsupported:
    op_type: str
    domain: str
    reason: str
    nodes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        op = f"{self.domain}::{self.op_type}" if self.domain not in DEFAULT_DOMAINS else self.op_type
        shown = ", ".join(f"'{n}'" for n in self.nodes[:SHOWN_NODES])
        more = f" and {len(self.nodes) - SHOWN_NODES} more" if len(self.nodes) > SHOWN_NODES else ""
        count = f"{len(self.nodes)} node{'s' if len(self.nodes) != 1 else ''}"
        return f"{op} ({self.reason}): {count}: {shown}{more}"


def unsupported_ops(model: OnnxModel) -> list[Unsupported]:
    """Every op of the main graph nnforge cannot import, in order of first use."""
    found: dict[tuple[str, str], Unsupported] = {}
    local_functions = {(f.domain, f.name) for f in model.proto.functions}
    for label, node in _all_nodes(model.proto.graph, ""):
        reason = _reason(node, model.opset, local_functions)
        if reason:
            key = (node.domain, node.op_type)
            entry = found.setdefault(key, Unsupported(node.op_type, node.domain, reason))
            entry.nodes.append(label)
    return list(found.values())


def _all_nodes(graph: onnx.GraphProto, scope: str):
    """(label, node) of every node, inside If branches too (which branch is used is decided later)."""
    for index, node in enumerate(graph.node):
        label = scope + (node.name or f"#{index}")
        yield label, node
        if node.op_type == "If" and node.domain in DEFAULT_DOMAINS:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    yield from _all_nodes(attr.g, f"{label}/{attr.name}/")


def _reason(node: onnx.NodeProto, opset: int, local_functions: set[tuple[str, str]]) -> str:
    if (node.domain, node.op_type) in local_functions:
        return "a model-local function; inline it first with onnx.inliner.inline_local_functions"
    if node.domain not in DEFAULT_DOMAINS:
        return f"custom domain '{node.domain}'"
    if node.op_type in CONTROL_FLOW:
        return "control flow: subgraphs whose shapes or trip counts depend on data"
    if node.op_type not in MAPPINGS:
        return "no mapping in nnforge" if _defined(node.op_type, opset) else f"not an ONNX op at opset {opset}"
    if not _defined(node.op_type, opset):
        return f"not defined at opset {opset}"
    return ""


def _defined(op_type: str, opset: int) -> bool:
    try:
        onnx.defs.get_schema(op_type, opset, "")
        return True
    except onnx.defs.SchemaError:
        return False


def require_supported(model: OnnxModel) -> None:
    missing = unsupported_ops(model)
    if not missing:
        return
    lines = "\n  - ".join(u.describe() for u in missing)
    total = sum(len(u.nodes) for u in missing)
    hint = "docs/onnx-ops.md lists the ONNX ops nnforge imports"
    if any(u.op_type in CONTROL_FLOW for u in missing):
        hint += ("; control flow must go before import (export with static shapes, or fold it with "
                 "onnxsim/onnxslim where its condition is constant)")
    raise FrontendError(
        f"{model.label} (opset {model.opset}) uses {len(missing)} ONNX op type(s) nnforge cannot import, "
        f"in {total} node(s):\n  - {lines}", hint=hint)
