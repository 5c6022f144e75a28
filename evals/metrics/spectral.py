"""Cheap paired spectral distances between generated and reference audio (no weights, pure numpy).

- ``log_mel_distance``: mean |difference| in dB of 128-band log-mel spectrograms (``evals.distances``).
- ``multiscale_stft_distance``: the DDSP/DDX7 multi-scale spectral loss: for FFT sizes 2048..64 with 75 %
  overlap, mean |S_a - S_b| + mean |log S_a - log S_b| of STFT magnitudes, summed over the sizes.
- ``mfcc_distance``: mean Euclidean distance between MFCC frames (DCT-II of the log-mel dB), 20 coefficients.

Signals of different lengths are cut to the shorter (``length_rule='truncate'``, as ``evals.distances``)
or zero-padded to the longer (``'pad'``, a duration error costs). Lower is better for all three.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, Sequence

import numpy as np

from .. import distances
from . import core

MSS_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
MSS_EPS = 1e-7


def _pair(a: np.ndarray, b: np.ndarray, length_rule: Literal["truncate", "pad"]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("audio contains NaN or infinite samples")
    return core.match_lengths(x, y, length_rule)


def log_mel_distance(a: np.ndarray, b: np.ndarray, sample_rate: int,
                     length_rule: Literal["truncate", "pad"] = "truncate") -> float:
    """Mean absolute log-mel difference in dB (128 bands, frame 2048, hop 512)."""
    x, y = _pair(a, b, length_rule)
    return distances.log_mel_distance_db(x, y, sample_rate)


def stft_magnitude(x: np.ndarray, n_fft: int, hop: int | None = None) -> np.ndarray:
    """Hann-windowed STFT magnitudes, shape (frames, n_fft // 2 + 1); hop defaults to n_fft // 4."""
    hop = hop or max(1, n_fft // 4)
    return np.abs(np.fft.rfft(distances._frames(x, n_fft, hop) * np.hanning(n_fft), axis=1))


def multiscale_stft_distance(a: np.ndarray, b: np.ndarray, fft_sizes: Sequence[int] = MSS_FFT_SIZES,
                             overlap: float = 0.75, length_rule: Literal["truncate", "pad"] = "truncate") -> float:
    """Multi-scale spectral distance: sum over FFT sizes of mean|S_a-S_b| + mean|log S_a - log S_b|."""
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if not fft_sizes or any(int(n) < 2 for n in fft_sizes):
        raise ValueError(f"fft_sizes must be a non-empty list of sizes >= 2, got {list(fft_sizes)}")
    x, y = _pair(a, b, length_rule)
    total = 0.0
    for n in fft_sizes:
        hop = max(1, int(round(int(n) * (1.0 - overlap))))
        sx, sy = stft_magnitude(x, int(n), hop), stft_magnitude(y, int(n), hop)
        total += float(np.mean(np.abs(sx - sy))) + float(np.mean(np.abs(np.log(sx + MSS_EPS) - np.log(sy + MSS_EPS))))
    return total


@lru_cache(maxsize=8)
def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    # Orthonormal DCT-II rows: the usual MFCC transform of the log-mel bands.
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return m


def mfcc(x: np.ndarray, sample_rate: int, n_mfcc: int = 20, n_mels: int = 128, frame: int = 2048,
         hop: int = 512) -> np.ndarray:
    """MFCC frames (frames, n_mfcc): orthonormal DCT-II of the log-mel spectrogram in dB."""
    if not 1 <= n_mfcc <= n_mels:
        raise ValueError(f"n_mfcc must be in [1, n_mels={n_mels}], got {n_mfcc}")
    mel = distances.log_mel_db(np.asarray(x, dtype=np.float64), sample_rate, frame, hop, n_mels)
    return mel @ _dct_matrix(n_mels, n_mfcc).T


def mfcc_distance(a: np.ndarray, b: np.ndarray, sample_rate: int, n_mfcc: int = 20,
                  length_rule: Literal["truncate", "pad"] = "truncate") -> float:
    """Mean Euclidean distance between corresponding MFCC frames of two signals."""
    x, y = _pair(a, b, length_rule)
    ma, mb = mfcc(x, sample_rate, n_mfcc), mfcc(y, sample_rate, n_mfcc)
    return float(np.mean(np.linalg.norm(ma - mb, axis=1)))
