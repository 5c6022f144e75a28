"""Model backends: whatever writes the next assistant turn, behind one interface.

* ``OpenAICompatibleBackend``: any Chat Completions endpoint (vLLM serving a fine-tuned Qwen3 with the
  hermes tool parser, OpenAI, llama.cpp, ...), through the official ``openai`` client;
* ``OutputParsingBackend``: for models that answer in text (``<think>…</think>`` and a fenced JSON
  patch, the source research's format, optionally in its OP6-first layout) instead of tool calls:
  the patch becomes a ``render_patch`` call, exactly as if the model had made it;
* ``OfflineDesignerBackend``: the embedded default (no network, no key): the offline designer decides,
  and emits the tool calls an LLM would (``render_patch`` for a description, ``edit_patch`` then
  ``render_patch`` for a refinement), then a final answer.

Messages are OpenAI chat messages (dicts) throughout; a backend returns a ``ModelTurn``.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from typing import Any, Literal

from pydantic import BaseModel, Field

from .mcp_client import read_tool_message
from .output_parsing import parse_model_output, parse_tool_calls, split_request, split_think

PatchLayout = Literal["canonical", "source-research"]
PATCH_LAYOUTS: tuple[str, ...] = ("canonical", "source-research")
DEFAULT_TIMEOUT_S = 120.0


class BackendError(RuntimeError):
    """The model could not be asked (unreachable, refused, malformed answer)."""


class BackendTimeout(BackendError):
    """The model did not answer in time."""


class ToolCall(BaseModel):
    """A tool call as the model wrote it: the arguments stay raw JSON text until the loop parses them."""

    id: str
    name: str
    arguments: str


class ModelTurn(BaseModel):
    """One assistant turn: visible text, reasoning, tool calls, and output the loop must send back."""

    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    finish_reason: str | None = None
    # Output that could not be used at all (no tool call to attach an error to): the loop sends these
    # back to the model as a user message so that it can answer again.
    problems: list[str] = Field(default_factory=list)
    usage: dict[str, Any] | None = None

    def assistant_message(self) -> dict[str, Any]:
        """The OpenAI chat message that records this turn in the conversation."""
        msg: dict[str, Any] = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            msg["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}} for c in self.tool_calls]
        return msg


class ModelBackend(ABC):
    """Writes the next assistant turn for a conversation and a list of OpenAI function tools."""

    name: str = "model"
    strict_tools: bool = False

    @abstractmethod
    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                 timeout_s: float | None = None) -> ModelTurn:
        """The next assistant turn; ``BackendError`` when the model cannot be asked."""

    def describe(self) -> dict[str, Any]:
        """What the transcript records about this backend."""
        return {"backend": type(self).__name__, "name": self.name, "strict_tools": self.strict_tools}


# --- any OpenAI-compatible endpoint ------------------------------------------------------------------


def api_key_from_env() -> str | None:
    """The API key from ``PATCHSMITH_API_KEY`` or ``OPENAI_API_KEY``."""
    return os.environ.get("PATCHSMITH_API_KEY") or os.environ.get("OPENAI_API_KEY") or None


def resolve_api_key(api_key: str | None, base_url: str | None) -> str | None:
    """The key to send: ``api_key``, else the environment's, else a placeholder for a ``base_url``; None when none."""
    key = api_key or api_key_from_env()
    if key is None and base_url is not None:
        key = "EMPTY"  # local servers (vLLM without --api-key) ignore it, but the client requires one
    return key


def sampling_options(temperature: float | None, max_tokens: int | None,
                     extra_body: dict[str, Any] | None) -> dict[str, Any]:
    """The Chat Completions request fields for the sampling settings that are set (unset ones are left out)."""
    options: dict[str, Any] = {}
    if temperature is not None:
        options["temperature"] = temperature
    if max_tokens is not None:
        options["max_tokens"] = max_tokens
    if extra_body:
        options["extra_body"] = extra_body
    return options


