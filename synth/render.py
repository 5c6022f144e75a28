"""Render patches to audio: one note, every operator's own output, many patches on all cores.

Output is float32 mono in dexed-py's units (1.0 = one full-scale carrier; sums of several
carriers can exceed 1.0 and are never clipped here: the WAV writer applies an explicit gain policy).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Sequence

import numpy as np

from ..schema.patch import Patch
from . import tables
from .dx7note import VoiceState
from .engine import OUT_SCALE, render_events_kernel, render_note_kernel
from .tables import N
from .voice import EngineVoice, engine_voice

MIN_SAMPLE_RATE = 16000
MAX_SAMPLE_RATE = 96000
MAX_SECONDS = 600.0


class RenderError(ValueError):
    """A render request that cannot be honoured; the message says what was wrong and what is allowed."""


@dataclass(frozen=True)
class RateTables:
    """The sample-rate dependent tables the engine needs."""

    freq: np.ndarray
    srm: int
    pitchenv_unit: int
    lfo_unit: int
    lfo_delta: np.ndarray


@lru_cache(maxsize=16)
def rate_tables(sample_rate: int) -> RateTables:
    """Tables for one sample rate (cached)."""
    return RateTables(
        freq=tables.freq_table(sample_rate),
        srm=tables.sr_multiplier(sample_rate),
        pitchenv_unit=tables.pitchenv_unit(sample_rate),
        lfo_unit=tables.lfo_unit(sample_rate),
        lfo_delta=tables.lfo_delta_table(sample_rate),
    )


def as_patch(patch: Patch | dict[str, Any]) -> Patch:
    """A validated ``Patch`` from a ``Patch`` or a plain dict (strict validation; errors name every problem)."""
    if isinstance(patch, Patch):
        return patch
    try:
        from ..schema.validate import parse_patch
    except ImportError:  # pragma: no cover - validate.py is part of the package
        return Patch.model_validate(patch)
    return parse_patch(patch)


RENDER_DEFAULTS: dict[str, Any] = {"note": 60, "velocity": 100, "hold_s": 3.0, "release_s": 1.0}


def parse_render_settings(render: Any, pointer: str = "/render") -> tuple[list[str], dict[str, Any]]:
    """Problems with a JSON object of render settings (note, velocity, hold_s, release_s), and the
    settings with defaults filled in; used by the example and library files."""
    settings = dict(RENDER_DEFAULTS)
    keys = ", ".join(RENDER_DEFAULTS)
    if not isinstance(render, dict):
        return [f"{pointer}: found {render!r:.60}, allowed an object with keys {keys}"], settings
    problems = [f"{pointer}/{k}: unknown key, allowed keys are {keys}" for k in render if k not in RENDER_DEFAULTS]
    settings |= {k: v for k, v in render.items() if k in RENDER_DEFAULTS}
    try:
        check_request(settings["note"], settings["velocity"], settings["hold_s"], settings["release_s"], 48000)
    except RenderError as err:
        problems.append(f"{pointer}/{err}")
    return problems, settings


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= int(value) <= high:
        raise RenderError(f"{name}: found {value!r}, allowed integer {low}..{high}")
    return int(value)


def _check_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RenderError(f"{name}: found {value!r}, allowed a number of seconds 0..{MAX_SECONDS:g}")
    v = float(value)
    if not (0.0 <= v <= MAX_SECONDS):  # also rejects NaN
        raise RenderError(f"{name}: found {value!r}, allowed a number of seconds 0..{MAX_SECONDS:g}")
    return v


def check_request(note: Any, velocity: Any, hold_s: Any, release_s: Any, sample_rate: Any) -> tuple[int, int, float, float, int]:
    """Validate the render settings, raising ``RenderError`` with what was wrong and what is allowed."""
    note = _check_int("note", note, 0, 127)
    velocity = _check_int("velocity", velocity, 1, 127)
    hold = _check_seconds("hold_s", hold_s)
    release = _check_seconds("release_s", release_s)
    sr = _check_int("sample_rate", sample_rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    if hold + release > MAX_SECONDS:
        raise RenderError(f"hold_s + release_s: found {hold + release:g}, allowed at most {MAX_SECONDS:g} seconds")
    if hold + release <= 0:
        raise RenderError("hold_s + release_s: found 0, allowed a clip longer than 0 seconds")
    return note, velocity, hold, release, sr


def to_float(engine_units: np.ndarray) -> np.ndarray:
    """Engine integers (as captured per operator) -> float32 audio, exactly as the mix is converted."""
    return (engine_units * OUT_SCALE).astype(np.float32)


_POOL: ThreadPoolExecutor | None = None


def _pool(workers: int) -> ThreadPoolExecutor:
    # One long-lived pool: starting threads per call would cost more than a short render.
    global _POOL
    if _POOL is None or _POOL._max_workers < workers:
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="patchsmith-render")
    return _POOL


def _render(voice: EngineVoice, note: int, velocity: int, hold: float, release: float, sr: int,
            capture: bool, reuse: np.ndarray | None = None, given: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    n_hold = int(round(hold * sr))
    n_total = int(round((hold + release) * sr))
    n_blocks = -(-n_total // N)
    t = rate_tables(sr)
    out = np.zeros(n_total, dtype=np.float32)
    opout = np.zeros((6, n_blocks * N if capture else 0), dtype=np.int64)
    st = VoiceState(1)
    if reuse is None:
        reuse, given = _NO_REUSE, _NO_GIVEN
    render_note_kernel(voice.ops, voice.glob, voice.mod, voice.outm, voice.topo, note, velocity, n_hold, out,
                       capture, opout, t.freq, t.srm, t.pitchenv_unit, int(t.lfo_delta[voice.glob[10]]), t.lfo_unit,
                       st.env, st.penv, st.phase, st.gain_out, st.hist, st.opinfo, st.vinfo, reuse, given)
    return out, opout


_NO_REUSE = np.zeros(6, dtype=np.int64)
_NO_GIVEN = np.zeros((6, 0), dtype=np.int64)


def render(patch: Patch | dict[str, Any], note: int = 60, velocity: int = 100, hold_s: float = 3.0,
           release_s: float = 1.0, sample_rate: int = 48000) -> np.ndarray:
    """Render one note (held ``hold_s``, then released for ``release_s``) as float32 mono."""
    p = as_patch(patch)
    note, velocity, hold, release, sr = check_request(note, velocity, hold_s, release_s, sample_rate)
    return _render(engine_voice(p), note, velocity, hold, release, sr, False)[0]


def render_all_ops(patch: Patch | dict[str, Any], note: int = 60, velocity: int = 100, hold_s: float = 3.0,
                   release_s: float = 1.0, sample_rate: int = 48000) -> np.ndarray:
    """Render one note and every operator's own output: rows 0-5 are OP1..OP6, row 6 the mix."""
    p = as_patch(patch)
    note, velocity, hold, release, sr = check_request(note, velocity, hold_s, release_s, sample_rate)
    out, opout = _render(engine_voice(p), note, velocity, hold, release, sr, True)
    return np.vstack([to_float(opout[:, :out.shape[0]]), out[None, :]])


