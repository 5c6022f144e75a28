"""Semantic and explicit edits: each rule's behaviour, ranges, no mutation, diffs, the edit list's
validation (JSON pointers into the list, the patch validator's own messages), and the factory-bank test
that every quality moves its descriptor the way its word says."""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys

import pytest

from patchsmith.schema.algorithms import algorithm
from patchsmith.schema.params import ALL_PARAMS
from patchsmith.schema.patch import Patch
from patchsmith.schema.validate import PatchValidationError, validate
from patchsmith.synth.edits import (
    LEAVES,
    QUALITIES,
    Change,
    EditError,
    EditResult,
    _cents,
    adjust,
    apply_edits,
    diff_patches,
)
from patchsmith.synth.sysex import init_voice

from ..conftest import FACTORY_BANKS, REPO, YAMAHA, need

AMOUNTS = (-3, -2, -1, 1, 2, 3)


def voice(alg: int, **over) -> Patch:
    """A patch on a DX7 algorithm: every operator at ratio 1, a plain decaying envelope, then ``over``."""
    a = algorithm(alg)
    d = init_voice().model_dump()
    d.update(modmatrix=[list(r) for r in a.modmatrix], outmatrix=list(a.outmatrix), name="TEST")
    d["eg_rate"] = [[90] * 6, [40] * 6, [30] * 6, [50] * 6]
    d["eg_level"] = [[99] * 6, [80] * 6, [0] * 6, [0] * 6]
    for k, v in over.items():
        d[k] = v
    return Patch.model_validate(d)


def fm() -> Patch:
    """Two-operator FM (algorithm 5, OP2 -> OP1 only), a struck decaying note with a 50-rate attack."""
    return voice(5, ol=[99, 70, 0, 0, 0, 0], eg_rate=[[50] * 6, [40] * 6, [30] * 6, [50] * 6])


def pad() -> Patch:
    """Two two-operator stacks at the same pitch (OP2 -> OP1, OP4 -> OP3), settling 14 dB down at L3 = 80."""
    return voice(5, ol=[90, 65, 90, 65, 0, 0], eg_rate=[[60] * 6, [40] * 6, [30] * 6, [50] * 6],
                 eg_level=[[99] * 6, [85] * 6, [80] * 6, [0] * 6])


def organ() -> Patch:
    """Three sine carriers at ratios 1, 2, 4 (algorithm 32), full sustain: no modulators, no decay."""
    return voice(32, ol=[99, 90, 80, 0, 0, 0], coarse=[1, 2, 4, 1, 1, 1],
                 eg_rate=[[99] * 6, [99] * 6, [99] * 6, [70] * 6], eg_level=[[99] * 6, [99] * 6, [99] * 6, [0] * 6])


def extreme(high: bool) -> Patch:
    """Every number at the top (or bottom) of its range: edits must clamp, never overflow."""
    d = fm().model_dump()
    for p in ALL_PARAMS:
        if p.kind == "integer" and p.key not in ("transpose",):
            for ptr, (_, idx) in LEAVES.items():
                if ptr.startswith(p.path + "/") or ptr == p.path:
                    target = d[p.parent] if p.parent else d
                    key = p.key
                    if not idx:
                        target[key] = p.high if high else p.low
                    else:
                        ref = target[key]
                        for k in idx[:-1]:
                            ref = ref[k]
                        ref[idx[-1]] = p.high if high else p.low
    if not high:  # keep one carrier sounding so that the rules have something to work on
        d["ol"][0], d["eg_level"][0][0] = 99, 99
    return Patch.model_validate(d)


ALL_VOICES = {"fm": fm, "pad": pad, "organ": organ, "init": init_voice, "high": lambda: extreme(True),
              "low": lambda: extreme(False)}


def changed(result: EditResult) -> dict[str, tuple]:
    return {c.path: (c.old, c.new) for c in result.changes}


# --- every rule, every amount: valid, in range, no mutation, deterministic, diff = changes ---------


def test_qualities_are_the_tool_contract():
    assert QUALITIES == ("brightness", "attack", "decay", "release", "sustain", "metallic", "vibrato", "detune",
                         "level")


