"""The offline default embedding: log-mel statistics (no weights, deterministic, numpy + scipy resampling).

Each clip is resampled to 32 kHz (PaSST's rate, so the same audio path is exercised), turned into a
128-band log-mel spectrogram in dB (n_fft 1024, hop 320, ``evals.distances.log_mel_db``), and summarised
as the per-band mean and standard deviation over frames, plus the same two for the frame-to-frame
difference (delta): a 512-d clip vector. Numbers from it are never comparable with PaSST or CLAP numbers.

The features are in dB on purpose (no standardisation: a fixed, data-independent definition), so FAD
over them is in dB² summed over 512 features: per-band spreads of 4-20 dB put ``fad[logmel-stats]`` in
the tens of thousands on real runs (50 dev-v1 items: 43,489, of which 28,270 is the squared mean shift,
mostly band levels, and roughly 7,000 the small-N bias that same-distribution halves show). Compare it
only between runs at equal N; KAD's median-distance bandwidth makes ``kad[logmel-stats]`` scale-free.
"""

from __future__ import annotations

import numpy as np

from .. import distances
from .backends import AudioEmbedder, BackendInfo, ClipMemo, resample

LOGMEL_VERSION = "1"  # bump when the feature definition changes: it is part of every result's identity
# The CLAP and KL stubs and the FAD/KAD embedder all start from these features (each its own instance):
# one memo for all of them computes each clip once.
_memo = ClipMemo(512)


class LogMelStats(AudioEmbedder):
    """512-d clip embedding: per-band mean/std of 128-band log-mel dB and of its delta, at 32 kHz."""

    def __init__(self, sample_rate: int = 32000, n_fft: int = 1024, hop: int = 320, n_mels: int = 128) -> None:
        if sample_rate <= 0 or n_fft <= 0 or hop <= 0 or n_mels <= 0:
            raise ValueError("sample_rate, n_fft, hop and n_mels must all be > 0")
        self.sample_rate, self.n_fft, self.hop, self.n_mels = int(sample_rate), int(n_fft), int(hop), int(n_mels)
        self.info = BackendInfo(
            id="logmel-stats", family="logmel", kind="offline", version=LOGMEL_VERSION, sample_rate=self.sample_rate,
            config={"n_fft": str(n_fft), "hop": str(hop), "n_mels": str(n_mels), "stats": "mean,std,dmean,dstd",
                    "padding": "none"})

    @property
    def dim(self) -> int:
        """Embedding dimension (4 x n_mels)."""
        return 4 * self.n_mels

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """One (1, 4*n_mels) row for a clip; silence gives the -100 dB floor's statistics, not NaN."""
        return _memo.get(audio, sample_rate, lambda x: self._compute(x, sample_rate),
                         settings=(self.sample_rate, self.n_fft, self.hop, self.n_mels))

    def _compute(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        x = resample(audio, sample_rate, self.sample_rate)
        mel = distances.log_mel_db(x, self.sample_rate, frame=self.n_fft, hop=self.hop, n_mels=self.n_mels)
        delta = np.diff(mel, axis=0) if mel.shape[0] > 1 else np.zeros_like(mel)
        row = np.concatenate([mel.mean(axis=0), mel.std(axis=0), delta.mean(axis=0), delta.std(axis=0)])
        return row[None, :]
