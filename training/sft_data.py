"""SFT and GRPO data: captioned patches (with optional reasoning and refinement turns) → chat examples.

Two formats (``reference/llm_tools.md`` §1.1, §3.2, §4):

* ``answer``: user = caption + `` /think`` or `` /no_think``; assistant = ``<think>\\n{cot}\\n</think>\\n\\n``
  (empty for no-think) followed by the patch as a fenced JSON block in the compact canonical format.
  This is the source research's format.
* ``tools``: the same conversation, but the assistant calls ``render_patch`` with ``{"patch": ...}`` and
  the example carries the tools (OpenAI function format, from the schemas the MCP server publishes) for
  the chat template. The call's arguments are JSON text (the Qwen3 template inserts a string as is), so
  the patch keeps its compact layout and Arrow never turns the patch into a struct with null-filled keys.

The prompt side of both formats (no system message, the soft switch, ``render_patch`` as the only tool,
the refinement turn, how past assistant turns look) comes from ``agent.trained_prompt``, which the agent's
``trained`` prompt profile uses too, so training and inference cannot drift apart.

Refinement turns (``training.refinement_data``) follow the agent's own refinement message
(``agent.output_parsing.compose_request``: the words, then the current patch as fenced JSON) with
`` /no_think``; in the tools format each call is answered by the tool message the agent would send
(``render_patch`` run in-process, split by ``agent.mcp_client.tool_outcome`` as the agent splits it, and
formatted by ``ToolOutcome.message_content``).

GRPO has no per-row ``tools`` column (§3.1, gotcha 5): ``grpo_prompt(row, "tools")`` puts the tools block
into a system message, word for word as the Qwen3 template writes it, so conversational GRPO prompts
show the model exactly what SFT showed it.

``prepare`` reads inputs, builds both files and writes a report; rows TRL would truncate or drop are
counted and listed, never dropped here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import warnings
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..agent.trained_prompt import (PATCH_TOOL, Format, check_format, patch_answer, patch_call,
                                     refinement_message, tools_for_prompt, tools_system_text, trained_messages)
from ..schema.compact import dumps_compact
from ..schema.patch import Patch
from ..schema.validate import parse_patch, validate_json
from .dataset.stages import write_atomic
from .refinement_data import RefinementStats, make_refinement

log = logging.getLogger("patchsmith.training.sft_data")

DEFAULT_TOOLS: tuple[str, ...] = (PATCH_TOOL,)
T = TypeVar("T")


class RefinementTurn(BaseModel):
    """One refinement step of a conversation: the words and the patch that answers them."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    instruction: str
    patch: Patch
    quality: str | None = None
    amount: int | None = None
    descriptor_change: dict[str, float] | None = None

    @field_validator("patch", mode="before")
    @classmethod
    def _patch(cls, v: Any) -> Patch:
        return _to_patch(v)


class SftRow(BaseModel):
    """One captioned patch: the caption, the patch, optional reasoning and refinement turns, provenance."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    caption: str = Field(min_length=1)
    patch: Patch
    cot: str | None = None
    history: list[RefinementTurn] | None = None
    id: str = ""
    source: str = ""

    @field_validator("patch", mode="before")
    @classmethod
    def _patch(cls, v: Any) -> Patch:
        return _to_patch(v)

    @field_validator("cot", mode="before")
    @classmethod
    def _cot(cls, v: Any) -> Any:
        # An empty or whitespace-only reasoning is no reasoning (a null cell read as "", NaN from pandas).
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        return v if not isinstance(v, str) or v.strip() else None


def _to_patch(v: Any) -> Patch:
    if isinstance(v, Patch):
        return v
    if isinstance(v, str):
        report = validate_json(v)
        if not report.valid or report.patch is None:
            raise ValueError("invalid patch: " + report.summary().replace("\n", "; "))
        return report.patch
    return parse_patch(v)


# --- one example --------------------------------------------------------------------------------------
# The prompt side (user messages, tools, assistant turns) is defined once in agent.trained_prompt, which the
# agent's trained profile also uses: what a model sees in training is what it sees at inference.


def _check_think(row: SftRow, think: bool) -> None:
    if think and not row.cot:
        raise ValueError(f"row {row.id or '?'}: think=True needs reasoning (cot), and this row has none; "
                         "use think=False for it")


def answer_example(row: SftRow, think: bool) -> dict[str, Any]:
    """``{"messages": [...]}``: caption (+ refinements) → think block + fenced compact JSON patch."""
    _check_think(row, think)
    messages = [*trained_messages(row.caption, think, "answer"), patch_answer(row.patch, row.cot if think else None)]
    current = row.patch
    for turn in row.history or ():
        messages.append(refinement_message(turn.instruction, current))
        messages.append(patch_answer(turn.patch))
        current = turn.patch
    return {"messages": messages}


def tool_example(row: SftRow, think: bool, tools: Sequence[str] = DEFAULT_TOOLS) -> dict[str, Any]:
    """``{"messages": [...], "tools": [...]}``: caption → ``render_patch`` call; refinements after tool results."""
    _check_think(row, think)
    messages = [*trained_messages(row.caption, think, "tools"), patch_call(row.patch, row.cot if think else None)]
    current = row.patch
    for turn in row.history or ():
        messages.append({"role": "tool", "name": PATCH_TOOL, "content": render_tool_message(current)})
        messages.append(refinement_message(turn.instruction, current))
        messages.append(patch_call(turn.patch))
        current = turn.patch
    return {"messages": messages, "tools": json.loads(_tools_json(tuple(tools)))}  # each example its own copy


@lru_cache(maxsize=16)
def _tools_json(names: tuple[str, ...]) -> str:
    """The named tools' schemas as JSON text, built once: building them takes milliseconds, and every row needs them."""
    return json.dumps(tools_for_prompt(names), ensure_ascii=False)


