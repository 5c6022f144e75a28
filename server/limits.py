"""The server's limits: named, documented, and checked before any work starts.

The per-argument limits are declared in the tool models (``schema.tools``: ``maxItems: 16``, the
sample-rate ``enum``, ...), so the published schemas show them; this module names them, so that an
error says which limit was hit and what is allowed, and checks the ones JSON Schema cannot express:
the size and nesting of the whole request, a clip's ``hold_s + release_s``, the audio one call renders,
the length of the edit list (whose items the library checks).
"""

from __future__ import annotations

import json
from typing import Any

from ..schema.tools import (MAX_AUDIO_S, MAX_BANK, MAX_CLIP_S, MAX_EDITS, MAX_NOTES, MAX_QUERY_CHARS, MAX_RESULTS,
                            MAX_SYSEX_BASE64, MAX_SYSEX_BYTES, SAMPLE_RATES)
from ..schema.validate import Problem

MAX_REQUEST_CHARS = 1_000_000  # the arguments of one call, as JSON (a 64 KiB sysex is 87 kB of base64)
MAX_NESTING = 12  # levels of arrays and objects in the arguments (a bank of patches needs 5)
MAX_HTTP_BODY_BYTES = 4 * 1024 * 1024  # one HTTP request body; larger ones get 413 before any parsing
RENDER_CACHE_BYTES = 128 * 1024 * 1024  # recent renders and exports kept for their resource URIs
RENDER_CACHE_ENTRIES = 512

LIMITS: dict[str, str] = {
    "notes": f"render_patch plays at most {MAX_NOTES} notes per call",
    "clip_length": f"each clip (hold_s + release_s, or an evidence segment) lasts at most {MAX_CLIP_S:g} s",
    "sample_rate": "sample_rate is one of " + ", ".join(map(str, SAMPLE_RATES)) + " Hz",
    "audio_per_call": f"one call renders at most {MAX_AUDIO_S:g} s of audio (all notes, or all evidence segments)",
    "bank_size": f"export_sysex writes at most {MAX_BANK} patches (one DX7 bank)",
    "edits": f"edit_patch applies at most {MAX_EDITS} edits per call",
    "sysex_size": f"import_sysex reads at most {MAX_SYSEX_BYTES // 1024} KiB ({MAX_SYSEX_BASE64} base64 characters)",
    "query_length": f"search_presets queries are at most {MAX_QUERY_CHARS} characters",
    "results": f"search_presets returns at most {MAX_RESULTS} results",
    "request_size": f"the arguments of one call are at most {MAX_REQUEST_CHARS:,} characters of JSON",
    "nesting": f"the arguments are nested at most {MAX_NESTING} levels deep",
    "http_body": f"an HTTP request body is at most {MAX_HTTP_BODY_BYTES // (1024 * 1024)} MiB (413 otherwise)",
}

# (argument, pydantic error type) -> the limit a schema constraint stands for.
_FIELD_LIMITS: dict[tuple[str, str], str] = {
    ("notes", "too_long"): "notes",
    ("hold_s", "less_than_equal"): "clip_length",
    ("release_s", "less_than_equal"): "clip_length",
    ("segment_s", "less_than_equal"): "clip_length",
    ("sample_rate", "literal_error"): "sample_rate",
    ("patches", "too_long"): "bank_size",
    ("data_base64", "string_too_long"): "sysex_size",
    ("query", "string_too_long"): "query_length",
    ("limit", "less_than_equal"): "results",
}


def field_limit(argument: str, error_type: str) -> str | None:
    """The named limit behind a schema constraint on an argument, if it is one."""
    return _FIELD_LIMITS.get((argument, error_type))


def limit_problem(name: str, pointer: str, found: str, allowed: str) -> Problem:
    """A problem that names the limit it breaks."""
    return Problem(pointer, found, allowed, f"limit {name}: {LIMITS[name]}")


def request_shape_problem(arguments: Any) -> Problem | None:
    """The first of request size and nesting depth the arguments exceed, before anything reads them."""
    # Depth first, visiting containers only, so that the size measure below never recurses deeply.
    stack: list[tuple[Any, int]] = [(arguments, 1)]
    containers = 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            return limit_problem("nesting", "", f"more than {MAX_NESTING} levels of arrays and objects",
                                 f"at most {MAX_NESTING} levels")
        containers += 1
        if containers > MAX_REQUEST_CHARS // 2:
            break  # "[]" is two characters: this many containers is over the size limit anyway
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    too_large = limit_problem("request_size", "", f"more than {MAX_REQUEST_CHARS:,} characters",
                              f"at most {MAX_REQUEST_CHARS:,} characters of JSON arguments")
    if containers > MAX_REQUEST_CHARS // 2:
        return too_large
    try:
        size = len(json.dumps(arguments, separators=(",", ":"), default=repr))
    except (ValueError, TypeError, RecursionError):  # Python refuses to print an integer of over 4300 digits
        return limit_problem("request_size", "", "a number too long to read (more than 4300 digits)",
                             f"at most {MAX_REQUEST_CHARS:,} characters of JSON arguments")
    return too_large if size > MAX_REQUEST_CHARS else None


def clip_problems(hold_s: float, release_s: float) -> list[Problem]:
    """A clip longer than the limit, or of no length at all."""
    total = hold_s + release_s
    if total > MAX_CLIP_S:
        return [limit_problem("clip_length", "/release_s", f"hold_s + release_s = {total:g} s",
                              f"hold_s + release_s at most {MAX_CLIP_S:g} s")]
    if total <= 0:
        return [Problem("/hold_s", "hold_s + release_s = 0 s", f"a clip longer than 0 s (at most {MAX_CLIP_S:g} s)",
                        "nothing to render")]
    return []


def audio_problems(seconds: float, pointer: str, what: str) -> list[Problem]:
    """Audio per call over the limit (``what`` says how it adds up)."""
    if seconds > MAX_AUDIO_S + 1e-9:
        return [limit_problem("audio_per_call", pointer, f"{what} = {seconds:g} s of audio",
                              f"at most {MAX_AUDIO_S:g} s of audio per call")]
    return []


def edits_count_problem(edits: Any) -> Problem | None:
    """An edit list longer than the limit (its items are the library's to check)."""
    if isinstance(edits, list) and len(edits) > MAX_EDITS:
        return limit_problem("edits", "/edits", f"{len(edits)} edits", f"at most {MAX_EDITS} edits")
    return None
