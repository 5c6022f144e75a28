"""The prompt a patchsmith-trained model sees, defined once for training and for the agent.

``training.sft_data`` builds its SFT examples and GRPO prompts from these functions, and the agent's
``trained`` prompt profile (``TrainedPrompt``) turns its conversation into the same messages, so a
change here changes both sides:

* no system prompt; the user message is the caption plus the Qwen3 soft switch `` /think`` or
  `` /no_think``;
* ``tools`` format: only ``render_patch`` is offered (the schema the MCP server publishes), the
  assistant calls it with ``{"patch": <compact patch>}``, and each call is answered by the agent's
  own tool message; ``answer`` format: no tools, the assistant writes a think block and the patch as
  a fenced JSON block;
* a refinement turn is ``compose_request(words, current patch)`` + `` /no_think``.

The checkpoint's ``patchsmith.json`` (written by the trainers) records the format and the thinking
setting it was trained with, so the prompt can be rebuilt exactly. ``choose_prompt`` decides between
the ``trained`` and ``agent`` profiles (for ``design``/``chat`` and for the evaluation systems alike)
and ``prompt_backend`` reads a model's answers the way its profile needs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..schema.compact import dumps_compact
from ..schema.patch import Patch
from .output_parsing import compose_request, split_request

Format = Literal["answer", "tools"]
FORMATS: tuple[str, ...] = ("answer", "tools")
PROFILES: tuple[str, ...] = ("trained", "agent")
THINK, NO_THINK = " /think", " /no_think"
PATCH_TOOL = "render_patch"
CHECKPOINT_FILE = "patchsmith.json"  # written into every checkpoint by training.sft.finish_checkpoint
# The loop's message for output it could not use (agent.loop); a trained model gets it with /no_think.
FEEDBACK_PREFIX = "Your answer could not be used:"
ANSWER_AGAIN = "Answer again with the corrected patch as one ```json block."


# --- the messages -------------------------------------------------------------------------------------


def switch(think: bool) -> str:
    """The Qwen3 soft switch that ends a user message."""
    return THINK if think else NO_THINK


def user_message(text: str, think: bool) -> dict[str, Any]:
    """A user message as trained: the text, then `` /think`` or `` /no_think``."""
    return {"role": "user", "content": text + switch(think)}


def trained_messages(caption: str, think: bool, fmt: Format = "tools") -> list[dict[str, Any]]:
    """The prompt of a first request: no system message, the caption with its soft switch (both formats)."""
    check_format(fmt)
    return [user_message(caption, think)]


def refinement_message(instruction: str, current: Patch) -> dict[str, Any]:
    """A refinement turn as trained: the words, the current patch as fenced JSON, `` /no_think``."""
    return user_message(compose_request(instruction, dumps_compact(current)), False)


def trained_tools(fmt: Format = "tools") -> list[dict[str, Any]]:
    """The tools offered to a trained model: ``render_patch`` only (tools format), none (answer format)."""
    check_format(fmt)
    if fmt == "answer":
        return []
    return tools_for_prompt((PATCH_TOOL,))


def tools_for_prompt(names: Any = (PATCH_TOOL,)) -> list[dict[str, Any]]:
    """The named tools in OpenAI function format, from the schemas the MCP server publishes."""
    from ..schema.openai_tools import openai_tools

    tools = openai_tools()
    known = [t["function"]["name"] for t in tools]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(f"tools: unknown or none given {unknown}; allowed: {', '.join(known)}")
    return [t for t in tools if t["function"]["name"] in names]


def tools_system_text(tools: Any) -> str:
    """The system text the Qwen3 template writes for ``tools=`` (for GRPO prompts, which take no tools column)."""
    lines = "".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools)
    return ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>" + lines
            + "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
              "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
              "<args-json-object>}\n</tool_call>")


def feedback_text(problems: list[str], ask: str = ANSWER_AGAIN) -> str:
    """The user message that hands unusable output back: what was wrong, one line each, then what to do."""
    return FEEDBACK_PREFIX + "\n" + "\n".join(f"- {p}" for p in problems) + "\n" + ask


def think_block(cot: str | None) -> str:
    """The assistant's think block: the reasoning, or the empty block of a no-think answer."""
    return f"<think>\n{cot.strip()}\n</think>\n\n" if cot else "<think>\n\n</think>\n\n"


