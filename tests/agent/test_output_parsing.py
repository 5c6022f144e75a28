"""Reading raw model text: think blocks, Qwen3 tool calls, fenced JSON patches, the refinement message."""

from __future__ import annotations

import json

import pytest

from patchsmith.agent.output_parsing import (
    MAX_TEXT,
    compose_request,
    fenced_blocks,
    find_patch,
    parse_model_output,
    parse_tool_calls,
    split_request,
    split_think,
)


@pytest.mark.parametrize("text, reasoning, rest", [
    ("<think>\nlet me see\n</think>\n\nthe answer", "let me see", "the answer"),
    ("<think>\n\n</think>\n\nanswer", "", "answer"),            # the empty block of /no_think
    ("started in the prompt</think>\nanswer", "started in the prompt", "answer"),  # template pre-filled <think>
    ("<think>cut off while thinking", "cut off while thinking", ""),
    ("no think block at all", None, "no think block at all"),
    ("", None, ""),
])
def test_split_think(text, reasoning, rest):
    assert split_think(text) == (reasoning, rest)


def test_qwen_tool_calls_dict_and_string_arguments():
    text = ('<tool_call>\n{"name": "render_patch", "arguments": {"patch": {"feedback": 1}, "notes": [60]}}\n'
            '</tool_call>\n<tool_call>\n{"name": "describe_patch", "arguments": "{\\"patch\\": {}}"}\n</tool_call>')
    calls = parse_tool_calls(text)
    assert [c.name for c in calls] == ["render_patch", "describe_patch"]
    assert json.loads(calls[0].arguments) == {"patch": {"feedback": 1}, "notes": [60]}
    assert calls[1].arguments == '{"patch": {}}'
    assert all(c.problem is None for c in calls)


def test_malformed_tool_call_keeps_the_name_and_says_why():
    [call] = parse_tool_calls('<tool_call>{"name": "render_patch", "arguments": {"patch": {]}</tool_call>')
    assert call.name == "render_patch"
    assert "not valid JSON" in call.problem and "line 1" in call.problem


def test_tool_call_without_a_name_and_an_unclosed_one():
    [bad] = parse_tool_calls("<tool_call>[1, 2]</tool_call>")
    assert bad.name == "" and "must be an object" in bad.problem
    [cut] = parse_tool_calls('<tool_call>\n{"name": "validate_patch", "arguments": {"patch": {}}}')
    assert cut.name == "validate_patch" and cut.problem is None


def test_source_research_style_answer():
    patch = {"feedback": 3, "ol": [99, 80, 0, 0, 0, 0]}
    text = f"<think>\nA bright bell needs a ratio of 3.5.\n</think>\n\n```json\n{json.dumps(patch)}\n```"
    out = parse_model_output(text)
    assert out.reasoning.startswith("A bright bell")
    assert out.patch == patch and out.problems == [] and out.tool_calls == []


def test_last_fenced_block_wins_and_patch_wrapper_is_unwrapped():
    text = '```json\n{"draft": 1}\n```\nbetter:\n```json\n{"patch": {"feedback": 2}}\n```'
    assert find_patch(text) == ({"feedback": 2}, [])


def test_bare_object_and_python_literal():
    assert find_patch('Here it is: {"feedback": 4} done')[0] == {"feedback": 4}
    assert find_patch("```python\n{'feedback': 5, 'name': 'X'}\n```")[0] == {"feedback": 5, "name": "X"}


def test_unparsable_block_is_a_problem_not_an_exception():
    patch, problems = find_patch('```json\n{"feedback": [1, 2\n```')
    assert patch is None and len(problems) == 1 and "does not parse" in problems[0]
    patch, problems = find_patch("```json\n[1, 2, 3]\n```")
    assert patch is None and "list" in problems[0]


def test_plain_text_answer_has_no_problems():
    out = parse_model_output("A warm pad with slow attack.")
    assert out.patch is None and out.problems == [] and out.content == "A warm pad with slow attack."


def test_truncated_inside_think_is_a_problem():
    out = parse_model_output("<think>I will now write the patch")
    assert out.patch is None and any("inside the <think> block" in p for p in out.problems)


def test_huge_and_garbage_input_never_raises():
    assert parse_model_output("x" * (MAX_TEXT + 1)).problems
    for junk in ["```", "```json", "<tool_call>", "<think></think><tool_call>{</tool_call>", "{" * 5000, None]:
        parse_model_output(junk)  # must not raise
    assert fenced_blocks("```json\n{}") == [("json", "{}")]


def test_request_round_trip():
    patch_text = '{\n  "feedback": 3\n}'
    message = compose_request("shorter decay, a bit brighter", patch_text)
    assert split_request(message) == ("shorter decay, a bit brighter", {"feedback": 3})
    assert split_request("deep punchy bass") == ("deep punchy bass", None)
    assert compose_request("deep punchy bass", None) == "deep punchy bass"
