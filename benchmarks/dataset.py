"""Dataset build throughput: all of alltheweb.zip, one 10 s render per unique voice, on 2 worker processes.

Steps, all in one run so that every figure comes from the same machine state:

1. read + dedup the inputs and write the manifest (``--limit N`` keeps the first N unique voices);
2. baseline: a single-process plain render loop (``synth.render.render``, 10 s at 48 kHz, note 60,
   velocity 100) over ``--baseline`` manifest voices spread evenly over the build -> voices/s;
3. the same voices through the build's per-voice work in one process (render + descriptors + FLAC)
   -> voices/s, and the share of each part;
4. the render stage of the build on ``--workers`` processes (default 2) over the whole manifest -> wall
   time and voices/s (captions off: they are D2's stage and measured in its own benchmark).

Efficiency (the issue's definition) = build voices/s / (workers x plain-render voices/s). Scaling
efficiency = build voices/s / (workers x one-process build voices/s): how well the pool scales the
same work. Prints a table; asserts nothing.

    .venv/bin/python benchmarks/dataset.py [--limit N] [--workers 2] [--baseline 200] [--out DIR] [INPUT ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALLTHEWEB = REPO.parent / "shared" / "data" / "dx7" / "alltheweb.zip"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*", help=f"inputs (default {ALLTHEWEB})")
    ap.add_argument("--limit", type=int, default=None, help="only the first N unique voices (default all)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes for the build (default 2)")
    ap.add_argument("--baseline", type=int, default=200, help="voices timed in the single-process loops (default 200)")
    ap.add_argument("--shard-size", type=int, default=64, help="voices per shard (default 64)")
    ap.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    ap.add_argument("--out", default=None, help="build folder (default a temporary one, removed afterwards)")
    args = ap.parse_args(argv)
    inputs = args.inputs or [str(ALLTHEWEB)]
    missing = [p for p in inputs if not Path(p).exists()]
    if missing:
        print(f"needs the inputs {', '.join(missing)} (third-party data in ../shared, absent here)", file=sys.stderr)
        return 2

    import pyarrow.parquet as pq

    from patchsmith.evals.descriptors import describe_audio
    from patchsmith.schema.compact import loads_patch
    from patchsmith.synth.render import render
    from patchsmith.training.dataset.build import BuildConfig, build_manifest, check_or_write_config, run_render_stage
    from patchsmith.training.dataset.render_jobs import RenderOptions, encode_flac
    from patchsmith.training.dataset.stages import manifest_path

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="patchsmith-dataset-bench-"))
    opts = RenderOptions(seconds=args.seconds)
    config = BuildConfig(inputs=inputs, shard_size=args.shard_size, limit=args.limit, render=opts)
    (out / "stage").mkdir(parents=True, exist_ok=True)
    check_or_write_config(out, config)
    t0 = time.perf_counter()
    sources = build_manifest(out, config, log=lambda s: print(s, file=sys.stderr))
    read_s = time.perf_counter() - t0
    manifest = pq.read_table(manifest_path(out), columns=["patch"]).column("patch").to_pylist()
    n = len(manifest)

    # Evenly spaced over the voices being built, so the one-process figures stand for the whole set (the
    # first voices of a crawl come from a few banks and are not typical).
    m = min(args.baseline, n)
    picks = sorted({round(k * (n - 1) / max(1, m - 1)) for k in range(m)})
    sample = [loads_patch(manifest[k]) for k in picks]
    sr, hold, release = opts.sample_rate, opts.hold_s, opts.release_s
    render(sample[0], hold_s=0.1, release_s=0.1, sample_rate=sr)  # kernel cache load, outside the timing
    t0 = time.perf_counter()
    audios = [render(p, note=60, velocity=100, hold_s=hold, release_s=release, sample_rate=sr) for p in sample]
    plain_s = time.perf_counter() - t0
    t_desc = t_flac = 0.0
    for p, a in zip(sample, audios):
        t1 = time.perf_counter()
        describe_audio(a, sr, note=min(127, max(0, 60 + p.transpose)), note_off_s=hold)
        t2 = time.perf_counter()
        encode_flac(a, sr)
        t_flac += time.perf_counter() - t2
        t_desc += t2 - t1
    one_proc_s = plain_s + t_desc + t_flac
    m = len(sample)

    t0 = time.perf_counter()
    report = run_render_stage(out, config, workers=args.workers, progress=sys.stderr.isatty())
    build_s = time.perf_counter() - t0
    rows = report.rows
    silent = sum(pq.read_table(out / "stage" / "renders", columns=["silent"]).column("silent").to_pylist())

    plain_vps = m / plain_s
    one_vps = m / one_proc_s
    build_vps = n / build_s
    src, dd = sources["sources"], sources["dedup"]
    print(f"inputs: {', '.join(inputs)}")
    print(f"files read {src['files_read']} (clean {src['files_clean']}, tolerated {src['files_tolerated']}, "
          f"refused {src['files_refused']}), ignored {src['files_ignored']}")
    print(f"voices {dd['voices']}, unique {dd['unique']}, in this run {n}"
          + (f" (--limit {args.limit})" if args.limit else "") + f"; read + dedup {read_s:.1f} s")
    print(f"render: {args.seconds:g} s at {sr} Hz, note 60, velocity 100; cores on this machine: {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print()
    print(f"{'measure':<52}{'value':>14}")
    table = [
        (f"plain render loop, 1 process ({m} voices)", f"{plain_vps:.1f} v/s"),
        ("  ms per voice: render", f"{1000 * plain_s / m:.1f}"),
        ("  ms per voice: descriptors", f"{1000 * t_desc / m:.1f}"),
        ("  ms per voice: FLAC encode", f"{1000 * t_flac / m:.1f}"),
        ("build work, 1 process (render + descriptors + FLAC)", f"{one_vps:.1f} v/s"),
        (f"build render stage, {args.workers} workers, {n} voices: wall", f"{build_s:.1f} s"),
        (f"build render stage, {args.workers} workers: rate", f"{build_vps:.1f} v/s"),
        ("  renders written / silent", f"{rows} / {silent}"),
        (f"efficiency vs {args.workers} x plain render (issue's target >= 80%)",
         f"{100 * build_vps / (args.workers * plain_vps):.0f} %"),
        (f"scaling efficiency vs {args.workers} x one-process build work", f"{100 * build_vps / (args.workers * one_vps):.0f} %"),
    ]
    for label, value in table:
        print(f"{label:<52}{value:>14}")
    print(f"\nmanifest rendering order is input order; rows/s excludes the read step ({read_s:.1f} s). "
          f"Descriptor share of the one-process work: {100 * t_desc / one_proc_s:.0f} %.")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
