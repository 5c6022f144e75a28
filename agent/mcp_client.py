"""The agent's side of MCP: connect to the patchsmith server, list its tools as OpenAI tools, call them.

The server is reached in-process by default (no subprocess, no network), or as a ``patchsmith serve``
subprocess over stdio (``"stdio"``), or over streamable HTTP (a URL; a bearer token from
``PATCHSMITH_TOKEN`` when the server asks for one). The MCP SDK is asynchronous; the agent loop and the
commands are not, so the client runs on an event loop in a background thread (an anyio blocking
portal) and ``ToolClient`` is a plain synchronous object.

Audio never goes into model messages: a chat model cannot hear it and base64 WAV would cost tens of
thousands of tokens. Audio content is saved as a file in the session folder and the tool message
carries the text summary and the structured result, which hold the descriptors a model needs
instead of ears (``design/tools.md``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

IN_PROCESS = "in-process"
STDIO = "stdio"
MAX_MESSAGE_CHARS = 24_000  # a tool message longer than this is cut: models lose the thread in walls of JSON
_AUDIO_SUFFIX = {"audio/wav": ".wav", "audio/x-wav": ".wav", "audio/wave": ".wav", "audio/mpeg": ".mp3",
                 "audio/flac": ".flac", "audio/ogg": ".ogg"}


class ToolTransportError(RuntimeError):
    """The MCP server could not be reached or stopped answering (not a tool's own error)."""


class AudioFile(BaseModel):
    """Audio a tool returned, saved in the session folder instead of being sent to the model."""

    path: str
    mime_type: str
    bytes: int
    sha256: str


class ToolOutcome(BaseModel):
    """The result of one tool call as the agent uses it: summary, structured result, saved audio."""

    name: str
    is_error: bool
    text: str = ""
    structured: dict[str, Any] | None = None
    audio: list[AudioFile] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list)
    elapsed_s: float = 0.0

    @classmethod
    def error(cls, name: str, text: str) -> ToolOutcome:
        """An error outcome made by the agent itself (bad arguments it never sent to the server)."""
        return cls(name=name, is_error=True, text=text)

    def message_content(self) -> str:
        """The tool message for the model: JSON with ``ok`` and the summary and result, or the error."""
        if self.is_error:
            body: dict[str, Any] = {"ok": False, "error": self.text or "the tool failed without a message"}
        else:
            body = {"ok": True, "summary": self.text}
            if self.structured is not None:
                body["result"] = self.structured
            if self.audio:
                body["audio"] = f"{len(self.audio)} audio clip(s) saved for the user (not shown to the model)"
            if self.links:
                body["resources"] = self.links
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
        if len(text) > MAX_MESSAGE_CHARS:
            # The summary is what matters; a huge structured result (a 32-voice import) is cut with a note.
            body.pop("result", None)
            body["note"] = f"the structured result was {len(text)} characters long and is left out"
            text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)[:MAX_MESSAGE_CHARS]
        return text


def read_tool_message(content: str | None) -> dict[str, Any]:
    """The ``{"ok", ...}`` object of a tool message written by ``ToolOutcome.message_content``."""
    try:
        data = json.loads(content or "")
    except (json.JSONDecodeError, RecursionError):
        return {"ok": False, "error": content or ""}
    return data if isinstance(data, dict) and "ok" in data else {"ok": False, "error": content or ""}


def default_server() -> Any:
    """The patchsmith MCP server object, built in-process."""
    from ..server.app import build_server

    return build_server()


def mcp_problem(mcp: str | None) -> str | None:
    """Why an ``--mcp`` value cannot be used, or None."""
    if mcp in (None, "", IN_PROCESS, STDIO) or mcp.startswith(("http://", "https://")):
        return None
    return (f"--mcp: found {mcp!r}, allowed {STDIO!r} or an http(s):// URL of a streamable HTTP server "
            "(default: the server in-process)")


