"""What every subcommand shares: voice sources and ``SOURCE:N`` addressing, errors, output files, progress.

* A voice source is a patch JSON file, an example file (``{"name", "captions", "render", "patch"}``),
  a JSON list of patches, a DX7 ``.syx`` file (single voice or bank, read tolerantly) or a
  source-research CSV; ``SOURCE:N`` picks voice N, counted from 1 in file order (a DX7 bank's
  voices are 1..32, as on the instrument).
* Bad input raises ``CliError`` (or a library error that ``main`` knows); ``main`` prints one
  ``error:`` line per problem on stderr and exits with status 2, never with a traceback.
* Every output file is written to a temporary name beside it and renamed into place, so a failure
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

from ..synth.wav import created_mode

EXIT_OK = 0
EXIT_BAD_INPUT = 2
FORMATS = {"pcm16": "PCM_16", "pcm24": "PCM_24", "float": "FLOAT"}
SOURCE_SUFFIXES = (".json", ".syx", ".csv")
SOURCE_HELP = "patch .json, example .json, .syx or .csv; BANK.syx:N picks voice N (1..32)"


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


def check_output_folder(path: Path, flag: str = "-o") -> None:
    """Refuse an output file whose folder does not exist, before any work is done."""
    where = f"{flag} {path}" if flag else str(path)
    if not path.parent.is_dir():
        raise CliError(f"{where}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise CliError(f"{where}: is a folder; allowed a file name")


def check_output_dir(path: Path, flag: str) -> Path:
    """Refuse an output folder that is a file or whose parent does not exist, before any work is done."""
    if path.exists() and not path.is_dir():
        raise CliError(f"{flag} {path}: exists and is not a folder")
    if not path.exists() and not path.parent.is_dir():
        raise CliError(f"{flag} {path}: the folder {path.parent} does not exist")
    return path


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


def write_together(writers: dict[Path, Callable[[Path], None]]) -> None:
    """Write several files (each ``writer`` fills a temporary path) so that all of them appear or none does.

    Every file is written beside its target first; only when all are written are they renamed into
    place. Should a rename fail, the files already renamed are removed again.
    """
    for path in writers:
        check_output_folder(path, flag="")
    staged: dict[Path, Path] = {}
    try:
        for path, write in writers.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            staged[path] = Path(tmp)
            write(Path(tmp))
            os.chmod(tmp, created_mode())
        placed: list[Path] = []
        try:
            for path, tmp in staged.items():
                os.replace(tmp, path)
                placed.append(path)
        except BaseException:
            # A pair such as clip.wav + clip.json is useless half-present: take back what was placed.
            for path in placed:
                path.unlink(missing_ok=True)
            raise
    finally:
        for tmp in staged.values():
            tmp.unlink(missing_ok=True)


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


# --- WAV output (render, evidence) -----------------------------------------------------------------


def add_wav_arguments(parser: argparse.ArgumentParser) -> None:
    """The gain-policy options shared by every command that writes a WAV."""
    parser.add_argument("--gain", choices=("peak", "raw"), default="peak",
                        help="peak: normalise the WAV's peak to --peak-dbfs (default); raw: write engine units "
                             "unchanged (an error rather than clipping if a PCM file cannot hold them)")
    parser.add_argument("--peak-dbfs", type=float, default=-1.0, help="target peak for --gain peak (default -1)")
    parser.add_argument("--format", choices=tuple(FORMATS), default="pcm16", help="WAV sample format (default pcm16)")


def check_fits(path: Path, audio: Any, args: argparse.Namespace) -> None:
    """Refuse raw PCM output that would clip, in the CLI's own words."""
    import numpy as np

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if args.gain == "raw" and args.format != "float" and peak > 1.0:
        raise CliError(f"{path}: the audio peaks at {20 * np.log10(peak):+.2f} dBFS in engine units and would clip "
                       f"as {args.format}; use --gain peak to normalise it, or --format float to keep it losslessly")


def encode_wav(path: Path, audio: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Write one WAV under the CLI's gain settings; returns what was written."""
    from ..synth.wav import write_wav

    info = write_wav(path, audio, args.sample_rate, gain=args.gain, peak_dbfs=args.peak_dbfs,
                     subtype=FORMATS[args.format])
    return {"path": str(info.path), "format": args.format, "gain": info.gain, "gain_db": info.gain_db,
            "written_peak_dbfs": None if info.written_peak_dbfs == float("-inf") else round(info.written_peak_dbfs, 2)}


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
        # validate's own object hook: it marks repeated keys, which validate then reports (json alone keeps
        # the last value silently).
        from ..schema.validate import pairs_to_dict

        return json.loads(text, object_pairs_hook=pairs_to_dict)
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
    from ..examples import ExampleError, is_example, parse_example
    from ..schema.validate import validate

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
    from ..synth.sysex_reader import read_bank_file

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
    from ..schema.source_research import SourceResearchError, read_source_csv

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


def load_voice(spec: str) -> Voice:
    """The one voice ``spec`` names (a single-voice file, or ``FILE:N``), its reader's repairs noted on stderr."""
    source = load_source(spec)
    if len(source.voices) > 1:
        count = len(source.voices)
        raise CliError(f"{spec} holds {count} voices: address one as {spec}:N (N = 1..{count})")
    print_notes(source)
    return source.voices[0]


def print_notes(source: Source) -> None:
    """Tell the user on stderr what the reader repaired in the voices about to be used."""
    for line in source.notes + [n for v in source.voices for n in v.notes]:
        note(f"{source.path}: tolerated {line}")


def algorithm_label(patch: Any) -> str | None:
    """The DX7 algorithm number of a patch, or ``none (nearest N, K off)``; None for no patch."""
    if patch is None:
        return None
    from ..schema.algorithms import algorithm_of, nearest_algorithm

    number = algorithm_of(patch.modmatrix, patch.outmatrix)
    if number is not None:
        return str(number)
    nearest, distance = nearest_algorithm(patch.modmatrix, patch.outmatrix)
    return f"none (nearest {nearest}, {distance} off)"
