"""``patchsmith train``: placeholder replaced by the module that implements it."""

from __future__ import annotations

import argparse
from typing import Any

from .common import CliError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``train``."""
    p = sub.add_parser("train", help="prepare SFT data and train with TRL (in progress)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Not built yet."""
    raise CliError(["'train' is not built yet"])
