"""The tool-calling benchmark: a fixed split, one result file with a versioned schema, a leaderboard row.

``patchsmith bench`` runs a system (usually a model behind an OpenAI-compatible endpoint, given the
patchsmith tools) over the captions of a split and writes ``bench.json``: a ``BenchResult`` whose
schema (``SCHEMA_VERSION``) is exported as JSON Schema to ``evals/schemas/bench-result-v1.schema.json``
(``bench_json_schema()``). Everything needed to compare two results is inside: the package version, the
split id and the sha256 of its id list (and of the data files used), the render settings, the backend
of every metric with its weights hash, and the model name and endpoint (never a key). Per caption: did
the model call the tool, was the patch valid and after how many corrections, the ToolRL-style
format/keys/distance/exact scores against the ground truth, and the audio metrics of what it rendered.

Splits ship with the package as id lists over the source research's CSV format (``evals/splits/*.json``:
``bench-v1``, ``source-test``, ``dev-v1``); the data is passed in by path and never shipped.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from ..schema.jsonschema import DRAFT_2020_12
from .runner import Interval
from .systems import RenderSpec

SCHEMA_VERSION = "patchsmith-bench/1"
SCHEMA_FILE = "bench-result-v1.schema.json"
DEFAULT_SPLIT = "bench-v1"
_SPLIT_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")


class SplitError(ValueError):
    """An unknown split, or a split file that does not match its own hash."""


class Split(BaseModel):
    """A split definition: an id list over the source research's CSV format, and how it was chosen."""

    model_config = ConfigDict(extra="forbid")

    split: str
    version: int
    description: str
    selection: str
    data: str
    format: str
    id_column: str = "id"
    count: int
    ids_sha256: str
    ids: list[str]


def ids_sha256(ids: Sequence[str]) -> str:
    """sha256 of the ids joined by newlines, in split order (what results record)."""
    return hashlib.sha256("\n".join(ids).encode("utf-8")).hexdigest()


def split_names() -> list[str]:
    """The splits that ship with the package."""
    folder = resources.files(__package__).joinpath("splits")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load_split(name_or_path: str) -> Split:
    """A shipped split by name (``bench-v1``) or a split JSON file by path, its count and hash checked."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        if not _SPLIT_NAME.match(name_or_path) or name_or_path not in split_names():
            raise SplitError(f"--split {name_or_path}: unknown split; allowed {', '.join(split_names())} or a split "
                             "JSON file")
        text = resources.files(__package__).joinpath("splits", f"{name_or_path}.json").read_text(encoding="utf-8")
    try:
        split = Split.model_validate_json(text)
    except ValueError as err:
        raise SplitError(f"--split {name_or_path}: not a split definition ({str(err).splitlines()[0]})") from None
    if len(split.ids) != split.count or len(set(split.ids)) != len(split.ids):
        raise SplitError(f"--split {name_or_path}: count {split.count} does not match its {len(split.ids)} ids "
                         "(or ids repeat)")
    if ids_sha256(split.ids) != split.ids_sha256:
        raise SplitError(f"--split {name_or_path}: the ids do not match ids_sha256; the file was changed")
    return split


def public_url(url: str | None) -> str | None:
    """An endpoint URL without credentials or query (what may go into a shared result)."""
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# --- the result schema ---------------------------------------------------------------------------------


class PackageInfo(BaseModel):
    """Which patchsmith produced the result."""

    name: Literal["patchsmith"] = "patchsmith"
    version: str


class ModelInfo(BaseModel):
    """The system benchmarked: kind, model name, endpoint (no credentials), settings."""

    system: str = Field(description="the --system spec, endpoint credentials removed")
    kind: str = Field(description="offline, openai, zeroshot, checkpoint or wavs")
    name: str
    base_url: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)


class DataFile(BaseModel):
    """A data file the run read: its name and sha256 (the data itself is never shipped)."""

    name: str
    sha256: str


class SplitInfo(BaseModel):
    """The split and what of it was found in the data passed in."""

    id: str
    version: int
    count: int
    ids_sha256: str
    evaluated: int = Field(description="ids of the split found in the data and evaluated")
    missing_ids: list[str] = Field(default_factory=list, description="ids of the split not evaluated: absent from "
                                   "the data, or left out by limit")
    limit: int | None = Field(None, description="--limit: only the first N ids were run (a partial result, not a "
                                                "split result)")
    data_files: list[DataFile] = Field(default_factory=list)


class MetricBackend(BaseModel):
    """The backend behind one metric column."""

    metric: str
    column: str = Field(description="the metric's column: bare when published-comparable, else metric[backend]")
    backend_id: str
    backend_kind: str
    weights_sha256: str | None = None
    published: bool


class BenchItem(BaseModel):
    """One caption of the split."""

    id: str
    tool_called: bool
    valid: bool
    corrections: int = Field(description="tool errors before the accepted patch")
    attempts: int = Field(description="patch-bearing tool calls (or answers)")
    turns: int
    error: str | None = None
    format: float | None = None
    keys: float | None = None
    distance: float | None = None
    distance_gated: float | None = None
    toolrl_exact: float | None = None
    toolrl_exact_gated: float | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict, description="column -> value")


class BenchAggregates(BaseModel):
    """The split's numbers: rates and means with bootstrap CIs, and each metric."""

    n: int
    tool_call_rate: Interval
    validity_rate: Interval
    first_try_valid_rate: Interval
    corrections_when_valid: Interval
    format: Interval | None = None
    keys: Interval | None = None
    distance: Interval | None = None
    distance_gated: Interval | None = None
    toolrl_exact: Interval | None = None
    toolrl_exact_gated: Interval | None = None
    metrics: dict[str, Interval] = Field(default_factory=dict, description="column -> value")


