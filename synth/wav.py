"""WAV files through soundfile, with an explicit gain policy and atomic writes.

The engine's units are 1.0 = one full-scale carrier, so a patch with several carriers can peak
above 1.0. Nothing here clips silently: ``gain="peak"`` scales the audio so that its peak sits at
``peak_dbfs``; ``gain="raw"`` writes the engine's numbers unchanged, which is lossless as 32-bit
float and an error, not clipping, when a PCM file cannot hold them.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

GainPolicy = Literal["peak", "raw"]
Subtype = Literal["PCM_16", "PCM_24", "FLOAT"]
GAIN_POLICIES: tuple[str, ...] = ("peak", "raw")
SUBTYPES: tuple[str, ...] = ("PCM_16", "PCM_24", "FLOAT")
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768000
# Below this peak the audio counts as silence (the same threshold as evals' basic descriptors):
# normalising it would only amplify the engine's noise floor, so silence stays silence.
SILENCE_DBFS = -90.0
MIN_PEAK_DBFS = -60.0


class WavError(ValueError):
    """Audio that cannot be written (or a file that cannot be read) as asked; the message says why."""


@dataclass(frozen=True)
class WavInfo:
    """What ``write_wav`` wrote: where, in which format, and the gain it applied."""

    path: Path
    sample_rate: int
    frames: int
    channels: int
    subtype: str
    gain: str
    gain_db: float  # applied gain (0.0 for raw, and for silence under "peak")
    source_peak_dbfs: float  # peak of the audio handed in, in engine units (-inf for digital silence)
    written_peak_dbfs: float  # peak of the samples written

    @property
    def duration_s(self) -> float:
        """Length of the file in seconds."""
        return self.frames / self.sample_rate


def created_mode(base: int = 0o666) -> int:
    """The permissions a newly created file (0o666) or folder (0o777) gets under the current umask."""
    # mkstemp/mkdtemp create private (0600/0700) entries; the renamed result should look like any new file.
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0.0 else float("-inf")


def _check_audio(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio)
    if x.dtype.kind not in "fiu":
        raise WavError(f"audio: found an array of {x.dtype}, allowed a float array (engine units)")
    x = x.astype(np.float64)
    if x.ndim not in (1, 2) or x.size == 0:
        raise WavError(f"audio: found shape {x.shape}, allowed a non-empty mono (n,) or (n, channels) array")
    if not np.all(np.isfinite(x)):
        raise WavError("audio: contains NaN or infinite samples, which no WAV file can hold")
    return x


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int, gain: GainPolicy = "peak",
              peak_dbfs: float = -1.0, subtype: Subtype = "PCM_16") -> WavInfo:
    """Write ``audio`` (engine units) as a WAV file under the chosen gain policy, atomically."""
    if gain not in GAIN_POLICIES:
        raise WavError(f"gain: found {gain!r}, allowed one of {', '.join(map(repr, GAIN_POLICIES))}")
    if subtype not in SUBTYPES:
        raise WavError(f"subtype: found {subtype!r}, allowed one of {', '.join(map(repr, SUBTYPES))}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or not (
            MIN_SAMPLE_RATE <= int(sample_rate) <= MAX_SAMPLE_RATE):
        raise WavError(f"sample_rate: found {sample_rate!r}, allowed integer {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}")
    if isinstance(peak_dbfs, bool) or not isinstance(peak_dbfs, (int, float)) or not (
            MIN_PEAK_DBFS <= float(peak_dbfs) <= 0.0):
        raise WavError(f"peak_dbfs: found {peak_dbfs!r}, allowed a number {MIN_PEAK_DBFS:g}..0 (dB re full scale)")
    x = _check_audio(audio)
    peak = float(np.max(np.abs(x)))
    gain_db = 0.0
    if gain == "peak" and _db(peak) > SILENCE_DBFS:
        target = 10.0 ** (float(peak_dbfs) / 20.0)
        x = x * (target / peak)
        gain_db = _db(target / peak)
    elif gain == "raw" and subtype != "FLOAT" and peak > 1.0:
        raise WavError(
            f"the audio peaks at {_db(peak):+.2f} dBFS ({peak:.3f} in engine units), above the full scale of a "
            f"{subtype} file; it would clip. Use gain=\"peak\" to normalise it, or subtype \"FLOAT\" to keep "
            "the engine's units losslessly")
    written_peak = float(np.max(np.abs(x)))
    target_path = Path(path)
    folder = target_path.parent
    if not folder.is_dir():
        raise WavError(f"{target_path}: the folder {folder} does not exist")
    # Write beside the target and rename over it, so that a failure never leaves a partial file.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target_path.name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        data = x.astype(np.float32) if subtype == "FLOAT" else x
        sf.write(tmp_name, data, int(sample_rate), subtype=subtype, format="WAV")
        os.chmod(tmp_name, created_mode())
        os.replace(tmp_name, target_path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return WavInfo(path=target_path, sample_rate=int(sample_rate), frames=int(x.shape[0]),
                   channels=1 if x.ndim == 1 else int(x.shape[1]), subtype=subtype, gain=gain,
                   gain_db=round(gain_db, 4), source_peak_dbfs=_db(peak), written_peak_dbfs=_db(written_peak))


def read_wav(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """The samples (float32; mono as (n,), else (n, channels)) and sample rate of an audio file."""
    p = Path(path)
    if not p.is_file():
        raise WavError(f"{p}: no such file")
    try:
        audio, sr = sf.read(str(p), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise WavError(f"{p}: not a readable audio file ({err})") from None
    return audio, int(sr)
