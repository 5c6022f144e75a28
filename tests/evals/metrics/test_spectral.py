"""The paired spectral distances in evals/metrics/spectral.py."""

from __future__ import annotations

import numpy as np
import pytest

from patchsmith.evals import distances
from patchsmith.evals.metrics import spectral

SR = 16000


def _tone(hz: float, seconds: float = 0.5, decay: float = 3.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return 0.5 * np.sin(2 * np.pi * hz * t) * np.exp(-decay * t)


def test_identical_signals_have_zero_distance():
    x = _tone(440)
    assert spectral.log_mel_distance(x, x, SR) == 0.0
    assert spectral.multiscale_stft_distance(x, x) == 0.0
    assert spectral.mfcc_distance(x, x, SR) == 0.0


def test_log_mel_distance_is_the_existing_evals_distance():
    a, b = _tone(440), _tone(660, seconds=0.6)
    assert spectral.log_mel_distance(a, b, SR) == distances.log_mel_distance_db(a, b, SR)


def test_distances_grow_with_the_difference():
    x = _tone(440)
    near, far = _tone(450), _tone(900)
    for fn in (lambda a, b: spectral.log_mel_distance(a, b, SR), spectral.multiscale_stft_distance,
               lambda a, b: spectral.mfcc_distance(a, b, SR)):
        assert 0.0 < fn(x, near) < fn(x, far)


def test_multiscale_stft_by_hand_for_one_scale():
    a, b = _tone(440), _tone(500)
    sa, sb = spectral.stft_magnitude(a, 256, 64), spectral.stft_magnitude(b, 256, 64)
    expected = np.mean(np.abs(sa - sb)) + np.mean(np.abs(np.log(sa + 1e-7) - np.log(sb + 1e-7)))
    assert spectral.multiscale_stft_distance(a, b, fft_sizes=(256,)) == pytest.approx(expected)
    # a pure gain of 2 moves the log term by log 2 in every bin well above the floor
    loud = spectral.multiscale_stft_distance(a, 2 * a, fft_sizes=(256,))
    assert loud > np.log(2) * 0.5


def test_mfcc_with_all_coefficients_preserves_log_mel_euclidean_distance():
    a, b = _tone(440), _tone(620)
    ma, mb = distances.log_mel_db(a, SR), distances.log_mel_db(b, SR)
    expected = float(np.mean(np.linalg.norm(ma - mb, axis=1)))  # the DCT is orthonormal
    assert spectral.mfcc_distance(a, b, SR, n_mfcc=128) == pytest.approx(expected, rel=1e-10)
    m = spectral._dct_matrix(128, 128)
    assert np.allclose(m @ m.T, np.eye(128), atol=1e-12)


def test_length_rules_silence_and_errors():
    x = _tone(440)
    padded = np.concatenate([x, np.zeros(4000)])
    assert spectral.multiscale_stft_distance(x, padded, length_rule="pad") == 0.0
    longer = np.concatenate([x, x])
    assert spectral.mfcc_distance(x, longer, SR, length_rule="truncate") == 0.0
    assert spectral.mfcc_distance(x, longer, SR, length_rule="pad") > 0.0
    silent = np.zeros_like(x)
    for v in (spectral.log_mel_distance(x, silent, SR), spectral.multiscale_stft_distance(x, silent),
              spectral.mfcc_distance(silent, silent, SR)):
        assert np.isfinite(v)
    with pytest.raises(ValueError, match="NaN"):
        spectral.mfcc_distance(x, np.full_like(x, np.nan), SR)
    with pytest.raises(ValueError, match="length_rule"):
        spectral.log_mel_distance(x, x, SR, length_rule="stretch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overlap"):
        spectral.multiscale_stft_distance(x, x, overlap=1.0)
    with pytest.raises(ValueError, match="n_mfcc"):
        spectral.mfcc(x, SR, n_mfcc=0)
