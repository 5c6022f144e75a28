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
    names = set(build_parser()._subparsers._group_actions[0].choices)
    assert names == {"render", "validate", "convert", "info", "demo", "describe", "evidence", "edit", "design", "chat",
                     "serve"}
    for module in COMMANDS:
        assert callable(module.add_parser) and callable(module.run)
        assert module.__name__.rsplit(".", 1)[1] in names
    assert patchsmith.cli.__file__.endswith("__init__.py")
