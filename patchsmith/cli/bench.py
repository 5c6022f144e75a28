"""``patchsmith bench``: the tool-calling benchmark over a fixed split, one comparable JSON result.

``patchsmith bench --captions CSV --patches CSV --base-url URL --model NAME --out DIR`` gives the model
the patchsmith tools through the OpenAI-compatible API (``--prompt trained`` sends a checkpoint served with
``patchsmith serve-model`` the prompt it was trained on; ``--zeroshot`` asks it the source research's
zero-shot way instead; ``--system SPEC`` takes any system ``eval`` takes, ``checkpoint:PATH`` included)
and scores every caption of the split (default ``bench-v1``). DIR receives what ``eval`` writes plus ``bench.json`` (a
``evals.bench.BenchResult``, schema ``patchsmith-bench/1``) and ``leaderboard.md`` (the header and this
run's row). ``--print-schema`` prints the result's JSON Schema and exits.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import EXIT_OK, CliError, note
from .evaluate import (add_render_arguments, add_run_arguments, add_system_arguments, build_system, check_numbers,
                       check_out, execute, load_rows, load_split_arg, metric_backends, render_spec)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``bench``."""
    p = sub.add_parser("bench", help="the tool-calling benchmark: a model and the tools over a fixed split",
                       description="Give a model the patchsmith tools through the OpenAI-compatible API and score, per "
                                   "caption of a fixed split: tool called, valid patch (after how many corrections), "
                                   "format/keys/distance/ToolRL scores against the ground truth, and the audio "
                                   "metrics. Writes DIR/bench.json (schema patchsmith-bench/1) and DIR/leaderboard.md.")
    p.add_argument("--captions", metavar="CSV", help="the source-research caption CSV holding the split's ids")
    p.add_argument("--patches", metavar="CSV", help="its patch CSV (the ground truth)")
    p.add_argument("--split", default="bench-v1", metavar="NAME|FILE",
                   help="bench-v1 (default: 50 held-out test presets), source-test (100), dev-v1 (50 train presets), "
                        "or a split JSON file")
    p.add_argument("--out", metavar="DIR", help="output folder (created; a rerun resumes)")
    m = p.add_argument_group("model (shorthand for --system openai:MODEL@URL)")
    m.add_argument("--base-url", help="an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    m.add_argument("--model", help="the model name at the endpoint (a checkpoint served with `patchsmith serve-model`: "
                                   "add --prompt trained, as it prints)")
    m.add_argument("--zeroshot", action="store_true", help="ask the model the source research's zero-shot way (no "
                                                           "tools, a fenced JSON answer) instead of through the tools")
    p.add_argument("--print-schema", action="store_true", help="print the JSON Schema of bench.json and exit")
    add_system_arguments(p, default=None)
    add_render_arguments(p)
    add_run_arguments(p)
    p.set_defaults(func=run)
    return p


def system_spec(args: argparse.Namespace) -> str:
    """The system spec the options name (``--system``, or ``--model``/``--base-url``)."""
    if args.system and (args.model or args.base_url or args.zeroshot):
        raise CliError("give either --system or --model/--base-url (with --zeroshot), not both")
    if args.system:
        return args.system
    if not args.model:
        raise CliError("name the system: --model NAME (with --base-url URL) or --system SPEC (e.g. --system offline)")
    kind = "zeroshot" if args.zeroshot else "openai"
    return f"{kind}:{args.model}" + (f"@{args.base_url}" if args.base_url else "")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and write bench.json and leaderboard.md."""
    from ..evals.bench import SCHEMA_VERSION, build_result, leaderboard_header, schema_text
    from ..evals.runner import file_sha256

    if args.print_schema:
        print(schema_text(), end="")
        return EXIT_OK
    missing = [flag for flag, value in (("--captions", args.captions), ("--patches", args.patches),
                                        ("--out", args.out)) if not value]
    if missing:
        raise CliError(f"bench needs {', '.join(missing)}")
    check_numbers(args)
    render = render_spec(args)
    spec = system_spec(args)
    out = check_out(args.out)
    split = load_split_arg(args.split)
    rows = load_rows(args, split=split)
    found = {r.id for r in rows}
    if args.limit is None and len(found) < split.count:
        note(f"{split.count - len(found)} of the {split.count} ids of split {split.split} are not in {args.captions}; "
             "the result records them as missing")
    without_truth = [r.id for r in rows if r.patch is None]
    if without_truth:
        note(f"{len(without_truth)} caption(s) have no ground-truth patch in {args.patches}: no patch scores for them")
    backends = metric_backends(args)
    system = build_system(spec, args)
    data_files = [(Path(args.captions).name, file_sha256(args.captions)),
                  (Path(args.patches).name, file_sha256(args.patches))]
    holder: dict[str, Any] = {}

    def extra(run_: Any) -> dict[str, Any]:
        result = build_result(run_, split, spec, data_files, limit=args.limit)
        holder["result"] = result
        return {"bench.json": result.model_dump_json(indent=1) + "\n",
                "leaderboard.md": leaderboard_header() + "\n" + result.leaderboard_row + "\n"}

    execute(args, rows, system, backends, out, render, title=f"patchsmith bench ({split.split}): {system.name}",
            extra_files=extra)
    result = holder["result"]
    a = result.aggregates
    for label, i in (("tool call rate", a.tool_call_rate), ("validity rate", a.validity_rate),
                     ("valid at the first try", a.first_try_valid_rate), ("distance", a.distance),
                     ("ToolRL exact", a.toolrl_exact)):
        if i is not None and i.value is not None:
            print(f"{label}: {i.value:.3f} [{i.low:.3f}, {i.high:.3f}] (n={i.n})" if i.low is not None
                  else f"{label}: {i.value:.3f} (n={i.n})")
    print(leaderboard_header())
    print(result.leaderboard_row)
    print(f"wrote {out}/bench.json ({SCHEMA_VERSION}), leaderboard.md, report.md")
    return EXIT_OK


__all__ = ["add_parser", "run", "system_spec"]