@lru_cache(maxsize=16)
def _tools_system_text(names: tuple[str, ...]) -> str:
    return tools_system_text(tools_for_prompt(names))


_TOOL_MESSAGES: dict[str, str] = {}


def render_tool_message(patch: Patch) -> str:
    """The tool message the agent sends the model after ``render_patch({"patch": patch})`` (server in-process)."""
    key = dumps_compact(patch, full=True)
    hit = _TOOL_MESSAGES.get(key)
    if hit is not None:
        return hit
    import anyio

    from ..agent.mcp_client import tool_outcome
    from ..server.tools import call_tool

    state = _server_state()
    result = anyio.run(call_tool, state, PATCH_TOOL, {"patch": patch.to_dict(full=False)})
    outcome = tool_outcome(PATCH_TOOL, result)  # the agent's own split (ToolClient), audio counted, not saved
    text = outcome.message_content()
    if len(_TOOL_MESSAGES) < 100_000:
        _TOOL_MESSAGES[key] = text
    return text


_STATE: Any = None


def _server_state() -> Any:
    global _STATE
    if _STATE is None:
        from ..server.presets import PresetLibrary
        from ..server.state import ServerState

        # An empty preset library: render_patch never reads it, and loading the real one costs time.
        _STATE = ServerState(workers=1, presets=PresetLibrary([]))
    return _STATE


def grpo_prompt(row: SftRow, fmt: Format = "answer", *, think: bool = False,
                tools: Sequence[str] = DEFAULT_TOOLS) -> dict[str, Any]:
    """``{"prompt": [...messages], "answer": patch JSON, "id": ...}`` for GRPO (tools pre-rendered as system text)."""
    check_format(fmt)
    prompt = trained_messages(row.caption, think, fmt)
    if fmt == "tools":
        prompt.insert(0, {"role": "system", "content": _tools_system_text(tuple(tools))})
    return {"prompt": prompt, "answer": dumps_compact(row.patch), "id": row.id}


# --- loading rows ---------------------------------------------------------------------------------------