def _target(mcp: str | None, server: Any) -> tuple[str, Any]:
    """(a label, what ``mcp.Client`` connects to) for an ``--mcp`` value."""
    from mcp import StdioServerParameters

    if server is not None:
        return IN_PROCESS, server
    if mcp in (None, "", IN_PROCESS):
        return IN_PROCESS, default_server()
    if mcp == STDIO:
        from mcp.client.stdio import stdio_client

        # The subprocess inherits this environment so it finds the same install (and numba cache).
        params = StdioServerParameters(command=sys.executable, args=["-m", "patchsmith", "serve"],
                                       env=dict(os.environ))
        return STDIO, stdio_client(params, errlog=_server_errlog())
    if mcp.startswith(("http://", "https://")):
        from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

        token = os.environ.get("PATCHSMITH_TOKEN")
        client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"} if token else None)
        # An evidence clip's answer is a few MB in one event: lift the SDK's 1 MiB SSE event cap.
        return mcp, streamable_http_client(mcp, http_client=client, max_sse_event_size=None)
    raise ValueError(mcp_problem(mcp))


def _server_errlog() -> Any:
    """Where the server subprocess's stderr goes: ours when it is a real file, else nowhere.

    The SDK hands this to the subprocess as its stderr, which needs a file descriptor; a captured
    or redirected ``sys.stderr`` (pytest, notebooks) has none.
    """
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.fileno()
                return stream
        except (AttributeError, OSError, ValueError):
            continue
    return open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


class ToolClient:
    """A synchronous MCP client for the agent: ``with ToolClient() as tools: tools.call(...)``."""

    def __init__(self, mcp: str | None = None, *, server: Any = None, audio_dir: str | os.PathLike[str] | None = None,
                 timeout_s: float = 300.0):
        self.label, self._target = _target(mcp, server)
        self.audio_dir = Path(audio_dir) if audio_dir is not None else None
        self.timeout_s = timeout_s
        self._stack: ExitStack | None = None
        self._portal: Any = None
        self._client: Any = None
        self._tools: list[Any] | None = None
        self._saved = 0

    def __enter__(self) -> ToolClient:
        from anyio.from_thread import start_blocking_portal
        from mcp import Client

        stack = ExitStack()
        try:
            self._portal = stack.enter_context(start_blocking_portal())
            client = Client(self._target, read_timeout_seconds=self.timeout_s)
            self._client = stack.enter_context(self._portal.wrap_async_context_manager(client))
            self._tools = list(self._portal.call(self._list_all))
        except BaseException as err:
            stack.close()
            if isinstance(err, Exception):
                raise ToolTransportError(f"cannot connect to the MCP server ({self.label}): {_why(err)}") from err
            raise
        self._stack = stack
        return self

    def __exit__(self, *exc: Any) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    async def _list_all(self) -> list[Any]:
        tools, cursor = [], None
        for _ in range(100):  # a server that pages forever must not hang the agent
            page = await self._client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    def tools(self) -> list[Any]:
        """The server's tools (``mcp.types.Tool``), as listed when the client connected."""
        if self._tools is None:
            raise RuntimeError("ToolClient must be used inside a with block")
        return list(self._tools)

    def tool_names(self) -> list[str]:
        """The names of the server's tools."""
        return [t.name for t in self.tools()]

    def openai_tools(self, *, strict: bool = False) -> list[dict[str, Any]]:
        """The server's tools as OpenAI Chat Completions function tools (strict mode on request)."""
        from ..schema.openai_tools import mcp_tool_to_openai

        return [mcp_tool_to_openai(t, strict=strict) for t in self.tools()]

    def call(self, name: str, arguments: dict[str, Any], *, timeout_s: float | None = None) -> ToolOutcome:
        """Call one tool; a tool's own failure comes back as an error outcome, never as an exception."""
        if self._portal is None:
            raise RuntimeError("ToolClient must be used inside a with block")
        limit = self.timeout_s if timeout_s is None else min(self.timeout_s, timeout_s)
        start = time.monotonic()
        try:
            result = self._portal.call(self._call, name, arguments, limit)
        except TimeoutError:
            raise
        except Exception as err:
            from mcp import MCPError

            if isinstance(err, MCPError):  # a JSON-RPC error answer: the call failed, the server is fine
                return ToolOutcome(name=name, is_error=True, text=_why(err), elapsed_s=time.monotonic() - start)
            if isinstance(err, RuntimeError) and "structured" in str(err).lower():
                # The SDK checks results against the tool's output schema; a mismatch is the tool's fault.
                return ToolOutcome(name=name, is_error=True, text=_why(err), elapsed_s=time.monotonic() - start)
            raise ToolTransportError(f"the MCP server ({self.label}) failed during {name}: {_why(err)}") from err
        return self._outcome(name, result, time.monotonic() - start)

    async def _call(self, name: str, arguments: dict[str, Any], limit: float) -> Any:
        import anyio

        try:
            with anyio.fail_after(limit):
                return await self._client.call_tool(name, arguments)
        except TimeoutError:
            raise TimeoutError(f"the tool {name} did not finish within {limit:g} s") from None

    def _outcome(self, name: str, result: Any, elapsed: float) -> ToolOutcome:
        """Split an MCP ``CallToolResult`` into summary text, structured result and saved audio."""
        return tool_outcome(name, result, elapsed,
                            save_audio=lambda data, mime: self._save_audio(name, data, mime))

    def _save_audio(self, name: str, data: str, mime_type: str) -> AudioFile:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        self._saved += 1
        file_name = f"{self._saved:03d}-{name}{_AUDIO_SUFFIX.get(mime_type, '.bin')}"
        path = ""
        if self.audio_dir is not None and raw:
            self.audio_dir.mkdir(parents=True, exist_ok=True)
            target = self.audio_dir / file_name
            target.write_bytes(raw)
            path = str(target)
        return AudioFile(path=path, mime_type=mime_type, bytes=len(raw), sha256=hashlib.sha256(raw).hexdigest())


