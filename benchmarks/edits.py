"""Do the semantic edits move the sound the way their words say? Success rates on the 256 factory voices.

For every quality and amount, ``adjust`` is applied to each factory voice (ROM1A-ROM4B), the voice is
rendered before and after (note 60, velocity 100), and the quality's descriptor must move strictly the
intended way (beyond the descriptor's rounding):

    brightness -> centroid_hz          attack  -> attack_ms           decay   -> decay20_ms
    release    -> release_ms           sustain -> sustain_db          metallic -> inharmonicity
    vibrato    -> pitch_stability_cents   detune -> beating (or the pitch spread, pitch_stability_cents)
    level      -> rms_dbfs

A voice the edit declines (no change, with a note: already at a limit, or the quality does not exist
in the voice, e.g. no vibrato to reduce) is counted apart, not as a success. A voice whose descriptor
is undefined before and after counts as a failure. For the times, "undefined" means "not within the
clip", so finite -> undefined is a lengthening and undefined -> finite a shortening. Each quality is
rendered long enough for its descriptor: decays held 5 s (30 s when that shows no 20 dB fall), releases
after 0.5 s with a 10 s tail, vibrato and detune held 4 s; time-only renders run at 16 kHz.

    .venv/bin/python benchmarks/edits.py [--amounts -3,-1,1,3] [--qualities brightness,attack] [--voices N]

Exits 2 when the factory banks (../shared) are absent.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import fidelity  # noqa: E402  (the one reader of the factory banks for every benchmark)

YAMAHA = fidelity.YAMAHA

# (hold_s, release_s, sample_rate) per render setting.
SETTINGS: dict[str, tuple[float, float, int]] = {
    "default": (2.0, 0.5, 24000),
    "decay": (5.0, 0.1, 16000),
    "decay_long": (30.0, 0.1, 16000),
    "release": (0.5, 10.0, 16000),
    "motion": (4.0, 0.2, 24000),
}
QUALITY_SETTING = {"brightness": "default", "attack": "default", "decay": "decay", "release": "release",
                   "sustain": "default", "metallic": "default", "vibrato": "motion", "detune": "motion",
                   "level": "default"}
FIELD = {"brightness": "centroid_hz", "attack": "attack_ms", "decay": "decay20_ms", "release": "release_ms",
         "sustain": "sustain_db", "metallic": "inharmonicity", "vibrato": "pitch_stability_cents",
         "detune": "beating", "level": "rms_dbfs"}
# Smallest change that counts: one step of the descriptor's own rounding.
TOLERANCE = {"centroid_hz": 0.5, "attack_ms": 0.05, "decay20_ms": 0.05, "release_ms": 0.05, "sustain_db": 0.005,
             "inharmonicity": 0.0005, "pitch_stability_cents": 0.05, "beating": 0.0005, "rms_dbfs": 0.005}
# None for these means "never within the clip": longer than anything measured.
NEVER_IS_LONG = ("decay20_ms", "release_ms")
REQUIRED_RATE = 0.9


@dataclass
class Row:
    """The outcome of one quality at one amount over the voices."""

    quality: str
    amount: int
    voices: int
    applied: int  # the edit changed the patch
    moved: int  # ... and the descriptor moved the intended way
    failures: list[tuple[int, str, Any, Any]]

    @property
    def declined(self) -> int:
        return self.voices - self.applied

    @property
    def rate(self) -> float:
        """Share of the applied edits that moved the descriptor the intended way."""
        return self.moved / self.applied if self.applied else 1.0

    @property
    def rate_all(self) -> float:
        """Share of all voices (a declined edit counts as not moved)."""
        return self.moved / self.voices if self.voices else 0.0


def factory_voices(limit: int | None = None) -> list:
    """The 256 factory voices (ROM1A-ROM4B) as patches, read with the project's sysex reader."""
    return [p for _, _, p in fidelity.factory_voices(limit)]


def describe_many(patches: Sequence, setting: str, workers: int | None = None) -> list:
    """Render each patch (note 60, velocity 100) with a setting and describe it at its sounding note."""
    from patchsmith.evals.descriptors import describe_audio
    from patchsmith.synth.render import render_batch

    hold, release, sr = SETTINGS[setting]
    audio = render_batch(list(patches), note=60, hold_s=hold, release_s=release, sample_rate=sr, workers=workers)

    def one(item: tuple) -> Any:
        x, p = item
        return describe_audio(x, sr, note=max(0, min(127, 60 + p.transpose)), note_off_s=hold)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return list(pool.map(one, zip(audio, patches)))


def _value(d: Any, field: str) -> float | None:
    v = getattr(d, field)
    if v is None and field in NEVER_IS_LONG:
        return math.inf
    if v is None and field == "sustain_db":
        return -math.inf  # the note had died out before the key was released: no sustain at all
    return v