class OpenAICompatibleBackend(ModelBackend):
    """A Chat Completions endpoint reached with the ``openai`` client (vLLM, OpenAI, any compatible server)."""

    def __init__(self, model: str, base_url: str | None = None, *, api_key: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, tool_choice: str | dict[str, Any] = "auto",
                 strict_tools: bool = False, temperature: float | None = None, max_tokens: int | None = None,
                 extra_body: dict[str, Any] | None = None, max_retries: int = 0):
        from openai import OpenAI

        key = resolve_api_key(api_key, base_url)
        if key is None:
            raise BackendError("no API key: set PATCHSMITH_API_KEY or OPENAI_API_KEY, or give --base-url "
                               "for a local server that needs none")
        if not model:
            raise BackendError("no model name: give --model or set PATCHSMITH_MODEL")
        self.name = model
        self.model = model
        self.base_url = base_url
        self.timeout_s = float(timeout_s)
        self.tool_choice = tool_choice
        self.strict_tools = strict_tools
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.extra_body = extra_body
        self._text_calls = 0
        # Retries are off by default: the agent's own limits decide how long a request may take.
        self._client = OpenAI(api_key=key, base_url=base_url, timeout=self.timeout_s, max_retries=max_retries)

    def describe(self) -> dict[str, Any]:
        """What the transcript records about this backend (never the key)."""
        return super().describe() | {"model": self.model, "base_url": self.base_url, "tool_choice": self.tool_choice}

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                 timeout_s: float | None = None) -> ModelTurn:
        """Ask the endpoint for the next turn (tools offered when given)."""
        import openai

        timeout = self.timeout_s if timeout_s is None else max(0.001, min(self.timeout_s, timeout_s))
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "timeout": timeout}
        if tools:
            kwargs["tools"] = tools
            kwargs["tool_choice"] = self.tool_choice
        kwargs |= sampling_options(self.temperature, self.max_tokens, self.extra_body)
        where = self.base_url or "the OpenAI API"
        try:
            response = self._client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            raise BackendTimeout(f"the model {self.model} at {where} did not answer within {timeout:g} s") from None
        except openai.APIConnectionError as err:
            raise BackendError(f"cannot reach the model at {where}: {err}") from None
        except openai.APIStatusError as err:
            raise BackendError(f"the model server at {where} answered HTTP {err.status_code}: "
                               f"{status_message(err)}") from None
        except openai.OpenAIError as err:
            raise BackendError(f"the model at {where} failed: {err}") from None
        return self._turn(response)

    def _turn(self, response: Any) -> ModelTurn:
        if not getattr(response, "choices", None):
            raise BackendError(f"the model server answered without choices: {str(response)[:200]}")
        choice = response.choices[0]
        msg = choice.message
        reasoning = message_reasoning(msg)
        content = msg.content
        if content and "</think>" in content and not reasoning:
            reasoning, content = split_think(content)
        calls = [ToolCall(id=c.id or f"call_{i}", name=c.function.name or "", arguments=c.function.arguments or "")
                 for i, c in enumerate(msg.tool_calls or []) if getattr(c, "function", None) is not None]
        if not calls and content and "<tool_call>" in content:
            # A server without a tool-call parser passes Qwen's <tool_call> blocks through as text.
            calls = []
            for c in parse_tool_calls(content):
                self._text_calls += 1  # ids unique over the conversation, as a tool message must name one call
                calls.append(ToolCall(id=f"call_text_{self._text_calls}", name=c.name, arguments=c.arguments))
            content = content.split("<tool_call>", 1)[0].strip()
        usage = response.usage.model_dump() if getattr(response, "usage", None) is not None else None
        return ModelTurn(content=content, reasoning=reasoning, tool_calls=calls, finish_reason=choice.finish_reason,
                         usage=usage)


def status_message(err: Any) -> str:
    """The server's own words for an HTTP error the ``openai`` client raised (at most 300 characters)."""
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(inner, str):  # {"error": "..."}, as some servers answer
            return inner[:300]
    return str(getattr(err, "message", err))[:300]


def message_reasoning(msg: Any) -> str | None:
    """The reasoning a server split off a chat message, if any."""
    extra = getattr(msg, "model_extra", None) or {}
    # vLLM's reasoning parsers return "reasoning" (0.33 and newer) or "reasoning_content" (older).
    reasoning = getattr(msg, "reasoning", None) or extra.get("reasoning") or extra.get("reasoning_content")
    return reasoning if isinstance(reasoning, str) else None


# --- models that answer in text ----------------------------------------------------------------------

_TEXT_FORMAT = {
    "canonical": "the patch as JSON in the project's canonical layout (every per-operator array OP1 first)",
    "source-research": "the patch as JSON in the source research's layout (12 keys; per-operator arrays and the "
                       "columns of eg_rate/eg_level OP6 first, modmatrix and outmatrix OP1 first)",
}


