"""``patchsmith dataset``: build a captioned DX7 dataset from banks (``build``), re-merge it (``merge``), show it (``info``).

``build INPUT... -o OUT`` reads folders, zips (nested too), .syx banks and source-research CSVs,
dedups voices by their parameters, renders every unique voice on all cores (or Ray), captions it,
optionally asks a teacher for a chain of thought, and merges everything into sharded Parquet with a
dataset card. Killed at any point, the same command continues where it stopped. ``merge OUT``
rebuilds OUT/data from the stage parts; ``merge A B --into C`` combines finished builds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .common import CliError

NOTE_RANGE = (0, 127)
VELOCITY_RANGE = (1, 127)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``dataset`` and its subcommands."""
    p = sub.add_parser("dataset", help="build a captioned dataset from DX7 banks (build, merge, info)",
                       description="Build, re-merge and inspect a DX7 dataset (sharded Parquet with a dataset card).")
    dsub = p.add_subparsers(dest="dataset_command", metavar="SUBCOMMAND", required=True)

    b = dsub.add_parser("build", help="banks -> dedup -> renders -> captions -> CoT -> sharded Parquet (resumable)",
                        description="Build (or resume) a dataset. Inputs are folders, zip files (nested zips too), "
                                    ".syx banks and source-research CSVs (captions from NAME_captions.csv beside them).")
    b.add_argument("inputs", nargs="+", metavar="INPUT", help="folder, .zip, .syx or source-research .csv")
    b.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (new, or a build to resume)")
    b.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    b.add_argument("--ray", metavar="auto|local|ADDRESS", default=None,
                   help="run the render jobs on Ray: auto (a running cluster, else a local one), local, or an "
                        "address (OUT must be on a filesystem every node sees); needs the 'scale' extra")
    b.add_argument("--shard-size", type=int, default=256, help="voices per part file (default 256)")
    b.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N unique voices")
    b.add_argument("--dedup", choices=("core", "full"), default="core",
                   help="voice identity: core (the 12 core keys, as the source research; default) or full (every "
                        "parameter, so voices differing only in LFO, pitch EG or scaling stay apart)")
    b.add_argument("--notes", default="60", metavar="N,N,...", help="MIDI notes to render (default 60)")
    b.add_argument("--velocities", default="100", metavar="V,V,...", help="velocities to render (default 100)")
    b.add_argument("--seconds", type=float, default=10.0, help="clip length, key held 64%% of it (default 10)")
    b.add_argument("--sample-rate", type=int, default=48000, help="16000..96000 (default 48000)")
    b.add_argument("--transpose", choices=("auto", "none"), default="none",
                   help="auto: play a voice whose fundamental is outside 55-1760 Hz whole octaves up/down (default none)")
    b.add_argument("--evidence", default="", metavar="off,on",
                   help="also render operator evidence clips (muted and/or isolated operators) with segment maps")
    b.add_argument("--evidence-seconds", type=float, default=4.0, help="seconds per evidence segment (default 4)")
    b.add_argument("--audio", choices=("flac", "files"), default="flac",
                   help="flac: FLAC bytes inside the Parquet (default); files: FLAC files under OUT/audio")
    b.add_argument("--captions", default="offline", metavar="offline|none",
                   help="caption stage: offline (descriptors + nearest library patch, the default) or none")
    b.add_argument("--caption-model", default=None, metavar="NAME", help="caption with this audio-language model")
    b.add_argument("--caption-base-url", default=None, metavar="URL", help="its OpenAI-compatible endpoint")
    b.add_argument("--cot-model", default=None, metavar="NAME", help="run the CoT stage with this teacher model")
    b.add_argument("--cot-base-url", default=None, metavar="URL", help="the teacher's OpenAI-compatible endpoint")
    b.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR",
                   help="environment variable holding the endpoints' API key (default OPENAI_API_KEY)")
    b.add_argument("--require-cot", action="store_true", help="merge keeps only rows with a kept chain of thought")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    b.set_defaults(func=run_build)

    m = dsub.add_parser("merge", help="re-merge a build's stage parts into OUT/data, or combine several builds",
                        description="With one build: rebuild OUT/data and the card from the stage parts (filter, "
                                    "dedup). With --into DIR: combine the data of one or more finished builds into "
                                    "DIR/data, leaving out render ids already taken from an earlier build.")
    m.add_argument("outputs", nargs="+", metavar="OUT", help="build folder(s)")
    m.add_argument("--into", default=None, metavar="DIR", help="combine the builds' data into this folder")
    m.add_argument("--require-cot", action="store_true", help="keep only rows with a kept chain of thought")
    m.add_argument("--no-progress", action="store_true", help="no progress bars")
    m.set_defaults(func=run_merge)

    i = dsub.add_parser("info", help="print a build's counts (stage/report.json)")
    i.add_argument("output", metavar="OUT", help="a build folder")
    i.add_argument("--json", action="store_true", help="print the whole report as JSON")
    i.set_defaults(func=run_info)
    return p