def _moved(field: str, amount: int, before: Any, after: Any) -> bool:
    x, y = _value(before, field), _value(after, field)
    if x is None or y is None or (math.isinf(x) and x == y):
        return False  # undefined before and after: the descriptor cannot see the edit
    if math.isinf(x) or math.isinf(y):
        return (y > x) if amount > 0 else (y < x)
    return (y - x) * (1 if amount > 0 else -1) > TOLERANCE[field]


def judge(quality: str, amount: int, before: Any, after: Any) -> bool:
    """Whether the quality's descriptor moved strictly the way ``amount`` asks."""
    if quality == "detune":
        # Beating depth is the primary sign; a wider pitch spread is the other face of the same detune.
        return _moved("beating", amount, before, after) or _moved("pitch_stability_cents", amount, before, after)
    return _moved(FIELD[quality], amount, before, after)


def evaluate(voices: Sequence, qualities: Sequence[str], amounts: Sequence[int], workers: int | None = None,
             progress: Callable[[str], None] | None = None) -> list[Row]:
    """Apply every quality at every amount to every voice and judge the descriptor change."""
    from patchsmith.synth.edits import adjust

    bases: dict[str, list] = {}
    rows = []
    for q in qualities:
        setting = QUALITY_SETTING[q]
        if setting not in bases:
            bases[setting] = describe_many(voices, setting, workers)
        base = bases[setting]
        for a in amounts:
            t0 = time.perf_counter()
            results = [adjust(v, q, a) for v in voices]
            idx = [i for i, r in enumerate(results) if r.changes]
            after = dict(zip(idx, describe_many([results[i].patch for i in idx], setting, workers)))
            moved = {i for i in idx if judge(q, a, base[i], after[i])}
            shown = {i: (base[i], after[i]) for i in idx}
            if q == "decay":
                # A decay slower than the first hold shows no 20 dB fall yet: measure those again held 30 s.
                again = [i for i in idx
                         if i not in moved and base[i].decay20_ms is None and after[i].decay20_ms is None]
                if again:
                    long_before = describe_many([voices[i] for i in again], "decay_long", workers)
                    long_after = describe_many([results[i].patch for i in again], "decay_long", workers)
                    for i, b, c in zip(again, long_before, long_after):
                        shown[i] = (b, c)
                        if judge(q, a, b, c):
                            moved.add(i)
            field = FIELD[q]
            failures = [(i, (voices[i].name or "").strip(), getattr(shown[i][0], field), getattr(shown[i][1], field))
                        for i in idx if i not in moved]
            rows.append(Row(q, a, len(voices), len(idx), len(moved), failures))
            if progress:
                progress(f"{q} {a:+d}: {len(moved)}/{len(idx)} ({time.perf_counter() - t0:.1f} s)")
    return rows


def table(rows: Sequence[Row]) -> str:
    """The success-rate table: one line per quality and amount."""
    lines = [f"{'quality':<11} {'amount':>6} {'applied':>7} {'declined':>8} {'moved':>5} {'rate':>6} {'of all':>6}"]
    for r in rows:
        flag = "" if r.rate >= REQUIRED_RATE else "  < 90%"
        lines.append(f"{r.quality:<11} {r.amount:>+6d} {r.applied:>7d} {r.declined:>8d} {r.moved:>5d} "
                     f"{r.rate:>6.1%} {r.rate_all:>6.1%}{flag}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the success-rate table for the chosen amounts (default -3, -1, +1, +3)."""
    from patchsmith.synth.edits import QUALITIES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--amounts", default="-3,-1,1,3", help="comma-separated amounts (-3..3)")
    ap.add_argument("--qualities", default=",".join(QUALITIES))
    ap.add_argument("--voices", type=int, default=None, help="only the first N voices")
    ap.add_argument("--failures", action="store_true", help="list the voices where the descriptor did not move")
    args = ap.parse_args(argv)
    if not YAMAHA.exists():
        print(f"needs the factory banks at {YAMAHA} (third-party data in ../shared, absent in a fresh clone)",
              file=sys.stderr)
        return 2
    amounts = [int(a) for a in args.amounts.split(",")]
    qualities = [q for q in args.qualities.split(",") if q]
    voices = factory_voices(args.voices)
    t0 = time.perf_counter()
    rows = evaluate(voices, qualities, amounts, progress=lambda s: print(s, file=sys.stderr, flush=True))
    print(table(rows))
    print(f"\n{len(voices)} voices, {time.perf_counter() - t0:.0f} s; rate = moved / applied, "
          f"of all = moved / voices")
    if args.failures:
        for r in rows:
            for f in r.failures:
                print(f"{r.quality} {r.amount:+d}: voice {f[0]} {f[1]!r}: {FIELD[r.quality]} {f[2]} -> {f[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
