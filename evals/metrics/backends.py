"""Backend interfaces for the models behind the metrics, their identity records, and a registry.

A backend turns audio (or text) into arrays: clip embeddings (``AudioEmbedder``), text and audio
embeddings in one space (``TextAudioModel``), class logits (``Classifier``) or timbral attributes
(``TimbralModel``). Each carries a ``BackendInfo`` saying exactly what produced the numbers (id, version,
sample rate, weights file and its sha256, and whether it is a ``published`` model, an ``offline``
weight-free one or a ``stub``) so that no number can be shown under a column it does not belong to.

Backends are created by name through the registry (``create_backend("logmel-stats")``); the real ones
(LAION-CLAP, PaSST, timbral-models) import their heavy packages lazily and raise ``BackendUnavailable``
with what is missing and how to fix it.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import os
from abc import ABC, abstractmethod
from collections import OrderedDict
from math import gcd
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

BackendKind = Literal["published", "offline", "stub"]
Role = Literal["embedder", "text_audio", "classifier", "timbral"]


class BackendUnavailable(RuntimeError):
    """A backend cannot run here: says which backend, what is missing, and how to fix it."""

    def __init__(self, backend: str, missing: str, fix: str) -> None:
        self.backend, self.missing, self.fix = backend, missing, fix
        super().__init__(f"backend {backend!r} is unavailable: {missing}. To fix: {fix}")


class SilentAudio(ValueError):
    """Raised by a backend that has no defined output for silent audio (timbral-models)."""


class BackendInfo(BaseModel):
    """What produced a number: backend id, kind, version, sample rate, weights file + sha256, front-end config."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="stable id, e.g. 'laion-clap-music', 'passt-base-10s', 'logmel-stats'")
    family: str = Field(description="model family: 'laion-clap', 'passt', 'timbral-models', 'logmel', 'stub'")
    kind: BackendKind = Field(description="'published' (the published model and weights), 'offline' (weight-free), "
                                          "'stub'")
    version: str = Field(description="package or algorithm version")
    sample_rate: int = Field(gt=0, description="rate the model consumes; inputs are resampled to it")
    weights_path: str | None = Field(default=None, description="the weights file used, if any")
    weights_sha256: str | None = Field(default=None, description="sha256 of the weights file, if any")
    config: dict[str, str] = Field(default_factory=dict, description="front-end settings: padding, mode, ...")

    def tag(self) -> str:
        """Short label: id plus the first 12 hex digits of the weights hash (or 'noweights')."""
        return f"{self.id}@{(self.weights_sha256 or 'noweights')[:12]}"


class Backend(ABC):
    """Common base: every backend exposes its ``info``."""

    info: BackendInfo