def run(args: argparse.Namespace) -> int:
    """Dispatch to the chosen subcommand."""
    return args.func(args)


def _int_list(text: str, flag: str, low: int, high: int) -> list[int]:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise CliError(f"{flag}: found {text!r}, allowed integers {low}..{high} separated by commas")
    out: list[int] = []
    for t in items:
        try:
            v = int(t)
        except ValueError:
            raise CliError(f"{flag}: found {t!r}, allowed integers {low}..{high} separated by commas") from None
        if not low <= v <= high:
            raise CliError(f"{flag}: found {v}, allowed {low}..{high}")
        if v in out:
            raise CliError(f"{flag}: {v} is listed twice")
        out.append(v)
    return out


def _render_options(args: argparse.Namespace) -> Any:
    from pydantic import ValidationError

    from ..training.dataset.render_jobs import RenderOptions

    evidence = [t.strip().lower() for t in args.evidence.split(",") if t.strip()] if args.evidence else []
    bad = [e for e in evidence if e not in ("off", "on")]
    if bad or len(set(evidence)) != len(evidence):
        raise CliError(f"--evidence: found {args.evidence!r}, allowed off, on or off,on")
    problems = []
    if not 0 < args.seconds <= 60:
        problems.append(f"--seconds: found {args.seconds:g}, allowed more than 0 and at most 60")
    if not 16000 <= args.sample_rate <= 96000:
        problems.append(f"--sample-rate: found {args.sample_rate}, allowed 16000..96000")
    if not 0.1 <= args.evidence_seconds <= 30:
        problems.append(f"--evidence-seconds: found {args.evidence_seconds:g}, allowed 0.1..30")
    if problems:
        raise CliError(problems)
    try:
        return RenderOptions(seconds=args.seconds, sample_rate=args.sample_rate,
                             notes=_int_list(args.notes, "--notes", *NOTE_RANGE),
                             velocities=_int_list(args.velocities, "--velocities", *VELOCITY_RANGE),
                             transpose=args.transpose, evidence=evidence, evidence_seconds=args.evidence_seconds,
                             audio=args.audio)
    except ValidationError as err:
        raise CliError([f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]) from None


def _log(text: str) -> None:
    print(text, file=sys.stderr)


def run_build(args: argparse.Namespace) -> int:
    """``dataset build``."""
    from ..training.dataset.build import BuildError, build
    from ..training.dataset.executors import ExecutorError
    from ..training.dataset.stages import StageError

    problems = []
    if args.workers is not None and args.workers < 1:
        problems.append(f"--workers: found {args.workers}, allowed 1 or more")
    if args.shard_size < 1:
        problems.append(f"--shard-size: found {args.shard_size}, allowed 1 or more")
    if args.limit is not None and args.limit < 1:
        problems.append(f"--limit: found {args.limit}, allowed 1 or more")
    captions = (args.captions or "").strip().lower()
    if captions not in ("offline", "none"):
        problems.append(f"--captions: found {args.captions!r}, allowed offline or none "
                        "(an audio-language model: --caption-model NAME --caption-base-url URL)")
    if args.caption_model and captions == "none":
        problems.append("--caption-model: given with --captions none; drop one of them")
    if args.caption_base_url and not args.caption_model:
        problems.append("--caption-base-url: needs --caption-model NAME")
    if args.cot_base_url and not args.cot_model:
        problems.append("--cot-base-url: needs --cot-model NAME")
    if args.cot_model and captions == "none" and not args.caption_model:
        problems.append("--cot-model: the CoT stage works on captioned voices; drop --captions none")
    if args.require_cot and not args.cot_model:
        problems.append("--require-cot: needs --cot-model (otherwise no row has a chain of thought)")
    missing = [p for p in args.inputs if not Path(p).exists()]
    if missing and len(missing) == len(args.inputs):
        problems += [f"{p}: no such file or folder" for p in missing]
    if problems:
        raise CliError(problems)
    for p in missing:  # some inputs exist: the missing ones are reported as refused and the build goes on
        _log(f"note: {p}: no such file or folder (listed as refused in the report)")
    options = _render_options(args)
    caption_choice = args.caption_model if args.caption_model else captions
    try:
        report = build(args.inputs, Path(args.output), render=options, shard_size=args.shard_size, limit=args.limit,
                       identity=args.dedup, workers=args.workers, ray=args.ray, captions=caption_choice,
                       caption_base_url=args.caption_base_url, cot_model=args.cot_model,
                       cot_base_url=args.cot_base_url, api_key=os.environ.get(args.api_key_env),
                       require_cot=args.require_cot, progress=not args.no_progress, log=_log)
    except (BuildError, StageError, ExecutorError) as err:
        raise CliError(getattr(err, "lines", None) or str(err).splitlines()) from None
    print(_summary(report, Path(args.output)))
    return 0


