"""The tools of ``design/tools.md``: thin handlers over the library, one per tool.

Each handler gets a ``Call`` whose arguments passed every check (``server.arguments``) and returns an
MCP ``CallToolResult``: a short text a text-only model can act on, the structured result (validated
against the tool's ``outputSchema`` by clients), and for renders the WAV as audio content plus a link to
its resource. ``call_tool`` is the one entry point: it never raises, whatever the input.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
import numpy as np

from ..evals.descriptors import render_and_describe
from ..evals.evidence import evidence_report
from ..schema.algorithms import algorithm_of, nearest_algorithm
from ..schema.audio import AudioDescriptors
from ..schema.compact import dumps_compact
from ..schema.patch import Patch
from ..schema.tools import (MAX_SYSEX_BYTES, TOOLS_BY_NAME, ChangeInfo, DescribePatchOutput, EditPatchOutput,
                            EvidenceSegmentInfo, ExportSysexOutput, ImportedVoice, ImportSysexOutput, NoteRender,
                            PresetMatch, ProblemInfo, RenderEvidenceOutput, RenderPatchOutput, SearchPresetsOutput,
                            ValidatePatchOutput)
from ..schema.validate import Problem, _short, validate, validate_json
from ..synth.describe import describe_patch, note_name
from ..synth.edits import EditError, apply_edits
from ..synth.evidence import default_operators, render_evidence
from ..synth.sysex import NotRepresentableError, dx7_algorithm, write_vced, write_vmem
from ..synth.sysex_reader import read_bank_bytes
from .arguments import Call, parse_call
from .errors import ToolError, problems_error
from .limits import audio_problems, clip_problems, edits_count_problem, limit_problem
from .renders import SYSEX_MIME, WAV_MIME, content_id, encode_wav, export_uri, render_uri, request_id
from .state import Progress, ServerState, no_progress

log = logging.getLogger("patchsmith.server")
Handler = Callable[[Call, ServerState, Progress], Awaitable[types.CallToolResult]]


async def call_tool(state: ServerState, name: str, arguments: Any,
                    progress: Progress = no_progress) -> types.CallToolResult:
    """Run one tool call; every failure comes back as a tool error (``is_error``), never as an exception."""
    spec = TOOLS_BY_NAME.get(name)
    if spec is None:
        return ToolError("unknown_tool", f"Unknown tool: {_short(name)}. Available tools: "
                         + ", ".join(TOOLS_BY_NAME)).result()
    try:
        call = parse_call(spec, arguments, check_patch=name != "validate_patch")
        return await HANDLERS[name](call, state, progress)
    except ToolError as err:
        return err.result()
    except Exception as err:  # a library bug must not take the server down: report it, keep serving
        log.exception("tool %s failed", name)
        return ToolError("internal_error", f"{name}: internal error ({type(err).__name__}: {_short(str(err), 200)}); "
                                           "please report it").result()


# --- shared pieces -----------------------------------------------------------------------------------


def _result(text: str, structured: Any, *extra: types.ContentBlock) -> types.CallToolResult:
    data = structured.model_dump(mode="json") if hasattr(structured, "model_dump") else structured
    return types.CallToolResult(content=[types.TextContent(text=text), *extra], structured_content=data)


def _audio_blocks(artifact_uri: str, data_base64: str | None, label: str) -> list[types.ContentBlock]:
    blocks: list[types.ContentBlock] = []
    if data_base64 is not None:
        blocks.append(types.AudioContent(data=data_base64, mime_type=WAV_MIME))
    blocks.append(types.ResourceLink(uri=artifact_uri, name=label, mime_type=WAV_MIME))
    return blocks


def _topology_warning(patch: Patch) -> str | None:
    if algorithm_of(patch.modmatrix, patch.outmatrix) is not None:
        return None
    nearest, distance = nearest_algorithm(patch.modmatrix, patch.outmatrix)
    return (f"the topology is not one of the 32 DX7 algorithms (nearest: {nearest}, {distance} matrix entries "
            "differ): it renders here, but it has no DX7 sysex form")


def _level_warnings(label: str, d: AudioDescriptors, gain_db: float) -> list[str]:
    if d.silent:
        return [f"{label} is silent"]
    if d.clipping:
        return [f"{label} peaks at {d.peak_dbfs:+.1f} dBFS, above full scale: the WAV was scaled by {gain_db:+.1f} dB"]
    return []


def _ms(seconds: float) -> str:
    return f"{seconds:g} s"


def _one_line(patch: Patch) -> str:
    """A patch as one line of JSON (neutral full-voice keys left out)."""
    return json.dumps(patch.to_dict(full=False), separators=(",", ":"))


# --- render_patch -----------------------------------------------------------------------------------


async def render_patch(call: Call, state: ServerState, progress: Progress) -> types.CallToolResult:
    """Render one clip per note, one after another, with each note's descriptors."""
    a, patch = call.args, call.patch
    clip = a.hold_s + a.release_s
    problems = clip_problems(a.hold_s, a.release_s)
    problems += audio_problems(len(a.notes) * clip, "/notes", f"{len(a.notes)} notes x {clip:g} s")
    if problems:
        raise problems_error("render_patch", problems)
    settings = {"notes": a.notes, "velocity": a.velocity, "hold_s": a.hold_s, "release_s": a.release_s,
                "sample_rate": a.sample_rate}
    rid = request_id("render_patch", patch, settings)
    artifact = state.cache.get(rid)
    if artifact is None:
        pieces, notes = [], []
        offset = 0
        for i, key in enumerate(a.notes):
            audio, d = await state.run(render_and_describe, patch, key, a.velocity, a.hold_s, a.release_s,
                                       a.sample_rate)
            notes.append((key, offset, len(audio), d))
            offset += len(audio)
            pieces.append(audio)
            await progress(i + 1, len(a.notes) + 1, f"rendered note {key} ({i + 1} of {len(a.notes)})")
        wav, gain_db = await state.run(encode_wav, np.concatenate(pieces), a.sample_rate)
        sr = a.sample_rate
        warnings = [w for key, _, _, d in notes for w in _level_warnings(f"note {key}", d, gain_db)]
        if (w := _topology_warning(patch)) is not None:
            warnings.append(w)
        out = RenderPatchOutput(
            render_id=rid, uri=render_uri(rid), sample_rate=sr, duration_s=round(offset / sr, 4), wav_gain_db=gain_db,
            audio_returned=False, warnings=warnings, velocity=a.velocity, hold_s=a.hold_s, release_s=a.release_s,
            algorithm=algorithm_of(patch.modmatrix, patch.outmatrix),
            notes=[NoteRender(note=key, sounding_note=min(127, max(0, key + patch.transpose)),
                              start_s=round(start / sr, 4), end_s=round((start + n) / sr, 4), descriptors=d)
                   for key, start, n, d in notes])
        artifact = state.cache.put(rid, render_uri(rid), WAV_MIME, wav, out.model_dump(mode="json"))
        await progress(len(a.notes) + 1, len(a.notes) + 1, "encoded the WAV")
    else:
        await progress(1, 1, "the same render was in the recent-render cache")
    out = RenderPatchOutput.model_validate({**artifact.result, "audio_returned": a.return_audio})
    return _result(_render_text(out), out,
                   *_audio_blocks(artifact.uri, artifact.data_base64 if a.return_audio else None, f"render {rid}"))