class AudioEmbedder(Backend):
    """Audio -> embedding rows (k, d): k = 1 for a clip embedding, more for frame embeddings."""

    @abstractmethod
    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Embedding rows (k, d) of one mono clip."""

    def embed_clip(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """One (d,) vector per clip: the mean of the rows of ``embed``."""
        return np.asarray(self.embed(audio, sample_rate), dtype=np.float64).mean(axis=0)


class TextAudioModel(Backend):
    """A joint text-audio embedding space (CLAP): cosine of text and audio embeddings is the CLAP score."""

    @abstractmethod
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Text embeddings (n, d)."""

    @abstractmethod
    def embed_audio(self, audios: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """Audio embeddings (n, d) of mono clips sharing one sample rate."""


class Classifier(Backend):
    """Audio -> class logits (e.g. 527 AudioSet classes); KL uses their softmax."""

    labels: list[str] | None = None

    @abstractmethod
    def logits(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Logits (C,) of one mono clip."""


class TimbralModel(Backend):
    """Audio -> Audio Commons timbral attributes on the 0-100 scale; raises ``SilentAudio`` on silence."""

    @abstractmethod
    def attributes(self, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        """Attribute name -> value (hardness, depth, brightness, roughness, warmth, sharpness, boominess)."""


ROLE_CLASSES: dict[str, type[Backend]] = {
    "embedder": AudioEmbedder, "text_audio": TextAudioModel, "classifier": Classifier, "timbral": TimbralModel,
}

# ------------------------------------------------------------------ audio and weights helpers


def as_mono(audio: np.ndarray, name: str = "audio", finite: bool = True) -> np.ndarray:
    """A 1-D float64 copy of a clip (channels averaged); ValueError on a wrong shape, or on NaN/inf when ``finite``."""
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim == 2:
        # (channels, samples) or (samples, channels): average over the short axis
        x = x.mean(axis=0) if x.shape[0] <= x.shape[1] else x.mean(axis=1)
    if x.ndim != 1:
        raise ValueError(f"{name}: expected 1-D (samples,) or 2-D (channels, samples) audio, got shape {x.shape}")
    if finite and not np.all(np.isfinite(x)):
        raise ValueError(f"{name}: contains NaN or infinite samples")
    return x


def resample(audio: np.ndarray, sample_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling to ``target_rate`` (scipy, deterministic); unchanged when the rates agree."""
    x = as_mono(audio)
    if int(sample_rate) == int(target_rate) or x.size == 0:
        return x
    try:
        from scipy.signal import resample_poly
    except ImportError as exc:  # scipy is in the 'eval' extra
        raise BackendUnavailable("resampler", "scipy is not installed",
                                 "pip install 'patchsmith[eval]' or pass audio already at "
                                 f"{target_rate} Hz") from exc
    g = gcd(int(sample_rate), int(target_rate))
    return resample_poly(x, int(target_rate) // g, int(sample_rate) // g)


_T = TypeVar("_T")


class ClipMemo:
    """A bounded LRU memo of what a backend computed from one clip, keyed by the clip's samples, rate and settings.

    The metrics ask several times about one clip (KL's logits and FAD's embedding from one PaSST pass, the
    stubs and the FAD embedder from one log-mel pass, a reference shared by several systems): each is
    computed once. Hits are copies, so a caller cannot change what the memo holds.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self._entries: OrderedDict[tuple, Any] = OrderedDict()

    def get(self, audio: np.ndarray, sample_rate: int, compute: Callable[[np.ndarray], _T],
            settings: tuple = ()) -> _T:
        """``compute(samples)`` for this clip (samples as contiguous float64), from the memo when it was seen."""
        x = np.ascontiguousarray(audio, dtype=np.float64)
        key = (*settings, int(sample_rate), x.shape, hashlib.sha1(x.tobytes()).hexdigest())
        if key in self._entries:
            self._entries.move_to_end(key)
        else:
            self._entries[key] = compute(x)
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return copy.copy(self._entries[key])


_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def weights_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a weights file, cached by (real path, mtime, size) so it is read once."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_mtime_ns, st.st_size)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


def check_sha256(backend: str, path: Path, expected: str | None) -> str:
    """The file's sha256; BackendUnavailable when ``expected`` is given and differs (pinning a published checkpoint)."""
    digest = weights_sha256(path)
    if expected and digest != expected.lower():
        raise BackendUnavailable(backend, f"{path} has sha256 {digest}, not the expected {expected.lower()}",
                                 "pass the checkpoint whose hash was pinned, or drop expected_sha256")
    return digest


def require_file(backend: str, path: str | os.PathLike[str] | None, what: str, fix: str) -> Path:
    """The path as a Path if it is an existing file; BackendUnavailable saying what to supply otherwise."""
    if path is None or str(path) == "":
        raise BackendUnavailable(backend, f"no {what} path was given", fix)
    p = Path(path).expanduser()
    if not p.is_file():
        raise BackendUnavailable(backend, f"{what} not found at {p}", fix)
    return p


def require_module(backend: str, module: str, fix: str) -> Any:
    """Import a module lazily; BackendUnavailable with the install recipe when it is missing or broken."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or an import-time failure such as a network call
        raise BackendUnavailable(backend, f"python module {module!r} cannot be imported ({type(exc).__name__}: "
                                 f"{exc})", fix) from exc


# ------------------------------------------------------------------ registry

_Factory = Callable[..., Backend]
_REGISTRY: dict[str, tuple[Role, _Factory | str]] = {}

# Built-ins are registered by dotted path so that importing this module imports none of them.
_BUILTINS: dict[str, tuple[Role, str]] = {
    "logmel-stats": ("embedder", "logmel_backend:LogMelStats"),
    "hash-text-stub": ("text_audio", "stub_backends:HashText"),
    "fixed-projection-stub": ("classifier", "stub_backends:FixedProjectionClassifier"),
    "laion-clap": ("text_audio", "clap_backend:LaionClap"),
    "passt": ("embedder", "passt_backend:Passt"),
    "passt-classifier": ("classifier", "passt_backend:Passt"),
    "timbral-models": ("timbral", "timbral_backend:TimbralModels"),
}


def register_backend(name: str, role: Role, factory: _Factory) -> None:
    """Register a backend factory under a name (overrides a built-in of the same name)."""
    if role not in ROLE_CLASSES:
        raise ValueError(f"unknown role {role!r}; allowed: {sorted(ROLE_CLASSES)}")
    _REGISTRY[name] = (role, factory)


def backend_names(role: Role | None = None) -> list[str]:
    """Registered backend names (built-ins included), optionally only those of one role."""
    entries = {**{k: v for k, v in _BUILTINS.items()}, **_REGISTRY}
    return sorted(k for k, (r, _) in entries.items() if role is None or r == role)


def create_backend(name: str, **options: Any) -> Backend:
    """Create a backend by registry name with its options; ValueError listing the names for an unknown one."""
    entry = _REGISTRY.get(name) or _BUILTINS.get(name)
    if entry is None:
        raise ValueError(f"unknown backend {name!r}; allowed: {', '.join(backend_names())}")
    role, factory = entry
    if isinstance(factory, str):
        module, attr = factory.split(":")
        factory = getattr(importlib.import_module(f"{__package__}.{module}"), attr)
    backend = factory(**options)
    if not isinstance(backend, ROLE_CLASSES[role]):
        raise TypeError(f"backend {name!r} should be a {ROLE_CLASSES[role].__name__}, got {type(backend).__name__}")
    return backend
