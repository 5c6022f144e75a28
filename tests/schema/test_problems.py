"""ProblemsError: the one-line-per-problem error that the file loaders share."""

from patchsmith.agent.library import LibraryError
from patchsmith.schema.problems import ProblemsError
from patchsmith.training.config import ConfigError


def test_problems_are_kept_and_joined_into_the_message():
    err = ProblemsError(("a: found 1, allowed 2..3", "b: missing"))
    assert isinstance(err, ValueError)
    assert err.problems == ["a: found 1, allowed 2..3", "b: missing"]
    assert str(err) == "a: found 1, allowed 2..3\nb: missing"


def test_the_loaders_errors_are_problems_errors():
    for cls in (ConfigError, LibraryError):
        err = cls(["x: bad"])
        assert isinstance(err, ProblemsError) and isinstance(err, ValueError)
        assert err.problems == ["x: bad"] and str(err) == "x: bad"