def patch_block(patch: Patch) -> str:
    """The patch as a fenced JSON block in the compact canonical format."""
    return f"```json\n{dumps_compact(patch)}\n```"


def render_arguments(patch: Patch) -> str:
    """The ``render_patch`` arguments as JSON text: ``{"patch": <compact patch>}``."""
    return '{"patch": ' + dumps_compact(patch) + "}"


def patch_call(patch: Patch, cot: str | None = None) -> dict[str, Any]:
    """An assistant turn of the tools format: think block, then the ``render_patch`` call."""
    return {"role": "assistant", "content": think_block(cot),
            "tool_calls": [{"type": "function", "function": {"name": PATCH_TOOL, "arguments": render_arguments(patch)}}]}


def patch_answer(patch: Patch, cot: str | None = None) -> dict[str, Any]:
    """An assistant turn of the answer format: think block, then the fenced JSON patch."""
    return {"role": "assistant", "content": think_block(cot) + patch_block(patch)}


def check_format(fmt: str) -> None:
    """Refuse an unknown format, naming the allowed ones."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt: found {fmt!r}, allowed one of {', '.join(FORMATS)}")


# --- the agent's trained profile ---------------------------------------------------------------------------


class TrainedPrompt(BaseModel):
    """How a trained checkpoint was prompted: format, soft switch of a description, the template's thinking."""

    model_config = ConfigDict(extra="forbid")

    fmt: Format = "tools"
    think: bool = False
    # The chat template's enable_thinking as the trainer passed it: None = not passed (SFT), a bool (GRPO).
    template_thinking: bool | None = None
    source: str = ""  # where the settings came from (a checkpoint's patchsmith.json, the options)

    def tools(self) -> list[dict[str, Any]]:
        """The tools the model is offered."""
        return trained_tools(self.fmt)

    def template_kwargs(self) -> dict[str, Any]:
        """Extra chat-template arguments, as the trainer gave them."""
        return {} if self.template_thinking is None else {"enable_thinking": self.template_thinking}

    def model_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The agent's conversation as the trained model saw conversations in training."""
        out: list[dict[str, Any]] = []
        for m in messages:
            role = m.get("role")
            if role == "system":
                continue  # training had no system prompt
            if role == "user":
                out.append(self._user(str(m.get("content") or "")))
            elif role == "assistant":
                out.append(self._assistant(m))
            elif role == "tool":
                if self.fmt == "tools":
                    out.append({"role": "tool", "content": m.get("content") or ""})
                else:
                    self._tool_as_text(out, m)
        return out

    def _user(self, content: str) -> dict[str, Any]:
        words, current = split_request(content)
        description = current is None and not content.startswith(FEEDBACK_PREFIX)
        return {"role": "user", "content": content + switch(self.think and description)}

    def _assistant(self, m: dict[str, Any]) -> dict[str, Any]:
        """A past turn as training wrote it: a ``render_patch`` call's patch in the compact canonical layout."""
        calls = m.get("tool_calls") or []
        patches = [_call_patch(c) for c in calls]
        if self.fmt == "answer":
            if len(patches) == 1 and patches[0] is not None:
                return patch_answer(patches[0])
            return {"role": "assistant", "content": m.get("content") or ""}
        out: dict[str, Any] = {"role": "assistant", "content": m.get("content") or ""}
        if calls:
            out["tool_calls"] = [
                {"type": "function", "function": {"name": PATCH_TOOL, "arguments": render_arguments(p)}}
                if p is not None else {"type": "function", "function": dict(c.get("function") or {})}
                for c, p in zip(calls, patches)]
        return out

    def _tool_as_text(self, out: list[dict[str, Any]], m: dict[str, Any]) -> None:
        """Answer format: a render that worked is not shown (training had none); a refusal becomes words."""
        from .mcp_client import read_tool_message

        reply = read_tool_message(m.get("content"))
        if reply.get("ok"):
            return
        out.append(user_message(feedback_text([str(reply.get("error"))]), False))


