"""Text retrieval over captioned patches: sound-word tokens, a fielded BM25 index, plain TF-IDF.

``tokenize`` turns a description into index terms: lower case, multi-word instrument names joined
("electric piano", "e-piano", "Rhodes" -> ``epiano``; "hi-hat" -> ``hihat``; "sound effect", "SFX" ->
``sfx``), sound-word synonyms folded ("electronic", "synthesizer" -> ``synth``; "vox", "voices" ->
``vocal``; "keys" -> ``keyboard``), a light stemmer ("bells" -> ``bell``, "plucked" -> ``pluck``,
"brighter" -> ``bright``) and function words dropped. The same function tokenizes documents and
queries, so whatever it folds matches both ways.

``BM25Index`` is BM25F (Robertson et al.; one saturation over field-weighted, length-normalised term
frequencies) over documents with named fields. The designer puts the instrument words of each caption
(the source research's captions name the instrument first) in a heavy ``head`` field, so "bell"
as the instrument outranks "bell-like" as a colour. ``TfidfIndex`` is the plain baseline: TF-IDF with
cosine similarity on raw word tokens (scikit-learn's defaults), kept for the quality benchmark.

Pure Python and numpy; every result is deterministic (ties go to the earlier document).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np

# Multi-word names first (on the lower-cased text), so their words are not also read one by one.
_JOINS: tuple[tuple[str, str], ...] = (
    (r"\be[\s-]?pianos?\b|\belectric(?:al)?[\s-]+pianos?\b|\bfender[\s-]+rhodes\b|\brhodes\b|\bwurlitzer\b"
     r"|\bwurli\b|\bdyno[\s-]?(?:my)?[\s-]?piano\b|\bepno\b|\be\.\s?p\.", " epiano "),
    (r"\bhi[\s-]?hats?\b", " hihat "),
    (r"\b(?:bass|kick)[\s-]+drums?\b|\bkicks?\b", " kick drum "),
    (r"\bsnare[\s-]+drums?\b|\bsnares?\b", " snare drum "),
    (r"\btom[\s-]?toms?\b|\btoms\b", " tom drum "),
    (r"\bsteel[\s-]+(?:drums?|pans?)\b", " steeldrum "),
    (r"\bsound[\s-]+effects?\b|\bsfx\b|\bfx\b|\bspecial[\s-]+effects?\b", " sfx "),
    (r"\bfrench[\s-]+horns?\b", " horn "),
    (r"\bwood[\s-]?blocks?\b", " woodblock "),
    (r"\bpan[\s-]?(?:flutes?|pipes?)\b", " panflute "),
    (r"\bsinging[\s-]+bowls?\b", " singingbowl bowl "),
    (r"\bsine[\s-]?waves?\b", " sine "),
    (r"\bsaw[\s-]?tooth\b|\bsaw[\s-]?waves?\b", " saw "),
    (r"\bsquare[\s-]?waves?\b", " square "),
    (r"\bdouble[\s-]+bass\b|\bupright[\s-]+bass\b|\bcontrabass\b", " upright bass "),
    (r"\bbass[\s-]+guitars?\b", " bass "),
    (r"\btubular[\s-]+bells?\b", " chime bell "),
    (r"\bwind[\s-]?chimes?\b", " windchime chime "),
    (r"\bhonky[\s-]?tonk\b", " honkytonk "),
    (r"\bclav(?:i)?\b", " clavinet "),
    (r"\bharpsi\b", " harpsichord "),
    (r"\bsax(?:es)?\b", " saxophone "),
    (r"\bvibes\b", " vibraphone "),
    (r"\bglock\b", " glockenspiel "),
    (r"\bxylo\b", " xylophone "),
    (r"\bperc\b", " percussion "),
    (r"\bpizz\b", " pizzicato "),
    (r"\bgtr\b", " guitar "),
    (r"\bpno\b", " piano "),
    (r"\borg\b", " organ "),
    (r"\bstr\b|\bstrs\b", " string "),
    (r"\bbrs\b", " brass "),
    (r"\bhammond\b|\btonewheel\b|\bdrawbars?\b", " organ drawbar "),
    (r"\b(\w+)[\s-]like\b", r" \1like "),  # "bell-like" is a colour, not a bell: its own term
    (r"\bno[\s-]+", " no_"),  # "no vibrato" must not match "vibrato"
    (r"\bwithout[\s-]+", " no_"),
)
_JOIN_RES = tuple((re.compile(p), r) for p, r in _JOINS)

# Whole-word synonyms, applied after stemming: both spellings become the right-hand term.
_SYNONYMS: dict[str, str] = {
    "electronic": "synth", "synthesizer": "synth", "synthesiser": "synth", "synthetic": "synth", "synthy": "synth",
    "synthesized": "synth", "synthesised": "synth", "analog": "synth", "analogue": "synth",
    "keys": "keyboard", "key": "keyboard", "keyboard": "keyboard",
    "vox": "vocal", "voice": "vocal", "voices": "vocal", "vocal": "vocal", "singer": "vocal", "sung": "vocal",
    "choral": "choir", "chorale": "choir", "choir": "choir",
    "strings": "string", "violins": "violin", "fiddle": "violin",
    "pluck": "pluck", "plucked": "pluck", "plucky": "pluck", "plucking": "pluck", "plucks": "pluck",
    "bowed": "bow", "bowing": "bow",
    "drums": "drum", "percussive": "percussive", "percussion": "percussion",
    "chimes": "chime", "chiming": "chime", "bells": "bell", "belltone": "bell",
    "celesta": "celeste", "glockenspiels": "glockenspiel", "vibraphones": "vibraphone", "metallophone": "vibraphone",
    "mallets": "mallet", "marimbas": "marimba",
    "trumpets": "trumpet", "horns": "horn", "trombones": "trombone", "tuba": "tuba",
    "flutes": "flute", "piccolo": "piccolo", "whistle": "whistle", "whistling": "whistle",
    "clavinets": "clavinet", "clavichord": "clavinet",
    "guitars": "guitar", "pianos": "piano", "organs": "organ", "pads": "pad", "leads": "lead",
    "basses": "bass", "bassy": "bass", "sub": "sub",
    "effect": "sfx", "effects": "sfx",
    "brassy": "brass",
    "wah": "wah", "wahwah": "wah",
}
_STOPWORDS = frozenset("""
a an the which that this these those with has have having had is are was were be been being it its it's of and or
to in on at by for from as into over while then than also very quite somewhat slightly rather relatively fairly
extremely highly bit little some more much like such featuring features feature featured possess possesses
possessing giving gives give creating creates create making makes make producing produces produce resembling
resembles characterized characterised characteristic characteristics offering offers quality overall
there their them they one each both through throughout but yet followed followed by can could would
""".split())
# Comparatives and superlatives fold onto the adjective ("brighter" -> "bright"); a short explicit list
# because a blind "-er" rule would break nouns ("timber", "hammer", "water").
_COMPARATIVES = frozenset("""
bright dark warm soft hard long short fast slow quick loud quiet deep thick thin rich sharp smooth mellow dull
harsh clean pure high low light heavy fat tight full wide round sweet crisp gentle strong weak big small
""".split())
_WORD = re.compile(r"[a-z0-9_]+")


def stem(word: str) -> str:
    """A light, conservative stem: plural -s, -ed, -ing, -ly and comparatives of known adjectives."""
    w = word
    if w in _SYNONYMS:
        return _SYNONYMS[w]
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is", "ous")):
        w = w[:-1]
    for suffix in ("est", "er"):
        if w.endswith(suffix):
            base = w[: -len(suffix)]
            for cand in (base, base[:-1] if len(base) > 2 and base[-1] == base[-2] else base, base + "e",
                         base[:-1] + "y" if base.endswith("i") else base):
                if cand in _COMPARATIVES:
                    return cand
    if len(w) > 6 and w.endswith("ing"):  # "ringing" -> "ring", but "string" stays
        w = w[:-3]
    elif len(w) > 4 and w.endswith("ed"):
        w = w[:-2]
    elif len(w) > 4 and w.endswith("ly"):
        w = w[:-2]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]  # "detune"/"detuned" -> "detun", "chime"/"chimes" -> "chim"
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "slz":
        w = w[:-1]  # "ringing"/"ring", "humming"/"hum"
    return _SYNONYMS.get(w, w)


def normalize(text: str) -> str:
    """Lower case with multi-word instrument names joined into single terms."""
    if not isinstance(text, str):
        raise ValueError(f"text: found {type(text).__name__}, allowed a string")
    low = " " + text.lower().replace("\u2019", "'").replace("&", " and ") + " "
    for pattern, repl in _JOIN_RES:
        low = pattern.sub(repl, low)
    return low


def tokenize(text: str) -> list[str]:
    """Index terms of a text: joined names, synonyms, light stems, no function words."""
    out = []
    for w in _WORD.findall(normalize(text)):
        if w in _STOPWORDS or len(w) < 2 and not w.isdigit():
            continue
        if w.startswith("no_"):
            out.append("no_" + stem(w[3:]))
            continue
        out.append(stem(w))
    return out


def split_head(text: str) -> tuple[str, str]:
    """A caption's instrument words and the rest: "Electric piano, which has ..." -> ("Electric piano", "...")."""
    m = re.search(r",|;|\bwhich\b|\bthat\b|\bwith\b|\bfeaturing\b|\bhas\b|\bhave\b|\bis\b|\bare\b", text,
                  flags=re.IGNORECASE)
    if m is None:
        return text.strip(), ""
    return text[: m.start()].strip(), text[m.start():].strip(" ,;")