@pytest.mark.parametrize("name", sorted(ALL_VOICES))
def test_every_quality_and_amount_is_valid_minimal_and_deterministic(name):
    patch = ALL_VOICES[name]()
    before = json.dumps(patch.model_dump(), sort_keys=True)
    for q, a in itertools.product(QUALITIES, AMOUNTS):
        r1, r2 = adjust(patch, q, a), adjust(patch, q, a)
        assert json.dumps(patch.model_dump(), sort_keys=True) == before, f"{q} {a} mutated its input"
        assert r1.model_dump() == r2.model_dump(), f"{q} {a} is not deterministic"
        assert validate(r1.patch.to_dict()).valid, f"{q} {a} on {name}: {validate(r1.patch.to_dict()).summary()}"
        assert r1.changes == diff_patches(patch, r1.patch)
        assert r1.notes, f"{q} {a} on {name} says nothing"
        if not r1.changes:
            assert r1.patch.model_dump() == patch.model_dump()
            assert any(n.startswith("nothing to change") for n in r1.notes), r1.notes
        assert r1.patch is not patch


@pytest.mark.parametrize("q", QUALITIES)
def test_amount_zero_changes_nothing(q):
    for make in ALL_VOICES.values():
        p = make()
        r = adjust(p, q, 0)
        assert r.changes == [] and r.patch.model_dump() == p.model_dump()


def test_bad_quality_or_amount_is_a_value_error():
    for q, a in (("shiny", 1), ("level", 4), ("level", -4), ("level", True), ("level", 1.0), (3, 1)):
        with pytest.raises(ValueError):
            adjust(fm(), q, a)


def test_adjust_accepts_a_patch_dict_and_rejects_a_bad_one():
    assert adjust(fm().to_dict(), "level", -1).changes
    bad = fm().to_dict()
    bad["ol"][0] = 120
    with pytest.raises(PatchValidationError):
        adjust(bad, "level", -1)


def test_an_unchanged_sysex_voice_keeps_its_origin_and_an_edited_one_drops_it():
    p = organ()
    p._sysex_origin = ((1, 2, 3), None, ())
    assert adjust(p, "sustain", 1).patch._sysex_origin == p._sysex_origin  # at the limit: unchanged
    assert adjust(p, "level", 0).patch._sysex_origin == p._sysex_origin
    assert adjust(p, "level", -1).patch._sysex_origin is None


# --- diffs ---------------------------------------------------------------------------------------


def test_diff_patches_lists_every_changed_leaf_with_its_pointer():
    a = fm()
    d = a.model_dump()
    d["eg_rate"][1][0] = 12
    d["lfo"]["speed"] = 77
    d["kls_left_curve"][2] = "+exp"
    d["modmatrix"][0][5] = 1
    d["name"] = "OTHER"
    b = Patch.model_validate(d)
    got = diff_patches(a, b)
    assert [c.path for c in got] == ["/modmatrix/0/5", "/eg_rate/1/0", "/lfo/speed", "/kls_left_curve/2", "/name"]
    assert got[1] == Change(path="/eg_rate/1/0", old=40, new=12)
    assert got[3] == Change(path="/kls_left_curve/2", old="-lin", new="+exp")
    assert diff_patches(a, a) == [] and diff_patches(a, fm()) == []
    assert all(c.path in LEAVES for c in got[:-1])


# --- the rules -----------------------------------------------------------------------------------


def test_brightness_moves_the_modulator_level():
    up, down = changed(adjust(fm(), "brightness", 1)), changed(adjust(fm(), "brightness", -1))
    assert set(up) == {"/ol/1"} and up["/ol/1"][1] > 70
    assert set(down) == {"/ol/1"} and down["/ol/1"][1] < 70
    assert changed(adjust(fm(), "brightness", 3))["/ol/1"][1] > up["/ol/1"][1]


