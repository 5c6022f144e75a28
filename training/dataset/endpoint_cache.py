"""An on-disk cache of endpoint answers: one JSON file per request, keyed by a hash of what was asked.

The dataset builder asks a model the same question again whenever a build is resumed, rerun with other
merge options, or restarted after a crash. Model calls cost money and time, and their answers are not
deterministic, so every answer that came back (HTTP 200, whatever its text) is kept under
``CACHE/<kk>/<key>.json``, where ``key`` is the SHA-256 of the canonical JSON of the request (model,
messages, sampling settings and a namespace such as ``"caption"``). A rerun with the cache reads the
answer back and makes no request.

Files are written atomically (``stages.write_atomic``: temp file in the same folder, then a rename),
so several threads or processes may share one cache folder: a reader sees a whole answer or none, and two writers of the
same key write the same kind of value (the last one wins). A file that cannot be read is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .stages import write_atomic

__all__ = ["EndpointCache", "request_key"]

CACHE_VERSION = 1  # part of every key: a change of the stored format starts a fresh cache


def request_key(namespace: str, request: dict[str, Any]) -> str:
    """The cache key of a request: SHA-256 hex of its canonical JSON with the namespace and cache version."""
    text = json.dumps({"v": CACHE_VERSION, "ns": namespace, "request": request}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class EndpointCache:
    """A folder of cached answers; ``get``/``put`` by key are thread- and process-safe."""

    def __init__(self, folder: str | os.PathLike[str]):
        """Use (and create on first write) ``folder``."""
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"cache folder {self.folder}: exists and is not a folder")

    def path(self, key: str) -> Path:
        """The file that holds the answer for ``key``."""
        if len(key) < 3 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"cache key: found {key!r:.80}, allowed a lower-case hex digest")
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer for ``key``, or None (never stored, or unreadable)."""
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store ``value`` (a JSON-ready dict) for ``key`` atomically."""
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        write_atomic(self.path(key), lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def __len__(self) -> int:
        """How many answers are stored."""
        if not self.folder.is_dir():
            return 0
        return sum(1 for _ in self.folder.glob("??/*.json"))

    def __repr__(self) -> str:
        return f"EndpointCache({str(self.folder)!r})"
