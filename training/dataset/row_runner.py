"""Shared machinery of the per-voice model stages (captions, CoT): shards to do, renders to use, a worker pool.

- ``plan_shards``: the manifest, the shard size and which shards of a stage are still to write;
- ``chosen_renders``: per voice of a shard, the render to show a model (note 60 velocity 100 when the
  voice has one, else its first render), reading audio columns batch by batch and keeping only the
  chosen rows' bytes, so a shard of long renders does not have to fit in memory twice;
- ``map_rows``: a function over rows on a bounded thread pool, results in input order; an exception
  becomes that row's error text instead of stopping the stage;
- ``finish_shard``: a shard's pending requests answered by the model (``map_rows``), checked, and the
  stage's part written.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .stages import (StageError, StageReport, iter_pending_shards, part_path, read_build_options, read_manifest,
                     shard_size, write_part)

__all__ = ["PREFERRED_RENDER", "ShardPlan", "audio_bytes", "check_workers", "chosen_renders", "finish_shard",
           "map_rows", "plan_shards", "render_timing"]

PREFERRED_RENDER = (60, 100)  # (note, velocity): the source research's render convention
T = TypeVar("T")
R = TypeVar("R")


class ShardPlan:
    """The manifest rows of a build and the shards of one stage still to write."""

    def __init__(self, manifest: list[dict[str, Any]], size: int, stage: str, out_dir: Path):
        self.manifest = manifest
        self.shard_size = size
        self.shards_total = (len(manifest) + size - 1) // size
        self.pending = list(iter_pending_shards(out_dir, stage))

    def rows(self, k: int) -> list[dict[str, Any]]:
        """The manifest rows of shard ``k``."""
        return self.manifest[k * self.shard_size:(k + 1) * self.shard_size]


def check_workers(workers: Any) -> int:
    """``workers`` as a positive int, or ``ValueError`` saying what is allowed."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256:
        raise ValueError(f"workers: found {workers!r}, allowed an integer 1..256")
    return workers


def plan_shards(out_dir: Path, stage: str, columns: Sequence[str]) -> ShardPlan:
    """The manifest (``columns`` only), the shard size from ``build.json``, and the pending shards of ``stage``."""
    size = shard_size(out_dir)
    table = read_manifest(out_dir)
    missing = [c for c in columns if c not in table.column_names and c not in ("caption", "caption_source")]
    if missing:
        raise StageError(f"{out_dir}/stage/manifest.parquet lacks column(s) {', '.join(missing)}")
    keep = [c for c in columns if c in table.column_names]
    return ShardPlan(table.select(keep).to_pylist(), size, stage, Path(out_dir))


def render_timing(out_dir: Path) -> tuple[float, float] | None:
    """(hold_s, release_s) of the build's renders, from ``build.json`` (None when it does not say)."""
    options = read_build_options(out_dir).get("render")
    if not isinstance(options, dict):
        return None
    try:
        from .render_jobs import RenderOptions

        parsed = RenderOptions.model_validate(options)
    except (ImportError, ValueError):
        return None
    return float(parsed.hold_s), float(parsed.release_s)


def chosen_renders(out_dir: Path, k: int, columns: Sequence[str] = (),
                   binary_columns: Sequence[str] = ()) -> dict[str, dict[str, Any]] | None:
    """Per voice id of shard ``k``, its chosen render row (``columns`` + ``binary_columns`` when present).

    None when the renders part of shard ``k`` is not written. Binary columns (audio structs) are read
    in batches and kept for the chosen rows only.
    """
    import pyarrow.parquet as pq

    path = part_path(out_dir, "renders", k)
    if not path.is_file():
        return None
    pf = pq.ParquetFile(path)
    names = set(pf.schema_arrow.names)
    base = ["id", "render_id", "note", "played_note", "velocity", "silent", "error"]
    light = [c for c in dict.fromkeys([*base, *columns]) if c in names]
    rows = pf.read(columns=light).to_pylist()
    chosen: dict[str, int] = {}
    for i, r in enumerate(rows):
        rid = r.get("id")
        if rid is None:
            continue
        best = chosen.get(rid)
        if best is None or (_preferred(r) and not _preferred(rows[best])):
            chosen[rid] = i
    out = {rid: rows[i] for rid, i in chosen.items()}
    heavy = [c for c in binary_columns if c in names]
    if heavy and "render_id" in names:
        wanted = {rows[i].get("render_id"): rid for rid, i in chosen.items()}
        for batch in pf.iter_batches(batch_size=32, columns=["render_id", *heavy]):
            for r in batch.to_pylist():
                rid = wanted.get(r["render_id"])
                if rid is not None:
                    out[rid].update({c: audio_bytes(out_dir, r[c]) for c in heavy})
    return out


