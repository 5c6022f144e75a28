"""``patchsmith describe``: a readable account of a voice (topology, operators, envelopes, LFO)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import EXIT_OK, SOURCE_HELP, load_voice


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``describe`` and its options."""
    d = sub.add_parser("describe", help="describe a voice: algorithm, operators, envelopes in ms and dB",
                       description="Print a readable account of one voice at a given note and velocity: algorithm "
                                   "(or the nearest one), carriers and modulation paths, each operator's frequency, "
                                   "level and envelope (times in ms, levels in dB, from the engine's own tables), "
                                   "feedback, pitch EG and LFO.")
    d.add_argument("patch", metavar="SOURCE", help=SOURCE_HELP)
    d.add_argument("--note", type=int, default=60, help="MIDI note 0..127 the account is computed at (default 60)")
    d.add_argument("--velocity", type=int, default=100, help="1..127 (default 100)")
    d.add_argument("--json", action="store_true", help="print the same account as structured JSON")
    d.set_defaults(func=run)
    return d


def run(args: argparse.Namespace) -> int:
    """Print the account of one voice as text or JSON."""
    from ..synth.describe import describe_patch

    voice = load_voice(args.patch)
    description = describe_patch(voice.patch, args.note, args.velocity)
    if args.json:
        print(json.dumps(description.model_dump(), indent=2))
    else:
        print(description.text())
    return EXIT_OK
