"""A checkpoint folder run in-process with transformers: the agent's backend for a locally trained model.

``LocalTransformersBackend`` loads a model folder (what ``patchsmith train sft|grpo`` saves: weights,
tokenizer and chat template), renders the conversation with the checkpoint's own chat template (the
tools passed as ``tools=``, thinking on or off), generates greedily and reads the reply with the same
parser a text-answering model behind an OpenAI-compatible server gets: Qwen3 ``<tool_call>`` blocks
become tool calls, anything else stays text. Wrapped in ``OutputParsingBackend`` it serves models that
answer with a fenced JSON patch instead. ``checkpoint_backend`` picks the prompt profile and the backend
for a checkpoint folder (``design --model-path`` and the ``checkpoint:`` evaluation system both use it).
torch and transformers are imported only when a model loads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .backends import BackendError, ModelBackend, ModelTurn, ToolCall
from .output_parsing import parse_tool_calls, split_think
from .trained_prompt import TrainedPrompt, choose_prompt, prompt_backend

DEFAULT_MAX_NEW_TOKENS = 2048
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")


def checkpoint_problems(path: str | Path) -> list[str]:
    """What makes ``path`` unusable as a transformers checkpoint folder (empty when it looks complete)."""
    folder = Path(path)
    if not folder.exists():
        return [f"{folder}: does not exist; give a checkpoint folder (config.json, weights, tokenizer) such as "
                "the output_dir of `patchsmith train sft`"]
    if not folder.is_dir():
        return [f"{folder}: is a file, not a checkpoint folder (config.json, weights, tokenizer)"]
    problems = []
    if not (folder / "config.json").is_file():
        problems.append(f"{folder}: no config.json (not a transformers checkpoint folder)")
    if not any((folder / f).is_file() for f in WEIGHT_FILES) and not any(folder.glob("*.safetensors")):
        problems.append(f"{folder}: no weights (expected one of {', '.join(WEIGHT_FILES)})")
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        problems.append(f"{folder}: no tokenizer (expected tokenizer.json or tokenizer_config.json)")
    return problems


class LocalTransformersBackend(ModelBackend):
    """A checkpoint folder loaded with transformers: greedy generation, Qwen3 tool calls parsed from the text."""

    def __init__(self, path: str | Path, *, enable_thinking: bool | None = False,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, device: str | None = None,
                 timeout_s: float | None = None, text_arguments: bool = False):
        """``enable_thinking``: the template's switch (None: not passed, as SFT training did); ``text_arguments``:
        tool-call arguments reach the template as the JSON text they are (as in patchsmith's training data)."""
        problems = checkpoint_problems(path)
        if problems:
            raise BackendError("; ".join(problems))
        if max_new_tokens < 1:
            raise BackendError(f"max_new_tokens: found {max_new_tokens}, allowed an integer >= 1")
        self.path = Path(path)
        self.name = self.path.resolve().name or str(self.path)
        self.enable_thinking = None if enable_thinking is None else bool(enable_thinking)
        self.text_arguments = bool(text_arguments)
        self.last_prompt: str | None = None  # the text the last turn was generated from
        self.max_new_tokens = int(max_new_tokens)
        self.timeout_s = timeout_s  # generation stops (a cut-off answer) after this many seconds
        self._calls = 0
        self._load(device)

    def _load(self, device: str | None) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as err:
            raise BackendError(f"{self.path}: running a checkpoint in-process needs torch and transformers ({err}); "
                               "install them with pip install 'patchsmith[train]'") from None
        from transformers.utils import logging as hf_logging

        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # a command's stderr holds its errors, not loading bars
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True, dtype="auto")
        except (OSError, ValueError, KeyError) as err:
            first = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
            raise BackendError(f"{self.path}: cannot load the checkpoint: {first}") from None
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        if not getattr(self.tokenizer, "chat_template", None):
            raise BackendError(f"{self.path}: the tokenizer has no chat template (chat_template.jinja or "
                               "tokenizer_config.json's chat_template); a chat model checkpoint needs one")
        self.model.to(self.device)
        self.model.eval()

    def describe(self) -> dict[str, Any]:
        """What the transcript records about this backend."""
        return super().describe() | {"path": str(self.path), "enable_thinking": self.enable_thinking,
                                     "text_arguments": self.text_arguments, "max_new_tokens": self.max_new_tokens,
                                     "device": self.device}

    def prompt_text(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
        """The conversation rendered with the checkpoint's chat template, ready for the assistant's turn."""
        kwargs: dict[str, Any] = {"add_generation_prompt": True, "tokenize": False}
        if self.enable_thinking is not None:
            kwargs["enable_thinking"] = self.enable_thinking
        if tools:
            kwargs["tools"] = tools
        try:
            return self.tokenizer.apply_chat_template(_template_messages(messages, self.text_arguments), **kwargs)
        except Exception as err:  # jinja errors name the template line; a bad conversation must not crash the agent
            raise BackendError(f"{self.path}: the chat template failed on this conversation: {err}") from None

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                 timeout_s: float | None = None) -> ModelTurn:
        """Generate the next assistant turn greedily; ``<tool_call>`` blocks become tool calls when tools are given."""
        import torch

        text = self.prompt_text(messages, tools)
        self.last_prompt = text
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        input_ids = enc["input_ids"].to(self.device)
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and input_ids.shape[1] + 1 > limit:
            raise BackendError(f"the conversation is {input_ids.shape[1]} tokens; {self.name} takes at most {limit}")
        eos = getattr(self.model.generation_config, "eos_token_id", None) or self.tokenizer.eos_token_id
        eos_ids = set(eos) if isinstance(eos, (list, tuple)) else {eos}
        # Greedy: same conversation, same answer (sampling settings of the checkpoint are overridden).
        gen: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": False, "temperature": None,
                               "top_p": None, "top_k": None, "eos_token_id": eos,
                               "pad_token_id": self.tokenizer.pad_token_id
                               if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id}
        limits = [t for t in (timeout_s, self.timeout_s) if t is not None]
        if limits:
            gen["max_time"] = max(0.001, float(min(limits)))
        began = time.monotonic()
        with torch.no_grad():
            out = self.model.generate(input_ids=input_ids, attention_mask=enc["attention_mask"].to(self.device),
                                      **gen)
        new = out[0, input_ids.shape[1]:].tolist()
        stopped = bool(new) and new[-1] in eos_ids
        raw = self.tokenizer.decode(new, skip_special_tokens=True)
        usage = {"prompt_tokens": int(input_ids.shape[1]), "completion_tokens": len(new),
                 "total_tokens": int(input_ids.shape[1]) + len(new), "seconds": round(time.monotonic() - began, 3)}
        return self.read_reply(raw, tools=bool(tools), finish_reason="stop" if stopped else "length", usage=usage)

    def read_reply(self, raw: str, *, tools: bool, finish_reason: str | None = None,
                   usage: dict[str, Any] | None = None) -> ModelTurn:
        """The turn a generated text stands for: reasoning split off; with tools, ``<tool_call>`` blocks as calls."""
        finish = finish_reason
        reasoning, content = split_think(raw)
        if not tools:  # a text-answering model: the caller (OutputParsingBackend) reads the whole text
            return ModelTurn(content=content, reasoning=reasoning, finish_reason=finish, usage=usage)
        calls = []
        for c in parse_tool_calls(content):
            self._calls += 1  # ids unique over the conversation, as each tool message names one call
            calls.append(ToolCall(id=f"call_local_{self._calls}", name=c.name, arguments=c.arguments))
        if calls:
            content = content.split("<tool_call>", 1)[0].strip()
            finish = "tool_calls"
        return ModelTurn(content=content, reasoning=reasoning, tool_calls=calls, finish_reason=finish, usage=usage)