class BenchResult(BaseModel):
    """One benchmark run: comparable across people, machines and versions."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["patchsmith-bench/1"] = SCHEMA_VERSION
    created_utc: str
    package: PackageInfo
    model: ModelInfo
    split: SplitInfo
    render: RenderSpec
    failed_items_scored_as: Literal["silence", "exclude"]
    backends: list[MetricBackend]
    items: list[BenchItem]
    aggregates: BenchAggregates
    leaderboard_row: str


def bench_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``BenchResult`` (what ``evals/schemas/bench-result-v1.schema.json`` holds)."""
    schema = BenchResult.model_json_schema()
    schema["$schema"] = DRAFT_2020_12
    schema["$id"] = f"https://patchsmith.invalid/schemas/{SCHEMA_FILE}"
    return schema


def schema_text() -> str:
    """The exported schema file's exact text."""
    return json.dumps(bench_json_schema(), indent=2, sort_keys=True) + "\n"


# --- building a result ---------------------------------------------------------------------------------


def _interval(stat: Any) -> Interval:
    return Interval(value=stat.value, low=stat.low, high=stat.high, n=stat.n)


def _metric_interval(m: dict[str, Any]) -> Interval:
    ci = m.get("ci") or {}
    return Interval(value=m.get("value"), low=ci.get("low"), high=ci.get("high"), n=m.get("n") or 0)


