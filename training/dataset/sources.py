"""Dataset inputs: folders, zip files (nested zips too), DX7 sysex banks and source-research CSVs.

Every input is walked in a fixed (sorted) order so that the same inputs give the same voice list.
Banks go through the tolerant reader (``synth.sysex_reader``); a source-research patch CSV
(``DX7_*.csv``) goes through ``schema.source_research.parse_source_csv`` and takes its captions from
the ``NAME_captions.csv`` beside it (joined on ``id``). Nothing here raises on bad input: every file
ends up in the report as clean, tolerated, refused or ignored, with the reason.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

from ...schema.patch import Patch

__all__ = ["SourceVoice", "FileReport", "SourceReport", "iter_voices", "read_inputs", "BANK_SUFFIXES"]

BANK_SUFFIXES = (".syx",)
ZIP_SUFFIXES = (".zip",)
CSV_SUFFIXES = (".csv",)
CAPTIONS_SUFFIX = "_captions.csv"
SOURCE_RESEARCH_CAPTION = "source-research"
MAX_ZIP_DEPTH = 4  # zips inside zips inside zips...: deeper than this is refused, not followed
MAX_DETAIL = 6  # lines kept per file in the report
MAX_MEMBER_BYTES = 64 << 20  # a bank is 4 kB; a member this large is not one (and could be a zip bomb)


@dataclass
class SourceVoice:
    """One voice as read from an input, before dedup."""

    patch: Patch
    name: str
    source_file: str
    source_index: int
    caption: str | None = None
    caption_source: str | None = None


class FileReport(BaseModel):
    """What happened to one input file."""

    file: str
    status: str = Field(description="clean | tolerated | refused | ignored")
    voices: int = 0
    detail: list[str] = Field(default_factory=list, description="what was tolerated, or why it was refused/ignored")


class SourceReport(BaseModel):
    """Counts over all inputs, and every file that was not clean."""

    files_read: int = 0
    files_clean: int = 0
    files_tolerated: int = 0
    files_refused: int = 0
    files_ignored: int = 0
    voices: int = 0
    csv_rows_refused: int = 0
    captions_attached: int = 0
    tolerated_kinds: dict[str, int] = Field(default_factory=dict, description="files per kind of repair")
    not_clean: list[FileReport] = Field(default_factory=list)

    def add(self, rep: FileReport) -> None:
        """Count one file's outcome (files that are not clean are kept for the report)."""
        if rep.status == "ignored":
            self.files_ignored += 1
        else:
            self.files_read += 1
            setattr(self, f"files_{rep.status}", getattr(self, f"files_{rep.status}") + 1)
        self.voices += rep.voices
        if rep.status == "tolerated":
            for kind in sorted({_kind(part) for line in rep.detail for part in line.split("; ")}):
                self.tolerated_kinds[kind] = self.tolerated_kinds.get(kind, 0) + 1
        if len(rep.detail) > MAX_DETAIL:  # a bank can tolerate 32 things; the report stays readable
            rep.detail = rep.detail[:MAX_DETAIL] + [f"... and {len(rep.detail) - MAX_DETAIL} more"]
        if rep.status != "clean":
            self.not_clean.append(rep)

    @property
    def refused(self) -> list[FileReport]:
        """Files that were refused."""
        return [r for r in self.not_clean if r.status == "refused"]


# What the tolerant reader (and the CSV importer) repaired, by a phrase of its message.
_KINDS = (("checksum mismatch", "checksum mismatch"), ("checksum and F7 missing", "checksum/F7 missing at the end"),
          ("no F7 after", "no F7 after the checksum"), ("nonstandard byte count", "nonstandard byte count"),
          ("no F0 directly", "no F0 before the header"), ("out of range, clamped", "values out of range, clamped"),
          ("not printable", "unprintable name characters"), ("unprintable characters", "unprintable name characters"),
          ("unused bits set", "unused bits set"), ("without sysex framing", "raw data without sysex framing"),
          ("truncated", "truncated message skipped"), ("not DX7 voice data", "other sysex messages skipped"),
          ("outside any sysex message", "bytes outside sysex messages"), ("captions not attached", "captions not attached"),
          ("(id ", "CSV rows refused"))


def _kind(line: str) -> str:
    return next((kind for phrase, kind in _KINDS if phrase in line), "other")


