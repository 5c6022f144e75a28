"""Stub backends that exercise the CLAP and KL code paths offline. Their numbers mean nothing.

- ``HashText``: text -> hashed bag of words -> fixed random vectors; audio -> ``LogMelStats`` -> a
  fixed random projection into the same dimension. A ``TextAudioModel`` whose cosines are plumbing only.
- ``FixedProjectionClassifier``: ``LogMelStats`` -> a fixed-seed linear layer -> 527 logits.

Both carry ``kind="stub"`` in their ``BackendInfo``; ``pipeline.published_column`` never admits them.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np

from .backends import BackendInfo, Classifier, TextAudioModel
from .logmel_backend import LogMelStats

_WORD = re.compile(r"[a-z0-9]+")


def _seeded(seed_text: str, shape: tuple[int, ...]) -> np.ndarray:
    # sha256, not hash(): Python's string hash is salted per process, and stubs must be deterministic.
    seed = int.from_bytes(hashlib.sha256(seed_text.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(shape)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return np.where(n > 0, a / np.where(n > 0, n, 1.0), 0.0)


class HashText(TextAudioModel):
    """Stub text-audio model: hashed bag-of-words text vectors, projected log-mel audio vectors (L2-normalised)."""

    def __init__(self, dim: int = 512, seed: int = 0) -> None:
        if dim <= 0:
            raise ValueError("dim must be > 0")
        self.dim, self.seed = int(dim), int(seed)
        self._audio = LogMelStats()
        self._projection = _seeded(f"hash-text-audio-projection/{seed}", (self._audio.dim, self.dim))
        self._projection /= np.sqrt(self._audio.dim)
        self.info = BackendInfo(id="hash-text-stub", family="stub", kind="stub", version="1",
                                sample_rate=self._audio.sample_rate,
                                config={"dim": str(dim), "seed": str(seed), "audio": "logmel-stats"})

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """One unit row per text: the sum of a fixed random vector per lower-cased word (zero row if no words)."""
        if isinstance(texts, str):
            raise TypeError("embed_text takes a list of strings, not one string")
        out = np.zeros((len(texts), self.dim))
        for i, text in enumerate(texts):
            for word in _WORD.findall(str(text).lower()):
                out[i] += _seeded(f"hash-text/{self.seed}/{word}", (self.dim,))
        return _unit_rows(out)

    def embed_audio(self, audios: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """One unit row per clip: log-mel statistics (dB / 100) through a fixed random projection."""
        feats = np.vstack([self._audio.embed(a, sample_rate) for a in audios]) if len(audios) else \
            np.zeros((0, self._audio.dim))
        return _unit_rows((feats / 100.0) @ self._projection)


class FixedProjectionClassifier(Classifier):
    """Stub classifier: log-mel statistics (dB / 100) through a fixed-seed linear layer to ``n_classes`` logits."""

    def __init__(self, n_classes: int = 527, seed: int = 0) -> None:
        if n_classes < 2:
            raise ValueError("n_classes must be >= 2")
        self.n_classes, self.seed = int(n_classes), int(seed)
        self._audio = LogMelStats()
        self._weights = _seeded(f"fixed-projection-classifier/{seed}", (self._audio.dim, self.n_classes))
        self._weights /= np.sqrt(self._audio.dim)
        self.labels = [f"stub-class-{i}" for i in range(self.n_classes)]
        self.info = BackendInfo(id="fixed-projection-stub", family="stub", kind="stub", version="1",
                                sample_rate=self._audio.sample_rate,
                                config={"n_classes": str(n_classes), "seed": str(seed), "audio": "logmel-stats"})

    def logits(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Logits (n_classes,) of one clip."""
        return ((self._audio.embed(audio, sample_rate) / 100.0) @ self._weights)[0]
