"""Stage parts of a dataset build: atomic Parquet part files, their paths, and what a stage did.

Layout (``/work/notes/dataset-contract.md``): ``OUT/stage/manifest.parquet`` once, then for every
stage ``OUT/stage/<stage>/part-NNNNN.parquet`` where shard k covers manifest rows ``[k*S, (k+1)*S)``.
A part that exists is complete (it was written to ``*.tmp``, fsynced and renamed), so a resumed run
skips it and a killed run loses at most the parts in flight, never duplicating a row.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # pyarrow is a core dependency, but imported lazily to keep imports cheap
    import pyarrow as pa

__all__ = [
    "STAGES",
    "StageReport",
    "StageError",
    "stage_dir",
    "manifest_path",
    "build_json_path",
    "report_path",
    "part_path",
    "write_part",
    "read_part",
    "read_manifest",
    "read_build_options",
    "shard_count",
    "shard_rows",
    "iter_pending_shards",
    "iter_done_shards",
    "write_json_atomic",
    "remove_stale_temp_files",
    "fsync_dir",
]

# The stages that write part files, in build order; the manifest is written once before them.
STAGES: tuple[str, ...] = ("renders", "captions", "cot")
PART_GLOB = "part-*.parquet"


class StageError(RuntimeError):
    """A stage folder or file that cannot be used as asked; the message says why."""


class StageReport(BaseModel):
    """What one stage run did: shards before/after, rows written, errors with a few examples."""

    stage: str
    shards_total: int = 0
    shards_done_before: int = 0
    shards_written: int = 0
    rows: int = 0
    errors: int = 0
    error_examples: list[str] = Field(default_factory=list)

    def add_error(self, message: str, *, keep: int = 10) -> None:
        """Count one error, keeping the first ``keep`` messages as examples."""
        self.errors += 1
        if len(self.error_examples) < keep:
            self.error_examples.append(message)


def stage_dir(out_dir: Path | str) -> Path:
    """``OUT/stage``: the working folder of a build."""
    return Path(out_dir) / "stage"


def manifest_path(out_dir: Path | str) -> Path:
    """``OUT/stage/manifest.parquet``: the deduplicated voice list."""
    return stage_dir(out_dir) / "manifest.parquet"


def build_json_path(out_dir: Path | str) -> Path:
    """``OUT/stage/build.json``: the build options (shard size among them) that results depend on."""
    return stage_dir(out_dir) / "build.json"


def report_path(out_dir: Path | str) -> Path:
    """``OUT/stage/report.json``: the build's counts, machine-readable."""
    return stage_dir(out_dir) / "report.json"


def part_path(out_dir: Path | str, stage: str, k: int) -> Path:
    """``OUT/stage/<stage>/part-<k:05d>.parquet``."""
    if stage not in STAGES:
        raise StageError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if k < 0:
        raise StageError(f"shard index must be >= 0, got {k}")
    return stage_dir(out_dir) / stage / f"part-{k:05d}.parquet"


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename inside it) to disk where the platform allows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: Any) -> Path:
    """Write through ``write(tmp_path)`` to a temp file next to ``path``, fsync it, and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def write_part(path: Path | str, table: "pa.Table") -> Path:
    """Write ``table`` as Parquet at ``path`` atomically (temp file, fsync, rename); returns the path."""
    import pyarrow.parquet as pq

    return _atomic_write(Path(path), lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_json_atomic(path: Path | str, data: Any) -> Path:
    """Write ``data`` as indented, key-sorted JSON at ``path`` atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return _atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def read_part(out_dir: Path | str, stage: str, k: int, columns: list[str] | None = None) -> "pa.Table | None":
    """Shard ``k`` of ``stage`` as a table, or None when that part is not written yet."""
    import pyarrow.parquet as pq

    path = part_path(out_dir, stage, k)
    if not path.is_file():
        return None
    return pq.read_table(path, columns=columns)


def read_manifest(out_dir: Path | str, columns: list[str] | None = None) -> "pa.Table":
    """The manifest table; ``StageError`` when the build has not written it."""
    import pyarrow.parquet as pq

    path = manifest_path(out_dir)
    if not path.is_file():
        raise StageError(f"{path} does not exist: run 'patchsmith dataset build' first")
    return pq.read_table(path, columns=columns)


def read_build_options(out_dir: Path | str) -> dict[str, Any]:
    """The options in ``OUT/stage/build.json``; ``StageError`` when missing or unreadable."""
    path = build_json_path(out_dir)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StageError(f"{path} does not exist: run 'patchsmith dataset build' first") from None
    except (OSError, ValueError) as exc:
        raise StageError(f"{path} cannot be read: {exc}") from None


def _shard_size(out_dir: Path | str) -> int:
    size = read_build_options(out_dir).get("shard_size")
    if not isinstance(size, int) or size < 1:
        raise StageError(f"{build_json_path(out_dir)} has no valid shard_size (got {size!r})")
    return size


def _manifest_rows(out_dir: Path | str) -> int:
    import pyarrow.parquet as pq

    path = manifest_path(out_dir)
    if not path.is_file():
        raise StageError(f"{path} does not exist: run 'patchsmith dataset build' first")
    return pq.ParquetFile(path).metadata.num_rows


def shard_count(out_dir: Path | str) -> int:
    """How many shards every stage has: ceil(manifest rows / shard size)."""
    n, size = _manifest_rows(out_dir), _shard_size(out_dir)
    return (n + size - 1) // size


def shard_rows(out_dir: Path | str, k: int) -> "pa.Table":
    """The manifest rows of shard ``k`` (``[k*S, (k+1)*S)``)."""
    size = _shard_size(out_dir)
    manifest = read_manifest(out_dir)
    n_shards = (manifest.num_rows + size - 1) // size
    if not 0 <= k < n_shards:
        raise StageError(f"shard {k} is out of range (manifest has {manifest.num_rows} rows, shard size {size})")
    return manifest.slice(k * size, size)


def remove_stale_temp_files(out_dir: Path | str) -> int:
    """Delete ``*.tmp`` files a killed run left in the stage folders; returns how many (no build may be running)."""
    n = 0
    for stage in STAGES:
        for tmp in (stage_dir(out_dir) / stage).glob("*.tmp"):
            tmp.unlink(missing_ok=True)
            n += 1
    for tmp in stage_dir(out_dir).glob("*.tmp"):
        tmp.unlink(missing_ok=True)
        n += 1
    return n


def iter_pending_shards(out_dir: Path | str, stage: str) -> Iterator[int]:
    """Shard indices of ``stage`` whose part file is not written yet, in order."""
    for k in range(shard_count(out_dir)):
        if not part_path(out_dir, stage, k).is_file():
            yield k


def iter_done_shards(out_dir: Path | str, stage: str) -> Iterator[int]:
    """Shard indices of ``stage`` whose part file exists, in order."""
    for k in range(shard_count(out_dir)):
        if part_path(out_dir, stage, k).is_file():
            yield k
