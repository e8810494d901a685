"""A seeded fuzz run through the whole compiler: mutated ONNX models, generated pipeline text and
mutated `.nnfir` files (tests/fuzz_cases.py) must each compile or end in one clean NNForgeError:
no other exception, no error admitting an nnforge bug, no case slower than 20 s.

The default run is a slice of 1,600 cases (about 15 s); NNFORGE_FUZZ_SCALE=10 runs ten
times as many, and bench/fuzz.py runs tens of thousands in sandboxed workers.
"""
from __future__ import annotations

import collections
import os
import time

import pytest

from tests.fuzz_cases import outcome

SCALE = float(os.environ.get("NNFORGE_FUZZ_SCALE", "1"))
CASES = {"onnx": int(600 * SCALE), "pipeline": int(600 * SCALE), "nnfir": int(400 * SCALE)}
CASE_SECONDS = 20


@pytest.mark.parametrize("kind", sorted(CASES))
def test_hostile_inputs_compile_or_fail_cleanly(kind, tmp_path, single_thread):
    counts: collections.Counter = collections.Counter()
    failures = []
    for index in range(CASES[kind]):
        started = time.perf_counter()
        result, detail = outcome(kind, index, tmp_path)
        seconds = time.perf_counter() - started
        counts[result] += 1
        if result not in ("ok", "clean") or seconds > CASE_SECONDS:
            failures.append(f"{kind} case {index}: {result} after {seconds:.1f} s\n{detail}")
    print(f"\n{kind}: {dict(counts)}")
    assert not failures, "\n\n".join(failures[:5])
    assert counts["ok"] > 0 and counts["clean"] > 0  # the cases reach both ends
