"""Modifier phrases in a request ("soft attack", "a bit brighter", "no vibrato") -> semantic edit steps.

``parse_modifiers(text)`` finds the words that ask for a quality of the sound and returns one
``Modifier`` per quality: the quality (one of ``synth.edits.QUALITIES``), a signed amount (-3..3,
positive = more: brighter, a longer/softer attack, a longer decay or release, more sustain, metal,
vibrato, detune or level) and the words it came from. ``ParsedModifiers.steps()`` turns them into the
``{"op": "adjust", ...}`` steps that ``synth.edits.apply_edits`` (and the ``edit_patch`` tool) take.

Two kinds of modifier, because a request mixes both:

* **absolute** ("bright", "soft attack", "long release", "no vibrato"): a target the sound should
  meet. ``satisfied`` checks a target against a render's descriptors, so the designer edits a library
  match only when it does not already meet it;
* **relative** ("brighter", "more vibrato", "less metallic", "too bright", "shorten the decay"):
  a change from wherever the sound is now; always applied.

Amounts: one step by default; "a bit"/"slightly" 1, "much"/"quite"/"a lot" 2, "very"/"extremely"/
"really" 3; a few words are strong by themselves ("slow attack", "dark", "no vibrato"). Negations
("no", "not", "without", "non-", "less", "too") flip the direction. The parser is a small hand-written
lexicon, deterministic and dependency-free; a word it does not know is simply not a modifier.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..evals.edit_direction import AUDIBLE, QUALITIES, direction, measure
from ..schema.audio import AudioDescriptors
from .tag_thresholds import (BRIGHT_RATIO, DARK_BRIGHTNESS, DARK_CENTROID_HZ, DARK_RATIO, DETUNED_BEATING,
                             FAST_ATTACK_MS, INHARMONIC, LONG_DECAY_MS, LONG_RELEASE_MS, NOISY,
                             PERCUSSIVE_DECAY_MS, SHORT_RELEASE_MS, SLOW_ATTACK_MS, SUSTAINED_DB,
                             VERY_BRIGHT_RATIO, VIBRATO_CENTS)

# AUDIBLE, measure and direction (did a quality change audibly between two renders, and which way) live
# in evals.edit_direction, shared with eval-refine; they stay importable from here (the modifier tests use them).
__all__ = ["AUDIBLE", "MAX_AMOUNT", "QUALITIES", "Modifier", "ParsedModifiers", "agreement", "direction", "measure",
           "modifier_steps", "parse_modifiers", "satisfied"]

MAX_AMOUNT = 3


class Modifier(BaseModel):
    """One requested quality: which, how much (signed, -3..3), absolute target or relative change, the words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quality: str
    amount: int = Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)
    relative: bool = False  # "brighter" (change it) rather than "bright" (it should be)
    words: str  # the words of the request this came from, as written

    def step(self) -> dict[str, Any]:
        """The ``adjust`` edit step for this modifier."""
        return {"op": "adjust", "quality": self.quality, "amount": self.amount}


