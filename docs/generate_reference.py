"""Writes docs/passes.md, docs/ops.md and docs/onnx-ops.md from the pass and op registries and
the ONNX frontend's mapping table.

    python docs/generate_reference.py          # rewrite the files
    python docs/generate_reference.py --check  # exit 1 if any is stale
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compiler.backend import all_backends  # noqa: E402
from compiler.options import describe_type, format_value, option_fields  # noqa: E402
from compiler.ops import all_ops  # noqa: E402
from compiler.passes import all_passes  # noqa: E402

DOCS = Path(__file__).resolve().parent


def _default(field):
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()


def _options_table(cls) -> list[str]:
    fields = option_fields(cls)
    if not fields:
        return ["No options.", ""]
    lines = ["| option | type | default |", "|---|---|---|"]
    for name, (field, tp) in fields.items():
        lines.append(f"| `{name}` | {describe_type(field, tp).replace('|', '&#124;')} | `{format_value(_default(field))}` |")
    return lines + [""]


def passes_markdown() -> str:
    lines = ["# Pass reference", "", "Generated from the pass registry by `docs/generate_reference.py`.", ""]
    for name, cls in all_passes().items():
        lines += [f"## `{name}` ({'exact' if cls.exact else 'lossy'})", "", (cls.__doc__ or "").strip(), ""]
        lines += _options_table(cls)
    lines += ["# Targets", ""]
    for name, cls in all_backends().items():
        lines += [f"## `target {name}`", "", (cls.__doc__ or "").strip(), ""]
        lines += _options_table(cls)
    return "\n".join(lines).rstrip() + "\n"


def ops_markdown() -> str:
    lines = ["# Op reference", "", "Generated from the op registry by `docs/generate_reference.py`. "
             "Each op's torch reference is the call the interpreter runs and the PyTorch backend emits.", ""]
    lines += ["| op | inputs | attributes | meaning |", "|---|---|---|---|"]
    for name, op in sorted(all_ops().items()):
        attrs = ", ".join(f"{a}: {spec.kind}" + (f" = {format_value(spec.default)}"
                                                 if spec.default is not _required() else "")
                          for a, spec in op.attrs.items())
        cells = [f"`{name}`", ", ".join(op.inputs), attrs, op.doc]
        lines.append("| " + " | ".join(c.replace("|", "&#124;") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def onnx_ops_markdown() -> str:
    from frontends.onnx import MAPPINGS
    from frontends.onnx.limits import MIN_OPSET
    from frontends.onnx.table import CONTROL_FLOW

    lines = ["# ONNX ops the frontend imports", "",
             "Generated from the ONNX frontend's mapping table (`frontends/onnx/table.py`) by "
             "`docs/generate_reference.py`. See [onnx-frontend.md](onnx-frontend.md) for how import works.", "",
             f"Opsets {MIN_OPSET} to the newest one the installed onnx knows, of the default `ai.onnx` "
             f"domain (older models are converted to opset {MIN_OPSET} by onnx.version_converter on import, "
             f"and the report says so); {len(MAPPINGS)} op types. Inputs listed as static must be constants after folding "
             "(initializers, Constant nodes, or anything computed from shapes). Anything not listed, "
             f"control flow ({', '.join(CONTROL_FLOW)}) and ops of other domains are refused, all of them in "
             "one error.", "",
             "| ONNX op | becomes (IR) | notes |", "|---|---|---|"]
    for name, mapping in sorted(MAPPINGS.items()):
        cells = [f"`{name}`", mapping.ir_ops, mapping.note]
        lines.append("| " + " | ".join(c.replace("|", "&#124;") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _required():
    from compiler.ops.registry import REQUIRED
    return REQUIRED


def generated() -> dict[Path, str]:
    return {DOCS / "passes.md": passes_markdown(), DOCS / "ops.md": ops_markdown(),
            DOCS / "onnx-ops.md": onnx_ops_markdown()}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = [p for p, text in generated().items() if not p.is_file() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"stale: {p} (run python docs/generate_reference.py)")
        return 1 if stale else 0
    for p, text in generated().items():
        p.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
