"""``patchsmith render``: render a voice (or every voice of a source) to WAV and print its levels."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from .common import (EXIT_OK, SOURCE_HELP, CliError, add_wav_arguments, check_fits, encode_wav, fmt_db, load_source,
                     note, print_notes, progress, slug, write_folder)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``render`` and its options."""
    r = sub.add_parser("render", help="render a voice to WAV and print its levels",
                       description="Render one voice (or, with -o FOLDER, every voice of a source) and print peak/RMS "
                                   "in engine units (1.0 = one full-scale carrier).")
    r.add_argument("patch", metavar="SOURCE", help=SOURCE_HELP)
    r.add_argument("-o", "--output", metavar="OUT", help="a .wav file (one voice) or a folder (several voices); "
                                                         "without it nothing is written")
    what = r.add_mutually_exclusive_group()
    what.add_argument("--note", type=int, help="MIDI note 0..127 (default 60, or the example's note)")
    what.add_argument("--notes", metavar="N,N,...", help="a chord: MIDI notes separated by commas")
    what.add_argument("--midi", metavar="FILE", help="play a MIDI file (16 voices, oldest-note stealing)")
    r.add_argument("--velocity", type=int, help="1..127 (default 100)")
    r.add_argument("--hold", type=float, help="seconds the key is held (default 3)")
    r.add_argument("--release", type=float, help="seconds rendered after the key is released (default 1; "
                                                 "with --midi, the tail after the last event, default 2)")
    r.add_argument("--sample-rate", type=int, default=48000, help="16000..96000 (default 48000)")
    add_wav_arguments(r)
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(func=run)
    return r


def _parse_notes(text: str) -> list[int]:
    notes = []
    for part in text.split(","):
        part = part.strip()
        if not re.fullmatch(r"\d{1,3}", part) or not 0 <= int(part) <= 127:
            raise CliError(f"--notes: found {part!r}, allowed MIDI note numbers 0..127 separated by commas (60,64,67)")
        notes.append(int(part))
    return notes


def _render_one(patch: Any, args: argparse.Namespace, example: Any) -> tuple[Any, dict[str, Any]]:
    """Render one voice as the arguments ask; returns (audio, what was played)."""
    from ..synth.render import check_request, render, render_events

    defaults = example.render_settings() if example is not None else {"note": 60, "velocity": 100, "hold_s": 3.0,
                                                                        "release_s": 1.0}
    velocity = args.velocity if args.velocity is not None else defaults["velocity"]
    hold = args.hold if args.hold is not None else defaults["hold_s"]
    release = args.release if args.release is not None else defaults["release_s"]
    sr = args.sample_rate
    if args.midi:
        from ..synth.midi import render_midi_events

        tail = args.release if args.release is not None else 2.0
        audio, stolen = render_midi_events(patch, args.midi, sample_rate=sr, voices=16, tail_s=tail)
        return audio, {"midi": str(args.midi), "tail_s": tail, "sample_rate": sr, "stolen_notes": stolen}
    if args.notes:
        notes = _parse_notes(args.notes)
        for n in notes:
            check_request(n, velocity, hold, release, sr)
        events = [(0.0, True, n, velocity) for n in notes] + [(float(hold), False, n, 0) for n in notes]
        audio, _ = render_events(patch, events, float(hold) + float(release), sample_rate=sr, voices=16)
        return audio, {"notes": notes, "velocity": velocity, "hold_s": hold, "release_s": release, "sample_rate": sr}
    key = args.note if args.note is not None else defaults["note"]
    audio = render(patch, note=key, velocity=velocity, hold_s=hold, release_s=release, sample_rate=sr)
    return audio, {"note": key, "velocity": velocity, "hold_s": hold, "release_s": release, "sample_rate": sr}


def run(args: argparse.Namespace) -> int:
    """Render a voice (or every voice of a source into a folder) and print its descriptors."""
    from ..evals.descriptors import basic_descriptors

    source = load_source(args.patch)
    several = len(source.voices) > 1
    out = Path(args.output) if args.output else None
    if several and (out is None or out.suffix.lower() == ".wav"):
        count = len(source.voices)
        raise CliError(f"{args.patch} holds {count} voices: address one as {args.patch}:N (N = 1..{count}), "
                       "or give -o a folder to render them all")
    if out is not None and not several and out.suffix.lower() != ".wav":
        raise CliError(f"-o {out}: a single voice renders to a .wav file")
    if out is not None and not (out if several and out.is_dir() else out.parent).is_dir():
        raise CliError(f"-o {out}: the folder {out.parent} does not exist")
    print_notes(source)
    rendered, results = [], []
    for voice in progress(source.voices, "render"):
        audio, played = _render_one(voice.patch, args, voice.example)
        name = f"{voice.number:02d}-{slug(voice.patch.name or '')}.wav" if several else None
        rendered.append((name, audio))
        results.append({"voice": voice.label, **played, **basic_descriptors(audio, args.sample_rate)})
    if out is not None and not several:
        check_fits(out, rendered[0][1], args)
        results[0]["wav"] = encode_wav(out, rendered[0][1], args)
    elif out is not None:
        for name, audio in rendered:  # every file is checked before any is written
            check_fits(out / name, audio, args)
        encoded: list[dict[str, Any]] = []

        def fill(staging: Path) -> None:
            encoded.extend(encode_wav(staging / name, audio, args) for name, audio in rendered)

        write_folder(out, fill)
        for row, info, (name, _) in zip(results, encoded, rendered):
            row["wav"] = info | {"path": str(out / name)}
    _print_render(results, args.json)
    return EXIT_OK


def _print_render(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        clean = [{k: (None if v == float("-inf") else v) for k, v in row.items()} for row in results]
        print(json.dumps(clean if len(clean) > 1 else clean[0], indent=2, default=str))
        return
    for row in results:
        played = (f"MIDI {row['midi']}" if "midi" in row else
                  f"notes {','.join(map(str, row['notes']))}" if "notes" in row else f"note {row['note']}")
        extra = f", {row['stolen_notes']} note(s) stolen" if row.get("stolen_notes") else ""
        print(f"{row['voice']}: {played}, {row['duration_s']:g} s at {row['sample_rate']} Hz{extra}")
        print(f"  peak {fmt_db(row['peak_dbfs'])} dBFS, RMS {fmt_db(row['rms_dbfs'])} dBFS (engine units: "
              "1.0 = one full-scale carrier)" + (", above full scale" if row["over_full_scale"] else "")
              + (", SILENT" if row["silent"] else ""))
        wav = row.get("wav")
        if wav:
            how = f"peak-normalised, gain {wav['gain_db']:+.2f} dB" if wav["gain"] == "peak" else "raw engine units"
            print(f"  wrote {wav['path']} ({wav['format']}, {how})")
        if row["silent"]:
            note(f"{row['voice']} is silent with these settings")
