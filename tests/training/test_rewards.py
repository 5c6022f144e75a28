"""TRL reward functions: reading completions (text, tool calls, conversational), TRL's call shape, the registry,
garbage without exceptions, the audio reward and its cache."""

from __future__ import annotations

import copy
import json

import pytest

from patchsmith.schema.compact import dumps_compact
from patchsmith.training import rewards as R

from ..schema.patch_factories import core_patch, full_patch

TOTAL_W = 24.5


def truth() -> dict:
    return core_patch(5)


def answer_text(d: dict | None = None) -> str:
    return dumps_compact(d or truth())


def fenced(d: dict, think: str = "") -> str:
    return f"<think>\n{think}\n</think>\n\n```json\n{dumps_compact(d)}\n```"


def off_by(key: str, i: int, value: int) -> dict:
    d = copy.deepcopy(truth())
    d[key][i] = value
    return d


def patch_rewards(completions: list) -> dict[str, float | list]:
    """Each patch reward's score of ``completions`` against ``truth()``, where every completion scores the same.

    A reward on which the completions disagree is given as its list of scores, so the assertion shows them."""
    a = [answer_text()] * len(completions)
    out: dict = {}
    for name in ("format", "keys", "distance", "gated_distance", "toolrl_exact", "gated_toolrl_exact"):
        scores = R.REWARDS[name](completions, answer=a)
        assert len(scores) == len(completions)
        out[name] = scores[0] if len(set(scores)) == 1 else scores
    return out


def test_answer_format_and_tool_formats_read_the_same_patch():
    t = truth()
    forms = [
        fenced(t, "a bright bell"),
        "```json\n" + json.dumps(t) + "\n```",
        json.dumps(t),  # bare, no fences
        "<think>x</think>\n<tool_call>\n" + json.dumps({"name": "render_patch", "arguments": {"patch": t}}) + "\n</tool_call>",
        '<tool_call>\n{"name": "render_patch", "arguments": {"patch": ' + dumps_compact(t) + "}}\n</tool_call>",
        [{"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "render_patch", "arguments": {"patch": t}}}]}],
        [{"role": "assistant", "tool_calls": [  # TRL's parse_response may leave out "content"
            {"type": "function", "function": {"name": "render_patch", "arguments": json.dumps({"patch": t})}}]}],
        [{"role": "assistant", "content": "<tool_call>\n" + json.dumps({"name": "render_patch",
                                                                        "arguments": {"patch": t}}) + "\n</tool_call>"}],
        [{"role": "assistant", "content": fenced(t)}],
        {"role": "assistant", "content": fenced(t)},
        "```json\n" + json.dumps({"patch": t}) + "\n```",
    ]
    for f in forms:
        assert R.extract_patch(f) == t, f
    assert patch_rewards(forms) == {"format": 1.0, "keys": 1.0, "distance": 1.0, "gated_distance": 1.0,
                                    "toolrl_exact": 3.0, "gated_toolrl_exact": 3.0}


def test_the_last_patch_and_the_render_call_win():
    t, other = truth(), off_by("ol", 0, 10)
    text = f"draft:\n```json\n{json.dumps(other)}\n```\nfinal:\n```json\n{json.dumps(t)}\n```"
    assert R.extract_patch(text) == t
    calls = [{"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "render_patch", "arguments": {"patch": t}}},
        {"type": "function", "function": {"name": "validate_patch", "arguments": {"patch": other}}}]}]
    assert R.extract_patch(calls) == t
    conversation = [{"role": "user", "content": "x"}, {"role": "assistant", "content": fenced(other)},
                    {"role": "tool", "content": "{}"}, {"role": "assistant", "content": fenced(t)}]
    assert R.extract_patch(conversation) == t
    # A patch inside the think block is reasoning, not the answer.
    assert R.extract_patch(f"<think>\n```json\n{json.dumps(t)}\n```\n") is None


def test_hand_computed_rewards():
    a = [answer_text()]
    c = [fenced(off_by("fine", 0, 33))]
    assert R.distance_reward(c, answer=a)[0] == pytest.approx(1 - (33 / 99) / 6 / TOTAL_W)
    assert R.toolrl_exact_reward(c, answer=a)[0] == pytest.approx(6 * 129 / 130 - 3)
    flipped = copy.deepcopy(truth())
    flipped["outmatrix"][0] = 1 - flipped["outmatrix"][0]
    c = [fenced(flipped)]
    assert R.gated_distance_reward(c, answer=a)[0] == pytest.approx((4 + 4 * 5 / 6) / TOTAL_W)
    assert R.gated_toolrl_exact_reward(c, answer=a)[0] == pytest.approx(6 * (2 + 41) / 130 - 3)
    custom = R.make_distance_reward(R.GroupWeights(keys={"outmatrix": 0}), name="no_outmatrix")
    assert custom.__name__ == "no_outmatrix"
    assert custom(c, answer=a) == [1.0]


def test_rewards_fall_as_a_value_moves_away():
    a = [answer_text()]
    start = truth()["ol"][1]
    seq = [fenced(off_by("ol", 1, v)) for v in range(start, -1, -8)]
    d = R.distance_reward(seq, answer=a * len(seq))
    assert d[0] == 1.0 and all(x > y for x, y in zip(d, d[1:]))
    tr = R.toolrl_exact_reward(seq, answer=a * len(seq))
    assert tr[0] == 3.0 and all(x >= y for x, y in zip(tr, tr[1:])) and tr[-1] < 3.0


GARBAGE = [None, "", "no patch here", "{", "```json\n{\"modmatrix\": \n```", "<think>thinking forever",
           "<tool_call>\n{not json}\n</tool_call>", "<tool_call>\n{\"name\": \"render_patch\", \"arguments\": 5}",
           "[1, 2, 3]", "x" * 500_000, "{" * 100_000, "```json\n" + "[" * 50_000 + "\n```", 12, 3.5,
           ["not a message"], [], [{"role": "user", "content": fenced(core_patch(5))}],
           [{"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "render_patch",
                                                                              "arguments": "{bad"}}]}],
           [{"role": "assistant", "content": [{"type": "text", "text": "no"}]}], {"role": "assistant"},
           "```python\n{'modmatrix': 1}\n```", b"bytes"]


