"""``run_eval``: captions -> a system -> patches and audio -> scores, aggregates and a report.

For each caption the system answers (``evals.systems``); a patch is rendered at the run's render
settings, the ground-truth patch (when the patch CSV has one) is rendered the same way as the
reference, and the patch is scored against the truth (``evals.patch_scores``: format, keys,
distance, ToolRL exact). Every finished item is appended to ``OUT/items.jsonl`` at once, so an
interrupted run resumes where it stopped (renders are deterministic, so audio is recomputed from
the stored patch instead of being kept). When every item is done, the audio metrics are computed
in one pass (``evals.metrics.pipeline.evaluate``: per-item metrics, set-level FAD/KAD, bootstrap
CIs, each number tagged with its backend), the process numbers are aggregated (validity rate,
tool-call rate, corrections, patch scores, with bootstrap CIs), and the report files are written
(``evals.report``, ``evals.plots``), all of them together or none.

A caption for which the system produced no usable patch is scored as silence (``failed="silence"``,
the sound it made: that is the honest penalty) or left out of the audio metrics
(``failed="exclude"``); the validity rate says how many there were either way.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .systems import EvalRow, RenderSpec, SystemOutput, SystemUnavailable

ITEMS_FILE = "items.jsonl"
FailedPolicy = Literal["silence", "exclude"]
PATCH_SCORE_NAMES = ("format", "keys", "distance", "distance_gated", "toolrl_exact", "toolrl_exact_gated")


class EvalInputError(ValueError):
    """Input the runner cannot use (a CSV without the needed columns, an output folder of another run)."""


class ItemRecord(BaseModel):
    """One finished caption: what the system made of it and the patch scores (one line of items.jsonl)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    caption: str
    name: str = ""
    patch: dict[str, Any] | None = None
    valid: bool = False
    tool_called: bool = False
    corrections: int = 0
    attempts: int = 0
    turns: int = 0
    error: str | None = None
    raw: str = ""
    elapsed_s: float = 0.0
    audio_file: str | None = None  # audio-only systems: the file the audio came from
    has_reference: bool = False
    patch_scores: dict[str, float] | None = None


class RunConfig(BaseModel):
    """What a run is: the package, the system, the render settings and how failures are scored."""

    model_config = ConfigDict(extra="forbid")

    package_version: str
    system: dict[str, Any]
    render: RenderSpec
    failed: FailedPolicy = "silence"


class Interval(BaseModel):
    """A value with its 95 % bootstrap interval."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0


Stat = Interval  # a run's rates and means; ``bench`` publishes the same model as "Interval" in its schema


class EvalRun(BaseModel):
    """Everything one run measured."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    config: RunConfig
    items: list[ItemRecord]
    metrics: list[dict[str, Any]] = Field(default_factory=list)  # evals.metrics MetricSummary dumps
    item_metrics: dict[str, dict[str, float | None]] = Field(default_factory=dict)  # id -> column -> value
    process: dict[str, Stat] = Field(default_factory=dict)
    backends: dict[str, dict[str, Any]] = Field(default_factory=dict)
    flags: dict[str, int] = Field(default_factory=dict)


# --- input -------------------------------------------------------------------------------------------------


