"""The systems the evaluation runners compare, built from one spec string (``make_system``).

System specs (``--system``):

* ``offline`` or ``offline:LIBRARY``: the offline designer (default library: the packaged one; LIBRARY
  is anything ``--library`` takes). Leave-one-out: the caption's own id is excluded from the library,
  so a library that holds the evaluation rows cannot answer with the ground truth;
* ``openai:MODEL@URL``: any OpenAI-compatible endpoint given the patchsmith tools (through
  ``agent.loop`` and the MCP server in-process); ``@URL`` may be left out to use ``PATCHSMITH_BASE_URL``
  or the OpenAI API. The key comes from ``PATCHSMITH_API_KEY`` / ``OPENAI_API_KEY``;
* ``zeroshot:MODEL@URL``: the same endpoint asked with the source research's zero-shot protocol: one user
  message (its minimal prompt, or the schema prompt), no tools, the patch as a fenced JSON block;
* ``checkpoint:PATH``: a local model folder run in-process (``agent.local_model.checkpoint_backend``, the
  choice ``design --model-path`` makes, imported only when used): a checkpoint patchsmith trained gets the
  prompt it was trained on (the ``trained`` profile: format and thinking from its ``patchsmith.json``),
  any other the agent's prompt and every tool, like ``openai:``;
* ``wavs:DIR``: audio only: ``DIR/<caption id>.wav`` from any text-to-audio model;
* ``truth``: the caption's ground-truth patch itself (the published table's "Test data" row: the
  ceiling of every metric under the run's settings; the floor of ``eval-refine``, which it never edits).

``SystemOptions.prompt`` picks the prompt profile of ``openai:`` and ``checkpoint:`` as ``design --prompt``
does (``agent.trained_prompt.choose_prompt``): ``trained`` sends a patchsmith-trained model (a checkpoint, or
one served with ``patchsmith serve-model``) its training prompt, ``agent`` the agent's system prompt and
every MCP tool; None: trained for a checkpoint that records patchsmith training, agent otherwise.

Corrections are tool errors the model fixed: render calls that failed before the call whose patch the
server accepted. Every system that makes patches also ``refine``s them for ``eval-refine`` (a patch plus
an instruction in, the edited patch out).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from ..evals.systems import (EvalRow, GroundTruthSystem, RenderSpec, SystemOutput, SystemUnavailable, WavFolderSystem,
                             cut)

KINDS = ("offline", "openai", "zeroshot", "checkpoint", "wavs", "truth")
SPEC_HELP = "offline[:LIBRARY] | openai:MODEL[@URL] | zeroshot:MODEL[@URL] | checkpoint:PATH | wavs:DIR | truth"
ENV_BASE_URL = "PATCHSMITH_BASE_URL"
_MODEL_AT_URL = re.compile(r"^(?P<model>.*?)@(?P<url>https?://\S+)$")
_PATCH_TOOLS = ("render_patch", "render_evidence")
RAW_CALLS = 3000  # characters of the last turn's tool calls kept beside its text

# The source research's zero-shot protocol (hoyso48/LLMforFM ``prompt.py``): one sentence stating the
# task, optionally a description of the 12-key JSON patch, then "### Prompt: <caption>". Written here
# in our own words, with the same structure and the same facts.
ZEROSHOT_TASK = ("Find the parameter values of the Yamaha DX7, the famous 6-operator FM synthesizer, that make "
                 "a sound matching the given prompt.\n")
ZEROSHOT_SCHEMA = """Answer with the patch as one ```json block holding a dictionary of exactly these keys.
Per-operator lists run from OP1 (index 0) to OP6 (index 5).
- "modmatrix": 6 lists of 6 integers 0/1; modmatrix[i][j] = 1 means OP(j+1) modulates OP(i+1); a 1 on the
  diagonal is feedback (at most one operator has it)
- "outmatrix": 6 integers 0/1, 1 for each operator heard in the output (a carrier)
- "feedback": integer 0..7, the strength of the feedback loop
- "fixed_freq": 6 integers 0/1, 1 for an operator whose frequency ignores the key
- "coarse": 6 integers 0..31, the frequency ratio (0 means 0.5)
- "fine": 6 integers 0..99, a fractional addition to the ratio
- "detune": 6 integers -7..7
- "transpose": integer -24..24, semitones
- "ol": 6 integers 0..99, each operator's output level
- "eg_rate": 4 lists (rates 1-4: attack, decay 1, decay 2, release) of 6 integers 0..99; higher is faster
- "eg_level": 4 lists (levels 1-4) of 6 integers 0..99; higher is louder
- "sensitivity": 6 integers 0..7, velocity sensitivity
"""
ZEROSHOT_PROMPTS = ("minimal", "schema")


def zeroshot_prompt(caption: str, prompt: str = "minimal") -> str:
    """The user message of the zero-shot protocol for one caption."""
    body = ZEROSHOT_TASK + (ZEROSHOT_SCHEMA if prompt == "schema" else "")
    return f"{body}### Prompt: {caption}"


@dataclass
class SystemOptions:
    """Settings shared by the model-driven systems (the CLI's flags)."""

    timeout_s: float = 120.0
    temperature: float | None = None
    max_tokens: int | None = None
    strict_tools: bool = False
    max_turns: int = 8
    max_tool_calls: int = 12
    max_seconds: float = 600.0
    zeroshot_prompt: str = "minimal"
    patch_layout: str = "canonical"  # of a zero-shot answer: canonical (OP1-first) or source-research (OP6-first)
    max_corrections: int = 0  # zero-shot: answers sent back with their problems (the source: 0)
    # openai: and checkpoint: (as design's options): the prompt profile (trained, agent, None: by the model),
    # the ` /think` switch of the trained profile (or a checkpoint's template thinking under the agent
    # profile), and answers read as a fenced JSON patch rather than tool calls.
    prompt: str | None = None
    thinking: bool | None = None
    output_parsing: bool = False


def split_model_url(value: str, kind: str) -> tuple[str, str | None]:
    """``MODEL@URL`` -> (model, url); ``MODEL`` alone takes ``PATCHSMITH_BASE_URL`` (or None: the OpenAI API)."""
    m = _MODEL_AT_URL.match(value)
    model, url = (m.group("model"), m.group("url")) if m else (value, os.environ.get(ENV_BASE_URL) or None)
    if not model.strip():
        raise SystemUnavailable(f"--system {kind}:{value}: no model name; allowed {kind}:MODEL[@URL], e.g. "
                                f"{kind}:qwen3-8b@http://127.0.0.1:8000/v1")
    return model.strip(), url


def parse_spec(spec: str) -> tuple[str, str]:
    """(kind, argument) of a system spec, or ``SystemUnavailable`` naming what is allowed."""
    if not isinstance(spec, str) or not spec.strip():
        raise SystemUnavailable(f"--system: found {spec!r}, allowed {SPEC_HELP}")
    kind, _, arg = spec.strip().partition(":")
    if kind not in KINDS:
        raise SystemUnavailable(f"--system {spec}: unknown kind {kind!r}; allowed {SPEC_HELP}")
    if kind not in ("offline", "truth") and not arg:
        raise SystemUnavailable(f"--system {spec}: {kind} needs an argument; allowed {SPEC_HELP}")
    if kind == "truth" and arg:
        raise SystemUnavailable(f"--system {spec}: truth takes no argument")
    return kind, arg


def make_system(spec: str, options: SystemOptions | None = None) -> Any:
    """The ``System`` a spec names (see the module docstring); ``SystemUnavailable`` when it cannot be built."""
    options = options or SystemOptions()
    kind, arg = parse_spec(spec)
    if options.prompt is not None and kind not in ("openai", "checkpoint"):
        allowed = "minimal or schema" if kind == "zeroshot" else "none"
        raise SystemUnavailable(f"--prompt {options.prompt}: a prompt profile is for openai: and checkpoint: "
                                f"systems; {kind} takes {allowed}")
    if options.output_parsing and kind not in ("openai", "checkpoint"):
        raise SystemUnavailable(f"--output-parsing is for openai: and checkpoint: systems, not {kind}")
    if kind == "wavs":
        return WavFolderSystem(arg)
    if kind == "truth":
        return GroundTruthSystem()
    if kind == "offline":
        return OfflineSystem(arg or None)
    if kind == "checkpoint":
        notes: list[str] = []
        backend, prompt = _checkpoint_backend(arg, options, notes)
        return ToolModelSystem(backend, options, kind="checkpoint", spec=spec, prompt=prompt, notes=notes)
    model, url = split_model_url(arg, kind)
    backend = _openai_backend(model, url, options)
    if kind == "openai":
        return _openai_system(backend, options, spec)
    if options.zeroshot_prompt not in ZEROSHOT_PROMPTS:
        raise SystemUnavailable(f"--prompt: found {options.zeroshot_prompt!r}, allowed {', '.join(ZEROSHOT_PROMPTS)}")
    return ZeroShotSystem(backend, options, spec=spec)


def _openai_backend(model: str, url: str | None, options: SystemOptions) -> Any:
    from .backends import BackendError, OpenAICompatibleBackend

    try:
        return OpenAICompatibleBackend(model, url, timeout_s=options.timeout_s, strict_tools=options.strict_tools,
                                       temperature=options.temperature, max_tokens=options.max_tokens)
    except BackendError as err:
        raise SystemUnavailable(str(err)) from None


def _openai_system(backend: Any, options: SystemOptions, spec: str) -> "ToolModelSystem":
    """An endpoint through the tools, in the prompt profile the options name (``design --model ... --prompt``)."""
    from .trained_prompt import choose_prompt, prompt_backend

    notes: list[str] = []
    try:
        prompt = choose_prompt(options.prompt, output_parsing=options.output_parsing, strict_tools=options.strict_tools,
                               thinking=options.thinking, notes=notes)
    except ValueError as err:
        raise SystemUnavailable(f"--system {spec}: {err}") from None
    return ToolModelSystem(prompt_backend(backend, prompt, output_parsing=options.output_parsing), options,
                           kind="openai", spec=spec, prompt=prompt, notes=notes)


def _checkpoint_backend(path: str, options: SystemOptions, notes: list[str]) -> tuple[Any, Any]:
    """The checkpoint's backend and prompt profile, chosen as ``design --model-path`` chooses them."""
    from .local_model import DEFAULT_MAX_NEW_TOKENS, checkpoint_backend

    if not os.path.exists(path):
        raise SystemUnavailable(f"--system checkpoint:{path}: no such file or folder")
    if options.strict_tools:
        raise SystemUnavailable(f"--system checkpoint:{path}: --strict-tools is for an OpenAI-compatible endpoint")
    try:
        return checkpoint_backend(path, profile=options.prompt, thinking=options.thinking,
                                  output_parsing=options.output_parsing,
                                  max_new_tokens=options.max_tokens or DEFAULT_MAX_NEW_TOKENS,
                                  timeout_s=options.timeout_s, notes=notes)
    except ValueError as err:  # the profile's options, or an unreadable patchsmith.json
        raise SystemUnavailable(f"--system checkpoint:{path}: {err}") from None
    except Exception as err:  # whatever transformers says about a folder that is not a model
        raise SystemUnavailable(f"--system checkpoint:{path}: cannot load the model: {err}") from None


# --- the offline designer ------------------------------------------------------------------------------


class OfflineSystem:
    """The offline designer: retrieval over a captioned library and semantic edits (no model, no network)."""

    makes_patches = True

    def __init__(self, library: str | None = None):
        from .designer import Library, OfflineDesigner
        from .library import LibraryError

        try:
            lib = Library.load(library)
        except LibraryError as err:
            raise SystemUnavailable("; ".join(f"offline:{library}: {p}" for p in err.problems)) from None
        self.designer = OfflineDesigner(lib)
        self.library = lib.source
        self.name = "offline-designer" if library is None else f"offline-designer[{os.path.basename(str(library))}]"

    def describe(self) -> dict[str, Any]:
        """Kind, library and the leave-one-out rule."""
        return {"kind": "offline", "name": self.name, "library": self.library, "library_size": len(self.designer.library),
                "leave_one_out": True}

    def generate(self, row: EvalRow, render: RenderSpec) -> SystemOutput:
        """The designer's patch for the caption (its own id left out of the library)."""
        start = time.monotonic()
        try:
            result = self.designer.design(row.caption, exclude=[row.id])
        except ValueError as err:
            return SystemOutput(error=f"the offline designer: {err}", elapsed_s=time.monotonic() - start)
        summary = result.summary()
        # It speaks through render_patch when it runs in the agent, so it counts as calling the tool.
        return SystemOutput(patch=result.patch.to_dict(), valid=True, tool_called=True, attempts=1, turns=1,
                            raw=cut(summary), elapsed_s=round(time.monotonic() - start, 3))

    def refine(self, patch: dict[str, Any], instruction: str, render: RenderSpec) -> SystemOutput:
        """The patch after the designer's edits for a follow-up instruction."""
        from ..synth.edits import EditError, apply_edits
        from .library import RenderSettings

        start = time.monotonic()
        try:
            steps = self.designer.refine(patch, instruction, render=RenderSettings(
                note=render.note, velocity=render.velocity, hold_s=render.hold_s, release_s=render.release_s))
            edited = apply_edits(patch, steps).patch.to_dict() if steps else dict(patch)
        except (ValueError, EditError) as err:
            return SystemOutput(error=f"the offline designer: {err}", elapsed_s=time.monotonic() - start)
        return SystemOutput(patch=edited, valid=True, tool_called=bool(steps), attempts=1, turns=1,
                            raw=json.dumps(steps), elapsed_s=round(time.monotonic() - start, 3))

    def close(self) -> None:
        """Nothing to release."""


# --- models driven through the tools -------------------------------------------------------------------


def _fatal(err: BaseException) -> bool:
    """Whether a backend failure means the endpoint is gone (stop the run) rather than one bad answer."""
    text = str(err)
    return text.startswith(("cannot reach the model", "no API key", "no model name")) or "HTTP 401" in text \
        or "HTTP 404" in text


class ToolModelSystem:
    """A model given the patchsmith tools through ``agent.loop`` (MCP server in-process)."""

    makes_patches = True

    def __init__(self, backend: Any, options: SystemOptions, *, kind: str, spec: str, prompt: Any = None,
                 notes: list[str] | None = None):
        """``prompt``: the trained profile's ``TrainedPrompt`` (None: the agent profile); ``notes``: what the
        caller should tell the user about the choice."""
        self.backend = backend
        self.options = options
        self.kind = kind
        self.spec = spec
        self.prompt = prompt
        self.notes = list(notes or [])
        self.name = getattr(backend, "name", kind)
        self.limits = _loop_limits(options)
        self._tools: Any = None

    def describe(self) -> dict[str, Any]:
        """Kind, model, endpoint (no key), prompt profile and limits."""
        info = self.backend.describe() if hasattr(self.backend, "describe") else {}
        info = info.get("base", info) if isinstance(info.get("base"), dict) else info  # under OutputParsingBackend
        prompt = "agent" if self.prompt is None else (
            f"trained ({self.prompt.fmt}, {'/think' if self.prompt.think else '/no_think'}"
            + ("" if self.prompt.template_thinking is None else
               f", enable_thinking {str(self.prompt.template_thinking).lower()}") + ")")
        return {"kind": self.kind, "name": self.name, "model": info.get("model", self.name),
                "base_url": info.get("base_url"), "prompt": prompt, "strict_tools": self.options.strict_tools,
                "max_turns": self.options.max_turns, "max_tool_calls": self.options.max_tool_calls,
                "temperature": self.options.temperature}

    def _client(self) -> Any:
        if self._tools is None:
            from .mcp_client import ToolClient, ToolTransportError

            tools = ToolClient(None)
            try:
                tools.__enter__()
            except ToolTransportError as err:
                raise SystemUnavailable(str(err)) from None
            self._tools = tools
        return self._tools

    def _run(self, messages: list[dict[str, Any]]) -> SystemOutput:
        from .backends import BackendError
        from .loop import Agent, AgentError, AgentLimitError, Transcript

        transcript = Transcript()
        try:
            agent = Agent(self.backend, self._client(), limits=self.limits, transcript=transcript, prompt=self.prompt)
        except AgentError as err:  # an MCP server without render_patch cannot serve the trained prompt
            raise SystemUnavailable(str(err)) from None
        start = time.monotonic()
        reply, error = None, None
        try:
            reply = agent.run(messages)
        except AgentLimitError as err:
            error = str(err)
        except AgentError as err:
            cause = err.__cause__
            if isinstance(cause, BackendError) and _fatal(cause):
                raise SystemUnavailable(str(cause)) from None
            error = str(err)
        out = outcome_from_transcript(transcript.entries)
        out.elapsed_s = round(time.monotonic() - start, 3)
        if reply is not None:
            out.patch = reply.patch
            out.valid = reply.patch is not None
            out.turns = reply.turns
            if not out.valid:
                out.error = ("the model answered without a patch the tool accepted" if out.tool_called
                             else "the model never called the render tool")
        else:
            out.error = error
        return out

    def generate(self, row: EvalRow, render: RenderSpec) -> SystemOutput:
        """Ask the model for the caption's patch through the tools."""
        from .loop import system_message

        return self._run([system_message(render.note, render.velocity), {"role": "user", "content": row.caption}])

    def refine(self, patch: dict[str, Any], instruction: str, render: RenderSpec) -> SystemOutput:
        """Ask the model to change ``patch`` as the instruction says (the request carries the patch)."""
        from ..schema.compact import dumps_compact
        from .loop import system_message
        from .output_parsing import compose_request

        return self._run([system_message(render.note, render.velocity),
                          {"role": "user", "content": compose_request(instruction, dumps_compact(patch))}])

    def close(self) -> None:
        """Close the MCP client."""
        tools, self._tools = self._tools, None
        if tools is not None:
            tools.__exit__(None, None, None)


def _loop_limits(options: SystemOptions) -> Any:
    """The agent's ``LoopLimits`` for one caption, or ``SystemUnavailable`` naming the bad option."""
    from .loop import loop_limits

    try:
        return loop_limits(options.max_turns, options.max_tool_calls, options.max_seconds)
    except ValueError as err:
        raise SystemUnavailable("; ".join(str(err).splitlines())) from None


def outcome_from_transcript(entries: list[dict[str, Any]]) -> SystemOutput:
    """Tool use read from a transcript: tool called, patch-bearing attempts, corrections, last answer."""
    attempts = [e for e in entries if e.get("type") == "tool" and e.get("name") in _PATCH_TOOLS]
    first_ok = next((i for i, e in enumerate(attempts) if not e.get("is_error")), None)
    failed_before = len(attempts) if first_ok is None else first_ok
    models = [e for e in entries if e.get("type") == "model"]
    raw = ""
    if models:
        last = models[-1]
        raw = (last.get("content") or "")
        if last.get("tool_calls"):
            raw += "\n" + json.dumps([{"name": c.get("name"), "arguments": c.get("arguments")}
                                      for c in last["tool_calls"]])[:RAW_CALLS]
    return SystemOutput(tool_called=bool(attempts), attempts=len(attempts),
                        corrections=failed_before if first_ok is not None else 0, turns=len(models),
                        raw=cut(raw.strip()))


# --- the zero-shot protocol -------------------------------------------------------------------------------


class ZeroShotSystem:
    """An endpoint asked the source research's way: one prompt, no tools, a fenced JSON patch back."""

    makes_patches = True

    def __init__(self, backend: Any, options: SystemOptions, *, spec: str):
        if options.patch_layout not in ("canonical", "source-research"):
            raise SystemUnavailable(f"--patch-layout: found {options.patch_layout!r}, allowed canonical or "
                                    "source-research")
        self.backend = backend
        self.options = options
        self.spec = spec
        self.name = f"{backend.name} (zero-shot)"

    def describe(self) -> dict[str, Any]:
        """Kind, model, endpoint (no key), prompt and patch layout."""
        info = self.backend.describe()
        return {"kind": "zeroshot", "name": self.name, "model": info.get("model"), "base_url": info.get("base_url"),
                "prompt": self.options.zeroshot_prompt, "patch_layout": self.options.patch_layout,
                "max_corrections": self.options.max_corrections, "temperature": self.options.temperature}

    def _patch(self, text: str) -> tuple[dict[str, Any] | None, list[str]]:
        from ..schema.source_research import SourceResearchError, import_source_dict
        from ..schema.validate import validate
        from .output_parsing import parse_model_output

        parsed = parse_model_output(text)
        if parsed.patch is None:
            return None, parsed.problems or ["no ```json block with a patch in the answer"]
        if self.options.patch_layout == "source-research":
            try:
                return import_source_dict(parsed.patch, lenient_name=True).to_dict(), []
            except SourceResearchError as err:
                return None, str(err).splitlines()
        report = validate(parsed.patch)
        if not report.valid:
            return None, [p.line() for p in report.problems[:12]]
        return report.patch.to_dict(), []

    def _ask(self, messages: list[dict[str, Any]]) -> SystemOutput:
        from .backends import BackendError
        from .trained_prompt import feedback_text

        out = SystemOutput()
        start = time.monotonic()
        for attempt in range(self.options.max_corrections + 1):
            try:
                turn = self.backend.complete(messages, [], timeout_s=self.options.timeout_s)
            except BackendError as err:
                if _fatal(err):
                    raise SystemUnavailable(str(err)) from None
                out.error = str(err)
                break
            text = turn.content or ""
            if turn.reasoning:
                text = f"<think>\n{turn.reasoning}\n</think>\n\n{text}"
            out.raw, out.turns, out.attempts = cut(text), out.turns + 1, out.attempts + 1
            patch, problems = self._patch(text)
            if patch is not None:
                out.patch, out.valid, out.corrections, out.error = patch, True, attempt, None
                break
            out.error = "; ".join(problems[:3])
            messages = [*messages, {"role": "assistant", "content": turn.content or ""},
                        {"role": "user", "content": feedback_text(problems)}]
        out.elapsed_s = round(time.monotonic() - start, 3)
        return out

    def generate(self, row: EvalRow, render: RenderSpec) -> SystemOutput:
        """The model's zero-shot patch for the caption."""
        return self._ask([{"role": "user", "content": zeroshot_prompt(row.caption, self.options.zeroshot_prompt)}])

    def refine(self, patch: dict[str, Any], instruction: str, render: RenderSpec) -> SystemOutput:
        """The model's edited patch, asked in the same text-only way."""
        from ..schema.compact import dumps_compact

        text = (ZEROSHOT_TASK + ZEROSHOT_SCHEMA + f"Start from this patch:\n```json\n{dumps_compact(patch)}\n```\n"
                f"Change it as little as needed so that: {instruction}\nAnswer with the whole patch.")
        return self._ask([{"role": "user", "content": text}])

    def close(self) -> None:
        """Nothing to release."""


__all__ = ["KINDS", "OfflineSystem", "SPEC_HELP", "SystemOptions", "ToolModelSystem", "ZEROSHOT_PROMPTS",
           "ZeroShotSystem", "make_system", "outcome_from_transcript", "parse_spec", "split_model_url",
           "zeroshot_prompt"]
