"""``eval-refine``: does a system move a patch the way an instruction asks, and how little does it change?

An instruction set is a list of (patch, instruction, quality, direction) items: "brighter" on an
electric piano should raise the spectral centroid. A system edits each patch (``refine(patch,
instruction, render)``, the same systems as ``eval``); both patches are rendered and described
(``evals.descriptors``), and the item scores:

* **direction**: +1 / -1 / 0, the audible change of the quality's descriptor (centroid for brightness,
  attack time for attack, ...; a change smaller than max(share x old value, floor) counts as none:
  ``evals.edit_direction``, the designer's judge too); the item is correct when it equals the asked direction;
* **minimal-change cost**: how many parameters changed (every leaf of the voice), and the normalised
  parameter distance ``1 - distance_score(edited, original)`` (0 = unchanged, 1 = every number at the
  other end of its range), and the log-mel distance between the two renders in dB.

Aggregates carry bootstrap CIs, overall and per quality. The instruction-set file (JSON) is
``{"name": ..., "items": [{"id", "patch", "instruction", "quality", "direction"}, ...]}`` with canonical
patches; ``default_instruction_set(patches)`` builds one from any patches and ``DEFAULT_INSTRUCTIONS``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .edit_direction import AUDIBLE, QUALITIES, direction, measure
from .systems import RenderSpec, SystemOutput, SystemUnavailable

# (instruction, quality, direction): one of each way for the qualities every voice has.
DEFAULT_INSTRUCTIONS: tuple[tuple[str, str, int], ...] = (
    ("brighter", "brightness", 1), ("darker", "brightness", -1),
    ("softer attack", "attack", 1), ("sharper attack", "attack", -1),
    ("longer decay", "decay", 1), ("shorter decay", "decay", -1),
    ("longer release", "release", 1), ("shorter release", "release", -1),
    ("more metallic", "metallic", 1), ("louder", "level", 1), ("quieter", "level", -1),
)


class RefineItem(BaseModel):
    """One instruction on one patch, and which way the quality should move."""

    model_config = ConfigDict(extra="forbid")

    id: str
    patch: dict[str, Any]
    instruction: str = Field(min_length=1, max_length=400)
    quality: str
    direction: int = Field(ge=-1, le=1)


class InstructionSet(BaseModel):
    """A named list of ``RefineItem``."""

    model_config = ConfigDict(extra="forbid")

    name: str = "custom"
    version: int = 1
    items: list[RefineItem]


class RefineResult(BaseModel):
    """What one item gave: the edit, its direction and its cost."""

    id: str
    instruction: str
    quality: str
    expected: int
    observed: int | None = None  # None when the system failed or a render could not be described
    correct: bool = False
    before: float | None = None  # the quality's descriptor before and after
    after: float | None = None
    changed_params: int | None = None
    param_distance: float | None = None
    audio_distance_db: float | None = None
    valid: bool = False
    tool_called: bool = False
    error: str | None = None


class InstructionSetError(ValueError):
    """An instruction-set file that cannot be used; the message says what and where."""


def load_instruction_set(path: str | os.PathLike[str]) -> InstructionSet:
    """An instruction set from a JSON file, every item's patch validated."""
    from ..schema.validate import validate

    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise InstructionSetError(f"{p}: cannot read the file: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InstructionSetError(f"{p}: not a JSON file ({err})") from None
    try:
        items = InstructionSet.model_validate(data)
    except ValidationError as err:
        lines = [f"{p}: /{'/'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:10]]
        raise InstructionSetError("\n".join(lines)) from None
    problems = []
    for k, item in enumerate(items.items):
        if item.quality not in AUDIBLE:
            problems.append(f"{p}: /items/{k}/quality: found {item.quality!r}, allowed {', '.join(QUALITIES)}")
        report = validate(item.patch)
        if not report.valid:
            problems += [f"{p}: /items/{k}/patch{pr.line()}" for pr in report.problems[:3]]
    if not items.items:
        problems.append(f"{p}: /items: empty; allowed a list of at least one item")
    if problems:
        raise InstructionSetError("\n".join(problems))
    return items


def default_instruction_set(patches: Mapping[str, Any], instructions: Sequence[tuple[str, str, int]] = DEFAULT_INSTRUCTIONS,
                            name: str = "default") -> InstructionSet:
    """Every instruction of ``instructions`` on every patch (ids ``<patch id>/<instruction>``)."""
    from ..synth.render import as_patch

    items = []
    for pid, patch in patches.items():
        canonical = as_patch(patch).to_dict()
        items += [RefineItem(id=f"{pid}/{text.replace(' ', '-')}", patch=canonical, instruction=text, quality=q,
                             direction=d) for text, q, d in instructions]
    return InstructionSet(name=name, items=items)


def _describe(patch: Mapping[str, Any], render: RenderSpec) -> tuple[Any, Any]:
    from .descriptors import render_and_describe

    return render_and_describe(dict(patch), **render.render_kwargs())


def score_refinement(item: RefineItem, out: SystemOutput, render: RenderSpec,
                     before: tuple[Any, Any] | None = None) -> RefineResult:
    """Direction and cost of one edit (``before``: the original's cached (audio, descriptors))."""
    from ..schema.validate import validate
    from ..synth.edits import diff_patches
    from .distances import log_mel_distance_db
    from .patch_scores import distance_score

    res = RefineResult(id=item.id, instruction=item.instruction, quality=item.quality, expected=item.direction,
                       valid=out.valid, tool_called=out.tool_called, error=out.error)
    if out.patch is None:
        res.error = res.error or "no patch"
        return res
    report = validate(out.patch)
    if not report.valid:
        res.valid = False
        res.error = "the edited patch is invalid: " + "; ".join(p.line() for p in report.problems[:3])
        return res
    original = validate(item.patch).patch
    audio0, d0 = before if before is not None else _describe(item.patch, render)
    audio1, d1 = _describe(report.patch.to_dict(), render)
    res.observed = direction(item.quality, d0, d1)
    res.correct = res.observed == item.direction
    b, a = measure(item.quality, d0), measure(item.quality, d1)
    res.before = b if math.isfinite(b) else None
    res.after = a if math.isfinite(a) else None
    res.changed_params = len(diff_patches(original, report.patch))
    res.param_distance = round(1.0 - distance_score(report.patch, original), 6)
    res.audio_distance_db = round(log_mel_distance_db(audio0, audio1, render.sample_rate), 4)
    return res


def run_refine_eval(items: InstructionSet, refine: Callable[[dict[str, Any], str, RenderSpec], SystemOutput],
                    render: RenderSpec = RenderSpec(hold_s=3.0, release_s=1.0), *, quiet: bool = True,
                    n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Edit every item with ``refine`` and score it; returns ``{"items": [...], "aggregates": {...}}``."""
    from tqdm import tqdm

    cache: dict[str, tuple[Any, Any]] = {}
    results: list[RefineResult] = []
    for item in tqdm(items.items, desc="eval-refine", unit="edit", disable=True if quiet else None, leave=False):
        key = json.dumps(item.patch, sort_keys=True)
        if key not in cache:
            cache[key] = _describe(item.patch, render)
        try:
            out = refine(dict(item.patch), item.instruction, render)
        except SystemUnavailable:
            raise
        except Exception as err:  # a system bug on one item must not lose the others
            out = SystemOutput(error=f"{type(err).__name__}: {err}")
        results.append(score_refinement(item, out, render, cache[key]))
    return {"instruction_set": items.name, "render": render.model_dump(), "items": [r.model_dump() for r in results],
            "aggregates": aggregate_refinements(results, n_boot=n_boot, seed=seed)}


def aggregate_refinements(results: Sequence[RefineResult], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Direction accuracy and change costs with bootstrap CIs, overall and per quality."""
    from .metrics.bootstrap import bootstrap_ci

    def block(rs: Sequence[RefineResult]) -> dict[str, Any]:
        done = [r for r in rs if r.observed is not None]
        return {
            "n": len(rs), "scored": len(done),
            "direction_accuracy": bootstrap_ci([1.0 if r.correct else 0.0 for r in rs], n_boot, seed).model_dump(),
            "unchanged_rate": (sum(r.observed == 0 for r in done) / len(done)) if done else None,
            "wrong_way_rate": (sum(r.observed == -r.expected and r.expected != 0 for r in done) / len(done))
            if done else None,
            "changed_params": bootstrap_ci([r.changed_params for r in done], n_boot, seed).model_dump(),
            "param_distance": bootstrap_ci([r.param_distance for r in done], n_boot, seed).model_dump(),
            "audio_distance_db": bootstrap_ci([r.audio_distance_db for r in done], n_boot, seed).model_dump(),
            "validity_rate": (sum(r.valid for r in rs) / len(rs)) if rs else None,
        }

    out = {"overall": block(results), "by_quality": {}}
    for q in QUALITIES:
        rs = [r for r in results if r.quality == q]
        if rs:
            out["by_quality"][q] = block(rs)
    return out


def refine_markdown(result: Mapping[str, Any], system: str) -> str:
    """A markdown table of the aggregates: one row overall, one per quality."""
    def fmt(ci: Mapping[str, Any], digits: int = 3) -> str:
        if ci.get("estimate") is None:
            return "–"
        lo, hi = ci.get("low"), ci.get("high")
        span = f" [{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None and hi is not None else ""
        return f"{ci['estimate']:.{digits}f}{span}"

    agg = result["aggregates"]
    lines = [f"# eval-refine: {system}", "",
             f"Instruction set `{result['instruction_set']}`, {agg['overall']['n']} edits. Direction accuracy: the "
             "share of edits whose descriptor moved audibly the way the instruction asks (95 % bootstrap CI).", "",
             "| quality | n | direction accuracy | unchanged | wrong way | params changed | param distance | "
             "log-mel distance (dB) |", "|---|---|---|---|---|---|---|---|"]
    rows = [("all", agg["overall"])] + list(agg["by_quality"].items())
    for name, b in rows:
        unchanged = "–" if b["unchanged_rate"] is None else f"{b['unchanged_rate']:.2f}"
        wrong = "–" if b["wrong_way_rate"] is None else f"{b['wrong_way_rate']:.2f}"
        lines.append(f"| {name} | {b['n']} | {fmt(b['direction_accuracy'], 2)} | {unchanged} | {wrong} | "
                     f"{fmt(b['changed_params'], 1)} | {fmt(b['param_distance'], 4)} | {fmt(b['audio_distance_db'], 2)} |")
    return "\n".join(lines) + "\n"


__all__ = ["AUDIBLE", "DEFAULT_INSTRUCTIONS", "InstructionSet", "InstructionSetError", "RefineItem", "RefineResult",
           "aggregate_refinements", "default_instruction_set", "direction", "load_instruction_set", "measure",
           "refine_markdown", "run_refine_eval", "score_refinement"]
