"""Import and export of the source research's patch dicts (hoyso48/LLMforFM, ``DX7_*.csv`` files).

That format (``shared/reference/dx7.md`` §1.2-1.5) has the same 12 core keys as ``Patch`` but:

* the per-operator arrays (``fixed_freq``, ``coarse``, ``fine``, ``detune``, ``ol``,
  ``sensitivity``) and the columns of ``eg_rate``/``eg_level`` are stored OP6-first, while
  ``modmatrix`` and ``outmatrix`` are OP1-first;
* feedback is a single diagonal entry, so algorithms 4 and 6 (whose feedback loops run
  OP4 -> OP6 and OP5 -> OP6) appear as algorithm 3's or 5's matrix with the diagonal on OP4 or OP5.
  The importer repairs both into the real loops; the exporter writes them back as diagonals;
* each dict carries ``name`` and a ``has_fixed_freq`` (or ``has_fixed_freqs``) flag; the flag is
  derived data and ignored.

Everything is converted to the project's OP1-first ``Patch`` here and nowhere else. The captions
CSV beside a patch CSV (``DX7_*_captions.csv``: ``,id,wav_path,name,caption``) is read here too
(``read_caption_csv``, ``first_captions``), so every caller reads it the same way and keeps an id's
first caption.
"""

from __future__ import annotations

import ast
import csv
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .algorithms import ALGORITHMS
from .params import CORE_KEYS, CORE_PARAMS, NAME_MAX_LEN
from .patch import Patch

# Per-operator keys stored OP6-first in the source format (eg_rate/eg_level: their columns).
PER_OPERATOR_KEYS: tuple[str, ...] = ("fixed_freq", "coarse", "fine", "detune", "ol", "sensitivity")
STAGE_BY_OPERATOR_KEYS: tuple[str, ...] = ("eg_rate", "eg_level")
_IGNORED_KEYS = frozenset({"has_fixed_freq", "has_fixed_freqs"})
_MAX_TEXT = 100_000  # a real dict is ~700 characters; refuse anything absurdly large up front
_MAX_REPORTED = 12

# The source's single-diagonal stand-ins for the multi-operator feedback loops:
# (diagonal operator index, DX7 algorithm it stands for), both 0-based.
_LOOP_STAND_INS: tuple[tuple[int, int], ...] = ((3, 3), (4, 5))


class SourceResearchError(ValueError):
    """A source-research patch dict that cannot be imported (or a patch that cannot be exported)."""


@dataclass(frozen=True)
class SourceRow:
    """One row of a source-research CSV: where the voice came from, and its patch or why it failed."""

    id: str
    name: str
    file_path: str
    patch_number: int | None
    patch: Patch | None
    error: str | None
    notes: tuple[str, ...] = ()  # what was repaired on import (unprintable name characters)


@dataclass(frozen=True)
class CaptionRow:
    """One row of a source-research caption CSV (``DX7_*_captions.csv``), cells stripped."""

    id: str
    caption: str  # "" for an empty cell: kept, so that a caller can say it left the row out
    name: str  # "" when the CSV has no name column or the cell is empty


def parse_source_text(text: str) -> dict[str, Any]:
    """The dict in a ``patch_data`` cell: a Python literal (never evaluated as code) or JSON."""
    if not isinstance(text, str):
        raise SourceResearchError(f"patch data must be text, got {type(text).__name__}")
    if len(text) > _MAX_TEXT:
        raise SourceResearchError(f"patch data is {len(text)} characters long; a patch dict is well under {_MAX_TEXT}")
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as literal_err:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            detail = str(literal_err).splitlines()[0] if str(literal_err) else type(literal_err).__name__
            raise SourceResearchError(f"patch data is neither a Python literal nor JSON ({detail})") from None
    if not isinstance(value, dict):
        raise SourceResearchError(f"patch data must be a dict, got {type(value).__name__}")
    return value


def _shape_problems(key: str, value: Any, shape: tuple[int, ...], low: int, high: int) -> list[str]:
    """Problems with one core value, with JSON pointers in the source's own (OP6-first) indexing."""
    problems: list[str] = []

    def where(path: tuple[int, ...]) -> str:
        pointer = "/" + "/".join([key, *map(str, path)])
        if key in PER_OPERATOR_KEYS and len(path) == 1:
            return f"{pointer} (OP{6 - path[0]})"
        if key in STAGE_BY_OPERATOR_KEYS and len(path) == 2:
            return f"{pointer} (stage {path[0] + 1}, OP{6 - path[1]})"
        if key in ("modmatrix", "outmatrix") and path:
            return f"{pointer} (OP{path[0] + 1}{f' <- OP{path[1] + 1}' if len(path) == 2 else ''})"
        return pointer

    def walk(v: Any, dims: tuple[int, ...], path: tuple[int, ...]) -> None:
        if len(problems) >= _MAX_REPORTED:
            return
        if dims:
            if not isinstance(v, (list, tuple)) or len(v) != dims[0]:
                got = f"{len(v)} entries" if isinstance(v, (list, tuple)) else type(v).__name__
                problems.append(f"{where(path)}: expected a list of {dims[0]}, got {got}")
                return
            for i, item in enumerate(v):
                walk(item, dims[1:], (*path, i))
        elif isinstance(v, bool) or not isinstance(v, int):
            problems.append(f"{where(path)}: expected integer {low}..{high}, got {v!r:.40}")
        elif not low <= v <= high:
            problems.append(f"{where(path)}: {v} is outside {low}..{high}")

    walk(value, shape, ())
    return problems


