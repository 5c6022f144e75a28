"""Scores of a predicted patch against the ground truth: format, keys, distance and ToolRL correctness.

Pure functions on already-parsed objects (a dict as ``json.loads`` gives it, a ``Patch``, or ``None`` when
nothing could be read); extracting the object from a model's text is ``training.rewards``' job. Every
score is driven by the parameter metadata table (``schema.params``) and never raises, whatever ``pred`` is.

* ``format_score`` ∈ {0, 1}: the object is a patch that validates strictly (``schema.validate``).
* ``keys_score`` ∈ [0, 1]: share of the 12 core keys present with the right array shape.
* ``distance_score`` ∈ [0, 1]: weighted parameter similarity over the 128 core numbers: a bounded integer
  scores ``clip01(1 - |p - t| / (high - low))``, a binary (``modmatrix``, ``outmatrix``, ``fixed_freq``)
  scores 1 when equal and 0 otherwise; each key scores the mean of its elements (a missing key, a wrong
  shape or a non-number scores 0); keys are combined as ``Σ w_k s_k / Σ w_k`` with the weights of
  ``GroupWeights`` (by default the source research's: modmatrix 4, outmatrix 4, feedback 3, fixed_freq 3,
  ol/eg_rate/eg_level 2, coarse 1.5, fine 1, detune 1, transpose 0.5, sensitivity 0.5).
  ``GroupWeights(voice=True)`` adds the full-voice keys (LFO, pitch EG, keyboard scaling, ...) to the
  global group, an absent one counting as its neutral default; categorical and boolean ones score exact match.
* ``toolrl_exact_score`` ∈ [-3, 3]: ToolRL's R_correct (``reference/llm_tools.md`` §2) for one tool call
  whose parameters are the flattened core names (``coarse[0]`` ... ``eg_rate[3][5]``):
  ``6 (r_name + r_param + r_value) / S_max - 3`` with ``S_max = 1 + 1 + 128 = 130``; r_name = 1 when a
  patch object was found; r_param = Jaccard of the flattened names (an unknown top-level key, a wrong-shaped
  or extra element each add a name the truth lacks; full-voice keys and ``name`` are outside the core and
  ignored); r_value = number of core numbers equal to the truth's exactly (an integer, not ``3.0`` or
  ``true``). Nothing readable (``None``, not an object) gives -3; the exact core gives +3.
* gated variants (``gated=True``): the gate keys ``modmatrix`` and ``outmatrix`` always count; every other
  key earns credit only when both gate keys equal the truth's exactly (its weight stays in the
  denominator, so a wrong topology caps the distance at the gate keys' share, 8/26 by default).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..schema.params import ALL_PARAMS, CORE_KEYS, CORE_PARAMS, NAME_MAX_LEN, TOP_LEVEL_KEYS, VOICE_PARAMS, Param
from ..schema.patch import Patch
from ..schema.validate import validate, validate_json

GATE_KEYS: tuple[str, ...] = ("modmatrix", "outmatrix")
TOOLRL_MIN, TOOLRL_MAX = -3.0, 3.0
N_CORE = sum(p.size for p in CORE_PARAMS)  # 128
TOOLRL_S_MAX = 1 + 1 + N_CORE  # r_name + r_param + one point per core number
MAX_NAMES = 10_000  # flattening a hostile object stops here (the truth has 128 names)

_TOP_KEYS = frozenset(TOP_LEVEL_KEYS)
_CORE_SET = frozenset(CORE_KEYS)


class GroupWeights(BaseModel):
    """Weights of the distance score: a multiplier per group on the table's per-key weights, and overrides.

    The effective weight of a key is ``keys[key]`` when given, else ``params`` weight x its group's
    multiplier. Defaults reproduce the source research's GRPO weights exactly (all multipliers 1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    topology: float = Field(1.0, ge=0, description="multiplier of modmatrix 4, outmatrix 4, feedback 3, fixed_freq 3")
    amplitude: float = Field(1.0, ge=0, description="multiplier of ol, eg_rate, eg_level (2 each)")
    frequency: float = Field(1.0, ge=0, description="multiplier of coarse 1.5, fine 1, detune 1")
    global_: float = Field(1.0, ge=0, alias="global",
                           description="multiplier of transpose 0.5, sensitivity 0.5 (and the full-voice keys, 0.5)")
    keys: dict[str, float] = Field(default_factory=dict,
                                   description="per-key weight overrides, e.g. {'feedback': 0} (top-level keys; "
                                               "'lfo' covers the LFO's fields)")
    voice: bool = Field(False, description="also score the full-voice keys (absent = neutral default)")

    def weight_of(self, p: Param) -> float:
        """The effective weight of one parameter."""
        key = p.parent or p.key
        if key in self.keys:
            return float(self.keys[key])
        mult = {"topology": self.topology, "amplitude": self.amplitude, "frequency": self.frequency,
                "global": self.global_}[p.group]
        return p.weight * mult

    def check(self) -> None:
        """Raise ``ValueError`` naming what is wrong (unknown key, negative weight, all weights zero)."""
        allowed = set(CORE_KEYS) | {p.parent or p.key for p in VOICE_PARAMS}
        bad = [k for k in self.keys if k not in allowed]
        if bad:
            raise ValueError(f"GroupWeights.keys: unknown key(s) {', '.join(map(repr, bad))}; allowed: "
                             + ", ".join(sorted(allowed)))
        neg = [k for k, v in self.keys.items() if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0)]
        if neg:
            raise ValueError(f"GroupWeights.keys: weights must be finite and >= 0, found {neg}")
        if sum(self.weight_of(p) for p in CORE_PARAMS) <= 0:
            raise ValueError("GroupWeights: the core weights sum to 0; at least one key needs a positive weight")


