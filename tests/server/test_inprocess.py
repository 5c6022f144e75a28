"""The server through the SDK's in-process client: every tool, resources, progress, caching, concurrency."""

from __future__ import annotations

import base64
import hashlib
import os

import anyio
import numpy as np
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from patchsmith.evals.descriptors import render_and_describe
from patchsmith.server.app import build_server
from patchsmith.server.renders import encode_wav
from patchsmith.server.state import ServerState

from .server_support import EPIANO, EXAMPLES, audio_hash, exercise_tools


@pytest.fixture(scope="module")
def server():
    return build_server()


def run(server, fn):
    async def main():
        async with Client(server) as client:
            return await fn(client)
    return anyio.run(main)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_every_tool_in_process(mode):
    async def main():
        async with Client(build_server(), mode=mode) as client:
            await exercise_tools(client)
    anyio.run(main)


def test_render_is_the_library_render(server):
    # The tool adds nothing to the sound: its WAV is the library's render, encoded.
    r = run(server, lambda c: c.call_tool("render_patch", {"patch": EPIANO, "hold_s": 0.5, "release_s": 0.2,
                                                           "sample_rate": 22050}))
    audio, d = render_and_describe(EXAMPLES["epiano"].patch, 60, 100, 0.5, 0.2, 22050)
    wav, gain = encode_wav(audio, 22050)
    assert audio_hash(r) == hashlib.sha256(wav).hexdigest()
    assert r.structured_content["notes"][0]["descriptors"] == d.model_dump(mode="json")
    assert r.structured_content["wav_gain_db"] == gain


def test_same_request_same_id_and_no_audio_when_not_asked(server):
    args = {"patch": EPIANO, "hold_s": 0.3, "release_s": 0.1}
    a = run(server, lambda c: c.call_tool("render_patch", args))
    b = run(server, lambda c: c.call_tool("render_patch", {**args, "return_audio": False}))
    assert a.structured_content["render_id"] == b.structured_content["render_id"]
    assert [x.type for x in b.content] == ["text", "resource_link"] and b.structured_content["audio_returned"] is False
    c = run(server, lambda c: c.call_tool("render_patch", {**args, "velocity": 90}))
    assert c.structured_content["render_id"] != a.structured_content["render_id"]


def test_warnings_for_silence_and_non_dx7_topology(server):
    silent = {**EPIANO, "ol": [0] * 6}
    r = run(server, lambda c: c.call_tool("render_patch", {"patch": silent, "hold_s": 0.2, "release_s": 0.1}))
    assert any("silent" in w for w in r.structured_content["warnings"])
    odd = {**EPIANO, "modmatrix": [[0] * 6 for _ in range(6)]}
    r = run(server, lambda c: c.call_tool("render_patch", {"patch": odd, "hold_s": 0.2, "release_s": 0.1}))
    assert r.structured_content["algorithm"] is None
    assert any("not one of the 32 DX7 algorithms" in w for w in r.structured_content["warnings"])


def test_strict_mode_nulls_mean_defaults(server):
    # What an OpenAI strict-mode call sends for arguments it leaves at their default.
    r = run(server, lambda c: c.call_tool("render_patch", {
        "patch": {**EPIANO, "name": None, "lfo": None, "pms": None}, "notes": None, "velocity": None, "hold_s": 0.2,
        "release_s": None, "sample_rate": None, "return_audio": None}))
    assert not r.is_error, r.content[0].text
    assert r.structured_content["velocity"] == 100 and r.structured_content["release_s"] == 1.0


def test_patch_as_json_text_is_read(server):
    import json

    r = run(server, lambda c: c.call_tool("describe_patch", {"patch": json.dumps(EPIANO)}))
    assert not r.is_error and r.structured_content["algorithm"] == 5


def test_evidence_on_mode_and_shuffle(server):
    r = run(server, lambda c: c.call_tool("render_evidence", {
        "patch": EPIANO, "mode": "on", "operators": [2, 1], "segment_s": 0.4, "shuffle": True, "seed": 3,
        "sample_rate": 16000, "return_audio": False}))
    assert not r.is_error, r.content[0].text
    segs = r.structured_content["segments"]
    assert segs[0]["label"] == "FULL" and {s["label"] for s in segs[1:]} == {"OP1_ON", "OP2_ON"}


def test_export_refuses_a_topology_the_dx7_lacks(server):
    odd = {**EPIANO, "outmatrix": [1, 1, 1, 1, 1, 1]}
    r = run(server, lambda c: c.call_tool("export_sysex", {"patches": [EPIANO, odd]}))
    assert r.is_error and r.structured_content["error"] == "not_representable"
    problem = r.structured_content["problems"][0]
    assert problem["pointer"] == "/patches/1/modmatrix" and "nearest is algorithm" in problem["message"]