def _repair_feedback_loops(modmatrix: list[list[int]]) -> None:
    """Turn the source's OP4/OP5 diagonal stand-ins for algorithms 4 and 6 into the real loops."""
    diagonal = [i for i in range(6) if modmatrix[i][i]]
    for op, alg_index in _LOOP_STAND_INS:
        if diagonal != [op]:
            continue
        off_diagonal = [[0 if i == j else modmatrix[i][j] for j in range(6)] for i in range(6)]
        reference = ALGORITHMS[alg_index - 1].modmatrix  # algorithm 3 or 5: same edges, feedback on OP6
        if all(off_diagonal[i][j] == (0 if i == j else reference[i][j]) for i in range(6) for j in range(6)):
            source, target = ALGORITHMS[alg_index].feedback_edge
            modmatrix[op][op] = 0
            modmatrix[target][source] = 1


def repair_name(name: str) -> str:
    """The name with every character outside printable ASCII replaced by a space, cut to 10 characters."""
    return "".join(c if " " <= c <= "~" else " " for c in name)[:NAME_MAX_LEN]


def import_source_dict(data: str | Mapping[str, Any], *, lenient_name: bool = False) -> Patch:
    """The ``Patch`` (OP1-first, algorithm 4/6 loops repaired) of one source-research patch dict.

    ``lenient_name=True`` repairs a name with unprintable characters (``repair_name``) instead of
    refusing it: real DX7 names contain them (the source kept the raw bytes).
    """
    if isinstance(data, str):
        data = parse_source_text(data)
    if not isinstance(data, Mapping):
        raise SourceResearchError(f"patch data must be a dict or its text, got {type(data).__name__}")
    keys = set(data)
    missing = [k for k in CORE_KEYS if k not in keys]
    unknown = sorted(map(repr, keys - set(CORE_KEYS) - _IGNORED_KEYS - {"name"}))
    problems = []
    if missing:
        problems.append("missing key(s): " + ", ".join(missing))
    if unknown:
        problems.append("unknown key(s): " + ", ".join(unknown))
    for param in CORE_PARAMS:
        if param.key in data:
            problems += _shape_problems(param.key, data[param.key], param.shape, int(param.low), int(param.high))
    name = data.get("name")
    if lenient_name and isinstance(name, str):
        name = repair_name(name)
    if name is not None and not (
        isinstance(name, str) and len(name) <= NAME_MAX_LEN and all(" " <= c <= "~" for c in name)
    ):
        problems.append(f"/name: expected up to {NAME_MAX_LEN} printable ASCII characters, got {name!r:.40}")
    if problems:
        shown = problems[:_MAX_REPORTED]
        more = f" (and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        raise SourceResearchError("invalid source-research patch: " + "; ".join(shown) + more)

    core: dict[str, Any] = {k: data[k] for k in CORE_KEYS}
    for key in PER_OPERATOR_KEYS:
        core[key] = list(reversed(core[key]))
    for key in STAGE_BY_OPERATOR_KEYS:
        core[key] = [list(reversed(row)) for row in core[key]]
    core["modmatrix"] = [list(row) for row in core["modmatrix"]]
    core["outmatrix"] = list(core["outmatrix"])
    _repair_feedback_loops(core["modmatrix"])
    try:
        return Patch(**core, name=name)
    except ValidationError as err:  # not expected after the checks above; kept so garbage never crashes
        raise SourceResearchError(f"invalid source-research patch: {err}") from None


