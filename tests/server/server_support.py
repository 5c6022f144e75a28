"""Helpers for the MCP server tests: patches, a server subprocess over HTTP, and one pass over every tool.

Imported by name (a second conftest.py would shadow the root one). ``exercise_tools`` is the same
checklist for every transport: in-process, stdio and streamable HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcp import Client

from patchsmith.examples import load_examples

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = {e.key: e for e in load_examples()}
EPIANO = EXAMPLES["epiano"].patch.to_dict()
BELL = EXAMPLES["bell"].patch.to_dict()
TOOL_NAMES = ["render_patch", "render_evidence", "validate_patch", "describe_patch", "edit_patch", "import_sysex",
              "export_sysex", "search_presets"]
STARTUP_S = 60.0
_URL_LINE = re.compile(r"patchsmith MCP server at (http://\S+/mcp)")


def bad_patch() -> dict[str, Any]:
    """The e-piano with one envelope rate out of range."""
    p = {k: (v.copy() if isinstance(v, list) else v) for k, v in EPIANO.items()}
    p["eg_rate"] = [row.copy() for row in EPIANO["eg_rate"]]
    p["eg_rate"][2][4] = 120
    return p


def audio_hash(result: Any) -> str:
    """SHA-256 of the decoded audio content of a tool result."""
    audio = [b for b in result.content if b.type == "audio"]
    assert len(audio) == 1, [b.type for b in result.content]
    return hashlib.sha256(base64.b64decode(audio[0].data)).hexdigest()


def error_info(result: Any) -> dict[str, Any]:
    """The structured part of a tool error (and check it is one)."""
    assert result.is_error, result.content[0].text
    assert result.structured_content is not None
    return result.structured_content


async def exercise_tools(client: Client) -> dict[str, Any]:
    """Call every tool once (plus the resources and one error) and check the results; returns them by name."""
    tools = (await client.list_tools()).tools
    assert [t.name for t in tools] == TOOL_NAMES
    for t in tools:
        assert t.input_schema["type"] == "object" and t.output_schema["type"] == "object"
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append((p, total, message))

    out: dict[str, Any] = {}
    r = await client.call_tool("render_patch", {"patch": EPIANO, "notes": [48, 60], "hold_s": 0.5, "release_s": 0.25,
                                                "sample_rate": 16000}, progress_callback=on_progress)
    assert not r.is_error, r.content[0].text
    assert [b.type for b in r.content] == ["text", "audio", "resource_link"]
    s = r.structured_content
    assert [n["note"] for n in s["notes"]] == [48, 60] and s["duration_s"] == 1.5 and s["sample_rate"] == 16000
    assert "note 48 (C3)" in r.content[0].text and "attack" in r.content[0].text
    assert progress and progress[-1][0] == progress[-1][1], progress  # one per note (or one from the cache)
    out["render_patch"] = r

    progress.clear()
    r = await client.call_tool("render_evidence", {"patch": EPIANO, "segment_s": 0.5, "hold_s": 0.3,
                                                   "sample_rate": 16000}, progress_callback=on_progress)
    assert not r.is_error, r.content[0].text
    labels = [seg["label"] for seg in r.structured_content["segments"]]
    assert labels[0] == "FULL" and "OP2_OFF" in labels
    assert "OP2_OFF (modulator of OP1)" in r.content[0].text
    assert progress and progress[-1][0] == progress[-1][1]
    out["render_evidence"] = r

    r = await client.call_tool("validate_patch", {"patch": bad_patch()})
    assert not r.is_error and r.structured_content["valid"] is False
    assert r.structured_content["problems"][0]["pointer"] == "/eg_rate/2/4"
    out["validate_patch"] = r

    r = await client.call_tool("describe_patch", {"patch": EPIANO, "note": 60})
    assert not r.is_error and r.structured_content["algorithm"] == 5 and "OP1" in r.content[0].text
    out["describe_patch"] = r

    r = await client.call_tool("edit_patch", {"patch": EPIANO, "edits": [
        {"op": "set", "path": "/eg_rate/3/0", "value": 40}, {"op": "adjust", "quality": "brightness", "amount": 1}]})
    assert not r.is_error, r.content[0].text
    changes = {c["path"]: (c["old"], c["new"]) for c in r.structured_content["changes"]}
    assert changes["/eg_rate/3/0"] == (60, 40) and r.structured_content["patch"]["eg_rate"][3][0] == 40
    out["edit_patch"] = r

    r = await client.call_tool("export_sysex", {"patches": [EPIANO, BELL]})
    assert not r.is_error and r.structured_content["format"] == "bank" and r.structured_content["size_bytes"] == 4104
    out["export_sysex"] = r

    r = await client.call_tool("import_sysex", {"data_base64": out["export_sysex"].structured_content["data_base64"]})
    assert not r.is_error and r.structured_content["count"] == 32
    assert r.structured_content["voices"][0]["patch"]["eg_rate"] == EPIANO["eg_rate"]
    out["import_sysex"] = r

    r = await client.call_tool("search_presets", {"query": "glassy electric piano", "limit": 3})
    assert not r.is_error and r.structured_content["results"][0]["key"] == "epiano"
    out["search_presets"] = r

    # Resources: the schema, a preset, the render just made; a bad patch and an unknown tool as tool errors.
    listed = {x.uri for x in (await client.list_resources()).resources}
    assert "patchsmith://schema/patch" in listed and "patchsmith://presets/epiano" in listed
    templates = {x.uri_template for x in (await client.list_resource_templates()).resource_templates}
    assert "patchsmith://renders/{render_id}.wav" in templates
    wav = (await client.read_resource(out["render_patch"].structured_content["uri"])).contents[0]
    assert wav.mime_type == "audio/wav" and base64.b64decode(wav.blob)[:4] == b"RIFF"
    assert base64.b64decode(wav.blob) == base64.b64decode(
        [b for b in out["render_patch"].content if b.type == "audio"][0].data)
    schema = (await client.read_resource("patchsmith://schema/patch")).contents[0]
    assert '"modmatrix"' in schema.text
    err = await client.call_tool("render_patch", {"patch": bad_patch()})
    assert error_info(err)["problems"][0]["pointer"] == "/patch/eg_rate/2/4"
    assert error_info(await client.call_tool("no_such_tool", {}))["error"] == "unknown_tool"
    return out


@dataclass
class ServerProcess:
    """A ``patchsmith serve --http`` subprocess: its URL and what it printed on stderr."""

    process: subprocess.Popen[str]
    url: str
    stderr: list[str] = field(default_factory=list)


@contextmanager
def http_server(*extra: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """Start ``patchsmith serve --http 127.0.0.1:0`` (a free port), wait until it listens, stop it at the end."""
    cmd = [sys.executable, "-m", "patchsmith", "serve", "--http", "127.0.0.1:0", *extra]
    proc = subprocess.Popen(cmd, cwd=cwd or REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def drain() -> None:  # read stderr to the end, so the server never blocks on a full pipe
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if (m := _URL_LINE.search(line)) and not url:
                url.append(m.group(1))
                found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + STARTUP_S
        while not found.wait(0.2):
            if time.monotonic() > deadline or proc.poll() is not None:
                break
        if not url:
            raise RuntimeError(f"the server did not start: {''.join(lines)[-2000:]}")
        yield ServerProcess(proc, url[0], lines)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
