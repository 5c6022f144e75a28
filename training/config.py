"""Training configs: one TOML file per run, read into pydantic models with every mistake named.

A config has a ``kind`` (``sft`` or ``grpo``), an ``output_dir`` and tables::

    [model]      path ("tiny-qwen3" or a local checkpoint folder / cached hub id), dtype, attn_implementation
    [data]       path (the folder ``patchsmith train prepare`` wrote), format (answer | tools), max_rows
    [reasoning]  enable_thinking (the template's switch for GRPO prompts), reasoning_ratio (SFT thinking share)
    [rewards]    GRPO only: reward name = weight (``training.rewards.REWARDS``)
    [vllm]       GRPO only: enabled, mode (colocate | server), gpu_memory_utilization, ...
    [trl]        passed to TRL's SFTConfig / GRPOConfig as keyword arguments, checked against its fields

Relative paths are read from the current folder (as every other patchsmith command does), so the
packaged configs run from any project folder. Unknown keys, wrong types and TRL fields that belong to
another table are refused with the file, the key and what is allowed.
"""

from __future__ import annotations

import difflib
import importlib.resources
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..schema.problems import ProblemsError
from .tiny_model import TINY_MODEL_ID

Kind = Literal["sft", "grpo"]
DataFormat = Literal["answer", "tools"]
Dtype = Literal["auto", "bfloat16", "float16", "float32"]

# [trl] keys that other tables own: a value there would be silently overridden, so it is refused.
_OWNED = {
    "output_dir": "the top-level output_dir (or --output-dir)",
    "seed": "the top-level seed",
    "reward_weights": "the [rewards] table (name = weight)",
    "chat_template_kwargs": "[reasoning] enable_thinking",
    "model_init_kwargs": "the [model] table (dtype, attn_implementation)",
    "use_vllm": "the [vllm] table (enabled = true)",
    "remove_unused_columns": "nothing: the trainers need the 'answer' column, so it is fixed",
}


class ConfigError(ProblemsError):
    """A config that cannot be used; ``problems`` holds one line per problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ModelSection(_Section):
    """The model to start from and how it is loaded."""

    path: str = Field(min_length=1, description='"tiny-qwen3" (built in-process) or a checkpoint folder')
    dtype: Dtype = "auto"
    attn_implementation: str | None = None


class DataSection(_Section):
    """The training data written by ``patchsmith train prepare``."""

    path: str = Field(min_length=1)
    format: DataFormat | None = None  # None: as the folder was prepared (its report.json)
    max_rows: int | None = Field(None, ge=1)
    max_prompt_tokens: int | None = Field(None, ge=1)  # GRPO: prompts longer than this are left out


class ReasoningSection(_Section):
    """Thinking: the template's ``enable_thinking`` (GRPO, inference) and the share of SFT examples that think."""

    enable_thinking: bool = False
    # SFT: keep every example that thinks (" /think") and a seeded sample of the others so that thinking
    # examples are this share; None keeps what `train prepare` wrote (its --reasoning-ratio).
    reasoning_ratio: float | None = Field(None, gt=0, le=1)


class VllmSection(_Section):
    """vLLM generation for GRPO (GPU only); nothing here reaches TRL unless ``enabled``."""

    enabled: bool = False
    mode: Literal["colocate", "server"] = "colocate"
    gpu_memory_utilization: float = Field(0.3, gt=0, le=1)
    tensor_parallel_size: int = Field(1, ge=1)
    enable_sleep_mode: bool = False
    max_model_length: int | None = Field(None, ge=1)
    server_base_url: str | None = None

    def trl_kwargs(self) -> dict[str, Any]:
        """The GRPOConfig keyword arguments these settings stand for (empty when vLLM is off)."""
        if not self.enabled:
            return {}
        out: dict[str, Any] = {"use_vllm": True, "vllm_mode": self.mode}
        if self.mode == "colocate":
            out.update(vllm_gpu_memory_utilization=self.gpu_memory_utilization,
                       vllm_tensor_parallel_size=self.tensor_parallel_size,
                       vllm_enable_sleep_mode=self.enable_sleep_mode)
        elif self.server_base_url:
            out["vllm_server_base_url"] = self.server_base_url
        if self.max_model_length is not None:
            out["vllm_max_model_length"] = self.max_model_length
        return out