DEFAULT_WEIGHTS = GroupWeights()


class PatchScores(BaseModel):
    """Every patch score of one prediction against its ground truth."""

    model_config = ConfigDict(extra="forbid")

    format: float = Field(description="1 when the prediction validates strictly, else 0")
    keys: float = Field(description="share of the 12 core keys present with the right shape")
    distance: float = Field(description="weighted parameter similarity, 0..1")
    distance_gated: float = Field(description="distance with non-topology credit only when the topology matches")
    toolrl_exact: float = Field(description="ToolRL R_correct with exact values, -3..3")
    toolrl_exact_gated: float = Field(description="toolrl_exact with non-topology credit only when the topology matches")


# --- the core as flat arrays (metadata precomputed once) ---------------------------------------------

_SIZES = np.array([p.size for p in CORE_PARAMS])
_KEY_OF_ELEMENT = np.repeat(np.arange(len(CORE_PARAMS)), _SIZES)
_LOW = np.repeat(np.array([float(p.low) for p in CORE_PARAMS]), _SIZES)
_SPAN = np.repeat(np.array([float(p.high - p.low) for p in CORE_PARAMS]), _SIZES)
_BINARY = np.repeat(np.array([p.kind == "binary" for p in CORE_PARAMS]), _SIZES)
_GATE = np.repeat(np.array([p.key in GATE_KEYS for p in CORE_PARAMS]), _SIZES)
_OFFSETS = np.concatenate([[0], np.cumsum(_SIZES)])


def _flat(value: Any, shape: tuple[int, ...]) -> list | None:
    """The leaves of ``value`` in row-major order when it has exactly ``shape``, else None."""
    if not shape:
        return None if isinstance(value, (list, tuple, Mapping)) else [value]
    if not isinstance(value, (list, tuple)):
        return None
    if len(value) != shape[0]:
        return None
    if len(shape) == 1:
        for x in value:
            if type(x) is not int and isinstance(x, (list, tuple, Mapping)):
                return None
        return list(value)
    out: list = []
    for row in value:
        if len(shape) == 2 and type(row) is list and len(row) == shape[1]:
            for x in row:  # the common case: a row of plain numbers
                if type(x) is not int and isinstance(x, (list, tuple, Mapping)):
                    return None
            out.extend(row)
            continue
        sub = _flat(row, shape[1:])
        if sub is None:
            return None
        out.extend(sub)
    return out


def _as_mapping(obj: Any) -> Mapping | None:
    if isinstance(obj, Patch):
        return obj.to_dict()
    return obj if isinstance(obj, Mapping) else None


_BIG = 2**53  # integers beyond this are not DX7 values; they read as "very far away"


