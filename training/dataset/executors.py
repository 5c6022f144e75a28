"""Where shard jobs run: inline, a local process pool over all cores (default), or a Ray cluster.

A job is ``fn(*args)`` with a module-level ``fn`` (picklable) that writes its own output and returns a
small summary; ``run_jobs`` hands each summary to ``on_done`` as soon as it arrives, in completion order.
Worker processes are spawned (not forked) so that a driver with threads (progress bars, HTTP clients)
is safe; numba's on-disk cache keeps their warm-up short.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ExecutorError", "default_workers", "run_jobs"]


class ExecutorError(RuntimeError):
    """A pool or cluster that cannot run the jobs; the message says why."""


def default_workers() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _die_with_parent() -> None:
    """Worker initializer: on Linux, ask the kernel to kill this worker when the driver dies (even by SIGKILL)."""
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no libc by that name: orphans then exit when their queue breaks
        pass


def run_jobs(fn: Callable[..., Any], jobs: Sequence[tuple], *, workers: int | None = None, ray: str | None = None,
             on_done: Callable[[Any], None] = lambda _: None) -> None:
    """Run ``fn(*job)`` for every job on ``workers`` processes (or Ray at ``ray``: "auto", "local" or an address)."""
    if not jobs:
        return
    if ray:
        _run_ray(fn, jobs, ray, workers, on_done)
        return
    workers = workers or default_workers()
    if workers <= 1 or len(jobs) == 1:
        for job in jobs:
            on_done(fn(*job))
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx,
                             initializer=_die_with_parent) as pool:
        # Keep only a few jobs queued per worker, so that an interrupt leaves little started work behind.
        pending = list(jobs)[::-1]
        running = set()
        while pending or running:
            while pending and len(running) < 2 * workers:
                running.add(pool.submit(fn, *pending.pop()))
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                on_done(fut.result())


def _connect_ray(address: str, workers: int | None) -> None:
    import ray

    if ray.is_initialized():  # the caller (a test, a notebook) already chose the cluster
        return
    if address == "local":
        ray.init(num_cpus=workers, include_dashboard=False)
        return
    if address == "auto":
        try:
            ray.init(address="auto", include_dashboard=False)
        except (ConnectionError, RuntimeError, ValueError):  # no running cluster: start one on this machine
            ray.init(num_cpus=workers, include_dashboard=False)
        return
    try:
        ray.init(address=address)
    except Exception as err:  # ray raises many kinds; the user needs the address and the reason
        raise ExecutorError(f"--ray {address}: cannot connect to the Ray cluster ({type(err).__name__}: {err})") from None


def _run_ray(fn: Callable[..., Any], jobs: Sequence[tuple], address: str, workers: int | None,
             on_done: Callable[[Any], None]) -> None:
    try:
        import ray
    except ImportError:
        raise ExecutorError("--ray needs the 'scale' extra: pip install 'patchsmith[scale]'") from None
    _connect_ray(address, workers)
    remote = ray.remote(num_cpus=1, max_retries=2)(fn)
    refs = [remote.remote(*job) for job in jobs]
    while refs:
        done, refs = ray.wait(refs, num_returns=1)
        for ref in done:
            on_done(ray.get(ref))