def test_single_voice_export_round_trips(server):
    r = run(server, lambda c: c.call_tool("export_sysex", {"patches": [EPIANO]}))
    assert r.structured_content["format"] == "voice" and r.structured_content["size_bytes"] == 163
    back = run(server, lambda c: c.call_tool("import_sysex", {"data_base64": r.structured_content["data_base64"]}))
    assert back.structured_content["count"] == 1 and back.structured_content["voices"][0]["name"] == "GLASS EP  "
    syx = run(server, lambda c: c.read_resource(r.structured_content["uri"])).contents[0]
    assert base64.b64decode(syx.blob)[:2] == b"\xf0\x43"


def test_import_reports_repairs(server):
    from patchsmith.synth.sysex import write_vced

    data = bytearray(write_vced(EXAMPLES["epiano"].patch))
    data[-2] ^= 0x01  # a stale checksum, as in many real files
    r = run(server, lambda c: c.call_tool("import_sysex", {"data_base64": base64.b64encode(bytes(data)).decode()}))
    assert not r.is_error and r.structured_content["count"] == 1
    assert any("checksum" in t for t in r.structured_content["tolerated"])


def test_presets_resource_and_unknown_resources(server):
    import json

    text = run(server, lambda c: c.read_resource("patchsmith://presets/bell")).contents[0].text
    assert json.loads(text)["key"] == "bell"
    async def read(client, uri):
        try:
            await client.read_resource(uri)
        except MCPError as err:
            return str(err)
        return None

    for uri in ("patchsmith://presets/nope", "patchsmith://renders/../../etc/passwd.wav",
                "patchsmith://renders/0123abcd.wav", "file:///etc/passwd", "patchsmith://exports/ffff.syx"):
        message = run(server, lambda c, uri=uri: read(c, uri))
        assert message is not None and "Resource not found" in message, uri


def test_concurrent_calls_are_answered_independently():
    # Different patches at once: every answer is the one its own request asked for.
    server = build_server(ServerState(workers=2))
    patches = [e.patch.to_dict() for e in EXAMPLES.values()]

    async def main():
        async with Client(server) as client:
            results: dict[int, str] = {}

            async def one(i: int) -> None:
                r = await client.call_tool("render_patch", {"patch": patches[i % len(patches)], "hold_s": 0.3,
                                                            "release_s": 0.1, "velocity": 60 + i})
                results[i] = audio_hash(r)

            async with anyio.create_task_group() as tg:
                for i in range(10):
                    tg.start_soon(one, i)
            return results

    results = anyio.run(main)
    for i, h in results.items():
        audio, _ = render_and_describe(patches[i % len(patches)], 60, 60 + i, 0.3, 0.1, 48000)
        assert h == hashlib.sha256(encode_wav(audio, 48000)[0]).hexdigest(), i


def test_cache_is_bounded():
    state = ServerState(cache_bytes=600_000)
    server = build_server(state)

    async def main():
        async with Client(server) as client:
            for v in range(1, 8):
                await client.call_tool("render_patch", {"patch": EPIANO, "hold_s": 1.0, "release_s": 0.0,
                                                        "velocity": v, "return_audio": False})
    anyio.run(main)
    stats = state.cache.stats()
    assert stats["bytes"] <= 600_000 and 1 <= stats["entries"] < 7


def test_nothing_is_written_to_disk(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(server, exercise_tools)
    assert os.listdir(tmp_path) == []


def test_wav_is_scaled_only_when_it_would_clip():
    quiet = np.full(100, 0.5, dtype=np.float32)
    loud = np.full(100, 2.0, dtype=np.float32)
    assert encode_wav(quiet, 16000)[1] == 0.0
    assert encode_wav(loud, 16000)[1] == pytest.approx(-7.02, abs=0.01)


def test_progress_per_note_and_per_evidence_step():
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(p, total, message):
        seen.append((p, total, message))

    async def main():
        async with Client(build_server()) as client:
            await client.call_tool("render_patch", {"patch": EPIANO, "notes": [48, 55, 60], "hold_s": 0.2,
                                                    "release_s": 0.1, "return_audio": False},
                                   progress_callback=on_progress)
            notes = list(seen)
            seen.clear()
            await client.call_tool("render_evidence", {"patch": EPIANO, "segment_s": 0.3, "sample_rate": 16000,
                                                       "return_audio": False}, progress_callback=on_progress)
            return notes, list(seen)

    notes, evidence = anyio.run(main)
    assert [p for p, _, _ in notes] == [1, 2, 3, 4] and all(t == 4 for _, t, _ in notes)
    assert "note 55" in notes[1][2]
    assert [p for p, _, _ in evidence] == [1, 2, 3]
