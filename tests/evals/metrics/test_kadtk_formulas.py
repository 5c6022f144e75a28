"""Our FAD and KAD against kadtk's formulas, rewritten here from its source, on the same random embeddings.

Read in YoonjinXD/kadtk (``kadtk/kad.py``, ``calc_kernel_audio_distance`` and ``median_pairwise_distance``;
``kadtk/fad.py``, ``calc_embd_statistics`` and ``calc_frechet_distance``), not imported (kadtk needs
Python < 3.12 and torch < 2.6). What the formulas do:

- KAD: ``gamma = 1 / (2 * bandwidth**2 + 1e-8)``; squared distances by the expansion
  ``|x|^2 + |y|^2 - 2 x.y``; ``k = exp(-gamma * d2)``; diagonals of K_xx and K_yy zeroed and their sums
  divided by m(m-1) and n(n-1); ``K_xy.mean()``; result ``(xx + yy - 2 xy) * SCALE_FACTOR`` with
  ``SCALE_FACTOR = 100`` (1000 before commit e236914, 2025-02-26).
- Bandwidth: ``torch.median(torch.pdist(s))``, i.e. the LOWER middle of the pairwise distances of one
  set s. Which set differs between versions: the stored commit 7ec65d7 uses x (the baseline/reference)
  and says so in a comment; the reference note reads y (the eval set) in HEAD 8bda71d and the PyPI 1.1.0
  wheel (issue #9 / PR #10). Ours exposes both (``bandwidth_from='ref' | 'eval'``); both are checked.
- kadtk computes in float32 by default (``precision`` argument); the comparison uses float64 so that the
  agreement can be asserted to 1e-6.
- FAD: ``np.mean`` and ``np.cov(rowvar=False)``; trace of the square root of ``cov1 @ cov2`` from
  ``scipy.linalg.eig`` with a complex square root of the eigenvalues, real part.
"""

from __future__ import annotations

import numpy as np
import pytest

from patchsmith.evals.metrics import core

torch = pytest.importorskip("torch")
scimath = pytest.importorskip("numpy.lib.scimath")


def kadtk_median_pairwise_distance(s: np.ndarray) -> float:
    return float(torch.median(torch.pdist(torch.tensor(s, dtype=torch.float64))).item())


def kadtk_kad(x: np.ndarray, y: np.ndarray, bandwidth: float | None, bandwidth_set: str, scale: float = 100.0,
              eps: float = 1e-8) -> float:
    tx, ty = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    if bandwidth is None:
        bandwidth = kadtk_median_pairwise_distance(x if bandwidth_set == "x" else y)
    m, n = tx.shape[0], ty.shape[0]
    gamma = 1 / (2 * bandwidth ** 2 + eps)
    xx = tx @ tx.T
    x_sq = torch.diagonal(xx)
    k_xx = torch.exp(-gamma * (x_sq.unsqueeze(1) + x_sq.unsqueeze(0) - 2 * xx))
    k_xx = k_xx - torch.diag(torch.diagonal(k_xx))
    yy = ty @ ty.T
    y_sq = torch.diagonal(yy)
    k_yy = torch.exp(-gamma * (y_sq.unsqueeze(1) + y_sq.unsqueeze(0) - 2 * yy))
    k_yy = k_yy - torch.diag(torch.diagonal(k_yy))
    k_xy = torch.exp(-gamma * (x_sq.unsqueeze(1) + y_sq.unsqueeze(0) - 2 * (tx @ ty.T)))
    return float((k_xx.sum() / (m * (m - 1)) + k_yy.sum() / (n * (n - 1)) - 2 * k_xy.mean()) * scale)


def kadtk_fad(x: np.ndarray, y: np.ndarray) -> float:
    linalg = pytest.importorskip("scipy.linalg")
    mu1, cov1 = np.mean(x, axis=0), np.cov(x, rowvar=False)
    mu2, cov2 = np.mean(y, axis=0), np.cov(y, rowvar=False)
    d, v = linalg.eig(cov1.dot(cov2))
    covmean = (v * scimath.sqrt(d)) @ linalg.inv(v)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def _sets(seed: int, m: int, n: int, d: int, shift: float, spread: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = 1.0 / np.sqrt(np.arange(1, d + 1))  # a 1/k eigen-spectrum, like the reference's simulation
    x = rng.standard_normal((m, d)) * scales
    y = rng.standard_normal((n, d)) * scales * spread + shift
    return x, y


CASES = [(0, 100, 100, 64, 0.0, 1.0), (1, 100, 100, 64, 0.1, 1.0), (2, 60, 80, 16, 0.3, 1.5),
         (3, 100, 100, 512, 0.05, 1.0), (4, 31, 47, 8, 0.0, 0.7)]


@pytest.mark.parametrize("seed,m,n,d,shift,spread", CASES)
def test_kad_agrees_with_kadtk_formula(seed, m, n, d, shift, spread):
    x, y = _sets(seed, m, n, d, shift, spread)
    assert core.median_pairwise_distance(y) == pytest.approx(kadtk_median_pairwise_distance(y), rel=1e-12)
    ours_eval = core.kad(x, y, bandwidth_from="eval")
    ours_ref = core.kad(x, y, bandwidth_from="ref")
    assert ours_eval == pytest.approx(kadtk_kad(x, y, None, "y"), abs=1e-6)
    assert ours_ref == pytest.approx(kadtk_kad(x, y, None, "x"), abs=1e-6)
    assert core.kad(x, y, bandwidth=1.3) == pytest.approx(kadtk_kad(x, y, 1.3, "y"), abs=1e-6)
    assert core.kad(x, y, bandwidth=1.3, scale=1000) == pytest.approx(kadtk_kad(x, y, 1.3, "y", scale=1000), abs=1e-6)


@pytest.mark.parametrize("seed,m,n,d,shift,spread", [c for c in CASES if c[1] > c[3] and c[2] > c[3]])
def test_fad_agrees_with_kadtk_formula(seed, m, n, d, shift, spread):
    x, y = _sets(seed, m, n, d, shift, spread)
    assert core.fad(x, y) == pytest.approx(kadtk_fad(x, y), abs=1e-6, rel=1e-9)


def test_fad_when_n_is_below_d_stays_close_to_kadtk():
    # N < d (PaSST 'all' is 1295-d for 100 clips): both covariances are singular. kadtk's non-symmetric eig
    # route is itself noisy there; ours (symmetric, round-off eigenvalues zeroed) agrees to ~1e-6 relative.
    x, y = _sets(5, 40, 40, 96, 0.1, 1.2)
    ref = kadtk_fad(x, y)
    assert core.fad(x, y) == pytest.approx(ref, rel=1e-6)
