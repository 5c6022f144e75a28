"""``patchsmith eval``: placeholder replaced by the module that implements it."""

from __future__ import annotations

import argparse
from typing import Any

from .common import CliError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``eval``."""
    p = sub.add_parser("eval", help="evaluate a system on captions (in progress)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise CliError(["'eval' is not built yet"])
