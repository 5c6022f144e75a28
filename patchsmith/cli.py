"""The ``patchsmith`` command line: a thin layer over the library (render, validate, convert, info, demo).

Conventions shared by every subcommand:

* a voice source is a patch JSON file, an example file (``{"name", "captions", "render", "patch"}``),
  a JSON list of patches, a DX7 ``.syx`` file (single voice or bank, read tolerantly) or a
  source-research CSV; ``SOURCE:N`` picks voice N, counted from 1 in file order (a DX7 bank's
  voices are 1..32, as on the instrument);
* bad input exits with status 2 and one ``error:`` line per problem on stderr, never a traceback;
* every output file is written to a temporary name beside it and renamed into place, so a failure
  leaves no half-written file; a new output folder appears only once it is complete.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .synth.wav import created_mode

EXIT_OK = 0
EXIT_BAD_INPUT = 2
FORMATS = {"pcm16": "PCM_16", "pcm24": "PCM_24", "float": "FLOAT"}
SOURCE_SUFFIXES = (".json", ".syx", ".csv")
# The columns of the source research's DX7_*.csv files, in their order.
SOURCE_CSV_COLUMNS = ("", "index", "patch_number", "name", "patch_data", "file_path", "syx_file",
                      "has_fixed_freqs", "id", "wav_path", "inaudible")


class CliError(Exception):
    """Bad input: one line per problem, printed as ``error: LINE`` with exit status 2."""

    def __init__(self, lines: str | Iterable[str]):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


# --- output helpers ---------------------------------------------------------------------------------


def note(text: str) -> None:
    """Print a non-fatal remark on stderr."""
    print(f"note: {text}", file=sys.stderr)


def progress(items: Sequence[Any], desc: str) -> Iterable[Any]:
    """A progress bar on stderr for several items (hidden when stderr is not a terminal)."""
    if len(items) < 2:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, file=sys.stderr, disable=None, leave=False, unit="voice")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file through a temporary name beside it, so it is never seen half-written."""
    if not path.parent.is_dir():
        raise CliError(f"{path}: the folder {path.parent} does not exist")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.chmod(tmp, created_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_folder(folder: Path, fill: Callable[[Path], None]) -> None:
    """Let ``fill`` write files into a staging folder, then move them into ``folder`` file by file.

    A folder that did not exist appears only once complete; in an existing folder each file is
    replaced atomically, and nothing is moved unless ``fill`` succeeded for every file.
    """
    if folder.exists() and not folder.is_dir():
        raise CliError(f"{folder}: exists and is not a folder")
    fresh = not folder.exists()
    if fresh and not folder.parent.is_dir():
        raise CliError(f"{folder}: the folder {folder.parent} does not exist")
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent if fresh else folder))
    try:
        fill(staging)
        for item in staging.iterdir():
            os.chmod(item, created_mode())
        if fresh:
            os.chmod(staging, created_mode(0o777))
            os.replace(staging, folder)
            return
        for item in sorted(staging.iterdir()):
            os.replace(item, folder / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_texts(folder: Path, files: dict[str, str]) -> None:
    """Write text files into ``folder`` (see ``write_folder``)."""
    def fill(staging: Path) -> None:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")

    write_folder(folder, fill)


def slug(text: str, fallback: str = "voice") -> str:
    """A file-name-safe version of a voice name."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", text.strip()).strip("-").lower()
    return s or fallback


def fmt_db(value: float) -> str:
    """A level in dB for tables (``-inf`` for digital silence)."""
    return "-inf" if value == float("-inf") else f"{value:.2f}"


# --- voice sources ----------------------------------------------------------------------------------


@dataclass
class Voice:
    """One voice read from a source, or the problems that kept it from being read."""

    label: str  # "bank.syx:3 'E.PIANO 1'"
    number: int  # 1-based position in the source
    patch: Any = None  # a Patch when the voice was read
    problems: list[str] = field(default_factory=list)
    example: Any = None  # the Example when the source is an example file
    notes: list[str] = field(default_factory=list)  # what a tolerant reader repaired


@dataclass
class Source:
    """The voices of one file, and what its reader tolerated."""

    path: Path
    kind: str  # "json", "syx", "csv"
    voices: list[Voice]
    notes: list[str] = field(default_factory=list)


def split_address(spec: str) -> tuple[Path, int | None]:
    """``BANK.syx:N`` -> (path, N); a spec that names an existing file is never split."""
    path = Path(spec)
    if path.exists():
        return path, None
    match = re.fullmatch(r"(.+):([^:/\\]*)", spec)
    if match and Path(match.group(1)).exists():
        index = match.group(2)
        if not index.isdigit():
            raise CliError(f"{spec}: voice number {index!r} is not a whole number; voices are numbered from 1 "
                           "(a DX7 bank's are 1..32)")
        return Path(match.group(1)), int(index)
    raise CliError(f"{match.group(1) if match else spec}: no such file")


def _json_problem(path: Path, err: json.JSONDecodeError) -> str:
    return f"{path}: invalid JSON: {err.msg} at line {err.lineno} column {err.colno}"


def read_json_file(path: Path) -> Any:
    """Parsed JSON from a file, or ``CliError`` saying why it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{path}: not a UTF-8 text file (is it a .syx with the wrong extension?)") from None
    except OSError as err:
        raise CliError(f"{path}: cannot read the file: {err.strerror or err}") from None
    try:
        # validate's own object hook marks repeated keys, so validation reports them (json keeps the last).
        from .schema.validate import _pairs_to_dict

        return json.loads(text, object_pairs_hook=_pairs_to_dict)
    except json.JSONDecodeError as err:
        raise CliError(_json_problem(path, err)) from None
    except (ValueError, RecursionError) as err:
        raise CliError(f"{path}: invalid JSON: {err}") from None


def at(pointer: str, line: str) -> str:
    """A problem line (``/ol/0: found ...`` or ``(root): ...``) re-rooted under ``pointer`` (``/3``)."""
    if line.startswith("(root)"):
        return (pointer or "(root)") + line[len("(root)"):]
    if line.startswith("/"):
        return pointer + line
    return f"{pointer}: {line}" if pointer else line


def _json_voice(path: Path, data: Any, number: int, pointer: str) -> Voice:
    from .examples import ExampleError, is_example, parse_example
    from .schema.validate import validate

    where = f"{path}{pointer}"
    if is_example(data):
        try:
            ex = parse_example(data, key=path.stem, path=path)
        except ExampleError as err:
            return Voice(where, number, problems=[f"{path}: {at(pointer, line)}" for line in err.problems])
        return Voice(f"{where} ({ex.name})", number, patch=ex.patch, example=ex)
    report = validate(data)
    if not report.valid:
        return Voice(where, number, problems=[f"{path}: {at(pointer, p.line())}" for p in report.problems])
    name = (report.patch.name or "").strip()
    return Voice(where + (f" ({name})" if name else ""), number, patch=report.patch)


def _load_json(path: Path) -> Source:
    data = read_json_file(path)
    if isinstance(data, list):
        if not data:
            raise CliError(f"{path}: an empty list; allowed a patch, an example or a list of patches")
        voices = [_json_voice(path, item, i + 1, f"/{i}") for i, item in enumerate(data)]
    else:
        voices = [_json_voice(path, data, 1, "")]
    return Source(path, "json", voices)


def _load_syx(path: Path) -> Source:
    from .synth.sysex_reader import read_bank_file

    read = read_bank_file(path)
    if not read.ok:
        raise CliError(f"{path}: {read.refused}")
    voices = [Voice(f"{path}:{i + 1} {name!r}", i + 1, patch=patch) for i, (patch, name) in
              enumerate(zip(read.voices, read.names))]
    # Attach each "voice N (...)" note to its voice so that picking one voice shows only its own notes.
    general = []
    for line in read.tolerated:
        m = re.match(r"voice (\d+) \(", line)
        if m and len(read.voices) <= 32 and 1 <= int(m.group(1)) <= len(voices):
            voices[int(m.group(1)) - 1].notes.append(line)
        else:
            general.append(line)
    return Source(path, "syx", voices, notes=general)


def _load_csv(path: Path) -> Source:
    from .schema.source_research import SourceResearchError, read_source_csv

    try:
        rows = read_source_csv(path)
    except SourceResearchError as err:
        raise CliError(str(err)) from None
    except OSError as err:
        raise CliError(f"{path}: cannot read the file: {err.strerror or err}") from None
    if not rows:
        raise CliError(f"{path}: no rows")
    voices = []
    for i, row in enumerate(rows):
        label = f"{path}:{i + 1} {row.name!r}"
        if row.patch is None:
            voices.append(Voice(label, i + 1, problems=[f"{label} (id {row.id}): {row.error}"]))
        else:
            voices.append(Voice(label, i + 1, patch=row.patch, notes=list(row.notes)))
    return Source(path, "csv", voices)


def load_source(spec: str, *, need_patches: bool = True) -> Source:
    """The voices of ``spec`` (``FILE`` or ``FILE:N``); ``CliError`` lists every problem of the selection."""
    path, number = split_address(spec)
    if path.is_dir():
        raise CliError(f"{path}: is a folder; allowed a {', '.join(SOURCE_SUFFIXES)} file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        source = _load_json(path)
    elif suffix == ".syx":
        source = _load_syx(path)
    elif suffix == ".csv":
        source = _load_csv(path)
    else:
        raise CliError(f"{path}: unknown file type {suffix or '(no extension)'!r}; allowed "
                       + ", ".join(SOURCE_SUFFIXES))
    if number is not None:
        count = len(source.voices)
        if not 1 <= number <= count:
            allowed = "1" if count == 1 else f"1..{count}"
            raise CliError(f"{spec}: voice number {number} is out of range; {path} holds {count} "
                           f"voice{'s' if count != 1 else ''}, numbered {allowed}")
        source.voices = [source.voices[number - 1]]
    if need_patches:
        problems = [line for v in source.voices for line in v.problems]
        if problems:
            raise CliError(problems)
    return source


def print_notes(source: Source) -> None:
    """Tell the user on stderr what the reader repaired in the voices about to be used."""
    for line in source.notes + [n for v in source.voices for n in v.notes]:
        note(f"{source.path}: tolerated {line}")


# --- render -----------------------------------------------------------------------------------------


def _parse_notes(text: str) -> list[int]:
    notes = []
    for part in text.split(","):
        part = part.strip()
        if not re.fullmatch(r"\d{1,3}", part) or not 0 <= int(part) <= 127:
            raise CliError(f"--notes: found {part!r}, allowed MIDI note numbers 0..127 separated by commas (60,64,67)")
        notes.append(int(part))
    return notes


def _render_one(patch: Any, args: argparse.Namespace, example: Any) -> tuple[Any, dict[str, Any]]:
    """Render one voice as the arguments ask; returns (audio, what was played)."""
    from .synth.render import check_request, render, render_events

    defaults = example.render_settings() if example is not None else {"note": 60, "velocity": 100, "hold_s": 3.0,
                                                                        "release_s": 1.0}
    velocity = args.velocity if args.velocity is not None else defaults["velocity"]
    hold = args.hold if args.hold is not None else defaults["hold_s"]
    release = args.release if args.release is not None else defaults["release_s"]
    sr = args.sample_rate
    if args.midi:
        from .synth.midi import render_midi_events

        tail = args.release if args.release is not None else 2.0
        audio, stolen = render_midi_events(patch, args.midi, sample_rate=sr, voices=16, tail_s=tail)
        return audio, {"midi": str(args.midi), "tail_s": tail, "sample_rate": sr, "stolen_notes": stolen}
    if args.notes:
        notes = _parse_notes(args.notes)
        for n in notes:
            check_request(n, velocity, hold, release, sr)
        events = [(0.0, True, n, velocity) for n in notes] + [(float(hold), False, n, 0) for n in notes]
        audio, _ = render_events(patch, events, float(hold) + float(release), sample_rate=sr, voices=16)
        return audio, {"notes": notes, "velocity": velocity, "hold_s": hold, "release_s": release, "sample_rate": sr}
    key = args.note if args.note is not None else defaults["note"]
    audio = render(patch, note=key, velocity=velocity, hold_s=hold, release_s=release, sample_rate=sr)
    return audio, {"note": key, "velocity": velocity, "hold_s": hold, "release_s": release, "sample_rate": sr}


def cmd_render(args: argparse.Namespace) -> int:
    """Render a voice (or every voice of a source into a folder) and print its descriptors."""
    from .evals.descriptors import basic_descriptors

    source = load_source(args.patch)
    several = len(source.voices) > 1
    out = Path(args.output) if args.output else None
    if several and (out is None or out.suffix.lower() == ".wav"):
        count = len(source.voices)
        raise CliError(f"{args.patch} holds {count} voices: address one as {args.patch}:N (N = 1..{count}), "
                       "or give -o a folder to render them all")
    if out is not None and not several and out.suffix.lower() != ".wav":
        raise CliError(f"-o {out}: a single voice renders to a .wav file")
    if out is not None and not (out if several and out.is_dir() else out.parent).is_dir():
        raise CliError(f"-o {out}: the folder {out.parent} does not exist")
    print_notes(source)
    rendered, results = [], []
    for voice in progress(source.voices, "render"):
        audio, played = _render_one(voice.patch, args, voice.example)
        name = f"{voice.number:02d}-{slug(voice.patch.name or '')}.wav" if several else None
        rendered.append((name, audio))
        results.append({"voice": voice.label, **played, **basic_descriptors(audio, args.sample_rate)})
    if out is not None and not several:
        _check_fits(out, rendered[0][1], args)
        results[0]["wav"] = _encode_wav(out, rendered[0][1], args)
    elif out is not None:
        for name, audio in rendered:  # every file is checked before any is written
            _check_fits(out / name, audio, args)
        encoded: list[dict[str, Any]] = []

        def fill(staging: Path) -> None:
            encoded.extend(_encode_wav(staging / name, audio, args) for name, audio in rendered)

        write_folder(out, fill)
        for row, info, (name, _) in zip(results, encoded, rendered):
            row["wav"] = info | {"path": str(out / name)}
    _print_render(results, args.json)
    return EXIT_OK


def _check_fits(path: Path, audio: Any, args: argparse.Namespace) -> None:
    """Refuse raw PCM output that would clip, in the CLI's own words."""
    import numpy as np

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if args.gain == "raw" and args.format != "float" and peak > 1.0:
        raise CliError(f"{path}: the audio peaks at {20 * np.log10(peak):+.2f} dBFS in engine units and would clip "
                       f"as {args.format}; use --gain peak to normalise it, or --format float to keep it losslessly")


def _encode_wav(path: Path, audio: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Write one WAV under the CLI's gain settings; returns what was written."""
    from .synth.wav import write_wav

    info = write_wav(path, audio, args.sample_rate, gain=args.gain, peak_dbfs=args.peak_dbfs,
                     subtype=FORMATS[args.format])
    return {"path": str(info.path), "format": args.format, "gain": info.gain, "gain_db": info.gain_db,
            "written_peak_dbfs": None if info.written_peak_dbfs == float("-inf") else round(info.written_peak_dbfs, 2)}


def _print_render(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        clean = [{k: (None if v == float("-inf") else v) for k, v in row.items()} for row in results]
        print(json.dumps(clean if len(clean) > 1 else clean[0], indent=2, default=str))
        return
    for row in results:
        played = (f"MIDI {row['midi']}" if "midi" in row else
                  f"notes {','.join(map(str, row['notes']))}" if "notes" in row else f"note {row['note']}")
        extra = f", {row['stolen_notes']} note(s) stolen" if row.get("stolen_notes") else ""
        print(f"{row['voice']}: {played}, {row['duration_s']:g} s at {row['sample_rate']} Hz{extra}")
        print(f"  peak {fmt_db(row['peak_dbfs'])} dBFS, RMS {fmt_db(row['rms_dbfs'])} dBFS (engine units: "
              "1.0 = one full-scale carrier)" + (", above full scale" if row["over_full_scale"] else "")
              + (", SILENT" if row["silent"] else ""))
        wav = row.get("wav")
        if wav:
            how = f"peak-normalised, gain {wav['gain_db']:+.2f} dB" if wav["gain"] == "peak" else "raw engine units"
            print(f"  wrote {wav['path']} ({wav['format']}, {how})")
        if row["silent"]:
            note(f"{row['voice']} is silent with these settings")


# --- validate ---------------------------------------------------------------------------------------


def _validate_json_item(data: Any, lenient: bool, pointer: str) -> dict[str, Any]:
    """One patch or example: its validation as a JSON-ready dict, each problem with its one-line form."""
    from .examples import example_field_problems, is_example
    from .schema.validate import validate

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


def cmd_validate(args: argparse.Namespace) -> int:
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
    voices = [{"number": v.number, "label": v.label, "valid": not v.problems, "algorithm": _algorithm(v.patch)}
              for v in source.voices]
    if args.json:
        print(json.dumps({"file": str(source.path), "valid": not problems, "problems": problems, "voices": voices,
                          "tolerated": source.notes + [n for v in source.voices for n in v.notes]}, indent=2))
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if not problems and not args.json:
        print(f"{source.path}: valid ({len(voices)} voice{'s' if len(voices) != 1 else ''})")
    return EXIT_OK if not problems else EXIT_BAD_INPUT


def _algorithm(patch: Any) -> str | None:
    if patch is None:
        return None
    from .schema.algorithms import algorithm_of, nearest_algorithm

    number = algorithm_of(patch.modmatrix, patch.outmatrix)
    if number is not None:
        return str(number)
    nearest, distance = nearest_algorithm(patch.modmatrix, patch.outmatrix)
    return f"none (nearest {nearest}, {distance} off)"


# --- convert ----------------------------------------------------------------------------------------


def _source_csv_text(source: Source) -> str:
    """Rows in the source research's CSV layout (``patch_data`` a Python-literal dict, OP6-first)."""
    import csv
    import io

    from .schema.source_research import SourceResearchError, export_source_dict

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SOURCE_CSV_COLUMNS)
    problems = []
    for i, voice in enumerate(progress(source.voices, "convert")):
        try:
            data = export_source_dict(voice.patch)
        except SourceResearchError as err:
            problems.append(f"{voice.label}: {err}")
            continue
        number = voice.number - 1 if source.kind == "syx" else i  # the source research counts bank voices from 0
        has_fixed = bool(data.get("has_fixed_freq"))
        writer.writerow([i, i, number, voice.patch.name or "", _python_literal(data), str(source.path),
                         source.path.name, has_fixed, i, "", ""])
    if problems:
        raise CliError(problems)
    return buffer.getvalue()


def _python_literal(data: dict[str, Any]) -> str:
    """A dict in the source research's printed style: one key per line, matrix rows on their own lines."""
    lines = ["{"]
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], list):
            rows = ",\n".join(f"\t\t{row!r}" for row in value)
            lines.append(f"    {key!r}: [\n{rows}\n    ],")
        else:
            lines.append(f"    {key!r}: {value!r},")
    return "\n".join(lines + ["}"])


def _dropped_by_source_format(patch: Any) -> list[str]:
    from .schema.patch import Patch

    defaults = Patch.neutral_voice_defaults()
    d = patch.model_dump()
    return [k for k, v in defaults.items() if d[k] != v]


def cmd_convert(args: argparse.Namespace) -> int:
    """Convert voices between .syx, patch JSON and the source research's CSV."""
    source = load_source(args.input)
    print_notes(source)
    out = Path(args.output)
    patches = [v.patch for v in source.voices]
    suffix = out.suffix.lower()
    if suffix == ".syx":
        data = _sysex_bytes(source, bank=args.bank)
        write_atomic(out, data)
        what = "32-voice bank" if len(data) == 4104 else "single voice"
        print(f"wrote {out} ({what}, {len(patches)} voice{'s' if len(patches) != 1 else ''})")
    elif suffix == ".json":
        from .schema.compact import dumps_compact

        texts = [dumps_compact(p) for p in progress(patches, "convert")]
        text = texts[0] if len(texts) == 1 else "[\n" + ",\n".join(texts) + "\n]"
        write_atomic(out, text + "\n")
        print(f"wrote {out} ({len(patches)} voice{'s' if len(patches) != 1 else ''}"
              f"{', a JSON list' if len(texts) > 1 else ''})")
    elif suffix == ".csv":
        dropped = sorted({k for p in patches for k in _dropped_by_source_format(p)})
        write_atomic(out, _source_csv_text(source))
        if dropped:
            note("the source-research format holds only the 128-number core; dropped " + ", ".join(dropped))
        print(f"wrote {out} ({len(patches)} row{'s' if len(patches) != 1 else ''} in the source-research format)")
    elif suffix == "":
        from .schema.compact import dumps_compact

        files = {f"{v.number:02d}-{slug(v.patch.name or '')}.json": dumps_compact(v.patch) + "\n"
                 for v in progress(source.voices, "convert")}
        write_texts(out, files)
        print(f"wrote {len(files)} patch file{'s' if len(files) != 1 else ''} into {out}/")
    else:
        raise CliError(f"{out}: unknown output type {suffix!r}; allowed .syx, .json, .csv or a folder (no extension)")
    return EXIT_OK


def _sysex_bytes(source: Source, bank: bool) -> bytes:
    """A single-voice message for one voice (unless ``bank``), else a 32-voice bank."""
    from .synth.sysex import NotRepresentableError, SysexError, patch_to_vced, write_vced, write_vmem

    problems = []
    for voice in source.voices:
        try:
            patch_to_vced(voice.patch)
        except (NotRepresentableError, SysexError) as err:
            problems.append(f"{voice.label}: {err}")
    if len(source.voices) > 32:
        problems.append(f"{source.path}: {len(source.voices)} voices, but a DX7 bank holds 32; "
                        "pick one with SOURCE:N or split the source")
    if problems:
        raise CliError(problems)
    patches = [v.patch for v in source.voices]
    if len(patches) == 1 and not bank:
        return write_vced(patches[0])
    return write_vmem(patches)


# --- info -------------------------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    """List the voices of a bank (or any voice source) with number, name and algorithm."""
    source = load_source(args.file, need_patches=False)
    rows = [{"number": v.number, "name": (v.patch.name if v.patch is not None else None), "algorithm":
             _algorithm(v.patch), "problems": v.problems, "tolerated": v.notes} for v in source.voices]
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


# --- demo -------------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """Render every example patch to a peak-normalised WAV and print a table of levels."""
    from .evals.descriptors import basic_descriptors
    from .examples import load_examples
    from .synth.render import check_request, render
    from .synth.sysex import NotRepresentableError, write_vmem
    from .synth.wav import write_wav

    examples = load_examples(args.examples)
    check_request(60, 100, 1.0, 1.0, args.sample_rate)  # before any folder is made
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for ex in progress(examples, "demo"):
        audio = render(ex.patch, sample_rate=args.sample_rate, **ex.render_settings())
        path = out / f"{ex.key}.wav"
        write_wav(path, audio, args.sample_rate, gain="peak", peak_dbfs=-1.0, subtype="PCM_16")
        rows.append((ex, path, basic_descriptors(audio, args.sample_rate)))
    try:
        bank = write_vmem([ex.patch for ex in examples[:32]])
        write_atomic(out / "examples.syx", bank)
    except NotRepresentableError as err:
        note(f"no examples.syx: {err}")
    width = max(len(ex.name) for ex, _, _ in rows)
    fwidth = max(len(str(p)) for _, p, _ in rows)
    print(f"{'name':<{width}}  {'file':<{fwidth}}  {'note':>4}  {'peak dBFS':>9}  {'RMS dBFS':>8}  {'duration':>8}")
    for ex, path, d in rows:
        print(f"{ex.name:<{width}}  {str(path):<{fwidth}}  {ex.note:>4}  {fmt_db(d['peak_dbfs']):>9}  "
              f"{fmt_db(d['rms_dbfs']):>8}  {d['duration_s']:>7.2f}s")
    print(f"levels in engine units (1.0 = one full-scale carrier); each WAV is peak-normalised to -1 dBFS. "
          f"The examples as a DX7 bank: {out / 'examples.syx'}")
    return EXIT_OK


# --- entry point ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="patchsmith", description="Words to interpretable DX7 patches: render, check and convert DX7 voices.",
        epilog="A voice source is a patch .json, an example .json, a .syx (single voice or bank) or a source-research "
               ".csv; SOURCE:N picks voice N, counted from 1 (a bank's voices are 1..32). Bad input exits with "
               "status 2.")
    parser.add_argument("--version", action="version", version=f"patchsmith {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    r = sub.add_parser("render", help="render a voice to WAV and print its levels",
                       description="Render one voice (or, with -o FOLDER, every voice of a source) and print peak/RMS "
                                   "in engine units (1.0 = one full-scale carrier).")
    r.add_argument("patch", metavar="SOURCE", help="patch .json, example .json, .syx or .csv; BANK.syx:N picks voice "
                                                    "N (1..32)")
    r.add_argument("-o", "--output", metavar="OUT", help="a .wav file (one voice) or a folder (several voices); "
                                                         "without it nothing is written")
    what = r.add_mutually_exclusive_group()
    what.add_argument("--note", type=int, help="MIDI note 0..127 (default 60, or the example's note)")
    what.add_argument("--notes", metavar="N,N,...", help="a chord: MIDI notes separated by commas")
    what.add_argument("--midi", metavar="FILE", help="play a MIDI file (16 voices, oldest-note stealing)")
    r.add_argument("--velocity", type=int, help="1..127 (default 100)")
    r.add_argument("--hold", type=float, help="seconds the key is held (default 3)")
    r.add_argument("--release", type=float, help="seconds rendered after the key is released (default 1; "
                                                 "with --midi, the tail after the last event, default 2)")
    r.add_argument("--sample-rate", type=int, default=48000, help="16000..96000 (default 48000)")
    r.add_argument("--gain", choices=("peak", "raw"), default="peak",
                   help="peak: normalise the WAV's peak to --peak-dbfs (default); raw: write engine units "
                        "unchanged (an error rather than clipping if a PCM file cannot hold them)")
    r.add_argument("--peak-dbfs", type=float, default=-1.0, help="target peak for --gain peak (default -1)")
    r.add_argument("--format", choices=tuple(FORMATS), default="pcm16", help="WAV sample format (default pcm16)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=cmd_render)

    v = sub.add_parser("validate", help="check a patch file; one line per problem",
                       description="Check a patch .json (or example, or list of patches), .syx or .csv. Prints one "
                                   "line per problem (JSON pointer, found, allowed) and exits 2 when any.")
    v.add_argument("file", metavar="FILE")
    v.add_argument("--lenient", action="store_true", help="accept integer-valued floats and numeric strings "
                                                          "(model output), reporting each")
    v.add_argument("--json", action="store_true", help="print the full report as JSON")
    v.set_defaults(func=cmd_validate)

    c = sub.add_parser("convert", help="convert between .syx, patch .json and source-research .csv",
                       description="Convert voices. The output type follows OUT: .syx (one voice: a single-voice "
                                   "dump; several: a 32-voice bank), .json (one patch, or a JSON list), .csv (rows in "
                                   "the source research's format) or a folder (one patch .json per voice). Topologies "
                                   "that are not one of the 32 DX7 algorithms cannot become sysex.")
    c.add_argument("input", metavar="IN")
    c.add_argument("output", metavar="OUT")
    c.add_argument("--bank", action="store_true", help="write a 32-voice bank even for a single voice")
    c.set_defaults(func=cmd_convert)

    i = sub.add_parser("info", help="list the voices of a bank",
                       description="List a bank's voices (number, name, DX7 algorithm) and what the tolerant reader "
                                   "repaired or refused.")
    i.add_argument("file", metavar="BANK")
    i.add_argument("--json", action="store_true", help="print the listing as JSON")
    i.set_defaults(func=cmd_info)

    d = sub.add_parser("demo", help="render every example patch to WAV and print their levels",
                       description="Render the captioned example patches in examples/ to peak-normalised WAV files, "
                                   "write them as a DX7 bank, and print a table of levels.")
    d.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    d.add_argument("--examples", metavar="DIR", help="examples folder (default: the repository's examples/)")
    d.add_argument("--sample-rate", type=int, default=48000, help="16000..96000 (default 48000)")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input)."""
    from .examples import ExampleError
    from .schema.source_research import SourceResearchError
    from .schema.validate import PatchValidationError
    from .synth.midi import MidiError
    from .synth.render import RenderError
    from .synth.sysex import NotRepresentableError, SysexError
    from .synth.wav import WavError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else EXIT_BAD_INPUT
    try:
        return args.func(args)
    except CliError as err:
        lines = err.lines
    except ExampleError as err:
        lines = err.problems
    except PatchValidationError as err:
        lines = [p.line() for p in err.problems]
    except (RenderError, MidiError, WavError, NotRepresentableError, SysexError, SourceResearchError) as err:
        lines = str(err).splitlines()
    except BrokenPipeError:  # the reader of our output went away (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as err:
        lines = [f"{str(err.filename) + ': ' if err.filename else ''}{err.strerror or err}"]
    except KeyboardInterrupt:
        return 130
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_BAD_INPUT
