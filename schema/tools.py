"""The tools' input and output models: the single source of every tool schema (``design/tools.md``).

Each tool is a ``ToolSpec``: a name, a description for models, an input model and an output model.
``input_schema``/``output_schema`` turn them into the JSON Schemas the MCP server publishes
(``inputSchema``/``outputSchema``); ``schema.openai_tools`` derives the OpenAI function tools from the
very same schemas. The ``patch`` of every input (and output) is ``patch_json_schema()`` itself.

The limits the tools enforce are declared here, because the published schemas carry them
(``maxItems: 16``, the sample-rate ``enum``, ...); ``server.limits`` checks them, with the ones JSON
Schema cannot express (the clip length ``hold_s + release_s``, the audio per call).

Fields the library validates with its own JSON-pointer problems (the patch, the edit list) are typed
``Any`` for pydantic and carry their published schema through ``WithJsonSchema``; every other field
is validated by the model itself (strict: no ``"60"`` for 60, no ``true`` for 1).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from .audio import AudioDescriptors
from .jsonschema import patch_json_schema

# --- limits (design/tools.md "Limits and errors") --------------------------------------------------

MAX_NOTES = 16
MAX_CLIP_S = 30.0  # hold_s + release_s of one clip; also the longest evidence segment
SAMPLE_RATES: tuple[int, ...] = (16000, 22050, 32000, 44100, 48000)
MAX_AUDIO_S = 120.0  # audio rendered by one call (all notes, or all evidence segments)
MAX_BANK = 32  # voices in one DX7 bank (export_sysex)
MAX_EDITS = 64  # edits in one edit_patch call (the library's limit, synth.edits.MAX_EDITS)
MAX_SYSEX_BYTES = 64 * 1024  # decoded size of an import_sysex dump (16 banks)
MAX_SYSEX_BASE64 = 4 * ((MAX_SYSEX_BYTES + 2) // 3)
MAX_QUERY_CHARS = 500
MAX_RESULTS = 20
MAX_SEED = 2**31 - 1
MIN_SEGMENT_S = 0.1

SampleRate = Literal[16000, 22050, 32000, 44100, 48000]
Note = Annotated[int, Field(ge=0, le=127)]
Quality = Literal["brightness", "attack", "decay", "release", "sustain", "metallic", "vibrato", "detune", "level"]


def _embedded_patch_schema() -> dict[str, Any]:
    """The patch schema as a property of another schema (no ``$schema`` below the root)."""
    s = patch_json_schema()
    s.pop("$schema", None)
    return s


PATCH_SCHEMA = _embedded_patch_schema()
PatchArg = Annotated[Any, WithJsonSchema(PATCH_SCHEMA)]


class _Input(BaseModel):
    # strict: a model's "60" or true is an error it can fix, not a silent conversion.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- inputs ------------------------------------------------------------------------------------------

_VELOCITY = Field(100, ge=1, le=127, description="MIDI velocity 1..127")
_SAMPLE_RATE = Field(48000, description="sample rate in Hz, one of 16000, 22050, 32000, 44100, 48000")
_RETURN_AUDIO = Field(True, description="include the WAV as MCP audio content (the structured result and the "
                                        "render resource are returned either way)")


class RenderPatchInput(_Input):
    """Render a patch to audio, one clip per note, played one after another."""

    patch: PatchArg
    notes: list[Note] = Field([60], min_length=1, max_length=MAX_NOTES,
                              description=f"MIDI notes 0..127 to play one after another (at most {MAX_NOTES})")
    velocity: int = _VELOCITY
    hold_s: float = Field(3.0, ge=0, le=MAX_CLIP_S, description="seconds each key is held")
    release_s: float = Field(1.0, ge=0, le=MAX_CLIP_S,
                             description=f"seconds rendered after each key-up; hold_s + release_s <= {MAX_CLIP_S:g}")
    sample_rate: SampleRate = _SAMPLE_RATE
    return_audio: bool = _RETURN_AUDIO


class RenderEvidenceInput(_Input):
    """Render FULL, then each operator muted (off) or isolated (on), as one clip with a segment map."""

    patch: PatchArg
    mode: Literal["off", "on"] = Field("off", description="off: mute each operator (OPk_OFF); on: keep only the "
                                                          "operator and what it modulates downstream (OPk_ON)")
    operators: list[Annotated[int, Field(ge=1, le=6)]] | None = Field(
        None, min_length=1, max_length=6,
        description="operators 1..6 to mute or isolate, each once; default: every carrier and modulator")
    segment_s: float = Field(4.0, ge=MIN_SEGMENT_S, le=MAX_CLIP_S,
                             description="length of every segment in seconds (FULL and one per operator)")
    shuffle: bool = Field(False, description="shuffle the operator segments (FULL stays first)")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of the shuffle")
    note: Note = Field(60, description="MIDI note 0..127")
    velocity: int = _VELOCITY
    hold_s: float = Field(3.0, ge=0, le=MAX_CLIP_S, description="seconds the key is held in each segment "
                                                                "(at most segment_s)")
    sample_rate: SampleRate = _SAMPLE_RATE
    return_audio: bool = _RETURN_AUDIO


class ValidatePatchInput(_Input):
    """Check a patch: every problem with its JSON pointer, and its DX7 algorithm."""

    patch: PatchArg
    lenient: bool = Field(False, description='also read 3.0 as 3 and "42" as 42 (model output), listing each reading')


class DescribePatchInput(_Input):
    """Describe a patch at one note and velocity."""

    patch: PatchArg
    note: Note = Field(60, description="MIDI note 0..127 the frequencies and envelope times are given at")
    velocity: int = _VELOCITY
    sample_rate: SampleRate = _SAMPLE_RATE


class SetEdit(_Input):
    """Set one parameter, addressed by a JSON pointer into the patch."""

    op: Literal["set"]
    path: str = Field(description='JSON pointer of one value: "/eg_rate/3/0" (R4 of OP1), "/feedback", "/lfo/speed"')
    value: int | bool | str = Field(description="the new value (within the parameter's range)")


class AdjustEdit(_Input):
    """Move a quality of the sound by a small deterministic step."""

    op: Literal["adjust"]
    quality: Quality = Field(description="the quality to move")
    amount: int = Field(ge=-3, le=3, description="-3..3: negative = less (darker, shorter, ...), positive = more")


def _edits_schema() -> dict[str, Any]:
    from pydantic import TypeAdapter

    item = _clean(TypeAdapter(Annotated[SetEdit | AdjustEdit, Field(discriminator="op")]).json_schema())
    return {"type": "array", "items": item, "maxItems": MAX_EDITS,
            "description": f"edits applied in order, all or nothing (at most {MAX_EDITS})"}


class EditPatchInput(_Input):
    """Apply set and adjust edits to a patch."""

    patch: PatchArg
    edits: Annotated[Any, WithJsonSchema(_edits_schema())]
    render: bool = Field(False, description="also render the new patch (note, velocity; 3 s held, 1 s release, "
                                            "48 kHz) and return its descriptors")
    note: Note = Field(60, description="MIDI note 0..127 for render")
    velocity: int = _VELOCITY


class ImportSysexInput(_Input):
    """Read a DX7 single-voice or bank dump."""

    data_base64: str = Field(max_length=MAX_SYSEX_BASE64,
                             description=f"the .syx bytes, base64 (at most {MAX_SYSEX_BYTES // 1024} KiB decoded)")


class ExportSysexInput(_Input):
    """Write patches as DX7 sysex."""

    patches: list[PatchArg] = Field(min_length=1, max_length=MAX_BANK,
                                    description=f"1..{MAX_BANK} patches; a bank is padded with init voices")
    format: Literal["auto", "voice", "bank"] = Field(
        "auto", description="voice: one 163-byte single-voice dump (VCED); bank: a 4104-byte 32-voice bank (VMEM); "
                            "auto: voice for one patch, bank for several")


class SearchPresetsInput(_Input):
    """Find captioned library patches matching a text."""

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="words describing the sound")
    limit: int = Field(5, ge=1, le=MAX_RESULTS, description=f"how many results, 1..{MAX_RESULTS}")


# --- outputs -----------------------------------------------------------------------------------------


class ProblemInfo(_Output):
    """One problem: where (JSON pointer into the arguments), what was found, what is allowed."""

    pointer: str
    found: str
    allowed: str
    message: str


class ToolErrorInfo(_Output):
    """The structured part of a tool error: its kind and every problem, so a model can fix its call."""

    error: Literal["unknown_tool", "invalid_arguments", "limit_exceeded", "invalid_patch", "invalid_edits",
                   "invalid_sysex", "not_representable", "internal_error"]
    message: str
    problems: list[ProblemInfo] = Field(default_factory=list)


class NoteRender(_Output):
    """One played note of a render: where it is in the clip and what it sounds like."""

    note: int = Field(description="the MIDI key played")
    sounding_note: int = Field(description="the key moved by the patch's transpose: the pitch you hear")
    start_s: float
    end_s: float
    descriptors: AudioDescriptors


class _Rendered(_Output):
    render_id: str = Field(description="server-chosen id of the WAV in the recent-render cache")
    uri: str = Field(description="patchsmith://renders/{render_id}.wav (while it stays in the cache)")
    sample_rate: int
    duration_s: float
    wav_gain_db: float = Field(description="gain applied to the WAV so that it does not clip (0 unless the patch "
                                           "peaks above full scale); descriptors are of the unscaled audio")
    audio_returned: bool
    warnings: list[str] = Field(default_factory=list, description="clipping, silence, a topology that is not "
                                                                  "DX7-representable")


class RenderPatchOutput(_Rendered):
    """What render_patch returns besides the audio."""

    velocity: int
    hold_s: float
    release_s: float
    algorithm: int | None = Field(description="the DX7 algorithm, or None for a topology that is not one of the 32")
    notes: list[NoteRender]


class DescriptorChangeInfo(_Output):
    """A segment's descriptors minus FULL's (None where either side has no value)."""

    level_db: float | None = None
    centroid_hz: float | None = None
    brightness: float | None = None
    attack_ms: float | None = None
    decay20_ms: float | None = None
    inharmonicity: float | None = None


class EvidenceSegmentInfo(_Output):
    """One segment of the evidence clip (FULL or OPk_OFF / OPk_ON)."""

    label: str
    operator: int | None = None
    role: str | None = None
    modulates: list[int] = Field(default_factory=list)
    start_s: float | None = None
    end_s: float | None = None
    skipped: bool = False
    reason: str | None = None
    descriptors: AudioDescriptors | None = None
    change: DescriptorChangeInfo | None = None


class RenderEvidenceOutput(_Rendered):
    """What render_evidence returns besides the audio."""

    mode: Literal["off", "on"]
    segment_s: float
    note: int
    velocity: int
    hold_s: float
    segments: list[EvidenceSegmentInfo]


class CoercionInfo(_Output):
    """A value lenient mode read as something else."""

    pointer: str
    found: str
    used: Any
    reason: str


class ValidatePatchOutput(_Output):
    """The verdict on a patch."""

    valid: bool
    problems: list[ProblemInfo]
    coercions: list[CoercionInfo]
    algorithm: int | None = Field(description="the DX7 algorithm 1..32 when the topology is one of them")
    nearest_algorithm: int | None
    nearest_distance: int | None = Field(description="how many matrix entries differ from the nearest algorithm")
    patch: dict[str, Any] | None = Field(description="the patch as read (neutral full-voice keys left out), if valid")


class DescribePatchOutput(_Output):
    """A readable account of a patch."""

    text: str
    algorithm: int | None
    description: dict[str, Any] = Field(description="every number of the text: topology, operators (frequency, "
                                                    "level, envelope in ms and dB), pitch EG, LFO")


class ChangeInfo(_Output):
    """One changed parameter."""

    path: str
    old: Any
    new: Any


class EditPatchOutput(_Output):
    """The edited patch and its diff."""

    patch: PatchArg
    changes: list[ChangeInfo]
    notes: list[str] = Field(description="what the semantic steps did, or why they could not")
    algorithm: int | None
    descriptors: AudioDescriptors | None = Field(description="of the new patch, when render was asked")


class ImportedVoice(_Output):
    """One voice read from a dump."""

    number: int = Field(description="1-based position in the dump")
    name: str = Field(description="the voice's 10-character name as stored")
    patch: PatchArg


class ImportSysexOutput(_Output):
    """The voices of a dump and what the tolerant reader repaired."""

    count: int
    voices: list[ImportedVoice]
    tolerated: list[str] = Field(description="bad checksums, odd lengths, out-of-range bytes that were repaired")


class ExportSysexOutput(_Output):
    """The sysex bytes of the patches."""

    format: Literal["voice", "bank"]
    size_bytes: int
    data_base64: str
    export_id: str
    uri: str = Field(description="patchsmith://exports/{export_id}.syx (while it stays in the cache)")
    voice_names: list[str]
    padded_with_init_voices: int


class PresetMatch(_Output):
    """One library patch matching the query."""

    key: str
    name: str
    caption: str = Field(description="the caption that matches best")
    captions: list[str]
    score: float
    uri: str
    patch: PatchArg


class SearchPresetsOutput(_Output):
    """The best matches, best first."""

    query: str
    results: list[PresetMatch]


# --- the tools -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, its description for models, its input and output models."""

    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("render_patch",
             "Render a DX7 patch to audio: one clip per note (hold_s then release_s), played one after another. "
             "Returns the WAV (audio content), a resource URI, and per note the descriptors that stand in for "
             "ears (level, attack, decay to -20/-60 dB, sustain, release, spectral centroid, brightness, "
             "inharmonicity, pitch). Limits: at most 16 notes, each clip at most 30 s, at most 120 s of audio "
             "per call, sample rate 16000/22050/32000/44100/48000.",
             RenderPatchInput, RenderPatchOutput),
    ToolSpec("render_evidence",
             "What each operator contributes: renders FULL, then one segment per operator muted (mode off) or "
             "isolated with what it modulates (mode on), and reports each segment's descriptor change against "
             "FULL (level, brightness, attack, decay, inharmonicity). Limits: segment_s 0.1..30, at most 120 s "
             "of audio per call.",
             RenderEvidenceInput, RenderEvidenceOutput),
    ToolSpec("validate_patch",
             "Check a patch without rendering it: every problem with its JSON pointer, what was found and what "
             "is allowed; the DX7 algorithm, or the nearest one and how many matrix entries differ.",
             ValidatePatchInput, ValidatePatchOutput),
    ToolSpec("describe_patch",
             "A readable account of a patch: algorithm, carriers and modulation paths, each operator's "
             "frequency (ratio and Hz at the note), level, envelope as times in ms and levels in dB, feedback, "
             "pitch EG and LFO.",
             DescribePatchInput, DescribePatchOutput),
    ToolSpec("edit_patch",
             'Make small explicit changes and get the new patch and its diff: {"op": "set", "path": "/eg_rate/3/0", '
             '"value": 60} sets one value; {"op": "adjust", "quality": "brightness", "amount": 1} moves a quality '
             "(brightness, attack, decay, release, sustain, metallic, vibrato, detune, level) by -3..3 steps. "
             "At most 64 edits, all or nothing; render: true also returns the new descriptors.",
             EditPatchInput, EditPatchOutput),
    ToolSpec("import_sysex",
             "Read a DX7 .syx dump (base64; a bank or a single voice, at most 64 KiB) into full patches, with "
             "what the tolerant reader repaired (bad checksums, odd lengths, out-of-range bytes).",
             ImportSysexInput, ImportSysexOutput),
    ToolSpec("export_sysex",
             "Write one patch as a DX7 single-voice dump (VCED) or up to 32 as a bank (VMEM): the bytes as base64 "
             "and a resource URI. A topology that is not one of the 32 DX7 algorithms is refused, naming the "
             "nearest algorithm.",
             ExportSysexInput, ExportSysexOutput),
    ToolSpec("search_presets",
             "Search the library of captioned patches by words (instrument, timbre, envelope): the best matches "
             "with their captions, scores and full patches.",
             SearchPresetsInput, SearchPresetsOutput),
)

