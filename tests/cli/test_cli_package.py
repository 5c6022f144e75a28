"""The CLI is a package: a regular (wheel) install must ship it, and ``python -m patchsmith`` must find it."""

from __future__ import annotations

import tomllib

from tests.cli.cli_support import REPO

import patchsmith.cli
from patchsmith.cli import COMMANDS, build_parser


def test_pyproject_ships_the_cli_package_and_its_console_script():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    # setuptools lists the packages explicitly: a subpackage missing here is silently left out of the wheel.
    assert "patchsmith.cli" in project["tool"]["setuptools"]["packages"]
    assert project["project"]["scripts"]["patchsmith"] == "patchsmith.cli:main"
    assert not (REPO / "patchsmith" / "cli.py").exists()  # a stale module beside the package would be confusing


def test_every_subcommand_module_has_add_parser_and_run():
    choices = build_parser()._subparsers._group_actions[0].choices
    assert set(choices) == {"render", "validate", "convert", "info", "demo", "describe", "evidence", "edit", "design",
                            "chat", "serve", "dataset", "train", "serve-model", "eval", "eval-refine", "bench"}
    for module in COMMANDS:
        assert callable(module.add_parser)
    # Each command's handler lives in one of the registered modules (a command has subcommands of its own at most).
    homes = {module.__name__ for module in COMMANDS}
    for name, parser in choices.items():
        func = parser.get_default("func")
        if func is None:  # a command made of subcommands (dataset, train): each of those has its handler
            subs = parser._subparsers._group_actions[0].choices
            assert all(sub.get_default("func").__module__ in homes for sub in subs.values()), name
            continue
        assert func.__module__ in homes, name
    assert patchsmith.cli.__file__.endswith("__init__.py")
