"""Tiny dataset builds for the caption and CoT stage tests, written with pyarrow to the contract's layout.

``write_build`` writes ``OUT/stage/build.json`` (``shard_size``), ``OUT/stage/manifest.parquet`` and
``OUT/stage/renders/part-k.parquet`` exactly as ``/work/notes/dataset-contract.md`` lays them out, from
real short renders (16 kHz, FLAC inside the ``audio`` struct, real descriptors, optional real evidence
clips with their segment maps). Every voice gets a render at note 48 *before* its note-60 render, so a
stage that shows a model the wrong render is caught; and every voice's note-60 render has its own
length in samples, so a scripted endpoint can tell from the audio alone which voice it is hearing.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from patchsmith.evals.descriptors import render_and_describe
from patchsmith.schema.compact import dumps_compact
from patchsmith.schema.patch import Patch
from patchsmith.synth.evidence import render_evidence
from patchsmith.training.dataset.dedup import voice_id

SAMPLE_RATE = 16000
SECONDS = 0.6  # the build.json render length: hold 64% of it, as the dataset builder does
HOLD_S = 0.384
AUDIO = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


@dataclass
class Voice:
    """One manifest row to write."""

    name: str
    patch: Patch
    caption: str | None = None
    caption_source: str | None = None

    @property
    def id(self) -> str:
        """The contract's id: 16 hex chars of sha256 over the core JSON without the name."""
        return voice_id(self.patch)


def flac(audio: np.ndarray) -> bytes:
    """16-bit FLAC bytes of float audio (peak-normalised when it exceeds full scale)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    buf = io.BytesIO()
    sf.write(buf, audio / peak if peak > 1.0 else audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def release_for(index: int) -> float:
    """The release of voice ``index``'s note-60 render: a length in samples no other voice has."""
    return 0.216 + 0.01 * index


def _render_row(voice: Voice, note: int, release_s: float, evidence: bool) -> dict[str, Any]:
    audio, d = render_and_describe(voice.patch, note, 100, HOLD_S, release_s, SAMPLE_RATE)
    rid = f"{voice.id}-n{note}-v100"
    row: dict[str, Any] = {"id": voice.id, "render_id": rid, "note": note, "played_note": note, "velocity": 100,
                           "sample_rate": SAMPLE_RATE, "duration_s": round(audio.size / SAMPLE_RATE, 6),
                           "audio": {"bytes": flac(audio), "path": f"{rid}.flac"},
                           "descriptors": d.model_dump_json(), "silent": bool(d.silent), "error": None,
                           "evidence_off": None, "evidence_off_map": None}
    if evidence and not d.silent:
        clip = render_evidence(voice.patch, mode="off", segment_s=0.5, note=note, velocity=100, hold_s=0.32,
                               sample_rate=SAMPLE_RATE, workers=1)
        row["evidence_off"] = {"bytes": flac(clip.audio), "path": f"{rid}-evidence-off.flac"}
        row["evidence_off_map"] = clip.model_dump_json()
    return row


RENDER_SCHEMA = pa.schema([("id", pa.string()), ("render_id", pa.string()), ("note", pa.int64()),
                           ("played_note", pa.int64()), ("velocity", pa.int64()), ("sample_rate", pa.int64()),
                           ("duration_s", pa.float64()), ("audio", AUDIO), ("descriptors", pa.string()),
                           ("silent", pa.bool_()), ("error", pa.string()), ("evidence_off", AUDIO),
                           ("evidence_off_map", pa.string())])
MANIFEST_SCHEMA = pa.schema([("id", pa.string()), ("name", pa.string()), ("patch", pa.string()),
                             ("source_file", pa.string()), ("source_index", pa.int64()),
                             ("n_occurrences", pa.int64()), ("caption", pa.string()),
                             ("caption_source", pa.string())])


def write_build(out: Path, voices: list[Voice], *, shard_size: int = 2, evidence: bool = False) -> dict[int, int]:
    """Write the manifest, build.json and renders parts for ``voices``; returns {note-60 frames: voice index}."""
    stage = out / "stage"
    (stage / "renders").mkdir(parents=True, exist_ok=True)
    build = {"shard_size": shard_size, "render": {"seconds": SECONDS, "sample_rate": SAMPLE_RATE}}
    (stage / "build.json").write_text(json.dumps(build), encoding="utf-8")
    manifest = [{"id": v.id, "name": v.name, "patch": dumps_compact(v.patch), "source_file": "fixture.syx",
                 "source_index": i, "n_occurrences": 1, "caption": v.caption, "caption_source": v.caption_source}
                for i, v in enumerate(voices)]
    pq.write_table(pa.Table.from_pylist(manifest, schema=MANIFEST_SCHEMA), stage / "manifest.parquet")
    by_frames = {}
    for k in range(0, len(voices), shard_size):
        rows = []
        for i in range(k, min(k + shard_size, len(voices))):
            v = voices[i]
            rows.append(_render_row(v, 48, 0.25, evidence=False))  # a decoy: not the render to caption
            rows.append(_render_row(v, 60, release_for(i), evidence=evidence))
            frames = int(round(rows[-1]["duration_s"] * SAMPLE_RATE))
            assert frames not in by_frames and frames != int(round(rows[-2]["duration_s"] * SAMPLE_RATE))
            by_frames[frames] = i
        pq.write_table(pa.Table.from_pylist(rows, schema=RENDER_SCHEMA),
                       stage / "renders" / f"part-{k // shard_size:05d}.parquet")
    return by_frames


def write_captions(out: Path, captions: dict[str, str | None], voices: list[Voice], shard_size: int = 2) -> None:
    """Write captions parts (the contract's columns) giving each voice id its caption."""
    schema = pa.schema([("id", pa.string()), ("caption", pa.string()), ("caption_source", pa.string()),
                        ("caption_error", pa.string())])
    (out / "stage" / "captions").mkdir(parents=True, exist_ok=True)
    for k in range(0, len(voices), shard_size):
        rows = [{"id": v.id, "caption": captions.get(v.id), "caption_source": "fixture",
                 "caption_error": None if captions.get(v.id) else "no caption"} for v in voices[k:k + shard_size]]
        pq.write_table(pa.Table.from_pylist(rows, schema=schema),
                       out / "stage" / "captions" / f"part-{k // shard_size:05d}.parquet")


def wav_frames(b64: str) -> tuple[int, int, str]:
    """(frames, sample rate, format name) of a base64 audio file, read with soundfile."""
    import base64

    info = sf.info(io.BytesIO(base64.b64decode(b64)))
    return info.frames, info.samplerate, info.format


def silent_patch(patch: Patch) -> Patch:
    """The patch with every output level 0: it renders digital silence."""
    return patch.model_copy(update={"ol": [0] * 6})
