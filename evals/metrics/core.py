"""The metric math as pure numpy: FAD, KAD, KL, cosines, timbral error, RMS-envelope cosine.

No model imports here: backends turn audio into embeddings, logits or attributes, and these
functions turn arrays into numbers. Everything is computed in float64. Definitions follow
``shared/reference/metrics.md`` §1 (and kadtk / audiocraft for the published conventions):

- FAD: ``||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))`` with ``np.cov`` (ddof=1); the trace of
  the matrix square root is taken in the symmetric form ``sum sqrt(eig(S_r^(1/2) S_g S_r^(1/2)))``, or,
  with fewer items than dimensions, as the nuclear norm of the centred cross-Gram matrix (same value).
- KAD: unbiased squared MMD with a Gaussian kernel ``exp(-d^2 / (2 sigma^2 + 1e-8))``, times 100, sigma the
  median pairwise Euclidean distance of one set (kadtk: the lower median, as ``torch.median``).
- KL: ``sum_c p_ref (log p_ref - log(p_gen + 1e-6))`` per pair, i.e. KL(reference || generated).
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from .. import distances

KAD_SCALE = 100.0  # kadtk SCALE_FACTOR since 2025-02-26 (it was 1000 before)
KAD_EPS = 1e-8  # kadtk: gamma = 1 / (2 sigma^2 + eps)
KL_EPS = 1e-6  # audiocraft / audioldm_eval: log(p_gen + 1e-6)
TIMBRAL_ATTRIBUTES = ("hardness", "depth", "brightness", "roughness", "warmth", "sharpness", "boominess")

BandwidthFrom = Literal["eval", "ref", "pooled"]
LengthRule = Literal["pad", "truncate"]


class MetricInputError(ValueError):
    """Raised when arrays given to a metric have the wrong shape or non-finite values."""


def _matrix(x: np.ndarray | Sequence, name: str, min_rows: int = 1) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise MetricInputError(f"{name}: expected a 2-D array (items, dims), got shape {a.shape}")
    if a.shape[0] < min_rows:
        raise MetricInputError(f"{name}: needs at least {min_rows} rows, got {a.shape[0]}")
    if a.shape[1] == 0:
        raise MetricInputError(f"{name}: has zero dimensions")
    if not np.all(np.isfinite(a)):
        raise MetricInputError(f"{name}: contains NaN or infinite values")
    return a


def _same_dims(a: np.ndarray, b: np.ndarray, na: str, nb: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise MetricInputError(f"{na} has {a.shape[1]} dims but {nb} has {b.shape[1]}")


# ---------------------------------------------------------------- FAD

def gaussian_stats(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample mean and covariance (ddof=1, rows are embeddings) of an embedding set."""
    e = _matrix(emb, "embeddings", min_rows=2)
    return e.mean(axis=0), np.atleast_2d(np.cov(e, rowvar=False))


def _round_off_to_zero(w: np.ndarray) -> np.ndarray:
    # Eigenvalues below the round-off level of the largest are zero: with N < d (PaSST: 1295-d, 100 clips)
    # most are, and the square root would turn their 1e-16 noise into 1e-8 each.
    tol = (float(np.max(np.abs(w))) if w.size else 0.0) * w.size * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2.0)
    return (v * np.sqrt(_round_off_to_zero(w))) @ v.T


def frechet_distance(mu_r: np.ndarray, cov_r: np.ndarray, mu_g: np.ndarray, cov_g: np.ndarray) -> float:
    """Fréchet distance of two Gaussians given by mean and covariance (symmetric, eigh-based square root)."""
    mu_r, mu_g = np.asarray(mu_r, np.float64), np.asarray(mu_g, np.float64)
    cov_r, cov_g = np.atleast_2d(np.asarray(cov_r, np.float64)), np.atleast_2d(np.asarray(cov_g, np.float64))
    if mu_r.shape != mu_g.shape or cov_r.shape != cov_g.shape or cov_r.shape != (mu_r.size, mu_r.size):
        raise MetricInputError(f"shape mismatch: means {mu_r.shape}/{mu_g.shape}, "
                               f"covariances {cov_r.shape}/{cov_g.shape}")
    root_r = _psd_sqrt(cov_r)
    m = root_r @ cov_g @ root_r
    # Tr((S_r S_g)^(1/2)) = sum of square roots of the eigenvalues of S_r^(1/2) S_g S_r^(1/2), which is
    # symmetric PSD: no complex parts, no sqrtm warnings, negatives are round-off and are clipped.
    lam = _round_off_to_zero(np.linalg.eigvalsh((m + m.T) / 2.0))
    diff = mu_r - mu_g
    value = float(diff @ diff + np.trace(cov_r) + np.trace(cov_g) - 2.0 * np.sum(np.sqrt(lam)))
    return max(value, 0.0)  # a squared Wasserstein-2 distance: a negative value is only round-off


