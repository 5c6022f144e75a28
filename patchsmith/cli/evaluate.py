"""``patchsmith eval --captions CSV [--patches CSV] --system SPEC --out DIR``: score a system on captions.

SPEC is ``offline[:LIBRARY]``, ``openai:MODEL[@URL]``, ``zeroshot:MODEL[@URL]``, ``checkpoint:PATH`` or
``wavs:DIR`` (``agent.systems``); ``--prompt trained|agent`` picks the prompt profile of ``openai:`` and
``checkpoint:`` as ``design --prompt`` does (a checkpoint patchsmith trained gets its training prompt by
default). DIR receives ``items.jsonl`` as items finish (a rerun with the same settings resumes from it),
then, all together, ``results.csv`` (per caption), ``summary.csv`` and ``summary.json`` (aggregates with
bootstrap CIs), ``report.md`` (the published table with this run beside it), ``plots/`` and ``examples/``
(WAVs of a few items and their references). The options shared with ``bench`` and ``eval-refine`` are
defined here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_OK, CliError, check_output_dir, note

ROLES = ("embedder", "text_audio", "classifier", "timbral")


def add_system_arguments(p: argparse.ArgumentParser, *, default: str | None = "offline") -> None:
    """--system and the options of the model-driven systems."""
    from ..agent.systems import SPEC_HELP

    g = p.add_argument_group("system")
    said = f"default {default}" if default else "no default"
    g.add_argument("--system", default=default, metavar="SPEC",
                   help=f"what to evaluate: {SPEC_HELP} ({said}); the key of an endpoint comes from "
                        "PATCHSMITH_API_KEY or OPENAI_API_KEY")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one model answer (default 120)")
    g.add_argument("--temperature", type=float, help="sampling temperature sent to the model (default: the server's)")
    g.add_argument("--max-tokens", type=int, help="answer length limit sent to the model (checkpoint: tokens "
                                                   "generated per model turn, default 2048)")
    g.add_argument("--strict-tools", action="store_true", help="send the tools in OpenAI strict mode")
    g.add_argument("--max-turns", type=int, default=8, help="model turns per caption with tools (default 8)")
    g.add_argument("--max-tool-calls", type=int, default=12, help="tool calls per caption (default 12)")
    g.add_argument("--prompt", choices=("minimal", "schema", "trained", "agent"), default=None,
                   help="zeroshot: minimal (default) or schema, the source research's minimal prompt or the one "
                        "describing the patch; openai/checkpoint (as design --prompt): trained, the prompt a "
                        "patchsmith-trained model saw in training (no system prompt, only render_patch, the caption + "
                        "` /think`|` /no_think`; a checkpoint's format and thinking from its patchsmith.json; for "
                        "openai:, a checkpoint served with `patchsmith serve-model`), or agent, the agent's system "
                        "prompt and every MCP tool (default: trained for a checkpoint patchsmith trained, else agent)")
    g.add_argument("--thinking", action=argparse.BooleanOptionalAction, default=None,
                   help="openai/checkpoint: under --prompt trained the ` /think` soft switch (default: as the "
                        "checkpoint was trained, else off); for a checkpoint under --prompt agent the template's "
                        "enable_thinking (default off)")
    g.add_argument("--output-parsing", action="store_true",
                   help="openai/checkpoint: the model answers with <think>...</think> and a ```json patch instead "
                        "of tool calls (with --prompt trained: a model trained in the answer format; a checkpoint "
                        "says so in its patchsmith.json)")
    g.add_argument("--patch-layout", choices=("canonical", "source-research"), default="canonical",
                   help="zeroshot: layout of the answer's JSON (default canonical, OP1 first, as the prompt says)")
    g.add_argument("--max-corrections", type=int, default=0,
                   help="zeroshot: answers sent back with their problems for another try (default 0, as the source)")


def add_render_arguments(p: argparse.ArgumentParser, *, hold_s: float = 6.4, release_s: float = 3.2) -> None:
    """How every patch (and every reference) is played."""
    g = p.add_argument_group("render (default: the source research's convention)")
    g.add_argument("--note", type=int, default=60, help="MIDI note (default 60)")
    g.add_argument("--velocity", type=int, default=100, help="1..127 (default 100)")
    g.add_argument("--hold-s", type=float, default=hold_s, help=f"seconds held (default {hold_s:g})")
    g.add_argument("--release-s", type=float, default=release_s, help=f"seconds after note-off (default {release_s:g})")
    g.add_argument("--sample-rate", type=int, default=48000, choices=(16000, 22050, 32000, 44100, 48000),
                   help="Hz (default 48000)")


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """Metrics backends, bootstrap, resuming, figures, progress."""
    g = p.add_argument_group("scoring and output")
    for role in ROLES:
        default = ("none: AC is slow (about 1.3 s per audio second); timbral-models computes it" if role == "timbral"
                   else "the offline one")
        g.add_argument(f"--{role.replace('_', '-')}", metavar="NAME",
                       help=f"metrics backend for the {role} role ('none' skips its metrics; default: {default})")
    g.add_argument("--backend-option", action="append", default=[], metavar="NAME:KEY=VALUE",
                   help="an option of a metrics backend, e.g. laion-clap:ckpt_path=/models/music.pt (repeatable)")
    g.add_argument("--failed", choices=("silence", "exclude"), default="silence",
                   help="audio metrics of a caption with no usable patch: silence (default) or left out")
    g.add_argument("--bootstrap", type=int, default=1000, help="bootstrap draws for the CIs of means (default 1000)")
    g.add_argument("--set-bootstrap", type=int, default=200, help="bootstrap draws for FAD/KAD CIs (default 200; 0 "
                                                                 "for none)")
    g.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    g.add_argument("--examples", type=int, default=4, help="items whose audio and spectrograms are kept (default 4)")
    g.add_argument("--no-plots", action="store_true", help="write no figures")
    g.add_argument("--fresh", action="store_true", help="start over instead of resuming from DIR/items.jsonl")
    g.add_argument("--limit", type=int, help="evaluate only the first N captions")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``eval``."""
    p = sub.add_parser("eval", help="evaluate a system on captions: render, score, report",
                       description="Evaluate a system on source-research captions: render its patches, score them "
                                   "(audio metrics with bootstrap CIs; patch scores when --patches gives the ground "
                                   "truth) and write a CSV, a markdown table beside the published rows, and plots.")
    p.add_argument("--captions", required=True, metavar="CSV", help="a source-research caption CSV (id, caption)")
    p.add_argument("--patches", metavar="CSV", help="its patch CSV (DX7_*.csv): ground truth for the reference "
                                                    "audio and the patch scores")
    p.add_argument("--split", metavar="NAME|FILE", help="evaluate only the ids of a split (bench-v1, source-test, "
                                                        "dev-v1, or a split JSON file)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created; a rerun resumes)")
    add_system_arguments(p)
    add_render_arguments(p)
    add_run_arguments(p)
    p.set_defaults(func=run)
    return p


