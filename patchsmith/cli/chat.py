"""``patchsmith chat``: design a sound, then refine it in conversation.

The first line describes a sound; every later line refines the current patch ("shorter decay", "a bit
brighter"). Commands: ``undo``, ``redo``, ``save [PATH]``, ``describe``, ``history``, ``new TEXT``
(start over from a new description), ``help`` and ``quit``. Lines come from the terminal or from a
pipe: when stdin is not a terminal no prompt is printed at all, so a script's stdout holds only the
answers; at a terminal the prompt goes to stderr. A failed line prints ``error: ...`` on stderr and the
session goes on; the exit status is 2 if any line failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_BAD_INPUT, EXIT_OK, CliError, check_output_dir, check_output_folder, note, write_atomic
from .design import add_agent_arguments, agent_errors, open_conversation, summary_lines, write_session

HELP = """\
commands:
  TEXT          the first line describes a sound; later lines refine the current patch
  new TEXT      start over from a new description
  undo, redo    step back and forth through the versions
  describe      a readable account of the current patch
  history       the versions so far
  save [PATH]   write patch.json, sound.wav, voice.syx and transcript.json into a folder (default: -o),
                or only the patch when PATH ends in .json
  help, quit"""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``chat`` and its options."""
    c = sub.add_parser("chat", help="design a patch, then refine it in conversation (undo, redo, save)",
                       description="An interactive design session: a description, then refinements such as "
                                   "\"shorter decay\" or \"a bit brighter\"; undo, redo, save [PATH], describe, "
                                   "history, new TEXT, quit. Works from a pipe (no prompts are printed then).")
    c.add_argument("-o", "--output", metavar="DIR", default="chat-out",
                   help="the folder `save` writes to (default chat-out)")
    add_agent_arguments(c)
    c.set_defaults(func=run)
    return c


def _say(text: str) -> None:
    print(text, flush=True)


def _fail(text: str) -> None:
    print(f"error: {text}", file=sys.stderr, flush=True)


def _version_line(conversation: Any, version: Any) -> str:
    total = len(conversation.versions)
    name = (conversation.current.name or "").strip() if conversation.current is not None else ""
    return (f"version {version.number} of {total}" + (f" ({name})" if name else "")
            + f": {version.request!r}")


def _save(conversation: Any, target: Path) -> list[str]:
    """Save the current patch to a folder (all files) or a .json file (the patch only); returns file paths."""
    from ..agent.conversation import patch_json

    patch = conversation.current
    if patch is None:
        raise CliError("no patch yet: describe a sound first")
    if target.suffix.lower() == ".json":
        check_output_folder(target, flag="save")
        write_atomic(target, patch_json(patch))
        return [str(target)]
    check_output_dir(target, "save")
    notes, names = write_session(target, conversation)
    for line in notes:
        note(line)
    return [str(target / n) for n in names]


def _handle(conversation: Any, line: str, args: argparse.Namespace) -> bool:
    """Carry out one line; returns False when the session should end."""
    from ..agent.conversation import NothingToDo

    word, _, rest = line.partition(" ")
    command = word.lower()
    rest = rest.strip()
    if command in ("quit", "exit", "bye") and not rest:
        return False
    if command == "help" and not rest:
        _say(HELP)
    elif command in ("undo", "redo") and not rest:
        try:
            version = conversation.undo() if command == "undo" else conversation.redo()
        except NothingToDo as err:
            raise CliError(str(err)) from None
        _say(f"{command}: now at {_version_line(conversation, version)}")
    elif command == "describe" and not rest:
        try:
            _say(conversation.describe())
        except NothingToDo as err:
            raise CliError(str(err)) from None
    elif command == "history" and not rest:
        if not conversation.versions:
            _say("no versions yet")
        for i, v in enumerate(conversation.versions):
            mark = "*" if i == conversation.position else " "
            _say(f"{mark} {v.number}. {v.request!r} ({len(v.changes)} change(s))")
    elif command == "save":
        paths = _save(conversation, Path(rest) if rest else Path(args.output))
        _say("saved " + ", ".join(paths))
    elif command == "new" and rest:
        _request(conversation, rest, new=True)
    else:
        _request(conversation, line, new=False)
    return True


def _request(conversation: Any, text: str, *, new: bool) -> None:
    try:
        exchange = conversation.request(text, new=new)
    except agent_errors() as err:
        raise CliError(str(err)) from None
    if exchange.version is not None:
        _say(_version_line(conversation, exchange.version))
    elif conversation.current is None:
        _say("no patch yet")
    else:
        _say("the patch did not change")
    for line in summary_lines(conversation, exchange):
        _say(f"  {line}")


def run(args: argparse.Namespace) -> int:
    """Read lines until ``quit`` or the end of input, designing and refining the patch."""
    interactive = sys.stdin.isatty()
    failed = False
    with open_conversation(args) as conversation:
        if interactive:
            print("Describe a sound; then refine it (\"shorter decay\"). Type help for commands.", file=sys.stderr)
        while True:
            if interactive:
                print("> ", end="", file=sys.stderr, flush=True)
            line = sys.stdin.readline()
            if not line:  # end of input
                break
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                if not _handle(conversation, line, args):
                    break
            except CliError as err:
                failed = True
                for problem in err.lines:
                    _fail(problem)
            except (ValueError, OSError) as err:  # a library error on one line must not end the session
                failed = True
                for problem in (str(err) or type(err).__name__).splitlines():
                    _fail(problem)
    return EXIT_BAD_INPUT if failed else EXIT_OK
