"""Patch scores: hand-computed values, the truth scores the maximum, scores fall as a value moves away,
garbage scores the minimum without exceptions, and the fast strict check agrees with the validator."""

from __future__ import annotations

import copy
import json
import math
import random

import pytest

from patchsmith.evals.patch_scores import (GroupWeights, PatchScores, distance_score, format_score, keys_score,
                                           score_patch, toolrl_exact_score)
from patchsmith.schema.patch import Patch
from patchsmith.schema.validate import pairs_to_dict, parse_patch, validate

from ..schema.patch_factories import core_patch, full_patch, random_patch

TOTAL_W = 4 + 4 + 3 + 3 + 1.5 + 1 + 1 + 0.5 + 2 + 2 + 2 + 0.5  # 24.5, the source research's weights


def truth() -> dict:
    return core_patch(5)


def moved(path: tuple, value) -> dict:
    d = copy.deepcopy(truth())
    node = d
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return d


def test_truth_scores_the_maximum():
    s = score_patch(truth(), truth())
    assert s == PatchScores(format=1.0, keys=1.0, distance=1.0, distance_gated=1.0, toolrl_exact=3.0,
                            toolrl_exact_gated=3.0)
    full = full_patch()
    assert score_patch(Patch(**full), full).distance == 1.0
    assert distance_score(full, full, GroupWeights(voice=True)) == 1.0
    # The truth as JSON text (the GRPO answer column) is the same truth.
    assert score_patch(truth(), json.dumps(truth())) == s


def test_hand_computed_numeric_distance():
    t = truth()  # fine[0] = 0, eg_rate[3][5] = 70
    assert distance_score(moved(("fine", 0), 33), t) == pytest.approx(1 - 1.0 * (33 / 99) / 6 / TOTAL_W)
    assert distance_score(moved(("eg_rate", 3, 5), 20), t) == pytest.approx(1 - 2.0 * (50 / 99) / 24 / TOTAL_W)
    assert distance_score(moved(("transpose",), 24), t) == pytest.approx(1 - 0.5 * 1.0 / TOTAL_W)  # -24 -> 24: full range
    assert distance_score(moved(("detune", 0), 0), t) == pytest.approx(1 - 1.0 * (7 / 14) / 6 / TOTAL_W)


def test_hand_computed_binary_and_gate():
    t = truth()
    flipped = copy.deepcopy(t)
    flipped["outmatrix"][1] = 1 - flipped["outmatrix"][1]
    assert distance_score(flipped, t) == pytest.approx(1 - 4.0 * (1 / 6) / TOTAL_W)
    # Gate closed: only modmatrix (1.0) and outmatrix (5/6) earn credit; the other weights stay in the denominator.
    assert distance_score(flipped, t, gated=True) == pytest.approx((4.0 * 1 + 4.0 * 5 / 6) / TOTAL_W)
    # ToolRL: 128 names match; 127 exact values, or only the 41 right gate values when gated.
    assert toolrl_exact_score(flipped, t) == pytest.approx(6 * (1 + 1 + 127) / 130 - 3)
    assert toolrl_exact_score(flipped, t, gated=True) == pytest.approx(6 * (1 + 1 + 41) / 130 - 3)
    # A wrong fixed_freq is not a gate key: the gated scores equal the plain ones.
    ff = moved(("fixed_freq", 0), 1)
    assert distance_score(ff, t, gated=True) == distance_score(ff, t) == pytest.approx(1 - 3.0 / 6 / TOTAL_W)


def test_hand_computed_toolrl_names():
    t = truth()
    assert toolrl_exact_score(moved(("fine", 0), 33), t) == pytest.approx(6 * 129 / 130 - 3)
    # A missing key loses its names and values; an unknown key adds a name the truth lacks.
    no_fine = {k: v for k, v in t.items() if k != "fine"}
    assert toolrl_exact_score(no_fine, t) == pytest.approx(6 * (1 + 122 / 128 + 122) / 130 - 3)
    extra = dict(t, bogus=1)
    assert toolrl_exact_score(extra, t) == pytest.approx(6 * (1 + 128 / 129 + 128) / 130 - 3)
    # 3.0 is not exactly 3 for ToolRL, but is a perfect numeric match for the distance.
    floaty = moved(("feedback",), 6.0)
    assert toolrl_exact_score(floaty, t) == pytest.approx(6 * 129 / 130 - 3)
    assert distance_score(floaty, t) == 1.0
    assert format_score(floaty) == 0.0
    # A short array: the names it has match, the values too.
    short = moved(("coarse",), [1, 2, 1])
    assert toolrl_exact_score(short, t) == pytest.approx(6 * (1 + 125 / 128 + 125) / 130 - 3)


