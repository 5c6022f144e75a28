"""TRL reward functions for GRPO: format, keys, distance, ToolRL correctness (plain and topology-gated), audio.

Every function has TRL's signature ``(completions, answer=None, **kwargs) -> list[float | None]``
(``reference/llm_tools.md`` §3.1): ``completions`` are strings (standard data) or lists of message
dicts (conversational data: the last assistant message's ``tool_calls`` and ``content`` are read, as
are ``<tool_call>`` blocks inside the content); ``answer`` is the dataset column holding each row's
ground-truth patch as JSON text, repeated once per generation. The scores themselves are
``evals.patch_scores``; this module only finds the patch in a completion:

1. a structured tool call (``tool_calls``) or a ``<tool_call>`` block whose arguments hold a ``patch``
   object (``render_patch`` preferred, the last one wins);
2. otherwise, after the ``</think>`` block, the last fenced JSON block (``{"patch": {...}}`` unwrapped),
   else a bare ``{...}``.

Only JSON is read (no Python literals), with duplicate keys remembered so the strict format check sees
them. Nothing raises on any completion: unreadable text, ``None``, a huge string all give the minimum.
A missing or invalid ground truth gives ``None`` (TRL's "not applicable"), and a missing ``answer``
column raises ``ValueError`` (a configuration error). Parsing is cached by text, so the several reward
functions TRL calls on one batch read each completion once.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..agent.output_parsing import MAX_TEXT, fenced_blocks, split_think
from ..evals.patch_scores import (DEFAULT_WEIGHTS, TOOLRL_MIN, GroupWeights, PatchView, PreparedTruth, as_truth,
                                  format_score, view_distance, view_toolrl)
from ..schema.validate import pairs_to_dict

log = logging.getLogger("patchsmith.training.rewards")

RewardFn = Callable[..., list]
PATCH_TOOL = "render_patch"
_PARSE_CACHE_SIZE = 8192
_TOOL_CALL_OPEN, _TOOL_CALL_CLOSE = "<tool_call>", "</tool_call>"


# --- reading a completion ---------------------------------------------------------------------------


def _loads(text: str) -> Any:
    """JSON ``text`` (duplicate keys remembered), or None."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        return None
    try:
        return json.loads(text, object_pairs_hook=pairs_to_dict)
    except (ValueError, RecursionError, TypeError):
        return None


def _patch_of_arguments(args: Any) -> Any:
    """The ``patch`` object of a tool call's arguments (a dict or its JSON text), or None."""
    if isinstance(args, str):
        args = _loads(args)
    if isinstance(args, Mapping):
        patch = args.get("patch")
        if isinstance(patch, str):  # a model that double-encoded the patch
            patch = _loads(patch)
        return patch if isinstance(patch, Mapping) else None
    return None


def _pick_call(calls: list[tuple[str, Any]]) -> Any:
    """The patch of the last ``render_patch`` call holding one, else of the last call holding one."""
    found = [(name, p) for name, p in ((n, _patch_of_arguments(a)) for n, a in calls) if p is not None]
    if not found:
        return None
    preferred = [p for name, p in found if name == PATCH_TOOL]
    return (preferred or [p for _, p in found])[-1]


def _text_tool_calls(text: str) -> list[tuple[str, Any]]:
    """(name, arguments) of every ``<tool_call>{...}</tool_call>`` block (an unclosed last block counts)."""
    calls = []
    start = text.find(_TOOL_CALL_OPEN)
    while start >= 0:
        body_at = start + len(_TOOL_CALL_OPEN)
        end = text.find(_TOOL_CALL_CLOSE, body_at)
        body = text[body_at:] if end < 0 else text[body_at:end]
        data = _loads(body.strip())
        if isinstance(data, Mapping) and isinstance(data.get("name"), str):
            calls.append((data["name"], data.get("arguments", data.get("parameters"))))
        if end < 0:
            break
        start = text.find(_TOOL_CALL_OPEN, end + len(_TOOL_CALL_CLOSE))
    return calls


