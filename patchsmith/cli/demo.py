"""``patchsmith demo``: render every example patch to a peak-normalised WAV and print a table of levels."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import EXIT_OK, CliError, fmt_db, note, progress, write_atomic


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``demo`` and its options."""
    d = sub.add_parser("demo", help="render every example patch to WAV and print their levels",
                       description="Render the captioned example patches in examples/ to peak-normalised WAV files, "
                                   "write them as a DX7 bank, and print a table of levels.")
    d.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    d.add_argument("--examples", metavar="DIR", help="examples folder (default: the repository's examples/)")
    d.add_argument("--sample-rate", type=int, default=48000, help="16000..96000 (default 48000)")
    d.set_defaults(func=run)
    return d


def run(args: argparse.Namespace) -> int:
    """Render every example patch to a peak-normalised WAV and print a table of levels."""
    from ..evals.descriptors import basic_descriptors
    from ..examples import load_examples
    from ..synth.render import check_request, render
    from ..synth.sysex import NotRepresentableError, write_vmem
    from ..synth.wav import write_wav

    examples = load_examples(args.examples)
    check_request(60, 100, 1.0, 1.0, args.sample_rate)  # before any folder is made
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for ex in progress(examples, "demo"):
        audio = render(ex.patch, sample_rate=args.sample_rate, **ex.render_settings())
        path = out / f"{ex.key}.wav"
        write_wav(path, audio, args.sample_rate, gain="peak", peak_dbfs=-1.0, subtype="PCM_16")
        rows.append((ex, path, basic_descriptors(audio, args.sample_rate)))
    try:
        bank = write_vmem([ex.patch for ex in examples[:32]])
        write_atomic(out / "examples.syx", bank)
    except NotRepresentableError as err:
        note(f"no examples.syx: {err}")
    width = max(len(ex.name) for ex, _, _ in rows)
    fwidth = max(len(str(p)) for _, p, _ in rows)
    print(f"{'name':<{width}}  {'file':<{fwidth}}  {'note':>4}  {'peak dBFS':>9}  {'RMS dBFS':>8}  {'duration':>8}")
    for ex, path, d in rows:
        print(f"{ex.name:<{width}}  {str(path):<{fwidth}}  {ex.note:>4}  {fmt_db(d['peak_dbfs']):>9}  "
              f"{fmt_db(d['rms_dbfs']):>8}  {d['duration_s']:>7.2f}s")
    print(f"levels in engine units (1.0 = one full-scale carrier); each WAV is peak-normalised to -1 dBFS. "
          f"The examples as a DX7 bank: {out / 'examples.syx'}")
    return EXIT_OK
