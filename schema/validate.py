"""Validation of untrusted patch data: every problem, with its JSON pointer, what was found and what is allowed.

``validate`` never raises on any input (any JSON value or Python object) and never changes a value in
strict mode. Lenient mode exists for model output only (``patch-schema.md`` §4): it also reads an
integer-valued float (``3.0``), a numeric string (``"42"``) or a ``"true"``/``"false"`` string, and
records each such reading as a ``Coercion`` so that a strict format reward can still tell the difference.

Ranges, kinds and allowed-value texts all come from the metadata table (``params.py``).

``null`` for an optional key (``name``, a full-voice key, an LFO field) means "absent": its neutral
default applies. That is what an OpenAI strict-mode tool call emits for a key it has no value for
(``jsonschema.patch_json_schema(strict=True)`` makes every key required and nullable), so both modes
accept it. ``null`` for a core key, or inside an array, is a problem.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .algorithms import algorithm_of, nearest_algorithm
from .params import ALL_PARAMS, CORE_PARAMS, NAME_MAX_LEN, TOP_LEVEL_KEYS, Param
from .patch import Patch

FOUND_MAX_CHARS = 60

_TOP_PARAMS: dict[str, Param] = {p.key: p for p in ALL_PARAMS if p.parent is None}
_LFO_PARAMS: dict[str, Param] = {p.key: p for p in ALL_PARAMS if p.parent == "lfo"}
_CORE_KEYS = frozenset(p.key for p in CORE_PARAMS)
_NAME_ALLOWED = f"null or a string of at most {NAME_MAX_LEN} printable ASCII characters (space to ~)"
_LFO_ALLOWED = "null or an object with optional keys " + ", ".join(_LFO_PARAMS)
_ROOT_ALLOWED = "an object with keys " + ", ".join(TOP_LEVEL_KEYS)
# Bounded so that int() on a model's "999...9" string stays cheap (and under Python's digit limit).
_NUMERIC_STRING = re.compile(r"\s*([+-]?\d{1,30})(?:\.0*)?\s*")


@dataclass
class Problem:
    """One thing wrong with the input: where (JSON pointer), what was found, what is allowed."""

    pointer: str
    found: str
    allowed: str
    message: str

    def line(self) -> str:
        """The one-line form used by ``ValidationReport.summary``."""
        return f"{self.pointer or '(root)'}: found {self.found}, allowed {self.allowed}"


@dataclass
class Coercion:
    """A value lenient mode read as something else (``"42"`` as 42), and why."""

    pointer: str
    found: str
    used: Any
    reason: str


@dataclass
class ValidationReport:
    """The outcome of ``validate``: problems, lenient coercions, the parsed patch and its topology."""

    valid: bool
    problems: list[Problem] = field(default_factory=list)
    coercions: list[Coercion] = field(default_factory=list)
    patch: Patch | None = None
    # The DX7 algorithm when (modmatrix, outmatrix) is one of the 32, else None. nearest_* are set
    # whenever both matrices are well formed (distance 0 for an exact algorithm).
    algorithm: int | None = None
    nearest_algorithm: int | None = None
    nearest_distance: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the patch in its short form, without neutral full-voice keys)."""
        return {
            "valid": self.valid,
            "problems": [vars(p).copy() for p in self.problems],
            "coercions": [vars(c).copy() for c in self.coercions],
            "algorithm": self.algorithm,
            "nearest_algorithm": self.nearest_algorithm,
            "nearest_distance": self.nearest_distance,
            "patch": self.patch.to_dict(full=False) if self.patch is not None else None,
        }

    def summary(self) -> str:
        """One line per problem (``/eg_rate/2/4: found 120, allowed integer 0..99``), or a one-line verdict."""
        if self.problems:
            return "\n".join(p.line() for p in self.problems)
        if self.algorithm is not None:
            head = f"valid (DX7 algorithm {self.algorithm})"
        elif self.nearest_algorithm is not None:
            head = (f"valid (not a DX7 algorithm; nearest is {self.nearest_algorithm}, "
                    f"{self.nearest_distance} matrix entries differ)")
        else:
            head = "valid"
        notes = [f"{c.pointer}: read {c.found} as {_short(c.used)} ({c.reason})" for c in self.coercions]
        return "\n".join([head, *notes])