def _render_text(out: RenderPatchOutput) -> str:
    alg = f"DX7 algorithm {out.algorithm}" if out.algorithm else "not a DX7 algorithm"
    n = len(out.notes)
    lines = [f"Rendered {n} note{'s' if n != 1 else ''} at {out.sample_rate} Hz, velocity {out.velocity}, "
             f"each held {_ms(out.hold_s)} + {_ms(out.release_s)} release ({out.duration_s:g} s in all); {alg}.",
             f"Audio: {out.uri}" + (" (also attached)" if out.audio_returned else "")]
    for nr in out.notes:
        lines.append(f"note {nr.note} ({note_name(nr.note)}) [{nr.start_s:g}-{nr.end_s:g} s]: "
                     f"{nr.descriptors.summary()}")
    lines += [f"warning: {w}" for w in out.warnings]
    return "\n".join(lines)


# --- render_evidence --------------------------------------------------------------------------------


async def render_evidence_tool(call: Call, state: ServerState, progress: Progress) -> types.CallToolResult:
    """Render FULL and each operator muted or isolated, with every segment's change against FULL."""
    a, patch = call.args, call.patch
    problems = []
    if a.operators is not None:
        seen: set[int] = set()
        for i, k in enumerate(a.operators):
            if k in seen:
                problems.append(Problem(f"/operators/{i}", str(k), "each operator 1..6 at most once", "listed twice"))
            seen.add(k)
    ops = a.operators if a.operators is not None else default_operators(patch)
    problems += audio_problems((1 + len(ops)) * a.segment_s, "/segment_s",
                               f"{1 + len(ops)} segments (FULL and {len(ops)} operators) x {a.segment_s:g} s")
    if problems:
        raise problems_error("render_evidence", problems)
    hold = min(a.hold_s, a.segment_s)
    settings = {"mode": a.mode, "operators": ops, "segment_s": a.segment_s, "shuffle": a.shuffle, "seed": a.seed,
                "note": a.note, "velocity": a.velocity, "hold_s": hold, "sample_rate": a.sample_rate}
    rid = request_id("render_evidence", patch, settings)
    artifact = state.cache.get(rid)
    if artifact is None:
        clip = await state.run(render_evidence, patch, mode=a.mode, operators=a.operators, segment_s=a.segment_s,
                               shuffle=a.shuffle, seed=a.seed, note=a.note, velocity=a.velocity, hold_s=hold,
                               sample_rate=a.sample_rate, workers=1)
        await progress(1, 3, f"rendered {sum(not s.skipped for s in clip.segments)} segments")
        report = await state.run(evidence_report, clip)
        await progress(2, 3, "measured every segment")
        wav, gain_db = await state.run(encode_wav, clip.audio, clip.sample_rate)
        segments = [EvidenceSegmentInfo.model_validate(s.model_dump()) for s in report.segments]
        warnings = [w for s in segments if s.descriptors is not None and s.label == "FULL"
                    for w in _level_warnings("FULL", s.descriptors, gain_db)]
        if (w := _topology_warning(patch)) is not None:
            warnings.append(w)
        out = RenderEvidenceOutput(
            render_id=rid, uri=render_uri(rid), sample_rate=report.sample_rate, duration_s=report.duration_s,
            wav_gain_db=gain_db, audio_returned=False, warnings=warnings, mode=report.mode, segment_s=report.segment_s,
            note=report.note, velocity=report.velocity, hold_s=report.hold_s, segments=segments)
        artifact = state.cache.put(rid, render_uri(rid), WAV_MIME, wav,
                                   {"result": out.model_dump(mode="json"), "text": report.text()})
        await progress(3, 3, "encoded the WAV")
    else:
        await progress(1, 1, "the same render was in the recent-render cache")
    out = RenderEvidenceOutput.model_validate({**artifact.result["result"], "audio_returned": a.return_audio})
    text = "\n".join([artifact.result["text"], f"Audio: {out.uri}" + (" (also attached)" if a.return_audio else ""),
                      *[f"warning: {w}" for w in out.warnings]])
    return _result(text, out, *_audio_blocks(artifact.uri, artifact.data_base64 if a.return_audio else None,
                                             f"evidence {rid}"))


