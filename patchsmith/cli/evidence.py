"""``patchsmith evidence``: what each operator contributes, as one clip (FULL, then each operator muted or isolated).

Writes the clip as a WAV and its segment map (labels, start/end seconds, roles, each segment's
descriptor change against FULL) as JSON beside it (``clip.wav`` -> ``clip.json``), both or neither.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from .common import (EXIT_OK, SOURCE_HELP, CliError, add_wav_arguments, check_fits, check_output_folder, encode_wav,
                     load_voice, note, write_together)

MODES = ("off", "on")
MIN_SEGMENT_S, MAX_SEGMENT_S = 0.1, 30.0  # as synth.evidence.render_evidence allows


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``evidence`` and its options."""
    e = sub.add_parser("evidence", help="render what each operator contributes (muted or isolated) to one WAV",
                       description="Render FULL, then one segment per operator with that operator muted (--mode off: "
                                   "its output, modulation and feedback removed) or isolated (--mode on: it and "
                                   "everything downstream of it), into one WAV; write the segment map with each "
                                   "segment's descriptor change against FULL as JSON beside it (clip.wav -> "
                                   "clip.json), and print it.")
    e.add_argument("patch", metavar="SOURCE", help=SOURCE_HELP)
    e.add_argument("--mode", required=True, metavar="off|on", help="off: mute each operator; on: isolate it")
    e.add_argument("-o", "--output", required=True, metavar="CLIP.wav",
                   help="the WAV to write; the segment map goes beside it as CLIP.json")
    e.add_argument("--operators", metavar="K,K,...", help="operators 1..6 separated by commas (default: every "
                                                          "operator that is a carrier or modulates something)")
    e.add_argument("--segment", type=float, default=4.0, help="seconds per segment, 0.1..30 (default 4)")
    e.add_argument("--shuffle", action="store_true", help="shuffle the operator segments (FULL stays first)")
    e.add_argument("--seed", type=int, default=0, help="seed for --shuffle (default 0)")
    e.add_argument("--note", type=int, default=60, help="MIDI note 0..127 (default 60)")
    e.add_argument("--velocity", type=int, default=100, help="1..127 (default 100)")
    e.add_argument("--hold", type=float, default=3.0, help="seconds the key is held in each segment (default 3; "
                                                           "at most the segment length)")
    e.add_argument("--sample-rate", type=int, default=48000, help="16000..96000 (default 48000)")
    add_wav_arguments(e)
    e.set_defaults(func=run)
    return e


def parse_operators(text: str) -> list[int]:
    """``"1,2,5"`` -> ``[1, 2, 5]``; ``CliError`` naming every part that is not a new operator number 1..6."""
    ops: list[int] = []
    problems: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if not re.fullmatch(r"[1-6]", part):
            problems.append(f"--operators: found {part!r}, allowed operator numbers 1..6 separated by commas (1,2,5)")
        elif int(part) in ops:
            problems.append(f"--operators: operator {part} is listed twice")
        else:
            ops.append(int(part))
    if problems:
        raise CliError(problems)
    return ops


def _check(args: argparse.Namespace) -> tuple[Path, list[int] | None]:
    """Every problem of the options at once, before the source is read or anything rendered."""
    problems: list[str] = []
    if args.mode not in MODES:
        problems.append(f"--mode: found {args.mode!r}, allowed off (mute each operator) or on (isolate it)")
    operators = None
    if args.operators is not None:
        try:
            operators = parse_operators(args.operators)
        except CliError as err:
            problems += err.lines
    if not MIN_SEGMENT_S <= args.segment <= MAX_SEGMENT_S:
        problems.append(f"--segment: found {args.segment:g}, allowed seconds {MIN_SEGMENT_S:g}..{MAX_SEGMENT_S:g}")
    out = Path(args.output)
    if out.suffix.lower() != ".wav":
        problems.append(f"-o {out}: the clip is a .wav file (its segment map is written beside it as .json)")
    else:
        try:
            check_output_folder(out)
            if out.with_suffix(".json").is_dir():
                raise CliError(f"-o {out}: its segment map {out.with_suffix('.json')} would replace a folder")
        except CliError as err:
            problems += err.lines
    if problems:
        raise CliError(problems)
    return out, operators


def run(args: argparse.Namespace) -> int:
    """Render the evidence clip, write it and its segment map, and print the map."""
    from ..evals.evidence import render_evidence_report
    from ..synth.render import RenderError

    out, operators = _check(args)
    voice = load_voice(args.patch)
    if args.seed != 0 and not args.shuffle:
        note("--seed has no effect without --shuffle")
    try:
        report, audio = render_evidence_report(voice.patch, mode=args.mode, operators=operators,
                                               segment_s=args.segment, shuffle=args.shuffle, seed=args.seed,
                                               note=args.note, velocity=args.velocity, hold_s=args.hold,
                                               sample_rate=args.sample_rate)
    except RenderError:
        raise
    except ValueError as err:  # the library's own checks of the evidence settings
        raise CliError(str(err).splitlines()) from None
    segment_map = out.with_suffix(".json")
    check_fits(out, audio, args)
    wav: dict[str, Any] = {}

    def write_map(tmp: Path) -> None:
        data = {"wav": out.name, "wav_gain_db": wav["gain_db"], **report.model_dump()}
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    # The WAV is written first (it fills in the gain the map records), then both are renamed together.
    write_together({out: lambda tmp: wav.update(encode_wav(tmp, audio, args)), segment_map: write_map})
    print(report.text())
    how = f"peak-normalised, gain {wav['gain_db']:+.2f} dB" if wav["gain"] == "peak" else "raw engine units"
    print(f"wrote {out} ({report.duration_s:g} s, {args.format}, {how}) and its segment map {segment_map}")
    return EXIT_OK
