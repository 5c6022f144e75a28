"""``patchsmith train prepare|sft|grpo``: training data and TRL training runs driven by TOML configs.

* ``train prepare INPUT... -o DIR``: captioned patches (source-research CSVs, the dataset builder's
  Parquet) → ``DIR/sft.jsonl``, ``DIR/grpo.jsonl`` and ``DIR/report.json``;
* ``train sft --config FILE`` and ``train grpo --config FILE``: one run each (``training/config.py``
  describes the file; the packaged configs can be named without a path, e.g. ``--config tiny-cpu-sft``),
  with ``--output-dir``, ``--max-steps``, ``--model``, ``--data`` and ``--set KEY=VALUE`` overrides;
* ``train configs``: the packaged configs, or one of them printed (``train configs qwen3-8b-grpo``).

torch, transformers, trl and datasets come with the ``train`` extra and are imported only here.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from typing import Any

from .common import EXIT_OK, CliError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``train`` and its subcommands."""
    p = sub.add_parser("train", help="prepare SFT/GRPO data and train with TRL (SFT, GRPO) from a TOML config",
                       description="Training data and TRL training runs. Needs the `train` extra "
                                   "(pip install 'patchsmith[train]').")
    tsub = p.add_subparsers(dest="train_command", metavar="STEP", required=True)

    prep = tsub.add_parser("prepare", help="captioned patches -> sft.jsonl, grpo.jsonl and report.json",
                           description="Turn captioned patches into chat examples for SFT and prompts for GRPO.")
    prep.add_argument("inputs", nargs="+", metavar="INPUT",
                      help="source-research CSVs (DX7_X.csv with DX7_X_captions.csv) or a dataset folder / .parquet "
                           "from `patchsmith dataset build`")
    prep.add_argument("-o", "--output", metavar="DIR", default="train-data", help="output folder (default train-data)")
    prep.add_argument("--format", choices=("answer", "tools"), default="answer",
                      help="answer: <think> + fenced JSON patch (the source research's); tools: a render_patch "
                           "tool call (default answer)")
    prep.add_argument("--reasoning-ratio", type=float, metavar="R",
                      help="keep every row with reasoning and sample plain rows so that reasoning rows are this "
                           "share, in (0, 1] (default: keep all rows)")
    prep.add_argument("--refinement", type=int, default=0, metavar="N",
                      help="add N multi-turn refinement examples (semantic edits) (default 0)")
    prep.add_argument("--refinement-turns", type=int, default=1, metavar="T", help="turns per refinement example")
    prep.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    prep.add_argument("--tokenizer", metavar="DIR", help="a local tokenizer/model folder to count tokens with")
    prep.add_argument("--max-length", type=int, metavar="TOKENS",
                      help="report examples over this many tokens (TRL truncates them); needs --tokenizer")
    prep.add_argument("--tools", default="render_patch", metavar="NAMES",
                      help="comma-separated tools shown to the model in the tools format (default render_patch)")
    prep.set_defaults(func=run_prepare)

    for kind, what in (("sft", "supervised fine-tuning (TRL SFTTrainer)"), ("grpo", "GRPO (TRL GRPOTrainer)")):
        t = tsub.add_parser(kind, help=f"{what} from a TOML config",
                            description=f"{what}. The config names the model, the prepared data, the TRL "
                                        "arguments" + (", the reward weights and vLLM" if kind == "grpo" else "")
                                        + "; the checkpoint (weights, tokenizer, chat template, README.md model "
                                          "card) is saved into output_dir.")
        t.add_argument("--config", required=True, metavar="FILE",
                       help=f"a .toml config, or a packaged one by name (tiny-cpu-{kind}, qwen3-8b-{kind})")
        t.add_argument("--output-dir", metavar="DIR", help="override output_dir")
        t.add_argument("--max-steps", type=int, metavar="N", help="override trl.max_steps")
        t.add_argument("--model", metavar="PATH", help="override model.path")
        t.add_argument("--data", metavar="DIR", help="override data.path")
        t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any key, e.g. --set trl.learning_rate=1e-5 --set vllm.enabled=true "
                            "(VALUE is read as TOML; repeatable)")
        t.set_defaults(func=run_train, kind=kind)

    cfg = tsub.add_parser("configs", help="list the packaged configs, or print one",
                          description="The configs shipped with patchsmith; copy one to start your own.")
    cfg.add_argument("name", nargs="?", help="print this config")
    cfg.set_defaults(func=run_configs)
    return p


def _require_stack() -> None:
    import importlib.util

    missing = [m for m in ("torch", "transformers", "trl", "datasets") if importlib.util.find_spec(m) is None]
    if missing:
        raise CliError(f"training needs {', '.join(missing)}: pip install 'patchsmith[train]'")


