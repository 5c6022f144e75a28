"""The offline designer: words -> the best library patch -> the edits the words still ask for.

``OfflineDesigner(library).design("glassy electric piano, soft attack")`` works with no model, no GPU
and no network (``shared/design/architecture.md``, "The main job on a fresh machine"):

1. **Retrieve.** A fielded BM25 index (``agent/retrieval.py``) over every library patch's captions,
   with the instrument words of each caption (captions name the instrument first) weighted 3x,
   gives each patch a text relevance; the patches within ``pool_relevance`` of the best are the
   plausible ones.
2. **Choose by consensus.** Each plausible patch's relevance r gives the chance that it is the sound
   meant (proportional to exp((r - 1) / temperature)); the designer picks the patch with the highest
   expected similarity to that sound, a minimum-Bayes-risk choice. Similarity compares renders at a
   reference note (RMS-envelope cosine minus a coarse log-mel distance), a patch counting as
   similarity 1 to itself, so a clear text winner keeps its lead while among equally good text
   matches the most typical sound wins. Only patches within ``candidate_relevance`` of the best text
   score, and within ``candidate_head_relevance`` of the best score on the instrument words alone,
   may win: the consensus never trades the instrument away. A small bonus goes to patches whose
   measured envelope and timbre already meet the text's modifiers.
3. **Edit.** The modifiers in the text (``agent/modifiers.py``) become ``synth.edits`` steps. An
   absolute one ("soft attack", "long release", "no vibrato") is applied, with the amount it asks
   for, only when the match's descriptors do not already meet it; a relative one ("brighter", "more
   vibrato") is always applied, stepping until the descriptors show an audible move (at most three
   units). Relative words are left out of the retrieval: they ask for a change, not for a sound.

Everything is deterministic: the same text and library give the same patch, bit for bit.
``refine(patch, text)`` turns a follow-up ("shorter decay, a bit brighter") into edit steps for
``synth.edits.apply_edits`` (the ``edit_patch`` tool).

``Library`` is the sequence of captioned patches the designer retrieves from: the packaged library
(the default), a folder of library JSON files, the source research's caption CSV + patch CSV pair,
or the dataset builder's Parquet output.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, overload

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..evals.descriptors import describe_audio
from ..evals.distances import mel_filterbank
from ..evals.edit_direction import AUDIBLE, direction
from ..schema.audio import AudioDescriptors
from ..schema.patch import Patch
from ..synth.edits import Change, adjust, apply_edits
from ..synth.render import as_patch, render, render_batch
from .library import LibraryError, LibraryPatch, RenderSettings, load_library
from .modifiers import Modifier, agreement, parse_modifiers, satisfied
from .retrieval import BM25Index, split_head, tokenize

MAX_TEXT = 4000  # characters; a description is a sentence or two, this is a guard against garbage
SAMPLE_RATE = 48000
# The reference note every patch is compared on: the source research's render convention.
PROBE = RenderSettings(note=60, velocity=100, hold_s=6.4, release_s=3.2)
MAX_SEEK_UNITS = 3  # one modifier moves a patch by at most this many edit units in all


# --- the library -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sound:
    """What the consensus compares: a patch's render at ``PROBE``, reduced to two small arrays."""

    envelope: np.ndarray  # frame RMS (frames of 2048, hop 512, as evals.distances), unit norm
    mel: np.ndarray  # log-mel dB, 32 bands x ~85 ms frames: a coarse spectrogram for an L1 distance


_MEL_FRAME = 4096  # ~85 ms at 48 kHz: coarse enough to be cheap, fine enough for attacks and decays
_MEL_BANDS = 32