def load_rows(captions_csv: str | os.PathLike[str], patches_csv: str | os.PathLike[str] | None = None,
              ids: Sequence[str] | None = None) -> tuple[list[EvalRow], list[str]]:
    """The captions (joined on ``id`` with their ground-truth patches), in CSV order or in ``ids`` order.

    Returns (rows, notes): a caption row with an empty caption, a patch that does not import, or an id
    of ``ids`` found in no row is left out with a note. ``EvalInputError`` for files that cannot be used.
    """
    from ..schema.source_research import SourceResearchError, read_caption_csv, read_source_csv

    path = Path(captions_csv)
    if not path.is_file():
        raise EvalInputError(f"--captions {path}: no such file")
    notes: list[str] = []
    captions: dict[str, tuple[str, str]] = {}
    try:
        caption_rows = read_caption_csv(path)
    except SourceResearchError as err:  # "<path>: missing column(s) ..." or "<path>: not a readable CSV file (...)"
        raise EvalInputError(f"--captions {err}") from None
    for rec in caption_rows:
        if not rec.id:
            continue
        if not rec.caption:
            notes.append(f"caption id {rec.id}: empty caption, left out")
            continue
        captions.setdefault(rec.id, (rec.caption, rec.name))
    if not captions:
        raise EvalInputError(f"--captions {path}: no captioned rows")
    truths: dict[str, dict[str, Any]] = {}
    if patches_csv is not None:
        ppath = Path(patches_csv)
        if not ppath.is_file():
            raise EvalInputError(f"--patches {ppath}: no such file")
        try:
            prow = read_source_csv(ppath)
        except SourceResearchError as err:
            raise EvalInputError(f"--patches {err}") from None
        for r in prow:
            if r.patch is None:
                notes.append(f"patch id {r.id}: {r.error}; its caption is evaluated without a ground truth")
            else:
                truths.setdefault(r.id, r.patch.to_dict())
    order = list(ids) if ids is not None else list(captions)
    rows = []
    for cid in order:
        if cid not in captions:
            notes.append(f"id {cid}: not in {path.name}, left out")
            continue
        cap, name = captions[cid]
        rows.append(EvalRow(id=cid, caption=cap, name=name, patch=truths.get(cid)))
    if patches_csv is not None:
        without = sum(r.patch is None for r in rows)
        if without:
            notes.append(f"{without} caption(s) have no ground-truth patch in {Path(patches_csv).name}: no reference "
                         "audio and no patch scores for them")
    if not rows:
        raise EvalInputError(f"--captions {path}: none of the selected ids has a caption")
    return rows, notes


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (a data file a result records)."""
    from .metrics.backends import weights_sha256

    return weights_sha256(path)


# --- one item ----------------------------------------------------------------------------------------------


def render_patch(patch: Mapping[str, Any], render: RenderSpec) -> np.ndarray:
    """The patch played at the run's render settings (float32 mono)."""
    from ..synth.render import render as _render

    return _render(dict(patch), **render.render_kwargs())


def _patch_scores(pred: Any, truth: Mapping[str, Any] | None) -> dict[str, float] | None:
    if truth is None:
        return None
    from .patch_scores import score_patch

    s = score_patch(pred, truth)
    return {k: round(float(getattr(s, k)), 6) for k in PATCH_SCORE_NAMES}


def run_item(row: EvalRow, system: Any, render: RenderSpec) -> ItemRecord:
    """Ask the system for one caption and score its patch (a system bug on one item becomes its error)."""
    try:
        out: SystemOutput = system.generate(row, render)
    except SystemUnavailable:
        raise
    except Exception as err:  # one caption must not lose the run
        out = SystemOutput(error=f"{type(err).__name__}: {err}")
    rec = ItemRecord(id=row.id, caption=row.caption, name=row.name, patch=out.patch, valid=out.valid,
                     tool_called=out.tool_called, corrections=out.corrections, attempts=out.attempts, turns=out.turns,
                     error=out.error, raw=out.raw, elapsed_s=out.elapsed_s, has_reference=row.patch is not None)
    if not getattr(system, "makes_patches", True):
        folder = getattr(system, "folder", None)
        rec.audio_file = f"{row.id}.wav" if folder is not None and out.audio is not None else None
        return rec
    rec.patch_scores = _patch_scores(out.patch, row.patch)
    return rec


# --- resumable item log ------------------------------------------------------------------------------------


