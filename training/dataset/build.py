"""The dataset build: inputs → manifest (dedup) → renders → captions → chain-of-thought → merge → card.

Every step is resumable. ``build.json`` holds the options that results depend on and is checked on
every run (a resume with different ones is refused, naming each difference); the manifest is written
once; each stage writes only the parts that are missing; merge and the card are rewritten from the
parts every time, so a killed build that is run again ends with exactly the rows of an uninterrupted one.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from .render_jobs import RenderOptions, ShardSummary, render_shard
from .stages import (StageError, StageReport, build_json_path, iter_pending_shards, manifest_path, manifest_rows,
                     part_path, read_build_options, remove_stale_temp_files, report_path, shard_count, stage_dir,
                     write_json_atomic, write_part)

__all__ = ["BuildConfig", "BuildError", "build_manifest", "run_render_stage", "build", "FORMAT_VERSION"]

FORMAT_VERSION = 1
SOURCES_JSON = "sources.json"


class BuildError(ValueError):
    """A build that cannot run as asked; one line per problem."""

    def __init__(self, lines: str | list[str]):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


class BuildConfig(BaseModel):
    """What the build's results depend on (stored in ``OUT/stage/build.json``)."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    inputs: list[str]
    shard_size: int = Field(256, ge=1, le=100_000)
    limit: int | None = Field(None, ge=1)
    identity: Literal["core", "full"] = "core"
    render: RenderOptions = Field(default_factory=RenderOptions)


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: the build in progress has {json.dumps(a)}, this run asks for {json.dumps(b)}")
    return out


def check_or_write_config(out_dir: Path, config: BuildConfig) -> bool:
    """Write build.json, or check it against ``config``; True when a build was already in progress."""
    path = build_json_path(out_dir)
    new = config.model_dump(mode="json")
    if path.exists():
        old = read_build_options(out_dir)
        diffs = _differences(old, new)
        if diffs:
            raise BuildError([f"{out_dir} holds a build made with other options; resume it with the same options, "
                              "or choose another output folder:"] + [f"  {d}" for d in diffs])
        return True
    write_json_atomic(path, new)
    return False


def build_manifest(out_dir: Path, config: BuildConfig, *, log: Callable[[str], None] = lambda _: None,
                   progress: bool = False) -> dict[str, Any]:
    """Read the inputs, dedup them and write the manifest (once); returns the sources report."""
    from .dedup import dedup, manifest_table
    from .sources import SourceReport, iter_voices

    sources_path = stage_dir(out_dir) / SOURCES_JSON
    if manifest_path(out_dir).is_file() and sources_path.is_file():
        return json.loads(sources_path.read_text(encoding="utf-8"))
    report = SourceReport()
    t0 = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(desc="reading inputs", unit="file", file=sys.stderr, disable=not progress, dynamic_ncols=True)

    def tick(rep: Any) -> None:
        bar.update(1)
        bar.set_postfix(voices=rep.voices, refused=rep.files_refused, refresh=False)

    try:
        rows, dreport = dedup(iter_voices(config.inputs, report, on_file=tick), config.identity)
    finally:
        bar.close()
    read_s = time.perf_counter() - t0
    unique_all = len(rows)
    if config.limit is not None:
        rows = rows[: config.limit]
    data = {"sources": report.model_dump(), "dedup": dreport.model_dump(), "unique_before_limit": unique_all,
            "manifest_rows": len(rows), "limit": config.limit, "read_seconds": round(read_s, 2)}
    if not rows:
        refused = [f"  {r.file}: {'; '.join(r.detail)}" for r in report.not_clean if r.status == "refused"][:20]
        raise BuildError([f"no DX7 voice found in the inputs ({report.files_read} file(s) read, "
                          f"{report.files_refused} refused, {report.files_ignored} ignored)"] + refused)
    log(f"read {report.files_read} file(s) ({report.files_refused} refused, {report.files_ignored} ignored): "
        f"{dreport.voices} voices, {dreport.unique} unique" + (f", first {len(rows)} kept (--limit)"
                                                                 if config.limit is not None else "")
        + f" in {read_s:.1f} s")
    # sources.json before the manifest: a manifest that exists always has its report beside it.
    write_json_atomic(sources_path, data)
    # One row group per shard: a worker then reads its shard's rows only.
    write_part(manifest_path(out_dir), manifest_table(rows), row_group_size=config.shard_size)
    return data


def run_render_stage(out_dir: Path, config: BuildConfig, *, workers: int | None = None, ray: str | None = None,
                     progress: bool = True) -> StageReport:
    """Render every shard that has no part yet, on local processes or Ray."""
    from tqdm import tqdm

    from .executors import run_jobs

    total = shard_count(out_dir)
    pending = list(iter_pending_shards(out_dir, "renders"))
    report = StageReport(stage="renders", shards_total=total, shards_done_before=total - len(pending))
    size = config.shard_size
    n_voices = manifest_rows(out_dir)
    pending_voices = sum(min(size, n_voices - k * size) for k in pending)
    bar = tqdm(total=n_voices, initial=n_voices - pending_voices, desc="renders", unit="voice", file=sys.stderr,
               dynamic_ncols=True, smoothing=0.1, disable=not progress)

    def done(summary: ShardSummary) -> None:
        report.shards_written += 1 if part_path(out_dir, "renders", summary.shard).is_file() else 0
        report.rows += summary.rows
        report.add_errors(summary)
        if ray:  # Ray tasks send no ticks: the bar moves a shard at a time
            bar.update(summary.voices)

    opts = config.render.model_dump(mode="json")
    try:
        run_jobs(render_shard, [(str(out_dir), k, opts) for k in pending], workers=workers, ray=ray, on_done=done,
                 on_tick=bar.update)
    finally:
        bar.close()
    return report


