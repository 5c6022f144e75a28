"""Recent renders and exports: a bounded in-memory cache behind the ``patchsmith://renders/...`` resources.

Ids are chosen by the server: a hash of what was rendered (the patch and every setting), so the same
request gives the same id and is served from the cache instead of being rendered again (a render is
deterministic). Nothing is written to disk and no client-given name ever becomes a path. The cache
holds at most ``max_bytes`` of data and ``max_entries`` entries, evicting the least recently used.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf

from ..schema.patch import Patch

WAV_MIME = "audio/wav"
SYSEX_MIME = "application/octet-stream"
WAV_PEAK = 10.0 ** (-1.0 / 20.0)  # -1 dBFS: where a WAV that would clip is scaled to
_ENTRY_OVERHEAD = 4096  # bytes counted per entry for its structured result


@dataclass(frozen=True)
class Artifact:
    """One cached render or export: its resource URI, its bytes (base64) and the result that described it."""

    id: str
    uri: str
    mime_type: str
    data_base64: str
    size_bytes: int
    result: dict[str, Any] | None = None


def request_id(tool: str, patch: Patch | list[Patch], settings: dict[str, Any]) -> str:
    """The id of a render: a hash of the tool, the full patch(es) and every setting."""
    patches = [p.to_dict() for p in patch] if isinstance(patch, list) else patch.to_dict()
    text = json.dumps({"tool": tool, "patch": patches, "settings": settings}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def content_id(data: bytes) -> str:
    """The id of an export: a hash of its bytes."""
    return hashlib.sha256(data).hexdigest()[:20]


def render_uri(render_id: str) -> str:
    """The resource URI of a render."""
    return f"patchsmith://renders/{render_id}.wav"


def export_uri(export_id: str) -> str:
    """The resource URI of a sysex export."""
    return f"patchsmith://exports/{export_id}.syx"


def encode_wav(audio: np.ndarray, sample_rate: int) -> tuple[bytes, float]:
    """16-bit WAV bytes of engine-unit audio, and the gain applied (dB) so that it does not clip."""
    x = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    gain_db = 0.0
    # Levels stay as rendered (so renders compare by ear) unless the patch peaks above full scale.
    if peak > 1.0:
        x = x * (WAV_PEAK / peak)
        gain_db = round(20.0 * np.log10(WAV_PEAK / peak), 2)
    buf = io.BytesIO()
    sf.write(buf, x, int(sample_rate), subtype="PCM_16", format="WAV")
    return buf.getvalue(), gain_db


class ArtifactCache:
    """A bounded LRU of recent renders and exports, safe to use from several threads."""

    def __init__(self, max_bytes: int, max_entries: int):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._items: OrderedDict[str, Artifact] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, artifact_id: str) -> Artifact | None:
        """The artifact with this id, if it is still cached (and mark it recently used)."""
        with self._lock:
            item = self._items.get(artifact_id)
            if item is not None:
                self._items.move_to_end(artifact_id)
            return item

    def put(self, artifact_id: str, uri: str, mime_type: str, data: bytes,
            result: dict[str, Any] | None = None) -> Artifact:
        """Cache bytes under a server-chosen id (evicting the oldest entries beyond the bounds)."""
        item = Artifact(artifact_id, uri, mime_type, base64.b64encode(data).decode("ascii"), len(data), result)
        with self._lock:
            old = self._items.pop(artifact_id, None)
            if old is not None:
                self._bytes -= self._cost(old)
            self._items[artifact_id] = item
            self._bytes += self._cost(item)
            while self._items and (self._bytes > self.max_bytes or len(self._items) > self.max_entries):
                _, gone = self._items.popitem(last=False)
                self._bytes -= self._cost(gone)
        return item

    def stats(self) -> dict[str, int]:
        """How many entries and bytes the cache holds."""
        with self._lock:
            return {"entries": len(self._items), "bytes": self._bytes}

    @staticmethod
    def _cost(item: Artifact) -> int:
        return len(item.data_base64) + _ENTRY_OVERHEAD
