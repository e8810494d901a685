"""The compile report: per-pass rows plus frontend/backend facts, as JSON and as a table."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compiler.atomic import atomic_path
from compiler.manager import PassRecord


@dataclass
class Report:
    passes: list[PassRecord] = field(default_factory=list)
    target: str | list[str] | None = None   # a list when several targets were built
    output: str | list[str | None] | None = None
    model: dict[str, Any] = field(default_factory=dict)      # name, before/after summaries
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # per target: files, info, diff
    seconds: dict[str, float] = field(default_factory=dict)  # import, passes, verify, lower, total
    warnings: list[str] = field(default_factory=list)         # what the user must know about the result
    equivalence_inputs: str | None = None                     # what the equivalence checks ran on

    def to_dict(self) -> dict[str, Any]:
        return {
            "passes": [dataclasses.asdict(p) for p in self.passes],
            "target": self.target,
            "output": self.output,
            "model": self.model,
            "artifacts": self.artifacts,
            "seconds": self.seconds,
            "warnings": self.warnings,
            "equivalence_inputs": self.equivalence_inputs,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def write(self, path: Path | str) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_json() + "\n")