# --- validate_patch, describe_patch --------------------------------------------------------------------


async def validate_patch(call: Call, state: ServerState, progress: Progress) -> types.CallToolResult:
    """Every problem of a patch (not an error: the verdict is the result), and its algorithm."""
    raw = call.args.patch
    report = validate_json(raw, lenient=call.args.lenient) if isinstance(raw, str) else \
        validate(raw, lenient=call.args.lenient)
    d = report.to_dict()
    out = ValidatePatchOutput(valid=report.valid, problems=[ProblemInfo(**vars(p)) for p in report.problems],
                              coercions=d["coercions"], algorithm=report.algorithm,
                              nearest_algorithm=report.nearest_algorithm, nearest_distance=report.nearest_distance,
                              patch=d["patch"] if report.valid else None)
    return _result(report.summary(), out)


async def describe_patch_tool(call: Call, state: ServerState, progress: Progress) -> types.CallToolResult:
    """The readable account of a patch at one note and velocity."""
    a = call.args
    d = await state.run(describe_patch, call.patch, a.note, a.velocity, a.sample_rate)
    text = d.text()
    return _result(text, DescribePatchOutput(text=text, algorithm=d.topology.algorithm,
                                             description=d.model_dump(mode="json")))


# --- edit_patch -------------------------------------------------------------------------------------


