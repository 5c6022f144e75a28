"""Reading raw model text: ``<think>`` blocks, Qwen3 ``<tool_call>`` blocks and fenced JSON patches.

Models that are not served behind a tool-call parser answer in text. Two shapes occur
(``reference/llm_tools.md`` §1.1 and §4):

* the source research's: ``<think>…</think>`` (possibly empty, possibly with the opening tag already in
  the prompt) followed by the patch as a fenced JSON block;
* Qwen3's hermes-style calls: ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``.

Everything here is pure text processing: nothing raises on any input; what cannot be read comes back
as a problem line a model can act on. The same module writes the one user-message format the agent
uses for refinements (the request followed by the current patch as fenced JSON) and reads it back, so
a backend that never saw the earlier turns (or the user's undo) still knows which patch to change.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field

MAX_TEXT = 400_000  # a patch is ~1 kB; a reply this long is garbage, not something to scan quadratically

_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"
_TOOL_CALL = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_NAME = re.compile(r'"name"\s*:\s*"([^"\\]{1,64})"')
CURRENT_PATCH_HEADING = "The current patch:"


class ParsedToolCall(BaseModel):
    """One tool call read from text: its name and its arguments as JSON text (as the model wrote them)."""

    name: str
    arguments: str
    problem: str | None = None  # set when the call itself could not be read (bad JSON, no name)


class ParsedOutput(BaseModel):
    """What a raw model answer holds: reasoning, the visible text, tool calls and a JSON patch."""

    reasoning: str | None = None
    content: str = ""
    tool_calls: list[ParsedToolCall] = Field(default_factory=list)
    patch: dict[str, Any] | None = None
    problems: list[str] = Field(default_factory=list)


def split_think(text: str) -> tuple[str | None, str]:
    """(reasoning, the rest) of a reply; reasoning is None when there is no think block."""
    text = text or ""
    open_at = text.find(_THINK_OPEN)
    close_at = text.find(_THINK_CLOSE)
    if close_at >= 0 and (open_at < 0 or open_at > close_at):
        # The chat template put "<think>" into the prompt, so the completion starts inside the block.
        return text[:close_at].strip(), text[close_at + len(_THINK_CLOSE):].strip()
    if open_at >= 0:
        start = open_at + len(_THINK_OPEN)
        end = text.find(_THINK_CLOSE, start)
        if end < 0:  # cut off while thinking: all of it is reasoning, nothing is an answer
            return text[start:].strip(), text[:open_at].strip()
        return text[start:end].strip(), (text[:open_at] + text[end + len(_THINK_CLOSE):]).strip()
    return None, text.strip()


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_problem(err: json.JSONDecodeError) -> str:
    return f"{err.msg} at line {err.lineno} column {err.colno}"


def parse_tool_calls(text: str) -> list[ParsedToolCall]:
    """The Qwen3 ``<tool_call>{"name", "arguments"}</tool_call>`` blocks of ``text``, in order."""
    calls: list[ParsedToolCall] = []
    for match in _TOOL_CALL.finditer(text or ""):
        body = match.group(1).strip()
        try:
            data = json.loads(body)
        except json.JSONDecodeError as err:
            named = _NAME.search(body)
            calls.append(ParsedToolCall(name=named.group(1) if named else "", arguments=body,
                                        problem=f"the tool call is not valid JSON ({_json_problem(err)}): "
                                                f"{_short(body)}"))
            continue
        except RecursionError:
            calls.append(ParsedToolCall(name="", arguments="", problem="the tool call is nested too deeply"))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
            calls.append(ParsedToolCall(name="", arguments=body, problem='a tool call must be an object '
                                        '{"name": "<tool>", "arguments": {...}}; found ' + _short(body)))
            continue
        args = data.get("arguments", data.get("parameters", {}))
        # Qwen's template inserts a string "arguments" raw, so a model may have written either form.
        arguments = args if isinstance(args, str) else json.dumps(args)
        calls.append(ParsedToolCall(name=data["name"], arguments=arguments))
    return calls


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced code block of ``text`` as (language, body), in order; an unclosed last fence counts."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text or "")]


def _loads_object(text: str) -> tuple[Any, str | None]:
    """(value, None) for parsable JSON, or (None, why not)."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as err:
        # The source research's CSVs hold Python literals; a model trained on them may write one.
        from ..schema.source_research import SourceResearchError, parse_source_text

        try:
            return parse_source_text(text), None
        except SourceResearchError:
            return None, _json_problem(err)
    except RecursionError:
        return None, "nested too deeply"


def _bare_object(text: str) -> str | None:
    """The outermost ``{...}`` span of text that has no fences (a model that forgot them)."""
    start, end = text.find("{"), text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else None


def find_patch(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The patch object in a reply (the last fenced JSON block, else a bare ``{...}``), or the problems."""
    blocks = [(lang, body) for lang, body in fenced_blocks(text) if lang in ("", "json", "json5", "python")]
    candidates = [body for _, body in blocks] or [b for b in [_bare_object(text or "")] if b]
    if not candidates:
        return None, []
    problem = None
    for body in reversed(candidates):  # the final answer comes last; earlier blocks are drafts
        value, why = _loads_object(body.strip())
        if why is not None:
            problem = problem or f"the JSON block does not parse ({why}): {_short(body)}"
            continue
        if isinstance(value, dict) and isinstance(value.get("patch"), dict):
            value = value["patch"]  # {"patch": {...}} is the tool's own argument shape
        if isinstance(value, dict):
            return value, []
        problem = problem or f"the JSON block holds a {type(value).__name__}, not a patch object"
    return None, [problem] if problem else []


def parse_model_output(text: str | None, *, want_patch: bool = True) -> ParsedOutput:
    """Split a raw reply into reasoning, visible text, tool calls and (when asked) a JSON patch."""
    text = text or ""
    if len(text) > MAX_TEXT:
        return ParsedOutput(content=text[:200], problems=[f"the answer is {len(text)} characters long; "
                                                          f"at most {MAX_TEXT} are read"])
    reasoning, rest = split_think(text)
    out = ParsedOutput(reasoning=reasoning, content=rest)
    out.tool_calls = parse_tool_calls(rest)
    if out.tool_calls or not want_patch:
        return out
    out.patch, out.problems = find_patch(rest)
    if reasoning is not None and not rest and out.patch is None:
        out.problems.append("the answer ended inside the <think> block, before any patch")
    return out


def compose_request(text: str, patch_json: str | None) -> str:
    """The user message for a request: the words, then (for a refinement) the current patch as fenced JSON."""
    if patch_json is None:
        return text
    return f"{text}\n\n{CURRENT_PATCH_HEADING}\n```json\n{patch_json}\n```"


def split_request(message: str) -> tuple[str, dict[str, Any] | None]:
    """(the words, the current patch or None) of a message written by ``compose_request``."""
    message = message or ""
    at = message.rfind("\n\n" + CURRENT_PATCH_HEADING)
    if at < 0:
        return message.strip(), None
    patch, _ = find_patch(message[at:])
    return message[:at].strip(), patch
