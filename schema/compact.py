"""Compact JSON for prompts and training targets (``patch-schema.md`` §5).

The canonical key order (``params.TOP_LEVEL_KEYS``), one top-level key per line, every value (arrays,
nested matrices and the LFO object) on its one line with no spaces inside, so that a patch costs few
tokens and a diff between two patches shows exactly the keys that changed.
"""

from __future__ import annotations

import json
from .patch import Patch
from .validate import PatchValidationError, parse_patch, validate_json

__all__ = ["dumps_compact", "loads_patch", "PatchValidationError"]


def dumps_compact(patch: Patch | dict, *, full: bool = False) -> str:
    """The patch as compact JSON; ``full=False`` omits full-voice keys equal to their neutral default."""
    # A dict is validated first (strictly) so that the text is always a valid, canonical patch.
    p = patch if isinstance(patch, Patch) else parse_patch(patch)
    d = p.to_dict(full=full)
    lines = [f"  {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}" for k, v in d.items()]
    return "{\n" + ",\n".join(lines) + "\n}"


def loads_patch(text: str) -> Patch:
    """The patch in JSON ``text`` (strict validation), or ``PatchValidationError`` listing every problem."""
    report = validate_json(text)
    if not report.valid or report.patch is None:
        raise PatchValidationError(report)
    return report.patch