class PatchView:
    """A prediction's core as arrays (values, NaN where unreadable; which are exact ints; which keys fit), built once
    and scored against any truth with ``view_distance``/``view_toolrl`` (the rewards share one per completion)."""

    __slots__ = ("values", "is_int", "key_ok", "mapping")

    def __init__(self, obj: Any):
        m = _as_mapping(obj)
        self.mapping = m
        values = np.full(N_CORE, np.nan)
        is_int = np.zeros(N_CORE, dtype=bool)
        key_ok = np.zeros(len(CORE_PARAMS), dtype=bool)
        if m is not None:
            for k, p in enumerate(CORE_PARAMS):
                if p.key not in m:
                    continue
                leaves = _flat(m[p.key], p.shape)
                if leaves is None:
                    continue
                key_ok[k] = True
                lo, hi = _OFFSETS[k], _OFFSETS[k + 1]
                if all(type(x) is int and -_BIG < x < _BIG for x in leaves):
                    values[lo:hi] = leaves
                    is_int[lo:hi] = True
                    continue
                for i, x in enumerate(leaves):
                    if type(x) is int:
                        if -_BIG < x < _BIG:
                            values[lo + i], is_int[lo + i] = x, True
                        else:  # a huge integer is far from every value (and float() of it may overflow)
                            values[lo + i] = _BIG if x > 0 else -_BIG
                    elif isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
                        values[lo + i] = float(x)
        self.values, self.is_int, self.key_ok = values, is_int, key_ok


class PreparedTruth:
    """A ground-truth patch as arrays (built once per truth; ``prepare_truth`` caches JSON strings)."""

    __slots__ = ("patch", "values", "voice")

    def __init__(self, patch: Patch):
        self.patch = patch
        d = patch.model_dump()
        self.values = np.array([x for p in CORE_PARAMS for x in _flat(d[p.key], p.shape)], dtype=float)
        self.voice = {_vkey(p): _vleaves(d, p) for p in VOICE_PARAMS}


def _vkey(p: Param) -> str:
    return f"{p.parent}.{p.key}" if p.parent else p.key


def _vleaves(d: Mapping, p: Param) -> list | None:
    v = d.get(p.parent, {}).get(p.key) if p.parent else d.get(p.key)
    return _flat(list(v) if isinstance(v, tuple) else v, p.shape)


def as_truth(truth: Any) -> PreparedTruth:
    """The ground truth ready for scoring: a ``PreparedTruth``, ``Patch``, dict or JSON text (validated strictly)."""
    if isinstance(truth, PreparedTruth):
        return truth
    if isinstance(truth, str):
        return prepare_truth(truth)
    if isinstance(truth, Patch):
        return PreparedTruth(truth)
    report = validate(truth)
    if not report.valid or report.patch is None:
        raise ValueError("the ground-truth patch is not valid: " + report.summary().replace("\n", "; "))
    return PreparedTruth(report.patch)


@lru_cache(maxsize=65536)
def prepare_truth(text: str) -> PreparedTruth:
    """The ground truth of a JSON text (the GRPO ``answer`` column), cached: each answer repeats per generation."""
    report = validate_json(text)
    if not report.valid or report.patch is None:
        raise ValueError("the ground-truth patch is not valid: " + report.summary().replace("\n", "; "))
    return PreparedTruth(report.patch)


_WEIGHTS_CACHE: dict[tuple, tuple[np.ndarray, float, list[tuple[str, Param, float]]]] = {}


def _element_weights(weights: GroupWeights) -> tuple[np.ndarray, float, list[tuple[str, Param, float]]]:
    """Per-element core weights (key weight / key size), the total weight, and the voice terms (checked, cached)."""
    key = (weights.topology, weights.amplitude, weights.frequency, weights.global_,
           tuple(sorted(weights.keys.items())), weights.voice)
    hit = _WEIGHTS_CACHE.get(key)
    if hit is not None:
        return hit
    weights.check()
    key_w = np.array([weights.weight_of(p) for p in CORE_PARAMS])
    voice = [(_vkey(p), p, weights.weight_of(p)) for p in VOICE_PARAMS] if weights.voice else []
    total = float(key_w.sum()) + sum(w for _, _, w in voice)
    out = (np.repeat(key_w / _SIZES, _SIZES), total, voice)
    if len(_WEIGHTS_CACHE) < 256:
        _WEIGHTS_CACHE[key] = out
    return out


# --- the scores -------------------------------------------------------------------------------------


_TOP_PARAMS = {p.key: p for p in ALL_PARAMS if p.parent is None}
_LFO_PARAMS = {p.key: p for p in ALL_PARAMS if p.parent == "lfo"}


def _fast_leaves_ok(value: Any, p: Param) -> bool:
    leaves = _flat(value, p.shape)
    if leaves is None:
        return False
    if p.kind in ("integer", "binary"):
        lo, hi = p.low, p.high
        for x in leaves:
            if type(x) is not int or not lo <= x <= hi:
                return False
        return True
    if p.kind == "boolean":
        return all(type(x) is bool for x in leaves)
    return all(type(x) is str and x in p.choices for x in leaves)


