"""Limits and bad input: every one is a tool error that says what is wrong and what is allowed."""

from __future__ import annotations

import base64

import anyio
import pytest
from mcp import Client

from patchsmith.schema.tools import MAX_SYSEX_BASE64
from patchsmith.server.app import build_server
from patchsmith.server.limits import LIMITS, MAX_NESTING, MAX_REQUEST_CHARS

from .server_support import BELL, EPIANO, bad_patch, error_info


@pytest.fixture(scope="module")
def call():
    server = build_server()

    def call_tool(name, arguments):
        async def main():
            async with Client(server) as client:
                return await client.call_tool(name, arguments)
        return anyio.run(main)

    return call_tool


def nested(depth: int):
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


# (tool, arguments, the limit named, the pointer of the problem)
LIMIT_CASES = [
    ("render_patch", {"patch": EPIANO, "notes": list(range(17))}, "notes", "/notes"),
    ("render_patch", {"patch": EPIANO, "hold_s": 31}, "clip_length", "/hold_s"),
    ("render_patch", {"patch": EPIANO, "hold_s": 20, "release_s": 15}, "clip_length", "/release_s"),
    ("render_patch", {"patch": EPIANO, "sample_rate": 96000}, "sample_rate", "/sample_rate"),
    ("render_patch", {"patch": EPIANO, "notes": [60] * 16, "hold_s": 9, "release_s": 1}, "audio_per_call", "/notes"),
    ("render_evidence", {"patch": EPIANO, "segment_s": 30.5}, "clip_length", "/segment_s"),
    ("render_evidence", {"patch": EPIANO, "segment_s": 20}, "audio_per_call", "/segment_s"),
    ("export_sysex", {"patches": [EPIANO] * 33}, "bank_size", "/patches"),
    ("edit_patch", {"patch": EPIANO, "edits": [{"op": "adjust", "quality": "level", "amount": 0}] * 65}, "edits",
     "/edits"),
    ("import_sysex", {"data_base64": "A" * (MAX_SYSEX_BASE64 + 4)}, "sysex_size", "/data_base64"),
    ("search_presets", {"query": "bell " * 101}, "query_length", "/query"),
    ("search_presets", {"query": "bell", "limit": 21}, "results", "/limit"),
    ("validate_patch", {"patch": EPIANO, "padding": "x" * (MAX_REQUEST_CHARS + 1)}, "request_size", ""),
    ("validate_patch", {"patch": nested(MAX_NESTING + 5)}, "nesting", ""),
]


@pytest.mark.parametrize("tool,arguments,limit,pointer", LIMIT_CASES, ids=[f"{c[0]}-{c[2]}" for c in LIMIT_CASES])
def test_each_limit_is_a_tool_error_naming_it(call, tool, arguments, limit, pointer):
    info = error_info(call(tool, arguments))
    assert info["error"] == "limit_exceeded", info
    mine = [p for p in info["problems"] if p["message"].startswith(f"limit {limit}:")]
    assert mine, info["problems"]
    assert mine[0]["pointer"] == pointer and mine[0]["allowed"] and mine[0]["found"]
    assert LIMITS[limit] in mine[0]["message"]


def test_invalid_patch_lists_pointer_found_allowed(call):
    r = call("render_patch", {"patch": bad_patch()})
    info = error_info(r)
    assert info["error"] == "invalid_patch"
    assert info["problems"] == [{"pointer": "/patch/eg_rate/2/4", "found": "120", "allowed": "integer 0..99",
                                 "message": "out of range"}]
    assert "/patch/eg_rate/2/4: found 120, allowed integer 0..99" in r.content[0].text


def test_problems_in_a_bank_point_at_the_patch(call):
    broken = {k: v for k, v in BELL.items() if k != "feedback"}
    info = error_info(call("export_sysex", {"patches": [EPIANO, broken]}))
    assert info["error"] == "invalid_patch" and info["problems"][0]["pointer"] == "/patches/1/feedback"


