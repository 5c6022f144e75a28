"""The example patches in the repository's ``examples/`` folder: captioned patches with render settings.

An example file is a JSON object (see ``examples/README.md``)::

    {
      "name": "Glass electric piano",
      "captions": ["Electric piano, which has ...", "..."],
      "render": {"note": 60, "velocity": 100, "hold_s": 3.0, "release_s": 1.0},
      "patch": { ...a patch in compact JSON... }
    }

``render`` is optional (those values are its defaults). ``format_example`` prints the canonical
text: the patch part is exactly ``dumps_compact`` indented by two spaces.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .schema.compact import dumps_compact
from .schema.patch import Patch
from .schema.problems import ProblemsError
from .schema.validate import validate
from .synth.render import parse_render_settings

EXAMPLE_KEYS: tuple[str, ...] = ("name", "captions", "render", "patch")


class ExampleError(ProblemsError):
    """An example file that cannot be used; ``problems`` holds one line per problem."""


@dataclass(frozen=True)
class Example:
    """One captioned example patch and the note it is best heard on."""

    key: str  # the file's stem: "epiano"
    name: str
    captions: tuple[str, ...]
    patch: Patch
    note: int = 60
    velocity: int = 100
    hold_s: float = 3.0
    release_s: float = 1.0
    path: Path | None = None

    def render_settings(self) -> dict[str, Any]:
        """The keyword arguments ``synth.render.render`` takes for this example."""
        return {"note": self.note, "velocity": self.velocity, "hold_s": self.hold_s, "release_s": self.release_s}


def is_example(data: Any) -> bool:
    """True when parsed JSON looks like an example file (an object with a ``patch`` key)."""
    return isinstance(data, dict) and "patch" in data


def example_field_problems(data: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Problems with an example's keys other than ``patch``, and its render settings (defaults filled in)."""
    problems = [f"/{k}: unknown key, allowed keys are {', '.join(EXAMPLE_KEYS)}" for k in data if k not in EXAMPLE_KEYS]
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.append(f"/name: found {name!r:.60}, allowed a non-empty string")
    captions = data.get("captions")
    if not isinstance(captions, list) or not captions:
        problems.append(f"/captions: found {captions!r:.60}, allowed a non-empty list of strings")
    else:
        problems += [f"/captions/{i}: found {c!r:.60}, allowed a non-empty string"
                     for i, c in enumerate(captions) if not isinstance(c, str) or not c.strip()]
    render_problems, settings = parse_render_settings(data.get("render", {}))
    problems += render_problems
    return problems, settings


def parse_example(data: Any, key: str = "example", path: Path | None = None) -> Example:
    """The ``Example`` in parsed JSON, or ``ExampleError`` listing every problem (JSON pointers)."""
    if not isinstance(data, dict):
        raise ExampleError([f"(root): found {type(data).__name__}, allowed an object with keys "
                            + ", ".join(EXAMPLE_KEYS)])
    problems, settings = example_field_problems(data)
    if "patch" not in data:
        problems.append("/patch: missing, allowed a patch object")
        report = None
    else:
        report = validate(data["patch"])
        problems += [f"/patch{p.pointer}: found {p.found}, allowed {p.allowed}" for p in report.problems]
    if problems or report is None or report.patch is None:
        raise ExampleError(problems)
    return Example(key=key, name=data["name"].strip(), captions=tuple(data["captions"]), patch=report.patch,
                   note=settings["note"], velocity=settings["velocity"], hold_s=float(settings["hold_s"]),
                   release_s=float(settings["release_s"]), path=path)


def load_example(path: str | os.PathLike[str]) -> Example:
    """Read one example file (``ExampleError`` for unreadable JSON or bad content)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise ExampleError([f"cannot read the file: {err.strerror or err}"]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ExampleError([f"invalid JSON: {err}"]) from None
    return parse_example(data, key=p.stem, path=p)


def examples_folder() -> Path:
    """The repository's ``examples/`` folder (beside the package in a checkout), else ``./examples``."""
    candidates = [Path(__file__).resolve().parent.parent / "examples", Path.cwd() / "examples"]
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.json")):
            return folder
    raise ExampleError(["no examples folder found (looked in " + " and ".join(map(str, candidates))
                        + "); the examples ship with the repository, not with an installed wheel"])


def load_examples(folder: str | os.PathLike[str] | None = None) -> list[Example]:
    """Every example in ``folder`` (default: the repository's ``examples/``), sorted by file name."""
    root = Path(folder) if folder is not None else examples_folder()
    if not root.is_dir():
        raise ExampleError([f"{root}: no such folder"])
    examples, problems = [], []
    for path in sorted(root.glob("*.json")):
        try:
            examples.append(load_example(path))
        except ExampleError as err:
            problems += [f"{path.name}: {line}" for line in err.problems]
    if problems:
        raise ExampleError(problems)
    if not examples:
        raise ExampleError([f"{root}: no example files (*.json)"])
    return examples


def format_example(example: Example) -> str:
    """The canonical text of an example file (the patch as compact JSON, indented two spaces)."""
    render = {"note": example.note, "velocity": example.velocity, "hold_s": example.hold_s,
              "release_s": example.release_s}
    captions = ",\n".join(f"    {json.dumps(c)}" for c in example.captions)
    patch = dumps_compact(example.patch).replace("\n", "\n  ")
    return (f'{{\n  "name": {json.dumps(example.name)},\n  "captions": [\n{captions}\n  ],\n'
            f'  "render": {json.dumps(render)},\n  "patch": {patch}\n}}\n')