class ParsedModifiers(BaseModel):
    """The modifiers found in a text and the text with their words taken out (what is left to retrieve on)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    modifiers: tuple[Modifier, ...] = ()
    rest: str = ""  # the text without the modifier words: mostly the instrument and its character
    base: str = ""  # the text without the words of relative modifiers: what the sound should be, not how to change it

    @property
    def words(self) -> list[str]:
        """The phrases that became modifiers, in order."""
        return [m.words for m in self.modifiers]

    def steps(self) -> list[dict[str, Any]]:
        """The ``adjust`` edit steps, one per modifier, in order of the text."""
        return [m.step() for m in self.modifiers]


# --- lexicon -----------------------------------------------------------------------------------------
# Each adjective maps to (sign, base amount). The sign is "more of the quality": for the attack, more
# means longer/softer (as in synth.edits), so "soft" is +1 and "hard" is -1.

_ATTACK = {
    **dict.fromkeys(("soft", "softer", "gentle", "gentler", "smooth", "smoother", "rounded", "round", "mellow",
                     "long", "longer", "lazy", "delayed", "padded", "breathy", "bowed", "light", "lighter",
                     "subtle", "muted", "easy", "loose"), (1, 1)),
    **dict.fromkeys(("slow", "slower", "gradual", "swelling", "swell", "slowly", "fading", "fade"), (1, 2)),
    **dict.fromkeys(("hard", "harder", "sharp", "sharper", "fast", "faster", "quick", "quicker", "punchy", "punchier",
                     "snappy", "snappier", "percussive", "crisp", "crisper", "short", "shorter", "abrupt", "rapid",
                     "clicky", "aggressive", "strong", "stronger", "tight", "tighter", "plucky", "pronounced",
                     "firm", "defined", "biting", "hammered", "struck", "spiky", "swift", "swifter", "distinct"),
                    (-1, 1)),
    **dict.fromkeys(("instant", "instantaneous", "immediate", "sudden", "explosive"), (-1, 2)),
}
_LENGTH = {  # decay and release
    **dict.fromkeys(("long", "longer", "lengthy", "extended", "slow", "slower", "lingering", "gradual", "gentle",
                     "gentler", "smooth", "smoother", "lazy", "leisurely", "ringing", "resonant", "singing",
                     "sustained", "natural", "soft", "softer", "graceful", "prolonged", "lasting", "decaying",
                     "evolving", "spacious", "fading", "trailing", "lush", "big", "bigger", "wide", "ambient",
                     "reverberant", "airy", "ethereal", "slowly", "longish"), (1, 1)),
    **dict.fromkeys(("endless", "infinite", "everlasting", "very-long"), (1, 2)),
    **dict.fromkeys(("short", "shorter", "quick", "quicker", "fast", "faster", "rapid", "abrupt", "brief", "briefer",
                     "tight", "tighter", "sharp", "sharper", "snappy", "snappier", "immediate", "instant", "sudden",
                     "dry", "drier", "clipped", "percussive", "swift", "swifter", "punchy", "punchier", "staccato",
                     "damped", "muted", "choked", "crisp", "crisper", "hard", "harder", "small", "smaller",
                     "steep", "steeper", "quickly", "rapidly"), (-1, 1)),
}
_SUSTAIN = {
    **dict.fromkeys(("long", "longer", "full", "fuller", "strong", "stronger", "steady", "constant", "held", "high",
                     "higher", "big", "bigger", "sustained", "lasting", "continuous", "smooth", "singing", "warm",
                     "rich", "even", "stable", "consistent", "solid", "sustaining", "more", "lingering", "extended",
                     "gentle", "lush", "prolonged", "resonant", "flat"), (1, 1)),
    **dict.fromkeys(("infinite", "endless"), (1, 2)),
    **dict.fromkeys(("short", "shorter", "weak", "weaker", "low", "lower", "little", "brief", "minimal", "quick",
                     "small", "smaller", "limited", "moderate-short"), (-1, 1)),
}
_STAGES: dict[str, tuple[str, dict[str, tuple[int, int]]]] = {
    "attack": ("attack", _ATTACK), "attacks": ("attack", _ATTACK), "onset": ("attack", _ATTACK),
    "onsets": ("attack", _ATTACK), "transient": ("attack", _ATTACK), "transients": ("attack", _ATTACK),
    "decay": ("decay", _LENGTH), "decays": ("decay", _LENGTH), "ring": ("decay", _LENGTH),
    "release": ("release", _LENGTH), "releases": ("release", _LENGTH), "tail": ("release", _LENGTH),
    "tails": ("release", _LENGTH), "sustain": ("sustain", _SUSTAIN),
}
# Words that are neither a direction nor a reason to stop looking for one ("a moderate decay").
_NEUTRAL_STAGE = {"moderate", "medium", "moderately", "relatively", "fairly", "rather", "somewhat", "pretty", "a",
                  "an", "the", "its", "their", "his", "her", "with", "and", "yet", "but", "nice", "nicely", "overall",
                  "initial", "final", "envelope", "amplitude", "volume", "note", "notes", "of", "in", "on", "at",
                  "noticeable", "audible", "characteristic", "typical", "distinctive"}

# Standalone words: word -> (quality, sign, base amount, relative).
_BARE: dict[str, tuple[str, int, int, bool]] = {
    **{w: ("brightness", 1, 1, False) for w in ("bright", "brilliant", "crisp", "harsh", "shiny", "sparkly",
                                                "sparkling", "bite", "biting", "cutting", "piercing", "sizzling",
                                                "glittering", "edgy", "buzzy", "raspy", "nasal", "twangy")},
    **{w: ("brightness", 1, 1, True) for w in ("brighter", "crisper", "harsher", "shinier", "edgier", "buzzier",
                                               "brighten", "brightened", "sharpen")},
    **{w: ("brightness", -1, 2, False) for w in ("dark", "muffled", "dull")},
    **{w: ("brightness", -1, 1, False) for w in ("mellow", "warm", "round", "rounded", "soft-toned", "velvety")},
    **{w: ("brightness", -1, 1, True) for w in ("darker", "mellower", "warmer", "duller", "softer", "rounder",
                                                "darken", "darkened", "soften", "smoother")},
    **{w: ("metallic", 1, 1, False) for w in ("metallic", "metal", "clangy", "clanging", "clangorous", "clang",
                                              "inharmonic", "clanky", "tinny", "gong-like", "metal-like")},
    **{w: ("metallic", 1, 1, True) for w in ("clangier",)},
    **{w: ("metallic", -1, 1, False) for w in ("pure", "harmonic")},
    **{w: ("metallic", -1, 1, True) for w in ("purer",)},
    **{w: ("vibrato", 1, 1, False) for w in ("vibrato", "wobble", "wobbly", "wobbling", "vibrating", "warbling",
                                             "warble")},
    **{w: ("detune", 1, 1, False) for w in ("detuned", "detune", "detuning", "chorus", "chorused", "chorusing",
                                            "chorus-like", "beating", "shimmering", "shimmer", "out-of-tune",
                                            "phasing", "ensemble-like")},
    **{w: ("detune", 1, 1, True) for w in ("fatter", "thicker", "wider", "lusher")},
    **{w: ("level", 1, 1, False) for w in ("loud",)},
    **{w: ("level", 1, 1, True) for w in ("louder", "boost")},
    **{w: ("level", -1, 1, False) for w in ("quiet",)},
    **{w: ("level", -1, 1, True) for w in ("quieter",)},
    **{w: ("sustain", 1, 1, False) for w in ("sustained", "sustaining", "held", "droning", "drone-like")},
    **{w: ("decay", -1, 1, False) for w in ("percussive", "plucky", "plucked-like")},
    **{w: ("decay", -1, 2, False) for w in ("staccato",)},
    **{w: ("decay", 1, 1, False) for w in ("ringing", "lingering")},
    **{w: ("attack", -1, 1, False) for w in ("punchy", "snappy", "clicky")},
    **{w: ("attack", -1, 1, True) for w in ("punchier", "snappier", "clickier")},
    **{w: ("attack", 1, 2, False) for w in ("swelling", "swell", "swells", "swelled")},
}
# Nouns that take "more"/"less"/"add"/"no": noun -> (quality, sign of "more").
_NOUNS: dict[str, tuple[str, int]] = {
    "brightness": ("brightness", 1), "sparkle": ("brightness", 1), "shine": ("brightness", 1),
    "air": ("brightness", 1), "treble": ("brightness", 1), "edge": ("brightness", 1), "presence": ("brightness", 1),
    "warmth": ("brightness", -1), "darkness": ("brightness", -1),
    "punch": ("attack", -1), "click": ("attack", -1), "snap": ("attack", -1),
    "metal": ("metallic", 1), "clang": ("metallic", 1), "inharmonicity": ("metallic", 1),
    "vibrato": ("vibrato", 1), "wobble": ("vibrato", 1),
    "detune": ("detune", 1), "detuning": ("detune", 1), "chorus": ("detune", 1), "beating": ("detune", 1),
    "shimmer": ("detune", 1),
    "volume": ("level", 1), "level": ("level", 1), "gain": ("level", 1), "loudness": ("level", 1),
}
_INTENSITY = {
    **dict.fromkeys(("bit", "little", "slightly", "touch", "tad", "somewhat", "mildly", "subtly", "marginally",
                     "slight", "gentle", "light", "lightly", "hint"), 1),
    **dict.fromkeys(("much", "lot", "lots", "quite", "considerably", "significantly", "noticeably", "far",
                     "deep", "deeper", "wide", "wider", "heavy", "heavier", "strong", "stronger", "plenty",
                     "more-and-more", "clearly", "pronounced"), 2),
    **dict.fromkeys(("very", "extremely", "really", "super", "way", "hugely", "massively", "heavily", "totally",
                     "highly", "ultra", "incredibly", "exceptionally", "intensely", "insanely", "seriously",
                     "drastically", "dramatically", "enormously", "tremendously", "immensely"), 3),
}
_ARTICLED = {"bit", "little", "lot", "touch", "tad", "hint"}
_NEGATIONS = {"no", "not", "without", "non", "zero", "never", "lacking", "minus", "nothing"}
_MORE = {"more", "added", "extra", "increase", "increased", "add", "adding", "boost", "bigger", "higher", "greater"}
_LESS = {"less", "fewer", "reduce", "reduced", "decrease", "decreased", "lower", "smaller"}
_REMOVE = {"remove", "kill", "drop", "lose", "cut", "eliminate"}
_VERBS = {  # verb -> (sign on the stage that follows, base); "shorten the decay", "soften the attack"
    "shorten": (-1, 1), "tighten": (-1, 1), "lengthen": (1, 1), "extend": (1, 1), "prolong": (1, 1),
    "soften": (1, 1), "slow": (1, 1), "sharpen": (-1, 1), "quicken": (-1, 1), "speed": (-1, 1), "harden": (-1, 1),
}
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[,;.!?:()/]")
_BREAK = {",", ";", ".", "!", "?", ":", "(", ")", "/", "but", "while", "then", "whereas", "though", "although"}


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """Lower-case word tokens with their character spans; hyphens split words ("non-percussive")."""
    low = text.lower().replace("\u2019", "'")
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(low)]


class _Found:
    """One modifier while parsing: the tokens it used, so overlapping words are not counted twice."""

    def __init__(self, quality: str, sign: int, base: int, relative: bool, used: list[int], staged: bool):
        self.quality, self.sign, self.base, self.relative, self.used, self.staged = \
            quality, sign, base, relative, sorted(set(used)), staged
        self.intensity: int | None = None


def _scan_modifiers_back(toks: list[str], i: int, stop: int, used: list[int]) -> tuple[int | None, int, bool, bool]:
    """Look left of token ``i`` (not before ``stop``) for intensifiers, negation, "more"/"less"/"too".

    Returns (intensity or None, sign factor, relative?, removal?) and appends the tokens it read to ``used``.
    """
    intensity: int | None = None
    sign, relative, removal = 1, False, False
    j = i - 1
    while j >= stop and i - j <= 4:
        w = toks[j]
        if w in _BREAK or w == "and":
            break
        if w in _INTENSITY:
            intensity = max(intensity or 0, _INTENSITY[w])
            used.append(j)
            if w in _ARTICLED and j - 1 >= stop and toks[j - 1] == "a":
                j -= 1  # "a bit", "a little", "a lot": the article belongs to the intensifier
                used.append(j)
        elif w in _NEGATIONS:
            sign = -sign
            used.append(j)
        elif w in _LESS:
            sign, relative = -sign, True
            used.append(j)
        elif w in _MORE:
            relative = True
            used.append(j)
        elif w == "too":
            sign, relative = -sign, True
            used.append(j)
        elif w in _REMOVE:
            removal = True
            used.append(j)
        elif w == "way":  # "way brighter"
            intensity = max(intensity or 0, 3)
            used.append(j)
        elif w in ("a", "an", "the", "any", "some", "of", "it", "its", "make", "so"):
            pass
        else:
            break
        j -= 1
    return intensity, sign, relative, removal


def _clamp(x: int) -> int:
    return max(-MAX_AMOUNT, min(MAX_AMOUNT, x))


_PHRASES: tuple[tuple[tuple[str, ...], str, int, int, bool], ...] = (
    # words -> quality, sign, base amount, relative
    (("non", "percussive"), "sustain", 1, 1, False), (("fade", "in"), "attack", 1, 2, False),
    (("fades", "in"), "attack", 1, 2, False), (("fading", "in"), "attack", 1, 2, False),
    (("swells", "in"), "attack", 1, 2, False), (("fade", "out"), "release", 1, 1, False),
    (("fades", "out"), "release", 1, 1, False), (("out", "of", "tune"), "detune", 1, 1, False),
    (("ring", "out"), "release", 1, 1, False), (("ring", "longer"), "decay", 1, 1, True),
    (("rings", "longer"), "decay", 1, 1, True), (("sustain", "longer"), "sustain", 1, 1, True),
    (("cut", "off"), "release", -1, 1, False), (("speed", "up", "the", "attack"), "attack", -1, 1, True),
    (("slow", "down", "the", "attack"), "attack", 1, 1, True),
)


def _stage(toks: list[str], taken: list[bool], i: int,
           previous: tuple[int, str, int | None] | None) -> tuple[_Found | None, tuple[int, str, int | None] | None]:
    """The modifier of the stage noun at ``i`` ("a long, gentle decay", "attack a bit softer"), if any.

    ``previous`` is (index, adjective, intensity) of the last stage noun that had an adjective, so that
    "a soft attack and release" gives the release the attack's adjective.
    """
    n = len(toks)
    quality, lexicon = _STAGES[toks[i]]
    used = [i]
    word: str | None = None
    verb: tuple[int, int] | None = None
    intensity: int | None = None
    sign, relative, removal = 1, False, False
    j = i - 1
    # Left: adjectives of this stage (with commas and "and" between them), intensifiers, negations, verbs.
    while j >= 0 and i - j <= 6:
        t = toks[j]
        if t in _STAGES or t in (".", ";", "!", "?", ":"):
            break
        if taken[j]:
            pass  # a phrase of its own ("a rapid, non-percussive attack"): look past it
        elif t in lexicon:
            word = word or t  # the adjective nearest the noun decides
            used.append(j)
        elif t in _INTENSITY:
            intensity = max(intensity or 0, _INTENSITY[t])
            used.append(j)
            if t in _ARTICLED and j > 0 and toks[j - 1] == "a":
                j -= 1
                used.append(j)
        elif t in _NEGATIONS:
            sign = -sign
            used.append(j)
        elif t in _LESS or t == "too":
            sign, relative = -sign, True
            used.append(j)
        elif t in _MORE:
            relative = True
            used.append(j)
        elif t in _REMOVE:
            removal = True
            used.append(j)
        elif t in _VERBS and word is None:
            verb = _VERBS[t]
            used.append(j)
            break
        elif not (t in (",", "and", "or") or t in _NEUTRAL_STAGE):
            break
        j -= 1
    # Right: "attack (is|should be|a bit)* softer", "decay that is short", "decay too long".
    if word is None and verb is None:
        k = i + 1
        while k < n and k - i <= 6:
            t = toks[k]
            if t in _STAGES or t in _BREAK or taken[k]:
                break
            if t in lexicon:
                word = t
                used.append(k)
                break
            if t in _INTENSITY:
                intensity = max(intensity or 0, _INTENSITY[t])
                used.append(k)
                if t in _ARTICLED and toks[k - 1] == "a":
                    used.append(k - 1)
            elif t in _LESS or t == "too":
                sign, relative = -sign, True
                used.append(k)
            elif t in _MORE:
                relative = True
                used.append(k)
            elif t not in ("is", "be", "should", "that", "which", "a", "it", "was", "feels", "sounds", "much", "make",
                           "made", "could", "can", "bit", "little", "lot"):
                break
            k += 1
    # "a soft attack and release": the release takes the attack's adjective when it has none of its own.
    if word is None and verb is None and not relative and previous is not None and i >= 2 \
            and toks[i - 1] == "and" and previous[0] == i - 2 and previous[1] in lexicon:
        word, intensity = previous[1], previous[2]
    if verb is not None:
        f = _Found(quality, verb[0] * sign, verb[1], True, used, True)
    elif word is not None:
        sgn, base = lexicon[word]
        comparative = word.endswith("er") and word not in ("hammered", "tender")
        f = _Found(quality, sgn * sign, base, comparative or relative, used, True)
        f.intensity = intensity
    elif removal or (sign < 0 and not relative):
        f = _Found(quality, -1, 3, False, used, True)  # "no sustain", "remove the release": as little as can be
    elif relative:
        # "more attack" is a punchier attack and "less attack" a softer one; "more sustain/decay/release".
        f = _Found(quality, -sign if quality == "attack" else sign, 1, True, used, True)
    elif quality == "sustain":
        f = _Found(quality, 1, 1, False, used, True)  # "a steady sustain" claims one
    else:
        return None, None  # "a moderate decay": no direction asked for
    return f, ((i, word, intensity) if word is not None else None)


def parse_modifiers(text: str) -> ParsedModifiers:
    """The modifiers in ``text`` (one per quality, in order) and the rest of the text."""
    if not isinstance(text, str):
        raise ValueError(f"text: found {type(text).__name__}, allowed a string")
    spans = _tokens(text)
    toks = [t for t, _, _ in spans]
    n = len(toks)
    taken = [False] * n
    found: list[_Found] = []

    def take(f: _Found) -> None:
        found.append(f)
        for u in f.used:
            taken[u] = True

    # 1. Fixed phrases: "fade in", "out of tune", "non-percussive".
    for i in range(n):
        for words, quality, sgn, base, rel in _PHRASES:
            k = len(words)
            if tuple(toks[i:i + k]) == words and not any(taken[i:i + k]):
                used = list(range(i, i + k))
                intensity, sf, rel2, _ = _scan_modifiers_back(toks, i, 0, used)
                f = _Found(quality, sgn * sf, base, rel or rel2, used, False)
                f.intensity = intensity
                take(f)

    # 2. Envelope stages: "soft attack", "a long, gentle decay", "attack should be softer", "shorten the decay".
    previous = None
    for i, w in enumerate(toks):
        if w not in _STAGES or taken[i]:
            continue
        if w == "decay" and i > 0 and toks[i - 1] in ("to", "will", "should", "can"):
            continue  # "fades to decay" / "should decay": a verb with no adjective of its own
        f, mark = _stage(toks, taken, i, previous)
        if f is not None:
            take(f)
        previous = mark or previous

    # 3. Single words and nouns: "brighter", "a bit darker", "no vibrato", "more chorus", "too bright".
    for i, w in enumerate(toks):
        if taken[i]:
            continue
        entry: tuple[str, int, int, bool] | None = None
        before = toks[i - 1] if i > 0 else ""
        if w in _BARE:
            entry = _BARE[w]
            if w in _NOUNS and before in _MORE | _LESS | {"too"}:
                entry = (_NOUNS[w][0], _NOUNS[w][1], 1, True)
        elif w in _NOUNS and (before in _MORE | _LESS | _NEGATIONS | _REMOVE | {"some", "any", "a", "too"}
                              or before in _INTENSITY):
            entry = (_NOUNS[w][0], _NOUNS[w][1], 1, False)
        if entry is None:
            continue
        used = [i]
        intensity, sf, rel, removal = _scan_modifiers_back(toks, i, 0, used)
        if any(taken[u] for u in used if u != i):
            used, intensity, sf, rel, removal = [i], None, 1, False, False
        q, sgn, base, rel0 = entry
        sign = -sgn if removal else sgn * sf
        if sign < 0 < sgn and not rel and q in ("vibrato", "detune", "metallic", "sustain"):
            f = _Found(q, -1, 3, False, used, False)  # "no vibrato", "without chorus": as little as the edit can
        else:
            f = _Found(q, sign, base, rel0 or rel, used, False)
            f.intensity = intensity
        take(f)

    # One modifier per quality. A stage phrase ("hard attack") beats a bare word ("punchy"); words that
    # pull both ways ("bright yet warm") cancel out: the request does not say which way to go.
    best: dict[str, _Found] = {}
    dropped: set[str] = set()
    for f in found:
        cur = best.get(f.quality)
        if f.quality in dropped:
            continue
        if cur is not None and cur.relative != f.relative:
            # "a warm pad, brighter": the explicit change wins over the description.
            if f.relative:
                best[f.quality] = f
            continue
        if cur is None or (f.staged and not cur.staged):
            best[f.quality] = f
        elif f.staged and cur.staged and f.sign != cur.sign or cur.staged and not f.staged:
            continue  # a second, different stage phrase: the first one stands
        elif f.sign != cur.sign:
            del best[f.quality]
            dropped.add(f.quality)
        else:
            cur.base = max(cur.base, f.base)
            cur.intensity = max(cur.intensity or 0, f.intensity or 0) or None
            cur.relative = cur.relative and f.relative
            if not f.staged:
                cur.used = sorted(set(cur.used) | set(f.used))  # "bright ... brighter": both words are its
    mods = []
    for f in sorted(best.values(), key=lambda f: f.used[0]):
        amount = _clamp(f.sign * max(1, f.intensity if f.intensity is not None else f.base))
        used = sorted(f.used)
        words = text[spans[used[0]][1]:spans[used[-1]][2]]
        if len(used) > 1 and used[-1] - used[0] + 1 > len(used) + 2:
            words = " ".join(text[spans[u][1]:spans[u][2]] for u in used)  # far-apart words: list them
        mods.append(Modifier(quality=f.quality, amount=amount, relative=f.relative, words=words))
    used_all = {u for f in found for u in f.used}
    used_relative = {u for f in best.values() if f.relative for u in f.used}
    return ParsedModifiers(modifiers=tuple(mods), rest=_without(text, spans, used_all),
                           base=_without(text, spans, used_relative))


def _without(text: str, spans: list[tuple[str, int, int]], drop: set[int]) -> str:
    """The text with the tokens at ``drop`` taken out (punctuation tidied)."""
    if not drop:
        return text.strip()
    rest = " ".join(text[s:e] for k, (_, s, e) in enumerate(spans) if k not in drop)
    rest = re.sub(r"\s+([,;.!?:)])", r"\1", rest)
    return re.sub(r"([,;:])(\s*[,;:.])+", r"\1", rest).strip(" ,;:")


def modifier_steps(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The ``adjust`` steps a text asks for and the words each came from."""
    parsed = parse_modifiers(text)
    return parsed.steps(), parsed.words