@pytest.mark.parametrize("arguments,pointer,allowed", [
    ({"patch": EPIANO, "velocity": "loud"}, "/velocity", "integer 1..127"),
    ({"patch": EPIANO, "velocity": 10**30}, "/velocity", "integer 1..127"),
    ({"patch": EPIANO, "velocity": True}, "/velocity", "integer 1..127"),
    ({"patch": EPIANO, "hold_s": -1}, "/hold_s", "number 0..30"),
    ({"patch": EPIANO, "notes": "60"}, "/notes", "an array of 1..16 items, each integer 0..127"),
    ({"patch": EPIANO, "notes": [60, 200]}, "/notes/1", "integer 0..127"),
    ({"patch": EPIANO, "return_audio": "yes"}, "/return_audio", "true or false"),
    ({"patch": EPIANO, "colour": "red"}, "/colour", "no such argument"),
    ({}, "/patch", "a patch object"),
])
def test_wrong_types_and_huge_numbers(call, arguments, pointer, allowed):
    info = error_info(call("render_patch", arguments))
    assert info["error"] == "invalid_arguments"
    problem = next(p for p in info["problems"] if p["pointer"] == pointer)
    assert problem["allowed"].startswith(allowed)
    assert len(problem["found"]) <= 80


@pytest.mark.parametrize("patch", [5, "not json {", [1, 2], None, {"modmatrix": "x"}, "[" * 5000])
def test_garbage_patches(call, patch):
    info = error_info(call("describe_patch", {"patch": patch}))
    assert info["error"] in ("invalid_patch", "invalid_arguments") and info["problems"]


@pytest.mark.parametrize("text,why", [("!!!notbase64", "not base64"), ("QUJD=QUJD", "not base64"),
                                      (base64.b64encode(b"hello" * 40).decode(), "no DX7")])
def test_base64_garbage(call, text, why):
    r = call("import_sysex", {"data_base64": text})
    assert error_info(r)["problems"][0]["pointer"] == "/data_base64"
    assert why in r.content[0].text


def test_edit_errors_point_into_the_edit_list(call):
    info = error_info(call("edit_patch", {"patch": EPIANO, "edits": [
        {"op": "set", "path": "/eg_rate/9/0", "value": 1}, {"op": "adjust", "quality": "shiny", "amount": 1},
        {"op": "set", "path": "/ol/0", "value": 100}, "frob"]}))
    assert info["error"] == "invalid_edits"
    assert [p["pointer"] for p in info["problems"]] == ["/edits/0/path", "/edits/1/quality", "/edits/2/value",
                                                        "/edits/3"]


def test_evidence_operator_listed_twice(call):
    info = error_info(call("render_evidence", {"patch": EPIANO, "operators": [2, 2]}))
    assert info["error"] == "invalid_arguments" and info["problems"][0]["pointer"] == "/operators/1"


def test_voice_format_holds_one_patch(call):
    info = error_info(call("export_sysex", {"patches": [EPIANO, BELL], "format": "voice"}))
    assert info["problems"][0]["pointer"] == "/format"


def test_unknown_tool(call):
    r = call("render_pach", {"patch": EPIANO})
    assert error_info(r)["error"] == "unknown_tool" and "render_patch" in r.content[0].text


def test_validate_patch_reports_rather_than_fails(call):
    r = call("validate_patch", {"patch": {**EPIANO, "fine": [0, 0, 0, 0, 0, 3.0]}, "lenient": True})
    assert not r.is_error and r.structured_content["valid"] and r.structured_content["coercions"]
    r = call("validate_patch", {"patch": "{oops"})
    assert not r.is_error and not r.structured_content["valid"]
    assert r.structured_content["problems"][0]["found"].startswith("invalid JSON")


def test_an_internal_failure_is_a_tool_error_and_the_server_goes_on(monkeypatch):
    from patchsmith.server import tools

    async def broken(call, state, progress):
        raise RuntimeError("boom")

    monkeypatch.setitem(tools.HANDLERS, "describe_patch", broken)

    async def main():
        async with Client(build_server()) as client:
            r = await client.call_tool("describe_patch", {"patch": EPIANO})
            ok = await client.call_tool("validate_patch", {"patch": EPIANO})
            return r, ok

    r, ok = anyio.run(main)
    assert error_info(r)["error"] == "internal_error" and "boom" in r.content[0].text
    assert not ok.is_error


def test_a_number_too_long_to_read(call):
    info = error_info(call("render_patch", {"patch": EPIANO, "velocity": 10**5000}))
    assert info["error"] == "limit_exceeded" and "4300 digits" in info["problems"][0]["found"]