def build_result(run: Any, split: Split, spec: str, data_files: Sequence[tuple[str, str]],
                 created_utc: str | None = None, limit: int | None = None) -> BenchResult:
    """A ``BenchResult`` from an ``EvalRun`` of the split's rows."""
    sysinfo = dict(run.config.system)
    evaluated = {it.id for it in run.items}
    model = ModelInfo(system=_public_spec(spec), kind=str(sysinfo.get("kind", "?")),
                      name=str(sysinfo.get("model") or sysinfo.get("name") or "?"),
                      base_url=public_url(sysinfo.get("base_url")),
                      settings={k: v for k, v in sysinfo.items() if k not in ("kind", "name", "model", "base_url")})
    items = []
    for it in run.items:
        ps = it.patch_scores or {}
        items.append(BenchItem(id=it.id, tool_called=it.tool_called, valid=it.valid, corrections=it.corrections,
                               attempts=it.attempts, turns=it.turns, error=it.error,
                               **{k: ps.get(k) for k in ("format", "keys", "distance", "distance_gated",
                                                         "toolrl_exact", "toolrl_exact_gated")},
                               metrics=run.item_metrics.get(it.id, {})))
    p = run.process
    missing = Interval(value=None)
    agg = BenchAggregates(
        n=len(run.items),
        tool_call_rate=_interval(p["tool_call_rate"]) if "tool_call_rate" in p else missing,
        validity_rate=_interval(p["validity_rate"]) if "validity_rate" in p else _interval(p["audio_rate"]),
        first_try_valid_rate=_interval(p["first_try_valid_rate"]) if "first_try_valid_rate" in p else missing,
        corrections_when_valid=_interval(p["corrections_when_valid"]) if "corrections_when_valid" in p else missing,
        **{k: _interval(p[k]) for k in ("format", "keys", "distance", "distance_gated", "toolrl_exact",
                                         "toolrl_exact_gated") if k in p},
        metrics={m["column"]: _metric_interval(m) for m in run.metrics})
    backends = [MetricBackend(metric=m["metric"], column=m["column"], backend_id=m["backend_id"],
                              backend_kind=m["backend_kind"], weights_sha256=m.get("weights_sha256"),
                              published=bool(m["published"])) for m in run.metrics]
    info = SplitInfo(id=split.split, version=split.version, count=split.count, ids_sha256=split.ids_sha256,
                     evaluated=len(evaluated), missing_ids=[i for i in split.ids if i not in evaluated], limit=limit,
                     data_files=[DataFile(name=n, sha256=h) for n, h in data_files])
    created = created_utc or _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    result = BenchResult(created_utc=created, package=PackageInfo(version=run.config.package_version), model=model,
                         split=info, render=run.config.render, failed_items_scored_as=run.config.failed,
                         backends=backends, items=items, aggregates=agg, leaderboard_row="")
    result.leaderboard_row = leaderboard_row(result)
    return result


def _public_spec(spec: str) -> str:
    """The spec as it may be shared: no credentials in a URL, no local path beyond its last part."""
    kind, _, rest = spec.partition(":")
    m = re.match(r"^(?P<model>.+?)@(?P<url>https?://.+)$", rest)
    if m:
        return f"{kind}:{m.group('model')}@{public_url(m.group('url'))}"
    if kind in ("wavs", "checkpoint", "offline") and rest:
        return f"{kind}:{Path(rest).name}"  # a local path says nothing to others, and may say too much
    return spec


LEADERBOARD_COLUMNS = ("model", "system", "split", "n", "tool call", "valid", "valid 1st try", "corrections",
                       "format", "keys", "distance", "ToolRL", "RMS", "audio backends", "patchsmith")


def leaderboard_header() -> str:
    """The header (and rule) of the leaderboard table."""
    return "| " + " | ".join(LEADERBOARD_COLUMNS) + " |\n|" + "---|" * len(LEADERBOARD_COLUMNS)


def leaderboard_row(result: BenchResult) -> str:
    """One markdown table row for the leaderboard (columns ``LEADERBOARD_COLUMNS``)."""
    a = result.aggregates

    def pct(i: Interval | None) -> str:
        return "–" if i is None or i.value is None else f"{100 * i.value:.0f}%"

    def num(i: Interval | None, digits: int = 3) -> str:
        return "–" if i is None or i.value is None else f"{i.value:.{digits}f}"

    audio_backends = sorted({b.backend_id for b in result.backends if b.metric != "rms"})
    split = f"{result.split.id} ({result.split.ids_sha256[:8]})"
    if result.split.missing_ids:
        split += f", {result.split.evaluated} of {result.split.count}"  # a partial run is visibly partial
    cells = [result.model.name, result.model.kind, split, str(a.n), pct(a.tool_call_rate), pct(a.validity_rate),
             pct(a.first_try_valid_rate), num(a.corrections_when_valid, 2), num(a.format), num(a.keys),
             num(a.distance), num(a.toolrl_exact, 2), num(a.metrics.get("rms")), ", ".join(audio_backends) or "–",
             result.package.version]
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


__all__ = ["BenchResult", "DEFAULT_SPLIT", "SCHEMA_FILE", "SCHEMA_VERSION", "Split", "SplitError", "bench_json_schema",
           "build_result", "ids_sha256", "leaderboard_header", "leaderboard_row", "load_split", "public_url",
           "schema_text", "split_names"]