def fad(emb_ref: np.ndarray, emb_gen: np.ndarray) -> float:
    """Fréchet Audio Distance between a reference and a generated embedding set (rows = items)."""
    r = _matrix(emb_ref, "emb_ref", min_rows=2)
    g = _matrix(emb_gen, "emb_gen", min_rows=2)
    _same_dims(r, g, "emb_ref", "emb_gen")
    n, m, d = r.shape[0], g.shape[0], r.shape[1]
    if n * m * min(n, m) >= d ** 3:
        return frechet_distance(*gaussian_stats(r), *gaussian_stats(g))
    # Fewer items than dimensions (PaSST: 1295-d, 100 clips). With centred rows X, Y the covariances are
    # X'X/(n-1) and Y'Y/(m-1), and the eigenvalues of S_r^(1/2) S_g S_r^(1/2) are the squared singular values
    # of Y X' / sqrt((n-1)(m-1)): the trace term is that matrix's nuclear norm. Exact, O(nm min(n,m)) instead
    # of O(d^3), and no square roots of round-off eigenvalues.
    mu_r, mu_g = r.mean(axis=0), g.mean(axis=0)
    x, y = r - mu_r, g - mu_g
    cross = float(np.sum(np.linalg.svd(y @ x.T, compute_uv=False))) / np.sqrt((n - 1) * (m - 1))
    diff = mu_r - mu_g
    value = float(diff @ diff + np.sum(x * x) / (n - 1) + np.sum(y * y) / (m - 1) - 2.0 * cross)
    return max(value, 0.0)


# ---------------------------------------------------------------- KAD

def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # The expansion kadtk uses; clipped at 0 because round-off can make a self-distance slightly negative.
    d2 = np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.clip(d2, 0.0, None)


def gaussian_kernel(a: np.ndarray, b: np.ndarray, sigma: float) -> np.ndarray:
    """kadtk's Gaussian kernel matrix ``exp(-||a_i - b_j||^2 / (2 sigma^2 + eps))`` between the rows of a and b."""
    return np.exp(-_sq_dists(a, b) / (2.0 * sigma * sigma + KAD_EPS))


def median_pairwise_distance(x: np.ndarray, rule: Literal["lower", "mean"] = "lower") -> float:
    """Median of the pairwise Euclidean distances i<j of a set; ``lower`` = the lower middle value (torch.median)."""
    a = _matrix(x, "x", min_rows=2)
    iu = np.triu_indices(a.shape[0], k=1)
    d = np.sqrt(np.sum((a[iu[0]] - a[iu[1]]) ** 2, axis=1))  # direct differences: exact like torch.pdist
    if rule == "mean":
        return float(np.median(d))
    if rule != "lower":
        raise MetricInputError(f"median rule must be 'lower' or 'mean', got {rule!r}")
    return float(np.sort(d)[(d.size - 1) // 2])


def kad_bandwidth(emb_ref: np.ndarray, emb_gen: np.ndarray, bandwidth_from: BandwidthFrom = "eval") -> float:
    """The kernel bandwidth sigma kadtk would use: the median pairwise distance of the chosen set."""
    if bandwidth_from == "eval":
        return median_pairwise_distance(emb_gen)
    if bandwidth_from == "ref":
        return median_pairwise_distance(emb_ref)
    if bandwidth_from == "pooled":
        return median_pairwise_distance(np.vstack([np.asarray(emb_ref, float), np.asarray(emb_gen, float)]))
    raise MetricInputError(f"bandwidth_from must be 'eval', 'ref' or 'pooled', got {bandwidth_from!r}")


def kad(emb_ref: np.ndarray, emb_gen: np.ndarray, bandwidth: float | None = None,
        bandwidth_from: BandwidthFrom = "eval", scale: float = KAD_SCALE) -> float:
    """Kernel Audio Distance: unbiased Gaussian-kernel MMD^2 times ``scale`` (may be slightly negative)."""
    x = _matrix(emb_ref, "emb_ref", min_rows=2)
    y = _matrix(emb_gen, "emb_gen", min_rows=2)
    _same_dims(x, y, "emb_ref", "emb_gen")
    sigma = kad_bandwidth(x, y, bandwidth_from) if bandwidth is None else float(bandwidth)
    if not np.isfinite(sigma) or sigma < 0:
        raise MetricInputError(f"bandwidth must be a finite number >= 0, got {sigma}")
    m, n = x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = gaussian_kernel(x, x, sigma), gaussian_kernel(y, y, sigma), gaussian_kernel(x, y, sigma)
    # Unbiased: the diagonals k(x_i, x_i) = 1 are left out of the within-set means.
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(scale * (xx + yy - 2.0 * k_xy.mean()))


# ---------------------------------------------------------------- KL

def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis``."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def kl_per_pair(p_ref: np.ndarray, p_gen: np.ndarray, eps: float = KL_EPS) -> np.ndarray:
    """KL(reference || generated) of each row pair: sum p_ref (log p_ref - log(p_gen + eps)); 0 log 0 = 0."""
    p = _matrix(p_ref, "p_ref")
    q = _matrix(p_gen, "p_gen")
    if p.shape != q.shape:
        raise MetricInputError(f"p_ref has shape {p.shape} but p_gen has {q.shape}")
    if np.any(p < 0) or np.any(q < 0):
        raise MetricInputError("probabilities must be >= 0")
    # torch.nn.functional.kl_div(log q, p) uses xlogy semantics: terms with p = 0 contribute 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        logp = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.sum(p * logp - p * np.log(q + eps), axis=1)


def kl(p_ref: np.ndarray, p_gen: np.ndarray, eps: float = KL_EPS) -> float:
    """Mean over pairs of KL(reference || generated) (audiocraft's ``kld``)."""
    return float(np.mean(kl_per_pair(p_ref, p_gen, eps)))


def kl_from_logits(logits_ref: np.ndarray, logits_gen: np.ndarray, eps: float = KL_EPS) -> np.ndarray:
    """Per-pair KL(reference || generated) of softmax distributions over classifier logits."""
    return kl_per_pair(softmax(_matrix(logits_ref, "logits_ref")), softmax(_matrix(logits_gen, "logits_gen")), eps)


# ---------------------------------------------------------------- cosines

def cosine_per_pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two equal-shape matrices; 0.0 for a row pair where either is zero."""
    x = _matrix(a, "a")
    y = _matrix(b, "b")
    if x.shape != y.shape:
        raise MetricInputError(f"a has shape {x.shape} but b has {y.shape}")
    nx, ny = np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1)
    ok = (nx > 0) & (ny > 0)
    out = np.zeros(x.shape[0])
    out[ok] = np.sum(x[ok] * y[ok], axis=1) / (nx[ok] * ny[ok])
    return np.clip(out, -1.0, 1.0)


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean row-wise cosine similarity (the CLAP score when a = text and b = audio embeddings)."""
    return float(np.mean(cosine_per_pair(a, b)))


# ---------------------------------------------------------------- AC (timbral attributes)

def timbral_error(attrs_ref: dict[str, float], attrs_gen: dict[str, float],
                  attributes: Sequence[str] = TIMBRAL_ATTRIBUTES, clip: bool = True, norm: float = 100.0) -> float:
    """Mean absolute error over the timbral attributes (clipped to [0, 100] when ``clip``) divided by ``norm``."""
    if not attributes:
        raise MetricInputError("timbral_error needs at least one attribute")
    if norm <= 0:
        raise MetricInputError(f"norm must be > 0, got {norm}")
    missing = [k for k in attributes if k not in attrs_ref or k not in attrs_gen]
    if missing:
        raise MetricInputError(f"missing timbral attributes {missing}; allowed/needed: {list(attributes)}")
    r = np.array([float(attrs_ref[k]) for k in attributes])
    g = np.array([float(attrs_gen[k]) for k in attributes])
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(g))):
        raise MetricInputError("timbral attributes contain NaN or infinite values")
    if clip:
        r, g = np.clip(r, 0.0, 100.0), np.clip(g, 0.0, 100.0)
    return float(np.mean(np.abs(r - g)) / norm)