def sound_of(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Sound:
    """The consensus features of one render made at ``PROBE`` (a few milliseconds per clip)."""
    x = np.asarray(audio, dtype=np.float64)
    # The RMS envelope of evals.distances.rms_envelope (2048-sample frames every 512 samples), from
    # the energies of 512-sample blocks: four blocks make a frame.
    n_frames = 1 + max(0, x.size - 2048) // 512
    e = np.square(x[: (n_frames + 3) * 512])
    blocks = np.pad(e, (0, (n_frames + 3) * 512 - e.size)).reshape(n_frames + 3, 512).sum(axis=1)
    env = np.sqrt(np.convolve(blocks, np.ones(4), mode="valid") / 2048.0)
    norm = float(np.linalg.norm(env))
    # A coarse log-mel spectrogram: Hann frames without overlap, 32 mel bands, floored at -100 dB.
    t = x.size // _MEL_FRAME
    frames = x[: t * _MEL_FRAME].reshape(t, _MEL_FRAME) * np.hanning(_MEL_FRAME)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2 * (2.0 / (_MEL_FRAME / 2)) ** 2
    mel = power @ mel_filterbank(sample_rate, _MEL_FRAME, _MEL_BANDS).T
    mel_db = np.maximum(10.0 * np.log10(np.maximum(mel, 1e-30)), -100.0)
    return Sound(envelope=(env / norm if norm > 0 else env).astype(np.float32), mel=mel_db.astype(np.float32))


def _head_family(caption: str) -> str:
    """The instrument words of a caption as a family name: "An electric piano, which ..." -> "electric piano"."""
    head = split_head(caption)[0].lower()
    head = re.sub(r"^(a|an|the)\s+", "", head).strip(" .")
    return head or "unknown"


class Library(Sequence[LibraryPatch]):
    """The captioned patches the designer retrieves from, with their index and renders cached."""

    def __init__(self, entries: Iterable[LibraryPatch], *, source: str = "custom"):
        """A library of ``LibraryPatch`` entries (ids unique); ``source`` says where they came from."""
        self._entries = tuple(entries)
        if not self._entries:
            raise LibraryError([f"{source}: the library has no patches"])
        bad = [i for i, e in enumerate(self._entries) if not isinstance(e, LibraryPatch)]
        if bad:
            raise LibraryError([f"entry {i}: found {type(self._entries[i]).__name__}, allowed a LibraryPatch"
                                for i in bad[:5]])
        self.source = source
        self._position: dict[str, int] = {}
        for i, e in enumerate(self._entries):
            if e.id in self._position:
                raise LibraryError([f"{source}: duplicate id {e.id!r}"])
            self._position[e.id] = i
        self._index: BM25Index | None = None
        self._head_index: BM25Index | None = None
        self._sounds: dict[int, Sound] = {}
        self._descriptors: dict[int, AudioDescriptors] = {}

    # The Sequence protocol.
    def __len__(self) -> int:
        return len(self._entries)

    @overload
    def __getitem__(self, i: int) -> LibraryPatch: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[LibraryPatch]: ...

    def __getitem__(self, i: int | slice) -> LibraryPatch | Sequence[LibraryPatch]:
        return self._entries[i]

    def __iter__(self) -> Iterator[LibraryPatch]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"Library({len(self)} patches from {self.source})"

    # --- sources ---

    @classmethod
    def packaged(cls) -> Library:
        """The library that ships with the package (``agent/presets``)."""
        return cls(load_library(), source="packaged library")

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str]) -> Library:
        """A folder of library JSON files in the packaged library's format (``agent/presets/README.md``)."""
        return cls(load_library(folder), source=str(folder))

    @classmethod
    def from_source_research(cls, captions_csv: str | os.PathLike[str], patches_csv: str | os.PathLike[str],
                             render: RenderSettings = PROBE) -> Library:
        """The source research's caption CSV joined on ``id`` with its patch CSV (``DX7_*.csv``).

        Rows whose patch does not import, and patches without a caption, are left out.
        """
        from ..schema.source_research import SourceResearchError, read_caption_csv, read_source_csv

        try:
            rows = {r.id: r for r in read_source_csv(patches_csv) if r.patch is not None}
        except (OSError, SourceResearchError) as err:
            raise LibraryError([f"{patches_csv}: {err}"]) from None
        captions: dict[str, list[str]] = {}
        names: dict[str, str] = {}
        try:
            caption_rows = read_caption_csv(captions_csv)
        except SourceResearchError as err:
            raise LibraryError([str(err)]) from None
        except OSError as err:
            raise LibraryError([f"{captions_csv}: not a readable CSV file ({err})"]) from None
        for rec in caption_rows:
            if rec.id and rec.caption:
                captions.setdefault(rec.id, []).append(rec.caption)
                names.setdefault(rec.id, rec.name)
        entries = []
        for cid, caps in captions.items():
            row = rows.get(cid)
            if row is None:
                continue
            caps = list(dict.fromkeys(caps))
            entries.append(LibraryPatch(id=cid, name=names.get(cid) or row.name.strip() or cid,
                                        family=_head_family(caps[0]), captions=tuple(caps), tags=(),
                                        render=render, patch=row.patch))
        if not entries:
            raise LibraryError([f"{captions_csv} + {patches_csv}: no captioned patch with a usable patch"])
        return cls(entries, source=f"{Path(captions_csv).name} + {Path(patches_csv).name}")

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str], render: RenderSettings = PROBE) -> Library:
        """The dataset builder's Parquet output (a file or a folder of shards): the captioned rows.

        Reads the columns ``patch`` (canonical patch JSON, or an object), ``caption`` or ``captions``,
        and ``id``, ``name`` and ``family`` when present. Needs pyarrow (not a core dependency).
        """
        try:
            import pyarrow.dataset as ds
        except ImportError:
            raise ImportError("Library.from_parquet needs pyarrow, which is not a core dependency: "
                              "pip install pyarrow") from None
        from ..schema.validate import validate

        try:
            p = Path(path)
            files = sorted(str(f) for f in p.rglob("*.parquet")) if p.is_dir() else [str(p)]
            table = ds.dataset(files, format="parquet").to_table()
        except (OSError, ValueError) as err:
            raise LibraryError([f"{path}: not a readable Parquet dataset ({err})"]) from None
        cols = set(table.column_names)
        patch_col = next((c for c in ("patch", "patch_json") if c in cols), None)
        caption_cols = [c for c in ("captions", "caption") if c in cols]
        if patch_col is None or not caption_cols:
            raise LibraryError([f"{path}: needs a 'patch' column and a 'caption' or 'captions' column "
                                f"(found {', '.join(sorted(cols))})"])
        entries, problems = [], []
        for k, rec in enumerate(table.to_pylist()):
            caps: list[str] = []
            for c in caption_cols:
                v = rec.get(c)
                caps += [v] if isinstance(v, str) else [x for x in (v or []) if isinstance(x, str)]
            caps = list(dict.fromkeys(c.strip() for c in caps if c and c.strip()))
            if not caps:
                continue  # an uncaptioned row cannot be retrieved by text
            raw = rec[patch_col]
            try:
                data = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
            except json.JSONDecodeError as err:
                problems.append(f"row {k}: /{patch_col}: invalid JSON ({err})")
                continue
            report = validate(data)
            if report.patch is None:
                problems.append(f"row {k}: /{patch_col}{report.problems[0].pointer}: {report.problems[0].found}")
                continue
            rid = str(rec.get("id") if rec.get("id") is not None else k)
            entries.append(LibraryPatch(id=rid, name=str(rec.get("name") or rid).strip() or rid,
                                        family=str(rec.get("family") or _head_family(caps[0])),
                                        captions=tuple(caps), tags=(), render=render, patch=report.patch))
        if problems and not entries:
            raise LibraryError(problems[:20])
        if not entries:
            raise LibraryError([f"{path}: no captioned rows"])
        return cls(entries, source=str(path))

    @classmethod
    def load(cls, spec: str | os.PathLike[str] | None = None) -> Library:
        """The library a ``--library`` argument names: nothing (packaged), a folder of library JSON files,
        a source-research caption CSV (its patch CSV beside it, same name without ``_captions``) or a
        folder holding such a pair, or Parquet (a file or a folder of shards)."""
        if spec is None or str(spec) in ("", "packaged"):
            return cls.packaged()
        p = Path(spec)
        if not p.exists():
            raise LibraryError([f"{p}: no such file or folder"])
        if p.is_file() and p.suffix == ".csv":
            pair = p.with_name(p.name.replace("_captions.csv", ".csv"))
            if pair == p or not pair.exists():
                raise LibraryError([f"{p}: expected a source-research caption CSV (NAME_captions.csv) with its "
                                    f"patch CSV (NAME.csv) beside it"])
            return cls.from_source_research(p, pair)
        if p.is_dir() and (p / "stage" / "build.json").is_file() and (p / "data").is_dir():
            return cls.from_parquet(p / "data")  # a `patchsmith dataset build` folder: its merged rows
        if (p.is_file() and p.suffix == ".parquet") or (p.is_dir() and any(p.rglob("*.parquet"))):
            return cls.from_parquet(p)
        if p.is_dir():
            pairs = sorted(p.glob("*_captions.csv"))
            if len(pairs) == 1 and pairs[0].with_name(pairs[0].name.replace("_captions.csv", ".csv")).exists():
                return cls.load(pairs[0])
            if any(p.glob("*.json")):
                return cls.from_folder(p)
        raise LibraryError([f"{p}: not a library (a folder of library JSON files, a source-research caption "
                            f"CSV pair, or Parquet)"])

    # --- lookups and caches ---

    def position(self, id: str) -> int:
        """The index of the patch with this id (``KeyError`` when there is none)."""
        return self._position[id]

    def has(self, id: str) -> bool:
        """Whether a patch with this id is in the library."""
        return id in self._position

    @property
    def index(self) -> BM25Index:
        """The BM25F index over the captions (built on first use)."""
        if self._index is None:
            self._index = BM25Index([_fields(e) for e in self._entries], field_weights=FIELD_WEIGHTS)
        return self._index

    @property
    def head_index(self) -> BM25Index:
        """A BM25 index over the instrument words only (built on first use)."""
        if self._head_index is None:
            self._head_index = BM25Index([_fields(e) for e in self._entries], field_weights={"head": 1.0, "body": 0.0})
        return self._head_index

    def sounds(self, indices: Sequence[int]) -> list[Sound]:
        """The consensus features of these patches, rendering (all cores) the ones not cached yet."""
        missing = sorted({i for i in indices if i not in self._sounds})
        for start in range(0, len(missing), 64):
            chunk = missing[start:start + 64]
            audio = render_batch([self._entries[i].patch for i in chunk], sample_rate=SAMPLE_RATE, **PROBE.model_dump())
            self.prime(chunk, audio)
        return [self._sounds[i] for i in indices]

    def prime(self, indices: Sequence[int], audio: Sequence[np.ndarray]) -> None:
        """Cache renders made elsewhere at ``PROBE`` (48 kHz), e.g. by a benchmark that needs them anyway."""
        if len(indices) != len(audio):
            raise ValueError(f"prime: {len(indices)} indices but {len(audio)} renders")
        for i, a in zip(indices, audio):
            self._sounds[int(i)] = sound_of(a)

    def descriptors(self, i: int) -> AudioDescriptors:
        """The descriptors of patch ``i`` rendered at its own settings (cached)."""
        if i not in self._descriptors:
            e = self._entries[i]
            self._descriptors[i] = describe_render(e.patch, e.render)
        return self._descriptors[i]


