"""Voice identity and dedup: equal parameters under different names are one voice.

A voice's id is the first 16 hex digits of the sha256 of its canonical JSON without the name
(canonical key order, compact separators). ``identity="core"`` (the default, as in the source
research) hashes the 12 core keys (128 numbers): a source-research CSV row (core keys only) and the
bank voice it was taken from are then one voice, and the CSV's caption attaches to it.
``identity="full"`` hashes every parameter (LFO, pitch EG, scaling... too), so voices that differ only
there stay apart. The first occurrence (in the fixed input order) gives the row its name, patch and
provenance; later ones only count.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from ...schema.patch import Patch
from .sources import SourceVoice

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["IDENTITIES", "voice_id", "ManifestRow", "DedupReport", "dedup", "manifest_table", "MANIFEST_COLUMNS"]

IDENTITIES = ("core", "full")


def voice_id(patch: Patch, identity: str = "core") -> str:
    """16 hex digits identifying a voice's parameters (its name excluded): the core keys, or all of them."""
    if identity == "core":
        d = patch.core()
    elif identity == "full":
        d = patch.to_dict(full=True)
        d.pop("name", None)
    else:
        raise ValueError(f"identity: found {identity!r}, allowed {' or '.join(IDENTITIES)}")
    text = json.dumps(d, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:16]


class ManifestRow(BaseModel):
    """One unique voice: its id, first name and provenance, and how often it occurred."""

    id: str
    name: str
    patch: str
    source_file: str
    source_index: int
    n_occurrences: int = 1
    caption: str | None = None
    caption_source: str | None = None


MANIFEST_COLUMNS = tuple(ManifestRow.model_fields)  # the contract's manifest columns, in order


class DedupReport(BaseModel):
    """How many voices went in and how many unique ones came out."""

    voices: int = 0
    unique: int = 0
    duplicates: int = 0
    renamed_duplicates: int = 0  # duplicates whose name differs from the kept one's


def dedup(voices: Iterable[SourceVoice], identity: str = "core") -> tuple[list[ManifestRow], DedupReport]:
    """Unique voices in first-occurrence order, each with its occurrence count (and a caption if any had one)."""
    from ...schema.compact import dumps_compact

    rows: dict[str, ManifestRow] = {}
    report = DedupReport()
    for v in voices:
        report.voices += 1
        vid = voice_id(v.patch, identity)
        row = rows.get(vid)
        if row is None:
            rows[vid] = ManifestRow(id=vid, name=v.name, patch=dumps_compact(v.patch, full=True),
                                    source_file=v.source_file, source_index=v.source_index,
                                    caption=v.caption, caption_source=v.caption_source)
            continue
        row.n_occurrences += 1
        report.duplicates += 1
        if v.name.strip() != row.name.strip():
            report.renamed_duplicates += 1
        if row.caption is None and v.caption is not None:  # a bank voice that a captioned CSV row repeats
            row.caption, row.caption_source = v.caption, v.caption_source
    report.unique = len(rows)
    return list(rows.values()), report


def manifest_table(rows: list[ManifestRow]) -> "pa.Table":
    """The manifest rows as an Arrow table with the contract's columns and types."""
    import pyarrow as pa

    schema = pa.schema([("id", pa.string()), ("name", pa.string()), ("patch", pa.string()),
                        ("source_file", pa.string()), ("source_index", pa.int64()), ("n_occurrences", pa.int64()),
                        ("caption", pa.string()), ("caption_source", pa.string())])
    cols = {c: [getattr(r, c) for r in rows] for c in MANIFEST_COLUMNS}
    return pa.table(cols, schema=schema)