def _summary(report: dict[str, Any], out: Path) -> str:
    src = report.get("sources", {})
    files, dd, merged = src.get("sources", {}), src.get("dedup", {}), report.get("merge", {})
    lines = [
        f"files: {files.get('files_read', 0)} read ({files.get('files_clean', 0)} clean, "
        f"{files.get('files_tolerated', 0)} tolerated, {files.get('files_refused', 0)} refused), "
        f"{files.get('files_ignored', 0)} ignored",
        f"voices: {dd.get('voices', 0)} read, {dd.get('unique', 0)} unique, {src.get('manifest_rows', 0)} in this build",
        f"renders: {merged.get('renders', 0)} ({merged.get('silent', 0)} silent, {merged.get('render_errors', 0)} failed)",
        f"rows: {merged.get('rows', 0)} in {merged.get('files', 0)} file(s) under {out / 'data'}",
    ]
    if merged.get("caption_sources"):
        lines.append("captions: " + ", ".join(f"{k} {v}" for k, v in merged["caption_sources"].items()))
    if merged.get("cot_shards"):
        lines.append(f"cot: {merged.get('cot_kept', 0)} kept, {merged.get('cot_rejected', 0)} rejected")
    for name, st in report.get("stages", {}).items():
        if st.get("errors"):
            lines.append(f"{name}: {st['errors']} error(s), e.g. {st['error_examples'][0] if st['error_examples'] else ''}")
    return "\n".join(lines)


def run_merge(args: argparse.Namespace) -> int:
    """``dataset merge``: rebuild OUT/data (and the card) from the stage parts, or combine builds ``--into`` DIR."""
    from ..training.dataset.build import read_report
    from ..training.dataset.card import write_card
    from ..training.dataset.merge import combine, merge
    from ..training.dataset.stages import StageError, build_json_path, report_path, write_json_atomic

    outs = [Path(o) for o in args.outputs]
    if args.into is None and len(outs) > 1:
        raise CliError("several builds given: name the folder to combine them into with --into DIR")
    if args.into is not None:
        into = Path(args.into)
        if into.exists() and not into.is_dir():
            raise CliError(f"--into {into}: is a file; allowed a folder")
        try:
            result = combine(outs, into, require_cot=args.require_cot, progress=not args.no_progress)
        except StageError as err:
            raise CliError(str(err).splitlines()) from None
        write_json_atomic(into / "combine.json", result)
        write_card(into, result)
        print(f"rows: {result['rows']} of {result['rows_in']} ({result['duplicates']} duplicates, "
              f"{result['without_cot']} without CoT left out) in {result['files']} file(s) under {into / 'data'}")
        return 0
    out = outs[0]
    if not build_json_path(out).is_file():
        raise CliError(f"{out}: not a dataset build folder (no stage/build.json)")
    try:
        merged = merge(out, require_cot=args.require_cot, progress=not args.no_progress)
        try:
            report = read_report(out)
        except StageError:
            report = {}
    except StageError as err:
        raise CliError(str(err)) from None
    report["merge"] = merged
    write_json_atomic(report_path(out), report)
    write_card(out, report)
    print(_summary(report, out))
    return 0


def run_info(args: argparse.Namespace) -> int:
    """``dataset info``: the counts of a finished build."""
    from ..training.dataset.build import read_report
    from ..training.dataset.stages import StageError

    try:
        report = read_report(Path(args.output))
    except StageError as err:
        raise CliError(str(err)) from None
    print(json.dumps(report, indent=2) if args.json else _summary(report, Path(args.output)))
    return 0
