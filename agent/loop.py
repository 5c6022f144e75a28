"""The tool-calling loop: model → tool calls → MCP → tool messages → … until the model answers.

One ``Agent.run`` serves one user request. Each model turn either answers (the request is done) or
asks for tool calls; every call goes to the MCP server and its result comes back as a tool message
(the text summary and the structured result; audio stays in files). A tool error, such as a patch
that fails validation, is returned to the model like any result, so it can correct itself; so is a
call the agent could not even send (arguments that are not a JSON object). Model output that could
not be used at all comes back as a user message saying why.

With a ``TrainedPrompt`` (the ``trained`` profile, for a patchsmith-trained checkpoint) the model is sent
its conversation as it saw conversations in training (``agent.trained_prompt``): no system prompt, the
soft switch on every user message, ``render_patch`` the only tool (none in the answer format), and the
request ends once a ``render_patch`` call succeeded, as in training.

Limits on model turns, tool calls and wall time end a runaway request with ``AgentLimitError``,
which says which limit was hit and how to raise it. Every turn and every call is recorded in a
``Transcript`` (JSON-serialisable; the commands write it as ``transcript.json``).
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from .backends import BackendError, BackendTimeout, ModelBackend, ModelTurn, ToolCall
from .mcp_client import ToolClient, ToolOutcome
from .trained_prompt import PATCH_TOOL, TrainedPrompt, feedback_text

# Tools whose successful result defines "the current patch" and where it is found.
_PATCH_FROM_ARGUMENTS = ("render_patch", "render_evidence")
_PATCH_FROM_RESULT = ("edit_patch",)

SYSTEM_PROMPT = """\
You are a sound designer working on a Yamaha DX7 (6-operator FM synthesis). You turn a description \
of a sound into a DX7 patch and refine it when asked, using the tools; you never make audio yourself.

The patch format is the tools' `patch` schema: per-operator arrays run OP1..OP6 (index 0 is OP1); \
modmatrix[i][j] = 1 means OP(j+1) modulates OP(i+1) (a 1 on the diagonal is feedback); outmatrix \
marks the carriers; eg_rate/eg_level are 4 stages x 6 operators.

- For a new description: write a complete patch and call render_patch with it. Read the \
descriptors in the result (attack, decay, brightness, inharmonicity, ...) as your ears; change the \
patch and render again only if the sound clearly misses the description.
- For a change to the current patch (the user's message ends with it): call edit_patch on that \
patch with "adjust" steps (brightness, attack, decay, release, sustain, metallic, vibrato, detune, \
level; -3..3) or explicit "set" edits, then render_patch with the new patch it returns.
- A tool error lists each problem with a JSON pointer and what is allowed: fix exactly those values \
and call again.
- When the sound fits, answer in one or two sentences saying what you made; do not repeat the patch.
Render at note {note} with velocity {velocity}."""


class LoopLimits(BaseModel):
    """Bounds on one request: model turns, tool calls, wall-clock seconds."""

    max_turns: int = Field(12, ge=1, le=1000)
    max_tool_calls: int = Field(24, ge=0, le=10_000)
    max_seconds: float = Field(600.0, gt=0, le=86_400)


LIMIT_FLAGS = {"max_turns": "--max-turns", "max_tool_calls": "--max-tool-calls", "max_seconds": "--max-seconds"}


def loop_limits(max_turns: int, max_tool_calls: int, max_seconds: float) -> LoopLimits:
    """The ``LoopLimits`` of the limit options; ``ValueError`` names each bad one by its flag and its bounds."""
    try:
        return LoopLimits(max_turns=max_turns, max_tool_calls=max_tool_calls, max_seconds=max_seconds)
    except ValidationError as err:
        lines = []
        for e in err.errors():
            name, value = str(e["loc"][0]), e["input"]
            found = f"{value:g}" if isinstance(value, float) else value
            lines.append(f"{LIMIT_FLAGS[name]}: found {found}, allowed {_bounds(name)}")
        raise ValueError("\n".join(lines)) from None


def _bounds(name: str) -> str:
    """What one limit allows, read from ``LoopLimits``' own field bounds."""
    meta = LoopLimits.model_fields[name].metadata
    low = next(f">= {m.ge:g}" if hasattr(m, "ge") else f"> {m.gt:g}" for m in meta
               if hasattr(m, "ge") or hasattr(m, "gt"))
    high = next(m.le for m in meta if hasattr(m, "le"))
    kind = "a number of seconds" if name == "max_seconds" else "an integer"
    return f"{kind} {low} and <= {high:g}"


class AgentError(RuntimeError):
    """A request that could not be completed (the model or the tools failed)."""


class AgentLimitError(AgentError):
    """A request stopped at one of its limits; ``limit`` names it (turns, tool_calls, seconds)."""

    def __init__(self, limit: str, message: str):
        self.limit = limit
        super().__init__(message)


class Transcript(BaseModel):
    """Every turn of every request: what the model said, what each tool answered, how long it took."""

    meta: dict[str, Any] = Field(default_factory=dict)
    entries: list[dict[str, Any]] = Field(default_factory=list)

    def add(self, entry_type: str, /, **fields: Any) -> dict[str, Any]:
        """Record one entry (``request``, ``model``, ``tool``, ``feedback``, ``final``, ``error``, ...)."""
        entry = {"type": entry_type, "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
                 **fields}
        self.entries.append(entry)
        return entry

    def to_json(self) -> str:
        """The transcript as indented JSON text."""
        return json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False, default=str) + "\n"