class TrainConfig(_Section):
    """One training run: what to start from, on which data, with which TRL arguments."""

    kind: Kind
    output_dir: str = Field(min_length=1)
    seed: int = 42
    model: ModelSection
    data: DataSection
    reasoning: ReasoningSection = Field(default_factory=ReasoningSection)
    rewards: dict[str, float] = Field(default_factory=dict)
    vllm: VllmSection = Field(default_factory=VllmSection)
    trl: dict[str, Any] = Field(default_factory=dict)
    source: str | None = Field(None, exclude=True)  # the file it was read from, for messages

    @field_validator("rewards", mode="before")
    @classmethod
    def _weights(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name, w in value.items():
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                    raise ValueError(f"reward {name!r}: weight {w!r} is not a finite number")
            return {k: float(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _by_kind(self) -> TrainConfig:
        if self.kind == "sft":
            if self.rewards:
                raise ValueError("[rewards] is for kind = \"grpo\"; an SFT run has no rewards")
            if self.vllm.enabled:
                raise ValueError("[vllm] is for kind = \"grpo\" (generation during training); SFT does not generate")
        elif not self.rewards:
            raise ValueError("kind = \"grpo\" needs a [rewards] table: reward name = weight, e.g. format = 1.0")
        return self

    def resolve(self, path: str) -> Path:
        """A path of the config, relative ones read from the current folder."""
        return Path(path).expanduser()

    def error(self, text: str) -> ConfigError:
        """A ``ConfigError`` about this config, naming the file it was read from."""
        return ConfigError([f"{self.source or '<config>'}: {text}"])


def packaged_configs() -> dict[str, str]:
    """The configs shipped with the package: name (file stem) -> TOML text."""
    folder = importlib.resources.files("patchsmith.training") / "configs"
    return {p.name[:-5]: p.read_text(encoding="utf-8") for p in folder.iterdir() if p.name.endswith(".toml")}


def read_config_text(name_or_path: str | Path) -> tuple[str, str]:
    """(TOML text, where it came from) for a config file, or the name of a packaged config."""
    path = Path(name_or_path)
    if path.is_file():
        return path.read_text(encoding="utf-8"), str(path)
    packaged = packaged_configs()
    stem = path.name[:-5] if path.name.endswith(".toml") else path.name
    if not path.exists() and path.parent == Path(".") and stem in packaged:
        return packaged[stem], f"{stem} (packaged)"
    if path.is_dir():
        raise ConfigError([f"{path}: is a folder; give a .toml config file"])
    raise ConfigError([f"{path}: no such config file; give a .toml file or one of the packaged configs: "
                       + ", ".join(sorted(packaged))])


def load_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read and check a config (a file, or a packaged config's name), with dotted-key overrides applied."""
    text, where = read_config_text(name_or_path)
    return parse_config(text, where, overrides)


def parse_config(text: str, where: str = "<config>", overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Check TOML text as a config; ``ConfigError`` lists every problem with the key it concerns."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([f"{where}: not valid TOML: {err}"]) from None
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError([f"{where}: {_problem(e)}" for e in err.errors()]) from None
    config.source = where
    problems = [f"{where}: {p}" for p in _trl_problems(config)]
    if problems:
        raise ConfigError(problems)
    return config


def _problem(e: Any) -> str:
    loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
    kind = e["type"]
    if kind == "extra_forbidden":
        table = _table_of(e["loc"][:-1])
        allowed = sorted(table.model_fields) if table is not None else []
        allowed = [a for a in allowed if a != "source"]
        close = difflib.get_close_matches(str(e["loc"][-1]), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{loc}: unknown key{hint}; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return f"{loc}: missing; it is required"
    found = e.get("input")
    shown = repr(found) if not isinstance(found, dict) else "a table"
    return f"{loc}: {e['msg'].removeprefix('Value error, ')} (found {shown})"


def _table_of(loc: tuple) -> type[BaseModel] | None:
    tables: dict[tuple, type[BaseModel]] = {(): TrainConfig, ("model",): ModelSection, ("data",): DataSection,
                                            ("reasoning",): ReasoningSection, ("vllm",): VllmSection}
    return tables.get(tuple(loc))


def trl_config_class(kind: Kind) -> type:
    """TRL's SFTConfig or GRPOConfig."""
    if kind == "sft":
        from trl import SFTConfig

        return SFTConfig
    from trl import GRPOConfig

    return GRPOConfig


def _trl_problems(config: TrainConfig) -> list[str]:
    """[trl] keys that TRL does not know or that another table owns; reward names that do not exist."""
    import dataclasses

    problems = []
    cls = trl_config_class(config.kind)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in config.trl:
        if key in _OWNED:
            problems.append(f"trl.{key}: set it with {_OWNED[key]}, not in [trl]")
        elif key.startswith("vllm_"):
            problems.append(f"trl.{key}: vLLM settings go in the [vllm] table (enabled, mode, "
                            "gpu_memory_utilization, tensor_parallel_size, enable_sleep_mode, max_model_length)")
        elif key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            extra = (" (GRPOConfig has no max_prompt_length since TRL 1.x: prompts are not truncated; "
                     "data.max_prompt_tokens leaves long ones out)"
                     if key == "max_prompt_length" else "")
            problems.append(f"trl.{key}: not a {cls.__name__} field{extra}; {hint}see the TRL documentation "
                            f"of {cls.__name__}")
    if config.kind == "grpo" and config.rewards:
        from .rewards import REWARDS

        for name in config.rewards:
            if name not in REWARDS:
                close = difflib.get_close_matches(name, list(REWARDS), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"rewards.{name}: unknown reward{hint}; allowed: {', '.join(REWARDS)}")
    return problems


def trl_arguments(config: TrainConfig) -> Any:
    """The SFTConfig / GRPOConfig for ``config``; ``ConfigError`` when TRL refuses a value."""
    cls = trl_config_class(config.kind)
    kwargs: dict[str, Any] = dict(config.trl)
    kwargs["output_dir"] = str(config.resolve(config.output_dir))
    kwargs["seed"] = config.seed
    if config.kind == "grpo":
        _, weights = reward_setup(config)
        kwargs["reward_weights"] = weights
        kwargs["remove_unused_columns"] = False  # the rewards read the 'answer' column
        kwargs.update(config.vllm.trl_kwargs())
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        text = str(err).splitlines()[0] if str(err) else type(err).__name__
        hint = ("; this config is for a GPU: on CPU set trl.bf16 = false and trl.use_cpu = true"
                if "bf16" in text else "")
        raise config.error(f"[trl] {cls.__name__} refused the arguments: {text}{hint}") from None


def reward_setup(config: TrainConfig) -> tuple[list, list[float]]:
    """(reward functions, weights) of a GRPO config."""
    from .rewards import reward_functions

    try:
        return reward_functions(config.rewards)
    except ValueError as err:
        raise config.error(f"[rewards] {err}") from None


__all__ = ["ConfigError", "DataSection", "ModelSection", "ReasoningSection", "TINY_MODEL_ID", "TrainConfig",
           "VllmSection", "load_config", "packaged_configs", "parse_config", "read_config_text", "reward_setup",
           "trl_arguments", "trl_config_class"]