def test_brightness_falls_back_to_feedback_then_tilts_an_additive_voice():
    d = fm().model_dump()
    d["ol"][1] = 99
    d["modmatrix"][1][1] = 1  # OP2 self-feedback
    d["feedback"] = 0
    r = changed(adjust(Patch.model_validate(d), "brightness", 1))
    assert r == {"/feedback": (0, 3)}  # feedback 1-2 is inaudible: switching it on starts at 3
    r = changed(adjust(organ(), "brightness", 1))
    assert "/ol/2" in r and r["/ol/2"][1] > 80  # the highest carrier (ratio 4) comes up
    r = changed(adjust(organ(), "brightness", -1))
    assert "/ol/2" in r and r["/ol/2"][1] < 80


def test_brightness_only_uses_feedback_that_is_in_the_sounding_part():
    # Algorithm 5 loops OP6 onto itself; OP6 is silent here, so with OP2 at its top there is nothing left
    # (an ordinary OP2 -> OP1 edge is not feedback).
    d = fm().model_dump()
    d["ol"][1] = 99
    r = adjust(Patch.model_validate(d), "brightness", 1)
    assert not r.changes and "maximum" in r.notes[0]


def test_brightening_a_lone_sine_switches_on_its_silent_modulator():
    r = adjust(init_voice(), "brightness", 1)
    assert changed(r) == {"/ol/1": (0, 56)}  # from the audible floor (OL 50) plus one step
    assert not adjust(init_voice(), "brightness", -1).changes


def test_attack_stretches_the_rise_of_carriers_and_their_modulators():
    r = changed(adjust(fm(), "attack", 1))
    assert set(r) == {"/eg_rate/0/0", "/eg_rate/0/1"} and all(new < old for old, new in r.values())
    r = changed(adjust(fm(), "attack", -1))
    assert set(r) == {"/eg_rate/0/0", "/eg_rate/0/1"} and all(new > old for old, new in r.values())
    instant = adjust(organ(), "attack", -1)
    assert not instant.changes and "click" in instant.notes[0]
    assert changed(adjust(organ(), "attack", 1))["/eg_rate/0/0"][1] < 99


def test_sharper_attack_leaves_a_later_brightness_swell_alone():
    # A brass-like onset: the carrier opens fast, its modulator slowly after it (the "blat"). Sharper
    # shortens the loudness onset only; softer stretches both, so the timbre still opens after the level.
    d = fm().model_dump()
    d["eg_rate"][0][0], d["eg_rate"][0][1] = 70, 30
    brass = Patch.model_validate(d)
    r = changed(adjust(brass, "attack", -1))
    assert set(r) == {"/eg_rate/0/0"} and r["/eg_rate/0/0"][1] > 70
    r = changed(adjust(brass, "attack", 1))
    assert set(r) == {"/eg_rate/0/0", "/eg_rate/0/1"} and all(new < old for old, new in r.values())


def test_a_click_is_judged_by_its_10_to_90_percent_rise():
    # R1 79 takes ~6 ms to the last 0.5 dB of its top but only ~3 ms from 10% to 90% of its level.
    d = organ().model_dump()
    d["sensitivity"] = [1] * 6
    d["eg_rate"] = [[79] * 6, [26] * 6, [20] * 6, [41] * 6]
    d["eg_level"] = [[99] * 6, [95] * 6, [41] * 6, [0] * 6]
    p = Patch.model_validate(d)
    sharper = adjust(p, "attack", -1)
    assert not sharper.changes and "click" in sharper.notes[0] and "10% to 90%" in sharper.notes[0]
    assert changed(adjust(p, "attack", 1))["/eg_rate/0/0"][1] < 79


def test_decay_moves_the_falling_stages_and_declines_without_a_decay():
    r = changed(adjust(fm(), "decay", 1))
    assert set(r) == {"/eg_rate/1/0", "/eg_rate/2/0"} and all(new < old for old, new in r.values())
    r = changed(adjust(fm(), "decay", -1))
    assert set(r) == {"/eg_rate/1/0", "/eg_rate/2/0"} and all(new > old for old, new in r.values())
    for p in (organ(), pad()):  # the pad settles 14 dB down: no 20 dB decay to time
        res = adjust(p, "decay", 1)
        assert not res.changes and "never decays" in res.notes[0]