class AgentReply(BaseModel):
    """The outcome of one request."""

    text: str = ""
    patch: dict[str, Any] | None = None  # the last patch a tool accepted (rendered or edited), if any
    last_render: ToolOutcome | None = None
    render: dict[str, Any] | None = None  # how the last successful render_patch played it (note, velocity, ...)
    turns: int = 0
    tool_calls: int = 0
    elapsed_s: float = 0.0


def parse_arguments(call: ToolCall) -> tuple[dict[str, Any] | None, str | None]:
    """The call's arguments as an object, or a message telling the model what was wrong with them."""
    if not call.name:
        return None, "the tool call has no tool name; call one of the listed tools by name"
    text = (call.arguments or "").strip() or "{}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        near = text[max(0, err.pos - 20): err.pos + 20]
        return None, (f"the arguments of {call.name} are not valid JSON ({err.msg} at line {err.lineno} column "
                      f"{err.colno}, near {near!r}); send the call again with the arguments as one JSON object")
    except RecursionError:
        return None, f"the arguments of {call.name} are nested too deeply"
    if not isinstance(value, dict):
        return None, (f"the arguments of {call.name} must be a JSON object, not a {type(value).__name__}; "
                      'for example {"patch": {...}}')
    return value, None


class Agent:
    """Runs requests against a model backend and the MCP tools, within limits, recording a transcript."""

    def __init__(self, backend: ModelBackend, tools: ToolClient, *, limits: LoopLimits | None = None,
                 transcript: Transcript | None = None, prompt: TrainedPrompt | None = None):
        """``prompt``: the ``trained`` profile (the model sees its training prompt); None: the ``agent`` profile."""
        self.backend = backend
        self.tools = tools
        self.limits = limits or LoopLimits()
        self.transcript = transcript if transcript is not None else Transcript()
        self.prompt = prompt
        if prompt is None:
            self._tool_defs = tools.openai_tools(strict=backend.strict_tools)
        else:
            if PATCH_TOOL not in tools.tool_names():
                raise AgentError(f"the MCP server ({tools.label}) has no {PATCH_TOOL} tool, which a trained model calls")
            self._tool_defs = prompt.tools()
        self.transcript.meta.setdefault("backend", backend.describe())
        self.transcript.meta.setdefault("mcp", tools.label)
        self.transcript.meta.setdefault("tools", tools.tool_names())
        self.transcript.meta.setdefault("limits", self.limits.model_dump())
        self.transcript.meta.setdefault("prompt", {"profile": "agent"} if prompt is None else
                                        {"profile": "trained", **prompt.model_dump(),
                                         "offered_tools": [t["function"]["name"] for t in self._tool_defs]})

    def model_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What the model is sent for ``messages``: as they are, or as the trained model saw them in training."""
        return messages if self.prompt is None else self.prompt.model_messages(messages)

    def run(self, messages: list[dict[str, Any]]) -> AgentReply:
        """Continue ``messages`` (appending every turn) until the model answers; ``AgentError`` when it cannot."""
        limits = self.limits
        start = time.monotonic()
        reply = AgentReply()
        while True:
            elapsed = time.monotonic() - start
            if reply.turns >= limits.max_turns:
                raise self._stop("turns", f"turn limit reached: the model took {reply.turns} turns without a "
                                          f"final answer (at most {limits.max_turns}; raise it with --max-turns)")
            if elapsed >= limits.max_seconds:
                raise self._stop("seconds", f"time limit reached: {elapsed:.1f} s without a final answer "
                                            f"(at most {limits.max_seconds:g} s; raise it with --max-seconds)")
            turn = self._ask(messages, limits.max_seconds - elapsed, reply.turns + 1)
            reply.turns += 1
            messages.append(turn.assistant_message())
            if not turn.tool_calls:
                if turn.problems:  # unusable output: say why and let the model answer again
                    text = feedback_text(turn.problems, "Answer again: call a tool, or give the patch as one ```json "
                                                        "block.")
                    messages.append({"role": "user", "content": text})
                    self.transcript.add("feedback", turn=reply.turns, content=text)
                    continue
                reply.text = turn.content or ""
                reply.elapsed_s = round(time.monotonic() - start, 3)
                self.transcript.add("final", turn=reply.turns, content=reply.text, patch=reply.patch)
                return reply
            if reply.tool_calls + len(turn.tool_calls) > limits.max_tool_calls:
                raise self._stop("tool_calls", f"tool-call limit reached: the model asked for "
                                               f"{reply.tool_calls + len(turn.tool_calls)} tool calls (at most "
                                               f"{limits.max_tool_calls}; raise it with --max-tool-calls)")
            rendered = False
            for call in turn.tool_calls:
                reply.tool_calls += 1
                remaining = limits.max_seconds - (time.monotonic() - start)
                outcome, arguments = self._run_call(call, remaining, reply.turns)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": outcome.message_content()})
                if not outcome.is_error:
                    self._track(call.name, arguments, outcome, reply)
                    rendered = rendered or call.name == PATCH_TOOL
            if self.prompt is not None and rendered and reply.last_render is not None:
                # A trained model learnt one render_patch call per request and never an answer after it.
                first = (reply.last_render.text or "").splitlines()[:1]
                reply.text = " ".join(["Rendered the patch.", *first])
                reply.elapsed_s = round(time.monotonic() - start, 3)
                self.transcript.add("final", turn=reply.turns, content=reply.text, patch=reply.patch)
                return reply

    def _ask(self, messages: list[dict[str, Any]], remaining: float, number: int) -> ModelTurn:
        began = time.monotonic()
        try:
            turn = self.backend.complete(self.model_messages(messages), self._tool_defs, timeout_s=remaining)
        except BackendError as err:
            self.transcript.add("error", turn=number, source="model", message=str(err))
            own = getattr(self.backend, "timeout_s", None)
            if isinstance(err, BackendTimeout) and (own is None or remaining < own):
                # The request's time budget, not the backend's own timeout, cut this answer short.
                raise AgentLimitError("seconds", f"time limit reached while waiting for the model (at most "
                                                 f"{self.limits.max_seconds:g} s; raise it with --max-seconds)"
                                      ) from err
            raise AgentError(str(err)) from err
        self.transcript.add("model", turn=number, elapsed_s=round(time.monotonic() - began, 3),
                            content=turn.content, reasoning=turn.reasoning, finish_reason=turn.finish_reason,
                            tool_calls=[c.model_dump() for c in turn.tool_calls], problems=turn.problems,
                            usage=turn.usage)
        return turn

    def _run_call(self, call: ToolCall, remaining: float, number: int) -> tuple[ToolOutcome, dict[str, Any] | None]:
        arguments, problem = parse_arguments(call)
        if problem is not None:
            outcome = ToolOutcome.error(call.name, problem)
        elif remaining <= 0:
            raise self._stop("seconds", f"time limit reached before the {call.name} call "
                                        f"(at most {self.limits.max_seconds:g} s; raise it with --max-seconds)")
        else:
            try:
                outcome = self.tools.call(call.name, arguments, timeout_s=remaining)
            except TimeoutError as err:
                self.transcript.add("error", turn=number, source="tool", name=call.name, message=str(err))
                message = (f"time limit reached: {err} (at most {self.limits.max_seconds:g} s; raise it with "
                           "--max-seconds)")
                raise AgentLimitError("seconds", message) from err
            except Exception as err:  # transport failures: the server is gone, the request cannot go on
                self.transcript.add("error", turn=number, source="tool", name=call.name, message=str(err))
                raise AgentError(str(err)) from err
        self.transcript.add("tool", turn=number, id=call.id, name=call.name,
                            arguments=arguments if arguments is not None else call.arguments,
                            is_error=outcome.is_error, text=outcome.text, result=outcome.structured,
                            audio=[a.model_dump() for a in outcome.audio], elapsed_s=outcome.elapsed_s)
        return outcome, arguments

    def _track(self, name: str, arguments: dict[str, Any] | None, outcome: ToolOutcome, reply: AgentReply) -> None:
        """Remember the patch a successful call accepted, and the last render."""
        if name in _PATCH_FROM_ARGUMENTS and arguments and isinstance(arguments.get("patch"), dict):
            reply.patch = arguments["patch"]
        if name in _PATCH_FROM_RESULT and outcome.structured and isinstance(outcome.structured.get("patch"), dict):
            reply.patch = outcome.structured["patch"]
        if name == "render_patch":
            reply.last_render = outcome
            args = arguments or {}
            notes = args.get("notes") if isinstance(args.get("notes"), list) and args.get("notes") else [60]
            reply.render = {"note": notes[0], "velocity": args.get("velocity", 100),
                            "hold_s": args.get("hold_s", 3.0), "release_s": args.get("release_s", 1.0)}

    def _stop(self, limit: str, message: str) -> AgentLimitError:
        self.transcript.add("error", source="limit", limit=limit, message=message)
        return AgentLimitError(limit, message)


def system_message(note: int = 60, velocity: int = 100) -> dict[str, Any]:
    """The system message that tells a model its job and how to use the tools."""
    return {"role": "system", "content": SYSTEM_PROMPT.format(note=note, velocity=velocity)}