def run_prepare(args: argparse.Namespace) -> int:
    """Build the SFT and GRPO files and print what was made."""
    from pathlib import Path

    from ..training.sft_data import prepare

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CliError(f"-o {out}: exists and is not a folder")
    if args.max_length is not None and args.tokenizer is None:
        raise CliError("--max-length needs --tokenizer DIR to count tokens with")
    if args.tokenizer is not None:
        _require_stack()
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    try:
        report = prepare(args.inputs, out, fmt=args.format, reasoning_ratio=args.reasoning_ratio,
                         refinement=args.refinement, seed=args.seed, tokenizer=args.tokenizer,
                         max_length=args.max_length, refinement_turns=args.refinement_turns, tools=tools)
    except ValueError as err:
        raise CliError(str(err).splitlines() or [type(err).__name__]) from None
    load, build = report.load, report.build
    print(f"read {load.rows_read} row(s) from {len(load.files) or len(args.inputs)} input(s); kept {load.rows_kept}"
          + ("" if not load.skipped else " (skipped: " + ", ".join(f"{k} {v}" for k, v in load.skipped.items()) + ")"))
    print(f"wrote {report.sft_path} ({report.sft_examples} SFT examples, format {report.fmt}, "
          f"{build.reasoning_rows} with reasoning, {build.refinement_examples} refinement)")
    print(f"wrote {report.grpo_path} ({report.grpo_prompts} GRPO prompts)")
    if report.lengths is not None:
        lr = report.lengths
        print(f"tokens per SFT example: min {lr.min}, p50 {lr.p50}, p95 {lr.p95}, max {lr.max}"
              + (f"; {lr.over_max_length} over --max-length {lr.max_length} ({lr.fully_masked} would be dropped)"
                 if lr.max_length else ""))
    for w in build.warnings:
        print(f"note: {w}", file=sys.stderr)
    print(f"wrote {Path(report.out_dir) / 'report.json'}")
    return EXIT_OK


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The dotted-key overrides the options ask for."""
    out: dict[str, Any] = {}
    for item in args.set:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise CliError(f"--set {item}: expected KEY=VALUE, e.g. trl.learning_rate=1e-5")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()  # a bare word: a string
        out[key] = value
    if args.output_dir is not None:
        out["output_dir"] = args.output_dir
    if args.max_steps is not None:
        if args.max_steps < 1:
            raise CliError(f"--max-steps: found {args.max_steps}, allowed an integer >= 1")
        out["trl.max_steps"] = args.max_steps
    if args.model is not None:
        out["model.path"] = args.model
    if args.data is not None:
        out["data.path"] = args.data
    return out


def run_train(args: argparse.Namespace) -> int:
    """Load the config, train, and print where the checkpoint is."""
    _require_stack()
    from ..training.config import ConfigError, load_config

    overrides = _overrides(args)
    try:
        config = load_config(args.config, overrides)
        if config.kind != args.kind:
            raise CliError(f"--config {args.config}: kind = {config.kind!r}; run it with `patchsmith train "
                           f"{config.kind}` (this is `train {args.kind}`)")
        if args.kind == "sft":
            from ..training.sft import run_sft as run
        else:
            from ..training.grpo import run_grpo as run
        result = run(config, log=lambda text: print(text, file=sys.stderr, flush=True))
    except ConfigError as err:
        raise CliError(err.problems) from None
    shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                      for k, v in result.metrics.items()
                      if k in ("train_loss", "reward", "reward_std")
                      or (k.startswith("rewards/") and k.endswith("/mean")))
    print(f"trained {result.kind.upper()}: {result.steps} step(s) on {result.rows} row(s) in {result.seconds:.1f} s"
          + (f" ({shown})" if shown else ""))
    print(f"saved {result.output_dir} (model, tokenizer, chat template, README.md)")
    hint = "" if config.data.format == "tools" else " --output-parsing"
    print(f"try: patchsmith design \"warm pad\" -o out --model-path {result.output_dir}{hint}")
    return EXIT_OK


def run_configs(args: argparse.Namespace) -> int:
    """List or print the packaged configs."""
    from ..training.config import packaged_configs

    configs = packaged_configs()
    if args.name is None:
        for name in sorted(configs):
            first = next((line.lstrip("# ").strip() for line in configs[name].splitlines() if line.startswith("#")), "")
            print(f"{name}: {first}")
        return EXIT_OK
    name = args.name[:-5] if args.name.endswith(".toml") else args.name
    if name not in configs:
        raise CliError(f"{args.name}: no such packaged config; allowed: {', '.join(sorted(configs))}")
    sys.stdout.write(configs[name])
    return EXIT_OK