def check_numbers(args: argparse.Namespace) -> None:
    """Refuse impossible limits before anything starts."""
    from ..agent.loop import loop_limits
    from ..agent.systems import SystemOptions

    try:  # the bounds of the agent's loop (eval has no --max-seconds: the systems' default)
        loop_limits(args.max_turns, args.max_tool_calls, SystemOptions.max_seconds)
    except ValueError as err:
        raise CliError(str(err).splitlines()) from None
    for flag, value, low in (("--max-corrections", args.max_corrections, 0), ("--bootstrap", args.bootstrap, 1),
                             ("--set-bootstrap", getattr(args, "set_bootstrap", 0), 0),
                             ("--examples", getattr(args, "examples", 0), 0)):
        if value < low:
            raise CliError(f"{flag}: found {value}, allowed an integer >= {low}")
    for flag, value in (("--limit", getattr(args, "limit", None)), ("--max-tokens", args.max_tokens)):
        if value is not None and value < 1:
            raise CliError(f"{flag}: found {value}, allowed an integer >= 1")
    if not args.timeout > 0:
        raise CliError(f"--timeout: found {args.timeout:g}, allowed a number of seconds > 0")


def render_spec(args: argparse.Namespace) -> Any:
    """The ``RenderSpec`` of the render options, or ``CliError`` naming the bad one."""
    from pydantic import ValidationError

    from ..evals.systems import RenderSpec
    from ..synth.render import RenderError, check_request

    try:
        check_request(args.note, args.velocity, args.hold_s, args.release_s, args.sample_rate)
        return RenderSpec(note=args.note, velocity=args.velocity, hold_s=args.hold_s, release_s=args.release_s,
                          sample_rate=args.sample_rate)
    except RenderError as err:
        raise CliError(str(err)) from None
    except ValidationError as err:
        raise CliError([f"--{'-'.join(str(e['loc'][0]).split('_'))}: {e['msg']}" for e in err.errors()]) from None


