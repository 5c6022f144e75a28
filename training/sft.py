"""Supervised fine-tuning with TRL's SFTTrainer on the data ``patchsmith train prepare`` wrote.

``run_sft(config)`` loads the model (``tiny-qwen3`` is built in-process; anything else is a local folder
or a cached hub id, never downloaded here), reads ``DATA/sft.jsonl`` (``messages``, and for the tools
format a ``tools`` column that TRL forwards to the chat template), trains, and saves the checkpoint
(weights, tokenizer, the stock chat template, a model card, and ``patchsmith.json``: the prompt format and
thinking setting the agent's ``trained`` profile reads) into ``output_dir``. The model and data
loading here is shared with ``training.grpo``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..agent.trained_prompt import THINK, write_checkpoint_record
from .config import TrainConfig, trl_arguments
from .sft_data import sample_to_ratio
from .tiny_model import TINY_MODEL_ID

PREPARED_FILES = {"sft": "sft.jsonl", "grpo": "grpo.jsonl"}


class TrainResult(BaseModel):
    """What a training run did and where the checkpoint is."""

    kind: str
    output_dir: str
    steps: int
    rows: int
    seconds: float
    metrics: dict[str, Any] = Field(default_factory=dict)


def load_model_and_tokenizer(config: TrainConfig) -> tuple[Any, Any]:
    """(model, tokenizer) of ``[model]``: the tiny random Qwen3, or a checkpoint loaded without any download."""
    if config.model.path == TINY_MODEL_ID:
        from .tiny_model import offline_tokenizer, tiny_qwen3

        tokenizer = offline_tokenizer()
        return tiny_qwen3(tokenizer, seed=config.seed), tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = config.resolve(config.model.path)
    source = str(where) if where.exists() else config.model.path
    if where.exists() and not where.is_dir():
        raise config.error(f"model.path {where}: is a file; give a checkpoint folder or {TINY_MODEL_ID!r}")
    kwargs: dict[str, Any] = {"dtype": config.model.dtype, "local_files_only": True}
    if config.model.attn_implementation:
        kwargs["attn_implementation"] = config.model.attn_implementation
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
        hint = ("" if where.exists() else
                f"; it is not a folder here nor in the Hugging Face cache (nothing is downloaded during training: "
                f"fetch it first, e.g. `hf download {config.model.path} --local-dir models/NAME`, and point "
                "model.path at that folder)")
        raise config.error(f"model.path {config.model.path}: cannot load it ({first}){hint}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise config.error(f"model.path {config.model.path}: the tokenizer has no chat template")
    return model, tokenizer


def prepared_file(config: TrainConfig, kind: str) -> Path:
    """``DATA/sft.jsonl`` or ``DATA/grpo.jsonl`` of the config, checked to exist and match ``data.format``."""
    folder = config.resolve(config.data.path)
    name = PREPARED_FILES[kind]
    path = folder / name if folder.is_dir() or not folder.suffix else folder
    if not path.is_file():
        raise config.error(f"data.path {folder}: no {name} in it; write it with `patchsmith train prepare "
                           f"INPUT... -o {folder}`")
    report = path.parent / "report.json"
    if report.is_file():
        try:
            fmt = json.loads(report.read_text(encoding="utf-8")).get("fmt")
        except (OSError, ValueError):
            fmt = None
        if config.data.format is None:
            config.data.format = fmt if fmt in ("answer", "tools") else None
        elif fmt and fmt != config.data.format:
            raise config.error(f"data.format = {config.data.format!r}, but {path.parent} was prepared with "
                               f"--format {fmt}; prepare it again or change data.format")
    return path


def load_jsonl(path: Path, config: TrainConfig, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """The records of a prepared JSONL file (at most ``data.max_rows``), each checked for ``required`` columns."""
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as err:
                raise config.error(f"{path}:{n}: not a JSON line ({err})") from None
            missing = [c for c in required if c not in rec]
            if not isinstance(rec, dict) or missing:
                raise config.error(f"{path}:{n}: missing column(s) {', '.join(missing) or 'all'}; "
                                   "was it written by `patchsmith train prepare`?")
            records.append(rec)
            if config.data.max_rows is not None and len(records) >= config.data.max_rows:
                break
    if not records:
        raise config.error(f"{path}: no rows")
    return records


def sft_dataset(config: TrainConfig) -> Any:
    """The SFT rows as a ``datasets.Dataset`` (``messages``, plus ``tools`` as JSON text in the tools format)."""
    from datasets import Dataset

    records = load_jsonl(prepared_file(config, "sft"), config, ("messages",))
    has_tools = ["tools" in r for r in records]
    if config.data.format is None:
        config.data.format = "tools" if any(has_tools) else "answer"
    if config.data.format == "tools" and not all(has_tools):
        raise config.error("data.format = 'tools' but the SFT rows have no tools column; prepare with --format tools")
    if config.data.format == "answer" and any(has_tools):
        raise config.error("data.format = 'answer' but the SFT rows carry tools; prepare with --format answer")
    records = apply_reasoning_ratio(records, config.reasoning.reasoning_ratio, config.seed)
    keep = ("messages", "tools", "chat_template_kwargs")
    rows = [{k: (json.dumps(v) if k == "tools" and not isinstance(v, str) else v) for k, v in r.items() if k in keep}
            for r in records]
    return Dataset.from_list(rows)


def thinks(record: dict[str, Any]) -> bool:
    """True when an SFT example's first user turn asks for thinking (the `` /think`` soft switch)."""
    first = next((m for m in record.get("messages") or [] if m.get("role") == "user"), None)
    return bool(first) and str(first.get("content") or "").rstrip().endswith(THINK.strip())