def export_source_dict(patch: Patch) -> dict[str, Any]:
    """The source-research dict of a patch (per-operator arrays OP6-first, loops as diagonals)."""
    modmatrix = [list(row) for row in patch.modmatrix]
    for op, alg_index in _LOOP_STAND_INS:
        loop = ALGORITHMS[alg_index]
        if tuple(map(tuple, modmatrix)) == loop.modmatrix:
            source, target = loop.feedback_edge
            modmatrix[target][source] = 0
            modmatrix[op][op] = 1
    upward = [(i, j) for i in range(6) for j in range(i) if modmatrix[i][j]]  # OP(j+1) -> OP(i+1), j < i
    if upward:
        edges = ", ".join(f"OP{j + 1} -> OP{i + 1}" for i, j in upward)
        raise SourceResearchError(
            "the source-research format expresses feedback only as self-feedback (the diagonal) or the loops "
            f"of algorithms 4 and 6; this patch has the feedback edge(s) {edges}"
        )
    out: dict[str, Any] = {}
    if patch.name is not None:
        out["name"] = patch.name
    out["modmatrix"] = modmatrix
    out["outmatrix"] = list(patch.outmatrix)
    out["feedback"] = patch.feedback
    core = patch.core()
    for key in ("fixed_freq", "coarse", "fine", "detune"):
        out[key] = list(reversed(core[key]))
    out["transpose"] = patch.transpose
    out["ol"] = list(reversed(core["ol"]))
    for key in STAGE_BY_OPERATOR_KEYS:
        out[key] = [list(reversed(row)) for row in core[key]]
    out["sensitivity"] = list(reversed(core["sensitivity"]))
    out["has_fixed_freq"] = any(core["fixed_freq"])
    return out


def read_source_csv(path: str | Path) -> list[SourceRow]:
    """Every row of a source-research CSV (``DX7_*.csv``), each with its patch or its import error."""
    with open(path, newline="", encoding="utf-8") as f:
        return parse_source_csv(f, str(path))


def parse_source_csv(lines: Iterable[str], name: str) -> list[SourceRow]:
    """``read_source_csv`` for CSV text already open (a file, a zip member); ``name`` says where in errors."""
    required = ("id", "name", "file_path", "patch_number", "patch_data")
    rows: list[SourceRow] = []
    try:
        reader = csv.DictReader(lines)
        absent = [c for c in required if c not in (reader.fieldnames or ())]
        if absent:
            raise SourceResearchError(f"{name}: missing column(s) {', '.join(absent)}")
        for record in reader:
            patch: Patch | None = None
            error: str | None = None
            notes: tuple[str, ...] = ()
            try:
                patch = import_source_dict(record["patch_data"] or "", lenient_name=True)
                raw_name = parse_source_text(record["patch_data"] or "").get("name")
                if isinstance(raw_name, str) and raw_name != patch.name:
                    notes = (f"name {raw_name!r} has unprintable characters, imported as {patch.name!r}",)
            except SourceResearchError as err:
                error = str(err)
            number = (record["patch_number"] or "").strip()
            rows.append(
                SourceRow(
                    id=record["id"] or "",
                    name=record["name"] or "",
                    file_path=record["file_path"] or "",
                    patch_number=int(number) if number.isdigit() else None,
                    patch=patch,
                    error=error,
                    notes=notes,
                )
            )
    except (csv.Error, UnicodeDecodeError) as err:
        raise SourceResearchError(f"{name}: not a readable CSV file ({err})") from None
    return rows


CAPTION_COLUMNS: tuple[str, ...] = ("id", "caption")  # required; ``name`` (and ``wav_path``) are optional


def read_caption_csv(path: str | Path) -> list[CaptionRow]:
    """Every row of a source-research caption CSV (``DX7_*_captions.csv``), in file order."""
    with open(path, newline="", encoding="utf-8") as f:
        return parse_caption_csv(f, str(path))


def parse_caption_csv(lines: Iterable[str], name: str) -> list[CaptionRow]:
    """``read_caption_csv`` for CSV text already open (a file, decoded bytes); ``name`` says where in errors.

    Nothing is left out: rows with an empty id or caption come back with ``""`` there, repeated ids
    each come back in file order (``first_captions`` keeps the first caption of each id).
    """
    rows: list[CaptionRow] = []
    try:
        reader = csv.DictReader(lines)
        found = reader.fieldnames or ()
        absent = [c for c in CAPTION_COLUMNS if c not in found]
        if absent:
            raise SourceResearchError(
                f"{name}: missing column(s) {', '.join(absent)} (found {', '.join(c for c in found if c) or 'none'}); "
                "allowed a source-research caption CSV with 'id' and 'caption' columns"
            )
        for record in reader:
            rows.append(CaptionRow(id=(record.get("id") or "").strip(), caption=(record.get("caption") or "").strip(),
                                   name=(record.get("name") or "").strip()))
    except (csv.Error, UnicodeDecodeError) as err:
        raise SourceResearchError(f"{name}: not a readable CSV file ({err})") from None
    return rows


def first_captions(rows: Iterable[CaptionRow]) -> dict[str, CaptionRow]:
    """id -> the first row of that id with a caption, in file order (rows without id or caption are ignored)."""
    out: dict[str, CaptionRow] = {}
    for row in rows:
        if row.id and row.caption:
            out.setdefault(row.id, row)
    return out
