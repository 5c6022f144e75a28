"""The designer's patch library: captioned DX7 patches that ship inside the package.

Each patch is one JSON file in ``agent/presets/`` (installed as ``patchsmith/agent/presets/``), in the
format of the repository's ``examples/`` files plus a ``family`` and optional ``tags``::

    {
      "name": "Tine electric piano",
      "family": "electric piano",
      "tags": ["long-decay", "bell-like", "warm"],
      "captions": ["Electric piano, which has ...", "..."],
      "render": {"note": 60, "velocity": 100, "hold_s": 3.0, "release_s": 1.0},
      "patch": { ...a patch in compact JSON... }
    }

``load_library()`` reads the packaged folder through ``importlib.resources``, so it works the same from
a checkout, an editable install and a wheel. ``format_library_patch`` prints a file's canonical text (the
patch part is exactly ``dumps_compact`` indented by two spaces). ``agent/presets/README.md`` lists the
families, the caption style and what each tag promises.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..schema.compact import dumps_compact
from ..schema.patch import Patch
from ..schema.problems import ProblemsError
from ..schema.validate import validate
from ..synth.render import parse_render_settings

LIBRARY_PACKAGE = "patchsmith.agent"
LIBRARY_DIR = "presets"
LIBRARY_KEYS: tuple[str, ...] = ("name", "family", "tags", "captions", "render", "patch")

# The tag vocabulary. The first group are claims about the sound that the library's tests measure on
# every patch's render (see README.md for the thresholds); the second group describe character only.
MEASURED_TAGS: dict[str, str] = {
    "percussive": "falls 20 dB below its peak within 0.6 s, even while the key is held",
    "fast-attack": "reaches its peak within about 15 ms (10-90% rise)",
    "soft-attack": "a rise of 15 ms or more: no hard click",
    "slow-attack": "fades in over 150 ms or more",
    "sustained": "holds within 12 dB of its peak while the key is down",
    "long-decay": "takes a second or more to fall 20 dB while held (or never does)",
    "short-release": "stops within 0.4 s of the key being let go",
    "long-release": "rings on for 0.8 s or more after the key is let go",
    "bright": "spectral centroid at least twice the played note's fundamental",
    "dark": "little energy above 1.5 kHz and a centroid near the fundamental",
    "inharmonic": "a fifth or more of the power away from the harmonic series (bells, metal, noise)",
    "noisy": "half or more of the power away from the harmonic series (drums, wind)",
    "vibrato": "an LFO moves the pitch audibly",
    "tremolo": "an LFO moves the amplitude audibly",
    "detuned": "detuned operators beat or chorus audibly",
    "pitch-sweep": "the pitch envelope bends the note (a scoop, a drop or a dive)",
}
CHARACTER_TAGS: dict[str, str] = {
    "warm": "round and mellow rather than thin",
    "bell-like": "a chiming, bell or tine colour",
    "reedy": "a nasal, reed-like colour",
    "breathy": "carries some breath noise",
    "evolving": "the tone colour moves over time (sweeps, wah)",
    "random-pitch": "the pitch jumps at random (sample-and-hold LFO)",
}
TAGS: dict[str, str] = MEASURED_TAGS | CHARACTER_TAGS


class LibraryError(ProblemsError):
    """A library file that cannot be used; ``problems`` holds one line per problem."""


class RenderSettings(BaseModel):
    """The note a library patch is best heard on (``synth.render.render`` keyword arguments)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    note: int = 60
    velocity: int = 100
    hold_s: float = 3.0
    release_s: float = 1.0


