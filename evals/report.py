"""The markdown report of a run: the published table with this run beside it, then everything else.

Only numbers that ``evals.metrics.pipeline.published_column`` accepts (the published model, its
weights hashed, the published conventions) go into the published columns (CLAP, CLAP_synth, KL, FAD,
KAD, AC, RMS). Every other number is shown in a second table under its own label, ``metric[backend]``
(``kad[logmel-stats]``, ``clap[hash-text-stub]``), so an offline or stub number can never be read as
comparable to the paper's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .metrics.pipeline import HIGHER_IS_BETTER, PUBLISHED_METRICS
from .systems import RenderSpec

# The source research's results table (hoyso48/LLMforFM research_progress.md §7; shared/reference
# metrics.md §4.1 and llm_tools.md §1.1): 100 held-out Yamaha presets. None = not reported.
_HEADERS = {"clap": "CLAP", "clap_synth": "CLAP_synth", "kl": "KL", "fad": "FAD", "kad": "KAD", "ac": "AC",
            "rms": "RMS"}
PUBLISHED_COLUMNS: tuple[tuple[str, str, bool], ...] = tuple(
    (m, _HEADERS[m], HIGHER_IS_BETTER[m]) for m in PUBLISHED_METRICS)  # (metric, header, higher is better)
PUBLISHED_ROWS: tuple[tuple[str, tuple[float | None, ...]], ...] = (
    ("Test data (ground truth)", (0.26, 0.30, None, None, None, None, None)),
    ("AudioGen", (0.17, 0.17, 1.33, 7.93, 6.96, 0.19, 0.57)),
    ("AudioLDM", (0.28, 0.29, 1.28, 6.29, 8.06, 0.18, 0.64)),
    ("Gemini-2.0-flash (zero-shot)", (0.12, 0.13, 3.82, 7.56, 13.13, 0.30, 0.55)),
    ("Gemini-2.5-flash (zero-shot)", (0.18, 0.21, 4.02, 6.20, 12.44, 0.26, 0.40)),
    ("LLaMA3-8B-Instruct (zero-shot)", (0.12, 0.12, 7.55, 19.87, 59.59, 0.48, 0.01)),
    ("Gemma-2-9B-it (zero-shot)", (0.12, 0.11, 7.40, 17.14, 55.43, 0.48, 0.02)),
    ("Qwen3-8B base (zero-shot)", (0.06, 0.08, 5.10, 7.25, 13.73, 0.36, 0.56)),
    ("Qwen3-8B fine-tuned", (0.20, 0.24, 1.04, 1.14, 0.51, 0.19, 0.75)),
)
PUBLISHED_SOURCE = ("source research (hoyso48/LLMforFM, research_progress.md §7): 100 held-out Yamaha presets, "
                    "PaSST for KL/FAD/KAD, LAION-CLAP for CLAP")

PROCESS_LABELS: dict[str, str] = {
    "success_rate": "items without error", "audio_rate": "items with audio", "validity_rate": "valid patch",
    "tool_call_rate": "called the render tool", "first_try_valid_rate": "valid at the first try",
    "corrections_when_valid": "corrections (valid items)", "format": "format score", "keys": "keys score",
    "distance": "distance score", "distance_gated": "distance score (topology-gated)",
    "toolrl_exact": "ToolRL exact (-3..3)", "toolrl_exact_gated": "ToolRL exact (topology-gated)",
}


def fmt(value: float | None, low: float | None = None, high: float | None = None, digits: int = 3) -> str:
    """``value [low, high]`` or ``–``."""
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    if low is not None and high is not None:
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def _metric_cell(m: Mapping[str, Any], digits: int = 3) -> str:
    ci = m.get("ci") or {}
    return fmt(m.get("value"), ci.get("low"), ci.get("high"), digits)


def published_cells(metrics: Sequence[Mapping[str, Any]], comparable_render: bool = True) -> list[str]:
    """This run's cells for the published columns: a number only where the backend is published-comparable
    (and the render follows the source's convention)."""
    by_metric = {m["metric"]: m for m in metrics if m.get("published")} if comparable_render else {}
    return [_metric_cell(by_metric[k], 2) if k in by_metric else "–" for k, _, _ in PUBLISHED_COLUMNS]


def source_render(render: RenderSpec) -> bool:
    """Whether a run played its patches as the source research did (``RenderSpec()``: note 60, velocity 100,
    6.4 s + 3.2 s, 48 kHz)."""
    return render == RenderSpec()


def published_table(label: str, metrics: Sequence[Mapping[str, Any]], comparable_render: bool = True) -> list[str]:
    """The published rows and this run's row, in the paper's columns."""
    arrows = [f"{h} {'↑' if up else '↓'}" for _, h, up in PUBLISHED_COLUMNS]
    lines = ["| system | " + " | ".join(arrows) + " |", "|---|" + "---|" * len(arrows)]
    for name, values in PUBLISHED_ROWS:
        lines.append(f"| {name} | " + " | ".join("–" if v is None else f"{v:.2f}" for v in values) + " |")
    lines.append(f"| **{label} (this run)** | " + " | ".join(published_cells(metrics, comparable_render)) + " |")
    return lines


def other_table(metrics: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every number that is not published-comparable, under its own label, with its backend and CI."""
    rest = [m for m in metrics if not m.get("published")]
    if not rest:
        return []
    lines = ["| column | backend (kind) | value [95 % CI] | n | undefined |", "|---|---|---|---|---|"]
    for m in rest:
        lines.append(f"| `{m['column']}` | {m['backend_id']} ({m['backend_kind']}) | {_metric_cell(m)} | {m['n']} | "
                     f"{m['n_missing']} |")
    return lines


def markdown_report(run: Any, *, title: str, figures: Sequence[str] = ()) -> str:
    """The whole report of an ``EvalRun``."""
    cfg = run.config
    r = cfg.render
    system = cfg.system
    label = str(system.get("name") or system.get("kind") or "system")
    lines = [f"# {title}", "",
             f"- system: `{label}` ({system.get('kind', '?')})" + (f", model `{system['model']}`" if system.get("model")
                                                                     else "")
             + (f" at {system['base_url']}" if system.get("base_url") else ""),
             f"- captions: {len(run.items)}; render: note {r.note}, velocity {r.velocity}, held {r.hold_s:g} s + "
             f"release {r.release_s:g} s at {r.sample_rate} Hz; failed items scored as {cfg.failed}",
             f"- patchsmith {cfg.package_version}", ""]
    lines += ["## Published comparison", "",
              f"Published rows: {PUBLISHED_SOURCE}. This run's cells hold a number only when it comes from the "
              "published model with the published conventions; '–' otherwise (see the next table). A comparison "
              "holds only on the same captions: the source's test presets (split source-test).", ""]
    same_render = source_render(r)
    lines += published_table(label, run.metrics, same_render) + [""]
    if not same_render:
        lines += ["This run's patches were not played as the source's were (note 60, velocity 100, held 6.4 s + "
                  "release 3.2 s, 48 kHz), so none of its numbers is put beside the published ones.", ""]
    other = [m for m in run.metrics if not m.get("published") or not same_render]
    other = other_table([{**m, "published": False, "column": f"{m['metric']}[{m['backend_id']}]"}
                         if m.get("published") else m for m in other])
    if other:
        lines += ["## This run, other backends", "",
                  "Not comparable with the published numbers: offline (weight-free) or stub backends, or extra "
                  "metrics. FAD is biased upwards at small N; compare runs only at equal N. FAD is in the squared units "
                  "of its embedding: dB² summed over 512 features for logmel-stats, where tens of thousands are "
                  "usual.", ""] + other + [""]
    if run.process:
        lines += ["## Patches and tool use", "", "| measure | value [95 % CI] | n |", "|---|---|---|"]
        for name, s in run.process.items():
            lines.append(f"| {PROCESS_LABELS.get(name, name)} | {fmt(s.value, s.low, s.high)} | {s.n} |")
        lines.append("")
    if run.flags:
        lines += ["Flags: " + ", ".join(f"{k} {v}" for k, v in sorted(run.flags.items())), ""]
    if run.backends:
        lines += ["## Backends", ""]
        for bid, info in run.backends.items():
            sha = info.get("weights_sha256")
            lines.append(f"- `{bid}`: {info.get('kind')}, version {info.get('version')}"
                         + (f", weights sha256 {sha[:16]}…" if sha else ", no weights"))
        lines.append("")
    if figures:
        lines += ["## Figures", ""] + [f"![{f}](plots/{f})" for f in figures] + [""]
    failures = [it for it in run.items if it.error]
    if failures:
        lines += ["## Failures", "", "| id | error |", "|---|---|"]
        for it in failures[:20]:
            lines.append(f"| {it.id} | {(it.error or '').replace('|', '/').replace(chr(10), ' ')[:200]} |")
        if len(failures) > 20:
            lines.append(f"| … | {len(failures) - 20} more in results.csv |")
        lines.append("")
    return "\n".join(lines)


__all__ = ["PUBLISHED_COLUMNS", "PUBLISHED_ROWS", "fmt", "markdown_report", "other_table", "published_cells",
           "published_table", "source_render"]
