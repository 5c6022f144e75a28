"""Modifier phrases -> edit steps: the phrase table, amounts, negations, and targets against descriptors."""

from __future__ import annotations

import pytest

from patchsmith.agent.modifiers import (QUALITIES, Modifier, agreement, direction, measure, modifier_steps,
                                        parse_modifiers, satisfied)
from patchsmith.schema.audio import AudioDescriptors
from patchsmith.synth import edits

A, R = "abs", "rel"

# text -> [(quality, amount, absolute/relative), ...] in the order of the text
PHRASES = [
    ("brighter", [("brightness", 1, R)]),
    ("darker", [("brightness", -1, R)]),
    ("bright", [("brightness", 1, A)]),
    ("dark", [("brightness", -2, A)]),
    ("warm", [("brightness", -1, A)]),
    ("soft attack", [("attack", 1, A)]),
    ("slow attack", [("attack", 2, A)]),
    ("hard attack", [("attack", -1, A)]),
    ("punchy attack", [("attack", -1, A)]),
    ("instant attack", [("attack", -2, A)]),
    ("softer attack", [("attack", 1, R)]),
    ("a punchier attack", [("attack", -1, R)]),
    ("short decay", [("decay", -1, A)]),
    ("long decay", [("decay", 1, A)]),
    ("shorter decay", [("decay", -1, R)]),
    ("long release", [("release", 1, A)]),
    ("shorter release", [("release", -1, R)]),
    ("long sustain", [("sustain", 1, A)]),
    ("sustained", [("sustain", 1, A)]),
    ("metallic", [("metallic", 1, A)]),
    ("more metallic", [("metallic", 1, R)]),
    ("less metallic", [("metallic", -1, R)]),
    ("with vibrato", [("vibrato", 1, A)]),
    ("more vibrato", [("vibrato", 1, R)]),
    ("detuned", [("detune", 1, A)]),
    ("chorused", [("detune", 1, A)]),
    ("louder", [("level", 1, R)]),
    ("quieter", [("level", -1, R)]),
    # amounts
    ("a bit brighter", [("brightness", 1, R)]),
    ("slightly darker", [("brightness", -1, R)]),
    ("much brighter", [("brightness", 2, R)]),
    ("a lot more vibrato", [("vibrato", 2, R)]),
    ("very bright", [("brightness", 3, A)]),
    ("extremely long release", [("release", 3, A)]),
    ("way more metallic", [("metallic", 3, R)]),
    ("much shorter release", [("release", -2, R)]),
    # negations
    ("no vibrato", [("vibrato", -3, A)]),
    ("without chorus", [("detune", -3, A)]),
    ("remove the vibrato", [("vibrato", -3, A)]),
    ("less bright", [("brightness", -1, R)]),
    ("not bright", [("brightness", -1, A)]),
    ("too bright", [("brightness", -1, R)]),
    ("a little less vibrato", [("vibrato", -1, R)]),
    ("less attack", [("attack", 1, R)]),
    ("more punch", [("attack", -1, R)]),
    ("no sustain", [("sustain", -3, A)]),
    ("non-percussive", [("sustain", 1, A)]),
    # word order and verbs
    ("the attack should be a bit softer", [("attack", 1, R)]),
    ("decay a lot shorter", [("decay", -2, R)]),
    ("shorten the decay", [("decay", -1, R)]),
    ("lengthen the release", [("release", 1, R)]),
    ("fade in", [("attack", 2, A)]),
    # several at once
    ("shorter decay, a bit brighter", [("decay", -1, R), ("brightness", 1, R)]),
    ("darker and longer release", [("brightness", -1, R), ("release", 1, R)]),
    ("glassy electric piano, soft attack, long release", [("attack", 1, A), ("release", 1, A)]),
    ("a soft attack and release", [("attack", 1, A), ("release", 1, A)]),  # the release takes "soft"
    ("fast attack and long decay", [("attack", -1, A), ("decay", 1, A)]),
    ("Organ, which has a full, sustained timbre with a rapid, non-percussive attack and an immediate release.",
     [("sustain", 1, A), ("attack", -1, A), ("release", -1, A)]),
    # nothing to do
    ("church bell", []),
    ("deep fat bass", []),
    ("a moderate decay", []),
    ("", []),
    # words that pull both ways cancel
    ("bright yet warm", []),
]


@pytest.mark.parametrize("text, expected", PHRASES, ids=[p[0][:40] or "empty" for p in PHRASES])
def test_phrase_table(text, expected):
    got = [(m.quality, m.amount, R if m.relative else A) for m in parse_modifiers(text).modifiers]
    assert got == expected


def test_words_are_the_phrases_as_written():
    parsed = parse_modifiers("Shorter Decay, a bit BRIGHTER please")
    assert parsed.words == ["Shorter Decay", "a bit BRIGHTER"]
    assert parsed.rest == "please"
    assert parse_modifiers("glassy electric piano, soft attack").rest == "glassy electric piano"
    for m in parsed.modifiers:
        assert m.words in "Shorter Decay, a bit BRIGHTER please"