FIELD_WEIGHTS = {"head": 3.0, "body": 1.0}


def _fields(e: LibraryPatch) -> dict[str, str]:
    """A patch's text for the index: its instrument words (caption heads) and the rest of its captions.

    A library that names its patches and families in words of its own (the packaged one) adds both to
    the instrument words; a family taken from a caption's head (a source-research library) would only
    count those words twice, and a DX7 voice name ("SYN-BASS") adds nothing measurable.
    """
    heads, bodies = zip(*(split_head(c) for c in e.captions))
    head = list(heads)
    if e.family not in {_head_family(c) for c in e.captions}:
        head += [e.family, e.name]
    return {"head": " ; ".join(head), "body": " ; ".join([*bodies, *(t.replace("-", " ") for t in e.tags)])}


def _sounding(patch: Patch, note: int) -> int:
    return min(127, max(0, note + patch.transpose))


def describe_render(patch: Patch, settings: RenderSettings) -> AudioDescriptors:
    """The descriptors of a patch's render at these settings (48 kHz, the sounding note as the reference)."""
    audio = render(patch, sample_rate=SAMPLE_RATE, **settings.model_dump())
    return describe_audio(audio, SAMPLE_RATE, note=_sounding(patch, settings.note), note_off_s=settings.hold_s)