def _fast_valid(m: Mapping) -> bool | None:
    """True when ``m`` is certainly a valid patch (the validator's rules, checked cheaply), None when unsure."""
    if getattr(m, "duplicate_keys", ()):
        return None
    for p in CORE_PARAMS:
        if p.key not in m:
            return None
    for key, value in m.items():
        if type(key) is not str or key not in _TOP_KEYS:
            return None
        if value is None:
            if key in _CORE_SET:
                return None
            continue
        if key == "name":
            if type(value) is not str or len(value) > NAME_MAX_LEN or not all(" " <= c <= "~" for c in value):
                return None
        elif key == "lfo":
            if not isinstance(value, Mapping) or getattr(value, "duplicate_keys", ()):
                return None
            for k, v in value.items():
                lp = _LFO_PARAMS.get(k) if type(k) is str else None
                if lp is None or (v is not None and not _fast_leaves_ok(v, lp)):
                    return None
        elif not _fast_leaves_ok(value, _TOP_PARAMS[key]):
            return None
    return True


def format_score(obj: Any) -> float:
    """1.0 when ``obj`` is a patch that validates strictly, else 0.0 (never raises)."""
    try:
        if obj is None:
            return 0.0
        if isinstance(obj, Patch):
            return 1.0
        if isinstance(obj, Mapping) and _fast_valid(obj):
            return 1.0
        return 1.0 if validate(obj).valid else 0.0
    except Exception:
        return 0.0


def keys_score(obj: Any) -> float:
    """Share of the 12 core keys present in ``obj`` with the right array shape (0.0 for a non-object)."""
    try:
        m = _as_mapping(obj)
        if m is None:
            return 0.0
        ok = sum(1 for p in CORE_PARAMS if p.key in m and _flat(m[p.key], p.shape) is not None)
        return ok / len(CORE_PARAMS)
    except Exception:
        return 0.0


def _core_similarity(v: PatchView, t: PreparedTruth) -> np.ndarray:
    """Per-element similarity in [0, 1] (0 where unreadable)."""
    p = v.values
    with np.errstate(invalid="ignore"):
        sim = np.where(_BINARY, (p == t.values).astype(float), 1.0 - np.abs(p - t.values) / _SPAN)
    sim = np.clip(sim, 0.0, 1.0)
    sim[np.isnan(sim)] = 0.0
    return sim


def _gate_open(v: PatchView, t: PreparedTruth) -> bool:
    g = _GATE
    return bool(np.all(v.is_int[g] & (v.values[g] == t.values[g])))


def _voice_similarity(m: Mapping, p: Param, truth_leaves: list) -> float:
    """Mean similarity of one full-voice key (absent = its neutral default, which is the truth's own default)."""
    if p.parent:
        parent = m.get(p.parent)
        if parent is None:
            value = p.default
        elif isinstance(parent, Mapping):
            value = parent.get(p.key, p.default)
            value = p.default if value is None else value
        else:
            return 0.0
    else:
        value = m.get(p.key, p.default)
        value = p.default if value is None else value
    leaves = _flat(list(value) if isinstance(value, tuple) else value, p.shape)
    if leaves is None:
        return 0.0
    total = 0.0
    for x, tx in zip(leaves, truth_leaves):
        if p.kind in ("boolean", "categorical"):
            total += 1.0 if (type(x) is type(tx) and x == tx) else 0.0
        elif isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
            total += min(1.0, max(0.0, 1.0 - abs(x - tx) / (p.high - p.low)))
    return total / len(truth_leaves)


def view_distance(v: PatchView, t: PreparedTruth, weights: GroupWeights, gated: bool) -> float:
    """``distance_score`` of a prepared prediction and truth."""
    ew, total, voice = _element_weights(weights)
    sim = _core_similarity(v, t)
    if gated and not _gate_open(v, t):
        sim = np.where(_GATE, sim, 0.0)
        voice_open = False
    else:
        voice_open = True
    score = float(np.dot(ew, sim))
    if voice and voice_open and v.mapping is not None:
        for vk, p, w in voice:
            if w > 0:
                score += w * _voice_similarity(v.mapping, p, t.voice[vk])
    return min(1.0, max(0.0, score / total))


def distance_score(pred: Any, truth: Any, weights: GroupWeights | None = None, gated: bool = False) -> float:
    """Weighted parameter similarity of ``pred`` to ``truth`` in [0, 1] (0.0 for anything unreadable)."""
    t = as_truth(truth)  # a bad truth is the caller's error: it raises ValueError with the problems
    try:
        return view_distance(PatchView(pred), t, weights or DEFAULT_WEIGHTS, gated)
    except ValueError:
        raise
    except Exception:
        return 0.0


