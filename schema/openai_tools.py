"""MCP tools as OpenAI function tools: plain (the MCP ``inputSchema`` as is) or strict mode.

Strict mode (``reference/llm_tools.md`` §6) needs every object closed and every property required, so
an optional argument becomes required and nullable (``null`` means "use the default", which the
patchsmith server honours, and which ``patch_json_schema(strict=True)`` spells out for the patch);
keywords strict mode does not take are dropped and their meaning moved into the description
(``default``, ``uniqueItems``), a string length limit becomes a ``pattern``, ``oneOf`` becomes ``anyOf``
and ``const`` a one-value ``enum``. The same converted schema serves Chat Completions and the
Responses API.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from typing import Any, Literal

Api = Literal["chat", "responses"]
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Annotation keywords strict mode has no use for; constraints it lacks are restated in words below.
_DROP = ("$schema", "$id", "title", "default", "examples", "discriminator", "readOnly", "writeOnly", "deprecated")


def mcp_tool_to_openai(tool: Any, *, strict: bool = False, api: Api = "chat") -> dict[str, Any]:
    """One MCP tool (an ``mcp.types.Tool`` or its JSON dict) as an OpenAI function tool."""
    name, description, schema = _parts(tool)
    if not _NAME.fullmatch(name):
        raise ValueError(f"tool name {name!r}: OpenAI allows 1..64 characters of a-z, A-Z, 0-9, _ and -")
    params = strict_schema(schema) if strict else copy.deepcopy(schema)
    if api == "responses":
        return {"type": "function", "name": name, "description": description, "parameters": params, "strict": strict}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": params,
                                             "strict": strict}}


def openai_tools(tools: Iterable[Any] | None = None, *, strict: bool = False,
                 api: Api = "chat") -> list[dict[str, Any]]:
    """Several MCP tools as OpenAI function tools (default: patchsmith's own tools)."""
    if tools is None:
        from .tools import TOOLS, input_schema

        tools = [{"name": t.name, "description": t.description, "inputSchema": input_schema(t)} for t in TOOLS]
    return [mcp_tool_to_openai(t, strict=strict, api=api) for t in tools]


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI strict-mode form of a JSON Schema: objects closed, every key required, optional ones nullable."""
    out = _strict(copy.deepcopy(schema) if schema else {"type": "object", "properties": {}})
    if out.get("type") != "object":
        raise ValueError("strict mode needs an object schema at the root")
    return out


def _parts(tool: Any) -> tuple[str, str, dict[str, Any]]:
    if isinstance(tool, dict):
        schema = tool.get("inputSchema", tool.get("input_schema"))
        return tool["name"], tool.get("description") or "", schema or {"type": "object", "properties": {}}
    return tool.name, tool.description or "", tool.input_schema or {"type": "object", "properties": {}}


def _say(node: dict[str, Any], words: str) -> None:
    node["description"] = f"{node['description']} ({words})" if node.get("description") else words


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "maxLength" in node or "minLength" in node:
        lo, hi = node.pop("minLength", None) or 0, node.pop("maxLength", None)
        if "pattern" not in node:  # strict mode takes patterns: the length limit becomes one
            node["pattern"] = f"^[\\s\\S]{{{lo},{'' if hi is None else hi}}}$"
        else:
            _say(node, f"{lo}..{hi} characters" if hi is not None else f"at least {lo} characters")
    if node.pop("uniqueItems", False):
        _say(node, "each value at most once")
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "oneOf" in node:  # strict mode has anyOf only; our alternatives exclude each other anyway
        node["anyOf"] = node.pop("oneOf")
    if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
        node = {**node.pop("allOf")[0], **node}
    for key in _DROP:
        node.pop(key, None)
    for key in ("anyOf", "items", "prefixItems"):
        if key in node:
            node[key] = _strict(node[key])
    if isinstance(node.get("$defs"), dict):
        node["$defs"] = {k: _strict(v) for k, v in node["$defs"].items()}
    if node.get("type") == "object" or "properties" in node:
        required = set(node.get("required", []))
        props = {}
        for key, sub in (node.get("properties") or {}).items():
            default = sub.get("default", _MISSING) if isinstance(sub, dict) else _MISSING
            sub = _strict(sub)
            if key not in required:
                sub = _nullable(sub, default)
            props[key] = sub
        node["properties"] = props
        node["required"] = list(props)
        node["additionalProperties"] = False
    return node


_MISSING = object()


def _accepts_null(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return (kind == "null" or (isinstance(kind, list) and "null" in kind)
            or any(isinstance(b, dict) and _accepts_null(b) for b in node.get("anyOf", [])))


def _nullable(node: dict[str, Any], default: Any) -> dict[str, Any]:
    """An optional property made required-but-nullable; what null means goes into its description."""
    meaning = ("null: absent" if default is _MISSING or default is None
               else f"null: the default, {json.dumps(default, separators=(',', ':'))}")
    if _accepts_null(node):
        if default is not _MISSING and default is not None and "null" not in node.get("description", ""):
            _say(node, meaning)
        return node
    if isinstance(node.get("type"), str) and "anyOf" not in node:
        node = {**node, "type": [node["type"], "null"]}
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
        _say(node, meaning)
        return node
    description = node.pop("description", None)
    out: dict[str, Any] = {"anyOf": [node, {"type": "null"}]}
    if description:
        out["description"] = description
    _say(out, meaning)
    return out
