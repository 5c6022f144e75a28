"""``patchsmith design "TEXT" -o DIR``: words in, a patch and its sound out, through the agent and the tools.

With no model named, the offline designer answers (no network, no key). ``--model``/``--base-url``
(or ``PATCHSMITH_MODEL``/``PATCHSMITH_BASE_URL``) drive any OpenAI-compatible endpoint instead, and
``--model-path DIR`` a local checkpoint run in-process with transformers; models that answer with a
fenced JSON patch rather than tool calls use ``--output-parsing`` (implied by ``--patch-layout``).
``--prompt trained`` (the default with ``--model-path``) sends a patchsmith-trained model the prompt it
was trained on (``agent.trained_prompt``; format and thinking from the checkpoint's ``patchsmith.json``),
``--prompt agent`` the agent's system prompt and every MCP tool. The tools come from the MCP server,
in-process unless ``--mcp`` says otherwise.

DIR receives patch.json, sound.wav, voice.syx (when the topology is one of the 32 DX7 algorithms) and
transcript.json, all together or not at all. The backend options and the session set-up are shared
with ``chat``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .common import EXIT_OK, CliError, check_output_dir, note, write_folder

ENV_MODEL = "PATCHSMITH_MODEL"
ENV_BASE_URL = "PATCHSMITH_BASE_URL"
PROMPT_PROFILES = ("trained", "agent")


def add_agent_arguments(p: argparse.ArgumentParser) -> None:
    """The options of every agent command: model backend, MCP transport, render settings, limits."""
    m = p.add_argument_group("model (default: the offline designer; no network, no key)")
    m.add_argument("--model", help=f"model name at the endpoint (or {ENV_MODEL})")
    m.add_argument("--base-url", help=f"an OpenAI-compatible endpoint such as http://127.0.0.1:8000/v1 (or "
                                      f"{ENV_BASE_URL}); the key comes from PATCHSMITH_API_KEY or OPENAI_API_KEY")
    m.add_argument("--output-parsing", action="store_true",
                   help="the model answers with <think>...</think> and a ```json patch instead of tool calls")
    m.add_argument("--patch-layout", choices=("canonical", "source-research"),
                   help="layout of a fenced JSON patch (implies --output-parsing); source-research: per-operator "
                        "arrays OP6 first, as in the source research's data")
    m.add_argument("--strict-tools", action="store_true", help="send the tools in OpenAI strict mode")
    m.add_argument("--model-path", metavar="DIR",
                   help="run a local checkpoint folder in-process with transformers (e.g. the output_dir of "
                        "`patchsmith train sft|grpo`) instead of an endpoint; needs the train extra")
    m.add_argument("--max-new-tokens", type=int, default=2048, metavar="N",
                   help="with --model-path: tokens generated per model turn (default 2048)")
    m.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                   help="let the model think first: in the trained prompt profile the ` /think` soft switch (and "
                        "the template's enable_thinking where the trainer set it, as GRPO does); in the agent "
                        "profile with --model-path the template's enable_thinking (default: as the checkpoint was "
                        "trained, else off)")
    m.add_argument("--prompt", choices=PROMPT_PROFILES, default=None,
                   help="trained: the prompt a patchsmith-trained model saw in training (no system prompt, only "
                        "render_patch, the description + ` /think`|` /no_think`; format and thinking from the "
                        "checkpoint's patchsmith.json); agent: the agent's system prompt and every MCP tool "
                        "(default: trained with a --model-path that patchsmith trained, agent otherwise)")
    m.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one model answer (default 120)")
    m.add_argument("--library", metavar="PATH", help="the offline designer's library: a caption CSV + patch CSV "
                                                     "pair or a dataset folder (default: the packaged library)")
    p.add_argument("--mcp", metavar="stdio|URL", help="reach the tools as a `patchsmith serve` subprocess (stdio) or "
                                                      "at a streamable HTTP URL (default: in-process)")
    p.add_argument("--note", type=int, help="MIDI note the sound is rendered at (default: 60, or with the offline "
                                            "designer the note its library patch is best heard on)")
    p.add_argument("--velocity", type=int, help="1..127 (default 100)")
    lim = p.add_argument_group("limits of one request")
    lim.add_argument("--max-turns", type=int, default=12, help="model turns (default 12)")
    lim.add_argument("--max-tool-calls", type=int, default=24, help="tool calls (default 24)")
    lim.add_argument("--max-seconds", type=float, default=600.0, help="wall-clock seconds (default 600)")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``design`` and its options."""
    d = sub.add_parser("design", help="design a patch from a description and write patch, sound and sysex",
                       description="Turn a description into a DX7 patch through the agent and the MCP tools, and "
                                   "write DIR/patch.json, DIR/sound.wav, DIR/voice.syx (when DX7-representable) and "
                                   "DIR/transcript.json. Without --model/--base-url the offline designer answers.")
    d.add_argument("text", metavar="TEXT", help='the sound in words, e.g. "glassy electric piano, soft attack"')
    d.add_argument("-o", "--output", metavar="DIR", required=True, help="output folder (created if absent)")
    add_agent_arguments(d)
    d.set_defaults(func=run)
    return d