# --- BM25F ---------------------------------------------------------------------------------------------


class BM25Index:
    """BM25F over documents with named text fields (or plain strings, one field ``text``)."""

    def __init__(self, docs: Sequence[Mapping[str, str] | str], *, field_weights: Mapping[str, float] | None = None,
                 k1: float = 1.2, b: float = 0.75, tokenizer: Callable[[str], list[str]] = tokenize):
        """Index ``docs``; ``field_weights`` weighs each field's term counts (unnamed fields weigh 1)."""
        if isinstance(docs, (str, bytes)) or not isinstance(docs, Sequence):
            raise ValueError("docs: allowed a sequence of strings or of {field: text} mappings")
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"k1 >= 0 and 0 <= b <= 1 required, found k1={k1}, b={b}")
        self.k1, self.b, self.tokenizer = k1, b, tokenizer
        fielded = [{"text": d} if isinstance(d, str) else dict(d) for d in docs]
        for i, d in enumerate(fielded):
            bad = [k for k, v in d.items() if not isinstance(v, str)]
            if bad:
                raise ValueError(f"docs[{i}]: field(s) {', '.join(map(repr, bad))} must be strings")
        self.fields = sorted({f for d in fielded for f in d})
        self.field_weights = {f: float((field_weights or {}).get(f, 1.0)) for f in self.fields}
        self.n_docs = len(fielded)
        tokens = [{f: tokenizer(d.get(f, "")) for f in self.fields} for d in fielded]
        avg = {f: max(1e-9, float(np.mean([len(t[f]) for t in tokens])) if tokens else 1.0) for f in self.fields}
        # The field-weighted, length-normalised term frequency of every (term, doc): BM25F's tf~.
        postings: dict[str, dict[int, float]] = {}
        for i, t in enumerate(tokens):
            for f in self.fields:
                if not t[f] or self.field_weights[f] == 0.0:
                    continue
                norm = 1.0 - b + b * len(t[f]) / avg[f]
                for term, count in Counter(t[f]).items():
                    postings.setdefault(term, {}).setdefault(i, 0.0)
                    postings[term][i] += self.field_weights[f] * count / norm
        self._postings = {term: (np.fromiter(p.keys(), dtype=np.int64, count=len(p)),
                                 np.fromiter(p.values(), dtype=np.float64, count=len(p)))
                          for term, p in postings.items()}
        self.doc_freq = {term: len(p[0]) for term, p in self._postings.items()}

    def idf(self, term: str) -> float:
        """BM25's idf (the +1 form: never negative)."""
        df = self.doc_freq.get(term, 0)
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    def query_weights(self, query: str | Mapping[str, float] | Sequence[str]) -> dict[str, float]:
        """Query terms with their weights (a string is tokenized; repeated terms add up)."""
        if isinstance(query, str):
            terms = self.tokenizer(query)
        elif isinstance(query, Mapping):
            return {str(t): float(w) for t, w in query.items()}
        else:
            terms = list(query)
        out: dict[str, float] = {}
        for t in terms:
            out[t] = out.get(t, 0.0) + 1.0
        return out

    def scores(self, query: str | Mapping[str, float] | Sequence[str]) -> np.ndarray:
        """The BM25F score of every document for a query (text, terms, or {term: weight})."""
        out = np.zeros(self.n_docs)
        for term, qw in sorted(self.query_weights(query).items()):
            if term not in self._postings:
                continue
            docs, tf = self._postings[term]
            out[docs] += qw * self.idf(term) * tf * (self.k1 + 1.0) / (tf + self.k1)
        return out

    def search(self, query: str | Mapping[str, float] | Sequence[str], top_k: int = 10,
               exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        """The ``top_k`` best (document index, score) pairs, best first; ties go to the earlier document."""
        return top(self.scores(query), top_k, exclude)


def top(scores: np.ndarray, k: int, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
    """The ``k`` highest (index, score) pairs, best first, ties by index; ``exclude`` indices left out."""
    s = np.asarray(scores, dtype=np.float64).copy()
    if len(exclude):
        s[np.fromiter(exclude, dtype=np.int64)] = -np.inf
    order = np.lexsort((np.arange(s.size), -s))  # stable: score descending, then index ascending
    return [(int(i), float(s[i])) for i in order[:k] if np.isfinite(s[i])]


# --- the plain baseline -------------------------------------------------------------------------------

_PLAIN = re.compile(r"(?u)\b\w\w+\b")


def plain_tokenize(text: str) -> list[str]:
    """scikit-learn's default analyser: lower-case words of two or more characters, nothing else."""
    return _PLAIN.findall(text.lower())


class TfidfIndex:
    """Plain TF-IDF (smooth idf, L2-normalised) with cosine similarity: the baseline retriever."""

    def __init__(self, docs: Sequence[str], tokenizer: Callable[[str], list[str]] = plain_tokenize):
        """Index ``docs`` (strings)."""
        self.tokenizer = tokenizer
        counts = [Counter(tokenizer(d)) for d in docs]
        vocab = sorted({t for c in counts for t in c})
        self.vocab = {t: i for i, t in enumerate(vocab)}
        n = len(docs)
        df = np.zeros(len(vocab))
        for c in counts:
            for t in c:
                df[self.vocab[t]] += 1
        self.idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        self.matrix = np.zeros((n, len(vocab)))
        for i, c in enumerate(counts):
            for t, k in c.items():
                self.matrix[i, self.vocab[t]] = k * self.idf[self.vocab[t]]
        norms = np.linalg.norm(self.matrix, axis=1, keepdims=True)
        self.matrix /= np.where(norms > 0, norms, 1.0)

    def vector(self, text: str) -> np.ndarray:
        """The L2-normalised TF-IDF vector of a text (unknown words ignored)."""
        v = np.zeros(len(self.vocab))
        for t, k in Counter(self.tokenizer(text)).items():
            if t in self.vocab:
                v[self.vocab[t]] = k * self.idf[self.vocab[t]]
        norm = np.linalg.norm(v)
        return v / norm if norm > 0 else v

    def scores(self, query: str) -> np.ndarray:
        """Cosine similarity of the query to every document."""
        return self.matrix @ self.vector(query)

    def search(self, query: str, top_k: int = 10, exclude: Collection[int] = ()) -> list[tuple[int, float]]:
        """The ``top_k`` most similar (document index, cosine) pairs, best first."""
        return top(self.scores(query), top_k, exclude)
