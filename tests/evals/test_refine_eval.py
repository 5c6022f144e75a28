"""eval-refine: descriptor direction of an edit, and what it cost."""

from __future__ import annotations

import json

import pytest

from patchsmith.agent.systems import make_system
from patchsmith.evals.refine_eval import (InstructionSet, InstructionSetError, RefineItem, default_instruction_set,
                                          load_instruction_set, refine_markdown, run_refine_eval)
from patchsmith.evals.systems import RenderSpec, SystemOutput
from patchsmith.examples import load_examples
from patchsmith.synth.edits import apply_edits

FAST = RenderSpec(hold_s=0.8, release_s=0.4)


def test_edits_that_follow_the_instruction_score_and_doing_nothing_does_not():
    patch = load_examples()[0].patch.to_dict()
    items = InstructionSet(items=[
        RefineItem(id="a", patch=patch, instruction="brighter", quality="brightness", direction=1),
        RefineItem(id="b", patch=patch, instruction="quieter", quality="level", direction=-1)])

    def follows(p, text, render):
        quality, amount = ("brightness", 2) if text == "brighter" else ("level", -2)
        return SystemOutput(patch=apply_edits(p, [{"op": "adjust", "quality": quality, "amount": amount}]).patch.to_dict(),
                            valid=True, tool_called=True)

    good = run_refine_eval(items, follows, FAST, n_boot=50)
    assert [r["correct"] for r in good["items"]] == [True, True]
    assert all(r["changed_params"] > 0 and 0 < r["param_distance"] < 0.1 for r in good["items"])
    assert good["aggregates"]["overall"]["direction_accuracy"]["estimate"] == 1.0

    lazy = run_refine_eval(items, lambda p, text, render: SystemOutput(patch=p, valid=True), FAST, n_boot=50)
    assert [(r["observed"], r["changed_params"], r["param_distance"]) for r in lazy["items"]] == [(0, 0, 0.0)] * 2
    assert lazy["aggregates"]["overall"]["direction_accuracy"]["estimate"] == 0.0

    broken = run_refine_eval(items, lambda p, text, render: SystemOutput(error="no answer"), FAST, n_boot=50)
    assert [r["observed"] for r in broken["items"]] == [None, None]
    assert broken["aggregates"]["overall"]["validity_rate"] == 0.0
    assert "| all | 2 | 0.00" in refine_markdown(broken, "x")


def test_the_offline_designer_moves_brightness_the_asked_way():
    ex = load_examples()[1]
    items = default_instruction_set({ex.key: ex.patch}, instructions=[("brighter", "brightness", 1),
                                                                      ("darker", "brightness", -1)])
    result = run_refine_eval(items, make_system("offline").refine, FAST, n_boot=50)
    assert [r["correct"] for r in result["items"]] == [True, True]
    assert result["aggregates"]["by_quality"]["brightness"]["n"] == 2


def test_instruction_set_files_are_checked(tmp_path):
    patch = load_examples()[0].patch.to_dict()
    good = tmp_path / "set.json"
    good.write_text(json.dumps({"name": "mine", "items": [{"id": "1", "patch": patch, "instruction": "brighter",
                                                           "quality": "brightness", "direction": 1}]}))
    assert load_instruction_set(good).name == "mine"
    bad_patch = dict(patch, ol=[120] * 6)
    cases = [({"items": []}, "empty"),
             ({"items": [{"id": "1", "patch": patch, "instruction": "x", "quality": "loudness", "direction": 1}]},
              "quality: found 'loudness'"),
             ({"items": [{"id": "1", "patch": bad_patch, "instruction": "x", "quality": "level", "direction": 1}]},
              "/items/0/patch/ol/0"),
             ({"items": [{"id": "1", "patch": patch, "instruction": "x", "quality": "level", "direction": 2}]},
              "direction")]
    for data, message in cases:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data))
        with pytest.raises(InstructionSetError, match=message.replace("(", r"\(")):
            load_instruction_set(path)
    with pytest.raises(InstructionSetError, match="cannot read"):
        load_instruction_set(tmp_path / "absent.json")
