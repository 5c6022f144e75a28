"""The MCP server: the tools of ``schema.tools`` and the resources, on the SDK's low-level ``Server``.

The low-level server publishes exactly the schemas generated in ``schema.tools`` and leaves argument
checking to ``server.arguments``, so a bad patch comes back as a tool error with the validation
problems (pointer, found, allowed) rather than pydantic's messages. Transports are in
``server.transport``; in tests, ``mcp.Client(build_server())`` talks to it in-process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext

from .. import __version__
from ..schema.tools import TOOLS, input_schema, output_schema
from . import resources
from .limits import LIMITS
from .state import ServerState
from .tools import call_tool

log = logging.getLogger("patchsmith.server")

INSTRUCTIONS = (
    "patchsmith renders DX7 FM synthesizer patches. A patch is a JSON object (its schema: resource "
    "patchsmith://schema/patch): modmatrix/outmatrix (the topology, OP1 first), feedback, frequencies, levels and "
    "envelopes of six operators. Typical loop: search_presets for a starting point (or write a patch), "
    "render_patch to hear it (the descriptors stand in for ears), render_evidence to learn what each operator "
    "does, edit_patch to change it, export_sysex for a .syx a DX7 or Dexed loads. Invalid patches come back as "
    "errors listing each problem (JSON pointer, found, allowed): fix those values and call again. Limits: "
    + "; ".join(LIMITS.values()) + "."
)

_ANNOTATIONS = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                     open_world_hint=False)


def tool_list() -> list[types.Tool]:
    """The tools as MCP publishes them."""
    return [types.Tool(name=t.name, description=t.description, input_schema=input_schema(t),
                       output_schema=output_schema(t), annotations=_ANNOTATIONS) for t in TOOLS]


def _warm_up() -> None:
    """Load the numba kernels once, before concurrent calls race to load them."""
    from ..evals.descriptors import render_and_describe
    from ..synth.describe import describe_patch
    from ..synth.sysex import init_voice

    render_and_describe(init_voice(), hold_s=0.05, release_s=0.05, sample_rate=16000)
    describe_patch(init_voice(), sample_rate=16000)


def build_server(state: ServerState | None = None, *, warm: bool = True) -> Server[Any]:
    """The patchsmith MCP server (one ``ServerState`` shared by every connection)."""
    state = state if state is not None else ServerState()
    tools = tool_list()
    schemas = {t.name: t.input_schema for t in tools}

    @asynccontextmanager
    async def lifespan(_: Server[Any]) -> AsyncIterator[dict[str, Any]]:
        if warm:
            await state.run(_warm_up)
        yield {"state": state}

    async def on_list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
                            ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def on_call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
                           ) -> types.CallToolResult:
        async def progress(done: float, total: float, message: str) -> None:
            try:
                await ctx.session.report_progress(done, total, message)
            except Exception:  # a client that went away must not fail the call
                log.debug("progress notification not sent", exc_info=True)

        return await call_tool(state, params.name, params.arguments, progress)

    async def on_list_resources(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
                                ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=resources.list_resources(state))

    async def on_list_templates(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
                                ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=resources.list_templates())

    async def on_read_resource(ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
                               ) -> types.ReadResourceResult:
        return types.ReadResourceResult(contents=resources.read_resource(state, str(params.uri)))

    server: Server[Any] = Server(
        "patchsmith", version=__version__, title="patchsmith DX7 tools",
        description="Render, check, describe, edit, import and export DX7 FM patches.",
        instructions=INSTRUCTIONS, lifespan=lifespan,
        # Looked up on every modern HTTP call; without it the SDK builds the whole tool list each time.
        get_tool_input_schema=schemas.get,
        on_list_tools=on_list_tools, on_call_tool=on_call_tool, on_list_resources=on_list_resources,
        on_list_resource_templates=on_list_templates, on_read_resource=on_read_resource)
    return server
