"""Fidelity of patchsmith's engine against Dexed's (dexed-py, the GPL test oracle) on the factory voices.

For each of the 256 factory voices (ROM1A-ROM4B), 48 kHz, held 8 s and released 2 s: at note 60
velocity 100, then at notes 36 and 84 and velocities 40 and 127. Both engines get the very same
voice (dexed-py loads the VCED bytes our codec writes). Per voice and in summary: log-mel spectral
distance (dB), cosine of frame-RMS envelopes, time-domain SNR, and whether the audio is bit-identical.

    .venv/bin/python benchmarks/fidelity.py [--voices N] [--csv FILE] [--per-voice]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
YAMAHA = REPO.parent / "shared" / "data" / "dx7" / "yamaha"
FACTORY = ("rom1a", "rom1b", "rom2a", "rom2b", "rom3a", "rom3b", "rom4a", "rom4b")
CONDITIONS = ((60, 100), (36, 100), (84, 100), (60, 40), (60, 127))
HOLD_S, RELEASE_S, SAMPLE_RATE = 8.0, 2.0, 48000
# Required at note 60, velocity 100 (issue: the DX7 core, §6).
MAX_MEDIAN_LMD, MAX_P95_LMD, MIN_MEDIAN_RMS_COS = 1.0, 3.0, 0.995


@dataclass
class Comparison:
    """One voice at one note and velocity, ours against dexed-py."""

    bank: str
    index: int
    name: str
    note: int
    velocity: int
    log_mel_db: float
    rms_cos: float
    snr_db: float
    identical: bool


def factory_voices(limit: int | None = None) -> list[tuple[str, int, object]]:
    """(bank, index, Patch) for the factory banks in ../shared, read with our own sysex reader."""
    from patchsmith.synth.sysex_reader import read_bank_file

    out = []
    for bank in FACTORY:
        for i, patch in enumerate(read_bank_file(YAMAHA / f"{bank}.syx").voices):
            out.append((bank, i, patch))
    return out[:limit] if limit else out


def dexed_render(patch, note: int, velocity: int, hold_s: float, release_s: float, sample_rate: int) -> np.ndarray:
    """dexed-py's render of our patch, loaded from our VCED bytes."""
    import dexed

    from patchsmith.synth.sysex import patch_to_vced

    synth = dexed.DexedSynth(float(sample_rate))
    synth.load_patch(dexed.Patch.from_sysex(bytes(patch_to_vced(patch)) + b"\x3f"))
    return synth.render(note, velocity, hold_s, hold_s + release_s)


def compare(bank: str, index: int, patch, note: int, velocity: int, hold_s: float = HOLD_S,
            release_s: float = RELEASE_S, sample_rate: int = SAMPLE_RATE) -> Comparison:
    """Render one voice with both engines and measure how far apart they are."""
    from patchsmith.evals.distances import log_mel_distance_db, rms_cosine, snr_db
    from patchsmith.synth.render import render

    ref = dexed_render(patch, note, velocity, hold_s, release_s, sample_rate)
    ours = render(patch, note=note, velocity=velocity, hold_s=hold_s, release_s=release_s, sample_rate=sample_rate)
    n = min(len(ref), len(ours))
    ref, ours = ref[:n], ours[:n]
    return Comparison(bank, index, (patch.name or "").strip(), note, velocity,
                      log_mel_distance_db(ref, ours, sample_rate), rms_cosine(ref, ours), snr_db(ref, ours),
                      bool(np.array_equal(ref, ours)))


def summarise(rows: list[Comparison]) -> dict[str, float]:
    """Median and 95th percentile of the log-mel distance, median RMS cosine and SNR, identical count."""
    lmd = np.array([r.log_mel_db for r in rows])
    cos = np.array([r.rms_cos for r in rows])
    snr = np.array([min(r.snr_db, 300.0) for r in rows])  # identical audio has infinite SNR
    return {
        "voices": len(rows),
        "median_log_mel_db": float(np.median(lmd)),
        "p95_log_mel_db": float(np.percentile(lmd, 95)),
        "max_log_mel_db": float(lmd.max()),
        "median_rms_cos": float(np.median(cos)),
        "min_rms_cos": float(cos.min()),
        "median_snr_db": float(np.median(snr)),
        "identical": int(sum(r.identical for r in rows)),
    }


def _fmt_snr(x: float) -> str:
    return "inf" if math.isinf(x) or x >= 300 else f"{x:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--voices", type=int, default=None, help="only the first N factory voices")
    ap.add_argument("--csv", type=Path, default=None, help="write every comparison to this CSV file")
    ap.add_argument("--per-voice", action="store_true", help="print a line per voice at note 60, velocity 100")
    args = ap.parse_args(argv)
    if not YAMAHA.exists():
        print(f"needs the factory banks in {YAMAHA} (the developers' ../shared)", file=sys.stderr)
        return 2
    voices = factory_voices(args.voices)
    from tqdm import tqdm

    rows: list[Comparison] = []
    for note, vel in CONDITIONS:
        for bank, i, patch in tqdm(voices, desc=f"note {note} vel {vel}", file=sys.stderr):
            rows.append(compare(bank, i, patch, note, vel))
    if args.per_voice:
        print(f"{'bank':6} {'#':>2} {'name':10} {'log-mel dB':>10} {'RMS cos':>8} {'SNR dB':>7} identical")
        for r in rows:
            if (r.note, r.velocity) == CONDITIONS[0]:
                print(f"{r.bank:6} {r.index + 1:2d} {r.name:10} {r.log_mel_db:10.3f} {r.rms_cos:8.5f} "
                      f"{_fmt_snr(r.snr_db):>7} {'yes' if r.identical else 'no'}")
    print(f"\nFidelity against dexed-py (Dexed Mark I), {len(voices)} factory voices, {SAMPLE_RATE} Hz, "
          f"held {HOLD_S:g} s + released {RELEASE_S:g} s")
    print(f"{'note':>4} {'vel':>3} | {'median LMD':>10} {'p95 LMD':>8} {'max LMD':>8} | {'med RMS cos':>11} "
          f"{'min RMS cos':>11} | {'med SNR':>7} | identical")
    ok = True
    for note, vel in CONDITIONS:
        s = summarise([r for r in rows if (r.note, r.velocity) == (note, vel)])
        print(f"{note:4d} {vel:3d} | {s['median_log_mel_db']:10.4f} {s['p95_log_mel_db']:8.4f} {s['max_log_mel_db']:8.4f} "
              f"| {s['median_rms_cos']:11.6f} {s['min_rms_cos']:11.6f} | {_fmt_snr(s['median_snr_db']):>7} "
              f"| {s['identical']}/{s['voices']}")
        if (note, vel) == CONDITIONS[0]:
            ok = (s["median_log_mel_db"] <= MAX_MEDIAN_LMD and s["p95_log_mel_db"] <= MAX_P95_LMD
                  and s["median_rms_cos"] >= MIN_MEDIAN_RMS_COS)
    print(f"\nrequired at note 60 velocity 100: median LMD <= {MAX_MEDIAN_LMD}, p95 <= {MAX_P95_LMD}, "
          f"median RMS cos >= {MIN_MEDIAN_RMS_COS}: {'PASS' if ok else 'FAIL'}")
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["bank", "index", "name", "note", "velocity", "log_mel_db", "rms_cos", "snr_db", "identical"])
            for r in rows:
                w.writerow([r.bank, r.index, r.name, r.note, r.velocity, f"{r.log_mel_db:.6f}", f"{r.rms_cos:.8f}",
                            _fmt_snr(r.snr_db), int(r.identical)])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
