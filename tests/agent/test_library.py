"""The designer's patch library: well-formed, captioned, DX7-exportable, shipped in the wheel, and
sounding like its captions and tags (every claim measured on the patch's own render)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from patchsmith.agent.library import (CHARACTER_TAGS, MEASURED_TAGS, TAGS, LibraryError, LibraryPatch, families,
                                      format_library_patch, library_folder, load_library, load_library_file,
                                      parse_library_patch)
from patchsmith.agent.tag_thresholds import (BRIGHT_RATIO, DARK_BRIGHTNESS, DARK_CENTROID_HZ, DARK_RATIO,
                                            DETUNED_BEATING, FAST_ATTACK_MS, INHARMONIC, LONG_DECAY_MS,
                                            LONG_RELEASE_MS, NOISY, PERCUSSIVE_DECAY_MS, SHORT_RELEASE_MS,
                                            SLOW_ATTACK_MS, SUSTAINED_DB, TREMOLO_BEATING, VIBRATO_CENTS)
from patchsmith.evals.descriptors import describe_audio, note_hz
from patchsmith.schema.algorithms import algorithm_of
from patchsmith.schema.audio import AudioDescriptors
from patchsmith.schema.validate import parse_patch
from patchsmith.synth.render import render_batch
from patchsmith.synth.sysex import read_sysex, write_vced, write_vmem

from ..conftest import REPO

SR = 48000
FOLDER = REPO / "agent" / "presets"
LIB = load_library()
BY_ID = {p.id: p for p in LIB}
CAPTION = re.compile(r"[A-Z][a-z -]+, which [^\n]+\.")  # "Instrument, which has ... ."


# --- the collection ---------------------------------------------------------------------------------


def test_size_families_and_unique_names():
    fams = families(LIB)
    assert len(LIB) >= 60 and len(fams) >= 15
    assert all(len(ps) >= 3 for ps in fams.values()), {f: len(ps) for f, ps in fams.items()}
    for key in ("id", "name"):
        dupes = [k for k, n in Counter(getattr(p, key).lower() for p in LIB).items() if n > 1]
        assert not dupes, f"duplicate {key}s: {dupes}"
    patch_names = Counter(p.patch.name for p in LIB)
    assert all(patch_names) and max(patch_names.values()) == 1, patch_names.most_common(3)
    captions = Counter(c for p in LIB for c in p.captions)
    assert max(captions.values()) == 1, captions.most_common(1)


def test_the_default_folder_is_the_packaged_one(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert Path(str(library_folder())).resolve() == FOLDER.resolve()
    assert [p.id for p in load_library()] == sorted(f.stem for f in FOLDER.glob("*.json"))
    assert [p.id for p in load_library(FOLDER)] == [p.id for p in LIB]


@pytest.mark.parametrize("entry", LIB, ids=lambda p: p.id)
def test_each_file_is_canonical_captioned_and_tagged(entry: LibraryPatch):
    path = FOLDER / f"{entry.id}.json"
    assert path.read_text(encoding="utf-8") == format_library_patch(load_library_file(path))
    assert 2 <= len(entry.captions) <= 3 and len(set(entry.captions)) == len(entry.captions)
    for caption in entry.captions:
        assert CAPTION.fullmatch(caption), caption
    assert set(entry.tags) <= set(TAGS), set(entry.tags) - set(TAGS)
    assert len(set(entry.tags)) == len(entry.tags)
    assert entry.family == entry.family.strip().lower()
    assert entry.patch.name and len(entry.patch.name) <= 10
    if entry.family == "bass":
        assert 28 <= entry.render.note <= 48


@pytest.mark.parametrize("entry", LIB, ids=lambda p: p.id)
def test_each_patch_validates_and_exports_to_sysex(entry: LibraryPatch):
    full = entry.patch.to_dict(full=True)
    assert parse_patch(full) == entry.patch
    assert algorithm_of(entry.patch.modmatrix, entry.patch.outmatrix) is not None
    message = write_vced(entry.patch)
    assert len(message) == 163
    back = read_sysex(message).voices[0].to_dict(full=True)
    assert back.pop("name").rstrip() == full.pop("name")  # sysex pads names to 10 characters
    assert back == full  # the full voice survives the sysex round trip


def test_the_whole_library_fits_in_dx7_banks():
    for start in range(0, len(LIB), 32):
        bank = write_vmem([p.patch for p in LIB[start:start + 32]])
        assert len(bank) == 4104


# --- the sound ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def measured() -> dict[str, tuple[np.ndarray, AudioDescriptors]]:
    """Every patch rendered at its own settings (one batch per distinct setting) and described."""
    groups: dict[tuple, list[LibraryPatch]] = {}
    for p in LIB:
        groups.setdefault(tuple(p.render_settings().values()), []).append(p)
    out = {}
    for entries in groups.values():
        settings = entries[0].render_settings()
        for p, audio in zip(entries, render_batch([p.patch for p in entries], sample_rate=SR, **settings)):
            sounding = min(127, max(0, p.render.note + p.patch.transpose))
            out[p.id] = audio, describe_audio(audio, SR, note=sounding, note_off_s=p.render.hold_s)
    return out


def f0_of(p: LibraryPatch) -> float:
    return note_hz(p.render.note + p.patch.transpose)


def tag_failures(p: LibraryPatch, d: AudioDescriptors) -> list[str]:
    """The measured tags of ``p`` that its render does not bear out (agent/tag_thresholds.py, README.md)."""
    c = d.centroid_hz / f0_of(p)
    patch = p.patch
    checks = {
        "percussive": d.decay20_ms is not None and d.decay20_ms < PERCUSSIVE_DECAY_MS,
        "fast-attack": d.attack_ms <= FAST_ATTACK_MS,
        "soft-attack": d.attack_ms >= FAST_ATTACK_MS,
        "slow-attack": d.attack_ms >= SLOW_ATTACK_MS,
        "sustained": d.decay20_ms is None and d.sustain_db is not None and d.sustain_db >= SUSTAINED_DB,
        "long-decay": d.decay20_ms is None or d.decay20_ms >= LONG_DECAY_MS,
        "short-release": d.release_ms is not None and d.release_ms <= SHORT_RELEASE_MS,
        "long-release": d.release_ms is None or d.release_ms >= LONG_RELEASE_MS,
        "bright": c >= BRIGHT_RATIO,
        "dark": d.brightness <= DARK_BRIGHTNESS and (c <= DARK_RATIO or d.centroid_hz <= DARK_CENTROID_HZ),
        "inharmonic": (d.inharmonicity or 0) >= INHARMONIC,
        "noisy": (d.inharmonicity or 0) >= NOISY,
        "vibrato": patch.lfo.pmd > 0 and patch.pms > 0 and (d.pitch_stability_cents or 0) >= VIBRATO_CENTS,
        "tremolo": patch.lfo.amd > 0 and any(patch.ams) and (d.beating or 0) >= TREMOLO_BEATING,
        "detuned": (d.beating or 0) >= DETUNED_BEATING,
        "pitch-sweep": len(set(patch.pitch_eg_level)) > 1,
    }
    assert set(checks) == set(MEASURED_TAGS)
    return [tag for tag in p.tags if tag in checks and not checks[tag]]


def family_failures(p: LibraryPatch, d: AudioDescriptors) -> list[str]:
    """The family's own promises (README.md): what any patch called a pad, organ, bell, ... must do."""
    c = d.centroid_hz / f0_of(p)
    held = d.sustain_db is not None
    rules = {
        "pad": [d.attack_ms >= 150, held and d.sustain_db >= -12, d.release_ms is None or d.release_ms >= 800],
        "pluck": [d.attack_ms <= 15, d.decay20_ms is not None and d.decay20_ms < 600],
        "percussion": [d.attack_ms <= 15, d.decay20_ms is not None and d.decay20_ms < 600],
        "organ": [d.attack_ms < 50, held and d.sustain_db > -3, d.release_ms is not None and d.release_ms < 200],
        "bell": [d.attack_ms <= 15, d.decay20_ms is None or d.decay20_ms >= 1500,
                 (d.inharmonicity or 0) >= 0.2 or c >= 2.0],
        "mallet": [d.attack_ms <= 15, d.decay20_ms is not None or (held and d.sustain_db <= -15)],
        "electric piano": [d.attack_ms <= 50, held and d.sustain_db < -15],
        "acoustic piano": [d.attack_ms <= 50, held and d.sustain_db < -15],
        "guitar": [d.attack_ms <= 15],
        "clav": [d.attack_ms <= 15, d.release_ms is not None and d.release_ms <= 300],
    } | {fam: [d.decay20_ms is None and held and d.sustain_db >= -12]
         for fam in ("strings", "brass", "woodwind", "lead", "choir")}
    return [f"{p.family} rule {i}" for i, ok in enumerate(rules.get(p.family, [])) if not ok]