class LoadReport(BaseModel):
    """What ``load_rows`` read, kept and skipped (with reasons), per input."""

    files: list[str] = Field(default_factory=list)
    rows_read: int = 0
    rows_kept: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    examples: list[str] = Field(default_factory=list, description="a few skipped rows with their reason")

    def skip(self, reason: str, example: str) -> None:
        """Count one skipped row under ``reason``, keeping the first few as examples."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.examples) < 10:
            self.examples.append(f"{example}: {reason}")


def _csv_columns(path: Path) -> list[str]:
    import csv

    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f), [])


def _parquet_files(path: Path) -> list[Path]:
    if path.is_dir():
        data = sorted((path / "data").glob("*.parquet"))
        return data or sorted(path.glob("*.parquet"))
    return [path]


def load_rows_report(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[SftRow], LoadReport]:
    """Rows from source-research CSVs (patches joined with their captions CSV) and dataset Parquet, with a report."""
    report = LoadReport()
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("no inputs: give source-research CSVs (DX7_*.csv and their *_captions.csv) or the "
                         "dataset builder's output folder / Parquet files")
    patch_csvs, caption_csvs, parquets = [], [], []
    for p in paths:
        if not p.exists():
            raise ValueError(f"{p}: no such file or folder")
        if p.is_dir() or p.suffix == ".parquet":
            files = _parquet_files(p)
            if not files:
                raise ValueError(f"{p}: no Parquet files in it (expected data/*.parquet of a built dataset)")
            parquets += files
        elif p.suffix == ".csv":
            cols = _csv_columns(p)
            if "patch_data" in cols:
                patch_csvs.append(p)
            elif "caption" in cols and "id" in cols:
                caption_csvs.append(p)
            else:
                raise ValueError(f"{p}: a CSV with neither patch_data (source-research patches) nor id+caption "
                                 f"(captions) columns; found {', '.join(cols[:12])}")
        else:
            raise ValueError(f"{p}: unsupported input; allowed .csv (source research), .parquet or a dataset folder")
    rows: list[SftRow] = []

    # Source-research CSVs: X.csv joins X_captions.csv by id (or the only pair given).
    pairs: list[tuple[Path, Path | None]] = []
    unused = list(caption_csvs)
    for pc in patch_csvs:
        match = next((c for c in unused if c.stem == pc.stem + "_captions"), None)
        if match is None and len(patch_csvs) == 1 and len(unused) == 1:
            match = unused[0]
        if match is not None:
            unused.remove(match)
        pairs.append((pc, match))
    if unused:
        raise ValueError("captions CSV(s) without their patches CSV: " + ", ".join(map(str, unused))
                         + " (name them X.csv and X_captions.csv, or give exactly one of each)")
    from ..schema.source_research import first_captions, read_caption_csv, read_source_csv

    for pc, cc in pairs:
        report.files.append(str(pc))
        captions: dict[str, str] = {}
        if cc is not None:
            report.files.append(str(cc))
            # The first caption of an id, as the dataset builder and the evaluation runner take it.
            captions = {cid: row.caption for cid, row in first_captions(read_caption_csv(cc)).items()}
        for sr in read_source_csv(pc):
            report.rows_read += 1
            where = f"{pc.name} id {sr.id}"
            if sr.patch is None:
                report.skip("invalid patch", f"{where} ({(sr.error or '')[:120]})")
                continue
            caption = captions.get(sr.id.strip())
            if not caption:
                report.skip("no caption", where)
                continue
            rows.append(SftRow(caption=caption, patch=sr.patch, id=sr.id.strip(), source=f"source-research:{pc.name}"))

    # The dataset builder's Parquet: one row per render, so an id repeats; the first caption/cot wins.
    if parquets:
        import pyarrow.parquet as pq

        seen: dict[str, int] = {}
        refused: set[str] = set()
        for f in parquets:
            report.files.append(str(f))
            table = pq.read_table(f)
            cols = table.column_names
            missing = [c for c in ("id", "patch", "caption") if c not in cols]
            if missing:
                raise ValueError(f"{f}: missing column(s) {', '.join(missing)} (the dataset contract has id, name, "
                                 "patch, caption, cot)")
            wanted = [c for c in ("id", "patch", "caption", "cot") if c in cols]
            for rec in table.select(wanted).to_pylist():
                rid = str(rec.get("id") or "")
                if rid in seen:
                    row = rows[seen[rid]]
                    if row.cot is None and rec.get("cot"):
                        rows[seen[rid]] = row.model_copy(update={"cot": rec["cot"]})
                    continue
                if rid in refused:  # another render of a voice already counted as skipped
                    continue
                report.rows_read += 1
                where = f"{f.name} id {rid}"
                if not rec.get("caption") or not str(rec["caption"]).strip():
                    report.skip("no caption", where)
                    refused.add(rid)
                    continue
                try:
                    row = SftRow(caption=str(rec["caption"]).strip(), patch=rec.get("patch") or "", cot=rec.get("cot"),
                                 id=rid, source=f"dataset:{f.parent.parent.name if f.parent.name == 'data' else f.parent.name}")
                except ValueError as err:
                    report.skip("invalid patch", f"{where} ({str(err)[:120]})")
                    refused.add(rid)
                    continue
                seen[rid] = len(rows)
                rows.append(row)
    report.rows_kept = len(rows)
    for reason, n in report.skipped.items():
        log.warning("load_rows: skipped %d row(s): %s", n, reason)
    return rows, report


def load_rows(paths: Iterable[str | os.PathLike[str]]) -> list[SftRow]:
    """Captioned rows from source-research CSVs and the dataset builder's Parquet (skips are logged)."""
    return load_rows_report(paths)[0]


