"""Play a standard MIDI file through one patch, polyphonically (``mido`` reads, ``render_events`` plays).

Every channel plays the same patch (a DX7 is one voice on one channel; merging keeps a multi-track
file audible instead of silently dropping parts). Note-on with velocity 0 is a note-off, as MIDI
says. The sustain pedal (controller 64) holds released notes until the pedal comes up, as it does
on a DX7. The engine's voice allocator steals the oldest note when more than ``voices`` sound.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mido
import numpy as np

from ..schema.patch import Patch
from .render import MAX_SECONDS, RenderError, render_events

SUSTAIN_PEDAL = 64


class MidiError(ValueError):
    """A MIDI file that cannot be played (missing, corrupt, no notes, too long); the message says why."""


@dataclass(frozen=True)
class MidiEvents:
    """The note events of a MIDI file, in seconds, all channels merged."""

    events: list[tuple[float, bool, int, int]]  # (time_s, is_note_on, note, velocity)
    end_s: float  # time of the file's last message
    notes: int  # how many note-ons


def read_midi_events(path: str | os.PathLike[str]) -> MidiEvents:
    """The note events of a MIDI file (tempo changes applied, sustain pedal resolved)."""
    p = Path(path)
    if not p.is_file():
        raise MidiError(f"{p}: no such file")
    try:
        midi = mido.MidiFile(str(p))
    except Exception as err:  # mido raises OSError, EOFError, ValueError, KeyError, ... on corrupt data
        raise MidiError(f"{p}: not a readable MIDI file ({type(err).__name__}: {err})") from None
    if midi.type == 2:
        raise MidiError(f"{p}: a type 2 (asynchronous tracks) MIDI file has no single timeline; allowed types 0 and 1")
    events: list[tuple[float, bool, int, int]] = []
    now = 0.0
    pedal_down: set[int] = set()
    held: dict[int, list[int]] = {}  # channel -> notes released while the pedal was down
    notes = 0
    try:
        for msg in midi:  # merged tracks, delta times in seconds with the file's tempo map applied
            now += float(msg.time)
            kind = msg.type
            if kind == "note_on" and msg.velocity > 0:
                events.append((now, True, msg.note, msg.velocity))
                notes += 1
            elif kind == "note_off" or (kind == "note_on" and msg.velocity == 0):
                if msg.channel in pedal_down:
                    held.setdefault(msg.channel, []).append(msg.note)
                else:
                    events.append((now, False, msg.note, 0))
            elif kind == "control_change" and msg.control == SUSTAIN_PEDAL:
                if msg.value >= 64:
                    pedal_down.add(msg.channel)
                elif msg.channel in pedal_down:
                    pedal_down.discard(msg.channel)
                    events.extend((now, False, note, 0) for note in held.pop(msg.channel, []))
    except Exception as err:
        raise MidiError(f"{p}: corrupt MIDI data ({type(err).__name__}: {err})") from None
    for channel in list(held):  # a pedal never lifted: release its notes at the end of the file
        events.extend((now, False, note, 0) for note in held.pop(channel))
    if notes == 0:
        raise MidiError(f"{p}: the file has no notes to play")
    return MidiEvents(events=events, end_s=now, notes=notes)


def render_midi_events(patch: Patch | dict[str, Any], path: str | os.PathLike[str], sample_rate: int = 48000,
                       voices: int = 16, tail_s: float = 2.0) -> tuple[np.ndarray, int]:
    """Play a MIDI file through ``patch``; returns (float32 mono audio, notes stolen)."""
    if isinstance(tail_s, bool) or not isinstance(tail_s, (int, float)) or not 0.0 <= float(tail_s) <= 60.0:
        raise RenderError(f"tail_s: found {tail_s!r}, allowed a number of seconds 0..60")
    midi = read_midi_events(path)
    duration = midi.end_s + float(tail_s)
    if duration > MAX_SECONDS:
        raise MidiError(f"{path}: plays for {midi.end_s:.1f} s (+{float(tail_s):g} s tail), "
                        f"allowed at most {MAX_SECONDS:g} seconds")
    return render_events(patch, midi.events, duration, sample_rate=sample_rate, voices=voices)


def render_midi(patch: Patch | dict[str, Any], path: str | os.PathLike[str], sample_rate: int = 48000,
                voices: int = 16, tail_s: float = 2.0) -> np.ndarray:
    """Play a MIDI file through ``patch`` polyphonically (oldest-note stealing) as float32 mono."""
    return render_midi_events(patch, path, sample_rate=sample_rate, voices=voices, tail_s=tail_s)[0]