def check_agent_arguments(args: argparse.Namespace) -> Any:
    """Refuse bad render settings and limits before anything starts; the request's ``LoopLimits``."""
    from ..agent.loop import loop_limits
    from ..agent.mcp_client import mcp_problem
    from ..synth.render import RenderError, check_request

    if mcp_problem(args.mcp):
        raise CliError(mcp_problem(args.mcp))
    try:
        check_request(60 if args.note is None else args.note, 100 if args.velocity is None else args.velocity,
                      3.0, 1.0, 48000)
    except RenderError as err:
        raise CliError(str(err)) from None
    try:
        limits = loop_limits(args.max_turns, args.max_tool_calls, args.max_seconds)
    except ValueError as err:
        raise CliError(str(err).splitlines()) from None
    if not args.timeout > 0:
        raise CliError(f"--timeout: found {args.timeout:g}, allowed a number of seconds > 0")
    return limits


def prompt_profile(args: argparse.Namespace) -> Any:
    """The ``trained`` profile's ``TrainedPrompt`` for an endpoint (format and thinking from the options), or None
    for ``agent`` (``agent.trained_prompt.choose_prompt``; a ``--model-path`` is chosen in ``model_backend``)."""
    from ..agent.trained_prompt import choose_prompt

    endpoint = args.model or args.base_url or os.environ.get(ENV_MODEL) or os.environ.get(ENV_BASE_URL)
    if args.prompt == "trained" and args.model_path is None and not endpoint:
        raise CliError("--prompt trained is for a patchsmith-trained model: give --model-path DIR, or --model and "
                       "--base-url for one served with `patchsmith serve-model`")
    notes: list[str] = []
    try:
        prompt = choose_prompt(args.prompt, output_parsing=args.output_parsing, patch_layout=args.patch_layout,
                               strict_tools=args.strict_tools, thinking=args.thinking, notes=notes)
    except ValueError as err:
        raise CliError(str(err)) from None
    for line in notes:
        note(line)
    return prompt


def model_backend(args: argparse.Namespace) -> tuple[Any, Any]:
    """The model backend the options (and PATCHSMITH_MODEL / PATCHSMITH_BASE_URL) ask for, and its prompt profile."""
    if args.model_path is not None:
        return _local_backend(args)
    prompt = prompt_profile(args)
    return make_backend(args, prompt), prompt