# --- the dataset --------------------------------------------------------------------------------------------


class BuildStats(BaseModel):
    """What ``build_sft_dataset`` selected: reasoning and plain rows, refinement examples."""

    rows_in: int = 0
    reasoning_rows: int = 0
    plain_rows_in: int = 0
    plain_rows_kept: int = 0
    plain_rows_dropped: int = 0
    reasoning_ratio_target: float | None = None
    reasoning_ratio: float = 0.0
    refinement: RefinementStats = Field(default_factory=RefinementStats)
    refinement_examples: int = 0
    examples: int = 0
    warnings: list[str] = Field(default_factory=list)


def sample_to_ratio(items: Sequence[T], reasoning: Sequence[bool], ratio: float, seed: int) -> list[T]:
    """Every reasoning item and a seeded sample of the others so that reasoning ones make up ``ratio`` (order kept)."""
    n_reasoning = sum(map(bool, reasoning))
    n_plain = len(items) - n_reasoning
    keep = n_plain if not n_reasoning else min(n_plain, math.floor(n_reasoning * (1.0 - ratio) / ratio + 1e-9))
    kept = set(random.Random(seed).sample(range(n_plain), keep)) if keep < n_plain else None
    # Keep the input order (deterministic, and readable diffs between builds).
    out, k = [], 0
    for item, thinks in zip(items, reasoning):
        if thinks:
            out.append(item)
            continue
        if kept is None or k in kept:
            out.append(item)
        k += 1
    return out


def select_rows(rows: Sequence[SftRow], reasoning_ratio: float | None, seed: int,
                stats: BuildStats | None = None) -> list[SftRow]:
    """Every reasoning row plus a seeded sample of the others so that reasoning rows make up ``reasoning_ratio``."""
    stats = stats if stats is not None else BuildStats()
    if reasoning_ratio is not None and not (isinstance(reasoning_ratio, (int, float)) and 0.0 < reasoning_ratio <= 1.0):
        raise ValueError(f"reasoning_ratio: found {reasoning_ratio!r}, allowed a number in (0, 1] or None (keep all)")
    flags = [bool(r.cot) for r in rows]
    n_reasoning = sum(flags)
    n_plain = len(rows) - n_reasoning
    stats.rows_in, stats.reasoning_rows, stats.plain_rows_in = len(rows), n_reasoning, n_plain
    stats.reasoning_ratio_target = reasoning_ratio
    out = list(rows) if reasoning_ratio is None else sample_to_ratio(rows, flags, reasoning_ratio, seed)
    keep = len(out) - n_reasoning
    if reasoning_ratio is not None:
        if not n_reasoning:
            stats.warnings.append(f"reasoning_ratio {reasoning_ratio} cannot be reached: no row has reasoning; "
                                  "all plain rows kept")
        elif keep == n_plain and n_reasoning / max(1, len(rows)) < reasoning_ratio - 1e-9:
            stats.warnings.append(f"reasoning_ratio {reasoning_ratio} not reached: only {n_reasoning} "
                                  f"reasoning rows of {len(rows)}")
    stats.plain_rows_kept, stats.plain_rows_dropped = keep, n_plain - keep
    if stats.plain_rows_dropped:
        log.info("select_rows: %d plain rows left out to reach reasoning ratio %s", stats.plain_rows_dropped,
                 reasoning_ratio)
    stats.reasoning_ratio = round(n_reasoning / len(out), 6) if out else 0.0
    return out


def add_refinements(rows: Sequence[SftRow], n: int, seed: int, *, turns: int = 1,
                    stats: RefinementStats | None = None) -> list[SftRow]:
    """``n`` multi-turn rows: a seeded pick of ``rows``, each followed by ``turns`` semantic-edit refinements."""
    if n < 0 or turns < 1:
        raise ValueError(f"refinement: found n={n}, turns={turns}; allowed n >= 0 and turns >= 1")
    stats = stats if stats is not None else RefinementStats()
    stats.requested += n
    if not n or not rows:
        return []
    rng = random.Random(seed * 7919 + 17)
    out: list[SftRow] = []
    attempts = 0
    while len(out) < n and attempts < 4 * n + 10:
        attempts += 1
        base = rows[rng.randrange(len(rows))]
        current, history = base.patch, []
        for _ in range(turns):
            ex = make_refinement(current, rng, stats=stats)
            if ex is None:
                break
            nxt = parse_patch(ex.edited)
            history.append(RefinementTurn(instruction=ex.instruction, patch=nxt, quality=ex.quality,
                                          amount=ex.amount, descriptor_change=ex.descriptor_change))
            current = nxt
        if len(history) == turns:
            out.append(base.model_copy(update={"history": history, "id": f"{base.id}+r{len(out)}"}))
    stats.made += len(out)
    return out