def test_steps_are_edit_steps_the_edits_module_accepts():
    steps, words = modifier_steps("shorter decay, a bit brighter, no vibrato")
    assert steps == [{"op": "adjust", "quality": "decay", "amount": -1},
                     {"op": "adjust", "quality": "brightness", "amount": 1},
                     {"op": "adjust", "quality": "vibrato", "amount": -3}]
    assert words == ["shorter decay", "a bit brighter", "no vibrato"]
    assert set(QUALITIES) == set(edits.QUALITIES)
    from patchsmith.agent.library import load_library

    patch = load_library()[0].patch
    edits.apply_edits(patch, steps)  # valid steps: no EditError


def test_bad_input():
    with pytest.raises(ValueError, match="allowed a string"):
        parse_modifiers(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        parse_modifiers(["brighter"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Modifier(quality="brightness", amount=4, words="x")


# --- targets against descriptors ---------------------------------------------------------------------------


def desc(**kw) -> AudioDescriptors:
    base = dict(duration_s=4.0, peak_dbfs=-3.0, rms_dbfs=-15.0, attack_ms=2.0, decay20_ms=None, decay60_ms=None,
                sustain_db=-3.0, release_ms=50.0, centroid_hz=520.0, brightness=0.1, inharmonicity=0.02,
                pitch_cents=0.0, pitch_stability_cents=0.5, beating=0.01, silent=False, clipping=False)
    return AudioDescriptors(**(base | kw))


def mod(text: str) -> Modifier:
    (m,) = parse_modifiers(text).modifiers
    return m


@pytest.mark.parametrize("text, met, unmet", [
    ("soft attack", desc(attack_ms=40.0), desc(attack_ms=2.0)),
    ("slow attack", desc(attack_ms=400.0), desc(attack_ms=40.0)),
    ("hard attack", desc(attack_ms=3.0), desc(attack_ms=40.0)),
    ("short decay", desc(decay20_ms=300.0), desc(decay20_ms=None)),
    ("long decay", desc(decay20_ms=None), desc(decay20_ms=300.0)),
    ("long release", desc(release_ms=1500.0), desc(release_ms=100.0)),
    ("long release", desc(release_ms=None), desc(sustain_db=None, release_ms=None)),  # nothing left to release
    ("short release", desc(release_ms=100.0), desc(release_ms=900.0)),
    ("sustained", desc(), desc(decay20_ms=400.0, sustain_db=None)),
    ("no sustain", desc(sustain_db=None), desc()),
    ("bright", desc(centroid_hz=1200.0), desc(centroid_hz=300.0)),
    ("dark", desc(centroid_hz=300.0, brightness=0.01), desc(centroid_hz=300.0, brightness=0.3)),
    ("metallic", desc(inharmonicity=0.6), desc(inharmonicity=0.02)),
    ("with vibrato", desc(pitch_stability_cents=10.0), desc(pitch_stability_cents=0.5)),
    ("no vibrato", desc(pitch_stability_cents=0.5), desc(pitch_stability_cents=10.0)),
    ("detuned", desc(beating=0.3), desc(beating=0.0)),
])
def test_satisfied(text, met, unmet):
    m = mod(text)
    assert not m.relative
    assert satisfied(m, met, note=60) is True
    assert satisfied(m, unmet, note=60) is False


def test_relative_and_undefined():
    assert satisfied(mod("brighter"), desc(centroid_hz=9000.0)) is False  # a change is always asked for
    assert satisfied(mod("louder"), desc()) is False
    assert satisfied(mod("soft attack"), desc(attack_ms=None)) is None
    silent = desc(silent=True, attack_ms=None, centroid_hz=None)
    assert satisfied(mod("bright"), silent) is None
    # The brightness threshold is relative to the played note: 600 Hz is bright for a bass, not at C5.
    assert satisfied(mod("bright"), desc(centroid_hz=600.0), note=36)
    assert not satisfied(mod("bright"), desc(centroid_hz=600.0), note=72)


def test_agreement():
    mods = parse_modifiers("bright, soft attack, louder").modifiers  # "louder" is a change, not a target
    assert agreement(mods, desc(centroid_hz=1200.0, attack_ms=40.0)) == 1.0
    assert agreement(mods, desc(centroid_hz=300.0, attack_ms=1.0)) == -1.0
    assert agreement(mods, desc(centroid_hz=1200.0, attack_ms=1.0)) == 0.0
    assert agreement([], desc()) == 0.0


def test_direction_needs_an_audible_change():
    assert direction("attack", desc(attack_ms=10.0), desc(attack_ms=30.0)) == 1
    assert direction("attack", desc(attack_ms=10.0), desc(attack_ms=10.5)) == 0
    assert direction("brightness", desc(centroid_hz=500.0), desc(centroid_hz=450.0)) == -1
    assert direction("decay", desc(decay20_ms=None), desc(decay20_ms=2000.0)) == -1  # never -> 2 s: shorter
    assert direction("release", desc(release_ms=None), desc(release_ms=900.0)) == -1
    assert direction("sustain", desc(sustain_db=None), desc(sustain_db=-30.0)) == 1
    assert measure("vibrato", desc(pitch_stability_cents=None)) == 0.0