class PatchValidationError(ValueError):
    """Raised by ``parse_patch``/``loads_patch``: carries ``.problems`` (and ``.report``); str is the summary."""

    def __init__(self, report: ValidationReport):
        self.report = report
        self.problems: list[Problem] = list(report.problems)
        super().__init__(report.summary())


def escape_pointer_token(token: str) -> str:
    """One JSON-pointer reference token, escaped per RFC 6901 (``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return token.replace("~", "~0").replace("/", "~1")


def validate(data: Any, *, lenient: bool = False) -> ValidationReport:
    """Check ``data`` (a parsed JSON value or any Python object) against the patch format."""
    walker = _Walker(lenient)
    try:
        cleaned = walker.root(data)
        return walker.report(cleaned)
    except Exception as exc:  # the promise is "never raises": a bug here must still come back as a problem
        return ValidationReport(False, [Problem("", _short(data), _ROOT_ALLOWED,
                                                f"internal validation error ({type(exc).__name__}); please report")])


def validate_json(text: str, *, lenient: bool = False) -> ValidationReport:
    """Parse JSON text and validate it; a parse error is a problem at pointer ``""``."""
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        if not isinstance(text, str):
            return ValidationReport(False, [Problem("", _short(text), "JSON text (a string)", "not a string")])
        data = json.loads(text, object_pairs_hook=pairs_to_dict)
    except json.JSONDecodeError as exc:
        # The parse position is the useful part, so it goes into `found` (the summary shows found/allowed).
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        near = _short(exc.doc[max(0, exc.pos - 15): exc.pos + 15], 40)
        return ValidationReport(False, [Problem("", f"invalid JSON ({where}) near {near}", "a JSON object",
                                                f"invalid JSON: {where}")])
    except RecursionError:
        return ValidationReport(False, [Problem("", _short(text), "a JSON object", "invalid JSON: nested too deeply")])
    except Exception as exc:  # UnicodeDecodeError, Python's integer-digit limit, ...
        return ValidationReport(False, [Problem("", _short(text), "a JSON object", f"invalid JSON: {exc}")])
    return validate(data, lenient=lenient)


def parse_patch(data: Any, *, lenient: bool = False) -> Patch:
    """The ``Patch`` in ``data``, or ``PatchValidationError`` listing every problem."""
    report = validate(data, lenient=lenient)
    if not report.valid or report.patch is None:
        raise PatchValidationError(report)
    return report.patch


def pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict:
    """A ``json.loads`` object hook: a dict that remembers its repeated keys, for ``validate`` to report."""
    d = _DuplicateKeysDict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        dups = []
        for k, _ in pairs:
            if k in seen and k not in dups:
                dups.append(k)
            seen.add(k)
        d.duplicate_keys = tuple(dups)
    return d


# --- internals ---------------------------------------------------------------------------------

_BAD = object()  # a value that failed validation (distinct from None, which can be a valid "absent")


class _DuplicateKeysDict(dict):
    """A JSON object that had repeated keys (json.loads silently keeps the last one)."""

    duplicate_keys: tuple[str, ...] = ()


class _Walker:
    """Walks the input once, collecting problems and coercions and building the cleaned dict."""

    def __init__(self, lenient: bool):
        self.lenient = lenient
        self.problems: list[Problem] = []
        self.coercions: list[Coercion] = []

    def problem(self, pointer: str, value: Any, allowed: str, message: str, *, found: str | None = None) -> None:
        self.problems.append(Problem(pointer, found if found is not None else _short(value), allowed, message))

    def root(self, data: Any) -> dict[str, Any] | None:
        if isinstance(data, Patch):
            data = data.to_dict()
        if not isinstance(data, Mapping):
            self.problem("", data, _ROOT_ALLOWED, f"the patch must be a JSON object, not {_kind(data)}")
            return None
        self.duplicates(data, "")
        cleaned: dict[str, Any] = {}
        for key in TOP_LEVEL_KEYS:
            ptr = "/" + key
            if key not in data:
                if key in _CORE_KEYS:
                    p = _TOP_PARAMS[key]
                    self.problem(ptr, None, _shape_allowed(p, p.shape), "missing required key", found="missing")
                continue
            value = data[key]
            if value is None and key not in _CORE_KEYS:
                continue  # null for an optional key = absent (see the module docstring)
            if key == "name":
                out = self.name(value, ptr)
            elif key == "lfo":
                out = self.lfo(value, ptr)
            else:
                p = _TOP_PARAMS[key]
                out = self.param(value, p, ptr, p.shape)
            if out is not _BAD:
                cleaned[key] = out
        self.unknown_keys(data, "", TOP_LEVEL_KEYS)
        return cleaned

    def duplicates(self, obj: Mapping, pointer: str) -> None:
        for key in getattr(obj, "duplicate_keys", ()):
            ptr = f"{pointer}/{escape_pointer_token(key)}"
            if self.lenient:
                self.coercions.append(Coercion(ptr, "duplicate key", _short(obj[key]),
                                               "key repeated; the last value was used"))
            else:
                self.problem(ptr, None, "each key once", "duplicate key (JSON parsers keep only the last value)",
                             found="duplicate key")

    def unknown_keys(self, obj: Mapping, pointer: str, allowed: tuple[str, ...]) -> None:
        allowed_text = "no such key; allowed keys: " + ", ".join(allowed)
        for key in obj:
            if isinstance(key, str) and key in allowed:
                continue
            token = key if isinstance(key, str) else _short(key)
            message = "unknown key" if isinstance(key, str) else f"object keys must be strings, not {_kind(key)}"
            self.problem(f"{pointer}/{escape_pointer_token(token)}", obj[key], allowed_text, message)

    def name(self, value: Any, ptr: str) -> Any:
        if not isinstance(value, str):
            self.problem(ptr, value, _NAME_ALLOWED, f"the name must be a string, not {_kind(value)}")
            return _BAD
        bad = [c for c in value if not " " <= c <= "~"]
        if len(value) > NAME_MAX_LEN or bad:
            why = []
            if len(value) > NAME_MAX_LEN:
                why.append(f"{len(value)} characters, more than {NAME_MAX_LEN}")
            if bad:
                why.append("non-printable or non-ASCII character " + json.dumps(bad[0]))
            self.problem(ptr, value, _NAME_ALLOWED, "; ".join(why))
            return _BAD
        return value

    def lfo(self, value: Any, ptr: str) -> Any:
        if not isinstance(value, Mapping):
            self.problem(ptr, value, _LFO_ALLOWED, f"the LFO must be an object, not {_kind(value)}")
            return _BAD
        self.duplicates(value, ptr)
        out: dict[str, Any] = {}
        ok = True
        for key, p in _LFO_PARAMS.items():
            if key not in value or value[key] is None:
                continue  # absent or null: the field's neutral default applies
            v = self.param(value[key], p, f"{ptr}/{key}", p.shape)
            if v is _BAD:
                ok = False
            else:
                out[key] = v
        bad_keys = [k for k in value if not (isinstance(k, str) and k in _LFO_PARAMS)]
        if bad_keys:
            ok = False
            self.unknown_keys(value, ptr, tuple(_LFO_PARAMS))
        return out if ok else _BAD

    def param(self, value: Any, p: Param, ptr: str, dims: tuple[int, ...]) -> Any:
        if not dims:
            return self.leaf(value, p, ptr)
        n = dims[0]
        if not isinstance(value, (list, tuple)):
            self.problem(ptr, value, _shape_allowed(p, dims), f"expected an array, not {_kind(value)}")
            return _BAD
        ok = True
        if len(value) != n:
            ok = False
            self.problem(ptr, value, _shape_allowed(p, dims), f"array of {len(value)} items, expected {n}",
                         found=_short(value, FOUND_MAX_CHARS - 12) + f" ({len(value)} items)")
        out = []
        # Items past the expected length are covered by the length problem; not checking them keeps
        # the work bounded by the schema, whatever the input's size.
        for i, item in enumerate(value[:n]):
            v = self.param(item, p, f"{ptr}/{i}", dims[1:])
            if v is _BAD:
                ok = False
            out.append(v)
        return out if ok else _BAD

    def leaf(self, value: Any, p: Param, ptr: str) -> Any:
        if p.kind in ("integer", "binary"):
            return self.integer(value, p, ptr)
        if p.kind == "boolean":
            return self.boolean(value, p, ptr)
        if isinstance(value, str) and value in (p.choices or ()):
            return value
        self.problem(ptr, value, p.allowed, "not one of the allowed names" if isinstance(value, str)
                     else f"expected a string, not {_kind(value)}")
        return _BAD

    def integer(self, value: Any, p: Param, ptr: str) -> Any:
        if type(value) is int and p.low <= value <= p.high:  # the common case, without the ABC checks below
            return value
        used: int | None = None
        reason = ""
        if _is_bool(value):
            self.problem(ptr, value, p.allowed, "a boolean is not an integer here (write 0 or 1)")
            return _BAD
        if isinstance(value, numbers.Integral):
            used = int(value)
        elif isinstance(value, numbers.Real):
            try:
                f = float(value)
            except (OverflowError, ValueError):  # e.g. a Fraction too large for a float
                f = math.inf
            if math.isnan(f) or math.isinf(f):
                self.problem(ptr, value, p.allowed, "not a finite number")
                return _BAD
            if not f.is_integer():
                self.problem(ptr, value, p.allowed, "not a whole number")
                return _BAD
            if not self.lenient:
                self.problem(ptr, value, p.allowed, "a float where an integer is required (write it without .0)")
                return _BAD
            used, reason = int(f), "integer-valued float read as an integer"
        elif isinstance(value, str):
            m = _NUMERIC_STRING.fullmatch(value) if self.lenient else None
            if m is None:
                self.problem(ptr, value, p.allowed, "a string where an integer is required")
                return _BAD
            used, reason = int(m.group(1)), "numeric string read as an integer"
        else:
            self.problem(ptr, value, p.allowed, f"expected an integer, not {_kind(value)}")
            return _BAD
        if not (p.low <= used <= p.high):
            self.problem(ptr, value, p.allowed, "out of range" + (f" (read as {_short(used)})" if reason else ""))
            return _BAD
        if reason:
            self.coercions.append(Coercion(ptr, _short(value), used, reason))
        return used

    def boolean(self, value: Any, p: Param, ptr: str) -> Any:
        if _is_bool(value):
            return bool(value)
        if self.lenient and isinstance(value, str) and value.strip().lower() in ("true", "false"):
            used = value.strip().lower() == "true"
            self.coercions.append(Coercion(ptr, _short(value), used, "boolean string read as a boolean"))
            return used
        self.problem(ptr, value, p.allowed, f"expected a boolean, not {_kind(value)}")
        return _BAD

    def report(self, cleaned: dict[str, Any] | None) -> ValidationReport:
        rep = ValidationReport(False, self.problems, self.coercions)
        if cleaned is not None and "modmatrix" in cleaned and "outmatrix" in cleaned:
            mm, om = cleaned["modmatrix"], cleaned["outmatrix"]
            rep.algorithm = algorithm_of(mm, om)
            if rep.algorithm is not None:
                rep.nearest_algorithm, rep.nearest_distance = rep.algorithm, 0
            else:
                rep.nearest_algorithm, rep.nearest_distance = nearest_algorithm(mm, om)
        if cleaned is None or self.problems:
            return rep
        try:
            rep.patch = Patch.model_validate(cleaned)
        except Exception as exc:  # a safety net: the walk above should have caught everything pydantic does
            errors = getattr(exc, "errors", lambda: [])()
            for e in errors or [{"loc": (), "msg": str(exc), "input": cleaned}]:
                ptr = "".join("/" + escape_pointer_token(str(t)) for t in e.get("loc", ()))
                self.problems.append(Problem(ptr, _short(e.get("input")), "see the patch schema", str(e.get("msg"))))
            return rep
        rep.valid = True
        return rep


def _is_bool(value: Any) -> bool:
    # numpy.bool_ is not a bool subclass, but it is no more an integer than True is.
    return isinstance(value, bool) or type(value).__name__ in ("bool_", "bool")


def _kind(value: Any) -> str:
    """A short English name for the JSON kind of ``value`` (for messages)."""
    if value is None:
        return "null"
    if _is_bool(value):
        return "a boolean"
    if isinstance(value, numbers.Integral):
        return "an integer"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return f"a Python {type(value).__name__}"


def _shape_allowed(p: Param, dims: tuple[int, ...]) -> str:
    """The allowed-value text for a parameter at the nesting level where ``dims`` remain."""
    if not dims:
        return p.allowed
    inner = _shape_allowed(p, dims[1:])
    if inner.startswith("integer "):
        inner = "integers " + inner[len("integer "):]
    elif inner.startswith("array "):
        inner = "arrays " + inner[len("array "):]
    else:
        inner = "strings, each " + inner
    return f"array of {dims[0]} {inner}"


class _Full(Exception):
    pass


def _short(value: Any, limit: int = FOUND_MAX_CHARS) -> str:
    """A JSON-like rendering of ``value`` cut to ``limit`` characters; safe on any object."""
    out: list[str] = []
    size = [0]

    def put(s: str) -> None:
        out.append(s)
        size[0] += len(s)
        if size[0] > limit:
            raise _Full

    def render(v: Any, depth: int) -> None:
        if v is None:
            put("null")
        elif _is_bool(v):
            put("true" if v else "false")
        elif isinstance(v, numbers.Integral):
            i = int(v)
            if i.bit_length() > 200:  # str() of a huge int is slow, and fails past 4300 digits
                put(f"{'-' if i < 0 else ''}<{int(i.bit_length() * 0.30103) + 1}-digit integer>")
            else:
                put(str(i))
        elif isinstance(v, numbers.Real):
            f = float(v)
            put("NaN" if math.isnan(f) else ("Infinity" if f > 0 else "-Infinity") if math.isinf(f) else repr(f))
        elif isinstance(v, str):
            put(json.dumps(v[: limit + 1]))
        elif isinstance(v, (list, tuple)):
            if depth >= 4:
                put("[...]")
                return
            put("[")
            for k, item in enumerate(v):
                if k:
                    put(",")
                render(item, depth + 1)
            put("]")
        elif isinstance(v, Mapping):
            if depth >= 4:
                put("{...}")
                return
            put("{")
            for k, key in enumerate(v):
                if k:
                    put(",")
                put(json.dumps(key[: limit + 1]) if isinstance(key, str) else f"<{type(key).__name__}>")
                put(":")
                render(v[key], depth + 1)
            put("}")
        else:
            put(f"<{type(v).__name__}>")

    try:
        render(value, 0)
    except _Full:
        pass
    except Exception:  # a hostile __iter__/__getitem__/__float__: fall back to the type name
        return f"<{type(value).__name__}>"
    s = "".join(out)
    return s if len(s) <= limit else s[: limit - 3] + "..."
