"""Operator evidence: what each operator contributes, heard by muting (OFF) or isolating (ON) it.

The source research's rules (``reference/llm_tools.md`` §1.1):

- ``OPk_OFF`` (ablation): OPk's audio output and every modulation output are removed, its feedback
  too, and its level and velocity sensitivity are zeroed; no new connection is made.
- ``OPk_ON`` (isolation): keep OPk and everything downstream of it along modulation edges, with the
  carriers among them; every other operator and connection is removed. When nothing downstream is a
  carrier the variant is silent and its segment is skipped (and the map says so).

The clip is FULL first, then one fixed-length segment per chosen operator (optionally shuffled with
a seed); every variant of a patch is rendered in one batch call across cores.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..schema.patch import Patch
from .render import as_patch, check_request, render_voices, to_float
from .voice import EngineVoice, engine_voice

Mode = Literal["off", "on"]


class Segment(BaseModel):
    """One segment of an evidence clip: where it is and what it holds."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(description="FULL, or OPk_OFF / OPk_ON")
    operator: int | None = Field(None, description="the operator (1..6) this segment mutes or isolates; None for FULL")
    role: str | None = Field(None, description="carrier, modulator, or carrier and modulator")
    modulates: list[int] = Field(default_factory=list, description="operators (1..6) this one modulates (itself = feedback)")
    start_s: float | None = Field(None, description="segment start in the clip, seconds (None when skipped)")
    end_s: float | None = Field(None, description="segment end in the clip, seconds (None when skipped)")
    skipped: bool = False
    reason: str | None = Field(None, description="why the segment was skipped")


