"""The model card written into every checkpoint: what it was trained from, on what, how, with which versions."""

from __future__ import annotations

import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

VERSIONED = ("patchsmith", "torch", "transformers", "trl", "datasets", "accelerate", "tokenizers", "vllm")


class CardInfo(BaseModel):
    """What a model card says about one training run."""

    kind: str  # "sft" or "grpo"
    base_model: str
    data: str
    data_format: str
    rows: int | None = None
    enable_thinking: bool = False
    rewards: dict[str, float] = Field(default_factory=dict)
    config_source: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a checkpoint depends on (absent ones are left out)."""
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def card_text(info: CardInfo) -> str:
    """The README.md of a checkpoint (Hugging Face model-card front matter, then the facts)."""
    versions = info.versions or package_versions()
    front = ["---", "library_name: transformers", "pipeline_tag: text-generation",
             f"base_model: {json.dumps(info.base_model)}", "tags:", "- patchsmith", "- dx7", "- fm-synthesis",
             f"- {info.kind}", "- trl", "---", ""]
    what = {"sft": "supervised fine-tuning (TRL SFTTrainer)", "grpo": "GRPO (TRL GRPOTrainer)"}.get(info.kind, info.kind)
    lines = [f"# {info.kind.upper()} checkpoint for DX7 patch design", "",
             f"Trained with patchsmith by {what} to turn a description of a sound into a DX7 patch.", "",
             "## Training", "", f"- base model: `{info.base_model}`",
             f"- data: `{info.data}`" + (f" ({info.rows} rows)" if info.rows is not None else ""),
             f"- answer format: `{info.data_format}` ("
             + ("a `render_patch` tool call, Qwen3 `<tool_call>` JSON" if info.data_format == "tools"
                else "`<think>` block then the patch as a fenced JSON block") + ")",
             f"- thinking (`enable_thinking`): {'on' if info.enable_thinking else 'off'}",
             "- prompt: no system message; user = the description + ` /think` or ` /no_think`"
             + ("; `render_patch` the only tool" if info.data_format == "tools" else "; no tools")
             + " (`patchsmith.json`; the agent's `--prompt trained` profile sends exactly this)"]
    if info.rewards:
        lines.append("- rewards (name: weight): " + ", ".join(f"`{k}`: {v:g}" for k, v in info.rewards.items()))
    if info.config_source:
        lines.append(f"- config: `{info.config_source}`")
    if info.metrics:
        lines += ["", "## Final metrics", ""]
        lines += [f"- {k}: {_fmt(v)}" for k, v in info.metrics.items()]
    lines += ["", "## Use", "", "```",
              'patchsmith design "bright electric piano" -o out --model-path THIS_FOLDER   # the trained prompt',
              "patchsmith serve-model THIS_FOLDER      # vLLM, on a GPU machine", "```", "",
              "## Versions", ""]
    lines += [f"- {k} {v}" for k, v in versions.items()]
    if info.config:
        lines += ["", "## Config", "", "```json", json.dumps(info.config, indent=2, sort_keys=True, default=str), "```"]
    return "\n".join(front + lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_model_card(folder: str | Path, info: CardInfo) -> Path:
    """Write ``README.md`` into the checkpoint folder; returns its path."""
    path = Path(folder) / "README.md"
    path.write_text(card_text(info), encoding="utf-8")
    return path


__all__ = ["CardInfo", "card_text", "package_versions", "write_model_card"]