@pytest.mark.parametrize("entry", LIB, ids=lambda p: p.id)
def test_each_patch_sounds_and_peaks_in_range(entry: LibraryPatch, measured):
    audio, d = measured[entry.id]
    assert np.isfinite(audio).all()
    assert not d.silent
    assert -12.0 <= d.peak_dbfs <= 6.0, d.peak_dbfs


@pytest.mark.parametrize("entry", LIB, ids=lambda p: p.id)
def test_each_patch_does_what_its_tags_and_family_say(entry: LibraryPatch, measured):
    _, d = measured[entry.id]
    failures = tag_failures(entry, d) + family_failures(entry, d)
    assert not failures, f"{failures}: {d.summary()}"


def test_the_library_spans_the_sound_space(measured):
    """Variety: hard and slow attacks, short and held notes, bright and dark, pitched and noisy."""
    d = {k: v[1] for k, v in measured.items()}
    attacks = [x.attack_ms for x in d.values()]
    assert min(attacks) < 5 and max(attacks) > 500
    assert sum(x.decay20_ms is not None and x.decay20_ms < 300 for x in d.values()) >= 8
    assert sum(x.decay20_ms is None for x in d.values()) >= 25
    rel = [d[p.id].centroid_hz / f0_of(p) for p in LIB]
    assert min(rel) < 1.1 and max(rel) > 10
    assert sum((x.inharmonicity or 0) >= 0.5 for x in d.values()) >= 5
    assert len({algorithm_of(p.patch.modmatrix, p.patch.outmatrix) for p in LIB}) >= 12
    for tag in TAGS:
        assert any(tag in p.tags for p in LIB), f"no patch is tagged {tag!r}"