# --- results ---------------------------------------------------------------------------------------------


class Match(BaseModel):
    """A library patch retrieved for a text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    family: str
    caption: str  # the patch's caption that shares the most with the text
    score: float  # the designer's ranking score: expected similarity to the sound meant, plus modifier agreement
    relevance: float = Field(ge=0, le=1)  # text relevance relative to the best match (1 = the best)


class DesignResult(BaseModel):
    """A designed patch: the library match it started from, the edits made to it and why."""

    model_config = ConfigDict(extra="forbid")

    text: str
    patch: Patch
    render: RenderSettings  # the note the patch is best heard on (the match's)
    match: Match
    alternatives: list[Match] = Field(default_factory=list)
    modifiers: list[Modifier] = Field(default_factory=list)  # what the text asked for
    edits: list[dict[str, Any]] = Field(default_factory=list)  # the steps applied: apply_edits(match, edits)
    changes: list[Change] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    descriptors: AudioDescriptors | None = None  # of the designed patch at ``render``

    def summary(self) -> str:
        """A few lines for people: the match, the edits, the sound."""
        lines = [f"{self.match.name} ({self.match.family}; library patch {self.match.id})"]
        if self.edits:
            lines.append("edits: " + ", ".join(f"{e['quality']} {e['amount']:+d}" for e in self.edits)
                         + f" ({len(self.changes)} parameters changed)")
        if self.descriptors is not None:
            lines.append("sound: " + self.descriptors.summary())
        return "\n".join(lines)


class DesignerSettings(BaseModel):
    """The designer's knobs (the defaults were tuned on a fixed third of the source-research captions)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pool: int = Field(80, ge=1)  # the most patches the consensus looks at
    pool_relevance: float = Field(0.3, ge=0, le=1)  # ... each within this share of the best text score
    candidate_relevance: float = Field(0.6, ge=0, le=1)  # the winner must be within this share
    candidate_head_relevance: float = Field(0.5, ge=0, le=1)  # ... and of the best instrument-words score
    temperature: float = Field(0.3, gt=0)  # chance that a plausible patch is the one: exp((relevance - 1) / T)
    spectral: float = Field(0.5, ge=0)  # similarity = RMS-envelope cosine - spectral * log-mel distance / 20 dB
    agreement: float = Field(0.05, ge=0)  # bonus for already meeting the text's modifiers (-1..1 agreement)


