"""Refinement examples from semantic edits: (patch, instruction, edited patch, descriptor change).

Each example applies one ``synth.edits.adjust`` step ("shorter decay", "a bit brighter") to a patch and
measures what it did to the sound with ``evals.descriptors`` (one note, rendered as the MCP server's
``render_patch`` does by default). An edit that changes nothing, or whose headline descriptor does not move
audibly the way the words say (``evals.edit_direction.direction``, the judge of every edit check), is not
used: the example is drawn again, and what was discarded is counted.
Everything is deterministic for a given seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..evals.edit_direction import AUDIBLE, direction
from ..schema.audio import AudioDescriptors
from ..schema.patch import Patch
from ..schema.tools import RenderPatchInput
from ..schema.validate import parse_patch
from ..synth.edits import QUALITIES, adjust

# One note rendered as the MCP server's render_patch does by default (its input model's defaults).
_DEFAULTS = RenderPatchInput.model_fields
RENDER: dict[str, Any] = {"note": _DEFAULTS["notes"].default[0],
                          **{k: _DEFAULTS[k].default for k in ("velocity", "hold_s", "release_s", "sample_rate")}}

# Words for each (quality, direction); the amount's size adds "a bit" (1) or "much" (3).
PHRASES: dict[tuple[str, int], tuple[str, ...]] = {
    ("brightness", 1): ("brighter", "more brilliant", "more treble"),
    ("brightness", -1): ("darker", "less bright", "mellower"),
    ("attack", 1): ("slower attack", "softer attack", "more gradual attack"),
    ("attack", -1): ("faster attack", "sharper attack", "snappier attack"),
    ("decay", 1): ("longer decay", "slower decay", "ring longer"),
    ("decay", -1): ("shorter decay", "faster decay", "die away sooner"),
    ("release", 1): ("longer release", "longer tail after key-up"),
    ("release", -1): ("shorter release", "stop sooner after key-up"),
    ("sustain", 1): ("more sustain", "higher sustain level"),
    ("sustain", -1): ("less sustain", "lower sustain level"),
    ("metallic", 1): ("more metallic", "more bell-like", "more clangorous"),
    ("metallic", -1): ("less metallic", "more harmonic", "less clangorous"),
    ("vibrato", 1): ("more vibrato", "add vibrato"),
    ("vibrato", -1): ("less vibrato", "steadier pitch"),
    ("detune", 1): ("more detuned", "more chorus", "more beating"),
    ("detune", -1): ("less detuned", "less chorus", "cleaner, less beating"),
    ("level", 1): ("louder", "more level"),
    ("level", -1): ("quieter", "softer level"),
}
_SIZE_WORD = {1: ("a bit ", "slightly "), 2: ("",), 3: ("much ", "a lot ")}
# The descriptor that must move for each quality (evals.edit_direction's), and which way is "more": up for all.
HEADLINE: dict[str, tuple[str, int]] = {q: (step.descriptor, 1) for q, step in AUDIBLE.items()}
AMOUNTS: tuple[int, ...] = (-2, -1, 1, 2)


class RefinementExample(BaseModel):
    """One semantic edit: the patch before, the words, the patch after, and how the sound moved."""

    model_config = ConfigDict(extra="forbid")

    patch: dict[str, Any] = Field(description="the patch before the edit (canonical short dict)")
    instruction: str
    quality: str
    amount: int
    edited: dict[str, Any] = Field(description="the patch after the edit")
    changes: list[dict[str, Any]] = Field(description="every changed leaf: path, old, new")
    notes: list[str] = Field(default_factory=list, description="what adjust did, in words")
    descriptor_change: dict[str, float] = Field(
        description="after minus before, for every numeric descriptor defined in both renders")
    headline: str = Field(description="the descriptor that moved the way the instruction says")


class RefinementStats(BaseModel):
    """What building refinement examples tried and discarded."""

    requested: int = 0
    made: int = 0
    tries: int = 0
    no_change: int = 0
    wrong_direction: int = 0
    failed: int = 0


def instruction_text(quality: str, amount: int, rng: random.Random) -> str:
    """Words asking for ``amount`` (-3..3, not 0) of ``quality``, e.g. "a bit shorter decay"."""
    if quality not in QUALITIES or not amount or abs(amount) > 3:
        raise ValueError(f"quality {quality!r} / amount {amount!r}: allowed one of {', '.join(QUALITIES)} "
                         "and a non-zero integer -3..3")
    phrase = rng.choice(PHRASES[(quality, 1 if amount > 0 else -1)])
    return rng.choice(_SIZE_WORD[abs(amount)]) + phrase


def _descriptors(patch: Patch) -> AudioDescriptors:
    from ..evals.descriptors import render_and_describe

    return render_and_describe(patch, **RENDER)[1]


def descriptor_change(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """after - before for every numeric descriptor defined (not None) in both."""
    out = {}
    for k, a in after.items():
        b = before.get(k)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
                and not isinstance(b, bool):
            out[k] = round(float(a) - float(b), 4)
    return out


def make_refinement(patch: Patch | dict[str, Any], rng: random.Random, *, qualities: Sequence[str] = QUALITIES,
                    amounts: Sequence[int] = AMOUNTS, max_tries: int = 6,
                    stats: RefinementStats | None = None) -> RefinementExample | None:
    """One refinement example of ``patch`` (a random quality and amount that moves the sound), or None."""
    p = patch if isinstance(patch, Patch) else parse_patch(patch)
    stats = stats if stats is not None else RefinementStats()
    before: AudioDescriptors | None = None
    for _ in range(max_tries):
        quality, amount = rng.choice(list(qualities)), rng.choice(list(amounts))
        stats.tries += 1
        try:
            result = adjust(p, quality, amount)
        except ValueError:
            stats.failed += 1
            continue
        if not result.changes:
            stats.no_change += 1
            continue
        if before is None:
            before = _descriptors(p)
        after = _descriptors(result.patch)
        # The judge every other edit check uses (designer, eval-refine): an audible move the asked way.
        if direction(quality, before, after) != (1 if amount > 0 else -1):
            stats.wrong_direction += 1
            continue
        return RefinementExample(
            patch=p.to_dict(full=False), instruction=instruction_text(quality, amount, rng), quality=quality,
            amount=amount, edited=result.patch.to_dict(full=False),
            changes=[c.model_dump() for c in result.changes], notes=list(result.notes),
            descriptor_change=descriptor_change(before.model_dump(), after.model_dump()), headline=HEADLINE[quality][0])
    return None


def refinement_examples(patches: Sequence[Patch | dict[str, Any]], n: int, seed: int = 0, *,
                        stats: RefinementStats | None = None) -> list[RefinementExample]:
    """``n`` refinement examples drawn from ``patches`` (seeded; a patch may serve more than once)."""
    if n < 0:
        raise ValueError(f"n: found {n}, allowed an integer >= 0")
    stats = stats if stats is not None else RefinementStats()
    stats.requested += n
    if n == 0 or not patches:
        return []
    rng = random.Random(seed)
    out: list[RefinementExample] = []
    attempts = 0
    while len(out) < n and attempts < 4 * n + 10:
        attempts += 1
        ex = make_refinement(patches[rng.randrange(len(patches))], rng, stats=stats)
        if ex is not None:
            out.append(ex)
    stats.made += len(out)
    return out