def patch_from_text(text: Any) -> Any:
    """The patch object a completion's text holds (tool call, else last fenced JSON, else bare object), or None."""
    if not isinstance(text, str) or not text or len(text) > MAX_TEXT:
        return None
    if "</think>" in text or "<think>" in text:
        _, rest = split_think(text)
    else:
        rest = text
    if _TOOL_CALL_OPEN in rest:
        patch = _pick_call(_text_tool_calls(rest))
        if patch is not None or "```" not in rest:
            return patch  # a tool call envelope is not a patch: no bare-object fallback
    if "```" in rest:
        for lang, body in reversed(fenced_blocks(rest)):
            if lang not in ("", "json"):
                continue
            value = _loads(body.strip())
            if isinstance(value, Mapping):
                inner = value.get("patch")
                return inner if isinstance(inner, Mapping) else value
        return None
    start, end = rest.find("{"), rest.rfind("}")
    if 0 <= start < end:
        value = _loads(rest[start:end + 1])
        if isinstance(value, Mapping):
            inner = value.get("patch")
            return inner if isinstance(inner, Mapping) else value
    return None


def _last_assistant(messages: Sequence[Any]) -> Mapping | None:
    for m in reversed(messages):
        if isinstance(m, Mapping) and m.get("role", "assistant") == "assistant":
            return m
    return None


def _message_patch(m: Mapping) -> Any:
    calls = []
    for call in m.get("tool_calls") or ():
        if not isinstance(call, Mapping):
            continue
        fn = call.get("function", call)
        if isinstance(fn, Mapping):
            calls.append((fn.get("name"), fn.get("arguments", fn.get("parameters"))))
    patch = _pick_call(calls)
    if patch is not None:
        return patch
    content = m.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return patch_from_text(content) if isinstance(content, str) else None


class Parsed:
    """One completion read once: the patch object, and its scores' inputs computed on first use."""

    __slots__ = ("obj", "_vector", "_format", "_keys")

    def __init__(self, obj: Any):
        self.obj = obj
        self._vector: PatchView | None = None
        self._format: float | None = None
        self._keys: float | None = None

    @property
    def vector(self) -> PatchView:
        """The patch's core as arrays (``evals.patch_scores.PatchView``)."""
        if self._vector is None:
            self._vector = PatchView(self.obj)
        return self._vector

    @property
    def format(self) -> float:
        """``format_score`` of the patch: 1.0 when it validates strictly."""
        if self._format is None:
            self._format = format_score(self.obj)
        return self._format

    @property
    def keys(self) -> float:
        """Share of the 12 core keys present with the right shape."""
        if self._keys is None:
            # The view already knows which core keys have the right shape: the same test keys_score makes.
            view = self.vector
            self._keys = float(view.key_ok.sum()) / len(view.key_ok) if view.mapping is not None else 0.0
        return self._keys


_NOTHING = Parsed(None)
_cache: OrderedDict[Any, Parsed] = OrderedDict()
_cache_lock = threading.Lock()


def parse_completion(completion: Any) -> Parsed:
    """The completion read once (cached by its text: TRL calls every reward function on the same batch)."""
    try:
        if isinstance(completion, str):
            key: Any = completion
            m = None
        elif isinstance(completion, (list, tuple, Mapping)):
            m = completion if isinstance(completion, Mapping) else _last_assistant(completion)
            if m is None:
                return _NOTHING
            key = ("msg", json.dumps(m, sort_keys=True, default=str))
        else:
            return _NOTHING
        with _cache_lock:
            hit = _cache.get(key)
            if hit is not None:
                _cache.move_to_end(key)
                return hit
        value = patch_from_text(completion) if m is None else _message_patch(m)
        parsed = Parsed(value)
        with _cache_lock:
            _cache[key] = parsed
            if len(_cache) > _PARSE_CACHE_SIZE:
                _cache.popitem(last=False)
        return parsed
    except Exception:  # a hostile object (a recursive list, a broken __str__) reads as nothing
        return _NOTHING


def extract_patch(completion: Any) -> Any:
    """The patch object (a dict, not yet validated) in one completion, string or messages; None if none."""
    return parse_completion(completion).obj


# --- the ground truth -----------------------------------------------------------------------------------

_warned: set[str] = set()


def _truths(answer: Any, n: int, name: str) -> list[PreparedTruth | None]:
    if answer is None:
        raise ValueError(f"{name} needs the ground truth: a dataset column 'answer' with the patch as JSON text "
                         "(GRPOConfig(remove_unused_columns=False), the default, passes it to reward functions)")
    if isinstance(answer, (str, bytes)) or not isinstance(answer, Sequence):
        answer = [answer] * n
    if len(answer) != n:
        raise ValueError(f"{name}: {len(answer)} answers for {n} completions; TRL passes one per completion")
    out: list[PreparedTruth | None] = []
    for a in answer:
        try:
            out.append(None if a is None else as_truth(a))
        except (ValueError, TypeError) as err:
            if name not in _warned:
                _warned.add(name)
                log.warning("%s: a ground-truth answer is not a valid patch; its rewards are None (%s)", name,
                            str(err)[:200])
            out.append(None)
    return out