def render_batch(patches: Sequence[Patch | dict[str, Any]], note: int = 60, velocity: int = 100, hold_s: float = 3.0,
                 release_s: float = 1.0, sample_rate: int = 48000, workers: int | None = None) -> list[np.ndarray]:
    """Render many patches (same settings) on all cores; results in input order."""
    note, velocity, hold, release, sr = check_request(note, velocity, hold_s, release_s, sample_rate)
    voices = [engine_voice(as_patch(p)) for p in patches]  # validate everything before any work
    return [a for a, _ in render_voices(voices, note, velocity, hold, release, sr, workers)]


def render_voices(voices: Sequence[EngineVoice], note: int, velocity: int, hold: float, release: float, sr: int,
                  workers: int | None = None, capture: bool = False, reuse: Sequence[np.ndarray] | None = None,
                  given: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Render already-converted voices (settings already checked) on ``workers`` threads, in order;
    returns (audio, per-operator engine units when ``capture``) pairs. With ``reuse`` (one mask per
    voice), masked operators are copied from ``given`` instead of computed."""
    workers = workers or os.cpu_count() or 1
    masks = list(reuse) if reuse is not None else [None] * len(voices)

    def job(k: int) -> tuple[np.ndarray, np.ndarray]:
        m = masks[k]
        return _render(voices[k], note, velocity, hold, release, sr, capture, m, given if m is not None else None)

    if workers <= 1 or len(voices) <= 1:
        return [job(k) for k in range(len(voices))]
    if _POOL is None:
        _render(voices[0], note, velocity, 0.0, 0.01, sr, False)  # load the kernels before threads race for them
    return list(_pool(workers).map(job, range(len(voices))))


def render_events(patch: Patch | dict[str, Any], events: Iterable[tuple[float, bool, int, int]], duration_s: float,
                  sample_rate: int = 48000, voices: int = 16) -> tuple[np.ndarray, int]:
    """Play (time_s, is_note_on, note, velocity) events polyphonically; returns (audio, notes stolen)."""
    p = as_patch(patch)
    sr = _check_int("sample_rate", sample_rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE)
    dur = _check_seconds("duration_s", duration_s)
    voices = _check_int("voices", voices, 1, 64)
    rows = []
    for t, on, key, vel in events:
        key = _check_int("note", key, 0, 127)
        vel = _check_int("velocity", vel, 0, 127)
        if vel == 0:
            on = False  # MIDI convention: note-on with velocity 0 is a note-off
        rows.append((int(round(float(t) * sr)), 1 if on else 0, key, vel))
    rows.sort(key=lambda r: (r[0], r[1]))  # offs before ons at the same instant
    ev = np.array(rows, dtype=np.int64).reshape(-1, 4)
    v = engine_voice(p)
    t = rate_tables(sr)
    out = np.zeros(int(round(dur * sr)), dtype=np.float32)
    st = VoiceState(voices)
    stolen = render_events_kernel(v.ops, v.glob, v.mod, v.outm, v.topo, ev, out, t.freq, t.srm, t.pitchenv_unit,
                                  int(t.lfo_delta[v.glob[10]]), t.lfo_unit, st.env, st.penv, st.phase, st.gain_out,
                                  st.hist, st.opinfo, st.vinfo)
    return out, int(stolen)
