"""A design conversation: the current patch, its history with diffs, undo and redo, and saving.

The first request describes a sound; later ones refine the current patch ("shorter decay, a bit
brighter"). Each refinement is sent with the current patch itself (``output_parsing.compose_request``),
so the model always edits the patch the user is hearing, also after an undo or a redo the model never
saw. Every patch a request produces becomes a version with its diff against the one before; undo and
redo move through the versions, and a new request after an undo drops the versions ahead.

A request that fails (a limit, an unreachable model) leaves the conversation as it was: its messages
are taken back so the next request starts from a consistent history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ..schema.compact import dumps_compact
from ..schema.patch import Patch
from ..schema.validate import parse_patch
from ..synth.edits import diff_patches
from .loop import Agent, AgentReply, system_message
from .output_parsing import compose_request

SAMPLE_RATE = 48000
DEFAULT_RENDER: dict[str, Any] = {"note": 60, "velocity": 100, "hold_s": 3.0, "release_s": 1.0}


class NothingToDo(ValueError):
    """Undo with nothing to undo, redo with nothing to redo, or saving before any patch exists."""


class PatchVersion(BaseModel):
    """One step of the history: the patch, the request that made it, and what changed."""

    number: int
    request: str
    patch: dict[str, Any]
    changes: list[dict[str, Any]] = Field(default_factory=list)
    answer: str = ""
    render: dict[str, Any] | None = None  # how it was last auditioned (note, velocity, hold_s, release_s)


class Exchange(BaseModel):
    """What one request gave: the model's answer and the new version (None when the patch did not change)."""

    reply: AgentReply
    version: PatchVersion | None = None