def test_release_moves_r4_of_the_carriers_only():
    r = changed(adjust(pad(), "release", 1))
    assert set(r) == {"/eg_rate/3/0", "/eg_rate/3/2"} and all(new < old for old, new in r.values())
    r = changed(adjust(pad(), "release", -2))
    assert set(r) == {"/eg_rate/3/0", "/eg_rate/3/2"} and all(new > old for old, new in r.values())


def test_sustain_moves_l3_and_knows_its_limits():
    r = changed(adjust(pad(), "sustain", 1))
    assert {"/eg_level/2/0", "/eg_level/2/2"} <= set(r) <= {"/eg_level/2/0", "/eg_level/2/2", "/eg_level/1/0",
                                                           "/eg_level/1/2"}
    assert all(new > old for old, new in r.values())
    # The first decay (to L2 = 85) would pass the new sustain level: it now stops there too.
    assert r["/eg_level/1/0"][1] == r["/eg_level/2/0"][1]
    r = changed(adjust(pad(), "sustain", -1))
    assert set(r) == {"/eg_level/2/0", "/eg_level/2/2"} and all(new < old for old, new in r.values())
    assert not adjust(organ(), "sustain", 1).changes  # already holds at its peak
    assert not adjust(fm(), "sustain", -1).changes  # already 0
    assert "/eg_level/2/0" in changed(adjust(fm(), "sustain", 1))


def test_level_moves_carrier_output_levels_then_envelope_levels():
    r = changed(adjust(pad(), "level", -1))
    assert set(r) == {"/ol/0", "/ol/2"} and all(new < old for old, new in r.values())
    d = pad().model_dump()
    d["eg_level"][0] = [95] * 6
    d["ol"][0] = 99
    r = changed(adjust(Patch.model_validate(d), "level", 1))  # OL at 99: the envelope levels come up together
    assert r["/eg_level/0/0"] == (95, 99) and r["/eg_level/1/0"] == (85, 89) and r["/eg_level/2/0"] == (80, 84)
    d = organ().model_dump()
    d["ol"] = [99] * 6
    top = adjust(Patch.model_validate(d), "level", 1)
    assert not top.changes and "maximum" in top.notes[0]


def test_metallic_moves_modulator_ratios_off_and_back_onto_the_harmonics():
    up = adjust(fm(), "metallic", 1)
    assert set(changed(up)) == {"/fine/1"}
    assert not adjust(fm(), "metallic", -1).changes  # already harmonic
    back = adjust(up.patch, "metallic", -1)
    assert back.patch.fine == fm().fine
    assert changed(adjust(fm(), "metallic", 3))["/fine/1"][1] > changed(up)["/fine/1"][1]


def test_less_metal_lands_a_high_ratio_on_a_harmonic_fine_can_reach():
    # Ratio 28.4 (coarse 20, fine 42): the nearest grid point, 28.5, lies between fine steps (0.2 apart),
    # so the ratio settles on the nearest one fine can reach, 28.0.
    d = fm().model_dump()
    d["coarse"][1], d["fine"][1] = 20, 42
    r = adjust(Patch.model_validate(d), "metallic", -1)
    assert changed(r) == {"/fine/1": (42, 40)}


def test_less_metal_declines_when_the_sidebands_carry_too_little_of_the_note():
    # An off-harmonic modulator (ratio 1.3) at a high peak index that dies within ~0.1 s under a
    # carrier that holds: its sidebands are a click, the held note is already harmonic.
    d = fm().model_dump()
    d["fine"][1], d["ol"][1] = 30, 80
    d["eg_rate"] = [[99] * 6, [99] * 6, [50, 99, 50, 50, 50, 50], [50] * 6]
    d["eg_level"] = [[99] * 6, [99] * 6, [90, 0, 0, 0, 0, 0], [0] * 6]
    r = adjust(Patch.model_validate(d), "metallic", -1)
    assert not r.changes and "energy" in r.notes[0]
    d["eg_rate"][2][1] = 20  # the same modulator decaying slowly: now there is metal to take away
    r = changed(adjust(Patch.model_validate(d), "metallic", -1))
    assert set(r) == {"/fine/1"} and r["/fine/1"][1] > 30  # towards ratio 1.5


