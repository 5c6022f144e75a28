"""The preset library the server searches: captioned patches, ranked by BM25 over their words.

For now the library is the repository's captioned examples (``patchsmith.examples``); the agent's
library widens it later. Ranking is deterministic: BM25 (k1 = 1.5, b = 0.75) over each preset's
name and captions, ties broken by key. A preset's best caption is the one sharing the most weight
with the query.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from ..examples import Example, ExampleError, load_examples

K1, B = 1.5, 0.75
NAME_WEIGHT = 2  # a word in the name counts like two in the captions
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and at by for from has have in is it its of on or that the this to which while with".split())


def words(text: str) -> list[str]:
    """Lower-case words without stop words, plural ``s`` dropped (``bells`` matches ``bell``)."""
    out = []
    for w in _WORD.findall(text.lower()):
        if w in _STOP:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        out.append(w)
    return out


@dataclass(frozen=True)
class Match:
    """One search result."""

    example: Example
    score: float
    caption: str


class PresetLibrary:
    """Captioned patches by key, searchable by words."""

    def __init__(self, examples: list[Example], note: str | None = None):
        self.examples = {e.key: e for e in examples}
        self.note = note  # why the library is empty, when it is
        self._docs = {e.key: Counter(words(" ".join([e.key] + [e.name] * NAME_WEIGHT + list(e.captions))))
                      for e in examples}
        n = len(self._docs)
        self._avg = sum(sum(c.values()) for c in self._docs.values()) / n if n else 0.0
        df = Counter(w for c in self._docs.values() for w in c)
        self._idf = {w: math.log(1.0 + (n - k + 0.5) / (k + 0.5)) for w, k in df.items()}

    @classmethod
    def load(cls) -> PresetLibrary:
        """The repository's examples; an empty library (with a note) where they are not installed."""
        try:
            return cls(load_examples())
        except ExampleError as err:
            return cls([], note="; ".join(err.problems))

    def get(self, key: str) -> Example | None:
        """The preset with this key."""
        return self.examples.get(key)

    def search(self, query: str, limit: int) -> list[Match]:
        """The best ``limit`` presets for the query (score > 0), best first."""
        terms = [w for w in dict.fromkeys(words(query)) if w in self._idf]
        scored = []
        for key, doc in self._docs.items():
            length = sum(doc.values())
            score = sum(self._idf[w] * doc[w] * (K1 + 1) / (doc[w] + K1 * (1 - B + B * length / self._avg))
                        for w in terms if doc[w])
            if score > 0:
                scored.append((-round(score, 4), key))
        scored.sort()
        return [Match(self.examples[key], -neg, self._best_caption(self.examples[key], terms))
                for neg, key in scored[:limit]]

    def _best_caption(self, example: Example, terms: list[str]) -> str:
        def weight(caption: str) -> float:
            present = set(words(caption))
            return sum(self._idf[w] for w in terms if w in present)

        return max(example.captions, key=weight)  # max keeps the first of equals: deterministic