def system_options(args: argparse.Namespace) -> Any:
    """The ``SystemOptions`` of the model options."""
    from ..agent.systems import ZEROSHOT_PROMPTS, SystemOptions

    zeroshot = args.prompt in ZEROSHOT_PROMPTS
    return SystemOptions(timeout_s=args.timeout, temperature=args.temperature, max_tokens=args.max_tokens,
                         strict_tools=args.strict_tools, max_turns=args.max_turns, max_tool_calls=args.max_tool_calls,
                         zeroshot_prompt=args.prompt if zeroshot else "minimal", patch_layout=args.patch_layout,
                         max_corrections=args.max_corrections, prompt=None if zeroshot else args.prompt,
                         thinking=args.thinking, output_parsing=args.output_parsing)


def build_system(spec: str, args: argparse.Namespace) -> Any:
    """The system a spec names, or ``CliError``."""
    from ..agent.systems import ZEROSHOT_PROMPTS, make_system, parse_spec
    from ..evals.systems import SystemUnavailable

    try:
        kind, _ = parse_spec(spec)
        if args.prompt in ZEROSHOT_PROMPTS and kind != "zeroshot":
            raise SystemUnavailable(f"--prompt {args.prompt} is the zero-shot prompt (zeroshot: systems); for {kind} "
                                    "give --prompt trained or agent, or leave it out")
        system = make_system(spec, system_options(args))
    except SystemUnavailable as err:
        raise CliError(str(err)) from None
    for line in getattr(system, "notes", None) or []:
        note(line)
    return system