def test_garbage_scores_the_minimum_without_exceptions():
    assert patch_rewards(GARBAGE) == {"format": 0.0, "keys": 0.0, "distance": 0.0, "gated_distance": 0.0,
                                      "toolrl_exact": -3.0, "gated_toolrl_exact": -3.0}


def test_partial_patches_get_partial_credit_but_no_format():
    t = truth()
    partial = {k: v for k, v in t.items() if k not in ("eg_rate", "eg_level")}
    c = ["```json\n" + json.dumps(partial) + "\n```"]
    a = [answer_text()]
    assert R.format_reward(c) == [0.0]
    assert R.keys_reward(c) == [pytest.approx(10 / 12)]
    assert R.distance_reward(c, answer=a) == [pytest.approx(1 - 4 / TOTAL_W)]
    # Duplicate keys: json keeps the last value, the strict format check refuses it.
    dup = "```json\n" + json.dumps(t)[:-1] + ', "feedback": 6}\n```'
    assert R.format_reward([dup]) == [0.0]
    assert R.distance_reward([dup], answer=a) == [1.0]


def test_trl_call_shape_with_conversational_completions():
    """GRPOTrainer calls reward_func(prompts=, completions=, completion_ids=, **columns, trainer_state=, log_extra=,
    log_metric=) with every column repeated per generation (reference §3.1)."""
    t = truth()
    prompts = [[{"role": "user", "content": "bell /no_think"}]] * 4
    completions = [
        [{"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "render_patch", "arguments": {"patch": t}}}]}],
        [{"role": "assistant", "content": fenced(off_by("ol", 0, 0))}],
        [{"role": "assistant", "content": "I refuse."}],
        [{"role": "assistant", "content": "", "reasoning_content": "hmm"}],
    ]
    kwargs = dict(prompts=prompts, completions=completions, completion_ids=[[1, 2]] * 4, answer=[answer_text()] * 4,
                  id=["a"] * 4, trainer_state=None, log_extra=lambda *a, **k: None, log_metric=lambda *a, **k: None)
    funcs, weights = R.reward_functions({"format": 1.0, "keys": 0.5, "distance": 3.0, "gated_distance": 1,
                                         "toolrl_exact": 1.0, "gated_toolrl_exact": 1.0})
    assert weights == [1.0, 0.5, 3.0, 1.0, 1.0, 1.0]
    out = {f.__name__: f(**kwargs) for f in funcs}
    assert out["format_reward"] == [1.0, 1.0, 0.0, 0.0]
    assert out["distance_reward"][0] == 1.0 and 0.9 < out["distance_reward"][1] < 1.0
    assert out["distance_reward"][2:] == [0.0, 0.0]
    assert out["toolrl_exact_reward"][0] == 3.0 and out["toolrl_exact_reward"][2:] == [-3.0, -3.0]
    assert all(len(v) == 4 for v in out.values())


def test_answers_missing_or_invalid():
    with pytest.raises(ValueError, match="answer"):
        R.distance_reward([fenced(truth())])
    with pytest.raises(ValueError, match="one per completion"):
        R.distance_reward([fenced(truth())] * 2, answer=[answer_text()] * 3)
    # A bad ground truth row is "not applicable" (None -> NaN in TRL), never a crash; format needs no answer.
    assert R.distance_reward([fenced(truth())] * 2, answer=["{bad", answer_text()]) == [None, 1.0]
    assert R.toolrl_exact_reward([fenced(truth())], answer=[None]) == [None]
    assert R.format_reward([fenced(truth())]) == [1.0]
    # The answer may be a dict (a non-string column) as well.
    assert R.distance_reward([fenced(truth())], answer=[truth()]) == [1.0]


def test_registry_and_names():
    assert set(R.REWARDS) == {"format", "keys", "distance", "gated_distance", "toolrl_exact", "gated_toolrl_exact",
                              "audio"}
    names = [f.__name__ for f in R.REWARDS.values()]
    assert len(set(names)) == len(names) and all(n.endswith("_reward") for n in names)
    with pytest.raises(ValueError, match="allowed"):
        R.reward_functions({"nope": 1.0})
    with pytest.raises(ValueError, match="finite"):
        R.reward_functions({"format": float("nan")})
    with pytest.raises(ValueError):
        R.reward_functions({})


def test_audio_reward():
    audio = R.AudioReward(hold_s=0.4, release_s=0.2, sample_rate=16000)
    t = full_patch()
    a = [dumps_compact(t)] * 4
    darker = copy.deepcopy(t)
    darker["ol"] = [o if c else 0 for o, c in zip(darker["ol"], darker["outmatrix"])]  # modulators off
    quieter = copy.deepcopy(t)
    quieter["ol"] = [max(0, o - 40) for o in quieter["ol"]]
    out = audio([fenced(t), fenced(darker), fenced(quieter), "garbage"], answer=a)
    assert out[0] == pytest.approx(1.0)
    assert 0.0 < out[1] < 1.0 and 0.0 < out[2] < 1.0
    assert out[3] == 0.0
    info = audio.cache_info()
    assert info["misses"] == 3  # truth, darker, quieter; the truth rendered once for four answers
    again = audio([fenced(t), fenced(darker), fenced(quieter), "garbage"], answer=a)
    assert again == out and audio.cache_info()["misses"] == 3 and audio.cache_info()["hits"] > info["hits"]
    # A patch that does not validate strictly does not render: 0.
    floaty = copy.deepcopy(t)
    floaty["feedback"] = 6.0
    assert audio(["```json\n" + json.dumps(floaty) + "\n```"], answer=a[:1]) == [0.0]
    with pytest.raises(ValueError):
        R.AudioReward(mel_weight=2)


def test_keys_reward_agrees_with_keys_score():
    from patchsmith.evals.patch_scores import keys_score

    t = truth()
    objs = [t, {k: v for k, v in t.items() if k != "ol"}, dict(t, coarse=[1, 2]), dict(t, eg_rate=[[1] * 6] * 3),
            dict(t, feedback=[1]), {"bogus": 1}, dict(t, fine="x")]
    for o in objs:
        text = "```json\n" + json.dumps(o) + "\n```"
        assert R.keys_reward([text]) == [keys_score(o)], o