@dataclass
class _Member:
    """A file found in the inputs: its display name and a way to get its bytes."""

    name: str  # path as given, or "archive.zip!/member/path"
    suffix: str
    data: bytes | None = None
    path: Path | None = None
    error: str | None = None
    siblings: dict[str, "_Member"] = field(default_factory=dict)  # same folder, by lower-case file name

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


def _suffix(name: str) -> str:
    n = name.lower()
    if n.endswith(CAPTIONS_SUFFIX):
        return CAPTIONS_SUFFIX
    return PurePosixPath(n).suffix


def _walk_folder(folder: Path) -> Iterator[_Member]:
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.as_posix())
    by_dir: dict[Path, dict[str, _Member]] = {}
    members = []
    for p in files:
        m = _Member(str(p), _suffix(p.name), path=p)
        by_dir.setdefault(p.parent, {})[p.name.lower()] = m
        members.append(m)
    for m in members:
        assert m.path is not None
        m.siblings = by_dir[m.path.parent]
        yield m


def _walk_zip(name: str, data: bytes, depth: int) -> Iterator[_Member]:
    """Members of a zip (given as bytes), nested zips expanded, in sorted order."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        yield _Member(name, ".zip", error=f"not a readable zip file ({err})")
        return
    by_dir: dict[str, dict[str, _Member]] = {}
    members: list[_Member] = []
    for info in infos:
        inner = f"{name}!/{info.filename}"
        member = _Member(inner, _suffix(info.filename))
        if info.file_size > MAX_MEMBER_BYTES:
            member.error = f"{info.file_size} bytes uncompressed: too large for a bank (limit {MAX_MEMBER_BYTES})"
        else:
            try:
                member.data = zf.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError) as err:
                member.error = f"cannot extract from the zip ({err})"
        parent = str(PurePosixPath(info.filename).parent)
        by_dir.setdefault(parent, {})[PurePosixPath(info.filename).name.lower()] = member
        members.append(member)
    for info, member in zip(infos, members):
        member.siblings = by_dir[str(PurePosixPath(info.filename).parent)]
        if member.suffix in ZIP_SUFFIXES and member.error is None and member.data is not None:
            if depth >= MAX_ZIP_DEPTH:
                member.error = f"zip nested more than {MAX_ZIP_DEPTH} deep, not followed"
                yield member
            else:
                yield from _walk_zip(member.name, member.data, depth + 1)
        else:
            yield member


def _members(inputs: list[str | Path]) -> Iterator[_Member]:
    for given in inputs:
        p = Path(given)
        if p.is_dir():
            for m in _walk_folder(p):
                if m.suffix in ZIP_SUFFIXES:
                    try:
                        data = m.read()
                    except OSError as err:
                        yield _Member(m.name, ".zip", error=f"cannot read the file ({err})")
                        continue
                    yield from _walk_zip(m.name, data, 1)
                else:
                    yield m
        elif p.is_file():
            suffix = _suffix(p.name)
            if suffix in ZIP_SUFFIXES:
                try:
                    data = p.read_bytes()
                except OSError as err:
                    yield _Member(str(p), suffix, error=f"cannot read the file ({err})")
                    continue
                yield from _walk_zip(str(p), data, 1)
            else:
                # A file named on the command line is read whatever its suffix (a bank may be called .bin).
                siblings = {q.name.lower(): _Member(str(q), _suffix(q.name), path=q)
                            for q in p.parent.iterdir() if q.is_file()} if suffix in CSV_SUFFIXES else {}
                yield _Member(str(p), suffix if suffix in CSV_SUFFIXES + (CAPTIONS_SUFFIX,) else ".syx",
                              path=p, siblings=siblings)
        else:
            yield _Member(str(p), _suffix(p.name), error="no such file or folder")


def _read_captions(data: bytes, name: str) -> tuple[dict[str, str], str | None]:
    """id -> first caption of a source-research caption CSV, or an error."""
    from ...schema.source_research import SourceResearchError, first_captions, parse_caption_csv

    # Decoded while read, as the patch CSV is, so that bad UTF-8 is "not a readable CSV file".
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")
    try:
        rows = parse_caption_csv(text, name)
    except SourceResearchError as err:
        return {}, str(err)
    return {cid: row.caption for cid, row in first_captions(rows).items()}, None


def _read_csv(member: _Member, out: list[SourceVoice], report: SourceReport) -> FileReport:
    """Append the importable rows of a source-research CSV (captions attached) to ``out``."""
    from ...schema.source_research import SourceResearchError, parse_source_csv

    rep = FileReport(file=member.name, status="clean")
    # Decoded while read, so that bad UTF-8 is the importer's "not a readable CSV file", as for a file on disk.
    text = io.TextIOWrapper(io.BytesIO(member.read()), encoding="utf-8", newline="")
    try:
        rows = parse_source_csv(text, member.name)
    except SourceResearchError as err:
        rep.status = "refused"
        rep.detail.append(str(err))
        return rep
    captions: dict[str, str] = {}
    stem = PurePosixPath(member.name.replace("!/", "/")).name
    cap_name = stem[: -len(".csv")] + CAPTIONS_SUFFIX if stem.lower().endswith(".csv") else ""
    cap_member = member.siblings.get(cap_name.lower())
    if cap_member is not None:
        try:
            captions, err = _read_captions(cap_member.read(), cap_member.name)
        except OSError as exc:
            captions, err = {}, f"{cap_member.name}: cannot read the file ({exc})"
        if err:
            rep.detail.append(f"captions not attached: {err}")
    refused = 0
    for index, row in enumerate(rows):
        if row.patch is None:
            refused += 1
            if refused <= 5:
                rep.detail.append(f"row {index} (id {row.id}): {row.error}")
            continue
        for note in row.notes:
            rep.detail.append(f"row {index} (id {row.id}): {note}")
        caption = captions.get(row.id.strip())
        if caption is not None:
            report.captions_attached += 1
        out.append(SourceVoice(patch=row.patch, name=row.patch.name if row.patch.name is not None else row.name,
                               source_file=member.name, source_index=index, caption=caption,
                               caption_source=SOURCE_RESEARCH_CAPTION if caption is not None else None))
        rep.voices += 1
    if refused > 5:
        rep.detail.append(f"... {refused - 5} more rows refused")
    report.csv_rows_refused += refused
    if rep.voices == 0:
        rep.status = "refused"
        rep.detail.insert(0, "no importable patch row")
    elif refused or rep.detail:
        rep.status = "tolerated"
    return rep


def iter_voices(inputs: list[str | Path], report: SourceReport,
                on_file: Callable[[SourceReport], None] | None = None) -> Iterator[SourceVoice]:
    """Every voice in the inputs (folders, zips, banks, CSVs) in a fixed order; ``report`` counts the files
    (``on_file`` is called after each one, e.g. to move a progress bar)."""
    from ...synth.sysex_reader import read_bank_bytes

    for member in _members(list(inputs)):
        if on_file is not None:
            on_file(report)
        if member.error is not None:
            report.add(FileReport(file=member.name, status="refused", detail=[member.error]))
            continue
        if member.suffix == CAPTIONS_SUFFIX:
            continue  # read with its patch CSV
        if member.suffix in CSV_SUFFIXES:
            found: list[SourceVoice] = []
            try:
                report.add(_read_csv(member, found, report))
            except OSError as err:
                report.add(FileReport(file=member.name, status="refused", detail=[f"cannot read the file ({err})"]))
            yield from found
            continue
        if member.suffix not in BANK_SUFFIXES:
            report.add(FileReport(file=member.name, status="ignored",
                                  detail=[f"not a bank (.syx), zip or source-research .csv (suffix {member.suffix or 'none'!r})"]))
            continue
        try:
            data = member.read()
        except OSError as err:
            report.add(FileReport(file=member.name, status="refused", detail=[f"cannot read the file ({err})"]))
            continue
        bank = read_bank_bytes(data, source=member.name)
        if not bank.ok:
            report.add(FileReport(file=member.name, status="refused", detail=[bank.refused or "no DX7 voice found"]))
            continue
        report.add(FileReport(file=member.name, status="tolerated" if bank.tolerated else "clean",
                              voices=len(bank.voices), detail=list(bank.tolerated)))
        for index, patch in enumerate(bank.voices):
            yield SourceVoice(patch=patch, name=bank.names[index] if index < len(bank.names) else "",
                              source_file=member.name, source_index=index)


def read_inputs(inputs: list[str | Path]) -> tuple[list[SourceVoice], SourceReport]:
    """Every voice in the inputs as a list, and the report (``iter_voices`` without holding them all)."""
    report = SourceReport()
    return list(iter_voices(inputs, report)), report