class EvidenceClip(BaseModel):
    """The concatenated evidence audio (kept out of JSON) and its segment map."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    mode: Mode
    sample_rate: int
    segment_s: float
    note: int
    sounding_note: int = Field(description="the played note moved by the patch's transpose: the pitch you hear")
    velocity: int
    hold_s: float
    segments: list[Segment]
    audio: np.ndarray = Field(exclude=True, repr=False)
    variants: dict[str, np.ndarray] = Field(default_factory=dict, exclude=True, repr=False)

    def segment_audio(self, label: str) -> np.ndarray:
        """The audio of one rendered segment."""
        for s in self.segments:
            if s.label == label and not s.skipped:
                a = int(round(s.start_s * self.sample_rate))
                return self.audio[a:a + int(round(self.segment_s * self.sample_rate))]
        raise KeyError(f"no rendered segment labelled {label!r}")


def modulation_targets(patch: Patch, op: int) -> list[int]:
    """0-based operators that ``op`` (0-based) modulates, itself included when it feeds back."""
    return [t for t in range(6) if patch.modmatrix[t][op]]


def role_of(patch: Patch, op: int) -> str | None:
    """'carrier', 'modulator', 'carrier and modulator', or None for an operator that does neither."""
    carrier = bool(patch.outmatrix[op])
    modulator = any(t != op for t in modulation_targets(patch, op))
    if carrier and modulator:
        return "carrier and modulator"
    return "carrier" if carrier else ("modulator" if modulator else None)


def default_operators(patch: Patch) -> list[int]:
    """1-based operators that are carriers or modulate another operator (the default evidence set)."""
    return [op + 1 for op in range(6) if role_of(patch, op) is not None]


def downstream(patch: Patch, op: int) -> set[int]:
    """``op`` and every operator it reaches along modulation edges (0-based)."""
    seen, todo = {op}, [op]
    while todo:
        s = todo.pop()
        for t in modulation_targets(patch, s):
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def ablate(patch: Patch, op: int) -> Patch:
    """OPk_OFF: the patch with operator ``op`` (0-based) silenced and disconnected."""
    p = patch.model_copy(deep=True)
    p.outmatrix[op] = 0
    for t in range(6):
        p.modmatrix[t][op] = 0
    p.ol[op] = 0
    p.sensitivity[op] = 0
    return p


def isolate(patch: Patch, op: int) -> Patch | None:
    """OPk_ON: operator ``op`` (0-based) and its downstream closure alone; None if no carrier remains."""
    keep = downstream(patch, op)
    if not any(patch.outmatrix[c] for c in keep):
        return None
    p = patch.model_copy(deep=True)
    for i in range(6):
        for j in range(6):
            if i not in keep or j not in keep:
                p.modmatrix[i][j] = 0
        if i not in keep:
            p.outmatrix[i] = 0
            p.ol[i] = 0
            p.sensitivity[i] = 0
    return p


def evidence_variants(patch: Patch, mode: Mode, operators: list[int]) -> list[tuple[int, Patch | None]]:
    """(1-based operator, variant patch or None when skipped) for each chosen operator."""
    make = ablate if mode == "off" else isolate
    return [(k, make(patch, k - 1)) for k in operators]


def check_operators(operators: Any) -> list[int]:
    """Validate a list of 1-based operator numbers (no duplicates)."""
    if not isinstance(operators, (list, tuple)) or not operators:
        raise ValueError(f"operators: found {operators!r}, allowed a non-empty list of operator numbers 1..6")
    out = []
    for i, k in enumerate(operators):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= int(k) <= 6:
            raise ValueError(f"operators/{i}: found {k!r}, allowed integer 1..6")
        if int(k) in out:
            raise ValueError(f"operators/{i}: operator {k} is listed twice")
        out.append(int(k))
    return out


def render_evidence(patch: Patch | dict[str, Any], mode: Mode = "off", operators: list[int] | None = None,
                    segment_s: float = 4.0, shuffle: bool = False, seed: int = 0, note: int = 60,
                    velocity: int = 100, hold_s: float = 3.0, sample_rate: int = 48000,
                    workers: int | None = None) -> EvidenceClip:
    """Render FULL then one segment per operator (muted or isolated) as one clip with its segment map."""
    p = as_patch(patch)
    if mode not in ("off", "on"):
        raise ValueError(f"mode: found {mode!r}, allowed \"off\" or \"on\"")
    if isinstance(segment_s, bool) or not isinstance(segment_s, (int, float)) or not 0.1 <= float(segment_s) <= 30.0:
        raise ValueError(f"segment_s: found {segment_s!r}, allowed a number of seconds 0.1..30")
    segment_s = float(segment_s)
    hold = min(float(hold_s), segment_s) if isinstance(hold_s, (int, float)) and not isinstance(hold_s, bool) else hold_s
    note, velocity, hold, release, sr = check_request(note, velocity, hold, segment_s - hold
                                                      if isinstance(hold, float) else 0.0, sample_rate)
    ops = check_operators(operators) if operators is not None else default_operators(p)
    variants = evidence_variants(p, mode, ops)
    if shuffle:
        random.Random(seed).shuffle(variants)
    base = engine_voice(p)
    rendered = [(k, v) for k, v in variants if v is not None]
    voices = [variant_voice(base, v) for _, v in rendered]
    if mode == "off":
        # An ablated operator changes only what lies downstream of it: every other operator's output
        # is copied from FULL's capture (exact, in integer engine units) instead of computed again.
        (full_audio, full_ops), = render_voices([base], note, velocity, hold, release, sr, 1, capture=True)
        masks = [_reuse_mask(p, base.topo, k - 1) for k, _ in rendered]
        results = render_voices(voices, note, velocity, hold, release, sr, workers, reuse=masks, given=full_ops)
    else:
        # Isolated variants keep few operators and share nothing with FULL: all render at once.
        (full_audio, _), *results = render_voices([base] + voices, note, velocity, hold, release, sr, workers)
    n = int(round(segment_s * sr))
    fit = lambda a: a[:n] if len(a) >= n else np.pad(a, (0, n - len(a)))  # noqa: E731
    by_op = {k: fit(a) for (k, _), (a, _) in zip(rendered, results)}
    audio = [fit(full_audio)]
    suffix = "OFF" if mode == "off" else "ON"
    segments = [Segment(label="FULL", start_s=0.0, end_s=segment_s)]
    clips = {"FULL": audio[0]}
    pieces = [audio[0]]
    for k, v in variants:
        label = f"OP{k}_{suffix}"
        seg = Segment(label=label, operator=k, role=role_of(p, k - 1),
                      modulates=[t + 1 for t in modulation_targets(p, k - 1)])
        if v is None:
            seg.skipped = True
            seg.reason = f"OP{k} reaches no carrier: isolated, it is silent"
        else:
            start = len(pieces) * segment_s
            seg.start_s, seg.end_s = start, start + segment_s
            pieces.append(by_op[k])
            clips[label] = by_op[k]
        segments.append(seg)
    return EvidenceClip(mode=mode, sample_rate=sr, segment_s=segment_s, note=note, sounding_note=note + p.transpose,
                        velocity=velocity, hold_s=hold,
                        segments=segments, audio=np.concatenate(pieces).astype(np.float32), variants=clips)



def variant_voice(base: EngineVoice, variant: Patch) -> EngineVoice:
    """The engine arrays of a variant, keeping its parent's feedback scaling: muting an operator of an
    algorithm-32 voice must not change how strongly OP6 feeds back (Mark I scales that one 4x weaker)."""
    v = engine_voice(variant)
    topo = v.topo.copy()
    topo[0:2] = base.topo[0:2]
    return EngineVoice(v.ops, v.glob, v.mod, v.outm, topo)


def render_variant(patch: Patch | dict[str, Any], mode: Mode, operator: int, note: int = 60, velocity: int = 100,
                   hold_s: float = 3.0, release_s: float = 1.0, sample_rate: int = 48000) -> np.ndarray | None:
    """One evidence variant (OPk muted or isolated, ``operator`` 1..6) rendered on its own; None if skipped."""
    p = as_patch(patch)
    k = check_operators([operator])[0]
    note, velocity, hold, release, sr = check_request(note, velocity, hold_s, release_s, sample_rate)
    variant = ablate(p, k - 1) if mode == "off" else isolate(p, k - 1)
    if variant is None:
        return None
    (audio, _), = render_voices([variant_voice(engine_voice(p), variant)], note, velocity, hold, release, sr, 1)
    return audio


def _reuse_mask(patch: Patch, topo: np.ndarray, op: int) -> np.ndarray:
    """1 for each operator (0-based) whose output ablating ``op`` cannot change."""
    affected = downstream(patch, op)
    lo, hi = int(topo[2]), int(topo[3])
    if lo >= 0 and any(lo <= a <= hi for a in affected):
        affected |= set(range(lo, hi + 1))  # a feedback loop is rendered, or copied, as a whole
    return np.array([0 if o in affected else 1 for o in range(6)], dtype=np.int64)
