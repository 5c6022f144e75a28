"""``patchsmith serve-model``: placeholder replaced by the module that implements it."""

from __future__ import annotations

import argparse
from typing import Any

from .common import CliError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``serve-model``."""
    p = sub.add_parser("serve-model", help="serve a checkpoint with vLLM (in progress)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise CliError(["'serve-model' is not built yet"])
