"""One render shard: every voice of manifest rows [k*S, (k+1)*S) at each note and velocity, described,
encoded as FLAC, optionally with operator evidence clips, written as ``OUT/stage/renders/part-k``.

Runs inside a worker process (or a Ray task): it reads the manifest slice itself and writes its
part itself, so that only a small summary travels back to the driver.

Transpose ``auto``: after the first render, a voice whose measured fundamental lies outside
55 Hz..1760 Hz (A1..A6) is played again whole octaves up or down so that it lands inside (within
MIDI 0..127); for a voice without a measurable pitch (noise, some bells, or a fundamental too low for
the clip) the sounding note (key + the voice's transpose) stands in for the fundamental. The row
keeps the requested ``note`` (and so its ``render_id``), and records ``played_note`` and ``note_shift``.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .executors import tick
from .stages import ErrorTally, part_path, shard_rows, write_atomic, write_part

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["RenderOptions", "ShardSummary", "render_shard", "render_part_schema", "encode_flac", "USEFUL_HZ"]

USEFUL_HZ = (55.0, 1760.0)  # A1..A6: the register "auto" transposes a voice into
PEAK_DBFS = -1.0  # FLAC audio is normalised to this peak; gain_db says by how much
HOLD_SHARE = 0.64  # of the clip the key is held (the source research: 6.4 s held in a ~10 s clip)


class RenderOptions(BaseModel):
    """The render settings of a build (stored in build.json; a resume must use the same)."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(10.0, gt=0, le=60)
    sample_rate: int = Field(48000, ge=16000, le=96000)
    notes: list[Annotated[int, Field(ge=0, le=127)]] = Field(default_factory=lambda: [60], min_length=1)
    velocities: list[Annotated[int, Field(ge=1, le=127)]] = Field(default_factory=lambda: [100], min_length=1)
    transpose: Literal["auto", "none"] = "none"
    evidence: list[Literal["off", "on"]] = Field(default_factory=list)
    evidence_seconds: float = Field(4.0, ge=0.1, le=30)
    audio: Literal["flac", "files"] = "flac"

    @field_validator("notes", "velocities", "evidence")
    @classmethod
    def _listed_once(cls, values: list[Any]) -> list[Any]:
        # A repeat would render the same render_id (or evidence column) twice.
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once; list each at most once")
        return values

    @property
    def hold_s(self) -> float:
        """Seconds the key is held; the rest of the clip is the release."""
        return round(self.seconds * HOLD_SHARE, 6)

    @property
    def release_s(self) -> float:
        """Seconds after note-off."""
        return round(self.seconds - self.hold_s, 6)


class ShardSummary(ErrorTally):
    """What one render shard did (travels back from the worker)."""

    shard: int
    voices: int = 0
    rows: int = 0


def render_part_schema(options: RenderOptions) -> "pa.Schema":
    """The columns of a renders part (the evidence ones only when evidence is on)."""
    import pyarrow as pa

    audio = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = [("id", pa.string()), ("render_id", pa.string()), ("note", pa.int64()), ("played_note", pa.int64()),
              ("note_shift", pa.int64()), ("velocity", pa.int64()), ("sample_rate", pa.int64()),
              ("duration_s", pa.float64()), ("gain_db", pa.float64()), ("audio", audio), ("descriptors", pa.string()),
              ("silent", pa.bool_()), ("error", pa.string())]
    for mode in options.evidence:
        fields += [(f"evidence_{mode}", audio), (f"evidence_{mode}_map", pa.string())]
    return pa.schema(fields)


def encode_flac(audio: np.ndarray, sample_rate: int) -> tuple[bytes, float]:
    """16-bit FLAC of the audio normalised to a -1 dBFS peak, and the gain applied in dB (0 for silence)."""
    import soundfile as sf

    from ...synth.wav import SILENCE_DBFS

    x = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    gain_db = 0.0
    if peak > 10.0 ** (SILENCE_DBFS / 20.0):  # silence stays silence: normalising would only amplify the noise floor
        gain = 10.0 ** (PEAK_DBFS / 20.0) / peak
        x = x * gain
        gain_db = round(20.0 * math.log10(gain), 4)
    else:
        x = np.zeros_like(x)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue(), gain_db


def _auto_shift(played: int, sounding: int, pitch_cents: float | None) -> int:
    """Semitones (whole octaves) that bring the fundamental (measured, else the sounding note's) into USEFUL_HZ."""
    f0 = 440.0 * 2.0 ** ((sounding - 69 + (pitch_cents or 0.0) / 100.0) / 12.0)
    lo, hi = USEFUL_HZ
    shift = 0
    if f0 < lo:
        shift = 12 * math.ceil(math.log2(lo / f0))
    elif f0 > hi:
        shift = -12 * math.ceil(math.log2(f0 / hi))
    while shift and not 0 <= played + shift <= 127:  # stay on the keyboard: give back an octave at a time
        shift -= 12 if shift > 0 else -12
    return shift