async def edit_patch(call: Call, state: ServerState, progress: Progress) -> types.CallToolResult:
    """Apply set and adjust edits, all or nothing; the new patch, its diff, its descriptors if asked."""
    a = call.args
    if (p := edits_count_problem(a.edits)) is not None:
        raise problems_error("edit_patch", [p])
    try:
        res = await state.run(apply_edits, call.patch, a.edits)
    except EditError as err:
        raise ToolError("invalid_edits", f"edit_patch: {len(err.problems)} bad edit(s); nothing was changed",
                        err.problems) from None
    descriptors = None
    if a.render:
        _, descriptors = await state.run(render_and_describe, res.patch, a.note, a.velocity)
    out = EditPatchOutput(patch=res.patch.to_dict(), changes=[ChangeInfo(**c.model_dump()) for c in res.changes],
                          notes=res.notes, algorithm=algorithm_of(res.patch.modmatrix, res.patch.outmatrix),
                          descriptors=descriptors)
    lines = [f"{len(out.changes)} parameter{'s' if len(out.changes) != 1 else ''} changed"
             + (": " + "; ".join(f"{c.path} {c.old} -> {c.new}" for c in out.changes[:24]) if out.changes else "")
             + (" ..." if len(out.changes) > 24 else "")]
    lines += out.notes
    if descriptors is not None:
        lines.append(f"new sound (note {a.note}): {descriptors.summary()}")
    lines += ["new patch:", dumps_compact(res.patch)]
    return _result("\n".join(lines), out)


# --- import_sysex, export_sysex -------------------------------------------------------------------


_DATA_URL = re.compile(r"^data:[^,]*;base64,", re.IGNORECASE)


def _decode_base64(text: str) -> bytes:
    body = _DATA_URL.sub("", "".join(text.split()))
    try:
        if "-" in body or "_" in body:
            return base64.b64decode(body, altchars=b"-_", validate=True)
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as err:
        raise problems_error("import_sysex", [Problem("/data_base64", _short(text, 40),
                                                      "base64 text (A-Z a-z 0-9 + / and = padding)",
                                                      f"not base64: {err}")]) from None


async def import_sysex(call: Call, state: ServerState, progress: Progress) -> types.CallToolResult:
    """Read a dump tolerantly: its voices as full patches and what was repaired."""
    data = _decode_base64(call.args.data_base64)
    if len(data) > MAX_SYSEX_BYTES:  # text at the length limit can still decode to a byte or two over it
        raise problems_error("import_sysex", [limit_problem("sysex_size", "/data_base64", f"{len(data)} bytes",
                                                            f"at most {MAX_SYSEX_BYTES} bytes")])
    read = await state.run(read_bank_bytes, data, "import_sysex")
    if read.refused is not None:
        raise ToolError("invalid_sysex", f"import_sysex: no DX7 voice could be read: {read.refused}",
                        [Problem("/data_base64", f"{len(data)} bytes", "a DX7 single-voice (163 bytes) or 32-voice "
                                 "bank (4104 bytes) sysex dump", read.refused)])
    out = ImportSysexOutput(count=len(read.voices), tolerated=read.tolerated,
                            voices=[ImportedVoice(number=i + 1, name=name, patch=p.to_dict())
                                    for i, (p, name) in enumerate(zip(read.voices, read.names))])
    lines = [f"Read {out.count} voice{'s' if out.count != 1 else ''}."]
    lines += [f"repaired: {t}" for t in read.tolerated[:20]]
    if len(read.tolerated) > 20:
        lines.append(f"... and {len(read.tolerated) - 20} more repairs")
    for v, p in zip(out.voices, read.voices):
        lines.append(f"voice {v.number} {v.name!r}: {_one_line(p)}")
    return _result("\n".join(lines), out)


