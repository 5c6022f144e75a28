"""The server's resources: the patch JSON Schema, recent renders and exports, library presets.

``patchsmith://schema/patch`` and one ``patchsmith://presets/{name}`` per preset are listed;
renders (``patchsmith://renders/{render_id}.wav``) and exports (``patchsmith://exports/{export_id}.syx``)
are reached through the URIs the tools return (templates), and are not listed, so that clients sharing
an HTTP server do not see each other's work. A URI is matched against fixed patterns of server-chosen
names; it never becomes a path.
"""

from __future__ import annotations

import json
import re

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types.jsonrpc import INVALID_PARAMS

from ..schema.jsonschema import patch_json_schema
from .state import ServerState

SCHEMA_URI = "patchsmith://schema/patch"
_RENDER = re.compile(r"patchsmith://renders/([0-9a-f]{1,64})\.wav")
_EXPORT = re.compile(r"patchsmith://exports/([0-9a-f]{1,64})\.syx")
_PRESET = re.compile(r"patchsmith://presets/([A-Za-z0-9_.-]{1,100})")
_SCHEMA_TEXT = json.dumps(patch_json_schema(), indent=1)


def list_resources(state: ServerState) -> list[types.Resource]:
    """The listed resources: the patch schema and every preset."""
    out = [types.Resource(uri=SCHEMA_URI, name="patch-schema", title="DX7 patch JSON Schema",
                          description="The JSON Schema (draft 2020-12) of the patch every tool takes: the 128-number "
                                      "core and the optional full-voice keys, OP1 first.",
                          mime_type="application/schema+json")]
    for key, e in state.presets.examples.items():
        out.append(types.Resource(uri=f"patchsmith://presets/{key}", name=key, title=e.name,
                                  description=f"Library preset: {e.captions[0]}", mime_type="application/json"))
    return out


def list_templates() -> list[types.ResourceTemplate]:
    """The URI templates of renders, exports and presets."""
    return [
        types.ResourceTemplate(uri_template="patchsmith://renders/{render_id}.wav", name="render",
                               description="A recent render_patch or render_evidence WAV, by the render_id the tool "
                                           "returned (a bounded cache: old renders expire).",
                               mime_type="audio/wav"),
        types.ResourceTemplate(uri_template="patchsmith://exports/{export_id}.syx", name="export",
                               description="A recent export_sysex dump, by its export_id (a bounded cache).",
                               mime_type="application/octet-stream"),
        types.ResourceTemplate(uri_template="patchsmith://presets/{name}", name="preset",
                               description="A library preset: name, captions, render settings and patch.",
                               mime_type="application/json"),
    ]


def read_resource(state: ServerState, uri: str) -> list[types.TextResourceContents | types.BlobResourceContents]:
    """The contents of a resource, or an MCP error naming the URI."""
    if uri == SCHEMA_URI:
        return [types.TextResourceContents(uri=uri, mime_type="application/schema+json", text=_SCHEMA_TEXT)]
    if (m := _RENDER.fullmatch(uri)) or (m := _EXPORT.fullmatch(uri)):
        item = state.cache.get(m.group(1))
        if item is None or item.uri != uri:
            raise _not_found(uri, "not in the recent-render cache (expired, or never made here): render it again")
        return [types.BlobResourceContents(uri=uri, mime_type=item.mime_type, blob=item.data_base64)]
    if m := _PRESET.fullmatch(uri):
        e = state.presets.get(m.group(1))
        if e is None:
            raise _not_found(uri, "no such preset; presets: " + ", ".join(state.presets.examples))
        text = json.dumps({"key": e.key, "name": e.name, "captions": list(e.captions),
                           "render": e.render_settings(), "patch": e.patch.to_dict()}, indent=1)
        return [types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
    raise _not_found(uri, "unknown resource; URIs: patchsmith://schema/patch, patchsmith://presets/{name}, "
                          "patchsmith://renders/{render_id}.wav, patchsmith://exports/{export_id}.syx")


def _not_found(uri: str, why: str) -> MCPError:
    return MCPError(INVALID_PARAMS, f"Resource not found: {uri[:200]}: {why}", data={"uri": uri[:200]})
