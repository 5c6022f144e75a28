"""From a call's raw arguments to checked values: every problem at once, as (pointer, found, allowed).

The low-level MCP server validates nothing, so this is the only gate: request size and nesting first
(before anything else reads the arguments), then the tool's input model (``schema.tools``; its
pydantic errors become problems whose ``allowed`` is read from the published schema), then the limits
JSON Schema cannot express, then the patch through ``schema.validate`` with its own JSON pointers
(``/patch/eg_rate/2/4``). ``null`` for an optional argument means "use the default", which is what an
OpenAI strict-mode tool call sends for an argument it has no value for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from ..schema.patch import Patch
from ..schema.tools import ToolSpec, input_schema
from ..schema.validate import Problem, _short, validate, validate_json
from .errors import ToolError, prefixed, problems_error
from .limits import LIMITS, field_limit, request_shape_problem

PATCH_ALLOWED = "a patch object (its JSON Schema: resource patchsmith://schema/patch)"


@dataclass
class Call:
    """A tool call whose arguments passed every check."""

    spec: ToolSpec
    args: Any  # the tool's input model
    patch: Patch | None = None
    patches: list[Patch] = field(default_factory=list)


def parse_call(spec: ToolSpec, arguments: Any, *, check_patch: bool = True) -> Call:
    """Check a call's arguments; ``ToolError`` lists every problem found."""
    shape = request_shape_problem(arguments)
    if shape is not None:
        raise ToolError("limit_exceeded", f"{spec.name}: the request is too large", [shape])
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolError("invalid_arguments", f"{spec.name}: the arguments must be an object",
                        [Problem("", _short(arguments), "an object of named arguments", "not an object")])
    optional = {name for name, f in spec.input_model.model_fields.items() if not f.is_required()}
    cleaned = {k: v for k, v in arguments.items() if not (v is None and k in optional)}

    problems: list[Problem] = []
    model: BaseModel | None = None
    try:
        model = spec.input_model.model_validate(cleaned)
    except ValidationError as err:
        problems += _pydantic_problems(err, spec)
    patch_problems: list[Problem] = []
    patch: Patch | None = None
    patches: list[Patch] = []
    if check_patch and "patch" in spec.input_model.model_fields and "patch" in cleaned:
        patch, patch_problems = read_patch(cleaned["patch"], "/patch")
    if check_patch and "patches" in spec.input_model.model_fields and isinstance(cleaned.get("patches"), list) \
            and not any(p.pointer == "/patches" for p in problems):
        for i, item in enumerate(cleaned["patches"]):
            p, found = read_patch(item, f"/patches/{i}")
            patch_problems += found
            if p is not None:
                patches.append(p)
    if problems or patch_problems:
        raise _error(spec, problems, patch_problems)
    return Call(spec=spec, args=model, patch=patch, patches=patches)


def read_patch(data: Any, pointer: str, lenient: bool = False) -> tuple[Patch | None, list[Problem]]:
    """The patch in an argument (an object, or JSON text of one), or its problems under ``pointer``."""
    # Some clients send nested objects as JSON text: read it rather than refuse it.
    report = validate_json(data, lenient=lenient) if isinstance(data, str) else validate(data, lenient=lenient)
    if report.valid and report.patch is not None:
        return report.patch, []
    return None, prefixed(report.problems, pointer)


def _error(spec: ToolSpec, problems: list[Problem], patch_problems: list[Problem]) -> ToolError:
    if problems:
        return problems_error(spec.name, problems + patch_problems)
    n = len(patch_problems)
    return ToolError("invalid_patch", f"{spec.name}: the patch is not valid ({n} problem{'s' if n != 1 else ''}); "
                                      "fix these values and call again", patch_problems)


def _pydantic_problems(err: ValidationError, spec: ToolSpec) -> list[Problem]:
    schema = input_schema(spec)
    out = []
    for e in err.errors(include_url=False):
        loc = [str(x) for x in e["loc"]]
        pointer = "".join(f"/{x}" for x in loc)
        kind = e["type"]
        value = e.get("input")
        if kind == "extra_forbidden":
            out.append(Problem(pointer, _short(value), "no such argument; allowed arguments: "
                               + ", ".join(schema["properties"]), "unknown argument"))
            continue
        fragment = _fragment(schema, loc)
        allowed = allowed_text(fragment) if fragment is not None else "see the tool's input schema"
        if kind == "missing":
            found = "missing"
        elif kind in ("too_long", "too_short") and isinstance(value, list):
            found = f"{len(value)} items"
        elif kind in ("string_too_long", "string_too_short") and isinstance(value, str):
            found = f"{len(value)} characters"
        else:
            found = _short(value)
        limit = field_limit(loc[0], kind) if len(loc) == 1 else None
        message = f"limit {limit}: {LIMITS[limit]}" if limit else e["msg"]
        out.append(Problem(pointer, found, allowed, message))
    return out


def _fragment(schema: dict[str, Any], loc: list[str]) -> dict[str, Any] | None:
    """The part of the published schema that ``loc`` points into."""
    node: Any = schema
    for key in loc:
        node = _non_null(node)
        if not isinstance(node, dict):
            return None
        if key in node.get("properties", {}):
            node = node["properties"][key]
        elif key.isdigit() and "items" in node:
            node = node["items"]
        else:
            return None
    return node if isinstance(node, dict) else None


def _non_null(node: Any) -> Any:
    if isinstance(node, dict) and "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1:
            return branches[0]
    return node


def allowed_text(s: dict[str, Any]) -> str:
    """What a schema fragment allows, in words (``integer 1..127``, ``one of 16000, 22050``)."""
    if s.get("title") == "patch":
        return PATCH_ALLOWED
    if "enum" in s:
        return "one of " + ", ".join(json.dumps(v) for v in s["enum"])
    if "const" in s:
        return json.dumps(s["const"])
    if "anyOf" in s or "oneOf" in s:
        return " or ".join(allowed_text(b) for b in s.get("anyOf", s.get("oneOf", [])))
    kind = s.get("type")
    if kind in ("integer", "number"):
        word = "integer" if kind == "integer" else "number"
        lo, hi = s.get("minimum"), s.get("maximum")
        if lo is not None and hi is not None:
            return f"{word} {lo:g}..{hi:g}"
        if lo is not None:
            return f"{word} >= {lo:g}"
        return f"{word} <= {hi:g}" if hi is not None else word
    if kind == "array":
        lo, hi = s.get("minItems"), s.get("maxItems")
        count = (f"{lo}..{hi} items" if lo is not None and hi is not None else f"at most {hi} items"
                 if hi is not None else f"at least {lo} items" if lo is not None else "items")
        items = s.get("items")
        return f"an array of {count}" + (f", each {allowed_text(items)}" if isinstance(items, dict) else "")
    if kind == "string":
        lo, hi = s.get("minLength"), s.get("maxLength")
        if hi is not None:
            return f"a string of {lo or 0}..{hi} characters"
        return "a non-empty string" if lo else "a string"
    if kind == "boolean":
        return "true or false"
    if kind == "object":
        return "an object with keys " + ", ".join(s.get("properties", {}))
    if kind == "null":
        return "null"
    return "see the tool's input schema"
