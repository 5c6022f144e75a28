"""MIDI file playback: chords, overlaps, voice stealing, sustain pedal, tempo, and bad files."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from patchsmith.synth.midi import MidiError, read_midi_events, render_midi, render_midi_events
from patchsmith.synth.render import RenderError, render
from patchsmith.synth.sysex import init_voice

SR = 48000
TPB = 480  # ticks per beat; at the default 120 bpm one beat is 0.5 s


def write_midi(path, tracks, tempo=None, type_=1):
    """tracks: lists of (abs_tick, kind, channel, note_or_control, velocity_or_value)."""
    mid = mido.MidiFile(type=type_, ticks_per_beat=TPB)
    for i, events in enumerate(tracks):
        track = mido.MidiTrack()
        if i == 0 and tempo:
            track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
        last = 0
        for tick, kind, ch, a, b in sorted(events, key=lambda e: e[0]):
            if kind == "cc":
                msg = mido.Message("control_change", channel=ch, control=a, value=b, time=tick - last)
            else:
                msg = mido.Message(kind, channel=ch, note=a, velocity=b, time=tick - last)
            track.append(msg)
            last = tick
        mid.tracks.append(track)
    mid.save(str(path))
    return path


def note(start, length, key, vel=100, ch=0):
    return [(start, "note_on", ch, key, vel), (start + length, "note_off", ch, key, 0)]


@pytest.fixture(scope="module")
def patch():
    return init_voice()


def test_chord_on_two_channels_renders_and_is_deterministic(tmp_path, patch):
    # A C major chord split over two tracks and channels, then an overlapping melody note.
    t1 = note(0, 960, 60) + note(0, 960, 64)
    t2 = note(0, 960, 67, ch=1) + note(480, 960, 72, ch=1)
    path = write_midi(tmp_path / "chord.mid", [t1, t2])
    midi = read_midi_events(path)
    assert midi.notes == 4 and midi.end_s == pytest.approx(1.5)
    audio = render_midi(patch, path, sample_rate=SR, tail_s=1.0)
    assert audio.dtype == np.float32 and audio.shape == (int(round(2.5 * SR)),)
    assert np.max(np.abs(audio[: SR // 10])) > 0.5  # three carriers sound from the start
    assert np.array_equal(audio, render_midi(patch, path, sample_rate=SR, tail_s=1.0))


def test_a_single_note_matches_render(tmp_path, patch):
    path = write_midi(tmp_path / "one.mid", [note(0, 960, 60)])  # held 1 s
    audio = render_midi(patch, path, tail_s=1.0)
    assert np.allclose(audio, render(patch, note=60, velocity=100, hold_s=1.0, release_s=1.0), atol=1e-6)


def test_more_than_sixteen_notes_steal_the_oldest(tmp_path, patch):
    keys = list(range(40, 60))  # 20 notes started 50 ms apart, all held to the end
    events = [e for i, k in enumerate(keys) for e in note(48 * i, 2400, k)]
    path = write_midi(tmp_path / "many.mid", [events])
    audio, stolen = render_midi_events(patch, path, voices=16, tail_s=0.5)
    assert stolen == 4
    assert np.max(np.abs(audio)) > 1.0  # many carriers at once; never clipped by the engine
    _, none_stolen = render_midi_events(patch, path, voices=32, tail_s=0.5)
    assert none_stolen == 0


def test_note_on_with_velocity_zero_is_a_note_off(tmp_path, patch):
    a = write_midi(tmp_path / "off.mid", [note(0, 480, 60)])
    b = write_midi(tmp_path / "zero.mid", [[(0, "note_on", 0, 60, 100), (480, "note_on", 0, 60, 0)]])
    assert np.array_equal(render_midi(patch, a), render_midi(patch, b))


def test_sustain_pedal_holds_released_notes(tmp_path, patch):
    plain = write_midi(tmp_path / "plain.mid", [note(0, 240, 60) + [(1920, "cc", 0, 1, 0)]])
    pedal = write_midi(tmp_path / "pedal.mid", [note(0, 240, 60) + [(0, "cc", 0, 64, 127), (1920, "cc", 0, 64, 0)]])
    assert read_midi_events(pedal).events[-1] == (pytest.approx(2.0), False, 60, 0)
    late = slice(int(1.0 * SR), int(1.5 * SR))  # after the key was let go, before the pedal comes up
    assert np.max(np.abs(render_midi(patch, plain)[late])) < 1e-3
    assert np.max(np.abs(render_midi(patch, pedal)[late])) > 0.5


def test_tempo_changes_are_applied(tmp_path, patch):
    path = write_midi(tmp_path / "slow.mid", [note(0, 480, 60)], tempo=1_000_000)  # 60 bpm: a beat is 1 s
    assert read_midi_events(path).end_s == pytest.approx(1.0)
    assert render_midi(patch, path, tail_s=0.5).shape == (int(1.5 * SR),)


def test_missing_corrupt_and_empty_files_are_clear_errors(tmp_path, patch):
    with pytest.raises(MidiError, match="no such file"):
        render_midi(patch, tmp_path / "missing.mid")
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"MThd\x00\x00\x00\x06garbage that is not a midi file")
    with pytest.raises(MidiError, match="not a readable MIDI file"):
        render_midi(patch, junk)
    text = tmp_path / "text.mid"
    text.write_text("hello")
    with pytest.raises(MidiError, match="not a readable MIDI file"):
        render_midi(patch, text)
    empty = write_midi(tmp_path / "empty.mid", [[(0, "cc", 0, 7, 100)]])
    with pytest.raises(MidiError, match="no notes"):
        render_midi(patch, empty)
    async_file = write_midi(tmp_path / "type2.mid", [note(0, 480, 60)], type_=2)
    with pytest.raises(MidiError, match="type 2"):
        render_midi(patch, async_file)


def test_bad_settings_are_render_errors(tmp_path, patch):
    path = write_midi(tmp_path / "one.mid", [note(0, 480, 60)])
    with pytest.raises(RenderError, match="tail_s"):
        render_midi(patch, path, tail_s=-1)
    with pytest.raises(RenderError, match="sample_rate"):
        render_midi(patch, path, sample_rate=8000)
    with pytest.raises(RenderError, match="voices"):
        render_midi(patch, path, voices=0)
    too_long = write_midi(tmp_path / "long.mid", [note(0, 480 * 2 * 700, 60)])
    with pytest.raises(MidiError, match="at most 600"):
        render_midi(patch, too_long)