def test_group_weights():
    t = truth()
    p = moved(("feedback",), 0)  # 6 -> 0 of 0..7
    assert distance_score(p, t) == pytest.approx(1 - 3.0 * (6 / 7) / TOTAL_W)
    assert distance_score(p, t, GroupWeights(keys={"feedback": 0})) == 1.0
    assert distance_score(p, t, GroupWeights(topology=2)) == pytest.approx(1 - 6.0 * (6 / 7) / (TOTAL_W + 14))
    g = GroupWeights.model_validate({"global": 0})
    assert g.global_ == 0
    assert distance_score(moved(("transpose",), 0), t, g) == 1.0
    with pytest.raises(ValueError, match="unknown key"):
        distance_score(p, t, GroupWeights(keys={"nope": 1}))
    with pytest.raises(ValueError, match="sum to 0"):
        distance_score(p, t, GroupWeights(topology=0, amplitude=0, frequency=0, global_=0))
    with pytest.raises(ValueError):
        GroupWeights(topology=-1)


def test_voice_keys_count_only_when_asked():
    full = full_patch()
    core_only = {k: v for k, v in full.items() if k in truth()}
    assert distance_score(core_only, full) == 1.0
    s = distance_score(core_only, full, GroupWeights(voice=True))
    assert 0.9 < s < 1.0
    # Absent means neutral default: a truth without voice keys matches a prediction without them.
    assert distance_score(truth(), truth(), GroupWeights(voice=True)) == 1.0
    wrong_wave = dict(full, lfo=dict(full["lfo"], wave="square"))
    assert distance_score(wrong_wave, full, GroupWeights(voice=True)) == pytest.approx(1 - 0.5 / (TOTAL_W + 8.5))


@pytest.mark.parametrize("key,index,step", [("ol", (1,), 7), ("eg_level", (2, 3), 5), ("coarse", (0,), 2),
                                            ("transpose", (), 4)])
def test_scores_fall_as_a_value_moves_away(key, index, step):
    t = truth()
    p = next(p for p in __import__("patchsmith.schema.params", fromlist=["x"]).CORE_PARAMS if p.key == key)
    start = t[key] if not index else t[key][index[0]] if len(index) == 1 else t[key][index[0]][index[1]]
    values = [v for v in range(start, p.high + 1, step)] if start + step <= p.high else \
        [v for v in range(start, p.low - 1, -step)]
    dists, tools = [], []
    for v in values:
        d = moved((key, *index), v)
        dists.append(distance_score(d, t))
        tools.append(toolrl_exact_score(d, t))
    assert dists[0] == 1.0 and tools[0] == 3.0
    assert all(a > b for a, b in zip(dists, dists[1:])), dists
    assert all(a >= b for a, b in zip(tools, tools[1:])) and tools[-1] < 3.0


GARBAGE = [None, "", "not json", 5, 3.5, True, [], [1, 2], {}, {"modmatrix": "x"}, {"modmatrix": [[None] * 6] * 6},
           {"coarse": [[1] * 1000] * 6}, {"fine": [float("nan")] * 6, "ol": [float("inf")] * 6},
           {"eg_rate": [[10**400] * 6] * 4}, {"bogus": {"deep": [[[[[]]]]]}}, {1: 2, None: 3},
           {"ol": list(range(10**5))}, object()]


