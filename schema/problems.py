"""The error that carries one line per problem: what every file loader raises for a file it cannot use."""

from __future__ import annotations


class ProblemsError(ValueError):
    """Input that cannot be used; ``problems`` holds one line per problem, and the message joins them."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


__all__ = ["ProblemsError"]