def _read_log(path: Path, config: RunConfig) -> dict[str, ItemRecord]:
    """The finished items of an earlier run of the same config (``EvalInputError`` for another run's log)."""
    if not path.exists():
        return {}
    done: dict[str, ItemRecord] = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines:
        return {}
    try:
        head = json.loads(lines[0])
    except json.JSONDecodeError:
        raise EvalInputError(f"{path}: not an items log of patchsmith eval; use another --out folder") from None
    old = head.get("config") if isinstance(head, dict) else None
    mine = json.loads(config.model_dump_json())
    if old != mine:
        raise EvalInputError(f"{path.parent}: holds a run with other settings (system, render or package version); "
                             "use another --out folder, or --fresh to start this one over")
    for line in lines[1:]:
        try:
            rec = ItemRecord.model_validate_json(line)
        except ValueError:
            continue  # a line cut short by a crash: the item is simply run again
        done[rec.id] = rec
    return done


def _append(path: Path, config: RunConfig, rec: ItemRecord) -> None:
    """Append one finished item (the folder and the config line appear with the first item)."""
    fresh = not path.exists() or path.stat().st_size == 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        if fresh:
            f.write(json.dumps({"type": "config", "config": json.loads(config.model_dump_json())}) + "\n")
        f.write(rec.model_dump_json() + "\n")
        f.flush()
        os.fsync(f.fileno())


# --- aggregation -------------------------------------------------------------------------------------------


def _stat(values: Sequence[float | None], n_boot: int, seed: int) -> Stat:
    from .metrics.bootstrap import bootstrap_ci

    ci = bootstrap_ci(values, n=max(1, n_boot), seed=seed)
    return Stat(value=ci.estimate, low=ci.low, high=ci.high, n=ci.n)


def process_stats(items: Sequence[ItemRecord], makes_patches: bool, n_boot: int = 1000, seed: int = 0) -> dict[str, Stat]:
    """Validity rate, tool-call rate, first-try validity, corrections and patch scores, with CIs."""
    if not items:
        return {}
    out = {"success_rate": _stat([0.0 if r.error and not r.valid else 1.0 for r in items], n_boot, seed)}
    if not makes_patches:
        out["audio_rate"] = _stat([1.0 if r.valid else 0.0 for r in items], n_boot, seed)
        return out
    out["validity_rate"] = _stat([1.0 if r.valid else 0.0 for r in items], n_boot, seed)
    out["tool_call_rate"] = _stat([1.0 if r.tool_called else 0.0 for r in items], n_boot, seed)
    out["first_try_valid_rate"] = _stat([1.0 if r.valid and r.corrections == 0 else 0.0 for r in items], n_boot, seed)
    out["corrections_when_valid"] = _stat([float(r.corrections) for r in items if r.valid], n_boot, seed)
    for name in PATCH_SCORE_NAMES:
        vals = [r.patch_scores[name] for r in items if r.patch_scores is not None]
        if vals:
            out[name] = _stat(vals, n_boot, seed)
    return out


def _audio_for(rec: ItemRecord, system: Any, render: RenderSpec) -> np.ndarray | None:
    """The item's generated audio at the run's sample rate, or None when it made none."""
    if rec.audio_file is not None:
        from ..synth.wav import read_wav
        from .metrics.backends import resample

        audio, sr = read_wav(Path(system.folder) / rec.audio_file)
        x = np.asarray(audio, dtype=np.float64)
        x = x.mean(axis=1) if x.ndim == 2 else x
        return np.asarray(resample(x, int(sr), render.sample_rate), dtype=np.float32)
    if rec.patch is not None and rec.valid:
        return render_patch(rec.patch, render)
    return None


