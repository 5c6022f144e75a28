"""Speed of patchsmith's engine against Dexed's (dexed-py) on the factory voices.

The same 256 voices, 10 s each (held 8 s, released 2 s) at 48 kHz, single thread, both engines in
this one process run: CPU seconds per audio second and their ratio. Then ``render_batch`` on all
cores against one core, and the wall time of a fresh ``patchsmith render`` process with the kernel
cache present. Without ../shared, the project's own examples stand in for the factory voices.

    .venv/bin/python benchmarks/speed.py [--voices N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

HOLD_S, RELEASE_S, SAMPLE_RATE = 8.0, 2.0, 48000


def _voices(limit: int | None):
    from fidelity import YAMAHA, factory_voices

    if YAMAHA.exists():
        return [p for _, _, p in factory_voices(limit)], "factory voices (ROM1A-ROM4B)"
    from patchsmith.examples import load_examples

    return [e.patch for e in load_examples()][:limit], "project examples (../shared absent)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3, help="best of R passes")
    args = ap.parse_args(argv)

    import dexed
    import numpy as np

    from patchsmith.schema.compact import dumps_compact
    from patchsmith.synth.render import render, render_batch
    from patchsmith.synth.sysex import patch_to_vced

    voices, what = _voices(args.voices)
    audio_s = len(voices) * (HOLD_S + RELEASE_S)
    render(voices[0], hold_s=0.1, release_s=0.1)  # load the cached kernels before timing
    dx = [dexed.Patch.from_sysex(bytes(patch_to_vced(p)) + b"\x3f") for p in voices]
    synth = dexed.DexedSynth(float(SAMPLE_RATE))

    def ours() -> None:
        for p in voices:
            render(p, hold_s=HOLD_S, release_s=RELEASE_S, sample_rate=SAMPLE_RATE)

    def theirs() -> None:
        for p in dx:
            synth.load_patch(p)
            synth.render(60, 100, HOLD_S, HOLD_S + RELEASE_S)

    def cpu(fn) -> float:
        best = float("inf")
        for _ in range(args.repeat):
            t = time.process_time()
            fn()
            best = min(best, time.process_time() - t)
        return best

    t_ours, t_dexed = cpu(ours), cpu(theirs)
    print(f"Speed, {len(voices)} {what}, {HOLD_S + RELEASE_S:g} s each at {SAMPLE_RATE} Hz, one thread "
          f"(best of {args.repeat})")
    print(f"{'engine':<12} {'CPU s':>8} {'ms per audio s':>15} {'x real time':>12}")
    for name, t in (("patchsmith", t_ours), ("dexed-py", t_dexed)):
        print(f"{name:<12} {t:8.3f} {1000 * t / audio_s:15.3f} {audio_s / t:12.0f}")
    print(f"ratio patchsmith / dexed-py CPU time: {t_ours / t_dexed:.3f} (required <= 1.0)")

    cores = os.cpu_count() or 1
    walls = {}
    for workers in (1, cores):
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            render_batch(voices, hold_s=HOLD_S, release_s=RELEASE_S, sample_rate=SAMPLE_RATE, workers=workers)
            best = min(best, time.perf_counter() - t)
        walls[workers] = best
    print(f"\nrender_batch: 1 worker {walls[1]:.3f} s, {cores} workers {walls[cores]:.3f} s, "
          f"throughput x{walls[1] / walls[cores]:.2f} (required >= 1.8 on 2 cores)")

    with tempfile.TemporaryDirectory() as d:
        patch_file = Path(d) / "voice.json"
        patch_file.write_text(dumps_compact(voices[0]))
        exe = Path(sys.executable).with_name("patchsmith")
        cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "patchsmith"]),
               "render", str(patch_file), "-o", str(Path(d) / "out.wav")]
        subprocess.run(cmd, check=True, capture_output=True)  # make sure the kernel cache is present
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        print(f"fresh `patchsmith render` process (3 s + 1 s clip, kernel cache present): "
              f"{min(times):.2f} s wall (best of {args.repeat}), median {float(np.median(times)):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
