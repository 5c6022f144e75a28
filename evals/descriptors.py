"""Audio descriptors: numbers that stand in for ears (level, envelope times, spectrum, pitch, beating).

``describe_audio`` turns one rendered note into an ``AudioDescriptors`` (``schema/audio.py`` documents
every field and its unit). Everything is vectorised numpy on a few shared intermediate arrays:

- an energy envelope: the mean square of 0.5 ms blocks, smoothed by a zero-phase Hann window of about
  four periods of the played note's f0 (so that neither the f0 ripple nor the f0/2 ripple of a DX7
  ratio-0.5 operator shows), normalised at the clip edges; decays, sustain and release are read on it;
- a sharper one (two periods) for the attack, whose own 10-90% rise on a step is removed in quadrature;
  the attack rises to the onset's peak: the first crest or shelf (where the rise stalls) at 60% or more
  of the maximum, so a layered voice's later, higher swell or beat crest does not count as its attack;
- one power spectrum summed over the audible part (Hann frames long enough to resolve f0/2),
  for centroid, brightness and inharmonicity; when the pitch moves (an LFO sweep, a pitch-envelope
  glide), inharmonicity is also read on the note re-timed so that its fundamental holds still (a pitch
  track that follows sweeps of up to about an octave, then a demodulated partial for the last cents),
  and that reading counts where it is clearly lower: a moving harmonic note is not inharmonic;
- the dB envelope's swing about its local straight-line trend, for beating;
- a YIN pitch track (cumulative-mean-normalised difference, computed with FFTs for all frames at once)
  searched around the played note, over the held part.

``basic_descriptors`` is the older, cheaper level summary the CLI prints.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..schema.audio import FLOOR_DB, SILENCE_DBFS, AudioDescriptors

BLOCK_S = 0.0005  # envelope resolution
ONSET_PEAK = 0.6  # the attack ends at the first crest or shelf at this share of the envelope's maximum or more
ONSET_KNEE = 0.25  # a shelf: the rise slows below this share of its mean rate so far
BRIGHTNESS_SPLIT_HZ = 1500.0
HARMONIC_TOLERANCE_CENTS = 30.0
AUDIBLE_DB = 60.0  # the spectrum is taken where the envelope is within this of its peak
HELD_DB = 40.0  # pitch and beating are read while the sound is within this of its peak
SUSTAIN_WINDOW_S = 0.1
RELEASE_DB = 60.0
MIN_HELD_S = 0.2
YIN_THRESHOLD = 0.12  # first dip of the normalised difference below this is the period (YIN's absolute threshold)
YIN_VOICED = 0.25  # a frame whose best dip is above this has no usable period
MAX_PITCH_FRAMES = 250  # enough to follow a 5-7 Hz vibrato over an 8 s hold
STEADY_ENOUGH = 0.01  # an inharmonicity this low has nothing to gain from re-timing the note
MOVING_CENTS = 20.0  # a pitch spread above this: inharmonicity is read on the note re-timed to a steady pitch
LOST_SHARE = 0.1  # ... or when the pitch track loses more than this share of the held part's frames
MAX_SWEEP_FRAMES = 500  # the re-timing's track: frames SWEEP_HOP_S apart, further apart in notes over 4 s
SWEEP_HOP_S = 0.008  # (a 5 Hz vibrato is followed at 25 points a cycle)
SWEEP_VOICED = 0.4  # the re-timing needs a period in this share of its frames at least
CLEARER = 0.6  # the re-timed reading counts where it is at most this share of the fixed one
SWEEP_RATE = 16000.0  # the re-timing's track runs on the note averaged down to about this rate (it is faster)
ENERGY_TAILS = 0.002  # the re-timed reading leaves out the quiet ends holding this share of the energy each
SWEEP_RANGE = 2.0 ** (14.0 / 12.0)  # the re-timing's track searches this far (14 semitones) about the median
SWEEP_STEP = 2.0 ** (3.0 / 12.0)  # the most the tracked period may move between two of its frames
BEAT_BOX_S = 0.01  # beating: the dB envelope box-smoothed over 10 ms (passes < ~45 Hz) ...
BEAT_STEP_S = 0.005  # ... read every 5 ms
BEAT_WINDOW_MAX_S = 1.0  # the swing is read within a third of the held part, at most this long
LOWEST_HZ = 10.0  # below this a bin is DC or rumble, not part of the sound's spectrum
SPECTRUM_CHUNK = 8  # frames transformed at a time in the summed power spectrum
YIN_CHUNK = 16  # frames at a time in YIN's difference curves
WARP_CHUNK = 8192  # samples at a time in the re-timing's resampler

_TINY = 1e-15  # energy floor: 10*log10 gives FLOOR_DB (-150 dB)


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0.0 else float("-inf")


def basic_descriptors(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """Peak and RMS level (dBFS, 1.0 = full scale), duration, and silence/clipping flags."""
    x = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    rms = float(np.sqrt(np.mean(x * x))) if x.size else 0.0
    return {
        "peak_dbfs": round(_db(peak), 2),
        "rms_dbfs": round(_db(rms), 2),
        "duration_s": round(x.size / sample_rate, 4),
        "silent": peak < 10 ** (SILENCE_DBFS / 20),
        "over_full_scale": peak > 1.0,
    }


def note_hz(note: float) -> float:
    """Equal-tempered frequency of a MIDI note (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def describe_audio(audio: np.ndarray, sample_rate: float, note: int | None = None,
                   note_off_s: float | None = None) -> AudioDescriptors:
    """Descriptors of one note: pass the sounding MIDI note and the note-off time when known."""
    x, sr, f_ref, note_off = _checked(audio, sample_rate, note, note_off_s)
    n = x.size
    duration = n / sr
    peak = float(np.max(np.abs(x))) if n else 0.0
    # Work on the clip scaled to a unit peak: no overflow for huge values, and every internal dB is re the peak.
    x = x / peak if peak > 0.0 else x
    rms = peak * float(np.sqrt(np.mean(x * x))) if n else 0.0
    silent = peak < 10.0 ** (SILENCE_DBFS / 20.0)
    levels = dict(duration_s=round(duration, 4), peak_dbfs=_level_db(peak), rms_dbfs=_level_db(rms),
                  silent=silent, clipping=peak > 1.0)
    if silent:
        return AudioDescriptors(**levels, attack_ms=None, decay20_ms=None, decay60_ms=None, sustain_db=None,
                                release_ms=None, centroid_hz=None, brightness=None, inharmonicity=None,
                                pitch_cents=None, pitch_stability_cents=None, beating=None)

    hop = max(1, int(round(sr * BLOCK_S)))
    blocks = _block_energy(x, hop)
    times = (np.arange(blocks.size) + 0.5) * hop / sr  # block centres, seconds
    # Four periods of f0 (two of a ratio-0.5 subharmonic) null the envelope ripple; 20 ms when unknown.
    env = _smooth(blocks, _hann_taps(_window_s(f_ref, 4.0, 0.005, 0.06, 0.02), hop, sr))
    env_db = 10.0 * np.log10(np.maximum(env, _TINY))
    peak_db = float(env_db.max())
    # The first block within 0.1 dB of the top: a steady tone's maximum may be any one of its ripples.
    i_peak = int(np.argmax(env_db >= peak_db - 0.1))

    attack, t10, t90 = _attack(blocks, times, f_ref, hop, sr, np.sqrt(env))
    i_off = None if note_off is None else int(np.searchsorted(times, note_off))
    decay_end = blocks.size if i_off is None else min(i_off, blocks.size)
    decay20 = _time_to_fall(env_db, times, i_peak, decay_end, peak_db - 20.0)
    decay60 = _time_to_fall(env_db, times, i_peak, decay_end, peak_db - 60.0)
    sustain, release = _sustain_release(env, env_db, times, i_peak, peak_db, note_off, duration, hop, sr,
                                        20.0 * math.log10(peak))

    # The held part: from the end of the attack until note-off, while the sound stays near its peak.
    future_max = np.maximum.accumulate(env_db[::-1])[::-1]
    alive_end = int(np.searchsorted(-future_max, -(peak_db - HELD_DB), side="right"))
    held_end = min(alive_end, decay_end) if note_off is not None else alive_end
    t_end = times[held_end - 1] if held_end > 0 else 0.0
    t_start = t90 if t_end - t90 >= MIN_HELD_S else t10

    s0, s1 = _audible_span(x.size, env_db, peak_db, hop)
    spectrum, freqs, bin_hz = _power_spectrum(x[s0:s1], sr, f_ref)
    pitch, lost = _pitch_track(x, sr, f_ref, t_start, t_end)
    pitch_cents = stability = None
    f0 = f_ref
    # Without a track, the re-timing searches about half an octave below the note: from a ratio-0.5
    # fundamental swept well down to the note swept well up.
    centre = None if f_ref is None else f_ref * 2.0 ** -0.5
    if pitch is not None:
        med = float(np.median(pitch))
        q75, q25 = np.percentile(pitch, [75.0, 25.0])
        stability = round(float(q75 - q25) / 1.349, 1)
        centre = (1000.0 if f_ref is None else f_ref) * 2.0 ** (med / 1200.0)  # the median pitch, Hz
        if f_ref is not None:
            pitch_cents = round(med, 1) + 0.0
        else:
            f0 = centre  # the unreferenced track is in cents re 1 kHz
    centroid, brightness = _centroid_brightness(spectrum, freqs)
    inharm = None if f0 is None else _inharmonicity(spectrum, freqs, bin_hz, f0)
    if inharm is not None and inharm > STEADY_ENOUGH and centre is not None \
            and ((stability or 0.0) > MOVING_CENTS or lost > LOST_SHARE):
        # A moving pitch smears every partial of a spectrum summed over the note across a fixed grid: the
        # note is also read re-timed so that its fundamental holds still, against that fundamental's
        # series, and that reading counts where it is clearly lower (the motion explains the spread).
        c0, c1 = _energy_core(blocks, s0, s1, hop)
        moving = _moving_inharmonicity(x[c0:c1], sr, f_ref, centre, pitch is not None, f0, inharm)
        if moving is not None:
            inharm = moving

    return AudioDescriptors(
        **levels, attack_ms=attack, decay20_ms=decay20, decay60_ms=decay60, sustain_db=sustain, release_ms=release,
        centroid_hz=centroid, brightness=brightness, inharmonicity=inharm, pitch_cents=pitch_cents,
        pitch_stability_cents=stability, beating=_beating(env_db, times, t_start, t_end, hop, sr))


def render_and_describe(patch: Any, note: int = 60, velocity: int = 100, hold_s: float = 3.0, release_s: float = 1.0,
                        sample_rate: int = 48000) -> tuple[np.ndarray, AudioDescriptors]:
    """Render one note of a patch and describe it, with the sounding note and the note-off time filled in."""
    from ..synth.render import as_patch, render

    p = as_patch(patch)
    audio = render(p, note=note, velocity=velocity, hold_s=hold_s, release_s=release_s, sample_rate=sample_rate)
    # The harmonic grid and the pitch reference are the note that sounds: the key plus the voice's transpose.
    sounding = min(127, max(0, int(note) + p.transpose))
    return audio, describe_audio(audio, sample_rate, note=sounding, note_off_s=float(hold_s))


# --- input ---------------------------------------------------------------------------------------


def _checked(audio: Any, sample_rate: Any, note: Any, note_off_s: Any) -> tuple[np.ndarray, float, float | None, float | None]:
    a = np.asarray(audio)
    if a.dtype.kind not in "fiu" or a.ndim != 1:
        raise ValueError(f"audio: found {a.dtype} array of shape {a.shape}, allowed a 1-D array of real samples (mono)")
    x = a.astype(np.float64, copy=False)
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        nans = int(np.isnan(x[bad]).sum())
        raise ValueError(f"audio: {nans} NaN and {bad.size - nans} infinite samples (first at index {bad[0]}); "
                         "descriptors need finite samples")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)) \
            or not math.isfinite(sample_rate) or sample_rate < 1000:
        raise ValueError(f"sample_rate: found {sample_rate!r}, allowed a number of Hz >= 1000")
    f_ref = None
    if note is not None:
        if isinstance(note, bool) or not isinstance(note, (int, np.integer)) or not 0 <= int(note) <= 127:
            raise ValueError(f"note: found {note!r}, allowed None or a MIDI note 0..127")
        f_ref = note_hz(int(note))
        if f_ref >= sample_rate / 4.0:  # too few samples per period for a pitch or a harmonic grid
            f_ref = None
    off = None
    if note_off_s is not None:
        if isinstance(note_off_s, bool) or not isinstance(note_off_s, (int, float, np.integer, np.floating)) \
                or not math.isfinite(note_off_s) or note_off_s < 0:
            raise ValueError(f"note_off_s: found {note_off_s!r}, allowed None or a number of seconds >= 0")
        off = float(note_off_s)
    return x, float(sample_rate), f_ref, off