def build(inputs: list[str], out_dir: Path, *, render: RenderOptions | None = None, shard_size: int = 256,
          limit: int | None = None, identity: str = "core", workers: int | None = None, ray: str | None = None,
          captions: str | None = "offline", caption_base_url: str | None = None, cot_model: str | None = None,
          cot_base_url: str | None = None, api_key: str | None = None, require_cot: bool = False,
          progress: bool = True, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run (or resume) a whole build into ``out_dir``; returns the report (also in stage/report.json)."""
    from .card import write_card
    from .merge import merge

    out_dir = Path(out_dir)
    config = BuildConfig(inputs=[str(p) for p in inputs], shard_size=shard_size, limit=limit,
                         identity=identity, render=render or RenderOptions())
    if out_dir.exists() and not out_dir.is_dir():
        raise BuildError(f"-o {out_dir}: is a file; allowed a folder (new, or a build to resume)")
    if out_dir.is_dir() and any(p.name != "stage" for p in out_dir.iterdir()) and not build_json_path(out_dir).exists():
        raise BuildError(f"-o {out_dir}: the folder is not empty and holds no build to resume; "
                         "choose a new or empty folder")
    # Made before any work (no request is sent), so that a missing API key is refused before the renders.
    models = _stage_models(out_dir, captions, caption_base_url, cot_model, cot_base_url, api_key)
    stage_dir(out_dir).mkdir(parents=True, exist_ok=True)
    resumed = check_or_write_config(out_dir, config)
    if resumed:
        stale = remove_stale_temp_files(out_dir)
        log(f"resuming the build in {out_dir}" + (f" ({stale} unfinished file(s) of the killed run removed)"
                                                   if stale else ""))
    t0 = time.perf_counter()
    sources = build_manifest(out_dir, config, log=log, progress=progress)
    stages: dict[str, Any] = {}
    t_render = time.perf_counter()
    stages["renders"] = run_render_stage(out_dir, config, workers=workers, ray=ray, progress=progress).model_dump()
    render_s = time.perf_counter() - t_render
    threads = max(1, workers or 4)  # the model stages' requests in flight
    if "captions" in models:
        from .captions import run_caption_stage

        stages["captions"] = run_caption_stage(out_dir, models["captions"], workers=threads,
                                               progress=progress).model_dump()
    if "cot" in models:
        from .cot import run_cot_stage

        stages["cot"] = run_cot_stage(out_dir, models["cot"], workers=threads, progress=progress).model_dump()
    merged = merge(out_dir, require_cot=require_cot, progress=progress)
    report = {"sources": _summary(sources), "stages": stages, "merge": merged, "config": config.model_dump(mode="json"),
              "resumed": resumed, "seconds": {"total": round(time.perf_counter() - t0, 2),
                                              "renders": round(render_s, 2)}}
    write_json_atomic(report_path(out_dir), report)
    write_card(out_dir, report)
    return report


def _summary(sources: dict[str, Any]) -> dict[str, Any]:
    """The sources report without the per-file repairs (those stay in stage/sources.json), refusals kept."""
    out = dict(sources)
    files = dict(out.get("sources", {}))
    not_clean = files.pop("not_clean", [])
    files["refused"] = [r for r in not_clean if r.get("status") == "refused"]
    out["sources"] = files
    return out


def _stage_models(out_dir: Path, captions: str | None, caption_base_url: str | None, cot_model: str | None,
                  cot_base_url: str | None, api_key: str | None) -> dict[str, Any]:
    """The captioner and the CoT teacher the build asks for, by stage; ``BuildError`` when one cannot be made."""
    from .captions import make_captioner
    from .cot import make_teacher

    models: dict[str, Any] = {}
    try:
        if captions and captions != "none":
            models["captions"] = make_captioner(None if captions == "offline" else captions, caption_base_url,
                                                api_key=api_key, cache_dir=stage_dir(out_dir) / "cache" / "captions")
        if cot_model:
            models["cot"] = make_teacher(cot_model, cot_base_url, api_key=api_key,
                                         cache_dir=stage_dir(out_dir) / "cache" / "cot")
    except ValueError as err:  # a missing API key, an empty model name
        raise BuildError(str(err)) from None
    return models


def read_report(out_dir: Path) -> dict[str, Any]:
    """The report of the last build run in ``out_dir``."""
    path = report_path(out_dir)
    if not path.is_file():
        raise StageError(f"{path} does not exist: no finished build in {out_dir}")
    return json.loads(path.read_text(encoding="utf-8"))