def _audio_ref(out_dir: Path, options: RenderOptions, name: str, data: bytes) -> dict[str, Any]:
    """The {bytes, path} struct of one clip: inline bytes, or a file under OUT/audio written atomically."""
    if options.audio == "flac":
        return {"bytes": data, "path": name}
    rel = Path("audio") / name[:2] / name
    write_atomic(out_dir / rel, lambda tmp: tmp.write_bytes(data))
    return {"bytes": None, "path": rel.as_posix()}


def _blank_row(voice_id: str, note: int, velocity: int, options: RenderOptions) -> dict[str, Any]:
    """A renders row with nothing rendered in it yet (what a voice that failed keeps, with its error)."""
    row: dict[str, Any] = {"id": voice_id, "render_id": f"{voice_id}-n{note}-v{velocity}", "note": note,
                           "played_note": note, "note_shift": 0, "velocity": velocity,
                           "sample_rate": options.sample_rate, "duration_s": 0.0, "gain_db": 0.0, "audio": None,
                           "descriptors": None, "silent": False, "error": None}
    for mode in options.evidence:
        row[f"evidence_{mode}"] = row[f"evidence_{mode}_map"] = None
    return row


def _render_voice(row: dict[str, Any], options: RenderOptions, out_dir: Path) -> list[dict]:
    from ...evals.descriptors import render_and_describe
    from ...schema.compact import loads_patch
    from ...synth.evidence import render_evidence

    patch = loads_patch(row["patch"])
    sr, hold, release = options.sample_rate, options.hold_s, options.release_s
    rows = []
    for note in options.notes:
        for velocity in options.velocities:
            out = _blank_row(row["id"], note, velocity, options)
            rid = out["render_id"]
            played = note
            audio, desc = render_and_describe(patch, played, velocity, hold, release, sr)
            shift = 0
            if options.transpose == "auto" and not desc.silent:
                shift = _auto_shift(played, min(127, max(0, played + patch.transpose)), desc.pitch_cents)
                if shift:
                    played = note + shift
                    audio, desc = render_and_describe(patch, played, velocity, hold, release, sr)
            flac, gain_db = encode_flac(audio, sr)
            out.update({"played_note": played, "note_shift": shift, "duration_s": round(audio.size / sr, 6),
                        "gain_db": gain_db, "audio": _audio_ref(out_dir, options, f"{rid}.flac", flac),
                        "descriptors": desc.model_dump_json(), "silent": bool(desc.silent)})
            for mode in options.evidence if not desc.silent else ():
                clip = render_evidence(patch, mode=mode, segment_s=options.evidence_seconds, note=played,
                                       velocity=velocity, hold_s=round(options.evidence_seconds * HOLD_SHARE, 6),
                                       sample_rate=sr, workers=1)
                data, _ = encode_flac(clip.audio, sr)
                out[f"evidence_{mode}"] = _audio_ref(out_dir, options, f"{rid}-evidence-{mode}.flac", data)
                out[f"evidence_{mode}_map"] = clip.model_dump_json()
            rows.append(out)
    return rows


def _error_rows(row: dict[str, Any], options: RenderOptions, message: str) -> list[dict]:
    return [_blank_row(row["id"], note, velocity, options) | {"error": message}
            for note in options.notes for velocity in options.velocities]


def render_shard(out_dir: str | Path, k: int, options: dict[str, Any] | RenderOptions) -> ShardSummary:
    """Render shard ``k`` of the build in ``out_dir`` and write its part (skipped when it exists)."""
    import pyarrow as pa

    out_dir = Path(out_dir)
    opts = options if isinstance(options, RenderOptions) else RenderOptions.model_validate(options)
    summary = ShardSummary(shard=k)
    path = part_path(out_dir, "renders", k)
    if path.is_file():  # another worker (or an earlier run) finished it
        return summary
    manifest = shard_rows(out_dir, k, ["id", "patch"]).to_pylist()
    rows: list[dict] = []
    for row in manifest:
        summary.voices += 1
        try:
            rows += _render_voice(row, opts, out_dir)
        except Exception as err:  # one bad voice must not lose the shard; it is reported and left out at merge
            message = f"{row['id']}: {type(err).__name__}: {err}"
            summary.add_error(message, keep=5)
            rows += _error_rows(row, opts, message)
        tick()  # one voice done: the progress bar moves per voice, not per shard
    write_part(path, pa.Table.from_pylist(rows, schema=render_part_schema(opts)))
    summary.rows = len(rows)
    return summary
