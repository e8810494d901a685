"""The default executor: a bounded pool of local worker processes.

Each worker receives the job (model, data, evaluation callable) once, when it starts, and then
one point at a time. Workers are forked where the platform allows (Linux: no re-import of torch
per worker), spawned elsewhere. A worker that dies (killed, out of memory, a crash in native code)
breaks the pool: the points it was running are run again one at a time on a fresh single-worker
pool (so the point that kills its worker is the only one charged for it), up to `attempts` times
in all, and then reported as crashed; the sweep goes on. At most `workers` points are in flight,
so a crash loses only those.
"""
from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

import torch

from compiler.sweep.job import Job
from compiler.sweep.spec import Point
from compiler.sweep.worker import CRASHED, PointResult, run_point

_JOB: Job | None = None  # the worker process's job, set once by its initializer


def _start_worker(job: Job) -> None:
    global _JOB
    _JOB = job
    torch.set_num_threads(job.settings.threads)


def _run(point: Point) -> PointResult:
    assert _JOB is not None, "worker started without a job"
    return run_point(_JOB, point)


def _context():
    fork = sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if fork else "spawn")


class LocalExecutor:
    """Runs points on `workers` local processes; a point whose worker dies gets `attempts` tries."""

    def __init__(self, workers: int, attempts: int = 3):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers, self.attempts = workers, attempts

    def run(self, job: Job, points: Sequence[Point], done: Callable[[Point, PointResult], None]) -> None:
        tries = {p.index: 0 for p in points}
        pending: list[Point] = list(points)
        suspects: list[Point] = []   # lost to a dead worker: run again alone
        while pending or suspects:
            if suspects:
                lost, suspects = self._round(job, suspects, tries, done, workers=1)
            else:
                lost, pending = self._round(job, pending, tries, done, self.workers)
            for point in lost:
                if tries[point.index] < self.attempts:
                    suspects.append(point)
                    continue
                done(point, PointResult(job.point_key(point.text), CRASHED, attempts=tries[point.index],
                                        error=f"the worker process died {tries[point.index]} times running this "
                                              "point (killed, out of memory, or a crash in native code)"))

    @staticmethod
    def _round(job: Job, points: list[Point], tries: dict[int, int],
               done: Callable[[Point, PointResult], None], workers: int) -> tuple[list[Point], list[Point]]:
        """Run points on a fresh pool, `workers` at a time, until they are done or a worker dies;
        returns the points lost with it and the ones not started."""
        crashed: list[Point] = []
        queue = list(reversed(points))
        pool = ProcessPoolExecutor(max_workers=min(workers, len(points)), mp_context=_context(),
                                   initializer=_start_worker, initargs=(job,))
        futures: dict[Future, Point] = {}

        def submit() -> None:
            while queue and len(futures) < workers and not crashed:
                point = queue.pop()
                tries[point.index] += 1
                futures[pool.submit(_run, point)] = point

        try:
            submit()
            while futures:
                finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in finished:
                    point = futures.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        crashed.append(point)
                        continue
                    result.attempts = tries[point.index]
                    done(point, result)
                submit()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return crashed, list(reversed(queue))
