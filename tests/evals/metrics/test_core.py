"""Known-answer checks of the metric math in evals/metrics/core.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from patchsmith.evals.metrics import core
from patchsmith.evals.metrics.core import MetricInputError


def _rotation(d: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


# ------------------------------------------------------------------ FAD

def test_frechet_distance_closed_form_diagonal_and_rotated():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    # ||dmu||^2 = 1 + 0 + 4; trace term for commuting covariances = sum (sqrt a - sqrt b)^2 = 1 + 0 + 4
    assert core.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(10.0, abs=1e-10)
    q = _rotation(3, 1)  # a common rotation changes nothing
    assert core.frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T) == \
        pytest.approx(10.0, abs=1e-9)


def test_frechet_distance_non_commuting_matches_sqrtm_formula():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((5, 5)), rng.standard_normal((5, 5))
    s1, s2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    expected = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    assert core.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_fad_of_samples_approaches_the_gaussian_closed_form():
    rng = np.random.default_rng(0)
    n, shift = 40000, np.array([0.6, 0.0, -0.3, 0.0])
    x = rng.standard_normal((n, 4))
    y = rng.standard_normal((n, 4)) * np.array([1.0, 2.0, 1.0, 0.5]) + shift
    # mean shift 0.45, trace term (1-1)^2 + (1-2)^2 + 0 + (1-0.5)^2 = 1.25
    assert core.fad(x, y) == pytest.approx(0.45 + 1.25, abs=0.05)
    # same distribution, large N: the c/N bias is small
    assert core.fad(x, rng.standard_normal((n, 4))) < 0.01


def test_fad_of_a_set_with_itself_is_zero_and_rank_deficient_sets_work():
    x = np.random.default_rng(1).standard_normal((50, 8))
    assert core.fad(x, x) == pytest.approx(0.0, abs=1e-9)
    wide = np.random.default_rng(2).standard_normal((10, 64))  # N < d: singular covariances
    assert core.fad(wide, wide) == pytest.approx(0.0, abs=1e-8)
    assert np.isfinite(core.fad(wide, wide + 1.0)) and core.fad(wide, wide + 1.0) == pytest.approx(64.0, rel=1e-9)


def test_fad_rejects_bad_input():
    x = np.zeros((5, 3))
    with pytest.raises(MetricInputError, match="at least 2 rows"):
        core.fad(x[:1], x)
    with pytest.raises(MetricInputError, match="dims"):
        core.fad(x, np.zeros((5, 4)))
    y = x.copy()
    y[0, 0] = np.nan
    with pytest.raises(MetricInputError, match="NaN"):
        core.fad(x, y)


# ------------------------------------------------------------------ KAD

def _kad_brute(x: np.ndarray, y: np.ndarray, sigma: float, scale: float = 100.0) -> float:
    k = lambda a, b: math.exp(-float(np.sum((a - b) ** 2)) / (2 * sigma * sigma + 1e-8))  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return scale * (xx + yy - 2 * xy)


def test_kad_with_fixed_bandwidth_equals_the_double_loop():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((9, 5)) + 0.5
    for sigma in (0.7, 2.0, 5.0):
        assert core.kad(x, y, bandwidth=sigma) == pytest.approx(_kad_brute(x, y, sigma), rel=1e-10, abs=1e-12)
    assert core.kad(x, y, bandwidth=2.0, scale=1000.0) == pytest.approx(10 * core.kad(x, y, bandwidth=2.0))


def test_kad_same_distribution_is_centred_on_zero_and_can_be_negative():
    rng = np.random.default_rng(5)
    vals = [core.kad(rng.standard_normal((40, 16)), rng.standard_normal((40, 16))) for _ in range(30)]
    assert abs(float(np.mean(vals))) < 3 * float(np.std(vals)) / math.sqrt(len(vals)) + 0.05
    assert min(vals) < 0.0  # unbiased estimator: negative values are expected near zero
    shifted = core.kad(rng.standard_normal((40, 16)), rng.standard_normal((40, 16)) + 1.0)
    assert shifted > max(vals)


def test_kad_bandwidth_rules():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((10, 3)), 3.0 * rng.standard_normal((11, 3))
    d_y = np.sort([np.linalg.norm(y[i] - y[j]) for i in range(11) for j in range(i + 1, 11)])
    assert core.kad_bandwidth(x, y, "eval") == pytest.approx(d_y[(len(d_y) - 1) // 2])  # lower median (torch)
    assert core.median_pairwise_distance(y, rule="mean") == pytest.approx(float(np.median(d_y)))
    assert core.kad(x, y) == pytest.approx(core.kad(x, y, bandwidth=core.kad_bandwidth(x, y, "eval")))
    sigma_ref = core.kad_bandwidth(x, y, "ref")
    assert core.kad(x, y, bandwidth_from="ref") == pytest.approx(core.kad(x, y, bandwidth=sigma_ref))
    assert core.kad(x, y, bandwidth_from="ref") != pytest.approx(core.kad(x, y))  # asymmetric via sigma
    with pytest.raises(MetricInputError, match="bandwidth_from"):
        core.kad(x, y, bandwidth_from="both")  # type: ignore[arg-type]


def test_kad_even_number_of_distances_uses_the_lower_middle():
    pts = np.array([[0.0], [1.0], [3.0], [7.0]])  # distances 1,3,7,2,6,4 -> sorted 1,2,3,4,6,7
    assert core.median_pairwise_distance(pts) == 3.0
    assert core.median_pairwise_distance(pts, rule="mean") == 3.5


# ------------------------------------------------------------------ KL

def test_kl_hand_made_values_direction_and_asymmetry():
    p, q = np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]])
    expected = 0.5 * math.log(0.5 / (0.25 + 1e-6)) + 0.5 * math.log(0.5 / (0.75 + 1e-6))
    assert core.kl(p, q) == pytest.approx(expected, rel=1e-12)
    reverse = 0.25 * math.log(0.25 / (0.5 + 1e-6)) + 0.75 * math.log(0.75 / (0.5 + 1e-6))
    assert core.kl(q, p) == pytest.approx(reverse, rel=1e-12)
    assert core.kl(p, q) != pytest.approx(core.kl(q, p))
    assert core.kl(p, p) == pytest.approx(0.0, abs=1e-5)  # only the eps remains
    # a class the reference gives no mass contributes nothing (0 log 0 = 0)
    assert core.kl(np.array([[1.0, 0.0]]), np.array([[0.5, 0.5]])) == pytest.approx(math.log(1 / (0.5 + 1e-6)))


def test_kl_matches_torch_kl_div_semantics():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    lr, lg = rng.standard_normal((6, 527)), rng.standard_normal((6, 527))
    p, q = core.softmax(lr), core.softmax(lg)
    ours = core.kl_from_logits(lr, lg)
    tp, tq = torch.tensor(p), torch.tensor(q)
    theirs = torch.nn.functional.kl_div((tq + 1e-6).log(), tp, reduction="none").sum(-1).numpy()
    assert np.allclose(ours, theirs, atol=1e-12)
    assert core.kl(p, q) == pytest.approx(float(theirs.mean()))


def test_kl_rejects_bad_shapes_and_negative_probabilities():
    with pytest.raises(MetricInputError, match="shape"):
        core.kl(np.ones((2, 3)) / 3, np.ones((2, 4)) / 4)
    with pytest.raises(MetricInputError, match=">= 0"):
        core.kl(np.array([[1.5, -0.5]]), np.array([[0.5, 0.5]]))


# ------------------------------------------------------------------ cosines, timbral error, RMS

def test_cosines():
    a = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    b = np.array([[2.0, 4.0, 6.0], [0.0, -1.0, 0.0], [1.0, 1.0, 1.0]])
    assert np.allclose(core.cosine_per_pair(a, b), [1.0, 0.0, 0.0])
    assert core.cosine_per_pair(a[:1], -a[:1])[0] == pytest.approx(-1.0)
    assert core.mean_cosine(a, b) == pytest.approx(1 / 3)


def test_timbral_error():
    ref = {k: 50.0 for k in core.TIMBRAL_ATTRIBUTES}
    assert core.timbral_error(ref, dict(ref)) == 0.0
    gen = dict(ref, hardness=64.0, depth=-20.0)  # depth clips to 0: errors 14 and 50 over 7 attributes
    assert core.timbral_error(ref, gen) == pytest.approx((14 + 50) / 7 / 100)
    assert core.timbral_error(ref, gen, clip=False) == pytest.approx((14 + 70) / 7 / 100)
    with pytest.raises(MetricInputError, match="missing"):
        core.timbral_error(ref, {"hardness": 1.0})


def _note(sr: int = 16000, seconds: float = 1.0, decay: float = 4.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return np.sin(2 * np.pi * 220 * t) * np.exp(-decay * t)


def test_rms_cosine_identity_level_invariance_silence_and_length_rules():
    x = _note()
    assert core.rms_cosine(x, x) == pytest.approx(1.0)
    assert core.rms_cosine(x, 0.1 * x) == pytest.approx(1.0)
    assert core.rms_cosine(x, np.zeros_like(x)) == 0.0
    assert core.rms_cosine(np.zeros(10), np.zeros(10)) == 0.0
    assert 0.0 < core.rms_cosine(x, _note(decay=0.5)) < 1.0
    trailing_silence = np.concatenate([x, np.zeros(5000)])
    assert core.rms_cosine(x, trailing_silence, length_rule="pad") == pytest.approx(1.0, abs=1e-4)
    longer = np.concatenate([x, x])
    truncated = core.rms_cosine(x, longer, length_rule="truncate")
    assert truncated > 0.9
    assert core.rms_cosine(x, longer, length_rule="pad") < truncated - 0.05  # a duration error costs
    with pytest.raises(MetricInputError, match="NaN"):
        core.rms_cosine(x, np.full(10, np.nan))


def test_rms_envelope_equals_librosa_centered_rms():
    librosa = pytest.importorskip("librosa")
    x = _note(seconds=0.77) + 0.01 * np.random.default_rng(0).standard_normal(int(16000 * 0.77))
    ref = librosa.feature.rms(y=x, frame_length=2048, hop_length=512, center=True, pad_mode="constant")[0]
    assert np.allclose(core.rms_envelope_centered(x), ref, rtol=1e-6, atol=1e-9)


def test_fad_routes_agree_when_items_are_fewer_than_dimensions():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((12, 40)), 1.5 * rng.standard_normal((15, 40)) + 0.2
    via_covariances = core.frechet_distance(*core.gaussian_stats(x), *core.gaussian_stats(y))
    assert core.fad(x, y) == pytest.approx(via_covariances, rel=1e-6)  # fad takes the nuclear-norm route here
    # the reference note's simulation: same distribution, d=512, N=100, 1/k spectrum -> FAD about 4.4 (bias)
    scales = 1.0 / np.sqrt(np.arange(1, 513))
    vals = [core.fad(rng.standard_normal((100, 512)) * scales, rng.standard_normal((100, 512)) * scales)
            for _ in range(3)]
    assert 4.0 < float(np.mean(vals)) < 4.8
