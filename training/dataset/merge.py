"""Merge the stage parts into the dataset: one row per render, filtered and deduplicated.

For each render shard k: the renders part joined with the manifest (name, patch, provenance) and,
when they exist, the captions and CoT parts of the same shard. Silent renders and renders that
failed are left out (and counted); ``require_cot`` keeps only rows whose CoT was kept; a render id
seen before is left out (a guard: parts never overlap). The result is written to a fresh folder and
swapped in for ``OUT/data`` at the end, so the data folder is always a complete merge. ``combine``
merges the finished datasets of several builds into one, dropping render ids already taken.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from .stages import StageError, fsync_dir, part_path, read_manifest, read_part, shard_count, shard_size, write_part

__all__ = ["merge", "combine", "DATA_DIR", "MERGED_MANIFEST_COLUMNS"]

DATA_DIR = "data"
MERGED_MANIFEST_COLUMNS = ("name", "patch", "source_file", "source_index", "n_occurrences")


def _lookup(out_dir: Path, stage: str, k: int, columns: list[str]) -> dict[str, dict[str, Any]] | None:
    table = read_part(out_dir, stage, k)
    if table is None:
        return None
    keep = [c for c in columns if c in table.column_names]
    return {r["id"]: r for r in table.select(["id"] + keep).to_pylist()}


def _merge_shard(out_dir: Path, k: int, manifest: Any, require_cot: bool, seen: set[str], counts: Counter,
                 silent_ids: set[str]) -> Any:
    """Shard ``k`` merged (``manifest``: its manifest rows), filtered, with its counts added to ``counts``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    renders = read_part(out_dir, "renders", k)
    if renders is None:
        counts["shards_missing_renders"] += 1
        return None
    index = {v: i for i, v in enumerate(manifest.column("id").to_pylist())}
    ids = renders.column("id").to_pylist()
    unknown = [i for i in ids if i not in index]
    if unknown:
        raise StageError(f"{part_path(out_dir, 'renders', k)} has ids not in manifest shard {k} "
                         f"(e.g. {unknown[0]}): the stage folder is inconsistent; rebuild into a new folder")
    take = pa.array([index[i] for i in ids], type=pa.int64())
    caps = _lookup(out_dir, "captions", k, ["caption", "caption_source", "caption_error"])
    cots = _lookup(out_dir, "cot", k, ["cot", "cot_analysis", "cot_source", "cot_error"])
    cols: dict[str, Any] = {"id": renders.column("id"), "render_id": renders.column("render_id")}
    for c in MERGED_MANIFEST_COLUMNS:
        cols[c] = manifest.column(c).take(take)
    given_caption = manifest.column("caption").take(take).to_pylist()
    given_source = manifest.column("caption_source").take(take).to_pylist()
    caption, caption_source = [], []
    for i, rid in enumerate(ids):
        c = caps.get(rid) if caps is not None else None
        if c is not None and c.get("caption"):
            caption.append(c["caption"])
            caption_source.append(c.get("caption_source"))
        else:
            caption.append(given_caption[i])
            caption_source.append(given_source[i] if given_caption[i] is not None else None)
    cols["caption"] = pa.array(caption, type=pa.string())
    cols["caption_source"] = pa.array(caption_source, type=pa.string())
    cot_rows = [(cots or {}).get(rid) or {} for rid in ids]
    for c in ("cot", "cot_analysis", "cot_source"):
        cols[c] = pa.array([r.get(c) for r in cot_rows], type=pa.string())
    for c in renders.column_names:
        if c not in cols and c != "error":
            cols[c] = renders.column(c)
    table = pa.table(cols)

    silent = renders.column("silent").to_pylist()
    errors = renders.column("error").to_pylist()
    has_cot = [r.get("cot") is not None for r in cot_rows]
    keep = []
    for i, rid in enumerate(renders.column("render_id").to_pylist()):
        counts["renders"] += 1
        if errors[i] is not None:
            counts["render_errors"] += 1
        elif silent[i]:
            counts["silent"] += 1
            silent_ids.add(ids[i])
        elif require_cot and not has_cot[i]:
            counts["without_cot"] += 1
        elif rid in seen:
            counts["duplicates"] += 1
        else:
            seen.add(rid)
            keep.append(True)
            continue
        keep.append(False)
    table = table.filter(pa.array(keep, type=pa.bool_()))
    counts["rows"] += table.num_rows
    caps_kept = zip(table.column("caption").to_pylist(), table.column("caption_source").to_pylist())
    for src, n in Counter(s or "unknown" for c, s in caps_kept if c is not None).items():
        counts[f"caption_source:{src}"] += n
    counts["with_cot"] += int(pc.sum(pc.is_valid(table.column("cot"))).as_py() or 0)
    if cots is not None:
        counts["cot_shards"] += 1
        for r in cots.values():
            counts["cot_kept" if r.get("cot") is not None else "cot_rejected"] += 1
    if caps is not None:
        counts["caption_shards"] += 1
    return table