def score_audio(items: Sequence[ItemRecord], rows: Mapping[str, EvalRow], system: Any, config: RunConfig,
                backends: Any = None, n_boot: int = 1000, seed: int = 0, set_boot: int = 0,
                keep_audio: Iterable[str] = (), quiet: bool = True) -> tuple[Any, dict[str, tuple[np.ndarray, np.ndarray | None]]]:
    """Render every item (and its reference) and run the metrics pipeline; returns (EvalResult, kept audio)."""
    from tqdm import tqdm

    from .metrics.pipeline import EvalItem, evaluate

    render = config.render
    length = int(round(render.seconds * render.sample_rate))
    keep = set(keep_audio)
    kept: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    eval_items = []
    for rec in tqdm(items, desc="render", unit="item", disable=True if quiet else None, leave=False):
        gen = _audio_for(rec, system, render)
        if gen is None:
            if config.failed == "exclude":
                continue
            gen = np.zeros(length, dtype=np.float32)  # no usable patch: the system made no sound
        truth = rows[rec.id].patch if rec.id in rows else None
        ref = render_patch(truth, render) if truth is not None else None
        if rec.id in keep:
            kept[rec.id] = (gen, ref)
        eval_items.append(EvalItem(id=rec.id, caption=rec.caption, generated=gen, reference=ref,
                                   sample_rate=render.sample_rate))
    if not eval_items:
        return None, kept
    result = evaluate(eval_items, backends=backends, n_boot=n_boot, set_boot=set_boot, seed=seed)
    return result, kept


def run_eval(rows: Sequence[EvalRow], system: Any, out_dir: str | os.PathLike[str], *, backends: Any = None,
             render: RenderSpec | None = None, failed: FailedPolicy = "silence", resume: bool = True,
             n_boot: int = 1000, set_boot: int = 0, seed: int = 0, quiet: bool = True, examples: int = 4,
             plots: bool = True, title: str | None = None,
             extra_files: Mapping[str, Any] | Callable[[EvalRun], Mapping[str, Any]] | None = None) -> EvalRun:
    """Evaluate ``system`` on ``rows`` into ``out_dir`` (see the module docstring); returns the run."""
    from tqdm import tqdm

    from .. import __version__

    render = render or RenderSpec()
    rows = list(rows)
    if not rows:
        raise EvalInputError("no captions to evaluate")
    if len({r.id for r in rows}) != len(rows):
        raise EvalInputError("caption ids must be unique")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EvalInputError(f"--out {out}: exists and is not a folder")
    if not out.exists() and not out.parent.is_dir():
        raise EvalInputError(f"--out {out}: the folder {out.parent} does not exist")
    config = RunConfig(package_version=__version__, system=system.describe(), render=render, failed=failed)
    log = out / ITEMS_FILE
    if not resume and log.exists():
        log.unlink()
    done = _read_log(log, config)
    by_id = {r.id: r for r in rows}
    done = {k: v for k, v in done.items() if k in by_id and v.caption == by_id[k].caption}
    todo = [r for r in rows if r.id not in done]
    for row in tqdm(todo, desc=f"eval {getattr(system, 'name', 'system')}", unit="caption",
                    disable=True if quiet else None, leave=False):
        rec = run_item(row, system, render)
        _append(log, config, rec)
        done[row.id] = rec
    items = [done[r.id] for r in rows]
    makes_patches = getattr(system, "makes_patches", True)
    run = EvalRun(config=config, items=items, process=process_stats(items, makes_patches, n_boot, seed))
    keep = [r.id for r in items if r.valid][:max(0, examples)]
    result, kept = score_audio(items, by_id, system, config, backends=backends, n_boot=n_boot, seed=seed,
                               set_boot=set_boot, keep_audio=keep, quiet=quiet)
    if result is not None:
        run.metrics = [s.model_dump(mode="json") for s in result.summaries]
        run.item_metrics = {it.id: {v.column: v.value for v in it.values} for it in result.items}
        run.backends = {k: v.model_dump(mode="json") for k, v in result.backends.items()}
        run.flags = dict(result.counts)
    extra = extra_files(run) if callable(extra_files) else extra_files
    write_outputs(run, out, kept, title=title or f"patchsmith eval: {config.system.get('name', 'system')}",
                  plots=plots, extra_files=extra)
    return run


# --- output files ------------------------------------------------------------------------------------------