# --- envelopes -----------------------------------------------------------------------------------


def _level_db(amplitude: float) -> float:
    return round(max(FLOOR_DB, 20.0 * math.log10(amplitude)) if amplitude > 0 else FLOOR_DB, 2) + 0.0


def _block_energy(x: np.ndarray, hop: int) -> np.ndarray:
    nb = max(1, -(-x.size // hop))
    sq = np.zeros(nb * hop)
    sq[: x.size] = x * x
    e = sq.reshape(nb, hop).sum(axis=1)
    counts = np.full(nb, float(hop))
    counts[-1] = x.size - (nb - 1) * hop or hop
    return e / counts


def _window_s(f_ref: float | None, periods: float, low: float, high: float, unknown: float) -> float:
    return unknown if f_ref is None else min(high, max(low, periods / f_ref))


def _hann_taps(window_s: float, hop: int, sr: float) -> np.ndarray:
    k = max(3, int(round(window_s * sr / hop)) | 1)
    h = np.hanning(k + 2)[1:-1]
    return h / h.sum()


def _smooth(values: np.ndarray, taps: np.ndarray) -> np.ndarray:
    # Zero-phase and normalised at the edges, so that a clip cut while sounding does not read as a fade.
    half = taps.size // 2
    num = np.convolve(np.pad(values, half), taps, mode="valid")
    den = np.convolve(np.pad(np.ones_like(values), half), taps, mode="valid")
    return num / den


def _first_crossing(values: np.ndarray, times: np.ndarray, level: float) -> float:
    """Time the series first reaches ``level`` (linearly interpolated between blocks)."""
    i = int(np.argmax(values >= level))
    if i == 0:
        return float(times[0])
    v0, v1 = values[i - 1], values[i]
    return float(times[i - 1] + (times[i] - times[i - 1]) * (level - v0) / (v1 - v0))


@lru_cache(maxsize=64)
def _step_rise_s(n_taps: int, block_s: float) -> float:
    # The 10-90% rise the smoother alone gives an instant onset: removed in quadrature from measured attacks
    # (rise times of cascaded smoothers add roughly in quadrature), so a DX7 rate-99 attack reads ~0 ms.
    h = np.hanning(n_taps + 2)[1:-1]
    h /= h.sum()
    step = np.r_[np.zeros(2 * n_taps), np.ones(2 * n_taps)]
    amp = np.sqrt(_smooth(step, h))
    t = np.arange(step.size) * block_s
    return _first_crossing(amp, t, 0.9) - _first_crossing(amp, t, 0.1)


def _onset_peak(amp: np.ndarray) -> float:
    """The onset's peak: the envelope's first crest or shelf at ONSET_PEAK or more of its maximum.

    A layered or beating voice may rise fast to a first crest (or a shelf) and swell, or beat, to a higher
    crest long after: the attack is the rise to the first one. The rise ends at the first block, at
    ONSET_PEAK of the maximum or more, after which the envelope grows, over the next half of the time
    taken so far since the 10% point, at less than ONSET_KNEE of its mean rate so far (a linear ramp or
    a steady rise never stalls before its top; a crest or a shelf does). Returns the envelope's highest
    value over that look-ahead.
    """
    top = float(amp.max())
    i_top = int(np.argmax(amp))
    i_start = int(np.argmax(amp >= 0.1 * top))
    if top <= 0.0 or i_top - i_start < 2:
        return top
    i = np.arange(i_start + 1, i_top)
    elapsed = i - i_start
    w = np.maximum(2, (elapsed + 1) // 2)
    ahead = _range_max(amp, i + 1, np.minimum(i + 1 + w, amp.size))
    here = amp[i]
    stall = (here >= ONSET_PEAK * top) & (ahead - here <= ONSET_KNEE * (here - amp[i_start]) * w / elapsed)
    if not stall.any():
        return top
    k = int(np.argmax(stall))
    return float(max(ahead[k], here[k]))


def _range_max(a: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``max(a[lo:hi])`` for each pair (``hi > lo``), from a sparse table of power-of-two window maxima."""
    levels = [a]
    while 2 ** len(levels) <= a.size:
        prev, half = levels[-1], 2 ** (len(levels) - 1)
        levels.append(np.maximum(prev[:-half], prev[half:]))
    k = np.floor(np.log2(hi - lo)).astype(int)
    out = np.empty(lo.size)
    for level in np.unique(k):
        sel = k == level
        t = levels[level]
        out[sel] = np.maximum(t[lo[sel]], t[hi[sel] - 2 ** level])
    return out


def _attack(blocks: np.ndarray, times: np.ndarray, f_ref: float | None, hop: int, sr: float,
            smooth_amp: np.ndarray) -> tuple[float, float, float]:
    taps = _hann_taps(_window_s(f_ref, 2.0, 0.002, 0.03, 0.01), hop, sr)
    amp = np.sqrt(_smooth(blocks, taps))
    # Thresholds relative to the smoother envelope's onset peak: the sharper one also follows fast beating
    # between partials, and a layered voice's highest crest may come seconds after the attack is over.
    top = min(float(amp.max()), _onset_peak(smooth_amp))
    raw = _first_crossing(amp, times, 0.9 * top) - _first_crossing(amp, times, 0.1 * top)
    rise = _step_rise_s(taps.size, hop / sr)
    # The held part (pitch, beating) still starts at 90% of the envelope's maximum, once the sound is full.
    full = min(float(amp.max()), float(smooth_amp.max()))
    t10 = _first_crossing(amp, times, 0.1 * full)
    t90 = _first_crossing(amp, times, 0.9 * full)
    return round(1000.0 * math.sqrt(max(0.0, raw * raw - rise * rise)), 1), t10, t90


def _time_to_fall(env_db: np.ndarray, times: np.ndarray, start: int, end: int, level: float) -> float | None:
    """Milliseconds from block ``start`` until the envelope falls below ``level`` for good (before block ``end``)."""
    if end - start < 2:
        return None
    seg = env_db[start:end]
    # The running maximum from the future: "falls and stays below", so beating dips do not count as decays.
    fut = np.maximum.accumulate(seg[::-1])[::-1]
    below = fut <= level
    if not below.any():
        return None
    t = _first_crossing(-fut, times[start:end], -level)
    return round(1000.0 * max(0.0, t - float(times[start])), 1)


def _sustain_release(env: np.ndarray, env_db: np.ndarray, times: np.ndarray, i_peak: int, peak_db: float,
                     note_off: float | None, duration: float, hop: int, sr: float,
                     gain_db: float) -> tuple[float | None, float | None]:
    if note_off is None or note_off > duration + 0.5 * hop / sr or note_off < times[i_peak]:
        return None, None
    i_off = int(np.searchsorted(times, note_off))
    lo = max(i_peak, i_off - max(1, int(round(SUSTAIN_WINDOW_S * sr / hop))))
    held = float(np.mean(env[lo:i_off])) if i_off > lo else float(env[min(i_off, env.size - 1)])
    held_db = 10.0 * math.log10(max(held, _TINY))
    if held_db + gain_db < SILENCE_DBFS or held_db < peak_db - 90.0:
        return None, None  # the note had died out before the key was released
    sustain = round(min(0.0, held_db - peak_db), 2) + 0.0  # + 0.0: no -0.0 in the JSON
    if env.size - i_off < 2:
        return sustain, None
    tail = env_db[i_off:]
    target = max(held_db - RELEASE_DB, _noise_floor_db(tail, hop, sr) + 3.0)
    if target >= held_db - 3.0:
        return sustain, None
    return sustain, _time_to_fall(env_db, times, i_off, env.size, target)


def _noise_floor_db(tail_db: np.ndarray, hop: int, sr: float) -> float:
    # A floor shows as a flat end of the clip (level steady within 3 dB, no trend between its halves):
    # a release cannot fall below it. Synth renders end in digital zeros, whose floor is -150 dB.
    n = int(round(0.4 * sr / hop))
    if tail_db.size < 2 * n:
        return FLOOR_DB
    end = tail_db[-n:]
    p10, p90 = np.percentile(end, [10.0, 90.0])
    halves = abs(float(np.median(end[: n // 2]) - np.median(end[n // 2:])))
    if p90 - p10 <= 3.0 and halves <= 1.0 and float(np.median(end)) < float(tail_db[0]) - 20.0:
        return float(np.median(end))
    return FLOOR_DB


def _local_line(y: np.ndarray, k: int) -> np.ndarray:
    """Least-squares line through a centred window of ``k`` points (shortened at the ends), at each point."""
    n = y.size
    t = np.arange(n, dtype=np.float64)
    sums = [np.concatenate([[0.0], np.cumsum(v)]) for v in (np.ones(n), t, t * t, y, t * y)]
    lo = np.maximum(np.arange(n) - k // 2, 0)
    hi = np.minimum(np.arange(n) + k // 2 + 1, n)
    s0, s1, s2, sy, sty = (c[hi] - c[lo] for c in sums)
    den = s0 * s2 - s1 * s1
    slope = np.where(den > 0, (s0 * sty - s1 * sy) / np.where(den > 0, den, 1.0), 0.0)
    return (sy - slope * s1) / s0 + slope * t


def _beating(env_db: np.ndarray, times: np.ndarray, t_start: float, t_end: float, hop: int, sr: float) -> float | None:
    """Median over the held part of the envelope's swing about its local trend, as a depth.

    The dB envelope (10 ms box, 5 ms steps) minus a local straight line (the trend: a DX7 envelope
    stage is a straight line in dB, so a decay of any speed leaves nothing) is the slow fluctuation;
    its max - min within a window of a third of the held part (at most 1 s, so beats down to about
    1 Hz show in a long note) is the swing there. The median over the held part ignores the few
    windows an envelope-stage bend touches.
    """
    if t_end - t_start < MIN_HELD_S:
        return None
    i0, i1 = np.searchsorted(times, [t_start, t_end])
    seg = env_db[i0:i1]
    box = max(1, int(round(BEAT_BOX_S * sr / hop)))
    step = max(1, int(round(BEAT_STEP_S * sr / hop)))
    c = np.concatenate([[0.0], np.cumsum(seg)])
    y = ((c[box:] - c[:-box]) / box)[::step]
    dt = step * hop / sr
    k = max(3, int(round(min(BEAT_WINDOW_MAX_S, max(0.1, y.size * dt / 3.0)) / dt)) | 1)
    if y.size < k + 2:
        return None
    swing = sliding_window_view(y - _local_line(y, k), k)
    pp = swing.max(axis=1) - swing.min(axis=1)
    depth = np.tanh(pp * math.log(10.0) / 40.0)  # a swing of 20*log10((1+d)/(1-d)) dB -> d
    return round(float(np.median(depth)), 3) + 0.0


# --- spectrum ------------------------------------------------------------------------------------


def _audible_span(n: int, env_db: np.ndarray, peak_db: float, hop: int) -> tuple[int, int]:
    """First and end sample of the audible part: where the envelope is within AUDIBLE_DB of its peak."""
    loud = np.flatnonzero(env_db >= peak_db - AUDIBLE_DB)
    return int(loud[0] * hop), int(min(n, (loud[-1] + 1) * hop))


def _energy_core(blocks: np.ndarray, s0: int, s1: int, hop: int) -> tuple[int, int]:
    """The part of samples s0..s1 that holds all but ENERGY_TAILS of their energy at each end (whole blocks)."""
    b0, b1 = s0 // hop, max(s0 // hop + 1, -(-s1 // hop))
    cum = np.cumsum(blocks[b0:b1])
    if cum[-1] <= 0.0:
        return s0, s1
    i0 = int(np.searchsorted(cum, ENERGY_TAILS * cum[-1]))
    i1 = int(np.searchsorted(cum, (1.0 - ENERGY_TAILS) * cum[-1])) + 1
    return max(s0, (b0 + i0) * hop), min(s1, (b0 + i1) * hop)


def _power_spectrum(seg: np.ndarray, sr: float, f_ref: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Power spectrum summed over Hann frames of a segment (so louder frames weigh more)."""
    # Bins fine enough that a Hann main lobe (+-2 bins) is a tenth of the f0/2 grid spacing.
    need = 40.0 * sr / f_ref if f_ref is not None else 0.2 * sr
    n_fft = int(min(65536, max(2048, 2 ** math.ceil(math.log2(need)))))
    if seg.size <= n_fft:
        frames = (seg * np.hanning(seg.size))[None, :] if seg.size > 2 else seg[None, :]
        power = (np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2).sum(axis=0)
    else:
        view = sliding_window_view(seg, n_fft)
        starts = np.unique(np.r_[np.arange(0, view.shape[0], n_fft // 2), view.shape[0] - 1])  # the end too
        window = np.hanning(n_fft)
        power = np.zeros(n_fft // 2 + 1)
        # A few frames at a time, so that the frames and their spectra stay in cache (2.5x faster than all
        # at once); rows are added in order, as a sum over all frames would, so the result is bit-identical.
        for i in range(0, starts.size, SPECTRUM_CHUNK):
            chunk = np.abs(np.fft.rfft(view[starts[i: i + SPECTRUM_CHUNK]] * window, n=n_fft, axis=1))
            chunk *= chunk
            for row in chunk:
                power += row
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    keep = freqs >= LOWEST_HZ
    return power[keep], freqs[keep], sr / n_fft


def _centroid_brightness(power: np.ndarray, freqs: np.ndarray) -> tuple[float | None, float | None]:
    total = float(power.sum())
    if total <= 0.0:
        return None, None
    centroid = float((power * freqs).sum()) / total
    bright = float(power[freqs > BRIGHTNESS_SPLIT_HZ].sum()) / total
    return round(centroid), round(min(1.0, max(0.0, bright)), 3)


def _inharmonicity(power: np.ndarray, freqs: np.ndarray, bin_hz: float, f0: float) -> float | None:
    """Share of power in spectral peaks that lie off the series k*f0/2."""
    total = float(power.sum())
    if total <= 0.0 or power.size < 3:
        return None
    # Split the spectrum at its local minima: each region is one peak with its skirts, so a partial
    # broadened by a fast decay or a little vibrato is classed as a whole by where its top is.
    is_min = np.zeros(power.size, dtype=bool)
    is_min[1:-1] = (power[1:-1] < power[:-2]) & (power[1:-1] <= power[2:])
    starts = np.r_[0, np.flatnonzero(is_min)]
    energy = np.add.reduceat(power, starts)
    region = np.cumsum(np.r_[True, is_min[1:]]) - 1
    top = np.maximum.reduceat(power, starts)
    at_top = np.flatnonzero(power == top[region])
    first = np.r_[True, region[at_top][1:] != region[at_top][:-1]]
    peak_bin = at_top[first]
    # Parabolic interpolation of the peak on log power: a better frequency than the bin centre.
    lp = np.log(np.maximum(power, total * 1e-30))
    inner = (peak_bin > 0) & (peak_bin < power.size - 1)
    delta = np.zeros(peak_bin.size)
    a, b, c = lp[peak_bin[inner] - 1], lp[peak_bin[inner]], lp[peak_bin[inner] + 1]
    den = a - 2.0 * b + c
    delta[inner] = np.where(den < 0, 0.5 * (a - c) / np.where(den < 0, den, -1.0), 0.0)
    f_peak = freqs[peak_bin] + np.clip(delta, -0.5, 0.5) * bin_hz
    spacing = 0.5 * f0
    m = np.round(f_peak / spacing)
    tol = np.minimum(np.maximum(m * spacing * (2.0 ** (HARMONIC_TOLERANCE_CENTS / 1200.0) - 1.0), bin_hz), spacing / 8.0)
    harmonic = (m >= 1) & (np.abs(f_peak - m * spacing) <= tol)
    return round(min(1.0, max(0.0, 1.0 - float(energy[harmonic].sum()) / total)), 3)


# --- pitch ---------------------------------------------------------------------------------------


def _yin_pick(curves: np.ndarray) -> np.ndarray:
    """Per row, the first local minimum after the curve first dips below the threshold; else its minimum."""
    below = curves < YIN_THRESHOLD
    local_min = np.zeros_like(below)
    local_min[:, 1:-1] = (curves[:, 1:-1] <= curves[:, :-2]) & (curves[:, 1:-1] < curves[:, 2:])
    start = np.argmax(below, axis=1)
    cand = local_min & (np.arange(curves.shape[1])[None, :] >= start[:, None])
    return np.where(below.any(axis=1) & cand.any(axis=1), np.argmax(cand, axis=1), np.argmin(curves, axis=1))


def _search_lags(sr: float, f_ref: float | None) -> tuple[int, int]:
    # Search from a bit more than an octave below (ratio-0.5 carriers) to two octaves above the note.
    f_lo, f_hi = (f_ref / 2.2, f_ref * 4.4) if f_ref is not None else (30.0, 2000.0)
    return max(2, int(sr / min(f_hi, sr / 4.0))), int(math.ceil(sr / f_lo)) + 1


def _yin_curves(x: np.ndarray, sr: float, tau_max: int, first: int, last: int, max_frames: int,
                min_hop_s: float = 0.005, width: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """YIN's normalised difference for lags 0..tau_max of frames starting first..last (at most ``max_frames``,
    at least ``min_hop_s`` apart), integrated over ``width`` samples (default ``tau_max``).

    Returns the curves (one row per frame), which frames have energy, the frames' first samples and the
    integration width.
    """
    width = tau_max if width is None else width  # YIN's integration window
    length = width + tau_max
    hop = max(int(min_hop_s * sr), width // 4, (last - first) // max_frames + 1)
    all_frames = sliding_window_view(x, length)[first: last + 1: hop]
    n_fft = 1 << (length - 1).bit_length()
    lags = np.arange(tau_max + 1)
    dn = np.ones((all_frames.shape[0], tau_max + 1))
    energy_ok = np.zeros(all_frames.shape[0], dtype=bool)
    # A few frames at a time, so that they stay in cache; each frame's curve is computed on its own anyway.
    for i in range(0, all_frames.shape[0], YIN_CHUNK):
        frames = all_frames[i: i + YIN_CHUNK]
        # d(tau) = sum_j (x_j - x_{j+tau})^2 over j < width: energies from cumulative sums, the cross term by FFT.
        cross = np.fft.irfft(np.conj(np.fft.rfft(frames[:, :width], n_fft, axis=1)) * np.fft.rfft(frames, n_fft, axis=1),
                             n_fft, axis=1)[:, : tau_max + 1]
        cs = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames * frames, axis=1)], axis=1)
        e0 = cs[:, width][:, None]
        e_tau = cs[:, lags + width] - cs[:, lags]
        d = np.maximum(e0 + e_tau - 2.0 * cross, 0.0)
        energy_ok[i: i + YIN_CHUNK] = e0[:, 0] > 1e-12 * width
        cum = np.cumsum(d[:, 1:], axis=1)
        dn[i: i + YIN_CHUNK, 1:] = d[:, 1:] * lags[1:] / np.maximum(cum, 1e-300)
    return dn, energy_ok, first + hop * np.arange(all_frames.shape[0]), width


def _refined(dn: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Each row's period at integer lag ``tau``, refined by a parabola through the dip."""
    rows = np.arange(dn.shape[0])
    a, b, c = dn[rows, tau - 1], dn[rows, tau], dn[rows, np.minimum(tau + 1, dn.shape[1] - 1)]
    den = a - 2.0 * b + c
    shift = np.where(den > 0, 0.5 * (a - c) / np.where(den > 0, den, 1.0), 0.0)
    return tau + np.clip(shift, -0.5, 0.5)


def _pitch_track(x: np.ndarray, sr: float, f_ref: float | None, t_start: float,
                 t_end: float) -> tuple[np.ndarray | None, float]:
    """Voiced frames' f0 in cents re the note (re 1 kHz without one), from t_start to t_end (None if unpitched),
    and the share of sounding frames the track lost (unvoiced, or pinned to its search window's edge)."""
    tau_min, tau_max = _search_lags(sr, f_ref)
    if tau_max - tau_min < 3:
        return None, 0.0
    first = int(t_start * sr)
    last = min(int(t_end * sr), x.size) - 2 * tau_max
    if last < first:
        return None, 0.0
    dn, energy_ok, _, _ = _yin_curves(x, sr, tau_max, first, last, MAX_PITCH_FRAMES)
    if energy_ok.sum() < 3:
        return None, 0.0
    # Pass 1: one period for the whole held part, by YIN's rule on the frames' mean curve, so that the
    # track does not flip between f0 and f0/2 (or a fifth) from frame to frame on ambiguous DX7 spectra.
    lag = tau_min + int(_yin_pick(dn[energy_ok, tau_min: tau_max].mean(axis=0)[None, :])[0])
    # Pass 2: each frame's own deepest dip within +-12% (about two semitones) of it: follows vibrato.
    lo = max(tau_min, int(lag / 1.12))
    hi = max(lo + 1, min(tau_max, int(math.ceil(lag * 1.12)) + 1))
    tau = lo + np.argmin(dn[:, lo:hi], axis=1)
    best = dn[np.arange(dn.shape[0]), tau]
    period = _refined(dn, tau)
    voiced = energy_ok & (best < YIN_VOICED)
    # A pitch that moves beyond the window (a deep sweep, a glide) leaves frames that are periodic (a deep
    # dip somewhere in the search range) but unvoiced within the window, or pinned to its edge.
    periodic = dn[:, tau_min: tau_max].min(axis=1) < YIN_VOICED
    lost = float((energy_ok & periodic & (~voiced | (tau == lo) | (tau == hi - 1))).sum()) / float(energy_ok.sum())
    if voiced.sum() < max(3, 0.5 * dn.shape[0]):
        return None, lost
    f0 = sr / period[voiced]
    return 1200.0 * np.log2(f0 / (f_ref if f_ref is not None else 1000.0)), lost


def _sweep_track(seg: np.ndarray, sr: float, f_mid: float, known: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """Period (samples) of the fundamental through a segment, following wide sweeps: (frame centres, periods).

    Searches periods within SWEEP_RANGE of ``f_mid``'s. Starts from one frame, the one whose dip is
    deepest near ``f_mid`` when that is the ``known`` median pitch, else the one whose YIN period (the
    first deep dip) is deepest, and walks frame by frame both ways, each frame taking its deepest dip
    within SWEEP_STEP of the last voiced frame's period: a sweep of any depth is followed as long as it
    moves less than that between frames (8-20 ms apart), while a neighbouring octave (a factor 2) or fifth
    (1.5) is never in reach of one step. Unvoiced frames keep the last period. None when too few frames
    are voiced.
    """
    # A period needs no more than ~16 kHz to be found: averaging blocks of ``down`` samples (a gentle
    # low-pass) cuts the cost of the difference curves by that factor or more.
    down = max(1, int(sr // SWEEP_RATE))
    low = seg[: seg.size // down * down].reshape(-1, down).mean(axis=1) if down > 1 else seg
    sr = sr / down
    p_mid = sr / f_mid
    tau_min, tau_max = max(2, int(p_mid / SWEEP_RANGE)), int(math.ceil(SWEEP_RANGE * p_mid)) + 1
    # One median period of integration: a frame short enough that a fast sweep hardly moves within it.
    width = max(2, int(math.ceil(p_mid)))
    last = low.size - width - tau_max
    if p_mid < 4.0 or last < 0:
        return None
    dn, energy_ok, starts, width = _yin_curves(low, sr, tau_max, 0, last, MAX_SWEEP_FRAMES, SWEEP_HOP_S, width)
    n = dn.shape[0]
    rows = np.arange(n)
    if known:
        lo, hi = max(tau_min, int(p_mid / 1.12)), min(tau_max, int(math.ceil(p_mid * 1.12)) + 1)
        pick = lo + np.argmin(dn[:, lo:hi], axis=1)
    else:
        pick = tau_min + _yin_pick(dn[:, tau_min:tau_max])
    depth = np.where(energy_ok, dn[rows, pick], np.inf)
    anchor = int(np.argmin(depth))
    if not depth[anchor] < YIN_VOICED:
        return None
    tau = np.empty(n, dtype=np.int64)
    voiced = np.zeros(n, dtype=bool)
    for order in (range(anchor, n), range(anchor, -1, -1)):
        prev = int(pick[anchor])
        for i in order:
            lo = max(tau_min, int(prev / SWEEP_STEP))
            hi = max(lo + 1, min(tau_max, int(math.ceil(prev * SWEEP_STEP)) + 1))
            k = lo + int(np.argmin(dn[i, lo:hi]))
            voiced[i] = energy_ok[i] and dn[i, k] < YIN_VOICED
            if voiced[i]:
                prev = k
            tau[i] = prev
    if voiced.sum() < max(3, SWEEP_VOICED * n):
        return None
    period = _refined(dn, tau)
    # The frame's difference spans its first width + period samples: that is the time its period stands for.
    centres = starts + 0.5 * (width + period)
    return down * centres[voiced] + 0.5 * (down - 1), down * period[voiced]


def _moving_inharmonicity(seg: np.ndarray, sr: float, f_ref: float | None, f_mid: float, known: bool,
                          f_grid: float, fixed: float) -> float | None:
    """Inharmonicity of the segment re-timed so that its fundamental holds still, where it is at most CLEARER
    of the ``fixed`` reading (taken against the series of ``f_grid``); else (or if the pitch cannot be
    tracked) None.

    Time is stretched where the pitch is above its median and squeezed where below, so that the series
    of the moving fundamental becomes the fixed series of its median. Two passes: along the tracked
    period, then along the instantaneous frequency of the strongest low partial of the result (its phase,
    demodulated: free of the few cents' wobble a frame's period has in a fast sweep, which blurs the high
    partials), only where the first counts; the lower reading counts.
    """
    track = _sweep_track(seg, sr, f_mid, known)
    if track is None:
        return None
    centres, period = track
    p_med = float(np.median(period))
    # The tracked fundamental in the octave of the fixed reading's (a track an octave below on a ratio-0.5
    # voice would otherwise make the grid twice as dense as the fixed one).
    f0 = sr / p_med
    f0 *= 2.0 ** round(math.log2(f_grid / f0))
    y = _warped(seg, np.interp(np.arange(seg.size, dtype=np.float64), centres, p_med / period))
    power, freqs, bin_hz = _power_spectrum(y, sr, f_ref)
    reading = _inharmonicity(power, freqs, bin_hz, f0)
    if reading is None or reading > CLEARER * fixed:
        return None
    if reading <= STEADY_ENOUGH:
        return reading  # nothing left for a second pass to take up
    rate = _partial_rate(y, sr, f0, power, freqs)
    if rate is None:
        return reading
    again = _inharmonicity(_power_spectrum(_warped(y, rate), sr, f_ref)[0], freqs, bin_hz, f0)
    return reading if again is None else min(reading, again)


def _partial_rate(y: np.ndarray, sr: float, f0: float, power: np.ndarray, freqs: np.ndarray) -> np.ndarray | None:
    """Per sample, the frequency of the strongest of the first partials k*f0/2 (k = 1..8) over its mean."""
    grid = 0.5 * f0 * np.arange(1, 9)
    at = np.searchsorted(freqs, grid[grid < freqs[-1]])
    box = max(2, int(round(2.0 * sr / f0)))
    if at.size == 0 or y.size < 4 * box:
        return None
    h = float(grid[int(np.argmax(power[at]))])
    # Demodulate at that partial; a boxcar of two periods of f0 nulls every other partial of the series.
    # The carrier e^(-i w n) as a block of phasors times each block's starting phasor: no exp per sample.
    block = 4096
    w = -2.0 * np.pi * h / sr
    rows = -(-y.size // block)
    carrier = (np.exp(1j * w * block * np.arange(rows))[:, None] * np.exp(1j * w * np.arange(block))[None, :])
    z = y * carrier.reshape(-1)[: y.size]
    c = np.concatenate([[0.0], np.cumsum(z)])
    z = c[box:] - c[:-box]
    turn = np.angle(z[1:] * np.conj(z[:-1])) * sr / (2.0 * np.pi)  # Hz away from h, per sample
    c = np.concatenate([[0.0], np.cumsum(turn)])
    ratio = 1.0 + (c[box:] - c[:-box]) / (box * h)
    if not np.all(ratio > 0.0):
        return None
    pos = box - 0.5 + np.arange(ratio.size)  # the sample each twice-smoothed value stands for
    return np.interp(np.arange(y.size, dtype=np.float64), pos, ratio / np.median(ratio))


def _warped(seg: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """The segment resampled so that ``rate`` (per sample: the pitch over the wanted pitch) becomes 1.

    Cubic interpolation, and a gain so that every stretch of the original keeps its own energy.
    """
    pos = np.arange(seg.size, dtype=np.float64)
    warped = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]))])  # warped time of each sample
    all_src = np.interp(np.arange(int(warped[-1]) + 1, dtype=np.float64), warped, pos)
    out = np.empty(all_src.size)
    for k in range(0, all_src.size, WARP_CHUNK):  # in pieces that stay in cache; each sample on its own
        src = all_src[k: k + WARP_CHUNK]
        i = np.clip(np.floor(src).astype(np.int64), 1, seg.size - 3)
        f = src - i
        p0, p1, p2, p3 = seg[i - 1], seg[i], seg[i + 1], seg[i + 2]
        # Catmull-Rom cubic: flat to well above the partials that carry a DX7 note's energy.
        y = p1 + 0.5 * f * (p2 - p0 + f * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 + f * (3.0 * (p1 - p2) + p3 - p0)))
        out[k: k + WARP_CHUNK] = y / np.sqrt(rate[i] + f * (rate[i + 1] - rate[i]))
    return out