class OutputParsingBackend(ModelBackend):
    """A model that answers with ``<think>…</think>`` and a fenced JSON patch: the patch becomes a render call."""

    def __init__(self, base: ModelBackend, *, patch_layout: PatchLayout = "canonical",
                 render_args: dict[str, Any] | None = None, finish_after_render: bool = True,
                 as_given: bool = False):
        """``as_given``: send the conversation unchanged (the agent's trained profile already wrote it as trained)."""
        if patch_layout not in PATCH_LAYOUTS:
            raise ValueError(f"patch_layout: found {patch_layout!r}, allowed one of {', '.join(PATCH_LAYOUTS)}")
        self.base = base
        self.name = base.name
        self.patch_layout = patch_layout
        self.render_args = dict(render_args or {})
        # Such models were trained to emit one patch per prompt; once it renders, the answer is complete.
        self.finish_after_render = finish_after_render
        self.as_given = as_given
        self._count = 0

    def describe(self) -> dict[str, Any]:
        """What the transcript records about this backend."""
        return {"backend": type(self).__name__, "patch_layout": self.patch_layout, "as_given": self.as_given,
                "base": self.base.describe()}

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                 timeout_s: float | None = None) -> ModelTurn:
        """The model's next patch as a render_patch call, or a final answer once a render succeeded."""
        last = messages[-1] if messages else {}
        if last.get("role") == "tool" and self.finish_after_render:
            reply = read_tool_message(last.get("content"))
            if reply.get("ok"):
                first = str(reply.get("summary") or "").splitlines()[:1]
                return ModelTurn(content=" ".join(["Rendered the patch.", *first]), finish_reason="stop")
        raw = self.base.complete(messages if self.as_given else self._text_messages(messages), [],
                                 timeout_s=timeout_s)
        text = raw.content or ""
        if raw.reasoning:
            text = f"<think>\n{raw.reasoning}\n</think>\n\n{text}"
        parsed = parse_model_output(text)
        turn = ModelTurn(content=parsed.content, reasoning=parsed.reasoning, finish_reason=raw.finish_reason,
                         usage=raw.usage)
        if parsed.tool_calls:
            turn.tool_calls = [self._call(c.name, c.arguments) for c in parsed.tool_calls]
            return turn
        if parsed.patch is None:
            turn.problems = parsed.problems
            return turn
        patch, problem = self._canonical(parsed.patch)
        if problem:
            turn.problems = [problem]
            return turn
        turn.tool_calls = [self._call("render_patch", json.dumps({"patch": patch, **self.render_args}))]
        return turn

    def _call(self, name: str, arguments: str) -> ToolCall:
        self._count += 1
        return ToolCall(id=f"call_parsed_{self._count}", name=name, arguments=arguments)

    def _canonical(self, data: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """The patch in the canonical layout, or why it cannot be converted."""
        if self.patch_layout == "canonical":
            return data, None  # the server validates it and names every problem
        from ..schema.source_research import SourceResearchError, import_source_dict

        try:
            return import_source_dict(data, lenient_name=True).to_dict(), None
        except SourceResearchError as err:
            return None, str(err)

    def _text_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The conversation for a text-only model: tool calls as its own text, tool results as user turns."""
        system = ("You design DX7 FM synthesizer patches. Think inside <think>...</think>, then answer with "
                  f"{_TEXT_FORMAT[self.patch_layout]}, in one ```json fenced block.")
        out: list[dict[str, Any]] = [{"role": "system", "content": system}]
        for m in messages:
            role = m.get("role")
            if role == "system":
                continue
            if role == "tool":
                reply = read_tool_message(m.get("content"))
                text = (f"The patch could not be used: {reply.get('error')}\nAnswer again with the corrected "
                        "patch as one ```json block." if not reply.get("ok") else
                        f"The render: {reply.get('summary') or 'done'}")
                _append(out, "user", text)
            elif role == "assistant":
                _append(out, "assistant", m.get("content") or "")
            else:
                _append(out, role or "user", m.get("content") or "")
        return out


def _append(out: list[dict[str, Any]], role: str, text: str) -> None:
    """Append a message, merging it into the previous one of the same role (chat templates want turns)."""
    if out and out[-1]["role"] == role and role != "system":
        out[-1]["content"] = f"{out[-1]['content']}\n\n{text}"
    else:
        out.append({"role": role, "content": text})


# --- the offline designer ----------------------------------------------------------------------------


class OfflineDesignerBackend(ModelBackend):
    """The embedded designer, speaking through the same tools an LLM uses."""

    name = "offline-designer"

    def __init__(self, designer: Any = None, *, library: Any = None, note: int | None = None,
                 velocity: int | None = None):
        if designer is None:
            from .designer import Library, OfflineDesigner

            if isinstance(library, (str, os.PathLike)):
                library = Library.load(library)  # LibraryError names what is wrong with the path
            designer = OfflineDesigner(library=library)
        self.designer = designer
        # None: play the patch the way its library entry says it is best heard (a bass low, a bell high).
        self.note = note
        self.velocity = velocity
        self._count = 0
        self._design: Any = None
        self._steps: list[dict[str, Any]] = []
        self._play: dict[str, Any] = {"notes": [note if note is not None else 60],
                                      "velocity": velocity if velocity is not None else 100}

    def describe(self) -> dict[str, Any]:
        """What the transcript records about this backend."""
        return {"backend": type(self).__name__, "name": self.name, "note": self.note, "velocity": self.velocity}

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                 timeout_s: float | None = None) -> ModelTurn:
        """The next step of a design or refinement: a tool call, or the final answer."""
        start = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)
        if start < 0:
            return ModelTurn(content="Describe a sound to design.", finish_reason="stop")
        words, current = split_request(messages[start].get("content") or "")
        after = messages[start + 1:]
        if not after:
            try:
                return self._begin(words, current)
            except ValueError as err:  # text the designer refuses (empty, far too long), or a broken patch
                raise BackendError(f"the offline designer: {err}") from None
        last = after[-1]
        if last.get("role") != "tool":
            return ModelTurn(content="Done.", finish_reason="stop")
        called = _call_name(after, last.get("tool_call_id"))
        reply = read_tool_message(last.get("content"))
        if not reply.get("ok"):
            return ModelTurn(content=f"The {called or 'tool'} call failed: {reply.get('error')}", finish_reason="stop")
        result = reply.get("result") or {}
        if called == "edit_patch" and isinstance(result.get("patch"), dict):
            return self._render(result["patch"])
        return ModelTurn(content=self._final_text(words), finish_reason="stop")

    def _begin(self, words: str, current: dict[str, Any] | None) -> ModelTurn:
        if current is None:
            self._design = self.designer.design(words)
            self._steps = []
            heard = getattr(self._design, "render", None)
            self._play = {"notes": [self.note if self.note is not None else getattr(heard, "note", 60)],
                          "velocity": self.velocity if self.velocity is not None else getattr(heard, "velocity", 100)}
            if heard is not None:
                self._play.update(hold_s=heard.hold_s, release_s=heard.release_s)
            return self._render(self._design.patch.to_dict())
        from ..schema.validate import parse_patch

        from .library import RenderSettings

        self._design = None
        # Absolute words ("soft attack") are judged on the note the patch is being auditioned at.
        heard = RenderSettings(note=self._play["notes"][0], velocity=self._play["velocity"],
                               hold_s=self._play.get("hold_s", 3.0), release_s=self._play.get("release_s", 1.0))
        self._steps = list(self.designer.refine(parse_patch(current), words, render=heard))
        if not self._steps:
            return ModelTurn(content=f"Nothing in {words!r} names a change I can make; try words such as "
                                     "brighter, darker, softer attack, shorter decay, longer release, more "
                                     "metallic, vibrato or detuned.", finish_reason="stop")
        return self._tool("edit_patch", {"patch": current, "edits": self._steps})

    def _render(self, patch: dict[str, Any]) -> ModelTurn:
        return self._tool("render_patch", {"patch": patch, **self._play})

    def _tool(self, name: str, arguments: dict[str, Any]) -> ModelTurn:
        self._count += 1
        return ModelTurn(tool_calls=[ToolCall(id=f"call_offline_{self._count}", name=name,
                                              arguments=json.dumps(arguments))], finish_reason="tool_calls")

    def _final_text(self, words: str) -> str:
        lines = []
        if self._design is not None:
            lines.extend(_design_lines(self._design))
        elif self._steps:
            steps = ", ".join(_step_text(s) for s in self._steps)
            lines.append(f"Changed the current patch for {words!r}: {steps}.")
        # The render's own summary is for models; people get the command's "sound:" line instead.
        return "\n".join(lines) or "Done."


def _call_name(messages: list[dict[str, Any]], call_id: str | None) -> str | None:
    """The tool name of the call ``call_id`` in the assistant messages."""
    for m in reversed(messages):
        for c in m.get("tool_calls") or []:
            if c.get("id") == call_id:
                return c.get("function", {}).get("name")
    return None


def _step_text(step: dict[str, Any]) -> str:
    if step.get("op") == "adjust":
        return f"{step.get('quality')} {int(step.get('amount', 0)):+d}"
    return f"{step.get('path')} = {step.get('value')}"


def _design_lines(design: Any) -> list[str]:
    """A short account of what the designer did, read defensively from its result."""
    lines = []
    match = getattr(design, "match", None)
    if match is not None:
        name = getattr(match, "name", None) or getattr(design.patch, "name", None) or "a library patch"
        caption = getattr(match, "caption", None)
        score = getattr(match, "score", None)
        head = f"Started from {name}"
        if caption:
            head += f" ({caption!r}"
            head += f", score {score:.2f})" if isinstance(score, (int, float)) else ")"
        lines.append(head + ".")
    edits = getattr(design, "edits", None) or []
    if edits:
        lines.append("Then: " + ", ".join(_step_text(e) if isinstance(e, dict) else str(e) for e in edits) + ".")
    for note in getattr(design, "notes", None) or []:
        lines.append(str(note))
    return lines


__all__ = ["BackendError", "BackendTimeout", "ModelBackend", "ModelTurn", "OfflineDesignerBackend",
           "OpenAICompatibleBackend", "OutputParsingBackend", "PATCH_LAYOUTS", "ToolCall", "api_key_from_env",
           "message_reasoning", "resolve_api_key", "sampling_options", "status_message"]