# --- targets against descriptors ----------------------------------------------------------------------


def _note_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


# Thresholds per |amount| (1, 2, 3). The first rung of each is the library's measured-tag threshold
# (agent/tag_thresholds.py): "soft-attack" 15 ms, "percussive" 600 ms, "long-release" 800 ms, ...
_ATTACK_SOFT_MS = (FAST_ATTACK_MS, 50.0, SLOW_ATTACK_MS)
_ATTACK_HARD_MS = (FAST_ATTACK_MS, 5.0, 3.0)
_DECAY_SHORT_MS = (PERCUSSIVE_DECAY_MS, 300.0, 150.0)
_DECAY_LONG_MS = (LONG_DECAY_MS, 2000.0, 4000.0)
_RELEASE_LONG_MS = (LONG_RELEASE_MS, 1500.0, 3000.0)
_RELEASE_SHORT_MS = (SHORT_RELEASE_MS, 200.0, 100.0)
_SUSTAIN_HIGH_DB = (SUSTAINED_DB, -6.0, -3.0)
_SUSTAIN_LOW_DB = (-20.0, -30.0, -40.0)
_BRIGHT_RATIO = (BRIGHT_RATIO, 3.0, VERY_BRIGHT_RATIO)  # spectral centroid over the played note's f0
_DARK_RATIO = (BRIGHT_RATIO, DARK_RATIO, 1.1)  # the first rung: simply not "bright"
_METAL = (INHARMONIC, 0.35, NOISY)
_PURE = (INHARMONIC, 0.1, 0.05)
_VIBRATO_CENTS = (VIBRATO_CENTS, 8.0, 15.0)
_DETUNE_BEATING = (DETUNED_BEATING, 0.1, 0.2)