def make_backend(args: argparse.Namespace, prompt: Any = None) -> Any:
    """The endpoint's (or the offline designer's) backend the options ask for; ``--model-path``: ``model_backend``."""
    from ..agent.backends import BackendError, OfflineDesignerBackend, OpenAICompatibleBackend
    from ..agent.trained_prompt import prompt_backend

    parsing = args.output_parsing or args.patch_layout is not None
    model = args.model or os.environ.get(ENV_MODEL) or None
    base_url = args.base_url or os.environ.get(ENV_BASE_URL) or None
    if model is None and base_url is None:
        if parsing or args.strict_tools:
            raise CliError("--output-parsing, --patch-layout and --strict-tools need a model: give --model and "
                           f"--base-url (or set {ENV_MODEL} and {ENV_BASE_URL})")
        from ..agent.library import LibraryError

        try:
            return OfflineDesignerBackend(library=args.library, note=args.note, velocity=args.velocity)
        except LibraryError as err:
            raise CliError([f"--library {line}" for line in err.problems]) from None
    if args.library:
        note("--library is for the offline designer; a model is named, so it is not used")
    if model is None:
        raise CliError(f"--base-url needs a model name: give --model (or set {ENV_MODEL})")
    try:
        base = OpenAICompatibleBackend(model, base_url, timeout_s=args.timeout, strict_tools=args.strict_tools)
    except BackendError as err:
        raise CliError(str(err)) from None
    return prompt_backend(base, prompt, output_parsing=args.output_parsing, patch_layout=args.patch_layout,
                          render_args=_render_args(args))


def _render_args(args: argparse.Namespace) -> dict[str, Any]:
    """The render settings a fenced JSON patch is rendered with."""
    return {"notes": [60 if args.note is None else args.note],
            "velocity": 100 if args.velocity is None else args.velocity}


def _local_backend(args: argparse.Namespace) -> tuple[Any, Any]:
    """The checkpoint of ``--model-path`` loaded in-process, and its prompt profile (``agent.local_model``)."""
    from ..agent.backends import BackendError
    from ..agent.local_model import checkpoint_backend
    from ..agent.trained_prompt import CheckpointRecordError

    if args.model or args.base_url:
        raise CliError("--model-path runs a local checkpoint; --model and --base-url name an endpoint: give one or "
                       "the other")
    if args.strict_tools:
        raise CliError("--strict-tools is for an OpenAI-compatible endpoint, not --model-path")
    if args.max_new_tokens < 1:
        raise CliError(f"--max-new-tokens: found {args.max_new_tokens}, allowed an integer >= 1")
    if args.library:
        note("--library is for the offline designer; --model-path is given, so it is not used")
    notes: list[str] = []
    try:
        chosen = checkpoint_backend(args.model_path, profile=args.prompt, thinking=args.thinking,
                                    output_parsing=args.output_parsing, patch_layout=args.patch_layout,
                                    max_new_tokens=args.max_new_tokens, timeout_s=args.timeout,
                                    render_args=_render_args(args), notes=notes)
    except (CheckpointRecordError, BackendError) as err:
        raise CliError(f"--model-path {err}") from None
    except ValueError as err:
        raise CliError(str(err)) from None
    for line in notes:  # which prompt the model is sent: said only of a model that loaded
        note(line)
    return chosen


@contextmanager
def open_conversation(args: argparse.Namespace) -> Iterator[Any]:
    """A ``Conversation`` over the chosen backend and MCP transport, its tool audio in a temporary folder."""
    from ..agent.conversation import Conversation
    from ..agent.loop import Agent, AgentError
    from ..agent.mcp_client import ToolClient, ToolTransportError

    limits = check_agent_arguments(args)
    backend, prompt = model_backend(args)
    with tempfile.TemporaryDirectory(prefix="patchsmith-session-") as session:
        tools = ToolClient(args.mcp, audio_dir=Path(session) / "renders")
        try:
            with tools:
                try:
                    agent = Agent(backend, tools, limits=limits, prompt=prompt)
                except AgentError as err:
                    raise CliError(str(err)) from None
                yield Conversation(agent, note=args.note, velocity=args.velocity)
        except ToolTransportError as err:
            raise CliError(str(err)) from None


