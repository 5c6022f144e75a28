"""``patchsmith info``: list the voices of a bank (or any voice source) with number, name and algorithm."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import EXIT_BAD_INPUT, EXIT_OK, algorithm_label, load_source


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``info`` and its options."""
    i = sub.add_parser("info", help="list the voices of a bank",
                       description="List a bank's voices (number, name, DX7 algorithm) and what the tolerant reader "
                                   "repaired or refused.")
    i.add_argument("file", metavar="BANK")
    i.add_argument("--json", action="store_true", help="print the listing as JSON")
    i.set_defaults(func=run)
    return i


def run(args: argparse.Namespace) -> int:
    """List the voices of a bank (or any voice source) with number, name and algorithm."""
    source = load_source(args.file, need_patches=False)
    rows = [{"number": v.number, "name": (v.patch.name if v.patch is not None else None), "algorithm":
             algorithm_label(v.patch), "problems": v.problems, "tolerated": v.notes} for v in source.voices]
    if args.json:
        print(json.dumps({"file": str(source.path), "voices": rows, "tolerated": source.notes}, indent=2))
        return EXIT_OK
    count = len(rows)
    print(f"{source.path}: {count} voice{'s' if count != 1 else ''}")
    print(f"{'#':>3}  {'name':<10}  algorithm")
    for r in rows:
        name = r["name"] if r["name"] is not None else "?"
        print(f"{r['number']:>3}  {name:<10}  {r['algorithm'] or 'unreadable'}")
    tolerated = source.notes + [n for r in rows for n in r["tolerated"]]
    if tolerated:
        print("tolerated:")
        for line in tolerated:
            print(f"  {line}")
    problems = [line for r in rows for line in r["problems"]]
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_OK if not problems else EXIT_BAD_INPUT