def test_vibrato_starts_a_smooth_vibrato_and_only_reduces_an_existing_one():
    d = fm().model_dump()
    d["lfo"].update(speed=90, wave="square", delay=95)
    r = adjust(Patch.model_validate(d), "vibrato", 1).patch
    assert r.lfo.pmd > 0 and r.pms > 0 and r.lfo.wave in ("sine", "triangle")
    assert 25 <= r.lfo.speed <= 45 and r.lfo.delay <= 60
    assert not adjust(fm(), "vibrato", -1).changes
    deeper = adjust(r, "vibrato", 1).patch
    assert (deeper.lfo.pmd, deeper.pms) > (r.lfo.pmd, r.pms)
    shallower = adjust(r, "vibrato", -1).patch
    assert shallower.lfo.pmd < r.lfo.pmd


def test_detune_spreads_the_carriers_symmetrically_and_pulls_them_back():
    r = adjust(pad(), "detune", 1)
    det = r.patch.detune
    # The two carriers in unison spread symmetrically; their 1:1 modulators, whose folded sidebands beat
    # against the carriers' own, move the other way (never towards their carrier).
    assert det[0] == -det[2] and det[0] < 0 and {"/detune/0", "/detune/2"} <= set(changed(r)) <= {
        "/detune/0", "/detune/1", "/detune/2", "/detune/3"}
    assert det[1] >= 0 >= det[3]
    assert adjust(r.patch, "detune", -1).patch.detune == pad().detune
    assert not adjust(pad(), "detune", -1).changes  # nothing detuned to pull together
    single = adjust(fm(), "detune", 1)  # one carrier: detuned against its 1:1 modulator
    assert set(changed(single)) == {"/detune/0", "/detune/1"}


def test_more_detune_widens_the_beat_the_way_it_already_leans():
    # OP3 sits ~10 cents above OP1 by its fine setting, although its detune value is the lower one:
    # spreading by detune value alone would pull the two together (slower beats); the edit widens the gap.
    d = pad().model_dump()
    d["fine"][2], d["detune"] = 1, [3, 0, -3, 0, 0, 0]
    p = Patch.model_validate(d)
    gap = _cents(p.model_dump(), 2) - _cents(p.model_dump(), 0)
    for n in (1, 3):
        q = adjust(p, "detune", n).patch.model_dump()
        assert _cents(q, 2) - _cents(q, 0) > gap + 5
    for n in (1, 2):  # and it never slows another beat down: less detune still undoes it
        there = adjust(p, "detune", n).patch
        assert adjust(there, "detune", -n).changes


@pytest.mark.parametrize("q", ["brightness", "attack", "decay", "release", "metallic", "detune", "level"])
@pytest.mark.parametrize("n", [1, 2])
def test_plus_then_minus_roughly_returns(q, n):
    for p in (fm(), pad()):
        there = adjust(p, q, n)
        if not there.changes:
            continue  # at a limit already: nothing to return from
        back = adjust(there.patch, q, -n).patch
        for c in diff_patches(p, back):
            assert abs(c.new - c.old) <= 3, f"{q} +{n} -{n}: {c}"


def test_a_silent_patch_changes_nothing_and_says_so():
    d = fm().model_dump()
    d["ol"] = [0] * 6
    p = Patch.model_validate(d)
    for q in QUALITIES:
        r = adjust(p, q, 2)
        assert not r.changes and "silent" in r.notes[0], (q, r.notes)


# --- the edit list -------------------------------------------------------------------------------


def test_apply_edits_runs_set_and_adjust_in_order():
    p = fm()
    r = apply_edits(p, [{"op": "set", "path": "/eg_rate/3/0", "value": 60},
                        {"op": "adjust", "quality": "level", "amount": -1},
                        {"op": "set", "path": "/lfo/wave", "value": "sine"},
                        {"op": "set", "path": "/lfo/sync", "value": False},
                        {"op": "set", "path": "/kls_left_curve/1", "value": "+exp"}])
    got = changed(r)
    assert got["/eg_rate/3/0"] == (50, 60) and got["/ol/0"][1] < 99
    assert got["/lfo/wave"] == ("triangle", "sine") and got["/lfo/sync"] == (True, False)
    assert got["/kls_left_curve/1"] == ("-lin", "+exp")
    assert r.changes == diff_patches(p, r.patch) and any(n.startswith("edit 1 (level -1)") for n in r.notes)
    # Later edits see earlier ones: a set after an adjust wins.
    r = apply_edits(p, [{"op": "adjust", "quality": "level", "amount": -1},
                        {"op": "set", "path": "/ol/0", "value": 99}])
    assert "/ol/0" not in changed(r)
    assert apply_edits(p, []).changes == []
    assert apply_edits(p.to_dict(), [{"op": "set", "path": "/ol/1", "value": 3}]).patch.ol[1] == 3


