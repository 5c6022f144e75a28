"""``patchsmith validate``: check a patch file and print one line per problem (exit 2 when any)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import (EXIT_BAD_INPUT, EXIT_OK, CliError, algorithm_label, at, load_source, read_json_file,
                     split_address)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``validate`` and its options."""
    v = sub.add_parser("validate", help="check a patch file; one line per problem",
                       description="Check a patch .json (or example, or list of patches), .syx or .csv. Prints one "
                                   "line per problem (JSON pointer, found, allowed) and exits 2 when any.")
    v.add_argument("file", metavar="FILE")
    v.add_argument("--lenient", action="store_true", help="accept integer-valued floats and numeric strings "
                                                          "(model output), reporting each")
    v.add_argument("--json", action="store_true", help="print the full report as JSON")
    v.set_defaults(func=run)
    return v


def _validate_json_item(data: Any, lenient: bool, pointer: str) -> dict[str, Any]:
    """One patch or example: its validation as a JSON-ready dict, each problem with its one-line form."""
    from ..examples import example_field_problems, is_example
    from ..schema.validate import validate

    problems: list[dict[str, Any]] = []
    prefix = pointer
    if is_example(data):
        field_lines, _ = example_field_problems(data)
        problems += [{"pointer": pointer + line.split(":", 1)[0], "line": pointer + line} for line in field_lines]
        data, prefix = data["patch"], f"{pointer}/patch"
    report = validate(data, lenient=lenient)
    problems += [{"pointer": prefix + p.pointer, "found": p.found, "allowed": p.allowed, "message": p.message,
                  "line": at(prefix, p.line())} for p in report.problems]
    return {"pointer": pointer, "valid": not problems, "problems": problems,
            "coercions": [{"pointer": prefix + c.pointer, "found": c.found, "used": c.used, "reason": c.reason}
                          for c in report.coercions],
            "algorithm": report.algorithm, "nearest_algorithm": report.nearest_algorithm,
            "nearest_distance": report.nearest_distance,
            "summary": report.summary().splitlines() if report.valid else []}


def run(args: argparse.Namespace) -> int:
    """Check a file and print its problems one per line (exit 2 when any)."""
    path, number = split_address(args.file)
    if path.suffix.lower() != ".json":
        return _validate_voices(args)
    data = read_json_file(path)
    items = list(enumerate(data)) if isinstance(data, list) else [(None, data)]
    if isinstance(data, list) and not data:
        raise CliError(f"{path}: an empty list; allowed a patch, an example or a list of patches")
    if number is not None:
        if not 1 <= number <= len(items):
            raise CliError(f"{args.file}: voice number {number} is out of range; {path} holds {len(items)} voice(s)")
        items = [items[number - 1]]
    results = [_validate_json_item(item, args.lenient, "" if i is None else f"/{i}") for i, item in items]
    valid = all(r["valid"] for r in results)
    if args.json:
        print(json.dumps({"file": str(path), "valid": valid, "items": results}, indent=2, default=str))
    for r in results:
        for p in r["problems"]:
            print(f"error: {path}: {p['line']}", file=sys.stderr)
        if not args.json and r["valid"]:
            print(f"{path}{r['pointer']}: {r['summary'][0]}")
            for c in r["coercions"]:
                print(f"  lenient: {c['pointer']}: read {c['found']} as {json.dumps(c['used'])} ({c['reason']})")
    return EXIT_OK if valid else EXIT_BAD_INPUT


def _validate_voices(args: argparse.Namespace) -> int:
    """Validate a .syx or source-research CSV: every voice must read (the reader's repairs are noted)."""
    source = load_source(args.file, need_patches=False)
    problems = [line for v in source.voices for line in v.problems]
    voices = [{"number": v.number, "label": v.label, "valid": not v.problems, "algorithm": algorithm_label(v.patch)}
              for v in source.voices]
    if args.json:
        print(json.dumps({"file": str(source.path), "valid": not problems, "problems": problems, "voices": voices,
                          "tolerated": source.notes + [n for v in source.voices for n in v.notes]}, indent=2))
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if not problems and not args.json:
        print(f"{source.path}: valid ({len(voices)} voice{'s' if len(voices) != 1 else ''})")
    return EXIT_OK if not problems else EXIT_BAD_INPUT
