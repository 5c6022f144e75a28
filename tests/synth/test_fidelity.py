"""The fidelity benchmark's comparison on a subset of the factory voices, with its thresholds."""

from __future__ import annotations

import sys

import pytest

from ..conftest import REPO, YAMAHA, need

sys.path.insert(0, str(REPO / "benchmarks"))
pytest.importorskip("dexed", reason="dexed-py (the dev extra) is the engine's test oracle")
import fidelity  # noqa: E402


@pytest.mark.parametrize("note, velocity", [(60, 100), (36, 100), (84, 127)])
def test_factory_subset_meets_the_fidelity_thresholds(note, velocity):
    need(YAMAHA)
    voices = fidelity.factory_voices()[::8]  # 32 voices spread over all eight factory banks
    rows = [fidelity.compare(b, i, p, note, velocity, hold_s=4.0, release_s=1.0) for b, i, p in voices]
    s = fidelity.summarise(rows)
    assert s["median_log_mel_db"] <= fidelity.MAX_MEDIAN_LMD
    assert s["p95_log_mel_db"] <= fidelity.MAX_P95_LMD
    assert s["median_rms_cos"] >= fidelity.MIN_MEDIAN_RMS_COS
    assert s["identical"] == len(rows)  # every factory voice renders bit-identical to Dexed