# --- the designer ----------------------------------------------------------------------------------------


def _check_text(text: Any) -> str:
    if not isinstance(text, str):
        raise ValueError(f"text: found {type(text).__name__}, allowed a non-empty string describing a sound")
    if not text.strip():
        raise ValueError("text: found an empty string, allowed a description such as \"warm electric piano\"")
    if len(text) > MAX_TEXT:
        raise ValueError(f"text: found {len(text)} characters, allowed at most {MAX_TEXT}")
    return text.strip()


_QUANTITY = {  # how each quality's descriptor (evals.edit_direction.AUDIBLE) reads in the notes
    "attack": ("attack", "ms"), "decay": ("decay to -20 dB", "ms"), "release": ("release", "ms"),
    "sustain": ("sustain", "dB"), "brightness": ("centroid", "Hz"), "metallic": ("inharmonicity", ""),
    "vibrato": ("pitch spread", "cents"), "detune": ("beating", ""), "level": ("RMS level", "dBFS"),
}


def _quantity(q: str, d: AudioDescriptors | None) -> str:
    field = AUDIBLE[q].descriptor
    label, unit = _QUANTITY[q]
    v = None if d is None else getattr(d, field)
    if v is None:
        # "Not reached" reads differently per quantity (schema/audio.py documents each None).
        if d is not None and field == "decay20_ms":
            return "never falls 20 dB while held"
        if d is not None and field == "release_ms":
            return "release outlasts the clip" if d.sustain_db is not None else "nothing left to release"
        return f"no {label} measured"
    unit = f" {unit}" if unit else ""
    return f"{label} {v:.0f}{unit}" if abs(v) >= 10 else f"{label} {v:.2f}{unit}"


