"""Where shard jobs run: inline, a local process pool over all cores (default), or a Ray cluster.

A job is ``fn(*args)`` with a module-level ``fn`` (picklable) that writes its own output and returns a
small summary; ``run_jobs`` hands each summary to ``on_done`` as soon as it arrives, in completion order.
A job may also call ``tick(n)`` as it finishes units of work (voices), so that a progress bar moves
while a long job runs: inline and on the process pool ``on_tick`` gets them (the pool's through a queue
that a driver thread drains); on Ray they are dropped and only ``on_done`` reports.
Worker processes are spawned (not forked) so that a driver with threads (progress bars, HTTP clients)
is safe; numba's on-disk cache keeps their warm-up short.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["ExecutorError", "default_workers", "run_jobs", "tick"]

# Where ``tick`` sends its counts: the driver's callback (inline jobs), a pool worker's queue, or nowhere.
_tick_sink: Any = None


def tick(n: int = 1) -> None:
    """Report ``n`` more units of the running job done (for progress bars); a no-op where nobody listens."""
    sink = _tick_sink
    if sink is None:
        return
    try:
        sink(n) if callable(sink) else sink.put(n)
    except (OSError, ValueError):  # the driver is gone or closed the queue: progress is only for display
        pass


class ExecutorError(RuntimeError):
    """A pool or cluster that cannot run the jobs; the message says why."""


def default_workers() -> int:
    """All the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _init_worker(ticks: Any) -> None:
    """Worker initializer: send ``tick`` counts to the driver's queue, and die with the driver."""
    global _tick_sink
    _tick_sink = ticks
    _die_with_parent()


def _die_with_parent() -> None:
    """On Linux, ask the kernel to kill this worker when the driver dies (even by SIGKILL)."""
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
             on_done: Callable[[Any], None] = lambda _: None, on_tick: Callable[[int], None] | None = None) -> None:
    """Run ``fn(*job)`` for every job on ``workers`` processes (or Ray at ``ray``: "auto", "local" or an address)."""
    global _tick_sink
    if not jobs:
        return
    if ray:
        _run_ray(fn, jobs, ray, workers, on_done)
        return
    workers = workers or default_workers()
    if workers <= 1 or len(jobs) == 1:
        outer, _tick_sink = _tick_sink, on_tick
        try:
            for job in jobs:
                on_done(fn(*job))
        finally:
            _tick_sink = outer
        return
    import multiprocessing
    import queue
    import threading
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")
    ticks = ctx.Queue() if on_tick is not None else None
    finished = threading.Event()
    drain = None
    if ticks is not None:
        def forward() -> None:
            # Only this thread reads and the driver never writes: a worker killed mid-write cannot block it.
            while True:
                try:
                    on_tick(ticks.get(timeout=0.1))
                except queue.Empty:
                    if finished.is_set():
                        return
                except (OSError, ValueError, EOFError):  # a broken pipe: the pool reports its own error
                    return

        drain = threading.Thread(target=forward, name="patchsmith-ticks", daemon=True)
        drain.start()
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=ctx, initializer=_init_worker,
                                 initargs=(ticks,)) as pool:
            # Keep only a few jobs queued per worker, so that an interrupt leaves little started work behind.
            pending = list(jobs)[::-1]
            running = set()
            while pending or running:
                while pending and len(running) < 2 * workers:
                    running.add(pool.submit(fn, *pending.pop()))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    on_done(fut.result())
    finally:
        finished.set()  # the pool has shut down: its workers have flushed their ticks and exited
        if drain is not None:
            drain.join(timeout=5.0)


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