class Conversation:
    """The state of a design session on top of an ``Agent``."""

    def __init__(self, agent: Agent, *, note: int | None = None, velocity: int | None = None,
                 keep_requests: int = 4):
        self.agent = agent
        # None: whatever the patch was auditioned at (the offline designer picks the library patch's note).
        self.note = note
        self.velocity = velocity
        # Older requests are dropped from what the model is sent: every refinement carries the current
        # patch, so the model needs only recent context, and a long session must not outgrow its window.
        self.keep_requests = keep_requests
        self._starts: list[int] = []  # where each request's user message is in self.messages
        self.messages: list[dict[str, Any]] = [system_message(note or DEFAULT_RENDER["note"],
                                                              velocity or DEFAULT_RENDER["velocity"])]
        self.versions: list[PatchVersion] = []
        self.position = -1  # index of the current version; -1 before the first patch

    @property
    def transcript(self) -> Any:
        """The agent's transcript (every request of the conversation)."""
        return self.agent.transcript

    @property
    def current(self) -> Patch | None:
        """The patch the user is hearing now."""
        if self.position < 0:
            return None
        return parse_patch(self.versions[self.position].patch)

    def request(self, text: str, *, new: bool = False) -> Exchange:
        """Run one request: a description (first, or ``new``) or a refinement of the current patch."""
        text = text.strip()
        if not text:
            raise ValueError("an empty request; describe a sound or a change to it")
        current = None if new else self.current
        content = compose_request(text, dumps_compact(current) if current is not None else None)
        self.transcript.add("request", text=text, kind="refinement" if current is not None else "description",
                            current_version=self.position + 1 if current is not None else None)
        self._trim()
        mark = len(self.messages)
        self.messages.append({"role": "user", "content": content})
        try:
            reply = self.agent.run(self.messages)
        except BaseException:
            del self.messages[mark:]
            raise
        self._starts.append(mark)
        version = self._commit(text, reply, base=current)
        return Exchange(reply=reply, version=version)

    def _trim(self) -> None:
        """Keep the system message and the last ``keep_requests - 1`` requests (cut at request boundaries)."""
        keep = max(self.keep_requests - 1, 0)
        if len(self._starts) <= keep:
            return
        cut = self._starts[len(self._starts) - keep] if keep else len(self.messages)
        # Cutting where a request begins never separates an assistant's tool calls from their results.
        del self.messages[1:cut]
        self._starts = [i - (cut - 1) for i in self._starts[len(self._starts) - keep:]] if keep else []

    def _commit(self, text: str, reply: AgentReply, base: Patch | None) -> PatchVersion | None:
        if reply.patch is None:
            return None
        patch = parse_patch(reply.patch, lenient=True)
        if base is not None and patch == base:
            return None
        changes = [c.model_dump() for c in diff_patches(base, patch)] if base is not None else []
        del self.versions[self.position + 1:]
        version = PatchVersion(number=len(self.versions) + 1, request=text, patch=patch.to_dict(), changes=changes,
                               answer=reply.text, render=reply.render)
        self.versions.append(version)
        self.position = len(self.versions) - 1
        self.transcript.add("version", number=version.number, request=text, changes=changes)
        return version

    def undo(self) -> PatchVersion:
        """Go back one version; returns the version now current."""
        if self.position <= 0:
            raise NothingToDo("nothing to undo")
        self.position -= 1
        self.transcript.add("undo", current_version=self.position + 1)
        return self.versions[self.position]

    def redo(self) -> PatchVersion:
        """Go forward one version again after an undo."""
        if self.position >= len(self.versions) - 1:
            raise NothingToDo("nothing to redo")
        self.position += 1
        self.transcript.add("redo", current_version=self.position + 1)
        return self.versions[self.position]

    def render_settings(self) -> dict[str, Any]:
        """How the current patch is played for sound.wav: as last auditioned, unless the user fixed note/velocity."""
        settings = dict(DEFAULT_RENDER)
        if self.position >= 0 and self.versions[self.position].render:
            settings.update({k: v for k, v in self.versions[self.position].render.items() if k in settings})
        if self.note is not None:
            settings["note"] = self.note
        if self.velocity is not None:
            settings["velocity"] = self.velocity
        return settings

    def describe(self) -> str:
        """A readable account of the current patch (topology, operators, envelopes)."""
        from ..synth.describe import describe_patch

        patch = self._need_patch()
        settings = self.render_settings()
        return describe_patch(patch, settings["note"], settings["velocity"]).text()

    def write(self, folder: Path) -> list[str]:
        """Write the current patch's files into ``folder`` (see ``write_outputs``); returns notes."""
        return write_outputs(folder, self._need_patch(), **self.render_settings(),
                             transcript_json=self.transcript.to_json())

    def _need_patch(self) -> Patch:
        patch = self.current
        if patch is None:
            raise NothingToDo("no patch yet: describe a sound first")
        return patch


def write_outputs(folder: Path, patch: Patch, *, note: int = 60, velocity: int = 100, hold_s: float = 3.0,
                  release_s: float = 1.0, transcript_json: str | None = None) -> list[str]:
    """Write patch.json, sound.wav (the patch played as given), voice.syx (when DX7-representable) and
    transcript.json into ``folder``.

    The folder is meant to be a staging folder that the caller moves into place, so that the files
    appear together or not at all. Returns notes (such as why there is no voice.syx).
    """
    from ..synth.render import render
    from ..synth.sysex import NotRepresentableError, write_vced
    from ..synth.wav import write_wav

    notes: list[str] = []
    (folder / "patch.json").write_text(patch_json(patch), encoding="utf-8")
    audio = render(patch, note=note, velocity=velocity, hold_s=hold_s, release_s=release_s, sample_rate=SAMPLE_RATE)
    write_wav(folder / "sound.wav", audio, SAMPLE_RATE, gain="peak", peak_dbfs=-1.0, subtype="PCM_16")
    try:
        (folder / "voice.syx").write_bytes(write_vced(patch))
    except NotRepresentableError as err:
        notes.append(f"no voice.syx: {err}")
    if transcript_json is not None:
        (folder / "transcript.json").write_text(transcript_json, encoding="utf-8")
    return notes


def patch_json(patch: Patch) -> str:
    """The patch file's text (compact canonical JSON)."""
    return dumps_compact(patch) + "\n"


__all__ = ["Conversation", "Exchange", "NothingToDo", "PatchVersion", "write_outputs", "patch_json"]
