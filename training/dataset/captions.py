"""Captions for the dataset's voices: from an audio-language model, or offline from descriptors.

Two captioners behind one protocol (``Captioner``: a ``name`` that goes into ``caption_source`` and
``caption(CaptionRequest) -> CaptionResult``):

- ``AudioModelCaptioner``: any OpenAI-compatible Chat Completions endpoint that takes audio input
  (gpt-4o-audio-preview, Qwen2-Audio / Qwen2.5-Omni behind vLLM, ...). The render goes as an
  ``input_audio`` content part (base64 WAV, the format every such endpoint accepts; FLAC on request
  for servers that decode it) after the source research's instruction: instrument type first, then
  timbre, then envelope. Retries, backoff and the answer cache are ``endpoint.ChatEndpoint``'s;
  ``caption_source`` is ``"model:<model>"``.
- ``OfflineCaptioner``: no model. The instrument type is the family of the nearest captioned library
  patch (the packaged library, plus a user library if given) by a descriptor and parameter distance,
  among the patches of the instrument the voice's name names, if it names one ("BRASS 1");
  the timbre and envelope words come from the voice's own descriptors, with the thresholds of the
  library's measured tags. ``caption_source`` is ``"offline-descriptors"``, so such captions are never
  mistaken for a model's. Deterministic: the same voice and library give the same caption.

``run_caption_stage`` fills ``OUT/stage/captions/part-k.parquet`` (``id``, ``caption``,
``caption_source``, ``caption_error``) for every shard not written yet (``dataset-contract.md``).
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ...agent.tag_thresholds import (BRIGHT_RATIO, DARK_BRIGHTNESS, DARK_CENTROID_HZ, DARK_RATIO, DETUNED_BEATING,
                                     FAST_ATTACK_MS, INHARMONIC, LONG_DECAY_MS, LONG_RELEASE_MS, NOISY,
                                     PERCUSSIVE_DECAY_MS, SHORT_RELEASE_MS, SLOW_ATTACK_MS, SUSTAINED_DB,
                                     TREMOLO_BEATING, VERY_BRIGHT_RATIO, VIBRATO_CENTS)
from .prompts import CAPTION_INSTRUCTION
from .row_runner import check_workers, chosen_renders, finish_shard, plan_shards, render_timing
from .stages import StageReport, part_path

__all__ = ["AudioModelCaptioner", "CaptionRequest", "CaptionResult", "Captioner", "OFFLINE_SOURCE",
           "OfflineCaptioner", "audio_file", "caption_from_descriptors", "check_audio_format", "clean_caption",
           "encode_audio", "make_captioner", "run_caption_stage"]

OFFLINE_SOURCE = "offline-descriptors"
SILENT_NOTE = "silent render: not captioned"
MAX_CAPTION_CHARS = 600
AudioFormat = Literal["wav", "flac"]


class CaptionRequest(BaseModel):
    """One voice to caption: its patch, the render to listen to, and that render's descriptors."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str | None = None
    patch: str = Field(description="the canonical patch as compact JSON (manifest column 'patch')")
    note: int = 60
    played_note: int | None = Field(None, description="the key actually played when the build transposed the voice")
    velocity: int = 100
    hold_s: float | None = Field(None, description="seconds the key was held in the render (None: 3.0)")
    release_s: float | None = Field(None, description="seconds rendered after note-off (None: 1.0)")
    sample_rate: int | None = Field(None, description="the render's sample rate (None: 48000)")
    audio: bytes | None = Field(None, description="the render as an audio file (FLAC or WAV bytes)", repr=False)
    descriptors: dict[str, Any] | None = Field(None, description="evals.descriptors.describe_audio of the render")


class CaptionResult(BaseModel):
    """A caption or the reason there is none."""

    id: str
    caption: str | None = None
    caption_source: str | None = None
    caption_error: str | None = None
    cached: bool = False


@runtime_checkable
class Captioner(Protocol):
    """Anything that captions voices; ``name`` goes into the ``caption_source`` column."""

    name: str

    def caption(self, request: CaptionRequest) -> CaptionResult:
        """The caption of one voice (errors in the result, never raised)."""
        ...