def items_csv(run: EvalRun) -> str:
    """One row per caption: what the system did, the patch scores and every audio metric."""
    columns = sorted({c for m in run.item_metrics.values() for c in m})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "name", "caption", "valid", "tool_called", "corrections", "attempts", "turns", "elapsed_s",
                "error", *PATCH_SCORE_NAMES, *columns])
    for r in run.items:
        ps = r.patch_scores or {}
        m = run.item_metrics.get(r.id, {})
        w.writerow([r.id, r.name, r.caption, int(r.valid), int(r.tool_called), r.corrections, r.attempts, r.turns,
                    r.elapsed_s, r.error or "", *[_cell(ps.get(k)) for k in PATCH_SCORE_NAMES],
                    *[_cell(m.get(c)) for c in columns]])
    return buf.getvalue()


def _cell(v: float | None) -> str:
    return "" if v is None else f"{v:.6g}"


def summary_csv(run: EvalRun) -> str:
    """One row per aggregate: process numbers, then metrics (column, backend, value, CI, n)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["kind", "name", "backend", "published", "value", "ci_low", "ci_high", "n", "n_missing"])
    for name, s in run.process.items():
        w.writerow(["process", name, "", "", _cell(s.value), _cell(s.low), _cell(s.high), s.n, ""])
    for m in run.metrics:
        ci = m.get("ci") or {}
        w.writerow(["metric", m["column"], m["backend_id"], int(bool(m["published"])), _cell(m["value"]),
                    _cell(ci.get("low")), _cell(ci.get("high")), m["n"], m["n_missing"]])
    return buf.getvalue()


def write_outputs(run: EvalRun, out: Path, kept: Mapping[str, tuple[np.ndarray, np.ndarray | None]], *,
                  title: str, plots: bool = True, extra_files: Mapping[str, Any] | None = None) -> list[str]:
    """Write the report files into ``out`` together (staged, then moved); returns their names."""
    from .report import markdown_report

    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        (staging / "results.csv").write_text(items_csv(run), encoding="utf-8")
        (staging / "summary.csv").write_text(summary_csv(run), encoding="utf-8")
        (staging / "summary.json").write_text(run.model_dump_json(indent=1) + "\n", encoding="utf-8")
        for name, content in (extra_files or {}).items():
            data = content if isinstance(content, (str, bytes)) else json.dumps(content, indent=1) + "\n"
            (staging / name).write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        figures: list[str] = []
        if kept:
            from ..synth.wav import write_wav

            (staging / "examples").mkdir()
            for rid, (gen, ref) in kept.items():
                write_wav(staging / "examples" / f"{_safe(rid)}-generated.wav", gen, run.config.render.sample_rate)
                if ref is not None:
                    write_wav(staging / "examples" / f"{_safe(rid)}-reference.wav", ref, run.config.render.sample_rate)
        if plots:
            from .plots import PlotsUnavailable, write_plots

            try:
                figures = write_plots(run, staging / "plots", kept)
            except PlotsUnavailable as err:
                (staging / "plots-unavailable.txt").write_text(f"{err}\n", encoding="utf-8")
        (staging / "report.md").write_text(markdown_report(run, title=title, figures=figures), encoding="utf-8")
        files = [item for item in sorted(staging.rglob("*")) if item.is_file()]
        for item in files:  # every folder first, so that the moves below cannot stop half-way for want of one
            (out / item.relative_to(staging)).parent.mkdir(parents=True, exist_ok=True)
        for item in files:
            os.replace(item, out / item.relative_to(staging))
        return [str(item.relative_to(staging)) for item in files]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text) or "item"


__all__ = ["EvalInputError", "EvalRun", "Interval", "ItemRecord", "RunConfig", "Stat", "file_sha256", "items_csv", "load_rows",
           "process_stats", "render_patch", "run_eval", "run_item", "score_audio", "summary_csv", "write_outputs"]