def summary_lines(conversation: Any, exchange: Any) -> list[str]:
    """A short account of one request: the answer, the render's levels, what changed."""
    reply = exchange.reply
    lines = [line for line in (reply.text or "").splitlines() if line.strip()]
    render = reply.last_render
    if render is not None and render.structured:
        notes = render.structured.get("notes") or []
        d = (notes[0].get("descriptors") if notes else None) or {}
        played = reply.render or {}
        bits = [f"note {played.get('note', 60)}, velocity {played.get('velocity', 100)}",
                f"algorithm {render.structured.get('algorithm') or 'none'}"]
        for key, label, fmt in (("peak_dbfs", "peak", "{:.1f} dBFS"), ("attack_ms", "attack", "{:.0f} ms"),
                                ("decay20_ms", "decay to -20 dB", "{:.0f} ms"),
                                ("centroid_hz", "centroid", "{:.0f} Hz")):
            value = d.get(key)
            if isinstance(value, (int, float)):
                bits.append(f"{label} {fmt.format(value)}")
        lines.append("sound: " + ", ".join(bits))
    version = exchange.version
    if version is not None and version.changes:
        shown = ", ".join(f"{c['path']} {c['old']}->{c['new']}" for c in version.changes[:6])
        more = f" (+{len(version.changes) - 6} more)" if len(version.changes) > 6 else ""
        lines.append(f"changed {len(version.changes)} parameter(s): {shown}{more}")
    lines.append(f"({reply.turns} model turn(s), {reply.tool_calls} tool call(s), {reply.elapsed_s:.1f} s)")
    return lines


def write_session(out: Path, conversation: Any) -> tuple[list[str], list[str]]:
    """Write the current patch's files into ``out`` all together; returns (notes, the file names written)."""
    notes: list[str] = []
    names: list[str] = []

    def fill(staging: Path) -> None:
        notes.extend(conversation.write(staging))
        names.extend(sorted(p.name for p in staging.iterdir()))

    write_folder(out, fill)
    stale = out / "voice.syx"
    if "voice.syx" not in names and stale.exists():
        # A voice.syx left by an earlier run would belong to another patch.
        stale.unlink()
        notes.append(f"removed the old {stale}: it held an earlier patch")
    order = ("patch.json", "sound.wav", "voice.syx", "transcript.json")
    return notes, sorted(names, key=lambda n: order.index(n) if n in order else len(order))


def agent_errors() -> tuple[type[BaseException], ...]:
    """The errors of a request that are reported as ``error:`` lines (the model or the tools failed)."""
    from ..agent.backends import BackendError
    from ..agent.loop import AgentError

    return AgentError, BackendError


def _last_problems(conversation: Any) -> list[str]:
    """The last thing the tools or the loop said was wrong with the model's output, from the transcript."""
    entries = getattr(getattr(conversation.agent, "transcript", None), "entries", None) or []
    for entry in reversed(entries):
        if entry.get("type") == "tool" and entry.get("is_error"):
            text = " ".join(str(entry.get("text") or "").split())
            return [f"last tool error ({entry.get('name')}): {text[:300]}"] if text else []
        if entry.get("type") == "feedback":
            text = " ".join(str(entry.get("content") or "").split())
            return [f"last problem: {text[:300]}"] if text else []
    return []


def run(args: argparse.Namespace) -> int:
    """Design one patch from the description and write its files."""
    out = check_output_dir(Path(args.output), "-o")
    if not args.text.strip():
        raise CliError("TEXT: empty; describe a sound, e.g. \"deep punchy bass\"")
    with open_conversation(args) as conversation:
        try:
            exchange = conversation.request(args.text)
        except agent_errors() as err:
            if conversation.current is None:  # say plainly that no patch came of it, then why
                raise CliError([f"the model produced no valid patch: {err}", *_last_problems(conversation)]) from None
            raise CliError(str(err)) from None
        if conversation.current is None:
            answer = " ".join((exchange.reply.text or "").split())[:300]
            raise CliError([f"the model produced no valid patch: it answered without producing a patch: "
                            f"{answer or '(no answer)'}", *_last_problems(conversation)])
        notes, files = write_session(out, conversation)
        name = conversation.current.name
        print(f"designed {args.text!r}" + (f" -> {name.strip()!r}" if name and name.strip() else "")
              + f" with {conversation.agent.backend.name}")
        for line in summary_lines(conversation, exchange):
            print(f"  {line}")
    print(f"wrote {', '.join(str(out / n) for n in files)}")
    for line in notes:
        note(line)
    return EXIT_OK
