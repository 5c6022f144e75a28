"""``patchsmith serve-model CKPT``: serve a trained checkpoint with vLLM (hermes tool parser, qwen3 reasoning).

``--dry-run`` checks the checkpoint and prints the command without running it (no GPU, no vLLM needed),
then the ``design`` and ``bench`` options that reach the model as it was trained (``--prompt trained``,
``--output-parsing`` for the answer format, ``--thinking``, from the checkpoint's ``patchsmith.json``).
Otherwise the command runs in the foreground until interrupted; its exit status is returned.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_OK, CliError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``serve-model``."""
    p = sub.add_parser("serve-model", help="serve a trained checkpoint with vLLM's OpenAI-compatible server",
                       description="Start `vllm serve CKPT --enable-auto-tool-choice --tool-call-parser hermes "
                                   "--reasoning-parser qwen3` so that the agent (design/chat --model NAME --base-url "
                                   "http://HOST:PORT/v1, with --prompt trained for a checkpoint patchsmith trained) "
                                   "can use the model; where the trainer passed enable_thinking to the chat template "
                                   "(GRPO), the server passes it too (--default-chat-template-kwargs). Needs a GPU "
                                   "and the `serve` extra; --dry-run only checks the checkpoint and prints the "
                                   "command and how to reach the model.")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint folder (config.json, weights, tokenizer, chat "
                                                      "template), e.g. the output_dir of `patchsmith train grpo`")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--served-model-name", metavar="NAME", help="the model name clients use (default: CKPT's folder name)")
    p.add_argument("--tensor-parallel-size", type=int, default=1, metavar="N", help="GPUs to shard over (default 1)")
    p.add_argument("--max-model-len", type=int, metavar="TOKENS", help="context length (default: the model's)")
    p.add_argument("--gpu-memory-utilization", type=float, metavar="FRACTION", help="0..1 (default: vLLM's, 0.9)")
    p.add_argument("--no-reasoning-parser", action="store_true",
                   help="leave <think> blocks in the content (for models trained without thinking)")
    p.add_argument("--vllm-args", default="", metavar="'ARGS'", help="more vllm serve arguments, as one quoted string")
    p.add_argument("--dry-run", action="store_true", help="check CKPT and print the command; do not start vLLM")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Check the checkpoint, then print or run the vLLM command."""
    import os

    from pydantic import ValidationError

    from ..training.serve_model import (ServeOptions, bench_hint, client_hint, find_vllm, serve_problems,
                                        shown_command, vllm_command)

    try:
        extra = shlex.split(args.vllm_args)
    except ValueError as err:
        raise CliError(f"--vllm-args: {err}") from None
    try:
        options = ServeOptions(checkpoint=Path(args.checkpoint), host=args.host, port=args.port,
                               served_model_name=args.served_model_name,
                               tensor_parallel_size=args.tensor_parallel_size, max_model_len=args.max_model_len,
                               gpu_memory_utilization=args.gpu_memory_utilization,
                               api_key=os.environ.get("PATCHSMITH_API_KEY") or None,
                               reasoning=not args.no_reasoning_parser, extra_args=extra)
    except ValidationError as err:  # each field is the option of the same name
        raise CliError([f"--{str(e['loc'][0]).replace('_', '-')}: found {e.get('input')!r}, {e['msg'].lower()}"
                        for e in err.errors()]) from None
    problems = serve_problems(options)
    if problems:
        raise CliError(problems)
    executable = find_vllm()
    cmd = vllm_command(options, executable or "vllm")
    if args.dry_run:
        print(shown_command(cmd))
        print(f"# then: {client_hint(options)}")
        print(f"# score: {bench_hint(options)}")
        if executable is None:
            print("# note: vllm is not installed here; on the GPU machine: pip install 'patchsmith[serve]'")
        return EXIT_OK
    if executable is None:
        raise CliError("vllm is not installed (it needs a GPU machine): pip install 'patchsmith[serve]'; "
                       "--dry-run prints the command without it")
    print(f"starting: {shown_command(cmd)}", file=sys.stderr, flush=True)
    print(f"then: {client_hint(options)}", file=sys.stderr, flush=True)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130
