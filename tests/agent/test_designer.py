"""The offline designer: the right instrument for the words, edits that move the sound the asked way,
determinism, clear errors, the other libraries, and a small leave-one-out quality check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from patchsmith.agent.designer import (PROBE, DesignerSettings, DesignResult, Library, OfflineDesigner,
                                       describe_render, sound_of)
from patchsmith.agent.library import LibraryError, load_library
from patchsmith.agent.modifiers import direction
from patchsmith.evals.distances import rms_envelope
from patchsmith.synth.edits import apply_edits
from patchsmith.synth.render import render, render_batch

from ..conftest import CAPTIONS, REPO, need


@pytest.fixture(scope="module")
def designer() -> OfflineDesigner:
    return OfflineDesigner()


# --- the right instrument ------------------------------------------------------------------------------

FAMILIES = [
    ("glassy electric piano, soft attack", "electric piano"),
    ("deep fat bass", "bass"),
    ("church bell", "bell"),
    ("warm analog pad", "pad"),
    ("brass section", "brass"),
    ("solo violin with vibrato", "strings"),
    ("funky clavinet", "clav"),
    ("xylophone", "mallet"),
    ("kick drum", "percussion"),
    ("laser zap sound effect", "sound effect"),
    ("breathy flute", "woodwind"),
    ("choir singing aah", "choir"),
    ("distorted guitar", "guitar"),
    ("pipe organ", "organ"),
    ("plucked harp", "pluck"),
    ("rhodes", "electric piano"),
    ("felt piano", "acoustic piano"),
    ("screaming synth lead", "lead"),
]


@pytest.mark.parametrize("text, family", FAMILIES, ids=[t for t, _ in FAMILIES])
def test_the_match_is_the_instrument_asked_for(designer, text, family):
    result = designer.design(text)
    assert result.match.family == family, (result.match, [a.id for a in result.alternatives])
    assert result.match.relevance >= designer.settings.candidate_relevance
    assert result.match.caption in designer.library[designer.library.position(result.match.id)].captions


def test_a_design_is_a_complete_reproducible_answer(designer):
    result = designer.design("glassy electric piano, soft attack")
    assert isinstance(result, DesignResult)
    entry = designer.library[designer.library.position(result.match.id)]
    assert result.render == entry.render
    # The recorded steps turn the match into the designed patch, exactly.
    assert apply_edits(entry.patch, result.edits).patch == result.patch
    assert [c.path for c in result.changes] == [c.path for c in apply_edits(entry.patch, result.edits).changes]
    # The text asked for a soft attack; the designed patch has one (measured).
    assert result.descriptors is not None and result.descriptors.attack_ms >= 15
    assert [m.quality for m in result.modifiers] == ["attack"]
    assert len(result.alternatives) == 4 and result.match.id not in {a.id for a in result.alternatives}
    rivals = [a.score for a in result.alternatives if a.relevance >= designer.settings.candidate_relevance]
    assert all(result.match.score >= r for r in rivals)
    assert "electric piano" in result.summary()
    json.loads(result.model_dump_json())  # the result is plain JSON for the agent's transcript


def test_a_match_that_already_meets_the_words_is_not_edited(designer):
    result = designer.design("slow swelling string ensemble")
    assert result.match.family == "strings"
    assert result.edits == [] and result.changes == [] and result.patch == \
        designer.library[designer.library.position(result.match.id)].patch
    assert any("already has it" in n for n in result.notes)


# --- edits move the sound the asked way ----------------------------------------------------------------

EDITED = [
    ("church bell", "darker", "brightness", -1),
    ("string ensemble", "much shorter release", "release", -1),
    ("breathy flute", "no vibrato", "vibrato", -1),
    ("marimba", "longer decay", "decay", 1),
    ("drawbar organ", "softer attack", "attack", 1),
    ("electric piano", "more vibrato", "vibrato", 1),
    ("warm analog pad", "brighter", "brightness", 1),
    ("synth pluck", "more metallic", "metallic", 1),
]


@pytest.mark.parametrize("base, modifier, quality, sign", EDITED, ids=[f"{b}, {m}" for b, m, _, _ in EDITED])
def test_modifier_edits_move_the_descriptors(designer, base, modifier, quality, sign):
    plain = designer.design(base)
    edited = designer.design(f"{base}, {modifier}")
    assert edited.match.family == plain.match.family
    assert edited.edits and {e["quality"] for e in edited.edits} == {quality}
    assert all(np.sign(e["amount"]) == sign for e in edited.edits)
    # Against the match it started from, on the match's own note.
    start = describe_render(designer.library[designer.library.position(edited.match.id)].patch, edited.render)
    assert direction(quality, start, edited.descriptors) == sign, edited.notes


def test_refine_turns_follow_ups_into_steps(designer):
    entry = {p.id: p for p in designer.library}["ep_tine"]
    steps = designer.refine(entry.patch, "shorter decay, a bit brighter", render=entry.render)
    assert [s["quality"] for s in steps if s["quality"] == "decay"] and all(
        s["amount"] < 0 for s in steps if s["quality"] == "decay")
    assert all(s["amount"] > 0 for s in steps if s["quality"] == "brightness")
    assert {s["quality"] for s in steps} == {"decay", "brightness"}
    after = apply_edits(entry.patch, steps).patch
    before_d, after_d = describe_render(entry.patch, entry.render), describe_render(after, entry.render)
    assert direction("decay", before_d, after_d) == -1
    # A patch as a plain dict works too; a follow-up that names no quality gives no steps.
    assert designer.refine(entry.patch.to_dict(), "shorter decay, a bit brighter", render=entry.render) == steps
    assert designer.refine(entry.patch, "thanks, that's great") == []
    # An absolute word the patch already meets still asks for a change in a follow-up.
    pad = {p.id: p for p in designer.library}["pad_warm"]
    assert designer.refine(pad.patch, "slow attack", render=pad.render) == [
        {"op": "adjust", "quality": "attack", "amount": 2}]
    with pytest.raises(ValueError, match="patch"):
        designer.refine({"feedback": 9}, "brighter")
    with pytest.raises(ValueError, match="text"):
        designer.refine(entry.patch, "")


# --- determinism and bad input ---------------------------------------------------------------------------


def test_designs_are_deterministic(designer):
    texts = ["glassy electric piano, soft attack, long release", "deep fat bass, brighter", "qwertyuiop"]
    again = OfflineDesigner()
    for text in texts:
        a, b = designer.design(text), again.design(text)
        assert a.model_dump() == b.model_dump()
    assert designer.match("church bell", top_k=3) == again.match("church bell", top_k=3)


def test_text_no_library_word_still_designs(designer):
    result = designer.design("qwertyuiop")
    assert any("no word of the text" in n for n in result.notes)
    result = designer.design("brighter")
    assert result.edits and result.edits[0]["quality"] == "brightness"


@pytest.mark.parametrize("bad, message", [
    ("", "empty"), ("   ", "empty"), (None, "NoneType"), (3, "int"), (["bell"], "list"), ("x" * 5000, "at most"),
])
def test_bad_text_is_a_clear_value_error(designer, bad, message):
    with pytest.raises(ValueError, match=message):
        designer.design(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        designer.match(bad)  # type: ignore[arg-type]


def test_bad_arguments(designer):
    with pytest.raises(ValueError, match="top_k"):
        designer.design("bell", top_k=0)
    with pytest.raises(ValueError, match="excluded"):
        designer.design("bell", exclude=[p.id for p in designer.library])
    first = designer.design("church bell").match.id
    assert designer.design("church bell", exclude=[first]).match.id != first


# --- libraries ------------------------------------------------------------------------------------------


def test_library_sources(tmp_path):
    packaged = Library.load()
    assert len(packaged) == len(load_library()) and packaged.source == "packaged library"
    assert Library.load(REPO / "agent" / "presets")[0] == packaged[0]
    small = Library(list(packaged)[:10])
    assert len(small) == 10 and small.position(small[3].id) == 3 and isinstance(small[1:3], tuple)
    assert OfflineDesigner(list(packaged)[:10]).design("bass").match.family == "bass"
    with pytest.raises(LibraryError, match="duplicate id"):
        Library([packaged[0], packaged[0]])
    with pytest.raises(LibraryError, match="no patches"):
        Library([])
    with pytest.raises(LibraryError, match="no such file"):
        Library.load(tmp_path / "nowhere")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(LibraryError, match="not a library"):
        Library.load(tmp_path)


def test_parquet_library_or_a_clear_error(tmp_path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        with pytest.raises(ImportError, match=r"pip install pyarrow"):
            Library.from_parquet(tmp_path / "x.parquet")
        return
    lib = load_library()[:3]
    table = pa.table({"id": [p.id for p in lib], "patch": [json.dumps(p.patch.to_dict()) for p in lib],
                      "caption": [p.captions[0] for p in lib]})
    pq.write_table(table, tmp_path / "shard-0.parquet")
    loaded = Library.load(tmp_path)
    assert [p.id for p in loaded] == [p.id for p in lib] and loaded[0].patch == lib[0].patch


def test_sound_features_match_the_metric():
    p = load_library()[0].patch
    audio = render(p, **PROBE.model_dump())
    s = sound_of(audio)
    env = rms_envelope(audio)
    assert np.allclose(s.envelope, env / np.linalg.norm(env), atol=1e-6)
    assert s.mel.shape[1] == 32 and np.isfinite(s.mel).all()


# --- the source research's captions -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_library() -> Library:
    need(CAPTIONS)
    return Library.from_source_research(CAPTIONS / "DX7_YAMAHA_train_captions.csv", CAPTIONS / "DX7_YAMAHA_train.csv")


def test_the_source_research_library_loads_and_designs(source_library):
    assert len(source_library) == 958
    assert Library.load(CAPTIONS / "DX7_YAMAHA_train_captions.csv")[0] == source_library[0]
    assert Library.load(CAPTIONS)[0] == source_library[0]
    d = OfflineDesigner(source_library)
    for text, word in [("electric piano, soft attack", "piano"), ("church bell", "bell"), ("deep bass", "bass"),
                       ("pipe organ", "organ")]:
        result = d.design(text)
        assert word in result.match.family or word in result.match.caption.lower(), result.match
        assert result.render == PROBE


def test_leave_one_out_quality_on_a_subset(source_library):
    """A fast slice of benchmarks/designer.py: 150 patches as the library, 60 held-out captions as
    queries; the designer's match must sound closer to the true patch than plain TF-IDF's pick."""
    from patchsmith.agent.retrieval import TfidfIndex

    entries = list(source_library)[1::6][:150]  # a spread of the library, not its first bank
    lib = Library(entries, source="subset")
    audio = render_batch([e.patch for e in entries], sample_rate=48000, **PROBE.model_dump())
    lib.prime(list(range(len(entries))), audio)
    env = [rms_envelope(a) for a in audio]
    d = OfflineDesigner(lib, DesignerSettings(agreement=0.0))
    tfidf = TfidfIndex([e.captions[0] for e in entries])

    def cos(i: int, j: int) -> float:
        return float(env[i] @ env[j] / (np.linalg.norm(env[i]) * np.linalg.norm(env[j]) + 1e-30))

    queries = [k for k in range(len(entries)) if k % 3 != 0][:60]  # not the designer's tuning third
    ours = [cos(q, lib.position(d.match(entries[q].captions[0], top_k=1, exclude=[entries[q].id])[0].id))
            for q in queries]
    base = [cos(q, tfidf.search(entries[q].captions[0], 1, exclude=[q])[0][0]) for q in queries]
    assert np.mean(ours) > np.mean(base) + 0.01, (np.mean(ours), np.mean(base))
    assert np.mean(ours) > 0.8
