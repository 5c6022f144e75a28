"""The dataset card (``OUT/README.md``): counts, provenance, render settings, licence note, how to load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .render_jobs import HOLD_SHARE, PEAK_DBFS, USEFUL_HZ
from .stages import write_atomic

__all__ = ["card_text", "combined_card_text", "write_card"]

# The Hub's dataset-viewer config: one train split over the merged files.
_FRONT_MATTER = ["---", "configs:", "- config_name: default", "  data_files:", "  - split: train",
                 "    path: data/train-*.parquet", "---", ""]
_LOAD = ["```python", "from datasets import load_dataset",
         'ds = load_dataset("parquet", data_files="data/*.parquet", split="train")']
_NO_RIGHTS = ("The DX7 voices{what} come from third-party banks; their copyright belongs to their authors, and this "
              "card grants no rights in them. Check each source's terms before redistributing.")


def _row(label: str, value: Any) -> str:
    return f"| {label} | {value} |"


def card_text(report: dict[str, Any]) -> str:
    """The card's markdown for a build report (``stage/report.json``)."""
    src = report.get("sources", {})
    files = src.get("sources", {})
    dd = src.get("dedup", {})
    merged = report.get("merge", {})
    cfg = report.get("config", {})
    render = cfg.get("render", {})
    stages = report.get("stages", {})
    lines = [
        *_FRONT_MATTER,
        "# DX7 voices: patches, renders, descriptors and captions",
        "",
        "Built by `patchsmith dataset build`. One row per render (voice x note x velocity) of a unique DX7 voice: "
        "the canonical patch JSON, where it came from, its audio (FLAC), its audio descriptors and, when the "
        "stages ran, a caption and a chain of thought.",
        "",
        "## Counts",
        "",
        "| what | count |",
        "|---|---|",
        _row("input files read", files.get("files_read", 0)),
        _row("clean files", files.get("files_clean", 0)),
        _row("files read with repairs (tolerated)", files.get("files_tolerated", 0)),
        _row("files refused", files.get("files_refused", 0)),
        _row("files ignored (not banks)", files.get("files_ignored", 0)),
        _row("voices read", dd.get("voices", 0)),
        _row("unique voices (parameters without the name)", dd.get("unique", 0)),
        _row("duplicates collapsed", dd.get("duplicates", 0)),
        _row("voices in this build (after --limit)", src.get("manifest_rows", 0)),
        _row("renders", merged.get("renders", 0)),
        _row("silent renders filtered out (inaudible voices)", merged.get("silent", 0)),
        _row("voices with a silent render", merged.get("silent_voices", 0)),
        _row("renders that failed (left out)", merged.get("render_errors", 0)),
        _row("rows in the dataset", merged.get("rows", 0)),
        _row("rows with a chain of thought", merged.get("with_cot", 0)),
        _row("CoT kept / rejected by the teacher check", f"{merged.get('cot_kept', 0)} / {merged.get('cot_rejected', 0)}"),
    ]
    caption_sources = merged.get("caption_sources", {})
    if caption_sources:
        lines += ["", "Captions by source:", ""]
        lines += [f"- `{k}`: {v}" for k, v in caption_sources.items()]
    kinds = files.get("tolerated_kinds", {})
    if kinds:
        lines += ["", "What the tolerant reader repaired (files per kind):", ""]
        lines += [f"- {k}: {v}" for k, v in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))]
    refused = files.get("refused", [])
    if refused:
        lines += ["", f"Refused files ({len(refused)}; all of them in `stage/sources.json`):", ""]
        for r in refused[:20]:
            lines.append(f"- `{r['file']}`: {'; '.join(r.get('detail', []))[:200]}")
        if len(refused) > 20:
            lines.append(f"- ... and {len(refused) - 20} more")
    lines += [
        "",
        "## Provenance",
        "",
        "Inputs: " + ", ".join(f"`{p}`" for p in cfg.get("inputs", [])) + ".",
        "",
        "Every row keeps `source_file` (a path, or `archive.zip!/member` inside a zip), `source_index` (0-based voice "
        "index in the bank, or row index in a source-research CSV) and `n_occurrences` (how often the same parameters "
        "occurred in the inputs, under any name). The `id` is the first 16 hex digits of the sha256 of the voice's "
        + ("12 core keys (128 numbers) " if cfg.get("identity", "core") == "core" else "full parameter set ")
        + "as canonical JSON, without its name; the first occurrence in sorted input order gives the name and provenance. "
        "Banks were read with the tolerant sysex reader (out-of-range values clamped, bad checksums accepted); what it "
        "repaired is listed per file in `stage/sources.json`.",
        "",
        "## Render settings",
        "",
        f"- {render.get('seconds')} s per clip at {render.get('sample_rate')} Hz, key held "
        f"{round(float(render.get('seconds', 10)) * HOLD_SHARE, 3)} s, "
        f"notes {render.get('notes')}, velocities {render.get('velocities')}, transpose `{render.get('transpose')}`"
        f" (auto: a voice whose measured fundamental is outside {USEFUL_HZ[0]:g}-{USEFUL_HZ[1]:g} Hz is played whole "
        "octaves up or down; `played_note` and `note_shift` record it).",
        f"- Audio is 16-bit mono FLAC normalised to a {PEAK_DBFS:g} dBFS peak; `gain_db` is the gain applied, so the "
        "engine's level is "
        "`peak_dbfs` in `descriptors` (JSON of `patchsmith.evals.descriptors.describe_audio`)."
        + (f" Operator evidence clips: {', '.join(render.get('evidence', []))} ({render.get('evidence_seconds')} s "
           "segments, FULL first; segment maps in `evidence_*_map`)." if render.get("evidence") else ""),
        f"- Audio stored as {'inline FLAC bytes' if render.get('audio', 'flac') == 'flac' else 'FLAC files under audio/ (paths relative to this folder)'}.",
        "",
        "## Licence",
        "",
        _NO_RIGHTS.format(what=" (the patch data)") + " Renders, descriptors and generated captions are derived "
        "from those patches. Captions that came with a source-research CSV keep `caption_source = source-research`.",
        "",
        "## Loading",
        "",
        *_LOAD,
        "# audio: {'bytes': FLAC, 'path': name}; decode with soundfile:",
        "import io, soundfile as sf",
        'audio, sr = sf.read(io.BytesIO(ds[0]["audio"]["bytes"]))',
        "# or, with torchcodec installed: ds = ds.cast_column('audio', datasets.Audio())",
        "```",
        "",
        "The stage folder (`stage/`) holds the manifest, per-stage parts and `report.json` (these counts, "
        "machine-readable); `patchsmith dataset build` with the same arguments resumes or re-merges.",
        "",
    ]
    if stages:
        lines += ["## Stages", ""]
        for name, st in stages.items():
            lines.append(f"- {name}: {st.get('shards_total', 0)} shards, {st.get('shards_done_before', 0)} done before "
                         f"this run, {st.get('shards_written', 0)} written, {st.get('errors', 0)} errors")
        lines.append("")
    return "\n".join(lines)


