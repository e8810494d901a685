"""The Ray executor (`--executor ray`): each point is a Ray task, for sweeps that outgrow a machine.

The job (model IR, weights, data, evaluation source) is put in Ray's object store once and every
task reads it from there. A task whose worker dies is retried by Ray (`attempts` in all); a point
that still cannot finish is reported as crashed and the sweep goes on. Workers on other machines
need nnforge installed; they need no shared filesystem (artifacts come back as bytes). A Ray
connection the caller already made (`ray.init(...)` before `run_sweep`) is used as it is.
"""
from __future__ import annotations

import socket
from typing import Callable, Sequence

from compiler.errors import UserInputError
from compiler.sweep.job import Job
from compiler.sweep.spec import Point
from compiler.sweep.worker import CRASHED, PointResult, run_point

INSTALL = "pip install 'nnforge[ray]'   (or: pip install ray)"
CONNECT_TIMEOUT_S = 5.0


def _ray():
    try:
        import ray
    except ImportError:
        raise UserInputError("--executor ray needs Ray, which is not installed", hint=INSTALL) from None
    return ray


def _reachable(address: str) -> None:
    """Refuse an address nothing listens on right away (ray.init would retry it for minutes)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserInputError(f"Ray address '{address}' is not host:port",
                             hint="e.g. --address 10.0.0.5:6379 (the head node's GCS port), ray://host:10001, or auto")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise UserInputError(f"cannot reach the Ray cluster at {address}: {exc}",
                             hint="start it with `ray start --head` on that machine, check the address, or "
                                  "leave out --address to start a local Ray instance") from None


def _task(job: Job, point: Point) -> PointResult:
    return run_point(job, point)


class RayExecutor:
    """Runs points as Ray tasks on the cluster at `address` (none: a local instance of `workers` CPUs)."""

    def __init__(self, address: str | None = None, workers: int | None = None, attempts: int = 3):
        self.address, self.workers, self.attempts = address, workers, attempts
        self.ray = _ray()
        if address and not self.ray.is_initialized():
            _reachable(address)  # before the model is imported, not after

    def run(self, job: Job, points: Sequence[Point], done: Callable[[Point, PointResult], None]) -> None:
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            self._connect()
        try:
            job_ref = ray.put(job)
            task = ray.remote(num_cpus=1, max_retries=self.attempts - 1)(_task)
            refs = {task.remote(job_ref, point): point for point in points}
            while refs:
                finished, _ = ray.wait(list(refs), num_returns=1)
                for ref in finished:
                    point = refs.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                        result = PointResult(job.point_key(point.text), CRASHED, attempts=self.attempts,
                                             error=f"the Ray task failed {self.attempts} times: {first}")
                    done(point, result)
        finally:
            if started_here:
                ray.shutdown()

    def _connect(self) -> None:
        ray = self.ray
        options = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if self.address:
            try:
                ray.init(address=self.address, **options)
            except (ConnectionError, RuntimeError) as exc:
                raise UserInputError(f"cannot connect to the Ray cluster at {self.address}: {exc}",
                                     hint="start it with `ray start --head`, or leave out --address") from None
        else:
            ray.init(num_cpus=self.workers, **options)