def _write_data(out_dir: Path, tables: Iterator[Any]) -> int:
    """Write the non-empty tables as ``OUT/data/train-i-of-n.parquet`` through a temporary folder swapped in at
    the end (so ``data/`` is always one complete merge); returns the number of files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*out_dir.glob(f".{DATA_DIR}.*.tmp"), out_dir / f".{DATA_DIR}.old"]:  # left by a killed merge
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{DATA_DIR}.", suffix=".tmp", dir=out_dir))
    try:
        written: list[Path] = []
        for table in tables:
            if table is None or table.num_rows == 0:
                continue
            written.append(write_part(tmp / f"part-{len(written):05d}.parquet", table))
        total = len(written)
        for i, p in enumerate(written):
            p.rename(tmp / f"train-{i:05d}-of-{total:05d}.parquet")
        tmp.chmod(0o755)
        data = out_dir / DATA_DIR
        old = None
        if data.exists():
            old = out_dir / f".{DATA_DIR}.old"
            shutil.rmtree(old, ignore_errors=True)
            data.rename(old)
        tmp.rename(data)
        fsync_dir(out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return total


def merge(out_dir: Path | str, *, require_cot: bool = False, progress: bool = True) -> dict[str, Any]:
    """Write ``OUT/data/train-*.parquet`` from the stage parts; returns the counts."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    n, size = shard_count(out_dir), shard_size(out_dir)
    manifest = read_manifest(out_dir)  # once: every shard takes its slice
    counts: Counter = Counter()
    seen: set[str] = set()
    silent_ids: set[str] = set()
    shards = tqdm(range(n), desc="merge", unit="shard", file=sys.stderr, disable=not progress, leave=False)
    total = _write_data(out_dir, (_merge_shard(out_dir, k, manifest.slice(k * size, size), require_cot, seen, counts,
                                               silent_ids) for k in shards))
    result = {k: v for k, v in sorted(counts.items()) if not k.startswith("caption_source:")}
    result["files"] = total
    result["silent_voices"] = len(silent_ids)
    result["shards"] = n
    result["require_cot"] = require_cot
    result["caption_sources"] = {k.split(":", 1)[1]: v for k, v in sorted(counts.items(), key=str)
                                 if k.startswith("caption_source:")}
    for key in ("renders", "rows", "silent", "render_errors", "duplicates", "without_cot", "with_cot", "cot_kept",
                "cot_rejected"):
        result.setdefault(key, 0)
    return result


def combine(builds: list[Path | str], out_dir: Path | str, *, require_cot: bool = False,
            progress: bool = True) -> dict[str, Any]:
    """Merge the ``data/`` of several finished builds into ``out_dir/data``: a render id (voice x note x
    velocity) seen in an earlier build is left out, and so is a row without CoT under ``require_cot``."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    out_dir = Path(out_dir)
    files: list[tuple[Path, Path]] = []
    problems = []
    for b in map(Path, builds):
        found = sorted((b / DATA_DIR).glob("train-*.parquet"))
        if not found:
            problems.append(f"{b}: no {DATA_DIR}/train-*.parquet (not a finished build)")
        files += [(b, f) for f in found]
    if problems:
        raise StageError("\n".join(problems))
    if out_dir.resolve() in {Path(b).resolve() for b in builds}:
        raise StageError(f"{out_dir}: the output must not be one of the builds being combined")
    try:
        # One schema for all files (builds with and without evidence columns): load_dataset needs that.
        schema = pa.unify_schemas([pq.read_schema(f) for _, f in files])
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        raise StageError(f"the builds' columns do not agree: {err}") from None
    counts: Counter = Counter()
    per_build: Counter = Counter()
    seen: set[str] = set()

    def conform(t: Any) -> Any:
        cols = [t.column(f.name) if f.name in t.column_names else pa.nulls(t.num_rows, f.type) for f in schema]
        return pa.table(cols, schema=schema)

    def tables() -> Iterator[Any]:
        for build_dir, f in tqdm(files, desc="combine", unit="file", file=sys.stderr, disable=not progress,
                                 leave=False):
            t = pq.read_table(f)
            keep = []
            has_cot = t.column("cot").to_pylist() if "cot" in t.column_names else [None] * t.num_rows
            for rid, cot in zip(t.column("render_id").to_pylist(), has_cot):
                counts["rows_in"] += 1
                if require_cot and cot is None:
                    counts["without_cot"] += 1
                    keep.append(False)
                elif rid in seen:
                    counts["duplicates"] += 1
                    keep.append(False)
                else:
                    seen.add(rid)
                    keep.append(True)
            t = conform(t.filter(pa.array(keep, type=pa.bool_())))
            counts["rows"] += t.num_rows
            per_build[str(build_dir)] += t.num_rows
            yield t

    total = _write_data(out_dir, tables())
    return {"builds": [str(b) for b in builds], "rows_per_build": dict(per_build), "files": total,
            "rows": counts["rows"], "rows_in": counts["rows_in"], "duplicates": counts["duplicates"],
            "without_cot": counts["without_cot"], "require_cot": require_cot}
