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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:  # pyarrow is a core dependency, but imported lazily to keep imports cheap
    import pyarrow as pa

__all__ = [
    "STAGES",
    "ErrorTally",
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
    "shard_size",
    "manifest_rows",
    "shard_count",
    "shard_rows",
    "iter_pending_shards",
    "write_atomic",
    "write_json_atomic",
    "remove_stale_temp_files",
    "fsync_dir",
]

# The stages that write part files, in build order; the manifest is written once before them.
STAGES: tuple[str, ...] = ("renders", "captions", "cot")


class StageError(RuntimeError):
    """A stage folder or file that cannot be used as asked; the message says why."""


class ErrorTally(BaseModel):
    """How many errors there were, with the first few messages as examples."""

    errors: int = 0
    error_examples: list[str] = Field(default_factory=list)

    def add_error(self, message: str, *, keep: int = 10) -> None:
        """Count one error, keeping the first ``keep`` messages as examples."""
        self.errors += 1
        if len(self.error_examples) < keep:
            self.error_examples.append(message)

    def add_errors(self, other: "ErrorTally") -> None:
        """Count ``other``'s errors too, its examples among these."""
        for example in other.error_examples:
            self.add_error(example)
        self.errors += other.errors - len(other.error_examples)


class StageReport(ErrorTally):
    """What one stage run did: shards before/after, rows written, errors with a few examples."""

    stage: str
    shards_total: int = 0
    shards_done_before: int = 0
    shards_written: int = 0
    rows: int = 0


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


def write_atomic(path: Path | str, write: Callable[[Path], Any]) -> Path:
    """Write ``path`` through ``write(tmp_path)`` atomically: a temp file beside it, fsynced, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:  # ``write`` closed its own handle; fsync makes the bytes durable before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def _leaf_columns(schema: "pa.Schema") -> list[tuple[str, bool]]:
    """Every leaf column as Parquet names it (dotted inside structs), and whether it holds binary data."""
    import pyarrow as pa

    def leaves(prefix: str, typ: "pa.DataType") -> list[tuple[str, bool]]:
        if pa.types.is_struct(typ):
            return [leaf for f in typ for leaf in leaves(f"{prefix}.{f.name}", f.type)]
        if pa.types.is_map(typ):
            return leaves(f"{prefix}.key_value.key", typ.key_type) + leaves(f"{prefix}.key_value.value", typ.item_type)
        if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
            return leaves(f"{prefix}.list.element", typ.value_type)
        return [(prefix, pa.types.is_binary(typ) or pa.types.is_large_binary(typ))]

    return [leaf for f in schema for leaf in leaves(f.name, f.type)]


def write_part(path: Path | str, table: "pa.Table", *, row_group_size: int | None = None) -> Path:
    """Write ``table`` as Parquet at ``path`` atomically (temp file, fsync, rename); returns the path."""
    import pyarrow.parquet as pq

    # FLAC bytes neither compress nor repeat: zstd and a dictionary on them only cost time (half of a
    # render shard's write); every other column keeps both.
    leaves = _leaf_columns(table.schema)
    compression = {name: "none" if binary else "zstd" for name, binary in leaves}
    dictionary = [name for name, binary in leaves if not binary]
    return write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression=compression,
                                                         use_dictionary=dictionary, row_group_size=row_group_size))


def write_json_atomic(path: Path | str, data: Any) -> Path:
    """Write ``data`` as indented, key-sorted JSON at ``path`` atomically."""
    text = json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_part(out_dir: Path | str, stage: str, k: int, columns: list[str] | None = None) -> "pa.Table | None":
    """Shard ``k`` of ``stage`` as a table, or None when that part is not written yet."""
    import pyarrow.parquet as pq

    path = part_path(out_dir, stage, k)
    if not path.is_file():
        return None
    return pq.read_table(path, columns=columns)


def _written_manifest(out_dir: Path | str) -> Path:
    path = manifest_path(out_dir)
    if not path.is_file():
        raise StageError(f"{path} does not exist: run 'patchsmith dataset build' first")
    return path


def read_manifest(out_dir: Path | str, columns: list[str] | None = None) -> "pa.Table":
    """The manifest table; ``StageError`` when the build has not written it."""
    import pyarrow.parquet as pq

    return pq.read_table(_written_manifest(out_dir), columns=columns)


def read_build_options(out_dir: Path | str) -> dict[str, Any]:
    """The options in ``OUT/stage/build.json``; ``StageError`` when missing or unreadable."""
    path = build_json_path(out_dir)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StageError(f"{path} does not exist: run 'patchsmith dataset build' first") from None
    except (OSError, ValueError) as exc:
        raise StageError(f"{path} cannot be read: {exc}") from None


def shard_size(out_dir: Path | str) -> int:
    """The build's shard size S from ``build.json``; ``StageError`` when it holds none."""
    size = read_build_options(out_dir).get("shard_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise StageError(f"{build_json_path(out_dir)} has no valid shard_size (found {size!r})")
    return size


def manifest_rows(out_dir: Path | str) -> int:
    """How many voices the manifest holds (read from its metadata)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(_written_manifest(out_dir)).metadata.num_rows


def shard_count(out_dir: Path | str) -> int:
    """How many shards every stage has: ceil(manifest rows / shard size)."""
    n, size = manifest_rows(out_dir), shard_size(out_dir)
    return (n + size - 1) // size


def shard_rows(out_dir: Path | str, k: int, columns: list[str] | None = None) -> "pa.Table":
    """The manifest rows of shard ``k`` (``[k*S, (k+1)*S)``), ``columns`` only when given."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = shard_size(out_dir)
    manifest = pq.ParquetFile(_written_manifest(out_dir))
    meta = manifest.metadata
    n_shards = (meta.num_rows + size - 1) // size
    if not 0 <= k < n_shards:
        raise StageError(f"shard {k} is out of range (manifest has {meta.num_rows} rows, shard size {size})")
    # Only the row groups that hold the shard (the build writes one per shard): a worker reading the
    # whole manifest for every shard spent a tenth of its time there on a large build.
    lo, hi = k * size, min(meta.num_rows, (k + 1) * size)
    if meta.num_row_groups == n_shards and meta.row_group(0).num_rows == min(size, meta.num_rows):
        groups = [(k, lo)]
    else:  # a manifest written otherwise (by hand, or before row groups matched shards)
        first, groups = 0, []
        for g in range(meta.num_row_groups):
            n = meta.row_group(g).num_rows
            if first < hi and first + n > lo:
                groups.append((g, first))
            first += n
    table = pa.concat_tables([manifest.read_row_group(g, columns=columns) for g, _ in groups])
    return table.slice(lo - groups[0][1], hi - lo)


def remove_stale_temp_files(out_dir: Path | str) -> int:
    """Delete the ``*.tmp`` files a killed run left (stage parts, answer cache, audio files); returns how many.

    No build may be running in ``out_dir``: its files in flight are ``*.tmp`` files too.
    """
    n = 0
    for folder in (stage_dir(out_dir), Path(out_dir) / "audio"):
        for tmp in folder.rglob("*.tmp"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                n += 1
    return n


def iter_pending_shards(out_dir: Path | str, stage: str) -> Iterator[int]:
    """Shard indices of ``stage`` whose part file is not written yet, in order."""
    for k in range(shard_count(out_dir)):
        if not part_path(out_dir, stage, k).is_file():
            yield k

