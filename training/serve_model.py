"""Serving a trained checkpoint with vLLM's OpenAI-compatible server, with Qwen3's tool and reasoning parsers.

The command is ``vllm serve CKPT --enable-auto-tool-choice --tool-call-parser hermes --reasoning-parser
qwen3 ...`` (``reference/llm_tools.md`` §4): ``hermes`` reads Qwen3's ``<tool_call>{json}</tool_call>``
blocks (``qwen3_xml``/``qwen3_coder`` are for the XML format of other Qwen models and would be wrong
here), ``qwen3`` splits the ``<think>`` block into the message's reasoning. The agent then reaches the
model with ``--model NAME --base-url http://HOST:PORT/v1``, and a checkpoint patchsmith trained (its
``patchsmith.json``) with ``--prompt trained`` (plus ``--output-parsing`` for the answer format and
``--thinking`` where it was trained to think), so that it is sent the prompt it was trained on. Where the
trainer passed ``enable_thinking`` to the chat template (GRPO), the server passes the same by default
(``--default-chat-template-kwargs``, a ``vllm serve`` option since PR #31343, in use with vLLM 0.19).
vLLM needs a GPU; building and checking the command does not.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..agent.local_model import checkpoint_problems
from ..agent.trained_prompt import TrainedPrompt, read_checkpoint_prompt

TOOL_CALL_PARSER = "hermes"
REASONING_PARSER = "qwen3"
TEMPLATE_KWARGS_FLAG = "--default-chat-template-kwargs"


class ServeOptions(BaseModel):
    """How to serve one checkpoint."""

    model_config = ConfigDict(extra="forbid")

    checkpoint: Path
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8000, ge=1, le=65535)
    served_model_name: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)
    max_model_len: int | None = Field(None, ge=1)
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    api_key: str | None = None
    reasoning: bool = True
    extra_args: list[str] = Field(default_factory=list)

    def model_name(self) -> str:
        """The name clients pass as ``--model`` (default: the checkpoint folder's name)."""
        return self.served_model_name or self.checkpoint.resolve().name

    def trained_prompt(self) -> TrainedPrompt | None:
        """The prompt the checkpoint records it was trained on (None: not trained by patchsmith, or unreadable)."""
        try:
            return read_checkpoint_prompt(self.checkpoint) if self.checkpoint.is_dir() else None
        except ValueError:
            return None  # serve_problems reports it


def serve_problems(options: ServeOptions) -> list[str]:
    """What makes the checkpoint unservable (missing folder, weights, tokenizer or chat template)."""
    problems = checkpoint_problems(options.checkpoint)
    if problems:
        return problems
    folder = options.checkpoint
    try:
        read_checkpoint_prompt(folder)
    except ValueError as err:
        problems.append(str(err))
    if not (folder / "chat_template.jinja").is_file() and '"chat_template"' not in _read(folder / "tokenizer_config.json"):
        problems.append(f"{folder}: no chat template (chat_template.jinja or tokenizer_config.json's chat_template); "
                        "the tool-call parser relies on the Qwen3 template")
    return problems


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def vllm_command(options: ServeOptions, executable: str = "vllm") -> list[str]:
    """The ``vllm serve`` command line for ``options``."""
    cmd = [executable, "serve", str(options.checkpoint),
           "--enable-auto-tool-choice", "--tool-call-parser", TOOL_CALL_PARSER]
    if options.reasoning:
        cmd += ["--reasoning-parser", REASONING_PARSER]
    cmd += ["--served-model-name", options.model_name(), "--host", options.host, "--port", str(options.port),
            "--tensor-parallel-size", str(options.tensor_parallel_size)]
    if options.max_model_len is not None:
        cmd += ["--max-model-len", str(options.max_model_len)]
    if options.gpu_memory_utilization is not None:
        cmd += ["--gpu-memory-utilization", f"{options.gpu_memory_utilization:g}"]
    if options.api_key:
        cmd += ["--api-key", options.api_key]
    kwargs = template_kwargs(options)
    if kwargs and not any(a.split("=", 1)[0] == TEMPLATE_KWARGS_FLAG for a in options.extra_args):
        cmd += [TEMPLATE_KWARGS_FLAG, json.dumps(kwargs)]  # --vllm-args may set its own
    return cmd + list(options.extra_args)


def template_kwargs(options: ServeOptions) -> dict[str, bool]:
    """The chat-template arguments the trainer passed (GRPO's ``enable_thinking``), for the server's default."""
    prompt = options.trained_prompt()
    return prompt.template_kwargs() if prompt is not None else {}


def shown_command(cmd: list[str]) -> str:
    """The command as a shell line, any API key masked."""
    shown = list(cmd)
    for i, part in enumerate(shown[:-1]):
        if part == "--api-key":
            shown[i + 1] = "***"
    return shlex.join(shown)


def find_vllm() -> str | None:
    """The ``vllm`` executable on PATH, or None."""
    return shutil.which("vllm")


def client_arguments(options: ServeOptions) -> list[str]:
    """The options that reach the served model as it was trained: endpoint, then the trained prompt profile."""
    host = "127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host
    host = f"[{host}]" if ":" in host else host
    args = ["--model", options.model_name(), "--base-url", f"http://{host}:{options.port}/v1"]
    prompt = options.trained_prompt()
    if prompt is not None:  # a patchsmith-trained checkpoint: its training prompt, in its format and thinking
        args += ["--prompt", "trained"]
        if prompt.fmt == "answer":
            args.append("--output-parsing")
        if prompt.think:
            args.append("--thinking")
    return args


def client_hint(options: ServeOptions) -> str:
    """How the agent reaches the served model."""
    return "patchsmith design \"TEXT\" -o out " + shlex.join(client_arguments(options))


def bench_hint(options: ServeOptions) -> str:
    """How the benchmark reaches the served model."""
    return "patchsmith bench --captions CSV --patches CSV --out DIR " + shlex.join(client_arguments(options))


__all__ = ["REASONING_PARSER", "ServeOptions", "TEMPLATE_KWARGS_FLAG", "TOOL_CALL_PARSER", "bench_hint",
           "client_arguments", "client_hint", "find_vllm", "serve_problems", "shown_command", "template_kwargs",
           "vllm_command"]