def apply_reasoning_ratio(records: list[dict[str, Any]], ratio: float | None, seed: int) -> list[dict[str, Any]]:
    """Every thinking example and a seeded sample of the others, so that thinking ones make up ``ratio``."""
    if ratio is None:
        return records
    # The same selection `train prepare --reasoning-ratio` makes (a ratio without thinking examples keeps all).
    return sample_to_ratio(records, [thinks(r) for r in records], ratio, seed)


def finish_checkpoint(trainer: Any, tokenizer: Any, config: TrainConfig, *, rows: int, began: float,
                      card_extra: dict[str, Any] | None = None) -> TrainResult:
    """Save model, tokenizer (with the stock chat template) and model card; the run's result."""
    from .model_card import CardInfo, write_model_card

    out = Path(trainer.args.output_dir)
    trainer.save_model(str(out))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(out))  # the stock template: TRL trains with a patched copy it never saves
    history = [h for h in trainer.state.log_history if isinstance(h, dict)]
    metrics: dict[str, Any] = {}
    for h in history:
        for k, v in h.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                metrics[k] = v
    result = TrainResult(kind=config.kind, output_dir=str(out), steps=int(trainer.state.global_step), rows=rows,
                         seconds=round(time.monotonic() - began, 2), metrics=metrics)
    if not trainer.is_world_process_zero():  # under `accelerate launch` one process writes the card
        return result
    shown = {k: v for k, v in metrics.items() if k in ("train_loss", "loss", "reward", "reward_std", "epoch",
                                                       "mean_token_accuracy") or k.startswith("rewards/")}
    write_model_card(out, CardInfo(kind=config.kind, base_model=config.model.path, data=config.data.path,
                                   data_format=config.data.format or "answer", rows=rows,
                                   enable_thinking=config.reasoning.enable_thinking, rewards=config.rewards,
                                   config_source=config.source, metrics={"steps": result.steps, **shown},
                                   config=config.model_dump(mode="json") | (card_extra or {})))
    # How the prompts looked, so the agent's trained profile can rebuild them (agent.trained_prompt).
    write_checkpoint_record(out, config.kind, config.data.format or "answer", config.reasoning.enable_thinking)
    (out / "patchsmith_train.json").write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return result


def run_sft(config: TrainConfig, *, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``config`` (kind ``sft``) with TRL's SFTTrainer and save the checkpoint into ``output_dir``."""
    if config.kind != "sft":
        raise config.error(f"kind = {config.kind!r}: this is not an SFT config (use `patchsmith train {config.kind}`)")
    say = log or (lambda _text: None)
    began = time.monotonic()
    dataset = sft_dataset(config)
    args = trl_arguments(config)
    model, tokenizer = load_model_and_tokenizer(config)
    from trl import SFTTrainer

    say(f"SFT: {len(dataset)} rows from {config.data.path}, model {config.model.path}, output {args.output_dir}")
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    return finish_checkpoint(trainer, tokenizer, config, rows=len(dataset), began=began)


__all__ = ["TrainResult", "apply_reasoning_ratio", "finish_checkpoint", "load_jsonl", "load_model_and_tokenizer",
           "prepared_file", "run_sft", "sft_dataset", "thinks"]
