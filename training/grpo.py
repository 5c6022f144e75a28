"""GRPO with TRL's GRPOTrainer: the patch rewards of ``training.rewards``, weighted as the config says.

``run_grpo(config)`` reads ``DATA/grpo.jsonl`` (conversational ``prompt``, ground-truth ``answer``),
starts from ``[model]`` (usually the SFT checkpoint), scores each group of completions with the
``[rewards]`` functions (Σ weight·reward, then TRL's group normalisation) and saves the checkpoint.

GRPO has no per-row ``tools`` column (``reference/llm_tools.md`` §3.1, gotcha 5): for the tools format
the prompts already carry the tool schema as the system text the Qwen3 template writes for ``tools=``
(``training.sft_data.grpo_prompt``), so the model sees what it saw in SFT, and the reward reads the
``render_patch`` call from the completion. No tool is executed during GRPO.

``[reasoning] enable_thinking`` reaches the template as ``chat_template_kwargs``, and the prompts' soft
switch (`` /think`` or `` /no_think`` at the end of the user message) is set to agree with it.
vLLM settings reach TRL only when ``[vllm] enabled = true`` (a GPU with the ``train-vllm`` extra).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import Any

from ..agent.trained_prompt import NO_THINK, THINK, switch
from .config import TrainConfig, reward_setup, trl_arguments
from .sft import TrainResult, finish_checkpoint, load_jsonl, load_model_and_tokenizer, prepared_file


def _switch(messages: list[dict[str, Any]], think: bool) -> list[dict[str, Any]]:
    """The prompt with its last user message's soft switch set to ``think``."""
    out = [dict(m) for m in messages]
    for m in reversed(out):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            text = m["content"]
            for suffix in (THINK, NO_THINK):
                if text.endswith(suffix):
                    text = text[: -len(suffix)]
                    break
            m["content"] = text + switch(think)
            break
    return out


def grpo_dataset(config: TrainConfig, tokenizer: Any) -> tuple[Any, int]:
    """(the GRPO prompts as a ``datasets.Dataset``, how many were left out as too long)."""
    from datasets import Dataset

    records = load_jsonl(prepared_file(config, "grpo"), config, ("prompt", "answer"))
    think = config.reasoning.enable_thinking
    rows, dropped = [], 0
    limit = config.data.max_prompt_tokens
    for r in records:
        prompt = r["prompt"]
        if not isinstance(prompt, list) or not prompt:
            raise config.error("a GRPO prompt must be a list of chat messages (as `patchsmith train prepare` writes)")
        prompt = _switch(prompt, think)
        if limit is not None:
            ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True,
                                                enable_thinking=think)
            n = len(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
            if n > limit:  # TRL 1.16 does not truncate prompts (no max_prompt_length): leave them out
                dropped += 1
                continue
        rows.append({"prompt": prompt, "answer": r["answer"], "id": str(r.get("id", ""))})
    if not rows:
        raise config.error(f"every GRPO prompt is longer than data.max_prompt_tokens = {limit}")
    if config.data.format is None:  # no report.json: the tools format shows the schema as system text
        config.data.format = "tools" if any(m.get("role") == "system" and str(m.get("content", "")).startswith(
            "# Tools") for r in rows for m in r["prompt"]) else "answer"
    return Dataset.from_list(rows), dropped


def _check_vllm(config: TrainConfig) -> None:
    if not config.vllm.enabled:
        return
    if importlib.util.find_spec("vllm") is None:
        raise config.error("[vllm] enabled = true, but vLLM is not installed; on a GPU machine install "
                           "patchsmith[train-vllm] (vllm 0.31 with transformers 5.17), or set enabled = false")
    import torch

    if not torch.cuda.is_available():
        raise config.error("[vllm] enabled = true needs a CUDA GPU; set enabled = false to generate with "
                           "transformers")


def run_grpo(config: TrainConfig, *, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train ``config`` (kind ``grpo``) with TRL's GRPOTrainer and save the checkpoint into ``output_dir``."""
    if config.kind != "grpo":
        raise config.error(f"kind = {config.kind!r}: this is not a GRPO config (use `patchsmith train {config.kind}`)")
    say = log or (lambda _text: None)
    began = time.monotonic()
    _check_vllm(config)
    funcs, _weights = reward_setup(config)
    args = trl_arguments(config)
    args.chat_template_kwargs = {**(args.chat_template_kwargs or {}),
                                 "enable_thinking": config.reasoning.enable_thinking}
    model, tokenizer = load_model_and_tokenizer(config)
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # GRPOTrainer pads prompts on the left
    dataset, dropped = grpo_dataset(config, tokenizer)
    if dropped:
        say(f"GRPO: left out {dropped} prompt(s) longer than data.max_prompt_tokens = {config.data.max_prompt_tokens}")
    from trl import GRPOTrainer

    say(f"GRPO: {len(dataset)} prompts from {config.data.path}, model {config.model.path}, rewards "
        + ", ".join(f"{k}={v:g}" for k, v in config.rewards.items()) + f", output {args.output_dir}")
    trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                          processing_class=tokenizer)
    trainer.train()
    tokenizer.padding_side = padding_side  # the checkpoint keeps the tokenizer as it came
    return finish_checkpoint(trainer, tokenizer, config, rows=len(dataset), began=began,
                             card_extra={"prompts_left_out": dropped})


__all__ = ["grpo_dataset", "run_grpo"]