# --- the reward functions -----------------------------------------------------------------------------


def format_reward(completions: Sequence[Any], answer: Any = None, **kwargs: Any) -> list[float | None]:
    """1.0 per completion holding a patch that parses and validates strictly, else 0.0."""
    return [parse_completion(c).format for c in completions]


def keys_reward(completions: Sequence[Any], answer: Any = None, **kwargs: Any) -> list[float | None]:
    """Share of the 12 core keys present with the right shape, per completion."""
    return [parse_completion(c).keys for c in completions]


def _vector(completion: Any) -> PatchView:
    return parse_completion(completion).vector


def _truth_reward(completions: Sequence[Any], answer: Any, name: str, score: Callable[[Any, PreparedTruth], float],
                  floor: float, *, read: Callable[[Any], Any] = _vector, warn: bool = False) -> list[float | None]:
    """``score(read(completion), truth)`` per completion (None without a truth); a failure or NaN scores ``floor``."""
    truths = _truths(answer, len(completions), name)
    out: list[float | None] = []
    for c, t in zip(completions, truths):
        if t is None:
            out.append(None)
            continue
        try:
            value = score(read(c), t)
            out.append(value if math.isfinite(value) else floor)
        except Exception as err:  # one bad completion (or a render failure) must not stop training
            if warn:
                log.warning("%s: scoring failed (%s); reward %g", name, err, floor)
            out.append(floor)
    return out


def make_distance_reward(weights: GroupWeights | None = None, gated: bool = False,
                         name: str | None = None) -> RewardFn:
    """A distance reward with custom group weights (``GroupWeights``), plain or topology-gated."""
    w = weights or DEFAULT_WEIGHTS
    w.check()
    label = name or ("gated_distance_reward" if gated else "distance_reward")

    def reward(completions: Sequence[Any], answer: Any = None, **kwargs: Any) -> list[float | None]:
        return _truth_reward(completions, answer, label, lambda v, t: view_distance(v, t, w, gated), 0.0)

    reward.__name__ = reward.__qualname__ = label
    reward.__doc__ = ("Weighted parameter similarity to the ground truth in [0, 1]"
                      + (", non-topology credit only when modmatrix and outmatrix match." if gated else "."))
    return reward


distance_reward = make_distance_reward()
gated_distance_reward = make_distance_reward(gated=True)


def toolrl_exact_reward(completions: Sequence[Any], answer: Any = None, **kwargs: Any) -> list[float | None]:
    """ToolRL's R_correct in [-3, 3] with exact value matching (reference §2)."""
    return _truth_reward(completions, answer, "toolrl_exact_reward", lambda v, t: view_toolrl(v, t, False), TOOLRL_MIN)


def gated_toolrl_exact_reward(completions: Sequence[Any], answer: Any = None, **kwargs: Any) -> list[float | None]:
    """ToolRL's R_correct; non-topology values count only when modmatrix and outmatrix match exactly."""
    return _truth_reward(completions, answer, "gated_toolrl_exact_reward", lambda v, t: view_toolrl(v, t, True),
                         TOOLRL_MIN)


