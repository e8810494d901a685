"""The sweep's results on disk, one folder per point, named by the point's cache key.

`DIR/points/<key>/` holds the point's artifacts, `costs.json`, `report.json` and, written last,
`result.json`. A folder appears whole (built beside it, then renamed), so an interrupted sweep
leaves finished points and nothing half-written; the next run with the same model, data and
spec finds them and computes only the rest. The key hashes the model's IR and weights, the
example inputs, the calibration data, the evaluation callable's source, the cost settings and the
point's pipeline and targets: change any of them and the point is computed again.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from compiler.sweep.worker import CRASHED, FAILED, OK, PARTIAL, PointResult

RESULT = "result.json"


class PointStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.points = self.root / "points"

    def folder(self, key: str) -> Path:
        return self.points / key

    def load(self, key: str, retry_failed: bool = False) -> PointResult | None:
        """The stored result of a point, or None when it must be computed."""
        path = self.folder(key) / RESULT
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
            result = PointResult(key, data["status"], data["seconds"], data["metrics"], data.get("error", ""),
                                 attempts=data.get("attempts", 1), cpu_seconds=data.get("cpu_seconds", 0.0))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # damaged by hand: compute it again
        if result.status not in (OK, PARTIAL, FAILED) or (retry_failed and result.status != OK):
            return None
        return result

    def save(self, result: PointResult, label: str, text: str) -> None:
        """Write the point's folder whole; a crashed point (its worker died) is not kept."""
        if result.status == CRASHED:
            return
        self.points.mkdir(parents=True, exist_ok=True)
        final = self.folder(result.key)
        scratch = self.points / f".{result.key}.tmp-{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        for name, data in result.files.items():
            path = scratch / name
            if not path.resolve().is_relative_to(scratch.resolve()):
                raise ValueError(f"artifact path {name!r} leaves the point's folder")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        if result.detail:
            (scratch / "error.txt").write_text(result.detail)
        record = {"status": result.status, "label": label, "point": text, "seconds": result.seconds,
                  "cpu_seconds": result.cpu_seconds, "attempts": result.attempts, "error": result.error, "metrics": result.metrics}
        (scratch / RESULT).write_text(json.dumps(record, indent=2, default=str) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(scratch, final)

    def files(self, key: str) -> list[str]:
        """The point's files, relative to the sweep folder (for links in the report)."""
        folder = self.folder(key)
        if not folder.is_dir():
            return []
        return [str(p.relative_to(self.root)) for p in sorted(folder.rglob("*")) if p.is_file()]