def checkpoint_backend(path: str | Path, *, profile: str | None = None, thinking: bool | None = None,
                       output_parsing: bool = False, patch_layout: str | None = None,
                       max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, timeout_s: float | None = None,
                       render_args: dict[str, Any] | None = None, device: str | None = None,
                       notes: list[str] | None = None) -> tuple[ModelBackend, TrainedPrompt | None]:
    """A checkpoint folder's backend and prompt profile (None: the agent profile), as ``choose_prompt`` decides.

    Under the trained profile the chat template is called as the trainer called it (``enable_thinking`` only
    where the record says GRPO passed it) and tool-call arguments reach it as the training text; under the
    agent profile ``thinking`` is the template's ``enable_thinking``. Raises what ``choose_prompt`` raises, and
    ``BackendError`` when the folder cannot be loaded."""
    prompt = choose_prompt(profile, checkpoint=path, output_parsing=output_parsing, patch_layout=patch_layout,
                           thinking=thinking, notes=notes)
    thinking_switch = bool(thinking) if prompt is None else prompt.template_thinking
    base = LocalTransformersBackend(path, enable_thinking=thinking_switch, max_new_tokens=max_new_tokens, device=device,
                                    timeout_s=timeout_s, text_arguments=prompt is not None)
    return prompt_backend(base, prompt, output_parsing=output_parsing, patch_layout=patch_layout,
                          render_args=render_args), prompt


def _template_messages(messages: list[dict[str, Any]], text_arguments: bool = False) -> list[dict[str, Any]]:
    """OpenAI chat messages as the Qwen3 template reads them: tool-call arguments as objects when they parse
    (unless ``text_arguments``: then as the text they are, which the Qwen3 template inserts unchanged)."""
    out = []
    for m in messages:
        m = dict(m)
        calls = []
        for c in m.get("tool_calls") or []:
            fn = dict(c.get("function") or {})
            args = fn.get("arguments")
            if isinstance(args, str) and not text_arguments:
                try:
                    parsed = json.loads(args)
                except (json.JSONDecodeError, RecursionError):
                    parsed = None
                if isinstance(parsed, dict):
                    fn["arguments"] = parsed  # rendered with tojson, exactly as in training data
            calls.append({**c, "function": fn})
        if calls:
            m["tool_calls"] = calls
        if m.get("content") is None:
            m["content"] = ""
        out.append(m)
    return out


__all__ = ["DEFAULT_MAX_NEW_TOKENS", "LocalTransformersBackend", "checkpoint_backend", "checkpoint_problems"]
