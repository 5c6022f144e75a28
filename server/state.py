"""What every call of one server shares: the render cache, the preset library, and the CPU workers.

Rendering and measuring are CPU work (numba kernels that release the GIL, numpy): they run on worker
threads, at most one per core at a time, so the event loop keeps answering other clients and memory
stays bounded however many calls are waiting.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .limits import RENDER_CACHE_BYTES, RENDER_CACHE_ENTRIES
from .presets import PresetLibrary
from .renders import ArtifactCache

T = TypeVar("T")
Progress = Callable[[float, float, str], Awaitable[None]]


class ServerState:
    """The cache, the library and the worker limit of one server."""

    def __init__(self, cache_bytes: int = RENDER_CACHE_BYTES, workers: int | None = None,
                 presets: PresetLibrary | None = None):
        self.cache = ArtifactCache(cache_bytes, RENDER_CACHE_ENTRIES)
        self.presets = presets if presets is not None else PresetLibrary.load()
        self.workers = workers or os.cpu_count() or 1
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run CPU work on a worker thread (at most ``workers`` at a time)."""
        if self._limiter is None:  # created lazily: a limiter belongs to the running event loop
            self._limiter = anyio.CapacityLimiter(self.workers)
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=self._limiter)


async def no_progress(done: float, total: float, message: str) -> None:
    """A progress callback that reports nothing."""