class OfflineDesigner:
    """Text -> patch with no model: retrieval over a captioned library, consensus, then semantic edits."""

    def __init__(self, library: Library | Sequence[LibraryPatch] | None = None,
                 settings: DesignerSettings | None = None):
        """A designer over ``library`` (default: the packaged one)."""
        if library is None:
            library = Library.packaged()
        elif not isinstance(library, Library):
            library = Library(library)
        self.library = library
        self.settings = settings or DesignerSettings()

    # --- retrieval ---

    def _rank(self, text: str, mods: Sequence[Modifier], exclude: Collection[str]) -> list[tuple[int, float, float]]:
        """(library index, score, relevance) of the plausible patches: those that may win, best first, then
        the rest of the pool (alternatives only), best first."""
        lib, st = self.library, self.settings
        scores = lib.index.scores(text)
        heads = lib.head_index.scores(text)
        banned = [lib.position(x) for x in exclude if lib.has(x)]
        scores[banned] = -np.inf
        heads[banned] = 0.0
        order = np.lexsort((np.arange(scores.size), -scores))
        order = order[np.isfinite(scores[order])]
        if order.size == 0:
            raise ValueError("exclude: every library patch was excluded")
        best = float(scores[order[0]])
        pool = order[: st.pool]
        if best <= 0:
            # No word of the text is in any caption: every patch is as plausible as any other.
            rel = np.ones(pool.size)
        else:
            rel = scores[pool] / best
            keep = rel >= st.pool_relevance
            pool, rel = pool[keep], rel[keep]
        # The instrument words of the text, matched against the patches' instrument words only: a
        # winner must share them ("string ensemble" must not become a choir that is also "swelling").
        top_head = float(heads.max())
        head_rel = heads[pool] / top_head if top_head > 0 else np.ones(pool.size)
        may_win = (rel >= st.candidate_relevance) & (head_rel >= st.candidate_head_relevance)
        if not may_win.any():
            may_win = rel >= st.candidate_relevance
        sounds = lib.sounds(list(map(int, pool)))
        env = np.stack([s.envelope for s in sounds]).astype(np.float64)
        mel = np.stack([s.mel.reshape(-1) for s in sounds]).astype(np.float64)
        # The chance that plausible patch j is the sound meant, and the expected similarity of each
        # patch to that sound: itself included (similarity 1), so a clear text winner keeps its lead.
        w = np.exp((rel - 1.0) / st.temperature)
        w /= w.sum()
        out, rest = [], []
        for c in range(pool.size):
            sim = env @ env[c] - st.spectral * np.abs(mel - mel[c]).mean(axis=1) / 20.0
            sim[c] = 1.0
            score = float(sim @ w)
            i = int(pool[c])
            if not may_win[c]:
                rest.append((i, score, float(rel[c])))  # too far from the words to win: an alternative only
                continue
            if st.agreement and mods:
                score += st.agreement * agreement(mods, lib.descriptors(i), _sounding(lib[i].patch, lib[i].render.note))
            out.append((i, score, float(rel[c])))
        out.sort(key=lambda x: (-x[1], x[0]))
        rest.sort(key=lambda x: (-x[1], x[0]))
        return out + rest

    def _caption(self, i: int, text: str) -> str:
        """The caption of patch ``i`` that shares the most (idf-weighted) terms with the text."""
        idx = self.library.index
        q = set(tokenize(text))
        caps = self.library[i].captions
        gain = [sum(idx.idf(t) for t in q & set(tokenize(c))) for c in caps]
        return caps[int(np.argmax(gain))]

    def _match(self, i: int, score: float, rel: float, text: str) -> Match:
        e = self.library[i]
        return Match(id=e.id, name=e.name, family=e.family, caption=self._caption(i, text), score=round(score, 6),
                     relevance=round(min(1.0, max(0.0, rel)), 6))

    def match(self, text: str, *, top_k: int = 5, exclude: Collection[str] = ()) -> list[Match]:
        """The ``top_k`` library patches for a text, best first (no edits); ``exclude``: ids to leave out."""
        text = _check_text(text)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k: found {top_k!r}, allowed an integer >= 1")
        parsed = parse_modifiers(text)
        return [self._match(i, s, r, text) for i, s, r in self._rank(parsed.base, parsed.modifiers, exclude)[:top_k]]

    # --- editing ---

    def _seek(self, patch: Patch, modifiers: Sequence[Modifier], settings: RenderSettings,
              d: AudioDescriptors | None, *, force: bool) -> tuple[Patch, list[dict[str, Any]], list[str],
                                                                  AudioDescriptors]:
        """Apply the modifiers in order, each checked on the render's descriptors.

        A relative modifier steps until the quality has moved audibly the asked way. An absolute one is
        applied only when the sound does not meet it: in a description (``force`` False) once, with the
        amount it asks for (the words may describe the sound loosely); in a follow-up (``force``) step
        by step until the sound meets it, or, when it already did, like a relative one. Either takes at
        most ``MAX_SEEK_UNITS`` units, and a change that moves the sound the other way is dropped.
        Returns the patch, the steps, notes and the final descriptors.
        """
        note = _sounding(patch, settings.note)
        steps: list[dict[str, Any]] = []
        notes: list[str] = []
        if d is None:
            d = describe_render(patch, settings)
        for m in modifiers:
            absolute = not m.relative and m.quality != "level"
            ok = satisfied(m, d, note) if absolute else False
            if absolute and ok and not force:
                notes.append(f"{m.words!r}: the match already has it ({_quantity(m.quality, d)}); no edit")
                continue
            sign = 1 if m.amount > 0 else -1
            # "Done" for an absolute modifier is meeting its target (or, when it already did, one step);
            # for a relative one it is an audible move the asked way.
            seek_target = absolute and not ok
            trial, trial_d, trial_steps, used, amount = patch, d, [], 0, m.amount
            why = ""
            # A description gets the amount it asks for; a follow-up may take more to reach its target.
            limit = MAX_SEEK_UNITS if (force or not absolute) else abs(m.amount)
            while used < limit:
                amount = max(-(limit - used), min(limit - used, amount))
                res = adjust(trial, m.quality, amount)
                if not res.changes:
                    why = "; ".join(res.notes) or "no parameter can move it further"
                    break
                trial, trial_d = res.patch, describe_render(res.patch, settings)
                trial_steps.append({"op": "adjust", "quality": m.quality, "amount": amount})
                used += abs(amount)
                if seek_target:
                    met = satisfied(m, trial_d, note)
                    if met or met is None:
                        break
                elif direction(m.quality, d, trial_d) == sign:
                    break
                amount = sign
            went = direction(m.quality, d, trial_d)
            if not trial_steps:
                notes.append(f"{m.words!r}: no edit ({why})")
                continue
            if went == -sign:
                # The edit moved the sound the other way (an envelope can measure longer when a stage
                # speeds up): better no change than the wrong one.
                notes.append(f"{m.words!r}: dropped {m.quality} {sum(s['amount'] for s in trial_steps):+d}, it moved "
                             f"{_quantity(m.quality, d)} -> {_quantity(m.quality, trial_d)}, the wrong way")
                continue
            short = ""
            if seek_target and not satisfied(m, trial_d, note):
                short = "; still short of the target"
            elif went == 0:
                short = "; hardly audible"
            notes.append(f"{m.words!r}: {m.quality} {sum(s['amount'] for s in trial_steps):+d} "
                         f"({_quantity(m.quality, d)} -> {_quantity(m.quality, trial_d)}{short})")
            patch, d = trial, trial_d
            steps += trial_steps
        return patch, steps, notes, d

    def design(self, text: str, *, top_k: int = 5, exclude: Collection[str] = ()) -> DesignResult:
        """Design a patch for ``text``: the best library match, edited for the modifiers it does not yet meet."""
        text = _check_text(text)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k: found {top_k!r}, allowed an integer >= 1")
        parsed = parse_modifiers(text)
        # "brighter" or "more vibrato" ask for a change from the sound, not for a sound: they are left
        # out of the retrieval, the edits take care of them.
        ranked = self._rank(parsed.base, parsed.modifiers, exclude)
        (i, score, rel), others = ranked[0], ranked[1:top_k]
        entry = self.library[i]
        notes = []
        if float(self.library.index.scores(parsed.base).max()) <= 0:
            notes.append("no word of the text is in the library's captions: the most typical patch was chosen")
        d = self.library.descriptors(i)
        patch, steps, edit_notes, d = self._seek(entry.patch, parsed.modifiers, entry.render, d, force=False)
        notes += edit_notes
        result = apply_edits(entry.patch, steps)  # the recorded steps reproduce the patch exactly
        if result.patch != patch:  # pragma: no cover - adjust is deterministic
            raise RuntimeError("the edit steps do not reproduce the designed patch")
        return DesignResult(text=text, patch=result.patch, render=entry.render, match=self._match(i, score, rel, text),
                            alternatives=[self._match(j, s, r, text) for j, s, r in others],
                            modifiers=list(parsed.modifiers), edits=steps, changes=result.changes, notes=notes,
                            descriptors=d)

    def refine(self, patch: Patch | Mapping[str, Any], text: str, *,
               render: RenderSettings | None = None) -> list[dict[str, Any]]:
        """The edit steps a follow-up asks for ("shorter decay, a bit brighter"); [] when it names no quality.

        Each quality named steps until the patch's render (at ``render``, default note 60) shows it: a
        relative word ("shorter", "more vibrato") until the quality moves audibly, an absolute one ("soft
        attack") until the sound meets it (or moves audibly, when it already did: a follow-up asks for a
        change). At most ``MAX_SEEK_UNITS`` units per quality; a step that moves the sound the wrong way
        is left out.
        """
        text = _check_text(text)
        try:
            p = as_patch(dict(patch) if isinstance(patch, Mapping) else patch)
        except (ValueError, TypeError) as err:
            raise ValueError(f"patch: {err}") from None
        mods = parse_modifiers(text).modifiers
        if not mods:
            return []
        _, steps, _, _ = self._seek(p, mods, render or RenderSettings(), None, force=True)
        return steps


def design(text: str, library: Library | None = None, *, top_k: int = 5) -> DesignResult:
    """Design a patch for ``text`` with the offline designer (a new designer per call; keep one to reuse renders)."""
    return OfflineDesigner(library).design(text, top_k=top_k)


__all__ = ["DesignResult", "DesignerSettings", "Library", "Match", "OfflineDesigner", "PROBE", "Sound",
           "describe_render", "design", "sound_of"]