# --- with an audio-language model -----------------------------------------------------------------------


def check_audio_format(fmt: Any) -> AudioFormat:
    """``fmt`` when it is an audio format a model is sent ("wav" or "flac"), else ``ValueError`` saying so."""
    if fmt not in ("wav", "flac"):
        raise ValueError(f"audio_format: found {fmt!r}, allowed \"wav\" or \"flac\"")
    return fmt


def audio_file(data: Any, sample_rate: int, fmt: AudioFormat = "wav") -> bytes:
    """Samples as a 16-bit ``fmt`` file for a model, scaled down to full scale when they exceed it."""
    import soundfile as sf

    buf = io.BytesIO()
    # Renders may exceed full scale (several carriers); a model hears the shape, so normalise the peak.
    peak = float(abs(data).max()) if data.size else 0.0
    sf.write(buf, data / peak if peak > 1.0 else data, sample_rate, format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue()


def encode_audio(audio: bytes, fmt: AudioFormat = "wav") -> str:
    """The render as base64 of a ``fmt`` file (WAV: 16-bit PCM at the render's sample rate)."""
    import soundfile as sf

    data, sr = sf.read(io.BytesIO(audio), dtype="float32", always_2d=False)
    return base64.b64encode(audio_file(data, sr, fmt)).decode("ascii")


_PREFIX = re.compile(r"^\s*(?:\*\*)?(?:caption|description)(?:\*\*)?\s*[:\-]\s*", re.IGNORECASE)
_QUOTES = "\"'\u201c\u201d\u2018\u2019`*"


def clean_caption(content: str | None, finish_reason: str | None = None) -> tuple[str | None, str | None]:
    """(the caption, None) read from a model's answer, or (None, why it cannot be used)."""
    from ...agent.output_parsing import split_think

    text = content or ""
    if "</think>" in text or "<think>" in text:
        _, text = split_think(text)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return None, "malformed caption: the answer is empty"
    # A preamble line ("Here is the caption:", "**Caption:**") introduces the caption on the next line.
    while len(lines) > 1 and lines[0].rstrip("*").endswith(":"):
        lines.pop(0)
    line = _PREFIX.sub("", lines[0]).strip().strip(_QUOTES).strip()
    line = " ".join(line.split())
    if finish_reason == "length":
        return None, f"malformed caption: cut off at the token limit ({line[:80]!r})"
    if len(re.findall(r"[A-Za-z]", line)) < 3:
        return None, f"malformed caption: no words in the answer ({text.strip()[:80]!r})"
    if len(line) > MAX_CAPTION_CHARS:
        return None, f"malformed caption: {len(line)} characters, allowed at most {MAX_CAPTION_CHARS}"
    if line[-1] not in ".!":
        line += "."
    return line, None


class AudioModelCaptioner:
    """Captions renders with an audio-language model behind an OpenAI-compatible endpoint."""

    needs_audio = True

    def __init__(self, model: str, base_url: str | None = None, *, api_key: str | None = None,
                 timeout_s: float = 60.0, max_retries: int = 3, cache_dir: str | Path | None = None,
                 audio_format: AudioFormat = "wav", retry_base_s: float = 1.0, temperature: float | None = None,
                 max_tokens: int | None = 200, instruction: str = CAPTION_INSTRUCTION):
        """Check the settings and make the client (no request is made here)."""
        from .endpoint import ChatEndpoint

        self.audio_format = check_audio_format(audio_format)
        self.endpoint = ChatEndpoint(model, base_url, api_key=api_key, timeout_s=timeout_s, max_retries=max_retries,
                                     retry_base_s=retry_base_s, cache_dir=cache_dir, namespace="caption",
                                     temperature=temperature, max_tokens=max_tokens)
        self.name = f"model:{self.endpoint.model}"
        self.instruction = instruction

    def messages(self, request: CaptionRequest) -> list[dict[str, Any]]:
        """The chat messages of a caption request: the instruction, then the audio."""
        if request.audio is None:
            raise ValueError("no audio to caption")
        data = encode_audio(request.audio, self.audio_format)
        return [{"role": "user", "content": [
            {"type": "text", "text": self.instruction},
            {"type": "input_audio", "input_audio": {"data": data, "format": self.audio_format}},
        ]}]

    def caption(self, request: CaptionRequest) -> CaptionResult:
        """Ask the model for the caption of one render."""
        out = CaptionResult(id=request.id, caption_source=self.name)
        answer, out.caption_error = self.endpoint.ask_prepared(lambda: self.messages(request),
                                                               lambda err: f"cannot read the render's audio: {err}")
        if answer is None:
            return out
        out.cached = answer.cached
        out.caption, out.caption_error = clean_caption(answer.content, answer.finish_reason)
        return out


# --- offline, from descriptors and the library -------------------------------------------------------------

REFERENCE_RENDER = {"note": 60, "velocity": 100, "hold_s": 3.0, "release_s": 1.0}
REFERENCE_RATE = 48000
RenderKey = tuple[int, int, float, float, int]  # (played note, velocity, hold_s, release_s, sample rate)
# Distance weights: how the voice sounds counts most; the parameters break ties between similar sounds.
DESCRIPTOR_WEIGHT = 0.7
PARAMETER_WEIGHT = 0.3
# The source research's per-key weights for its parameter distance (reference/llm_tools.md §1.1, dx7_dist).
KEY_WEIGHTS = {"modmatrix": 4.0, "outmatrix": 4.0, "feedback": 3.0, "fixed_freq": 3.0, "ol": 2.0, "eg_rate": 2.0,
               "eg_level": 2.0, "coarse": 1.5, "fine": 1.0, "detune": 1.0, "transpose": 0.5, "sensitivity": 0.5}
_BINARY_KEYS = ("modmatrix", "outmatrix", "fixed_freq")
_RANGES = {"feedback": (0, 7), "coarse": (0, 31), "fine": (0, 99), "detune": (-7, 7), "transpose": (-24, 24),
           "ol": (0, 99), "eg_rate": (0, 99), "eg_level": (0, 99), "sensitivity": (0, 7)}
# Descriptor features (name, weight); each is scaled to roughly 0..1 by _features.
_FEATURE_WEIGHTS = (("centroid", 2.0), ("brightness", 1.0), ("inharmonicity", 2.0), ("attack", 1.5),
                    ("decay", 1.5), ("sustain", 1.0), ("beating", 0.5), ("vibrato", 0.5))


def _note_hz(note: float) -> float:
    return 440.0 * 2.0 ** ((note - 69.0) / 12.0)


def _features(d: dict[str, Any], sounding_note: int) -> list[float]:
    """Descriptors as numbers of comparable scale (a missing value reads as its natural extreme)."""
    f0 = _note_hz(sounding_note)
    centroid = d.get("centroid_hz")
    ratio = math.log2(max(centroid, 1.0) / f0) if centroid else 0.0
    attack = d.get("attack_ms")
    decay = d.get("decay20_ms")
    sustain = d.get("sustain_db")
    stability = d.get("pitch_stability_cents")
    return [
        min(max(ratio, -2.0), 6.0) / 4.0,
        float(d.get("brightness") or 0.0),
        float(d.get("inharmonicity") if d.get("inharmonicity") is not None else 0.5),
        math.log10(1.0 + (attack if attack is not None else 0.0)) / 3.0,
        math.log10(1.0 + (decay if decay is not None else 10000.0)) / 4.0,  # never falls 20 dB: very long
        min(-(sustain if sustain is not None else -60.0), 60.0) / 60.0,  # died before note-off: as low as it gets
        float(d.get("beating") or 0.0),
        math.log10(1.0 + (stability or 0.0)) / 2.0,
    ]


def descriptor_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Weighted mean absolute difference of two feature vectors (0 = same sound)."""
    total = sum(w for _, w in _FEATURE_WEIGHTS)
    return sum(w * abs(x - y) for (_, w), x, y in zip(_FEATURE_WEIGHTS, a, b)) / total


def parameter_distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    """1 minus the source research's weighted parameter similarity of two cores (0 = same values)."""
    import numpy as np

    total = score = 0.0
    for key, w in KEY_WEIGHTS.items():
        x, y = np.asarray(a[key], dtype=float), np.asarray(b[key], dtype=float)
        if key in _BINARY_KEYS:
            sim = float(np.mean(x == y))
        else:
            lo, hi = _RANGES[key]
            sim = float(np.mean(np.clip(1.0 - np.abs(x - y) / (hi - lo), 0.0, 1.0)))
        score += w * sim
        total += w
    return 1.0 - score / total


def render_key(request: CaptionRequest) -> RenderKey:
    """How the request's voice was rendered (the reference settings where the request does not say)."""
    played = request.played_note if request.played_note is not None else request.note
    return (played, request.velocity,
            float(request.hold_s) if request.hold_s is not None else REFERENCE_RENDER["hold_s"],
            float(request.release_s) if request.release_s is not None else REFERENCE_RENDER["release_s"],
            int(request.sample_rate) if request.sample_rate is not None else REFERENCE_RATE)


# Library entries' features per render setting, shared by every OfflineCaptioner in the process.
_LIBRARY_FEATURES: dict[tuple[str, RenderKey], list[float]] = {}
_LIBRARY_LOCK = threading.Lock()


def _timbre_words(d: dict[str, Any], sounding_note: int) -> list[str]:
    words: list[str] = []
    centroid, brightness = d.get("centroid_hz"), d.get("brightness") or 0.0
    if centroid is not None:
        ratio = centroid / _note_hz(sounding_note)
        # The library's measured tags: bright = centroid >= 2 f0; dark = little above 1.5 kHz, centroid near f0.
        if brightness <= DARK_BRIGHTNESS and (ratio <= DARK_RATIO or centroid <= DARK_CENTROID_HZ):
            words.append("dark")
        elif ratio >= VERY_BRIGHT_RATIO:
            words.append("very bright")
        elif ratio >= BRIGHT_RATIO:
            words.append("bright")
        else:
            words.append("mellow")
    inharm = d.get("inharmonicity")
    if inharm is not None:
        if inharm >= NOISY:
            words.append("noisy")
        elif inharm >= INHARMONIC:
            words.append("metallic")
        elif inharm < 0.05 and centroid is not None and centroid <= 1.25 * _note_hz(sounding_note):
            words.append("pure")  # harmonic and the centroid at the fundamental: close to a sine
    beating = d.get("beating")
    if beating is not None and beating >= TREMOLO_BEATING:
        words.append("shimmering")
    elif beating is not None and beating >= DETUNED_BEATING:
        words.append("chorused")
    return words


def _envelope_words(d: dict[str, Any]) -> list[str]:
    out: list[str] = []
    attack, decay, sustain, release = d.get("attack_ms"), d.get("decay20_ms"), d.get("sustain_db"), d.get("release_ms")
    if attack is not None:
        if attack <= 5.0:
            out.append("a sharp, percussive attack" if decay is not None and decay < PERCUSSIVE_DECAY_MS
                       else "a sharp attack")
        elif attack <= FAST_ATTACK_MS:
            out.append("a fast attack")
        elif attack < SLOW_ATTACK_MS:
            out.append("a soft attack")
        else:
            out.append("a slow, swelling attack")
    if decay is not None and decay < PERCUSSIVE_DECAY_MS:
        out.append("a quick decay")
    elif decay is None and sustain is not None and sustain >= SUSTAINED_DB:
        out.append("a steady sustain")
    elif decay is None or decay >= LONG_DECAY_MS:
        out.append("a long decay")
    else:
        out.append("a moderate decay")
    if sustain is not None:  # still sounding at note-off: there is a release to speak of
        if release is not None and release <= SHORT_RELEASE_MS:
            out.append("a short release")
        elif release is None or release >= LONG_RELEASE_MS:
            out.append("a long release")
        else:
            out.append("a moderate release")
    return out


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def caption_from_descriptors(instrument: str, d: dict[str, Any], sounding_note: int, *,
                             lfo_pitch: bool = True) -> str:
    """A caption in the source research's order: instrument type, then timbre, then envelope.

    ``lfo_pitch``: whether the patch can have vibrato at all (LFO pitch depth and sensitivity set); a
    decaying partial can fool the pitch tracker, so a measured wobble alone is not called vibrato.
    """
    head = instrument.strip() or "Synthesizer tone"
    head = head[0].upper() + head[1:]
    # "Strings, which have"; "Bass, which has" (the source research's captions agree in number).
    verb = "have" if head.lower().endswith("s") and not head.lower().endswith(("ss", "us", "is")) else "has"
    timbre = _timbre_words(d, sounding_note)
    stability = d.get("pitch_stability_cents")
    vibrato = " with vibrato" if lfo_pitch and stability is not None and stability >= VIBRATO_CENTS else ""
    envelope = _envelope_words(d)
    timbre_text = f"a {', '.join(timbre)} timbre{vibrato}" if timbre else f"a plain timbre{vibrato}"
    return f"{head}, which {verb} {timbre_text}" + (f", {_join(envelope)}." if envelope else ".")


class OfflineCaptioner:
    """Captions from the voice's descriptors and the family of the nearest captioned library patch."""

    name = OFFLINE_SOURCE
    needs_audio = False

    def __init__(self, library: Any = None, *, extra_library: Any = None):
        """``library``: the patches to match (default the packaged library); ``extra_library`` is added to it.

        Either may be a ``Library``, a sequence of ``LibraryPatch``, or a ``--library`` spec (a path).
        """
        from ...agent.designer import Library

        def load(spec: Any) -> list[Any]:
            if spec is None:
                return []
            if isinstance(spec, (str, Path)):
                return list(Library.load(spec))
            return list(spec)

        entries = load(library) if library is not None else list(Library.packaged())
        entries += load(extra_library)
        if not entries:
            raise ValueError("the offline captioner needs a library with at least one captioned patch")
        self.entries = entries
        self._lock = threading.Lock()
        self._features: dict[RenderKey, list[list[float]]] = {}
        self._cores = [e.patch.core() for e in entries]
        self._names: Any = None

    def name_candidates(self, name: str | None) -> list[int]:
        """The library patches whose family or caption heads share words with a voice name ("BRASS 1"), or all.

        A DX7 voice name often says what the voice is; when it names an instrument the library knows,
        only patches of that instrument compete on sound. A name that names nothing ("INIT VOICE",
        "ORCHESTRA" in a library without one) leaves every patch in.
        """
        from ...agent.retrieval import BM25Index, split_head, tokenize

        everyone = list(range(len(self.entries)))
        if not name or not name.strip():
            return everyone
        with self._lock:
            if self._names is None:
                # Families first ("STRINGS" is the strings family, not a "nylon-string guitar"), then the
                # instrument words of the captions ("KOTO" is a pluck whose caption says koto).
                self._names = (BM25Index([e.family for e in self.entries]),
                               BM25Index([" ; ".join(split_head(c)[0] for c in e.captions) for e in self.entries]))
        words = re.sub(r"[-.]", " ", name)
        if re.search(r"\binit", words, flags=re.IGNORECASE):  # "INIT VOICE": the DX7's empty voice, not a choir
            words = re.sub(r"\b(?:init(?:ial)?|voice)\b", " ", words, flags=re.IGNORECASE)
        words = tokenize(words)
        for index in self._names:
            scores = index.scores(words)
            best = float(scores.max()) if len(scores) else 0.0
            if best > 0.0:
                return [i for i, v in enumerate(scores) if v >= 0.5 * best]
        return everyone

    def _library_features(self, key: RenderKey) -> list[list[float]]:
        """Every library patch's features when rendered as the voice was (computed once per setting)."""
        with self._lock:
            if key not in self._features:
                self._features[key] = self._entry_features(key)
            return self._features[key]

    def _entry_features(self, key: RenderKey) -> list[list[float]]:
        from ...schema.compact import dumps_compact
        from ...synth.render import render_batch

        texts = [dumps_compact(e.patch) for e in self.entries]
        with _LIBRARY_LOCK:
            missing = [i for i, t in enumerate(texts) if (t, key) not in _LIBRARY_FEATURES]
        if missing:
            from ...evals.descriptors import describe_audio

            note, velocity, hold, release, sr = key
            audio = render_batch([self.entries[i].patch for i in missing], note=note, velocity=velocity,
                                 hold_s=hold, release_s=release, sample_rate=sr)
            for i, a in zip(missing, audio):
                sounding = min(127, max(0, note + self.entries[i].patch.transpose))
                d = describe_audio(a, sr, note=sounding, note_off_s=hold).model_dump()
                with _LIBRARY_LOCK:
                    _LIBRARY_FEATURES[(texts[i], key)] = _features(d, sounding)
        with _LIBRARY_LOCK:
            return [_LIBRARY_FEATURES[(t, key)] for t in texts]

    def nearest(self, patch: Any, descriptors: dict[str, Any], key: RenderKey = (60, 100, 3.0, 1.0, 48000),
                name: str | None = None) -> tuple[int, float]:
        """(index of the nearest library patch, its distance) for a voice rendered as ``key`` says.

        The library patches are rendered the same way, so that like is compared with like; a voice
        ``name`` that names an instrument narrows the candidates first; ties go to the earlier entry.
        """
        feats = _features(descriptors, min(127, max(0, key[0] + patch.transpose)))
        core = patch.core()
        library = self._library_features(key)
        best, best_d = 0, math.inf
        for i in self.name_candidates(name):
            dist = (DESCRIPTOR_WEIGHT * descriptor_distance(feats, library[i])
                    + PARAMETER_WEIGHT * parameter_distance(core, self._cores[i]))
            if dist < best_d - 1e-12:
                best, best_d = i, dist
        return best, best_d

    def caption(self, request: CaptionRequest) -> CaptionResult:
        """The offline caption of one voice."""
        from ...schema.validate import PatchValidationError, parse_patch

        out = CaptionResult(id=request.id, caption_source=self.name)
        try:
            patch = parse_patch(json.loads(request.patch))
        except (ValueError, PatchValidationError) as err:
            out.caption_error = f"the manifest patch is not valid: {str(err).splitlines()[0][:200]}"
            return out
        key = render_key(request)
        d = request.descriptors
        if d is None:
            from ...evals.descriptors import render_and_describe

            d = render_and_describe(patch, *key)[1].model_dump()
        if d.get("silent"):
            out.caption_error = SILENT_NOTE
            return out
        sounding = min(127, max(0, key[0] + patch.transpose))
        i, _ = self.nearest(patch, d, key, request.name)
        out.caption = caption_from_descriptors(self.entries[i].family, d, sounding,
                                               lfo_pitch=patch.lfo.pmd > 0 and patch.pms > 0)
        return out


# --- choosing one ----------------------------------------------------------------------------------------


def make_captioner(model: str | None, base_url: str | None = None, *, api_key: str | None = None,
                   timeout_s: float = 60.0, max_retries: int = 3, cache_dir: Path | None = None,
                   library: Any = None, audio_format: AudioFormat = "wav", retry_base_s: float = 1.0) -> Captioner:
    """The offline captioner for ``model`` None or ``"offline"``, else an audio-language model at ``base_url``.

    ``library`` (offline only) adds a user library (a ``--library`` spec or ``Library``) to the packaged one.
    """
    if model is None or str(model).strip().lower() in ("", "offline", OFFLINE_SOURCE):
        return OfflineCaptioner(extra_library=library)
    return AudioModelCaptioner(str(model), base_url, api_key=api_key, timeout_s=timeout_s, max_retries=max_retries,
                               cache_dir=cache_dir, audio_format=audio_format, retry_base_s=retry_base_s)


# --- the stage -----------------------------------------------------------------------------------------------


def _caption_table(results: list[CaptionResult]) -> Any:
    import pyarrow as pa

    schema = pa.schema([("id", pa.string()), ("caption", pa.string()), ("caption_source", pa.string()),
                        ("caption_error", pa.string())])
    return pa.table({"id": [r.id for r in results], "caption": [r.caption for r in results],
                     "caption_source": [r.caption_source for r in results],
                     "caption_error": [r.caption_error for r in results]}, schema=schema)


def run_caption_stage(out_dir: Path, captioner: Captioner, *, workers: int = 4, progress: bool = True,
                      recaption: bool = False) -> StageReport:
    """Write the captions part of every shard that has none yet; errors go into rows, never raised."""
    workers = check_workers(workers)
    if not isinstance(getattr(captioner, "name", None), str) or not callable(getattr(captioner, "caption", None)):
        raise ValueError(f"captioner: found {type(captioner).__name__}, allowed an object with a name and "
                         "a caption(request) method (make_captioner makes one)")
    out_dir = Path(out_dir)
    plan = plan_shards(out_dir, "captions", ["id", "name", "patch", "caption", "caption_source"])
    report = StageReport(stage="captions", shards_total=plan.shards_total,
                         shards_done_before=plan.shards_total - len(plan.pending))
    audio = ["audio"] if getattr(captioner, "needs_audio", True) else []
    timing = render_timing(out_dir)
    for k in plan.pending:
        renders = chosen_renders(out_dir, k, columns=["descriptors", "duration_s", "sample_rate"],
                                 binary_columns=audio)
        if renders is None:
            report.add_error(f"shard {k}: no renders part yet ({part_path(out_dir, 'renders', k)}); "
                             "run the render stage first")
            continue
        results: list[CaptionResult | None] = []
        todo: list[tuple[int, CaptionRequest]] = []
        for row in plan.rows(k):
            rid = str(row["id"])
            given = row.get("caption")
            if isinstance(given, str) and given.strip() and not recaption:
                results.append(CaptionResult(id=rid, caption=given.strip(),
                                             caption_source=row.get("caption_source") or "input"))
                continue
            render = renders.get(rid)
            if render is None:
                results.append(CaptionResult(id=rid, caption_error="no render of this voice in the renders part"))
                continue
            if render.get("error"):
                results.append(CaptionResult(id=rid, caption_error=f"the render failed: {render['error']}"[:400]))
                continue
            if render.get("silent"):
                results.append(CaptionResult(id=rid, caption_error=SILENT_NOTE))
                continue
            try:
                request = _request(row, render, timing)
            except (ValueError, TypeError, KeyError) as err:
                results.append(CaptionResult(id=rid, caption_error=f"cannot read the voice's row: {err}"[:400]))
                continue
            results.append(None)
            todo.append((len(results) - 1, request))

        finish_shard(out_dir, k, report, results, todo, captioner.caption, column="caption", result_type=CaptionResult,
                     source=captioner.name, who="the captioner", nothing="no caption", silent_note=SILENT_NOTE,
                     table=_caption_table, workers=workers, progress=progress)
    return report


def _request(row: dict[str, Any], render: dict[str, Any], timing: tuple[float, float] | None) -> CaptionRequest:
    descriptors = render.get("descriptors")
    if isinstance(descriptors, str):
        try:
            descriptors = json.loads(descriptors)
        except ValueError:
            descriptors = None
    audio = render.get("audio")
    played = render.get("played_note")
    duration, rate = render.get("duration_s"), render.get("sample_rate")
    if timing is None and isinstance(duration, (int, float)) and duration > 0:
        # build.json does not say: the dataset builder holds the key for 64% of the clip (the source research's).
        from .render_jobs import HOLD_SHARE

        timing = (round(HOLD_SHARE * duration, 6), round((1.0 - HOLD_SHARE) * duration, 6))
    return CaptionRequest(id=str(row["id"]), name=row.get("name"), patch=row["patch"],
                          note=int(render.get("note") or 60), velocity=int(render.get("velocity") or 100),
                          played_note=int(played) if played is not None else None,
                          hold_s=timing[0] if timing else None, release_s=timing[1] if timing else None,
                          sample_rate=int(rate) if isinstance(rate, int) and rate > 0 else None,
                          audio=audio if isinstance(audio, (bytes, bytearray)) else None,
                          descriptors=descriptors if isinstance(descriptors, dict) else None)
