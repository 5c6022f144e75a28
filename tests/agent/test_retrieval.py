"""Text retrieval: sound-word tokens, BM25F ranking on toy documents, the plain TF-IDF baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from patchsmith.agent.retrieval import BM25Index, TfidfIndex, plain_tokenize, split_head, stem, tokenize, top


# --- tokens -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("Electric piano", ["epiano"]),
    ("e-piano", ["epiano"]),
    ("E piano", ["epiano"]),
    ("Rhodes", ["epiano"]),
    ("Fender Rhodes keys", ["epiano", "keyboard"]),
    ("wurlitzer", ["epiano"]),
    ("Electronic bass", ["synth", "bass"]),
    ("synthesizer pads", ["synth", "pad"]),
    ("Bells", ["bell"]),
    ("hi-hat", ["hihat"]),
    ("Hi hats", ["hihat"]),
    ("kick drum", ["kick", "drum"]),
    ("bass drum", ["kick", "drum"]),  # not the instrument "bass"
    ("sound effects", ["sfx"]),
    ("French horn", ["horn"]),
    ("vox", ["vocal"]),
    ("voices", ["vocal"]),
    ("plucked strings", ["pluck", "string"]),
    ("brighter", ["bright"]),
    ("darkest", ["dark"]),
    ("detuned", ["detun"]),
    ("detune", ["detun"]),
    ("no vibrato", ["no_vibrato"]),
    ("without chorus", ["no_chorus"]),
    ("bell-like", ["belllik"]),  # a colour, not the instrument
    ("a bright tone with the attack", ["bright", "ton", "attack"]),
])
def test_tokenize_folds_sound_words(text, expected):
    assert tokenize(text) == expected


def test_tokens_match_both_ways_and_keep_nouns_intact():
    assert tokenize("glassy electric piano") == tokenize("glassy e-piano")
    assert stem("timber") == "timber" and stem("hammer") == "hammer"  # no blind "-er" rule
    assert stem("bass") == "bass" and stem("brass") == "brass" and stem("chorus") == "chorus"
    assert tokenize("") == [] and tokenize("the a of which") == []
    with pytest.raises(ValueError, match="allowed a string"):
        tokenize(3)  # type: ignore[arg-type]


def test_split_head_takes_the_instrument_words():
    assert split_head("Electric piano, which has a warm tone.") == ("Electric piano", "which has a warm tone.")
    assert split_head("Snare drum which is bright")[0] == "Snare drum"
    assert split_head("Bells with a long decay")[0] == "Bells"
    assert split_head("deep bass") == ("deep bass", "")


# --- BM25 ----------------------------------------------------------------------------------------------

DOCS = ["warm electric piano with a soft attack",
        "bright church bell with a long ringing decay",
        "deep synth bass with a punchy attack",
        "glass bell pad, slow attack, long release",
        "organ"]


def test_bm25_ranks_the_obvious_document_first():
    idx = BM25Index(DOCS)
    assert idx.search("church bell")[0][0] == 1
    assert idx.search("rhodes")[0][0] == 0  # a synonym of "electric piano"
    assert idx.search("electronic bass")[0][0] == 2  # "electronic" folds onto "synth"
    assert idx.search("pad with a slow attack")[0][0] == 3
    assert [i for i, _ in idx.search("bell", top_k=2)] == [1, 3]  # both bells, ties to the earlier one
    assert idx.search("zzz unknown") == [(0, 0.0), (1, 0.0), (2, 0.0), (3, 0.0), (4, 0.0)]


def test_bm25_scores_match_the_formula():
    idx = BM25Index(DOCS, k1=1.2, b=0.75)
    lengths = [len(tokenize(d)) for d in DOCS]
    avg = sum(lengths) / len(lengths)
    df = sum("bell" in tokenize(d) for d in DOCS)
    idf = math.log(1 + (len(DOCS) - df + 0.5) / (df + 0.5))
    tf = 1 / (1 - 0.75 + 0.75 * lengths[1] / avg)
    assert idx.scores("bell")[1] == pytest.approx(idf * tf * 2.2 / (tf + 1.2))
    assert idx.idf("bell") == pytest.approx(idf)
    assert idx.idf("never-seen") > idx.idf("bell") > idx.idf("attack")  # rarer terms weigh more
    # A query given as terms or weights scores the same as its text.
    assert np.allclose(idx.scores("church bell"), idx.scores(["church", "bell"]))
    assert np.allclose(idx.scores({"church": 2.0}), 2 * idx.scores("church"))


def test_bm25_field_weights_prefer_the_instrument_field():
    docs = [{"head": "electric piano", "body": "a bell-like bright tone"},
            {"head": "bell", "body": "bright metallic ringing"},
            {"head": "pad", "body": "soft bell tones and a slow swell"}]
    plain = BM25Index(docs)
    fielded = BM25Index(docs, field_weights={"head": 3.0, "body": 1.0})
    assert fielded.fields == ["body", "head"]
    assert fielded.search("bell")[0][0] == 1
    s = fielded.scores("bell")
    assert s[1] > s[2] > s[0] == 0.0  # "bell-like" is its own term
    assert plain.scores("bell")[1] < s[1]
    # A field weighted zero is not indexed at all.
    assert BM25Index(docs, field_weights={"head": 0.0}).scores("pad")[2] == 0.0


def test_bm25_exclude_and_top():
    idx = BM25Index(DOCS)
    assert idx.search("bell", top_k=1, exclude=[1]) == [(3, pytest.approx(idx.scores("bell")[3]))]
    assert top(np.array([1.0, 3.0, 3.0, 2.0]), 3) == [(1, 3.0), (2, 3.0), (3, 2.0)]
    assert top(np.array([1.0, 3.0]), 5, exclude=[1]) == [(0, 1.0)]


def test_bm25_rejects_bad_documents():
    with pytest.raises(ValueError, match="sequence"):
        BM25Index("one string")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be strings"):
        BM25Index([{"head": 3}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="k1"):
        BM25Index(DOCS, b=2.0)
    assert BM25Index([]).search("x") == []


# --- plain TF-IDF ------------------------------------------------------------------------------------------


def test_tfidf_is_plain_cosine_tfidf():
    idx = TfidfIndex(DOCS)
    assert plain_tokenize("E-piano, a Bell!") == ["piano", "bell"]  # no synonyms, no stems: the baseline
    assert idx.scores(DOCS[1])[1] == pytest.approx(1.0)
    assert np.allclose(np.linalg.norm(idx.matrix, axis=1), 1.0)
    # smooth idf: ln((1 + n) / (1 + df)) + 1
    assert idx.idf[idx.vocab["bell"]] == pytest.approx(math.log(6 / 3) + 1)
    assert idx.search("church bell", top_k=1) == [(1, pytest.approx(idx.scores("church bell")[1]))]
    assert idx.search("rhodes")[0][1] == 0.0  # no synonyms
    assert idx.search("bell", top_k=1, exclude=[1])[0][0] == 3