def _call_patch(call: dict[str, Any]) -> Patch | None:
    """The patch of a ``render_patch`` call, when it is one and its patch is valid."""
    fn = call.get("function") or {}
    if fn.get("name") != PATCH_TOOL:
        return None
    try:
        args = json.loads(fn.get("arguments") or "")
        from ..schema.validate import parse_patch

        return parse_patch(args["patch"]) if isinstance(args, dict) and isinstance(args.get("patch"), dict) else None
    except (ValueError, TypeError, KeyError, RecursionError):
        return None


# --- what a checkpoint records --------------------------------------------------------------------------


class CheckpointRecordError(ValueError):
    """A checkpoint's ``patchsmith.json`` that cannot be read as a record of its training prompt."""


def checkpoint_record(kind: str, fmt: str, enable_thinking: bool) -> dict[str, Any]:
    """The ``patchsmith.json`` of a checkpoint: how its prompts looked in training."""
    check_format(fmt)
    return {"kind": kind, "prompt": {"fmt": fmt, "think": bool(enable_thinking),
                                     # GRPOTrainer passes enable_thinking to the template; SFTTrainer passes nothing.
                                     "template_thinking": bool(enable_thinking) if kind == "grpo" else None}}


def write_checkpoint_record(folder: str | Path, kind: str, fmt: str, enable_thinking: bool) -> Path:
    """Write ``patchsmith.json`` into a checkpoint folder; returns its path."""
    path = Path(folder) / CHECKPOINT_FILE
    path.write_text(json.dumps(checkpoint_record(kind, fmt, enable_thinking), indent=2) + "\n", encoding="utf-8")
    return path


def read_checkpoint_prompt(folder: str | Path) -> TrainedPrompt | None:
    """The trained prompt a checkpoint records (``patchsmith.json``, else its model card); None if neither says."""
    folder = Path(folder)
    path = folder / CHECKPOINT_FILE
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return TrainedPrompt(**data["prompt"], source=str(path))
        except (OSError, ValueError, KeyError, TypeError, ValidationError) as err:
            raise CheckpointRecordError(f"{path}: not a patchsmith checkpoint record ({str(err).splitlines()[0][:200]}); "
                             "expected {\"prompt\": {\"fmt\": \"answer\"|\"tools\", \"think\": bool, ...}}") from None
    card = folder / "README.md"
    if card.is_file():  # checkpoints from before patchsmith.json: the model card names format and thinking
        text = card.read_text(encoding="utf-8", errors="replace")
        if "- patchsmith" in text and "answer format: `" in text:
            fmt = text.split("answer format: `", 1)[1].split("`", 1)[0]
            think = "thinking (`enable_thinking`): on" in text
            kind = "grpo" if "\n- grpo\n" in text else "sft"
            if fmt in FORMATS:
                return TrainedPrompt(fmt=fmt, think=think, template_thinking=think if kind == "grpo" else None,
                                     source=str(card))
    return None


# --- which profile, and how the answers are read --------------------------------------------------------


