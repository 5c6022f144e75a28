"""Where shard jobs run: inline and on the process pool, with per-voice ticks for the progress bar."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchsmith.training.dataset.build import BuildConfig, build_manifest, check_or_write_config
from patchsmith.training.dataset.executors import run_jobs, tick
from patchsmith.training.dataset.render_jobs import RenderOptions, ShardSummary, render_shard
from patchsmith.training.dataset.stages import iter_pending_shards, shard_count

from .bank_fixtures import make_inputs


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    inputs = make_inputs(tmp_path / "in")
    out = tmp_path / "out"
    config = BuildConfig(inputs=[str(p) for p in inputs.paths], shard_size=6,
                         render=RenderOptions(seconds=0.3, sample_rate=16000))
    (out / "stage").mkdir(parents=True)
    check_or_write_config(out, config)
    build_manifest(out, config, progress=False)
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_ticks_count_every_voice_as_it_is_rendered(manifest: Path, workers: int) -> None:
    opts = RenderOptions(seconds=0.3, sample_rate=16000).model_dump(mode="json")
    jobs = [(str(manifest), k, opts) for k in range(shard_count(manifest))]
    ticks: list[int] = []
    done: list[ShardSummary] = []
    run_jobs(render_shard, jobs, workers=workers, on_done=done.append, on_tick=ticks.append)
    voices = sum(s.voices for s in done)
    assert sorted(s.shard for s in done) == list(range(len(jobs))) and voices > len(jobs)
    assert ticks == [1] * voices  # one tick per voice, all delivered before run_jobs returns
    assert list(iter_pending_shards(manifest, "renders")) == []


def test_tick_without_a_listener_does_nothing() -> None:
    tick(3)  # outside run_jobs nobody listens: no error, nothing kept
    seen: list[int] = []
    run_jobs(tick, [(2,), (5,)], workers=1, on_tick=seen.append)
    assert seen == [2, 5]
    tick(1)
    assert seen == [2, 5]  # the inline listener is removed when run_jobs returns
