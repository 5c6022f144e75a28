"""Speed of the audio descriptors on the 256 factory voices, against the render they describe.

Each voice of ROM1A-ROM4B is rendered at note 60, velocity 100, 48 kHz, held 8 s and released 2 s
(10 s of audio), then described (``describe_audio`` with the sounding note and the note-off time).
Prints seconds per voice (mean, median, max) for the render and for the descriptors, the slowest
voices, and how often each descriptor is undefined (None) across the bank. Asserts nothing.

    .venv/bin/python benchmarks/descriptors.py [--voices N] [--per-voice]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from fidelity import YAMAHA, factory_voices  # noqa: E402  (the one reader of the factory banks)

NOTE, VELOCITY, HOLD_S, RELEASE_S, SAMPLE_RATE = 60, 100, 8.0, 2.0, 48000


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", type=int, default=None, help="only the first N voices")
    ap.add_argument("--per-voice", action="store_true", help="print every voice's one-line summary")
    args = ap.parse_args(argv)
    if not YAMAHA.exists():
        print(f"needs the factory banks at {YAMAHA} (third-party data in ../shared, absent here)", file=sys.stderr)
        return 2

    import numpy as np

    from patchsmith.evals.descriptors import describe_audio
    from patchsmith.schema.audio import AudioDescriptors
    from patchsmith.synth.render import render
    voices = factory_voices(args.voices)
    # Pay the one-off costs (kernel cache load, numpy FFT plans) before timing anything.
    warm = render(voices[0][2], note=NOTE, hold_s=0.5, release_s=0.1, sample_rate=SAMPLE_RATE)
    describe_audio(warm, SAMPLE_RATE, note=NOTE, note_off_s=0.5)

    render_s, describe_s, rows = [], [], []
    for bank, i, patch in voices:
        t0 = time.perf_counter()
        audio = render(patch, note=NOTE, velocity=VELOCITY, hold_s=HOLD_S, release_s=RELEASE_S, sample_rate=SAMPLE_RATE)
        t1 = time.perf_counter()
        d = describe_audio(audio, SAMPLE_RATE, note=min(127, max(0, NOTE + patch.transpose)), note_off_s=HOLD_S)
        t2 = time.perf_counter()
        render_s.append(t1 - t0)
        describe_s.append(t2 - t1)
        rows.append((f"{bank}:{i + 1:02d} {patch.name or ''}", d))

    r, d_ = np.array(render_s), np.array(describe_s)
    print(f"{len(voices)} factory voices, note {NOTE}, {HOLD_S:g} s held + {RELEASE_S:g} s released at {SAMPLE_RATE} Hz, one thread")
    print(f"{'seconds per voice':<22}{'mean':>9}{'median':>9}{'max':>9}")
    for label, v in (("render", r), ("describe_audio", d_)):
        print(f"{label:<22}{v.mean():>9.4f}{np.median(v):>9.4f}{v.max():>9.4f}")
    print(f"describe / render: {d_.sum() / r.sum():.2f}x; describe per audio second: {d_.mean() / (HOLD_S + RELEASE_S) * 1000:.2f} ms")
    print("slowest to describe:", ", ".join(f"{rows[j][0].strip()} {d_[j]:.3f} s" for j in np.argsort(d_)[::-1][:3]))

    print(f"\n{'descriptor':<24}{'None':>6}{'min':>10}{'median':>10}{'max':>10}")
    for name in AudioDescriptors.model_fields:
        values = [getattr(d, name) for _, d in rows]
        if isinstance(values[0], bool):
            print(f"{name:<24}{'':>6}  true for {sum(values)} voices")
            continue
        known = np.array([v for v in values if v is not None], dtype=float)
        stats = (f"{known.min():>10.2f}{np.median(known):>10.2f}{known.max():>10.2f}" if known.size else "")
        print(f"{name:<24}{len(values) - known.size:>6}{stats}")
    if args.per_voice:
        print()
        for label, d in rows:
            print(f"{label:<22} {d.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