def combined_card_text(result: dict[str, Any]) -> str:
    """The card of a dataset combined from several builds (``dataset merge A B --into C``)."""
    lines = [*_FRONT_MATTER, "# DX7 voices: combined from several builds", "",
             "Combined by `patchsmith dataset merge ... --into`. Each build's card (its `README.md`) gives its counts, "
             "provenance and render settings; a render id (voice x note x velocity) already taken from an earlier "
             "build was left out.", "", "| build | rows taken |", "|---|---|"]
    lines += [f"| `{b}` | {result.get('rows_per_build', {}).get(b, 0)} |" for b in result.get("builds", [])]
    lines += ["", f"Rows: {result.get('rows', 0)} of {result.get('rows_in', 0)} "
                  f"({result.get('duplicates', 0)} duplicates, {result.get('without_cot', 0)} without CoT left out"
                  f"{' under --require-cot' if result.get('require_cot') else ''}).", "",
              "## Licence", "", _NO_RIGHTS.format(what=""), "", "## Loading", "", *_LOAD, "```", ""]
    return "\n".join(lines)


def write_card(out_dir: Path | str, report: dict[str, Any]) -> Path:
    """Write ``OUT/README.md`` atomically."""
    text = combined_card_text(report) if "rows_per_build" in report else card_text(report)
    return write_atomic(Path(out_dir) / "README.md", lambda tmp: tmp.write_text(text, encoding="utf-8"))
