"""Fuzzing the whole compiler at scale: tens of thousands of hostile inputs, each in a sandboxed
worker with a time and a memory limit, counted by outcome.

The cases are tests/fuzz_cases.py's (mutated ONNX models, generated pipeline text, mutated .nnfir
files), numbered and seeded so any one reruns alone. Workers are long-lived processes (torch is
imported once); each runs under an address-space limit (RLIMIT_AS) set to what it holds after
warming up plus --memory, and nnforge's own memory bound (256 MiB per case) sits below it. A case
that runs past --seconds is a hang: its worker is killed and replaced.

Outcomes: ok (compiled), clean (one NNForgeError), internal (an NNForgeError admitting an nnforge
bug), traceback (any other exception), hang, memory (an allocation failed at the limit) and died
(the worker process ended, e.g. a native crash). The goal is zero of the last five.

    python bench/fuzz.py                               # 10,000 cases of each kind, 1 worker
    python bench/fuzz.py --cases 1000 --workers 2      # a quicker look
    python bench/fuzz.py --kind onnx --only 1234       # rerun one case here, with its traceback
"""
from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BAD = ("internal", "traceback", "hang", "memory", "died")
COLUMNS = ("ok", "clean") + BAD


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _worker(conn, memory_bytes: int) -> None:
    import torch

    from tests.fuzz_cases import KINDS, outcome
    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="nnforge-fuzz-"))
    for kind in KINDS:  # warm caches and lazy imports before the limit is set
        outcome(kind, 0, workdir)
    limit = _vm_size() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send("ready")
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send(outcome(*job, workdir))


class Worker:
    def __init__(self, memory_bytes: int):
        self.conn, child = mp.Pipe()
        self.process = mp.get_context("fork").Process(target=_worker, args=(child, memory_bytes), daemon=True)
        self.process.start()
        if self.conn.recv() != "ready":  # pragma: no cover
            raise RuntimeError("worker failed to start")

    def alive(self) -> bool:
        return self.process.is_alive()

    def close(self) -> None:
        if self.process.is_alive():
            self.conn.send(None)
            self.process.join(5)


def run_kind(kind: str, cases: range, workers: int, seconds: float,
             memory_bytes: int) -> tuple[collections.Counter, list]:
    pool = [Worker(memory_bytes) for _ in range(workers)]
    counts: collections.Counter = collections.Counter()
    failures = []
    pending = list(cases)
    busy: dict[int, tuple[int, float]] = {}
    # one case per worker at a time; workers answer in their own order
    while pending or busy:
        for slot, worker in enumerate(pool):
            if slot not in busy and pending:
                index = pending.pop(0)
                worker.conn.send((kind, index))
                busy[slot] = (index, time.monotonic())
        for slot, (index, started) in list(busy.items()):
            worker = pool[slot]
            result = None
            if worker.conn.poll(0.01):
                try:
                    result = worker.conn.recv()
                except EOFError:
                    result = ("died", f"worker exit code {worker.process.exitcode}")
            elif time.monotonic() - started > seconds:
                worker.process.kill()
                result = ("hang", f"no answer after {seconds:.0f} s")
            if result is None:
                continue
            del busy[slot]
            counts[result[0]] += 1
            if result[0] in BAD:
                failures.append((index, *result))
            if not worker.alive() or result[0] in ("hang", "died"):
                worker.process.join(5)
                pool[slot] = Worker(memory_bytes)
    for worker in pool:
        worker.close()
    return counts, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases of each kind")
    parser.add_argument("--first", type=int, default=0, help="number of the first case (to explore further)")
    parser.add_argument("--kind", default="onnx,pipeline,nnfir")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per case")
    parser.add_argument("--memory", type=float, default=1.5, help="GiB a worker may map beyond its start")
    parser.add_argument("--only", type=int, default=None, help="run this one case here and print its outcome")
    args = parser.parse_args(argv)
    kinds = args.kind.split(",")
    if args.only is not None:
        from tests.fuzz_cases import outcome
        for kind in kinds:
            print(kind, args.only, *outcome(kind, args.only, Path(tempfile.mkdtemp())))
        return 0
    print(f"{args.cases} cases of each kind, {args.workers} worker(s), {args.seconds:.0f} s and "
          f"{args.memory:g} GiB (address space beyond the worker's start) per case")
    print(f"{'kind':9s}" + "".join(f"{c:>10s}" for c in COLUMNS) + f"{'cases/s':>10s}")
    bad_total = 0
    for kind in kinds:
        started = time.perf_counter()
        counts, failures = run_kind(kind, range(args.first, args.first + args.cases), args.workers, args.seconds,
                                    int(args.memory * 2**30))
        rate = args.cases / (time.perf_counter() - started)
        print(f"{kind:9s}" + "".join(f"{counts[c]:>10d}" for c in COLUMNS) + f"{rate:>10.1f}", flush=True)
        for index, result, detail in failures[:10]:
            print(f"  {kind} #{index} {result}: {detail.strip().splitlines()[-1] if detail.strip() else ''}")
        bad_total += len(failures)
    return 1 if bad_total else 0


if __name__ == "__main__":
    sys.exit(main())