def problems_of(patch, edits) -> list:
    with pytest.raises(EditError) as info:
        apply_edits(patch, edits)
    assert str(info.value)
    return info.value.problems


@pytest.mark.parametrize("path,allowed_part", [
    ("/eg_rate/4/0", "/eg_rate/<0..3>/<0..5>"), ("/eg_rate/1", "/eg_rate/<0..3>/<0..5>"),
    ("/eg_rate/1/0/2", "/eg_rate/<0..3>/<0..5>"), ("/eg_rate/01/0", "/eg_rate/<0..3>/<0..5>"),
    ("/nope", "leaf JSON pointer"), ("eg_rate/1/0", "leaf JSON pointer"), ("/lfo", "/lfo/speed"),
    ("/name", "leaf JSON pointer"), (7, "leaf JSON pointer"),
])
def test_a_bad_path_points_at_the_path(path, allowed_part):
    probs = problems_of(fm(), [{"op": "set", "path": "/ol/0", "value": 1}, {"op": "set", "path": path, "value": 1}])
    assert [p.pointer for p in probs] == ["/edits/1/path"]
    assert allowed_part in probs[0].allowed


@pytest.mark.parametrize("path,value", [
    ("/eg_rate/3/0", 100), ("/eg_rate/3/0", -1), ("/eg_rate/3/0", 1.5), ("/eg_rate/3/0", 60.0),
    ("/eg_rate/3/0", True), ("/eg_rate/3/0", "60"), ("/eg_rate/3/0", [1]), ("/detune/2", 8),
    ("/lfo/wave", "cosine"), ("/lfo/sync", 1), ("/modmatrix/0/1", 2), ("/kls_left_curve/0", "lin"),
])
def test_a_bad_value_gets_the_patch_validators_own_message(path, value):
    p = fm()
    probs = problems_of(p, [{"op": "set", "path": path, "value": value}])
    assert [x.pointer for x in probs] == ["/edits/0/value"]
    # The same value written straight into the patch: the validator's problem at that path.
    trial = json.loads(json.dumps(p.to_dict()))
    ref = trial
    toks = path.strip("/").split("/")
    for t in toks[:-1]:
        ref = ref[int(t)] if isinstance(ref, list) else ref[t]
    ref[int(toks[-1]) if isinstance(ref, list) else toks[-1]] = value
    (want,) = [x for x in validate(trial).problems if x.pointer == path]
    assert (probs[0].found, probs[0].allowed, probs[0].message) == (want.found, want.allowed, want.message)


def test_a_null_value_is_a_problem_not_a_default():
    probs = problems_of(fm(), [{"op": "set", "path": "/pms", "value": None}])
    assert probs[0].pointer == "/edits/0/value" and probs[0].allowed == "integer 0..7"