@pytest.mark.parametrize("obj", GARBAGE, ids=lambda o: type(o).__name__ + str(len(repr(o)) if o is not None else ""))
def test_garbage_scores_the_minimum_without_exceptions(obj):
    t = truth()
    s = score_patch(obj, t)
    assert s.format == 0.0
    assert 0.0 <= s.keys <= 2 / 12
    assert 0.0 <= s.distance_gated <= s.distance < 0.05
    assert -3.0 <= s.toolrl_exact_gated <= s.toolrl_exact < -2.8
    assert format_score(obj) == 0.0 and keys_score(obj) == s.keys


def test_recursive_and_deep_objects():
    loop: list = []
    loop.append(loop)
    deep: list = []
    node = deep
    for _ in range(5000):
        node.append([])
        node = node[0]
    for obj in ({"coarse": loop}, {"modmatrix": deep}, {"coarse": [loop] * 6}):
        s = score_patch(obj, truth())
        assert s.format == 0.0 and s.distance == 0.0


def test_keys_score_counts_present_well_shaped_keys():
    t = truth()
    d = {k: v for k, v in t.items() if k != "fine"}
    d["coarse"] = [1, 2]
    assert keys_score(d) == pytest.approx(10 / 12)
    assert keys_score(t) == 1.0
    assert keys_score(Patch(**t)) == 1.0
    # The shape counts, not the values.
    assert keys_score(moved(("ol",), ["a"] * 6)) == 1.0


def test_bad_truth_is_a_clear_error():
    with pytest.raises(ValueError, match="ground-truth patch is not valid"):
        score_patch(truth(), {"modmatrix": 1})
    with pytest.raises(ValueError, match="not valid"):
        distance_score(truth(), "{not json")


def test_fast_format_check_agrees_with_the_validator():
    rnd = random.Random(7)
    mutations = [
        lambda d: d.__setitem__("feedback", 8), lambda d: d.__setitem__("feedback", True),
        lambda d: d.__setitem__("feedback", 3.0), lambda d: d.__setitem__("name", "x" * 11),
        lambda d: d.__setitem__("name", "caf\u00e9"), lambda d: d.__setitem__("lfo", {"wave": "saw"}),
        lambda d: d.__setitem__("lfo", {"speed": 3, "bogus": 1}), lambda d: d.__setitem__("osc_sync", 1),
        lambda d: d.__setitem__("kls_left_curve", ["-lin"] * 5), lambda d: d.__setitem__("pms", None),
        lambda d: d.__setitem__("modmatrix", None), lambda d: d.pop("ol"), lambda d: d.__setitem__("extra", 1),
        lambda d: d.__setitem__("ams", [0, 0, 0, 0, 0, 4]), lambda d: d.__setitem__("lfo", None),
        lambda d: d.__setitem__("lfo", {"sync": "true"}), lambda d: d.__setitem__("coarse", (1, 2, 3, 4, 5, 6)),
    ]
    checked = 0
    for i in range(300):
        d = random_patch(rnd, nulls=True)
        if i % 2:
            rnd.choice(mutations)(d)
        assert format_score(d) == (1.0 if validate(d).valid else 0.0), d
        checked += 1
    # Duplicate keys (json.loads keeps the last) fail the strict check, as in the validator.
    text = json.dumps(truth())[:-1] + ', "feedback": 1}'
    dup = json.loads(text, object_pairs_hook=pairs_to_dict)
    assert format_score(dup) == 0.0 and not validate(dup).valid
    assert checked == 300


def test_patch_objects_and_parsed_patches_score_alike():
    t = truth()
    p = parse_patch(moved(("ol", 0), 50))
    assert score_patch(p, t) == score_patch(p.to_dict(), t)
    assert math.isclose(score_patch(p, Patch(**t)).distance, 1 - 2 * (49 / 99) / 6 / TOTAL_W)


def test_scores_import_nothing_above_evals():
    """evals sits below server, agent and training: the scores must not pull them (or torch) in."""
    import subprocess
    import sys

    code = ("import sys, patchsmith.evals.patch_scores; "
            "bad = [m for m in sys.modules if m.split('.')[:2] in (['patchsmith', 'agent'], ['patchsmith', 'server'], "
            "['patchsmith', 'training']) or m in ('torch', 'transformers', 'trl', 'datasets')]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
