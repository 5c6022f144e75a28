"""Audio Commons timbral attributes (``timbral-models`` 0.4.0) as a ``TimbralModel``, through a compatibility layer.

``timbral-models`` has no weights (its regressions are hard-coded) but cannot be installed normally:

    pip install --no-deps timbral-models==0.4.0      # 0.4.0 declares the dead 'sklearn' package
    pip install librosa pyloudnorm scikit-learn six  # its real dependencies

with numpy 2 its ``np.lib.pad`` is gone, and with librosa >= 0.10 three of its calls fail because they
pass arguments positionally (``onset_detect(y, sr)``, ``onset_strength(y, sr)``, ``resample(y, sr,
target)``). The layer here gives its modules a librosa proxy that maps those positional arguments to
keywords and a numpy proxy with ``lib.pad``; everything else is librosa and numpy themselves, and
nothing outside the package changes.

Behaviour (reference §1.5): mono; upsampled to 44.1 kHz when below (librosa 0.11 resampling: render
at 44.1 kHz or more to match other stacks); each attribute loudness-normalised to -24 LUFS by the
package; raises on silence, which ``attributes`` turns into ``SilentAudio``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from .backends import BackendInfo, ClipMemo, SilentAudio, TimbralModel, as_mono, require_module

INSTALL = ("pip install --no-deps timbral-models==0.4.0 && pip install librosa pyloudnorm scikit-learn six "
           "(0.4.0 declares the obsolete 'sklearn' package, hence --no-deps)")
ATTRIBUTE_FUNCS = {  # our attribute name -> timbral_models function
    "hardness": "timbral_hardness", "depth": "timbral_depth", "brightness": "timbral_brightness",
    "roughness": "timbral_roughness", "warmth": "timbral_warmth", "sharpness": "timbral_sharpness",
    "boominess": "timbral_booming",
}
_CACHE_SIZE = 1024  # references recur across systems in one process; each costs about 1.3 s per audio-second
_MODULES = ("timbral_util", "Timbral_Hardness", "Timbral_Depth", "Timbral_Brightness", "Timbral_Roughness",
            "Timbral_Warmth", "Timbral_Sharpness", "Timbral_Booming", "Timbral_Reverb", "Timbral_Extractor")


def _keywords(fn: Callable[..., Any], names: tuple[str, ...]) -> Callable[..., Any]:
    # librosa >= 0.10 made everything after y keyword-only; timbral-models passes them positionally.
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if args:
            kwargs.setdefault("y", args[0])
            for name, value in zip(names, args[1:]):
                kwargs[name] = value
        return fn(**kwargs)
    return call


class _Proxy:
    """Attribute access falls through to ``target`` except for the overridden names."""

    def __init__(self, target: Any, **overrides: Any) -> None:
        self._target, self._overrides = target, overrides

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._target, name)


def numpy_compat() -> _Proxy:
    """A numpy stand-in with the alias numpy 2 removed that timbral-models 0.4.0 uses (``np.lib.pad``)."""
    return _Proxy(np, lib=_Proxy(np.lib, pad=np.pad))


def librosa_compat(librosa: Any) -> _Proxy:
    """A librosa stand-in accepting the positional calls timbral-models 0.4.0 makes."""
    resample = _keywords(librosa.resample, ("orig_sr", "target_sr"))
    onset = _Proxy(librosa.onset, onset_detect=_keywords(librosa.onset.onset_detect, ("sr",)),
                   onset_strength=_keywords(librosa.onset.onset_strength, ("sr",)))
    core = _Proxy(librosa.core, resample=resample)
    return _Proxy(librosa, onset=onset, core=core, resample=resample)


@functools.lru_cache(maxsize=1)
def load_timbral_models() -> Any:
    """Import timbral_models with the librosa compatibility layer applied to its own modules."""
    name = "timbral-models"
    librosa = require_module(name, "librosa", INSTALL)
    require_module(name, "pyloudnorm", INSTALL)
    require_module(name, "sklearn", INSTALL)
    tm = require_module(name, "timbral_models", INSTALL)
    lib_proxy, np_proxy = librosa_compat(librosa), numpy_compat()
    for mod in _MODULES:
        module = require_module(name, f"timbral_models.{mod}", INSTALL)
        # Only the package's own module globals are replaced: librosa and numpy stay untouched for everyone else.
        if hasattr(module, "librosa"):
            module.librosa = lib_proxy
        if getattr(module, "np", None) is np:
            module.np = np_proxy
    return tm


class TimbralModels(TimbralModel):
    """The seven Audio Commons timbral attributes (0-100 scale, unclipped) of one clip."""

    def __init__(self) -> None:
        tm = load_timbral_models()
        try:
            from importlib.metadata import version
            ver = version("timbral-models")
        except Exception:
            ver = "unknown"
        librosa = require_module("timbral-models", "librosa", INSTALL)
        self._tm = tm
        self._memo = ClipMemo(_CACHE_SIZE)
        self.info = BackendInfo(id="timbral-models", family="timbral-models", kind="published", version=ver,
                                sample_rate=44100,
                                config={"attributes": ",".join(ATTRIBUTE_FUNCS), "clip_output": "false",
                                        "librosa": str(librosa.__version__), "upsampling": "librosa below 44.1 kHz",
                                        "compat": "librosa positional->keyword, numpy lib.pad"})

    def attributes(self, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        """Attribute -> value for a mono clip; ``SilentAudio`` when the package finds it silent."""
        x = as_mono(audio)
        if x.size == 0 or not np.any(x):
            raise SilentAudio("the clip is silent: timbral attributes are undefined")
        return self._memo.get(x, sample_rate, lambda s: self._compute(s, int(sample_rate)))

    def _compute(self, x: np.ndarray, sample_rate: int) -> dict[str, float]:
        x, fs = self._tm.timbral_util.check_upsampling(x, sample_rate)
        out: dict[str, float] = {}
        for key, func in ATTRIBUTE_FUNCS.items():
            try:
                out[key] = float(getattr(self._tm, func)(x, fs=fs, clip_output=False))
            except ValueError as exc:
                if "silence" in str(exc).lower():
                    raise SilentAudio(str(exc)) from exc
                raise
        return out
