"""One source, three views: the MCP schemas, the OpenAI plain tools and the strict ones agree."""

from __future__ import annotations

import copy
import json
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator
from mcp import Client

from patchsmith.schema.jsonschema import patch_json_schema
from patchsmith.schema.openai_tools import mcp_tool_to_openai, openai_tools, strict_schema
from patchsmith.schema.tools import (MAX_EDITS, TOOLS, TOOLS_BY_NAME, DescriptorChangeInfo, EvidenceSegmentInfo,
                                     Quality, input_schema, output_schema)
from patchsmith.server.app import build_server

from .server_support import BELL, EPIANO, bad_patch

STRICT_KEYWORDS = {"type", "enum", "anyOf", "minimum", "maximum", "minItems", "maxItems", "pattern", "description",
                   "properties", "required", "additionalProperties", "items", "$defs", "$ref", "format",
                   "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}


def walk(schema: Any):
    """Every schema object inside a schema (property maps skipped, their values visited)."""
    if isinstance(schema, list):
        for x in schema:
            yield from walk(x)
    elif isinstance(schema, dict):
        yield schema
        for k, v in schema.items():
            if k in ("properties", "$defs"):
                for sub in v.values():
                    yield from walk(sub)
            elif isinstance(v, (dict, list)):
                yield from walk(v)


def listed_tools():
    async def main():
        async with Client(build_server(warm=False)) as client:
            return (await client.list_tools()).tools
    return anyio.run(main)


def test_published_schemas_are_the_generated_ones():
    tools = listed_tools()
    for tool, spec in zip(tools, TOOLS):
        assert tool.name == spec.name and tool.description == spec.description
        assert tool.input_schema == input_schema(spec) and tool.output_schema == output_schema(spec)
        Draft202012Validator.check_schema(tool.input_schema)
        Draft202012Validator.check_schema(tool.output_schema)
        assert "$ref" not in json.dumps(tool.input_schema)


def test_the_patch_argument_is_the_patch_schema():
    expected = patch_json_schema()
    expected.pop("$schema")
    for spec in TOOLS:
        props = input_schema(spec)["properties"]
        if "patch" in props:
            assert props["patch"] == expected, spec.name
        if "patches" in props:
            assert props["patches"]["items"] == expected
    assert output_schema(TOOLS_BY_NAME["edit_patch"])["properties"]["patch"] == expected


def test_strict_tools_follow_the_strict_rules():
    for tool in openai_tools(strict=True):
        params = tool["function"]["parameters"]
        assert tool["function"]["strict"] is True and params["type"] == "object" and "anyOf" not in params
        for node in walk(params):
            assert set(node) <= STRICT_KEYWORDS, (tool["function"]["name"], set(node) - STRICT_KEYWORDS)
            if node.get("type") == "object" or "properties" in node:
                assert node["additionalProperties"] is False
                assert node["required"] == list(node["properties"])


def test_chat_and_responses_forms():
    tool = listed_tools()[0]
    chat = mcp_tool_to_openai(tool)
    flat = mcp_tool_to_openai(tool, strict=True, api="responses")
    assert chat["type"] == "function" and chat["function"]["name"] == "render_patch"
    assert chat["function"]["parameters"] == tool.input_schema and chat["function"]["strict"] is False
    assert flat["name"] == "render_patch" and flat["strict"] is True and "function" not in flat
    with pytest.raises(ValueError, match="tool name"):
        mcp_tool_to_openai({"name": "bad name!", "inputSchema": {"type": "object"}})


def fill_nulls(schema: dict[str, Any], value: Any) -> Any:
    """Arguments as a strict-mode model sends them: every optional key present, null when not given."""
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [fill_nulls(schema["items"], v) for v in value]
    if not isinstance(value, dict):
        return value
    if "properties" not in schema:
        for branch in schema.get("anyOf", []):
            if isinstance(branch, dict) and "properties" in branch and set(value) <= set(branch["properties"]):
                return fill_nulls(branch, value)
        return value
    return {k: (fill_nulls(s, value[k]) if k in value else None) for k, s in schema["properties"].items()} | \
        {k: v for k, v in value.items() if k not in schema["properties"]}


GOOD = {
    "render_patch": [{"patch": EPIANO}, {"patch": BELL, "notes": [48, 72], "velocity": 80, "hold_s": 0.2,
                                         "release_s": 0.1, "sample_rate": 16000, "return_audio": False}],
    "render_evidence": [{"patch": EPIANO, "segment_s": 0.3, "sample_rate": 16000},
                        {"patch": EPIANO, "mode": "on", "operators": [1, 2], "segment_s": 0.3, "shuffle": True,
                         "seed": 7, "note": 50, "velocity": 90, "hold_s": 0.2, "sample_rate": 16000,
                         "return_audio": False}],
    "validate_patch": [{"patch": EPIANO}, {"patch": BELL, "lenient": True}],
    "describe_patch": [{"patch": EPIANO}, {"patch": BELL, "note": 72, "velocity": 64, "sample_rate": 44100}],
    "edit_patch": [{"patch": EPIANO, "edits": []},
                   {"patch": EPIANO, "edits": [{"op": "set", "path": "/lfo/wave", "value": "sine"},
                                               {"op": "adjust", "quality": "decay", "amount": -2}], "render": False}],
    "import_sysex": [],  # good dumps are exercised in test_inprocess; the schema only says "a string"
    "export_sysex": [{"patches": [EPIANO]}, {"patches": [EPIANO, BELL], "format": "bank"}],
    "search_presets": [{"query": "bell"}, {"query": "warm pad", "limit": 2}],
}

BAD = {
    "render_patch": [{"patch": bad_patch()}, {"patch": EPIANO, "notes": list(range(17))},
                     {"patch": EPIANO, "sample_rate": 96000}, {"patch": EPIANO, "velocity": 0},
                     {"patch": EPIANO, "velocity": "100"}, {"patch": EPIANO, "hold_s": 31}, {"patch": EPIANO, "x": 1},
                     {"notes": [60]}, {"patch": {k: v for k, v in EPIANO.items() if k != "ol"}},
                     {"patch": {**EPIANO, "lfo": {"speed": 100}}}],
    "render_evidence": [{"patch": EPIANO, "operators": [7]}, {"patch": EPIANO, "mode": "sideways"},
                        {"patch": EPIANO, "segment_s": 0}, {"patch": EPIANO, "operators": []}],
    "validate_patch": [{"patch": EPIANO, "lenient": "yes"}],
    "describe_patch": [{"patch": EPIANO, "note": 128}, {"patch": EPIANO, "sample_rate": 8000}],
    "edit_patch": [{"patch": EPIANO}, {"patch": EPIANO, "edits": [{"op": "frob"}]},
                   {"patch": EPIANO, "edits": [{"op": "adjust", "quality": "decay", "amount": 5}]},
                   {"patch": EPIANO, "edits": [{"op": "adjust", "quality": "shiny", "amount": 1}]},
                   {"patch": EPIANO, "edits": [{"op": "adjust", "quality": "decay", "amount": 1}] * (MAX_EDITS + 1)}],
    "import_sysex": [{"data_base64": 5}, {}],
    "export_sysex": [{"patches": []}, {"patches": [EPIANO] * 33}, {"patches": [bad_patch()]},
                     {"patches": [EPIANO], "format": "syx"}],
    "search_presets": [{"query": ""}, {"query": "bell", "limit": 0}, {"query": "bell", "limit": 21}],
}

CASES = [(name, args, True) for name, cases in GOOD.items() for args in cases] + \
        [(name, args, False) for name, cases in BAD.items() for args in cases]


@pytest.fixture(scope="module")
def views():
    mcp = {t.name: t.input_schema for t in listed_tools()}
    plain = {t["function"]["name"]: t["function"]["parameters"] for t in openai_tools(listed_tools())}
    strict = {t["function"]["name"]: t["function"]["parameters"] for t in openai_tools(listed_tools(), strict=True)}
    return mcp, plain, strict


@pytest.mark.parametrize("name,arguments,good", CASES, ids=[f"{c[0]}-{'good' if c[2] else 'bad'}{i}"
                                                            for i, c in enumerate(CASES)])
def test_mcp_plain_and_strict_agree(views, name, arguments, good):
    mcp, plain, strict = views
    strict_args = fill_nulls(strict[name], copy.deepcopy(arguments))
    verdicts = (Draft202012Validator(mcp[name]).is_valid(arguments),
                Draft202012Validator(plain[name]).is_valid(arguments),
                Draft202012Validator(strict[name]).is_valid(strict_args))
    assert verdicts == (good, good, good), verdicts


def test_the_server_agrees_with_the_schemas():
    # The server's verdict on the same arguments, sent as they are and as a strict-mode model sends them.
    strict = {t["function"]["name"]: t["function"]["parameters"] for t in openai_tools(strict=True)}
    server = build_server()

    async def main():
        async with Client(server) as client:
            for name, arguments, good in CASES:
                if name == "validate_patch" and not good:
                    continue
                for args in (arguments, fill_nulls(strict[name], copy.deepcopy(arguments))):
                    r = await client.call_tool(name, args)
                    assert r.is_error == (not good), (name, args, r.content[0].text[:300])
    anyio.run(main)


def test_strict_conversion_of_the_patch_is_the_strict_patch_schema():
    converted = Draft202012Validator(strict_schema(patch_json_schema()))
    reference = Draft202012Validator(patch_json_schema(strict=True))
    full = {**patch_json_schema(strict=True)["properties"]}
    samples = [fill_nulls(patch_json_schema(strict=True), p) for p in (EPIANO, BELL)]
    samples += [{**samples[0], "name": "x" * 11}, {**samples[0], "lfo": {"speed": 3}}, {**samples[0], "ol": [99] * 5},
                {k: v for k, v in samples[0].items() if k != "pms"}, {**samples[0], "extra": 1}]
    assert len(full) > 12
    for s in samples:
        assert converted.is_valid(s) == reference.is_valid(s), s


def test_output_models_match_the_library():
    # The evidence outputs restate the library's segment and change models: they must not drift apart.
    from patchsmith.evals.evidence import DescriptorChange, EvidenceSegment
    from patchsmith.synth import edits

    assert set(EvidenceSegmentInfo.model_fields) == set(EvidenceSegment.model_fields)
    assert set(DescriptorChangeInfo.model_fields) == set(DescriptorChange.model_fields)
    assert MAX_EDITS == edits.MAX_EDITS
    assert tuple(Quality.__args__) == edits.QUALITIES