class LibraryPatch(BaseModel):
    """One captioned library patch: what it is, what it sounds like, and the patch itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str  # the file's stem, e.g. "ep_tine"
    name: str  # what it is, in words, e.g. "Tine electric piano"
    family: str  # e.g. "electric piano"
    captions: tuple[str, ...]
    tags: tuple[str, ...] = ()
    render: RenderSettings = RenderSettings()
    patch: Patch

    def render_settings(self) -> dict[str, Any]:
        """The keyword arguments ``synth.render.render`` takes for this patch."""
        return self.render.model_dump()

    def text(self) -> str:
        """Everything a text retriever should see: name, family, captions and tags, one per line."""
        return "\n".join([self.name, self.family, *self.captions, " ".join(self.tags)]).strip()


def _string_problems(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        return [f"/{key}: found {value!r:.60}, allowed a non-empty string"]
    return []


def _list_problems(data: dict[str, Any], key: str, required: bool) -> list[str]:
    if key not in data and not required:
        return []
    value = data.get(key)
    if not isinstance(value, list) or (required and not value):
        return [f"/{key}: found {value!r:.60}, allowed a {'non-empty ' if required else ''}list of strings"]
    return [f"/{key}/{i}: found {v!r:.60}, allowed a non-empty string"
            for i, v in enumerate(value) if not isinstance(v, str) or not v.strip()]


def parse_library_patch(data: Any, id: str = "patch") -> LibraryPatch:
    """The ``LibraryPatch`` in parsed JSON, or ``LibraryError`` listing every problem (JSON pointers)."""
    if not isinstance(data, dict):
        raise LibraryError([f"(root): found {type(data).__name__}, allowed an object with keys "
                            + ", ".join(LIBRARY_KEYS)])
    problems = [f"/{k}: unknown key, allowed keys are {', '.join(LIBRARY_KEYS)}" for k in data if k not in LIBRARY_KEYS]
    problems += _string_problems(data, "name") + _string_problems(data, "family")
    problems += _list_problems(data, "captions", required=True) + _list_problems(data, "tags", required=False)
    render_problems, settings = parse_render_settings(data.get("render", {}))
    problems += render_problems
    patch = None
    if "patch" not in data:
        problems.append("/patch: missing, allowed a patch object")
    else:
        report = validate(data["patch"])
        problems += [f"/patch{p.pointer}: found {p.found}, allowed {p.allowed}" for p in report.problems]
        patch = report.patch
    if problems or patch is None:
        raise LibraryError(problems)
    return LibraryPatch(id=id, name=data["name"].strip(), family=data["family"].strip(),
                        captions=tuple(c.strip() for c in data["captions"]),
                        tags=tuple(t.strip() for t in data.get("tags", [])),
                        render=RenderSettings(note=settings["note"], velocity=settings["velocity"],
                                              hold_s=float(settings["hold_s"]), release_s=float(settings["release_s"])),
                        patch=patch)


def _read(file: Traversable | Path, id: str) -> LibraryPatch:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as err:
        raise LibraryError([f"cannot read the file: {err.strerror or err}"]) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LibraryError([f"invalid JSON: {err}"]) from None
    return parse_library_patch(data, id=id)


def load_library_file(path: str | os.PathLike[str]) -> LibraryPatch:
    """Read one library file (``LibraryError`` for unreadable JSON or bad content)."""
    p = Path(path)
    return _read(p, p.stem)


def library_folder() -> Traversable:
    """The packaged library folder (a ``Traversable``: a real folder in a checkout or an unpacked wheel)."""
    return resources.files(LIBRARY_PACKAGE).joinpath(LIBRARY_DIR)


def _json_files(root: Traversable | Path) -> list[Traversable | Path]:
    return sorted((f for f in root.iterdir() if f.name.endswith(".json") and f.is_file()), key=lambda f: f.name)


def load_library(folder: str | os.PathLike[str] | Traversable | None = None) -> list[LibraryPatch]:
    """Every patch in ``folder`` (default: the packaged library), sorted by file name.

    Raises ``LibraryError`` listing every problem of every file, or when the folder is missing or empty.
    """
    root: Traversable | Path
    if folder is None:
        root = library_folder()
    elif isinstance(folder, (str, os.PathLike)):
        root = Path(folder)
    else:
        root = folder
    if not root.is_dir():
        raise LibraryError([f"{root}: no such folder"])
    patches, problems = [], []
    for file in _json_files(root):
        try:
            patches.append(_read(file, file.name[: -len(".json")]))
        except LibraryError as err:
            problems += [f"{file.name}: {line}" for line in err.problems]
    if problems:
        raise LibraryError(problems)
    if not patches:
        raise LibraryError([f"{root}: no library files (*.json)"])
    return patches


def families(library: Iterable[LibraryPatch]) -> dict[str, list[LibraryPatch]]:
    """The patches grouped by family, families in order of first appearance."""
    out: dict[str, list[LibraryPatch]] = {}
    for p in library:
        out.setdefault(p.family, []).append(p)
    return out


def format_library_patch(entry: LibraryPatch) -> str:
    """The canonical text of a library file (the patch as compact JSON, indented two spaces)."""
    captions = ",\n".join(f"    {json.dumps(c)}" for c in entry.captions)
    tags = f'  "tags": {json.dumps(list(entry.tags))},\n' if entry.tags else ""
    patch = dumps_compact(entry.patch).replace("\n", "\n  ")
    return (f'{{\n  "name": {json.dumps(entry.name)},\n  "family": {json.dumps(entry.family)},\n{tags}'
            f'  "captions": [\n{captions}\n  ],\n  "render": {json.dumps(entry.render_settings())},\n'
            f'  "patch": {patch}\n}}\n')
