"""The patch as JSON Schema, generated from the metadata table (``params.py``); nothing is written by hand.

Two variants:

- ``patch_json_schema()``: draft 2020-12. The 12 core keys are required; ``name`` and the full-voice
  keys are optional and carry their neutral ``default``; every object is closed
  (``additionalProperties: false``); arrays have ``minItems``/``maxItems``; integers ``minimum``/``maximum``.
- ``patch_json_schema(strict=True)``: the OpenAI strict-mode variant (``reference/llm_tools.md`` §6,
  "Strict-mode schema rules"). That reference says every object must be closed and list **every**
  property in ``required``, and that "optional fields become nullable unions". So every optional key
  (``name``, each full-voice key, each LFO field) is required and may be ``null``, which means "absent:
  use the neutral default"; the default is stated in the key's description because strict mode has no
  use for ``default``. Only keywords the reference lists as supported are used: ``type``, ``enum``,
  ``anyOf`` (never at the root), ``minimum``/``maximum``, ``minItems``/``maxItems``, ``pattern``,
  ``description``, ``properties``/``required``/``additionalProperties``. There is no ``$schema``,
  ``default``, ``prefixItems`` or ``maxLength`` (the name's length limit is in its ``pattern``).

Both variants accept ``null`` for an optional key, as ``validate.validate`` does.

Agreement with ``validate.validate`` (checked by the tests): a document is valid under either schema
exactly when ``validate`` (strict mode) finds no problem, with two exceptions that JSON Schema cannot
express. (1) JSON Schema's ``integer`` is a mathematical property, so ``3.0`` passes the schema while
``validate`` rejects it (lenient mode accepts it and records a coercion). (2) Under the strict variant
every key must be present, so a document that omits an optional key needs that key set to ``null``.
"""

from __future__ import annotations

import json
from typing import Any

from .params import ALL_PARAMS, CORE_KEYS, NAME_MAX_LEN, TOP_LEVEL_KEYS, Param

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
# Printable ASCII with the length limit built in. ECMA-262 `$` (the JSON Schema dialect) is the end of
# the input; Python's `re` also lets `$` match before a final newline, which the tests account for.
NAME_PATTERN = f"^[ -~]{{0,{NAME_MAX_LEN}}}$"

_TOP_PARAMS: dict[str, Param] = {p.key: p for p in ALL_PARAMS if p.parent is None}
_LFO_PARAMS: tuple[Param, ...] = tuple(p for p in ALL_PARAMS if p.parent == "lfo")


def patch_json_schema(*, strict: bool = False) -> dict[str, Any]:
    """The JSON Schema of a patch: draft 2020-12 by default, the OpenAI strict-mode variant with ``strict=True``."""
    properties: dict[str, Any] = {}
    for key in TOP_LEVEL_KEYS:
        if key == "name":
            properties[key] = _name_schema(strict)
        elif key == "lfo":
            properties[key] = _lfo_schema(strict)
        else:
            properties[key] = _optional(_param_schema(_TOP_PARAMS[key]), _TOP_PARAMS[key], strict)
    schema: dict[str, Any] = {}
    if not strict:
        schema["$schema"] = DRAFT_2020_12
    schema |= {
        "title": "patch",
        "description": "One DX7 voice: the 128-number core (required) and optional full-voice keys. "
                       "Operator order everywhere: index 0 is OP1.",
        "type": "object",
        "properties": properties,
        "required": list(TOP_LEVEL_KEYS) if strict else list(CORE_KEYS),
        "additionalProperties": False,
    }
    return schema


def _leaf_schema(p: Param) -> dict[str, Any]:
    if p.kind == "boolean":
        return {"type": "boolean"}
    if p.kind == "categorical":
        return {"type": "string", "enum": list(p.choices or ())}
    return {"type": "integer", "minimum": p.low, "maximum": p.high}


def _param_schema(p: Param) -> dict[str, Any]:
    """The schema of one parameter, its shape included, with its description from the table."""
    s = _leaf_schema(p)
    for n in reversed(p.shape):
        s = {"type": "array", "items": s, "minItems": n, "maxItems": n}
    description = p.description
    if p.shape:
        dims = "x".join(str(n) for n in p.shape)
        description += f". Shape {dims}; indices: {', '.join(p.axes)}"
    return {"description": description, **s}


def _optional(s: dict[str, Any], p: Param, strict: bool) -> dict[str, Any]:
    """A core parameter as is; a full-voice one nullable, with its default (as a keyword, or in words if strict)."""
    if p.core:
        return s
    default = list(p.default) if isinstance(p.default, tuple) else p.default
    return _nullable(s, default, strict)


def _nullable(s: dict[str, Any], default: Any, strict: bool) -> dict[str, Any]:
    body = {k: v for k, v in s.items() if k != "description"}
    description = s.get("description", "")
    out: dict[str, Any] = {"description": f"{description}. null = absent: the neutral default {_json(default)} applies"}
    out["anyOf"] = [body, {"type": "null"}]
    if not strict:
        out["default"] = default
    return out


def _name_schema(strict: bool) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "string", "pattern": NAME_PATTERN}
    if not strict:
        s["maxLength"] = NAME_MAX_LEN
    return {
        "description": f"optional voice name: up to {NAME_MAX_LEN} printable ASCII characters; null = no name",
        "anyOf": [s, {"type": "null"}],
    }


def _lfo_schema(strict: bool) -> dict[str, Any]:
    props = {p.key: _optional(_param_schema(p), p, strict) for p in _LFO_PARAMS}
    body = {
        "description": "the voice's LFO (shared by all operators)",
        "type": "object",
        "properties": props,
        "required": [p.key for p in _LFO_PARAMS] if strict else [],
        "additionalProperties": False,
    }
    default = {p.key: p.default for p in _LFO_PARAMS}
    return _nullable(body, default, strict)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