def _name_counts(value: Any, shape: tuple[int, ...], truth: np.ndarray, at: int,
                 budget: list[int]) -> tuple[int, int, int]:
    """(names the truth also has, names it lacks, values equal to the truth's) of one core key's value,
    flattened by its actual structure; ``truth`` holds the key's true values row-major from index ``at``."""
    budget[0] -= 1
    if budget[0] <= 0:
        return 0, 0, 0
    if isinstance(value, Mapping):
        return 0, 1, 0
    if not isinstance(value, (list, tuple)):
        if shape:
            return 0, 1, 0
        return 1, 0, int(type(value) is int and -_BIG < value < _BIG and value == float(truth[at]))
    if not shape:  # an array where a number belongs: every leaf inside is a name the truth lacks
        extra = 0
        for item in value:
            _, e, _ = _name_counts(item, (), truth, at, budget)
            extra += max(e, 1)
            if budget[0] <= 0:
                break
        return 0, extra, 0
    stride = 1
    for n in shape[1:]:
        stride *= n
    matched = extra = exact = 0
    for i, item in enumerate(value):
        if budget[0] <= 0:
            break
        if i < shape[0]:
            m, e, x = _name_counts(item, shape[1:], truth, at + i * stride, budget)
            matched, extra, exact = matched + m, extra + e, exact + x
        else:
            m, e, _ = _name_counts(item, shape[1:], truth, at, budget)
            extra += m + e
    return matched, extra, exact


def view_toolrl(v: PatchView, t: PreparedTruth, gated: bool) -> float:
    """``toolrl_exact_score`` of a prepared prediction and truth."""
    m = v.mapping
    if m is None:
        return TOOLRL_MIN
    exact = v.is_int & (v.values == t.values)
    gate_open = bool(np.all(exact[_GATE]))
    matched = extra = partial_exact = 0
    budget = [MAX_NAMES]
    for k, p in enumerate(CORE_PARAMS):
        if p.key not in m:
            continue
        if v.key_ok[k]:
            matched += p.size
            budget[0] -= p.size
        else:
            a, b, x = _name_counts(m[p.key], p.shape, t.values, int(_OFFSETS[k]), budget)
            matched, extra = matched + a, extra + b
            if gate_open or not gated:  # (a wrong-shaped gate key closes the gate)
                partial_exact += x
    extra += sum(1 for key in m if not (isinstance(key, str) and key in _TOP_KEYS))
    r_param = matched / (N_CORE + extra)
    if gated and not gate_open:
        exact = exact & _GATE
    r_value = int(np.count_nonzero(exact)) + partial_exact
    score = 1.0 + r_param + r_value
    out = (TOOLRL_MAX - TOOLRL_MIN) * score / TOOLRL_S_MAX + TOOLRL_MIN
    return min(TOOLRL_MAX, max(TOOLRL_MIN, out))


def toolrl_exact_score(pred: Any, truth: Any, gated: bool = False) -> float:
    """ToolRL's R_correct in [-3, 3] with exact value matching (-3.0 when nothing readable was predicted)."""
    t = as_truth(truth)
    try:
        return view_toolrl(PatchView(pred), t, gated)
    except Exception:
        return TOOLRL_MIN


def score_patch(pred: Any, truth: Any, weights: GroupWeights | None = None) -> PatchScores:
    """Every score of ``pred`` (a parsed object, a ``Patch`` or None) against ``truth``."""
    t = as_truth(truth)
    w = weights or DEFAULT_WEIGHTS
    try:
        v = PatchView(pred)
        return PatchScores(format=format_score(pred), keys=keys_score(pred),
                           distance=view_distance(v, t, w, False), distance_gated=view_distance(v, t, w, True),
                           toolrl_exact=view_toolrl(v, t, False), toolrl_exact_gated=view_toolrl(v, t, True))
    except Exception:
        return PatchScores(format=0.0, keys=0.0, distance=0.0, distance_gated=0.0,
                           toolrl_exact=TOOLRL_MIN, toolrl_exact_gated=TOOLRL_MIN)


def truth_json(truth: Any) -> str:
    """The canonical JSON text of a ground-truth patch (the GRPO ``answer`` column)."""
    from ..schema.compact import dumps_compact

    return dumps_compact(as_truth(truth).patch)


__all__ = ["GroupWeights", "DEFAULT_WEIGHTS", "PatchScores", "PreparedTruth", "PatchView", "view_distance",
           "view_toolrl", "GATE_KEYS", "format_score",
           "keys_score", "distance_score", "toolrl_exact_score", "score_patch", "as_truth", "prepare_truth",
           "truth_json"]