# ---------------------------------------------------------------- RMS envelope

def match_lengths(a: np.ndarray, b: np.ndarray, length_rule: LengthRule) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D arrays made one length: the shorter zero-padded (``'pad'``) or the longer cut (``'truncate'``)."""
    if length_rule == "pad":
        n = max(a.size, b.size)
        return np.pad(a, (0, n - a.size)), np.pad(b, (0, n - b.size))
    if length_rule == "truncate":
        n = min(a.size, b.size)
        return a[:n], b[:n]
    raise MetricInputError(f"length_rule must be 'pad' or 'truncate', got {length_rule!r}")


def rms_envelope_centered(y: np.ndarray, frame: int = 2048, hop: int = 512) -> np.ndarray:
    """Frame RMS as ``librosa.feature.rms(center=True, pad_mode='constant')``: zero-pad frame//2 each side."""
    x = np.asarray(y, dtype=np.float64).reshape(-1)
    return distances.rms_envelope(np.pad(x, (frame // 2, frame // 2)), frame, hop)


def rms_cosine(y_ref: np.ndarray, y_gen: np.ndarray, sr: int | None = None, frame: int = 2048, hop: int = 512,
               length_rule: LengthRule = "pad") -> float:
    """Cosine of two signals' frame-RMS envelopes in [0, 1]; 0.0 when either is silent (reference §1.6).

    ``length_rule='pad'`` zero-pads the shorter envelope (a duration error costs), ``'truncate'`` cuts
    to the shorter. ``sr`` is only recorded by callers: both signals must already share one rate.
    """
    del sr  # same-rate inputs are the caller's contract; the envelope itself needs no rate
    a = np.asarray(y_ref, dtype=np.float64).reshape(-1)
    b = np.asarray(y_gen, dtype=np.float64).reshape(-1)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise MetricInputError("audio contains NaN or infinite samples")
    ea, eb = match_lengths(rms_envelope_centered(a, frame, hop), rms_envelope_centered(b, frame, hop), length_rule)
    if not np.any(ea > 0) or not np.any(eb > 0):
        return 0.0
    return float(np.clip(distances.cosine(ea, eb), 0.0, 1.0))
