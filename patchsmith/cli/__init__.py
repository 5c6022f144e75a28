"""The ``patchsmith`` command line: a thin layer over the library, one module per subcommand.

``common`` holds what every subcommand shares (voice sources and ``SOURCE:N`` addressing, errors,
atomic output files, progress); ``render``, ``validate``, ``convert``, ``info``, ``demo``,
``describe``, ``evidence``, ``edit``, ``design`` and ``chat`` each expose ``add_parser(sub)`` and
``run(args) -> int``.
Bad input exits with status 2 and one ``error:`` line per problem on stderr, never a traceback, and
nothing is left half-written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from . import (bench, chat, convert, dataset, demo, describe, design, edit, eval_refine, evaluate, evidence, info, render,
               serve, serve_model, train, validate)
from .common import EXIT_BAD_INPUT, CliError

__all__ = ["build_parser", "main"]

# In the order ``--help`` lists them.
COMMANDS = (render, validate, convert, info, demo, describe, evidence, edit, design, chat, serve, dataset, train,
            serve_model, evaluate, eval_refine, bench)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="patchsmith", description="Words to interpretable DX7 patches: render, check, convert, describe and edit DX7 voices.",
        epilog="A voice source is a patch .json, an example .json, a .syx (single voice or bank) or a source-research "
               ".csv; SOURCE:N picks voice N, counted from 1 (a bank's voices are 1..32). Bad input exits with "
               "status 2.")
    parser.add_argument("--version", action="version", version=f"patchsmith {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input)."""
    from ..examples import ExampleError
    from ..schema.source_research import SourceResearchError
    from ..schema.validate import PatchValidationError
    from ..synth.midi import MidiError
    from ..synth.render import RenderError
    from ..synth.sysex import NotRepresentableError, SysexError
    from ..synth.wav import WavError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else EXIT_BAD_INPUT
    try:
        return args.func(args)
    except CliError as err:
        lines = err.lines
    except ExampleError as err:
        lines = err.problems
    except PatchValidationError as err:
        lines = [p.line() for p in err.problems]
    except (RenderError, MidiError, WavError, NotRepresentableError, SysexError, SourceResearchError) as err:
        lines = str(err).splitlines()
    except BrokenPipeError:  # the reader of our output went away (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as err:
        lines = [f"{str(err.filename) + ': ' if err.filename else ''}{err.strerror or err}"]
    except KeyboardInterrupt:
        return 130
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return EXIT_BAD_INPUT