class AudioReward:
    """Render the completion's patch and compare it with the ground truth's render, in [0, 1].

    ``score = mel_weight * exp(-d / mel_scale_db) + (1 - mel_weight) * max(0, rms_cos)`` where ``d`` is the
    mean absolute log-mel difference in dB (``evals.distances``) and ``rms_cos`` the cosine of the frame-RMS
    envelopes. A completion without a strictly valid patch scores 0. Renders (one note, short clip, low
    sample rate: a reward needs a shape, not hi-fi) are cached by the patch's canonical JSON, so the
    ground truth, repeated once per generation, renders once.
    """

    def __init__(self, *, note: int = 60, velocity: int = 100, hold_s: float = 1.0, release_s: float = 0.5,
                 sample_rate: int = 16000, mel_scale_db: float = 15.0, mel_weight: float = 0.5,
                 cache_size: int = 4096, name: str = "audio_reward"):
        if not 0.0 <= mel_weight <= 1.0:
            raise ValueError(f"mel_weight: found {mel_weight!r}, allowed 0..1")
        if not mel_scale_db > 0:
            raise ValueError(f"mel_scale_db: found {mel_scale_db!r}, allowed a positive number of dB")
        if not (0 < hold_s + release_s <= 30.0):
            raise ValueError("hold_s + release_s: allowed more than 0 and at most 30 seconds")
        self.note, self.velocity, self.hold_s, self.release_s = note, velocity, hold_s, release_s
        self.sample_rate, self.mel_scale_db, self.mel_weight = sample_rate, mel_scale_db, mel_weight
        self.cache_size = cache_size
        self.__name__ = name
        self._features: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def features(self, patch: Any) -> tuple[Any, Any]:
        """(log-mel dB spectrogram, frame-RMS envelope) of a valid ``Patch``'s render, cached."""
        from ..evals.distances import log_mel_db, rms_envelope
        from ..schema.compact import dumps_compact
        from ..synth.render import render

        key = dumps_compact(patch, full=True)
        with self._lock:
            hit = self._features.get(key)
            if hit is not None:
                self._features.move_to_end(key)
                self.hits += 1
                return hit
        audio = render(patch, note=self.note, velocity=self.velocity, hold_s=self.hold_s,
                       release_s=self.release_s, sample_rate=self.sample_rate)
        feats = (log_mel_db(audio, self.sample_rate), rms_envelope(audio))
        with self._lock:
            self.misses += 1
            self._features[key] = feats
            while len(self._features) > self.cache_size:
                self._features.popitem(last=False)
        return feats

    def score(self, pred: Any, truth: PreparedTruth) -> float:
        """The audio similarity of a parsed prediction (or None) to a prepared ground truth."""
        import numpy as np

        from ..evals.distances import cosine, mean_abs_difference
        from ..schema.validate import validate

        report = validate(pred) if pred is not None else None
        if report is None or not report.valid or report.patch is None:  # only a strictly valid patch is rendered
            return 0.0
        mel_p, rms_p = self.features(report.patch)
        mel_t, rms_t = self.features(truth.patch)
        d = mean_abs_difference(mel_p, mel_t)
        n = min(len(rms_p), len(rms_t))
        rms_cos = cosine(np.asarray(rms_p[:n]), np.asarray(rms_t[:n]))
        value = self.mel_weight * math.exp(-d / self.mel_scale_db) + (1.0 - self.mel_weight) * max(0.0, rms_cos)
        return min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0

    def __call__(self, completions: Sequence[Any], answer: Any = None, **kwargs: Any) -> list[float | None]:
        return _truth_reward(completions, answer, self.__name__, self.score, 0.0, read=extract_patch, warn=True)

    def cache_info(self) -> dict[str, int]:
        """Render-cache hits, misses and size."""
        return {"hits": self.hits, "misses": self.misses, "size": len(self._features)}


audio_reward = AudioReward()

REWARDS: dict[str, RewardFn] = {
    "format": format_reward,
    "keys": keys_reward,
    "distance": distance_reward,
    "gated_distance": gated_distance_reward,
    "toolrl_exact": toolrl_exact_reward,
    "gated_toolrl_exact": gated_toolrl_exact_reward,
    "audio": audio_reward,
}


def reward_functions(names_and_weights: Mapping[str, float]) -> tuple[list[RewardFn], list[float]]:
    """(functions, weights) for ``GRPOTrainer(reward_funcs=...)`` and ``GRPOConfig(reward_weights=...)``."""
    if not isinstance(names_and_weights, Mapping) or not names_and_weights:
        raise ValueError("rewards: give at least one name with its weight, e.g. {'format': 1.0, 'distance': 3.0}; "
                         "allowed names: " + ", ".join(REWARDS))
    fns, weights = [], []
    for name, weight in names_and_weights.items():
        if name not in REWARDS:
            raise ValueError(f"unknown reward {name!r}; allowed: " + ", ".join(REWARDS))
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(f"reward {name!r}: weight {weight!r} is not a finite number")
        fns.append(REWARDS[name])
        weights.append(float(weight))
    return fns, weights


def clear_caches() -> None:
    """Forget the cached parses (tests and benchmarks use it)."""
    with _cache_lock:
        _cache.clear()