def _options(items: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in items:
        name, sep, kv = item.partition(":")
        key, eq, value = kv.partition("=")
        if not sep or not eq or not name or not key:
            raise CliError(f"--backend-option {item}: allowed NAME:KEY=VALUE, e.g. laion-clap:ckpt_path=/models/x.pt")
        out.setdefault(name, {})[key] = value
    return out


def metric_backends(args: argparse.Namespace) -> Any:
    """The metrics ``BackendSet``: the offline defaults, each role replaceable by name (or 'none')."""
    from ..evals.metrics.backends import BackendUnavailable, backend_names, create_backend
    from ..evals.metrics.pipeline import BackendSet, offline_backends

    try:  # the offline backends resample with scipy; without it every embedding metric would come out empty
        import scipy.signal  # noqa: F401
    except ImportError:
        raise CliError("the metrics need scipy, which is in the 'eval' extra: pip install 'patchsmith[eval]'") from None
    base = offline_backends()
    options = _options(args.backend_option)
    chosen: dict[str, Any] = {}
    for role in ROLES:
        name = getattr(args, role)
        if name is None:
            chosen[role] = getattr(base, role)
            continue
        if name == "none":
            chosen[role] = None
            continue
        allowed = backend_names(role)  # type: ignore[arg-type]
        if name not in allowed:
            raise CliError(f"--{role.replace('_', '-')} {name}: unknown; allowed {', '.join(allowed)} or none")
        try:
            chosen[role] = create_backend(name, **options.get(name, {}))
        except BackendUnavailable as err:
            raise CliError(str(err)) from None
        except (TypeError, ValueError) as err:
            raise CliError(f"--{role.replace('_', '-')} {name}: {err}") from None
    unused = sorted(set(options) - {getattr(args, r) for r in ROLES})
    if unused:
        raise CliError(f"--backend-option: {', '.join(unused)} is not a backend chosen with --embedder, --text-audio, "
                       "--classifier or --timbral")
    return BackendSet(**chosen)


def check_out(path: str) -> Path:
    """The output folder: may exist (resume) but must be a folder, and its parent must exist."""
    return check_output_dir(Path(path), "--out")


def load_split_arg(name: str) -> Any:
    """The split ``--split`` names (``evals.bench.load_split``), or ``CliError``."""
    from ..evals.bench import SplitError, load_split

    try:
        return load_split(name)
    except SplitError as err:
        raise CliError(str(err)) from None


def load_rows(args: argparse.Namespace, ids: list[str] | None = None, split: Any = None) -> list[Any]:
    """The captions (and ground truths) the options name, notes on stderr; ``CliError`` for bad files."""
    from ..evals.runner import EvalInputError
    from ..evals.runner import load_rows as _load

    try:
        rows, notes = _load(args.captions, args.patches, split.ids if split is not None else ids)
    except EvalInputError as err:
        lines = str(err).splitlines()
        if split is not None and "none of the selected ids" in lines[-1]:
            lines.append(f"split {split.split} needs {split.data}")
        raise CliError(lines) from None
    except OSError as err:
        raise CliError(f"{err.filename or args.captions}: {err.strerror or err}") from None
    shown = notes[:5]
    for line in shown:
        note(line)
    if len(notes) > len(shown):
        note(f"... and {len(notes) - len(shown)} more such notes")
    if args.limit is not None:
        rows = rows[: args.limit]
    return rows


def execute(args: argparse.Namespace, rows: list[Any], system: Any, backends: Any, out: Path, render: Any, *,
            title: str, extra_files: Any = None) -> Any:
    """Run the evaluation, turning the runner's errors into ``CliError``; closes the system."""
    from ..evals.metrics.backends import BackendUnavailable
    from ..evals.runner import EvalInputError, run_eval
    from ..evals.systems import SystemUnavailable

    try:
        return run_eval(rows, system, out, backends=backends, render=render, failed=args.failed,
                        resume=not args.fresh, n_boot=args.bootstrap, set_boot=args.set_bootstrap, seed=args.seed,
                        quiet=args.quiet or not sys.stderr.isatty(), examples=args.examples, plots=not args.no_plots,
                        title=title, extra_files=extra_files)
    except SystemUnavailable as err:
        raise CliError([str(err), f"finished items (if any) are kept in {out}/items.jsonl; rerun the same command "
                                  "to resume"]) from None
    except EvalInputError as err:
        raise CliError(str(err).splitlines()) from None
    except BackendUnavailable as err:
        raise CliError([str(err), f"finished items are kept in {out}/items.jsonl; rerun to resume"]) from None
    finally:
        system.close()


def print_summary(run: Any, out: Path) -> None:
    """A few lines on stdout: the process numbers and each metric, then where the files are."""
    from ..evals.report import PROCESS_LABELS, fmt

    for name, s in run.process.items():
        print(f"{PROCESS_LABELS.get(name, name)}: {fmt(s.value, s.low, s.high)}")
    for m in run.metrics:
        ci = m.get("ci") or {}
        print(f"{m['column']}: {fmt(m['value'], ci.get('low'), ci.get('high'))}")
    print(f"wrote {out}/report.md, results.csv, summary.csv, summary.json")


def run(args: argparse.Namespace) -> int:
    """Evaluate the system on the captions and write the report."""
    check_numbers(args)
    render = render_spec(args)
    out = check_out(args.out)
    split = load_split_arg(args.split) if args.split else None
    rows = load_rows(args, split=split)
    backends = metric_backends(args)  # a bad backend is refused before the system runs
    system = build_system(args.system, args)
    result = execute(args, rows, system, backends, out, render, title=f"patchsmith eval: {system.name}")
    print_summary(result, out)
    return EXIT_OK