def satisfied(modifier: Modifier, d: AudioDescriptors, note: int = 60) -> bool | None:
    """Whether a render already meets an absolute modifier's target (None: the descriptors cannot tell).

    ``note`` is the sounding MIDI note of the render (key plus transpose) for the brightness ratios.
    Relative modifiers and ``level`` are never satisfied in advance: they always ask for a change.
    """
    if modifier.relative or d.silent or modifier.quality == "level":
        return False if not d.silent else None
    a, k = modifier.amount, min(abs(modifier.amount), MAX_AMOUNT) - 1
    q = modifier.quality
    if q == "attack":
        if d.attack_ms is None:
            return None
        return d.attack_ms >= _ATTACK_SOFT_MS[k] if a > 0 else d.attack_ms <= _ATTACK_HARD_MS[k]
    if q == "decay":
        falls = d.decay20_ms
        if a > 0:
            return falls is None or falls >= _DECAY_LONG_MS[k]
        return falls is not None and falls < _DECAY_SHORT_MS[k]
    if q == "release":
        held = d.sustain_db is not None
        if a > 0:
            # No sustain at note-off: the sound has died and there is nothing left to release.
            return held and (d.release_ms is None or d.release_ms >= _RELEASE_LONG_MS[k])
        return (not held) or (d.release_ms is not None and d.release_ms <= _RELEASE_SHORT_MS[k])
    if q == "sustain":
        if a > 0:
            return d.decay20_ms is None and d.sustain_db is not None and d.sustain_db >= _SUSTAIN_HIGH_DB[k]
        return d.sustain_db is None or d.sustain_db <= _SUSTAIN_LOW_DB[k]
    if q == "brightness":
        if d.centroid_hz is None:
            return None
        ratio = d.centroid_hz / _note_hz(note)
        if a > 0:
            return ratio >= _BRIGHT_RATIO[k]
        if k >= 1:  # "dark": the library's tag, little energy above 1.5 kHz as well
            return ((d.brightness or 0.0) <= DARK_BRIGHTNESS
                    and (ratio <= _DARK_RATIO[k] or d.centroid_hz <= DARK_CENTROID_HZ))
        return ratio < _DARK_RATIO[k]
    if q == "metallic":
        if d.inharmonicity is None:
            return None
        return d.inharmonicity >= _METAL[k] if a > 0 else d.inharmonicity < _PURE[k]
    if q == "vibrato":
        wobble = d.pitch_stability_cents
        if wobble is None:
            return None
        return wobble >= _VIBRATO_CENTS[k] if a > 0 else wobble < _VIBRATO_CENTS[0] * (0.75 if k == 2 else 1.0)
    if q == "detune":
        if d.beating is None:
            return None
        return d.beating >= _DETUNE_BEATING[k] if a > 0 else d.beating < _DETUNE_BEATING[0]
    return None


def agreement(modifiers: Sequence[Modifier], d: AudioDescriptors, note: int = 60) -> float:
    """How well a render agrees with the absolute modifiers of a request: the mean of +1 (met), -1 (not)."""
    votes = [satisfied(m, d, note) for m in modifiers if not m.relative and m.quality != "level"]
    known = [1.0 if v else -1.0 for v in votes if v is not None]
    return sum(known) / len(known) if known else 0.0