async def export_sysex(call: Call, state: ServerState, progress: Progress) -> types.CallToolResult:
    """Write the patches as a single-voice dump or a bank; refuse topologies the DX7 lacks."""
    a, patches = call.args, call.patches
    fmt = a.format if a.format != "auto" else ("voice" if len(patches) == 1 else "bank")
    if fmt == "voice" and len(patches) != 1:
        raise problems_error("export_sysex", [Problem("/format", '"voice"', '"bank" for several patches',
                                                      f"a single-voice dump holds one patch, not {len(patches)}")])
    refused = []
    for i, p in enumerate(patches):
        try:
            dx7_algorithm(p)
        except NotRepresentableError as err:
            refused.append(Problem(f"/patches/{i}/modmatrix", "a topology outside the 32 DX7 algorithms",
                                   "one of the 32 DX7 algorithms", str(err)))
    if refused:
        raise ToolError("not_representable", f"export_sysex: {len(refused)} patch(es) cannot be written as DX7 "
                                             "sysex; change their modmatrix/outmatrix to a DX7 algorithm", refused)
    data = write_vced(patches[0]) if fmt == "voice" else write_vmem(patches)
    eid = content_id(data)
    artifact = state.cache.put(eid, export_uri(eid), SYSEX_MIME, data)
    out = ExportSysexOutput(format=fmt, size_bytes=len(data), data_base64=artifact.data_base64, export_id=eid,
                            uri=artifact.uri, voice_names=[(p.name or "").ljust(10) for p in patches],
                            padded_with_init_voices=32 - len(patches) if fmt == "bank" else 0)
    text = (f"Wrote a DX7 {'single-voice dump' if fmt == 'voice' else '32-voice bank'} of {len(data)} bytes "
            f"({len(patches)} voice{'s' if len(patches) != 1 else ''}"
            + (f", {out.padded_with_init_voices} init voices" if out.padded_with_init_voices else "")
            + f"): {out.uri}\ndata_base64: {out.data_base64}")
    return _result(text, out)


# --- search_presets --------------------------------------------------------------------------------


async def search_presets(call: Call, state: ServerState, progress: Progress) -> types.CallToolResult:
    """The library presets whose names and captions best match the query."""
    a = call.args
    matches = state.presets.search(a.query, a.limit)
    out = SearchPresetsOutput(query=a.query, results=[
        PresetMatch(key=m.example.key, name=m.example.name, caption=m.caption, captions=list(m.example.captions),
                    score=m.score, uri=f"patchsmith://presets/{m.example.key}", patch=m.example.patch.to_dict())
        for m in matches])
    if not state.presets.examples:
        text = f"The preset library is empty ({state.presets.note})."
    elif not matches:
        text = f"No preset matches {a.query!r}; presets: {', '.join(state.presets.examples)}."
    else:
        text = "\n".join(f"{i + 1}. {m.example.key} {m.example.name!r} (score {m.score:.2f}): {m.caption}\n"
                         f"   patch: {_one_line(m.example.patch)}"
                         for i, m in enumerate(matches))
    return _result(text, out)


HANDLERS: dict[str, Handler] = {
    "render_patch": render_patch,
    "render_evidence": render_evidence_tool,
    "validate_patch": validate_patch,
    "describe_patch": describe_patch_tool,
    "edit_patch": edit_patch,
    "import_sysex": import_sysex,
    "export_sysex": export_sysex,
    "search_presets": search_presets,
}
