"""``patchsmith eval-refine --system SPEC --out DIR``: does a system edit patches the way instructions ask?

The instruction set is a JSON file (``--instructions``, format in ``evals.refine_eval``), or is built
from patches (``--patches CSV`` with ``--split``/``--limit``, else the repository's examples, else the
packaged library) times the default instructions (brighter, darker, softer attack, ...). Every edit
is rendered and described; DIR receives ``refine.json`` (per item and aggregates with bootstrap CIs),
``refine.csv`` and ``report.md``, all together.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_OK, CliError, write_texts
from .evaluate import (add_render_arguments, add_system_arguments, build_system, check_numbers, check_out,
                       load_split_arg, render_spec)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``eval-refine``."""
    p = sub.add_parser("eval-refine", help="edit-direction accuracy and minimal-change cost of a system",
                       description="Ask a system to edit patches ('brighter', 'shorter decay', ...) and measure "
                                   "whether the sound moved the asked way (descriptor direction accuracy) and how "
                                   "little it changed (parameters changed, normalised parameter distance, log-mel "
                                   "distance), with bootstrap CIs overall and per quality.")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if absent)")
    src = p.add_argument_group("instruction set (default: the examples x the default instructions)")
    src.add_argument("--instructions", metavar="FILE", help="an instruction-set JSON file")
    src.add_argument("--patches", metavar="CSV", help="build the set from the patches of a source-research CSV")
    src.add_argument("--split", metavar="NAME|FILE", help="with --patches: only the ids of a split")
    src.add_argument("--limit", type=int, help="use only the first N patches (or items of --instructions)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_system_arguments(p)
    add_render_arguments(p, hold_s=3.0, release_s=1.0)
    p.set_defaults(func=run)
    return p


def _patches_from_csv(args: argparse.Namespace) -> dict[str, Any]:
    from ..schema.source_research import SourceResearchError, read_source_csv

    try:
        rows = read_source_csv(args.patches)
    except SourceResearchError as err:
        raise CliError(str(err)) from None
    except OSError as err:
        raise CliError(f"--patches {args.patches}: {err.strerror or err}") from None
    patches = {r.id: r.patch for r in rows if r.patch is not None}
    if args.split:
        patches = {i: patches[i] for i in load_split_arg(args.split).ids if i in patches}
    if not patches:
        raise CliError(f"--patches {args.patches}: no usable patch" + (f" of split {args.split}" if args.split else ""))
    return patches


def _default_patches() -> dict[str, Any]:
    from ..examples import ExampleError, load_examples

    try:
        return {ex.key: ex.patch for ex in load_examples()}
    except ExampleError:
        from ..agent.library import load_library

        return {e.id: e.patch for e in load_library()}


def instruction_set(args: argparse.Namespace) -> Any:
    """The instruction set the options name."""
    from ..evals.refine_eval import InstructionSetError, default_instruction_set, load_instruction_set

    if args.instructions and (args.patches or args.split):
        raise CliError("give either --instructions or --patches (with --split), not both")
    if args.split and not args.patches:
        raise CliError("--split needs --patches")
    if args.instructions:
        try:
            items = load_instruction_set(args.instructions)
        except InstructionSetError as err:
            raise CliError(str(err).splitlines()) from None
        if args.limit:
            items.items = items.items[: args.limit]
        return items
    patches = _patches_from_csv(args) if args.patches else _default_patches()
    if args.limit:
        patches = dict(list(patches.items())[: args.limit])
    return default_instruction_set(patches, name=Path(args.patches).name if args.patches else "examples")


def refine_csv(result: dict[str, Any]) -> str:
    """One row per edit."""
    buf = io.StringIO()
    cols = ["id", "instruction", "quality", "expected", "observed", "correct", "before", "after", "changed_params",
            "param_distance", "audio_distance_db", "valid", "tool_called", "error"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for it in result["items"]:
        w.writerow(["" if it.get(c) is None else it.get(c) for c in cols])
    return buf.getvalue()


def run(args: argparse.Namespace) -> int:
    """Run the instruction set through the system and write the results."""
    from ..evals.refine_eval import refine_markdown, run_refine_eval
    from ..evals.systems import SystemUnavailable

    check_numbers(args)
    render = render_spec(args)
    out = check_out(args.out)
    items = instruction_set(args)
    system = build_system(args.system, args)
    if not hasattr(system, "refine"):
        system.close()
        raise CliError(f"--system {args.system}: makes audio only and cannot edit a patch; allowed offline, openai:, "
                       "zeroshot: or checkpoint:")
    try:
        result = run_refine_eval(items, system.refine, render, quiet=args.quiet or not sys.stderr.isatty(),
                                 n_boot=args.bootstrap, seed=args.seed)
    except SystemUnavailable as err:
        raise CliError(str(err)) from None
    finally:
        system.close()
    result["system"] = system.describe()
    write_texts(out, {"refine.json": json.dumps(result, indent=1) + "\n", "refine.csv": refine_csv(result),
                      "report.md": refine_markdown(result, system.name)})
    overall = result["aggregates"]["overall"]
    acc = overall["direction_accuracy"]
    print(f"direction accuracy: {acc['estimate']:.3f} [{acc['low']:.3f}, {acc['high']:.3f}] over {overall['n']} edits")
    for key, label in (("changed_params", "parameters changed"), ("param_distance", "parameter distance"),
                       ("audio_distance_db", "log-mel distance (dB)")):
        ci = overall[key]
        if ci["estimate"] is not None:
            print(f"{label}: {ci['estimate']:.4g} [{ci['low']:.4g}, {ci['high']:.4g}]")
    print(f"wrote {out}/refine.json, refine.csv, report.md")
    return EXIT_OK
