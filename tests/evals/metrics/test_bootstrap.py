"""Bootstrap confidence intervals in evals/metrics/bootstrap.py."""

from __future__ import annotations

import numpy as np
import pytest

from patchsmith.evals.metrics import core
from patchsmith.evals.metrics.bootstrap import bootstrap_ci, bootstrap_set_metric


def test_bootstrap_ci_of_a_mean_is_deterministic_and_covers_the_mean():
    v = np.random.default_rng(0).normal(0.3, 0.1, size=100)
    a = bootstrap_ci(v, n=1000, seed=0)
    assert a == bootstrap_ci(v, n=1000, seed=0)
    assert a.estimate == pytest.approx(float(v.mean()))
    assert a.low < a.estimate < a.high
    # the percentile interval of a mean is about +-1.96 standard errors
    se = float(v.std(ddof=1) / np.sqrt(v.size))
    assert a.high - a.low == pytest.approx(2 * 1.96 * se, rel=0.15)
    assert bootstrap_ci(v, n=1000, seed=1) != a
    assert bootstrap_ci(v, level=0.5).high - bootstrap_ci(v, level=0.5).low < a.high - a.low


def test_bootstrap_ci_skips_missing_values_and_handles_empty_and_constant():
    a = bootstrap_ci([1.0, None, float("nan"), 3.0], n=200)
    assert a.n == 2 and a.estimate == 2.0
    empty = bootstrap_ci([None, None])
    assert empty.estimate is None and empty.low is None and empty.n == 0
    const = bootstrap_ci([0.5] * 10)
    assert const.low == const.high == const.estimate == 0.5
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([1.0], level=1.5)
    with pytest.raises(ValueError, match="draws"):
        bootstrap_ci([1.0], n=0)


def test_set_level_bootstrap_for_fad_and_kad():
    rng = np.random.default_rng(1)
    r, g = rng.standard_normal((40, 6)), rng.standard_normal((40, 6)) + 0.5
    ci = bootstrap_set_metric(core.kad, r, g, n=100, seed=0)
    assert ci.estimate == pytest.approx(core.kad(r, g))
    assert ci.low < ci.estimate < ci.high and ci.n_boot == 100
    assert ci == bootstrap_set_metric(core.kad, r, g, n=100, seed=0)
    f = bootstrap_set_metric(core.fad, r, g, n=50, seed=0, paired=False)
    assert f.low <= f.high and f.estimate == pytest.approx(core.fad(r, g))
    with pytest.raises(ValueError, match="equal size"):
        bootstrap_set_metric(core.fad, r, g[:30], n=5)


def test_set_level_bootstrap_skips_draws_where_the_metric_fails():
    r, g = np.arange(6.0)[:, None], np.arange(6.0)[:, None] + 1

    def distinct_only(a: np.ndarray, b: np.ndarray) -> float:
        if len(np.unique(a)) < len(a):
            raise ValueError("repeated rows")
        return float(np.mean(b) - np.mean(a))

    ci = bootstrap_set_metric(distinct_only, r, g, n=50, seed=0)
    assert ci.estimate == 1.0
    assert ci.n_boot < 50  # draws with repeats were skipped ...
    assert ci.n_boot == 0 or ci.low == ci.high == 1.0  # ... and the others are the unique permutation's value


def test_bootstrap_kad_draw_is_the_distinct_copy_u_statistic():
    from patchsmith.evals.metrics.bootstrap import bootstrap_kad

    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((9, 3)), rng.standard_normal((9, 3)) + 0.3
    sigma = 1.7
    one = bootstrap_kad(x, y, bandwidth=sigma, n=1, seed=11)
    idx = np.random.default_rng(11).integers(0, 9, size=9)  # the draw bootstrap_kad makes first
    k = lambda a, b: np.exp(-np.sum((a - b) ** 2) / (2 * sigma ** 2 + 1e-8))  # noqa: E731
    xx = [k(x[i], x[j]) for i in idx for j in idx if i != j]
    yy = [k(y[i], y[j]) for i in idx for j in idx if i != j]
    xy = [k(x[i], y[j]) for i in idx for j in idx]
    expected = 100 * (np.mean(xx) + np.mean(yy) - 2 * np.mean(xy))
    assert one.low == pytest.approx(expected) and one.high == pytest.approx(expected)
    assert one.estimate == pytest.approx(core.kad(x, y, bandwidth=sigma))


def test_set_bootstraps_stay_around_the_estimate():
    from patchsmith.evals.metrics.bootstrap import bootstrap_kad

    rng = np.random.default_rng(3)
    r, g = rng.standard_normal((30, 50)), rng.standard_normal((30, 50)) + 0.2  # N < d, like PaSST
    k = bootstrap_kad(r, g, n=300)
    assert k.low < k.estimate < k.high and k.method.startswith("percentile, distinct")
    f = bootstrap_set_metric(core.fad, r, g, n=100, recenter=True)
    assert f.low < f.estimate < f.high and f.method == "recentred percentile"
    raw = bootstrap_set_metric(core.fad, r, g, n=100)
    assert raw.low > f.low  # repeated clips inflate raw bootstrap FAD: the reason for recentring
