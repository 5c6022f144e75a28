"""``patchsmith edit``: small, explicit changes to a voice (``--brighter 2``, ``--set /eg_rate/3/0=60``) and the diff.

Each semantic flag is one ``adjust`` step of ``synth.edits`` (amount 1..3, its opposite flag the
negative amount), ``--set`` one ``set`` step; the steps are applied in command-line order, all or
nothing, and the new patch is written as compact JSON or a single-voice sysex.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from .common import EXIT_OK, SOURCE_HELP, CliError, check_output_folder, load_voice, write_atomic

# (more flag, less flag, quality, what "more" does): the first flag adds the quality (positive amount),
# the second removes it (negative amount).
QUALITY_FLAGS = (
    ("brighter", "darker", "brightness", "more upper partials (modulation index)"),
    ("softer-attack", "harder-attack", "attack", "a longer, softer onset"),
    ("longer-decay", "shorter-decay", "decay", "a slower fall of the carriers while the key is held"),
    ("longer-release", "shorter-release", "release", "a longer tail after the key is released"),
    ("more-sustain", "less-sustain", "sustain", "a higher held level"),
    ("more-metallic", "less-metallic", "metallic", "modulator ratios further from whole numbers (inharmonic)"),
    ("more-vibrato", "less-vibrato", "vibrato", "deeper LFO pitch modulation"),
    ("more-detune", "less-detune", "detune", "a wider detune spread (chorus-like beating)"),
    ("louder", "softer", "level", "higher carrier levels"),
)
MAX_STEPS = 3
RENDER_NOTE, RENDER_VELOCITY, RENDER_HOLD_S, RENDER_RELEASE_S, RENDER_SR = 60, 100, 3.0, 1.0, 48000
# The descriptors --render compares, in print order, with their unit and decimals.
COMPARED = {"rms_dbfs": ("dBFS", 1), "peak_dbfs": ("dBFS", 1), "attack_ms": ("ms", 1), "decay20_ms": ("ms", 0),
            "decay60_ms": ("ms", 0), "sustain_db": ("dB", 1), "release_ms": ("ms", 0), "centroid_hz": ("Hz", 0),
            "brightness": ("", 3), "inharmonicity": ("", 3), "pitch_stability_cents": ("cents", 1),
            "beating": ("", 3)}


class _Step(argparse.Action):
    """Append (flag, quality or "set", sign, raw value) to ``args.steps``, keeping command-line order."""

    def __init__(self, option_strings: list[str], dest: str, quality: str = "set", sign: int = 1,
                 **kwargs: Any) -> None:
        self.quality, self.sign = quality, sign
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        steps = list(getattr(namespace, self.dest, None) or [])
        steps.append((self.option_strings[0], self.quality, self.sign, values))
        setattr(namespace, self.dest, steps)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``edit`` and its options."""
    e = sub.add_parser("edit", help="make small semantic or explicit changes to a voice and print the diff",
                       description="Apply edits to one voice in command-line order, all or nothing: each semantic "
                                   "flag takes a number of steps N (1..3; +1 a small audible step, +3 a large one), "
                                   "--set POINTER=VALUE sets one parameter (VALUE is JSON: 60, true, \"sine\"; a bare "
                                   "word is read as a string). Writes the new patch (compact .json, or a single-voice "
                                   ".syx) and prints every changed parameter as 'POINTER: OLD -> NEW'.")
    e.add_argument("patch", metavar="SOURCE", help=SOURCE_HELP)
    e.add_argument("-o", "--output", required=True, metavar="NEW", help="the new patch: a .json or a .syx file")
    steps = e.add_argument_group("semantic edits (N = 1..3 steps)")
    for more, less, quality, meaning in QUALITY_FLAGS:
        steps.add_argument(f"--{more}", action=_Step, dest="steps", quality=quality, sign=1, metavar="N",
                           help=f"{quality} +N: {meaning}")
        steps.add_argument(f"--{less}", action=_Step, dest="steps", quality=quality, sign=-1, metavar="N",
                           help=f"{quality} -N")
    steps.add_argument("--set", action=_Step, dest="steps", metavar="POINTER=VALUE",
                       help="set one parameter, e.g. --set /eg_rate/3/0=60 or --set /lfo/wave=sine (repeatable)")
    e.add_argument("--render", action="store_true", help=f"render before and after (note {RENDER_NOTE}, "
                                                         f"{RENDER_HOLD_S:g} s + {RENDER_RELEASE_S:g} s) and print "
                                                         "how the descriptors changed")
    e.add_argument("--json", action="store_true", help="print the result (changes, notes, patch) as JSON")
    e.set_defaults(func=run, steps=None)
    return e


def _label(flag: str, value: str) -> str:
    return f"{flag} {value}"