def audio_bytes(out_dir: Path, value: Any) -> bytes | None:
    """The file bytes of an audio struct ``{bytes, path}``: inline, or read from ``OUT/<path>`` (None if neither)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, dict):
        return None
    data = value.get("bytes")
    if isinstance(data, (bytes, bytearray)) and data:
        return bytes(data)
    path = value.get("path")
    if isinstance(path, str) and path:
        file = (Path(out_dir) / path).resolve()
        # Only files inside the build folder: a part file must not make the stage read anything else.
        if Path(out_dir).resolve() in file.parents and file.is_file():
            return file.read_bytes()
    return None


def _preferred(row: dict[str, Any]) -> bool:
    return (row.get("note"), row.get("velocity")) == PREFERRED_RENDER


def map_rows(fn: Callable[[T], R], items: Sequence[T], *, workers: int, progress: bool, desc: str,
             on_error: Callable[[T, BaseException], R]) -> list[R]:
    """``fn`` over ``items`` on ``workers`` threads, in input order; an exception becomes ``on_error(item, exc)``."""
    from tqdm import tqdm

    def safe(item: T) -> R:
        try:
            return fn(item)
        except Exception as exc:  # one row's failure is recorded in its row, never the stage's end
            return on_error(item, exc)

    if not items:
        return []
    with tqdm(total=len(items), desc=desc, disable=not progress, file=sys.stderr, unit="voice") as bar:
        if workers == 1:
            out = []
            for item in items:
                out.append(safe(item))
                bar.update(1)
            return out
        with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="dataset") as pool:
            futures = [pool.submit(safe, item) for item in items]
            for f in futures:
                f.add_done_callback(lambda _f: bar.update(1))
            return [f.result() for f in futures]


def finish_shard(out_dir: Path, k: int, report: StageReport, results: list[Any], todo: Sequence[tuple[int, Any]],
                 call: Callable[[Any], Any], *, column: str, result_type: type, source: str, who: str, nothing: str,
                 silent_note: str, table: Callable[[list[Any]], Any], workers: int, progress: bool) -> None:
    """Answer shard ``k``'s pending requests with ``call`` and write its part of stage ``report.stage``.

    ``results`` has a slot per manifest row: a result already decided, or None where ``todo`` (slot,
    request) asks the model. A call that raises, returns no ``result_type`` or neither ``<column>`` nor
    ``<column>_error`` gives that row an error saying so (``who``: "the teacher"; ``nothing``: "no
    reasoning"); every row error but ``silent_note`` is counted in ``report``.
    """
    error, source_column = f"{column}_error", f"{column}_source"

    def failed(item: tuple[int, Any], exc: BaseException) -> Any:
        return result_type(**{"id": item[1].id, source_column: source,
                              error: f"{who} failed: {type(exc).__name__}: {str(exc)[:300]}"})

    done = map_rows(lambda item: call(item[1]), todo, workers=workers, progress=progress,
                    desc=f"{report.stage} {k + 1}/{report.shards_total}", on_error=failed)
    for (i, req), res in zip(todo, done):
        if not isinstance(res, result_type):
            res = result_type(**{"id": req.id, source_column: source,
                                 error: f"{who} returned {type(res).__name__}, not a {result_type.__name__}"})
        if getattr(res, column) is None and getattr(res, error) is None:
            res = res.model_copy(update={error: f"{who} gave {nothing} and no reason"})
        results[i] = res
    final = [r for r in results if r is not None]
    for r in final:
        message = getattr(r, error)
        if message is not None and message != silent_note:
            report.add_error(f"{r.id}: {message}")
    write_part(part_path(out_dir, report.stage, k), table(final))
    report.shards_written += 1
    report.rows += len(final)