def tool_outcome(name: str, result: Any, elapsed: float = 0.0,
                 save_audio: Callable[[str, str], AudioFile] | None = None) -> ToolOutcome:
    """The ``ToolOutcome`` of an MCP ``CallToolResult``: summary text, structured result, links and audio.

    ``save_audio(data, mime_type)`` stores an audio block; without it audio is only counted (an empty
    ``AudioFile``), which is all ``ToolOutcome.message_content`` uses. The agent (``ToolClient``) and the
    training data (``training.sft_data``) both call this, so the tool messages they show a model agree.
    """
    texts, audio, links = [], [], []
    structured = result.structured_content
    dumped = json.dumps(structured, sort_keys=True) if structured is not None else None

    def keep_audio(data: str, mime_type: str) -> None:
        if save_audio is not None:
            audio.append(save_audio(data, mime_type))
        else:
            audio.append(AudioFile(path="", mime_type=mime_type, bytes=0, sha256=""))

    for block in result.content or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            # The SDK mirrors structured output as a JSON text block; the model gets it once, as "result".
            if dumped is not None and _same_json(block.text, dumped):
                continue
            texts.append(block.text)
        elif kind == "audio":
            keep_audio(block.data, block.mime_type)
        elif kind == "resource":
            res = block.resource
            blob = getattr(res, "blob", None)
            mime = getattr(res, "mime_type", None) or ""
            if blob is not None and mime.startswith("audio/"):
                keep_audio(blob, mime)
            elif getattr(res, "text", None) is not None:
                texts.append(res.text)
            links.append(str(res.uri))
        elif kind == "resource_link":
            links.append(str(block.uri))
    return ToolOutcome(name=name, is_error=bool(result.is_error), text="\n".join(t for t in texts if t),
                       structured=structured, audio=audio, links=links, elapsed_s=round(elapsed, 4))


def _same_json(text: str, dumped: str) -> bool:
    try:
        return json.dumps(json.loads(text), sort_keys=True) == dumped
    except (json.JSONDecodeError, RecursionError, TypeError):
        return False


def _why(err: BaseException) -> str:
    """A one-line reason for an exception (exception groups from anyio name their first cause)."""
    while isinstance(err, BaseExceptionGroup) and err.exceptions:
        err = err.exceptions[0]
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