TOOLS_BY_NAME: dict[str, ToolSpec] = {t.name: t for t in TOOLS}


def input_schema(spec: ToolSpec) -> dict[str, Any]:
    """The published JSON Schema of a tool's arguments (references inlined, no generated titles)."""
    return copy.deepcopy(_schemas(spec.name)[0])


def output_schema(spec: ToolSpec) -> dict[str, Any]:
    """The published JSON Schema of a tool's structured result."""
    return copy.deepcopy(_schemas(spec.name)[1])


@lru_cache(maxsize=None)
def _schemas(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    spec = TOOLS_BY_NAME[name]
    return (_publish(spec.input_model.model_json_schema(mode="validation"), spec.description),
            _publish(spec.output_model.model_json_schema(mode="serialization"), None))


def _publish(schema: dict[str, Any], description: str | None) -> dict[str, Any]:
    """A model's schema as published: references inlined, no generated titles, the tool's description."""
    out = _clean(schema)
    out.pop("title", None)
    if description is not None:
        out["description"] = description
    return out


def _clean(schema: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref``s (clients and models read one self-contained schema) and drop pydantic's titles."""
    schema = dict(schema)
    defs = schema.pop("$defs", {})

    def walk(node: Any, in_properties: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        if in_properties:  # a map of property names: the keys are names, not keywords
            return {k: walk(v) for k, v in node.items()}
        if "$ref" in node:
            target = walk(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {**target, **{k: walk(v) for k, v in node.items() if k != "$ref"}}
        out = {}
        for k, v in node.items():
            # Titles are pydantic's class and field names (the patch keeps its own "patch");
            # "discriminator" is an OpenAPI keyword, not JSON Schema.
            if (k == "title" and v != "patch") or k == "discriminator":
                continue
            out[k] = walk(v, in_properties=(k == "properties"))
        return out

    return walk(schema)