def test_bright_and_dark_patches_differ_within_a_family(measured):
    for fam, entries in families(LIB).items():
        bright = [measured[p.id][1].centroid_hz / f0_of(p) for p in entries if "bright" in p.tags]
        dark = [measured[p.id][1].centroid_hz / f0_of(p) for p in entries if "dark" in p.tags]
        if bright and dark:
            assert min(bright) > max(dark), fam


# --- the loader --------------------------------------------------------------------------------------


def test_a_broken_file_lists_every_problem(tmp_path):
    good = json.loads((FOLDER / "ep_tine.json").read_text())
    with pytest.raises(LibraryError) as err:
        parse_library_patch({**good, "name": "", "family": 3, "captions": ["ok", ""], "tags": "x",
                             "render": {"note": 60, "pitch": 1}, "extra": 1,
                             "patch": {**good["patch"], "feedback": 9}})
    problems = err.value.problems
    assert problems[0] == "/extra: unknown key, allowed keys are name, family, tags, captions, render, patch"
    assert "/name: found '', allowed a non-empty string" in problems
    assert "/family: found 3, allowed a non-empty string" in problems
    assert "/captions/1: found '', allowed a non-empty string" in problems
    assert "/tags: found 'x', allowed a list of strings" in problems
    assert "/render/pitch: unknown key, allowed keys are note, velocity, hold_s, release_s" in problems
    assert any(p.startswith("/patch/feedback: found 9") for p in problems)
    (tmp_path / "a.json").write_text("{")
    (tmp_path / "b.json").write_text(json.dumps({**good, "patch": {}}))
    with pytest.raises(LibraryError) as err:
        load_library(tmp_path)
    assert err.value.problems[0].startswith("a.json: invalid JSON")
    assert any(p.startswith("b.json: /patch/modmatrix: found missing") for p in err.value.problems)
    with pytest.raises(LibraryError, match="no such folder"):
        load_library(tmp_path / "nowhere")
    (tmp_path / "a.json").unlink()
    (tmp_path / "b.json").unlink()
    with pytest.raises(LibraryError, match="no library files"):
        load_library(tmp_path)


def test_a_minimal_file_gets_the_defaults(tmp_path):
    good = json.loads((FOLDER / "ep_tine.json").read_text())
    (tmp_path / "mine.json").write_text(json.dumps({k: good[k] for k in ("name", "family", "captions", "patch")}))
    (entry,) = load_library(tmp_path)
    assert entry.id == "mine" and entry.tags == ()
    assert entry.render_settings() == {"note": 60, "velocity": 100, "hold_s": 3.0, "release_s": 1.0}
    assert entry.patch == BY_ID["ep_tine"].patch
    assert "Tine electric piano" in entry.text() and "electric piano" in entry.text()
    assert set(CHARACTER_TAGS).isdisjoint(MEASURED_TAGS)


def test_the_library_ships_in_the_wheel(tmp_path, built_wheel):
    wheel = built_wheel
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if n.startswith("patchsmith/agent/presets/")}
    assert shipped == {f"patchsmith/agent/presets/{f.name}" for f in FOLDER.iterdir()
                       if f.suffix == ".json" or f.name == "README.md"}
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # -I: isolated mode, so neither the repository nor the editable install can be imported instead.
    probe = (f"import sys; sys.path.insert(0, {str(site)!r}); import patchsmith.agent.library as m; "
             "lib = m.load_library(); print(m.__file__); print(len(lib), len({p.family for p in lib}))")
    out = subprocess.run([sys.executable, "-I", "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    path, counts = out.stdout.splitlines()
    assert Path(path).resolve() == (site / "patchsmith" / "agent" / "library.py").resolve()
    assert counts == f"{len(LIB)} {len(families(LIB))}"