@pytest.mark.parametrize("edit,pointer,allowed_part", [
    ({"op": "move", "path": "/ol/0", "value": 1}, "/edits/0/op", '"set", "adjust"'),
    ({"path": "/ol/0", "value": 1}, "/edits/0/op", '"set", "adjust"'),
    ({"op": ["set"]}, "/edits/0/op", '"set", "adjust"'),
    ({"op": "set", "value": 1}, "/edits/0/path", "leaf JSON pointer"),
    ({"op": "set", "path": "/ol/0"}, "/edits/0/value", "allowed value"),
    ({"op": "set", "path": "/ol/0", "value": 1, "note": "x"}, "/edits/0/note", "allowed keys: op, path, value"),
    ({"op": "adjust", "quality": "shiny", "amount": 1}, "/edits/0/quality", '"brightness"'),
    ({"op": "adjust", "quality": "level", "amount": 4}, "/edits/0/amount", "integer -3..3"),
    ({"op": "adjust", "quality": "level", "amount": -4}, "/edits/0/amount", "integer -3..3"),
    ({"op": "adjust", "quality": "level", "amount": True}, "/edits/0/amount", "integer -3..3"),
    ({"op": "adjust", "quality": "level", "amount": 1.0}, "/edits/0/amount", "integer -3..3"),
    ({"op": "adjust", "quality": "level"}, "/edits/0/amount", "integer -3..3"),
    ({"op": "adjust", "amount": 1}, "/edits/0/quality", '"brightness"'),
    ("level+1", "/edits/0", '"op"'),
])
def test_a_bad_edit_points_into_the_list(edit, pointer, allowed_part):
    probs = problems_of(fm(), [edit])
    assert pointer in [p.pointer for p in probs]
    assert allowed_part in next(p for p in probs if p.pointer == pointer).allowed


def test_the_edit_list_itself_is_checked():
    assert problems_of(fm(), {"op": "set"})[0].pointer == "/edits"
    assert "at most" in problems_of(fm(), [{"op": "adjust", "quality": "level", "amount": -1}] * 65)[0].allowed


def test_every_bad_edit_is_reported_and_nothing_is_applied():
    p = fm()
    before = p.model_dump()
    probs = problems_of(p, [{"op": "adjust", "quality": "level", "amount": -1},
                            {"op": "set", "path": "/ol/9", "value": 1},
                            {"op": "adjust", "quality": "level", "amount": 9}])
    assert [x.pointer for x in probs] == ["/edits/1/path", "/edits/2/amount"]
    assert p.model_dump() == before


def test_results_serialise_for_the_tools():
    r = apply_edits(fm(), [{"op": "adjust", "quality": "brightness", "amount": 2}])
    data = json.loads(r.model_dump_json())
    assert set(data) == {"patch", "changes", "notes"} and data["changes"][0]["path"] == "/ol/1"


# --- the factory bank: does each word move its descriptor? --------------------------------------

# The issue asks for at least 90% of the voices an edit applies to. Where a faithful minimal edit
# cannot reach that with the descriptor as defined, the floor below is the measured rate minus a small
# margin (a regression guard), with the reason; benchmarks/edits.py prints the voices that miss.
REQUIRED = 0.9
# Pairs allowed below REQUIRED, with the reason; none at present (vibrato +1, the closest, is 90.5%: about
# 15 unpitched effect voices have no pitch track before or after, so their real vibrato cannot be measured).
KNOWN_SHORTFALL: dict[tuple[str, int], float] = {}


def _benchmark():
    spec = importlib.util.spec_from_file_location("patchsmith_bench_edits", REPO / "benchmarks" / "edits.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up while being defined
    spec.loader.exec_module(mod)
    return mod


def test_factory_voices_move_their_descriptors(capsys):
    need(YAMAHA)
    for bank in FACTORY_BANKS:
        need(YAMAHA / f"{bank}.syx")
    bench = _benchmark()
    voices = bench.factory_voices()
    assert len(voices) == 256
    rows = bench.evaluate(voices, QUALITIES, (1, -1))
    with capsys.disabled():
        print("\nsemantic edits on the 256 factory voices (rate = descriptor moved / edit applied)")
        print(bench.table(rows))
    short = []
    for r in rows:
        floor = KNOWN_SHORTFALL.get((r.quality, r.amount), REQUIRED)
        if r.rate < floor:
            short.append(f"{r.quality} {r.amount:+d}: {r.moved}/{r.applied} = {r.rate:.1%} < {floor:.0%}; "
                         f"misses: {r.failures[:8]}")
    assert not short, "\n".join(short)
    # Declining must stay the exception where the quality exists in most voices.
    applied = {(r.quality, r.amount): r.applied for r in rows}
    for q in ("brightness", "attack", "release", "metallic", "vibrato", "detune"):
        assert applied[(q, 1)] >= 0.85 * len(voices), (q, applied[(q, 1)])