def choose_prompt(profile: str | None, *, checkpoint: str | Path | None = None, output_parsing: bool = False,
                  patch_layout: str | None = None, strict_tools: bool = False, thinking: bool | None = None,
                  notes: list[str] | None = None) -> TrainedPrompt | None:
    """The prompt a model is sent: a ``TrainedPrompt`` (the ``trained`` profile) or None (the ``agent`` profile).

    ``profile`` None means trained for a ``checkpoint`` patchsmith trained (its ``patchsmith.json`` or model
    card), agent otherwise. Under ``trained`` the format and thinking come from the checkpoint's record, else
    from the options (``output_parsing``: answer format; ``thinking``: `` /think``), and ``thinking`` overrides
    the record's (an endpoint under the agent profile does not use it). What the caller should tell the user is
    appended to ``notes``. ``CheckpointRecordError`` for an unreadable record, ``ValueError`` for options that
    contradict the profile."""
    if profile is not None and profile not in PROFILES:
        raise ValueError(f"--prompt: found {profile!r}, allowed one of {', '.join(PROFILES)}")
    notes = notes if notes is not None else []
    folder = Path(checkpoint) if checkpoint is not None else None
    recorded = read_checkpoint_prompt(folder) if folder is not None and profile != "agent" and folder.is_dir() \
        else None
    chosen = profile or ("trained" if folder is not None else "agent")
    if profile is None and chosen == "trained" and recorded is None and folder is not None and folder.is_dir():
        # Not trained by `patchsmith train` (no patchsmith.json, no patchsmith model card): a general chat model.
        notes.append(f"prompt: agent profile: {folder} records no patchsmith training (no patchsmith.json); "
                     "--prompt trained sends it the training prompt anyway")
        return None
    if chosen == "agent":
        if thinking is not None and folder is None:
            notes.append("--thinking is for the trained prompt or a checkpoint; an endpoint's thinking is set by its "
                         "server, so it is not used")
        return None
    if strict_tools:
        raise ValueError("--strict-tools: the trained prompt offers render_patch as it was trained (not strict); "
                         "drop --strict-tools or use --prompt agent")
    if patch_layout == "source-research":
        raise ValueError("--patch-layout source-research: patchsmith trains on the canonical layout; drop it or use "
                         "--prompt agent")
    parsing = output_parsing or patch_layout is not None
    if recorded is not None:
        if parsing and recorded.fmt == "tools":
            raise ValueError(f"--output-parsing: {folder} was trained to call render_patch (format tools, "
                             f"{recorded.source}); drop --output-parsing, or use --prompt agent")
        fmt = recorded.fmt
    else:
        fmt = "answer" if parsing else "tools"
    think = thinking if thinking is not None else (recorded.think if recorded is not None else False)
    # GRPO passed enable_thinking to the template; it is kept in step with the soft switch.
    template = think if recorded is not None and recorded.template_thinking is not None else None
    prompt = TrainedPrompt(fmt=fmt, think=think, template_thinking=template,
                           source=recorded.source if recorded is not None else "the options")
    notes.append(f"prompt: trained profile (format {fmt}, {'/think' if think else '/no_think'}; from {prompt.source}); "
                 "--prompt agent sends the agent's system prompt and every tool instead")
    return prompt


def prompt_backend(base: Any, prompt: TrainedPrompt | None, *, output_parsing: bool = False,
                   patch_layout: str | None = None, render_args: dict[str, Any] | None = None) -> Any:
    """``base`` as the profile needs it: wrapped in ``OutputParsingBackend`` for answers in text (the answer
    format, or ``output_parsing``/``patch_layout`` under the agent profile), else ``base`` itself."""
    parsing = prompt.fmt == "answer" if prompt is not None else (output_parsing or patch_layout is not None)
    if not parsing:
        return base
    from .backends import OutputParsingBackend

    # Under the trained profile the conversation already reads as in training: sent as it is.
    return OutputParsingBackend(base, patch_layout=patch_layout or "canonical",  # type: ignore[arg-type]
                                render_args=render_args, as_given=prompt is not None)


__all__ = ["ANSWER_AGAIN", "CHECKPOINT_FILE", "CheckpointRecordError", "FEEDBACK_PREFIX", "FORMATS", "NO_THINK",
           "PATCH_TOOL", "PROFILES", "THINK", "TrainedPrompt", "check_format", "checkpoint_record", "choose_prompt",
           "feedback_text", "patch_answer", "patch_block", "patch_call", "prompt_backend", "read_checkpoint_prompt",
           "refinement_message", "render_arguments", "switch", "think_block", "tools_for_prompt", "tools_system_text",
           "trained_messages", "trained_tools", "user_message", "write_checkpoint_record"]