def parse_steps(steps: list[tuple[str, str, int, str]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The command-line steps as ``apply_edits`` edits, with each one's flag for messages; ``CliError`` lists every bad one."""
    edits: list[dict[str, Any]] = []
    labels: list[str] = []
    problems: list[str] = []
    for flag, quality, sign, value in steps:
        label = _label(flag, value)
        if quality == "set":
            pointer, eq, raw = value.partition("=")
            if not eq or not pointer:
                problems.append(f"{label}: allowed POINTER=VALUE, e.g. --set /eg_rate/3/0=60")
                continue
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw  # a bare word (sine, square) is the string the user meant
            edits.append({"op": "set", "path": pointer, "value": parsed})
        else:
            if not re.fullmatch(r"[1-9]", value.strip()) or not 1 <= int(value) <= MAX_STEPS:
                problems.append(f"{flag}: found {value!r}, allowed a number of steps 1..{MAX_STEPS} "
                                "(the opposite flag goes the other way)")
                continue
            edits.append({"op": "adjust", "quality": quality, "amount": sign * int(value)})
        labels.append(label)
    if problems:
        raise CliError(problems)
    return edits, labels


def _edit_problems(err: Any, labels: list[str]) -> list[str]:
    """``EditError`` problems (``/edits/2/value: ...``) in the user's own words (``--set /x=1: value: ...``)."""
    lines = []
    for p in err.problems:
        m = re.fullmatch(r"/edits/(\d+)(?:/(.*))?", p.pointer)
        where = labels[int(m.group(1))] + (f": {m.group(2)}" if m.group(2) else "") if m else p.pointer
        lines.append(f"{where}: found {p.found}, allowed {p.allowed} ({p.message})")
    return lines


def _notes(notes: list[str], labels: list[str]) -> list[str]:
    """The library's notes, with ``edit 0 (brightness +2)`` replaced by the flag that asked for it."""
    def flag(m: re.Match[str]) -> str:
        i = int(m.group(1))
        return labels[i] if i < len(labels) else m.group(0)

    return [re.sub(r"^edit (\d+) \([^)]*\)", flag, n) for n in notes]


def _value(v: Any) -> str:
    return json.dumps(v)


def _descriptors(patch: Any) -> Any:
    from ..evals.descriptors import describe_audio
    from ..synth.render import render

    audio = render(patch, note=RENDER_NOTE, velocity=RENDER_VELOCITY, hold_s=RENDER_HOLD_S,
                   release_s=RENDER_RELEASE_S, sample_rate=RENDER_SR)
    return describe_audio(audio, RENDER_SR, note=RENDER_NOTE, note_off_s=RENDER_HOLD_S)


def _descriptor_lines(before: Any, after: Any) -> list[str]:
    lines = [f"descriptors at note {RENDER_NOTE}, velocity {RENDER_VELOCITY} ({RENDER_HOLD_S:g} s held, "
             f"{RENDER_RELEASE_S:g} s release), before -> after:"]
    for name, (unit, digits) in COMPARED.items():
        a, b = getattr(before, name), getattr(after, name)
        fmt = lambda v: "none" if v is None else f"{v:.{digits}f}"  # noqa: E731 - None: never reached / undefined
        delta = f" ({b - a:+.{digits}f})" if a is not None and b is not None and fmt(a) != fmt(b) else ""
        lines.append(f"  {name}: {fmt(a)} -> {fmt(b)}{' ' + unit if unit else ''}{delta}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Apply the edits, write the new patch and print what changed."""
    out = Path(args.output)
    problems = []
    if out.suffix.lower() not in (".json", ".syx"):
        problems.append(f"-o {out}: allowed a .json (compact patch JSON) or .syx (single-voice sysex) file")
    else:
        try:
            check_output_folder(out)
        except CliError as err:
            problems += err.lines
    if not args.steps:
        problems.append("no edit given: use a semantic flag (--brighter 2, --shorter-decay 1, ...) or "
                        "--set POINTER=VALUE")
    try:
        edits, labels = parse_steps(args.steps or [])
    except CliError as err:
        problems += err.lines
    if problems:
        raise CliError(problems)

    from ..synth.edits import EditError, apply_edits

    voice = load_voice(args.patch)
    try:
        result = apply_edits(voice.patch, edits)
    except EditError as err:
        raise CliError(_edit_problems(err, labels)) from None
    if out.suffix.lower() == ".syx":
        from ..synth.sysex import write_vced

        data: bytes | str = write_vced(result.patch)  # refuses a non-DX7 topology before anything is written
    else:
        from ..schema.compact import dumps_compact

        data = dumps_compact(result.patch) + "\n"
    rendered = (_descriptors(voice.patch), _descriptors(result.patch)) if args.render else None
    write_atomic(out, data)
    notes = _notes(result.notes, labels)
    if args.json:
        doc: dict[str, Any] = {"output": str(out), "changes": [c.model_dump() for c in result.changes],
                               "notes": notes, "patch": result.patch.to_dict()}
        if rendered:
            doc["descriptors"] = {"before": rendered[0].model_dump(), "after": rendered[1].model_dump()}
        print(json.dumps(doc, indent=2))
        return EXIT_OK
    for c in result.changes:
        print(f"{c.path}: {_value(c.old)} -> {_value(c.new)}")
    for n in notes:
        print(f"note: {n}")
    if rendered:
        print("\n".join(_descriptor_lines(*rendered)))
    count = len(result.changes)
    what = "single-voice sysex" if out.suffix.lower() == ".syx" else "patch JSON"
    print(f"wrote {out} ({what}, {count} parameter{'s' if count != 1 else ''} changed)")
    return EXIT_OK
