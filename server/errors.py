"""Tool errors: what went wrong with a call, as a result a model can read and fix its call from.

A tool error is an MCP ``CallToolResult`` with ``is_error: true`` (never a protocol error): one text
block (a headline, then one ``pointer: found X, allowed Y`` line per problem) and the same as structured
content (``schema.tools.ToolErrorInfo``), so text-only and structured clients both see every problem.
"""

from __future__ import annotations

from collections.abc import Iterable

import mcp_types as types

from ..schema.tools import ProblemInfo, ToolErrorInfo
from ..schema.validate import Problem

MAX_PROBLEMS = 50  # a garbage patch can have hundreds; the first ones are enough to start fixing it


class ToolError(Exception):
    """A call that cannot be served: its kind (``ToolErrorInfo.error``), a headline and the problems."""

    def __init__(self, kind: str, message: str, problems: Iterable[Problem] = ()):
        self.kind = kind
        self.message = message
        self.problems = list(problems)
        super().__init__(message)

    def result(self) -> types.CallToolResult:
        """The MCP tool result (``is_error``) carrying this error."""
        shown = self.problems[:MAX_PROBLEMS]
        lines = [self.message] + [p.line() + (f" ({p.message})" if p.message else "") for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"... and {len(self.problems) - len(shown)} more problems")
        info = ToolErrorInfo(error=self.kind, message=self.message,  # type: ignore[arg-type]
                             problems=[ProblemInfo(**vars(p)) for p in shown])
        return types.CallToolResult(content=[types.TextContent(text="\n".join(lines))],
                                    structured_content=info.model_dump(mode="json"), is_error=True)


def prefixed(problems: Iterable[Problem], prefix: str) -> list[Problem]:
    """The problems with their pointers moved under ``prefix`` (``/patch`` + ``/eg_rate/2/4``)."""
    return [Problem(prefix + p.pointer, p.found, p.allowed, p.message) for p in problems]


def problems_error(tool: str, problems: list[Problem]) -> ToolError:
    """The error for argument problems: ``limit_exceeded`` when one names a limit, else ``invalid_arguments``."""
    n = len(problems)
    count = f"{n} problem{'s' if n != 1 else ''}"
    if any(p.message.startswith("limit ") for p in problems):
        return ToolError("limit_exceeded", f"{tool}: over a limit ({count}); nothing was done", problems)
    return ToolError("invalid_arguments", f"{tool}: invalid arguments ({count})", problems)
