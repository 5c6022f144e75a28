"""Dataset build throughput: all of alltheweb.zip, one 10 s render per unique voice, on 2 worker processes.

Steps, all in one run so that every figure comes from the same machine state:

1. read + dedup the inputs and write the manifest (``--limit N`` keeps the first N unique voices);
2. the single-process speed of the same job: the build's render stage (``render_shard``: manifest read,
   render, descriptors, FLAC, Parquet part) run in one spawned worker process over ``--baseline-shards``
   shards spread evenly over the build (in a scratch copy of the build folder) -> voices/s;
3. for scale, a plain render loop (``synth.render.render``, 10 s at 48 kHz, note 60, velocity 100) over
   ``--baseline`` manifest voices spread evenly over the build, and the build's per-voice parts on the
   same voices (render, descriptors, FLAC), in ms;
4. the render stage of the build on ``--workers`` processes (default 2) over the whole manifest -> wall
   time and voices/s (captions off: they are a stage of their own, measured in their own benchmark).

Efficiency (the issue's figure) = build voices/s on W workers / (W x the single-process build voices/s of
step 2): how close the pool comes to W times one process doing the same job. The ratio to W x the plain
render loop is printed too: it is bounded by the render's share of the per-voice work (descriptors and
FLAC cost more than the render), not by the pool. Prints a table; asserts nothing.

    .venv/bin/python benchmarks/dataset.py [--limit N] [--workers 2] [--baseline-shards 24] [--baseline 200] [--out DIR] [INPUT ...]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALLTHEWEB = REPO.parent / "shared" / "data" / "dx7" / "alltheweb.zip"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*", help=f"inputs (default {ALLTHEWEB})")
    ap.add_argument("--limit", type=int, default=None, help="only the first N unique voices (default all)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes for the build (default 2)")
    ap.add_argument("--baseline-shards", type=int, default=24,
                    help="shards the single-process build speed is timed on (default 24)")
    ap.add_argument("--baseline", type=int, default=200, help="voices timed in the plain render loop (default 200)")
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
    from patchsmith.training.dataset.render_jobs import RenderOptions, encode_flac, render_shard
    from patchsmith.training.dataset.stages import build_json_path, manifest_path, shard_count

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

    # The same job in one process: whole shards spread evenly over the build, rendered into a scratch
    # copy of the build folder (so that the pool below still renders every shard).
    total = shard_count(out)
    b = min(args.baseline_shards, total)
    shards = sorted({round(k * (total - 1) / max(1, b - 1)) for k in range(b)})
    scratch = Path(tempfile.mkdtemp(prefix="patchsmith-dataset-bench-one-"))
    (scratch / "stage").mkdir()
    for path in (build_json_path(out), manifest_path(out)):
        shutil.copy(path, scratch / "stage" / path.name)
    rest = shards[1:] or shards
    # In a fresh spawned process, like each of the pool's workers: this driver holds every voice read
    # (a large heap slows its garbage collector), which would flatter the pool.
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as one:
        one.submit(render_shard, str(scratch), shards[0], opts).result()  # start-up and kernel cache load, untimed
        shutil.rmtree(scratch / "stage" / "renders", ignore_errors=True)
        t0 = time.perf_counter()
        one_voices = sum(f.result().voices for f in [one.submit(render_shard, str(scratch), k, opts) for k in rest])
        one_s = time.perf_counter() - t0
    shutil.rmtree(scratch, ignore_errors=True)

    # Evenly spaced over the voices being built, so the one-process figures stand for the whole set (the
    # first voices of a crawl come from a few banks and are not typical).
    m = min(args.baseline, n)
    picks = sorted({round(k * (n - 1) / max(1, m - 1)) for k in range(m)})
    sample = [loads_patch(manifest[k]) for k in picks]
    sr, hold, release = opts.sample_rate, opts.hold_s, opts.release_s
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
    m = len(sample)

    t0 = time.perf_counter()
    report = run_render_stage(out, config, workers=args.workers, progress=sys.stderr.isatty())
    build_s = time.perf_counter() - t0
    rows = report.rows
    silent = sum(pq.read_table(out / "stage" / "renders", columns=["silent"]).column("silent").to_pylist())

    plain_vps = m / plain_s
    one_vps = one_voices / one_s
    build_vps = n / build_s
    src, dd = sources["sources"], sources["dedup"]
    print(f"inputs: {', '.join(inputs)}")
    print(f"files read {src['files_read']} (clean {src['files_clean']}, tolerated {src['files_tolerated']}, "
          f"refused {src['files_refused']}), ignored {src['files_ignored']}")
    print(f"voices {dd['voices']}, unique {dd['unique']}, in this run {n}"
          + (f" (--limit {args.limit})" if args.limit else "") + f"; read + dedup {read_s:.1f} s")
    print(f"render: {args.seconds:g} s at {sr} Hz, note 60, velocity 100; shard size {args.shard_size}; "
          f"cores on this machine: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")
    print()
    print(f"{'measure':<60}{'value':>14}")
    table = [
        (f"build render stage, 1 process, {len(rest)} shards ({one_voices} voices)", f"{one_vps:.1f} v/s"),
        (f"build render stage, {args.workers} workers, {n} voices: wall", f"{build_s:.1f} s"),
        (f"build render stage, {args.workers} workers: rate", f"{build_vps:.1f} v/s"),
        ("  renders written / silent", f"{rows} / {silent}"),
        (f"efficiency vs {args.workers} x the 1-process build (target >= 80%)",
         f"{100 * build_vps / (args.workers * one_vps):.0f} %"),
        (f"for scale: plain render loop, 1 process ({m} voices)", f"{plain_vps:.1f} v/s"),
        ("  ms per voice: render", f"{1000 * plain_s / m:.1f}"),
        ("  ms per voice: descriptors", f"{1000 * t_desc / m:.1f}"),
        ("  ms per voice: FLAC encode", f"{1000 * t_flac / m:.1f}"),
        (f"  build rate / ({args.workers} x plain render loop)", f"{100 * build_vps / (args.workers * plain_vps):.0f} %"),
    ]
    for label, value in table:
        print(f"{label:<60}{value:>14}")
    print(f"\nrows/s excludes the read step ({read_s:.1f} s). The ratio to the plain render loop is bounded by "
          f"the render's share of the per-voice work ({100 * plain_s / (plain_s + t_desc + t_flac):.0f} % on the "
          "voices above), not by the pool.")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
