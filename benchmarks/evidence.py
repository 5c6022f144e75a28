"""Speed of the operator evidence renderer: six-operator evidence against one plain render.

For each voice: one plain render of a segment's length (hold 3 s + release 1 s) and the evidence
clip (FULL + one 4 s segment per carrier or modulator, all variants in one batch call across
cores), in OFF and ON modes. Prints wall-time and CPU-time ratios (target: wall <= 4x on 2 cores).
Voices: the factory banks when ../shared is present, else the project's examples.

    .venv/bin/python benchmarks/evidence.py [--voices N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3, help="best of R passes")
    args = ap.parse_args(argv)

    from speed import _voices

    from patchsmith.synth.evidence import default_operators, render_evidence
    from patchsmith.synth.render import render

    voices, what = _voices(args.voices)
    render(voices[0], hold_s=0.1, release_s=0.1)
    render_evidence(voices[0], segment_s=0.2, hold_s=0.1)

    def timed(fn) -> tuple[float, float]:
        best_wall = best_cpu = float("inf")
        for _ in range(args.repeat):
            w, c = time.perf_counter(), time.process_time()
            fn()
            best_wall = min(best_wall, time.perf_counter() - w)
            best_cpu = min(best_cpu, time.process_time() - c)
        return best_wall, best_cpu

    plain = timed(lambda: [render(v, hold_s=3.0, release_s=1.0) for v in voices])
    segs = sum(len(default_operators(v)) for v in voices) / len(voices)
    print(f"Evidence speed, {len(voices)} {what}, {os.cpu_count()} cores, best of {args.repeat}; "
          f"{segs:.1f} operator segments per voice on average")
    print(f"{'what':<22} {'wall ms/voice':>14} {'CPU ms/voice':>13} {'wall ratio':>11} {'CPU ratio':>10}")
    print(f"{'plain render (4 s)':<22} {1000 * plain[0] / len(voices):14.2f} {1000 * plain[1] / len(voices):13.2f} "
          f"{1.0:11.2f} {1.0:10.2f}")
    for mode in ("off", "on"):
        ev = timed(lambda: [render_evidence(v, mode=mode, segment_s=4.0, hold_s=3.0) for v in voices])
        print(f"{'evidence ' + mode.upper() + ' (FULL+ops)':<22} {1000 * ev[0] / len(voices):14.2f} "
              f"{1000 * ev[1] / len(voices):13.2f} {ev[0] / plain[0]:11.2f} {ev[1] / plain[1]:10.2f}")
    print("target: evidence wall time <= 4x one plain render of the same length, on 2 cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
