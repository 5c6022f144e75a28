"""Bootstrap confidence intervals: percentile CIs for per-item means and for set-level FAD/KAD.

Per-item metrics (CLAP, KL, AC, RMS, spectral distances) are means of per-pair values: resample the
values with replacement. Set-level metrics (FAD, KAD) are recomputed on resampled items: paired
resampling draws the same item indices for both sets (items are (generated, reference) pairs).

Resampling with replacement repeats items, which FAD and KAD would otherwise misread:

- KAD (``bootstrap_kad``): the kernel is fixed at the full sample's bandwidth, and the within-set means
  leave out every pair of copies of one item (not only i == j), so each draw is still an unbiased MMD.
- FAD (``bootstrap_set_metric(..., recenter=True)``): repeated clips shrink the covariance rank and inflate
  FAD's small-sample bias, so the draws are shifted to have the full-sample FAD as their mean; the
  interval then shows the spread only (``method='recentred percentile'``).

Deterministic: one ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from pydantic import BaseModel, Field

from . import core


class ConfidenceInterval(BaseModel):
    """A point estimate with a percentile bootstrap interval."""

    estimate: float | None = Field(description="the statistic on the full sample (None if undefined)")
    low: float | None = Field(description="lower percentile bound")
    high: float | None = Field(description="upper percentile bound")
    level: float = Field(description="coverage, e.g. 0.95")
    n: int = Field(description="number of items the estimate used")
    n_boot: int = Field(description="bootstrap draws that gave a finite value")
    method: str = Field(default="percentile", description="'percentile', 'recentred percentile' or "
                                                          "'percentile, distinct-copy U-statistic'")


def _check(n: int, level: float) -> None:
    if n < 1:
        raise ValueError(f"n (bootstrap draws) must be >= 1, got {n}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _interval(draws: np.ndarray, level: float) -> tuple[float | None, float | None]:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return None, None
    lo, hi = np.quantile(draws, [(1.0 - level) / 2.0, 1.0 - (1.0 - level) / 2.0])
    return float(lo), float(hi)


def bootstrap_ci(values: Sequence[float | None], n: int = 1000, seed: int = 0,
                 level: float = 0.95) -> ConfidenceInterval:
    """Percentile bootstrap CI of the mean of per-item values (None/NaN values are left out)."""
    _check(n, level)
    v = np.array([np.nan if x is None else float(x) for x in values], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ConfidenceInterval(estimate=None, low=None, high=None, level=level, n=0, n_boot=0)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n, v.size))].mean(axis=1)
    low, high = _interval(means, level)
    return ConfidenceInterval(estimate=float(v.mean()), low=low, high=high, level=level, n=int(v.size), n_boot=n)


def bootstrap_set_metric(metric: Callable[[np.ndarray, np.ndarray], float], emb_ref: np.ndarray, emb_gen: np.ndarray,
                         n: int = 1000, seed: int = 0, level: float = 0.95, paired: bool = True,
                         recenter: bool = False) -> ConfidenceInterval:
    """Percentile bootstrap CI of a set-level metric ``metric(emb_ref, emb_gen)`` by resampling items.

    ``paired=True`` draws one index vector for both sets (they must have equal length); otherwise each
    set is resampled on its own. A draw where the metric fails (e.g. too few distinct rows) is skipped.
    ``recenter=True`` shifts the draws so their mean is the full-sample value (use it for FAD).
    """
    _check(n, level)
    r, g = np.asarray(emb_ref, dtype=np.float64), np.asarray(emb_gen, dtype=np.float64)
    if paired and r.shape[0] != g.shape[0]:
        raise ValueError(f"paired bootstrap needs sets of equal size, got {r.shape[0]} and {g.shape[0]}")
    try:
        estimate: float | None = float(metric(r, g))
    except ValueError:
        estimate = None
    rng = np.random.default_rng(seed)
    draws = np.full(n, np.nan)
    for i in range(n):
        ir = rng.integers(0, r.shape[0], size=r.shape[0])
        ig = ir if paired else rng.integers(0, g.shape[0], size=g.shape[0])
        try:
            draws[i] = metric(r[ir], g[ig])
        except ValueError:
            continue
    ok = np.isfinite(draws)
    if recenter and estimate is not None and ok.any():
        draws[ok] += estimate - float(draws[ok].mean())
    low, high = _interval(draws, level)
    return ConfidenceInterval(estimate=estimate, low=low, high=high, level=level, n=int(g.shape[0]),
                              n_boot=int(ok.sum()), method="recentred percentile" if recenter else "percentile")


def bootstrap_kad(emb_ref: np.ndarray, emb_gen: np.ndarray, bandwidth: float | None = None,
                  bandwidth_from: core.BandwidthFrom = "eval", scale: float = core.KAD_SCALE, n: int = 1000,
                  seed: int = 0, level: float = 0.95, paired: bool = True) -> ConfidenceInterval:
    """Percentile bootstrap CI of KAD by resampling items, each draw an unbiased MMD over distinct copies.

    The bandwidth is the full sample's (kadtk's median rule unless given) in every draw; within a set,
    pairs of two copies of the same item are left out like the diagonal is in the plain estimator.
    """
    _check(n, level)
    x = np.asarray(emb_ref, dtype=np.float64)
    y = np.asarray(emb_gen, dtype=np.float64)
    if paired and x.shape[0] != y.shape[0]:
        raise ValueError(f"paired bootstrap needs sets of equal size, got {x.shape[0]} and {y.shape[0]}")
    sigma = core.kad_bandwidth(x, y, bandwidth_from) if bandwidth is None else float(bandwidth)
    estimate = core.kad(x, y, bandwidth=sigma, scale=scale)
    kernel = core.gaussian_kernel
    kxx, kyy, kxy = kernel(x, x, sigma), kernel(y, y, sigma), kernel(x, y, sigma)
    np.fill_diagonal(kxx, 0.0)
    np.fill_diagonal(kyy, 0.0)
    m, k = x.shape[0], y.shape[0]
    rng = np.random.default_rng(seed)
    draws = np.full(n, np.nan)
    for i in range(n):
        cx = np.bincount(rng.integers(0, m, size=m), minlength=m).astype(np.float64)
        cy = cx if paired else np.bincount(rng.integers(0, k, size=k), minlength=k).astype(np.float64)
        px, py = m * m - float(cx @ cx), k * k - float(cy @ cy)  # ordered pairs of distinct items
        if px <= 0 or py <= 0:
            continue
        draws[i] = scale * (cx @ kxx @ cx / px + cy @ kyy @ cy / py - 2.0 * (cx @ kxy @ cy) / (m * k))
    low, high = _interval(draws, level)
    return ConfidenceInterval(estimate=estimate, low=low, high=high, level=level, n=int(k),
                              n_boot=int(np.isfinite(draws).sum()), method="percentile, distinct-copy U-statistic")