def build_sft_dataset_with_stats(rows: Sequence[SftRow], fmt: Format = "answer", reasoning_ratio: float | None = None,
                                 seed: int = 0, refinement: int = 0, *, refinement_turns: int = 1,
                                 tools: Sequence[str] = DEFAULT_TOOLS) -> tuple[list[dict[str, Any]], BuildStats]:
    """``build_sft_dataset`` with what it selected and discarded."""
    check_format(fmt)
    stats = BuildStats()
    selected = select_rows(rows, reasoning_ratio, seed, stats)
    refined = add_refinements(selected, refinement, seed, turns=refinement_turns, stats=stats.refinement)
    if refinement and len(refined) < refinement:
        stats.warnings.append(f"refinement: made {len(refined)} of {refinement} examples (edits that changed "
                              "nothing or moved the sound the wrong way were discarded)")
    stats.refinement_examples = len(refined)
    make = answer_example if fmt == "answer" else (lambda r, t: tool_example(r, t, tools))
    examples = []
    for r in [*selected, *refined]:
        ex = make(r, bool(r.cot))
        ex["id"] = r.id
        examples.append(ex)
    stats.examples = len(examples)
    for w in stats.warnings:
        log.warning("build_sft_dataset: %s", w)
    return examples, stats


def build_sft_dataset(rows: Sequence[SftRow], fmt: Format = "answer", reasoning_ratio: float | None = None,
                      seed: int = 0, refinement: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
    """Chat examples: every reasoning row (think), plain rows sampled to ``reasoning_ratio``, ``refinement`` multi-turn rows."""
    return build_sft_dataset_with_stats(rows, fmt, reasoning_ratio, seed, refinement, **kwargs)[0]


# --- token lengths -------------------------------------------------------------------------------------------


class LengthReport(BaseModel):
    """Token lengths per example under a tokenizer, and what TRL would truncate or drop at ``max_length``."""

    n: int
    max_length: int | None
    lengths: list[int]
    prompt_lengths: list[int] = Field(description="tokens before the first assistant turn (generation prompt included)")
    min: int = 0
    mean: float = 0.0
    p50: int = 0
    p95: int = 0
    max: int = 0
    over_max_length: int = Field(0, description="examples longer than max_length: TRL truncates them")
    fully_masked: int = Field(0, description="examples whose first assistant token is past max_length: TRL's "
                                             "assistant-only/completion-only loss drops them ('Dropping fully masked')")
    over_ids: list[str] = Field(default_factory=list, description="ids (or indices) of the first 50 examples over")


def _chat_len(tokenizer: Any, messages: list[dict[str, Any]], tools: Any, generation_prompt: bool) -> int:
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": generation_prompt}
    if tools:
        kwargs["tools"] = json.loads(tools) if isinstance(tools, str) else tools
    text = tokenizer.apply_chat_template(messages, **kwargs)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def token_length_report(examples: Sequence[dict[str, Any]], tokenizer: Any, max_length: int | None = None) -> LengthReport:
    """Token length of every example (chat template applied), counting those TRL would truncate or drop."""
    lengths, prompts, over, masked, over_ids = [], [], 0, 0, []
    for i, ex in enumerate(examples):
        msgs = ex["messages"]
        n = _chat_len(tokenizer, msgs, ex.get("tools"), False)
        first = next((k for k, m in enumerate(msgs) if m.get("role") == "assistant"), len(msgs))
        pl = _chat_len(tokenizer, msgs[:first], ex.get("tools"), True) if first else 0
        lengths.append(n)
        prompts.append(pl)
        if max_length is not None and n > max_length:
            over += 1
            if pl >= max_length:
                masked += 1
            if len(over_ids) < 50:
                over_ids.append(str(ex.get("id") or i))
    rep = LengthReport(n=len(lengths), max_length=max_length, lengths=lengths, prompt_lengths=prompts,
                       over_max_length=over, fully_masked=masked, over_ids=over_ids)
    if lengths:
        s = sorted(lengths)
        rep.min, rep.max = s[0], s[-1]
        rep.mean = round(sum(s) / len(s), 2)
        rep.p50 = s[len(s) // 2]
        rep.p95 = s[min(len(s) - 1, int(math.ceil(0.95 * len(s))) - 1)]
    if over:
        msg = (f"{over} of {len(lengths)} examples are longer than max_length={max_length} tokens (TRL truncates "
               f"them); {masked} lose every assistant token and TRL would drop them. Raise max_length to at least "
               f"{rep.max}.")
        warnings.warn(msg, stacklevel=2)
        log.warning(msg)
    return rep


# --- prepare: files on disk -----------------------------------------------------------------------------------


class PrepareReport(BaseModel):
    """What ``prepare`` read, built and wrote."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[str]
    out_dir: str
    fmt: str
    seed: int
    load: LoadReport
    build: BuildStats
    sft_path: str
    grpo_path: str
    sft_examples: int
    grpo_prompts: int
    lengths: LengthReport | None = None
    grpo_prompt_lengths: dict[str, float] | None = None


def _write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    write_atomic(path, write)


def _file_record(ex: dict[str, Any]) -> dict[str, Any]:
    """An example as a file row: ``tools`` as JSON text (a list of schemas would become an Arrow struct mess)."""
    out = dict(ex)
    if "tools" in out and not isinstance(out["tools"], str):
        out["tools"] = json.dumps(out["tools"], ensure_ascii=False)
    return out


def _load_tokenizer(tokenizer: Any) -> Any:
    if tokenizer is None or not isinstance(tokenizer, (str, os.PathLike)):
        return tokenizer
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(tokenizer), local_files_only=True)
    except Exception as err:  # offline by design: say what was looked for
        raise ValueError(f"tokenizer {tokenizer}: cannot load it offline ({err}); give a local folder") from None


def prepare(inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *, fmt: Format = "answer",
            reasoning_ratio: float | None = None, refinement: int = 0, seed: int = 0, tokenizer: Any = None,
            max_length: int | None = None, refinement_turns: int = 1,
            tools: Sequence[str] = DEFAULT_TOOLS, grpo_think: bool = False) -> PrepareReport:
    """Build ``out_dir/sft.jsonl`` and ``out_dir/grpo.jsonl`` (``datasets.load_dataset("json", ...)``) and ``report.json``.

    ``tokenizer`` (an object, or a local folder loaded offline) adds the token-length report: with
    ``max_length`` it counts (and warns about) the examples TRL would truncate or drop; nothing is dropped here.
    GRPO prompts end in `` /no_think`` unless ``grpo_think``.
    """
    check_format(fmt)
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1):
        raise ValueError(f"max_length: found {max_length!r}, allowed a positive integer")
    if max_length is not None and tokenizer is None:
        raise ValueError("max_length needs a tokenizer to count tokens with")
    rows, load = load_rows_report(inputs)
    if not rows:
        raise ValueError("no usable rows in the inputs (" + ", ".join(f"{k}: {v}" for k, v in load.skipped.items())
                         + ")")
    examples, build = build_sft_dataset_with_stats(rows, fmt, reasoning_ratio, seed, refinement,
                                                   refinement_turns=refinement_turns, tools=tools)
    grpo = [grpo_prompt(r, fmt, think=grpo_think, tools=tools) for r in rows]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sft_path, grpo_path = out / "sft.jsonl", out / "grpo.jsonl"
    _write_jsonl(sft_path, (_file_record(e) for e in examples))
    _write_jsonl(grpo_path, grpo)
    tok = _load_tokenizer(tokenizer)
    lengths = token_length_report(examples, tok, max_length) if tok is not None else None
    grpo_lengths = None
    if tok is not None:
        pl = sorted(_chat_len(tok, g["prompt"], None, True) for g in grpo)
        grpo_lengths = {"min": pl[0], "p50": pl[len(pl) // 2], "p90": pl[min(len(pl) - 1, int(0.9 * len(pl)))],
                        "max": pl[-1]}
    report = PrepareReport(inputs=[str(p) for p in inputs], out_dir=str(out), fmt=fmt, seed=seed, load=load,
                           build=build, sft_path=str(sft_path), grpo_path=str(grpo_path), sft_examples=len(examples),
                           grpo_prompts=len(grpo), lengths=lengths, grpo_prompt_lengths=grpo_lengths)
    text = report.model_dump_json(indent=2)
    write_atomic(out / "report.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return report
