r"""Chain-of-thought from a teacher model: the source research's step, kept only when the answer is exact.

The teacher (any OpenAI-compatible Chat Completions endpoint; audio-capable ones may also get the
evidence audio) is given the caption (the student's prompt), the patch JSON schema
(``schema.jsonschema.patch_json_schema``), the ground-truth patch as compact JSON, and the operator
evidence segment map (the renders part's ``evidence_off_map``/``evidence_on_map``, or computed here
with ``evals.evidence`` when the build made none). It answers with an analysis, a ``\cot{...}`` block
written as if it did not know the answer, and the final JSON in a fenced block
(``reference/llm_tools.md`` §1.1).

A row keeps its ``cot`` only when the final JSON is **value-identical** to the ground truth: both parse
(strictly) to the same patch, every core and full-voice parameter equal, a full-voice key the teacher
left out counting as its neutral default (as the compact format itself omits those). The ``name`` is
ignored: it is a label, not a sound, and a teacher that shortens or drops it has still reached the
patch. Everything else, a single number included, rejects the row with
``cot_error = "final JSON differs from ground truth at /eg_rate/2/1 (...)"``.

``run_cot_stage`` writes ``OUT/stage/cot/part-k.parquet`` (``id``, ``cot``, ``cot_analysis``,
``cot_source``, ``cot_error``) for every shard not written yet (``dataset-contract.md``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .prompts import TEACHER_SYSTEM, teacher_user_text
from .row_runner import check_workers, chosen_renders, finish_shard, plan_shards
from .stages import StageReport, part_path, read_part

__all__ = ["CotRequest", "CotResult", "CotTeacher", "TeacherAnswer", "compare_to_truth", "evidence_text",
           "make_teacher", "parse_teacher_answer", "run_cot_stage", "stored_evidence"]

SILENT_NOTE = "silent render: no chain of thought"
_COT_OPEN = re.compile(r"\\cot\s*\{")
_LEAK = re.compile(r"ground[\s-]*truth|given (?:answer|patch|json)|answer (?:is|was) given|target (?:patch|json)",
                   re.IGNORECASE)


class CotRequest(BaseModel):
    """One voice for the teacher: the caption, the ground-truth patch and the evidence."""

    model_config = ConfigDict(extra="forbid")

    id: str
    caption: str
    patch: str = Field(description="the ground-truth patch as compact JSON (manifest column 'patch')")
    evidence: str | None = Field(None, description="the evidence as text, when already made")
    evidence_off_map: str | None = Field(None, description="the renders part's segment map JSON (operators muted)")
    evidence_on_map: str | None = Field(None, description="the renders part's segment map JSON (operators isolated)")
    evidence_off_audio: bytes | None = Field(None, description="the muted-operators clip (FLAC)", repr=False)
    evidence_on_audio: bytes | None = Field(None, description="the isolated-operators clip (FLAC)", repr=False)
    audio: bytes | None = Field(None, description="the render (FLAC), sent to an audio-capable teacher when "
                                                  "there is no evidence clip", repr=False)


class CotResult(BaseModel):
    """The kept reasoning, or why there is none."""

    id: str
    cot: str | None = None
    cot_analysis: str | None = None
    cot_source: str | None = None
    cot_error: str | None = None
    cached: bool = False


class TeacherAnswer(BaseModel):
    """A teacher's answer taken apart: analysis, the ``\\cot{...}`` text, the final JSON, and what is missing."""

    analysis: str | None = None
    cot: str | None = None
    patch: dict[str, Any] | None = None
    problems: list[str] = Field(default_factory=list)


def _matching_brace(text: str, start: int) -> int | None:
    """The index of the ``}`` closing the ``{`` just before ``start`` (None when unbalanced)."""
    depth = 1
    for i in range(start, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


_ANALYSIS_HEAD = re.compile(r"^\s*(?:#+\s*)?(?:\d+[.)]\s*)?(?:\*\*)?analysis(?:\*\*)?\s*:?\s*(?:\*\*)?\s*",
                            re.IGNORECASE)


def parse_teacher_answer(text: str | None, reasoning: str | None = None) -> TeacherAnswer:
    r"""Split a teacher's answer into analysis, ``\cot{...}`` and the final JSON (never raises)."""
    from ...agent.output_parsing import MAX_TEXT, find_patch, split_think

    text = text or ""
    if len(text) > MAX_TEXT:
        return TeacherAnswer(problems=[f"the answer is {len(text)} characters long; at most {MAX_TEXT} are read"])
    if "</think>" in text:
        thought, text = split_think(text)
        reasoning = reasoning or thought
    out = TeacherAnswer()
    match = _COT_OPEN.search(text)
    if match is None:
        out.problems.append(r"no \cot{...} block in the answer")
        out.patch, problems = find_patch(text)
        out.problems += problems
        return out
    before = text[:match.start()]
    end = _matching_brace(text, match.end())
    if end is None:
        # Unbalanced braces: the block runs up to the final fenced JSON (and its last "}" before that).
        fence = text.rfind("```", match.end())
        fence = text.rfind("```", match.end(), fence) if fence >= 0 else -1  # the opening fence of the last block
        stop = fence if fence > match.end() else len(text)
        body = text[match.end():stop].rstrip()
        body = body[:-1] if body.endswith("}") else body
        after = text[stop:]
    else:
        body, after = text[match.end():end], text[end + 1:]
    out.cot = body.strip() or None
    analysis = _ANALYSIS_HEAD.sub("", before.strip(), count=1).strip()
    out.analysis = analysis or (reasoning.strip() if reasoning and reasoning.strip() else None)
    if out.cot is None:
        out.problems.append(r"the \cot{...} block is empty")
    out.patch, problems = find_patch(after)
    if out.patch is None:
        out.problems += problems or [r"no final JSON patch after the \cot{...} block"]
    return out


def compare_to_truth(truth_json: str, answer: dict[str, Any]) -> str | None:
    """None when ``answer`` is value-identical to the ground truth (the name ignored), else why not."""
    from ...schema.validate import parse_patch, validate
    from ...synth.edits import diff_patches

    truth = parse_patch(json.loads(truth_json))
    candidate = {k: v for k, v in answer.items() if k != "name"}
    report = validate(candidate)
    if not report.valid or report.patch is None:
        first = report.problems[0].line() if report.problems else "invalid"
        more = f" (and {len(report.problems) - 1} more problems)" if len(report.problems) > 1 else ""
        return f"final JSON is not a valid patch: {first}{more}"
    changes = [c for c in diff_patches(truth, report.patch) if c.path != "/name"]
    if not changes:
        return None
    c = changes[0]
    more = f"; {len(changes)} values differ" if len(changes) > 1 else ""
    return (f"final JSON differs from ground truth at {c.path} (teacher {json.dumps(c.new)}, "
            f"truth {json.dumps(c.old)}){more}")


def _segment_line(seg: dict[str, Any]) -> str:
    label = seg.get("label", "?")
    rest = {k: v for k, v in seg.items() if k != "label" and v not in (None, [], {})}
    return f"{label}: {json.dumps(rest, separators=(',', ':'), sort_keys=True)}"


def _clip_report_text(data: dict[str, Any], audio: bytes) -> str:
    """The descriptor report of a stored evidence clip: its segment map plus its audio, described here."""
    import io

    import soundfile as sf

    from ...evals.evidence import evidence_report
    from ...synth.evidence import EvidenceClip

    x, sr = sf.read(io.BytesIO(audio), dtype="float32", always_2d=False)
    clip = EvidenceClip.model_validate({"sounding_note": data.get("note"), **data, "sample_rate": sr, "audio": x})
    clip.variants = {s.label: clip.segment_audio(s.label) for s in clip.segments if not s.skipped}
    return evidence_report(clip).text()


def evidence_text(map_json: str | None, audio: bytes | None = None) -> str | None:
    """A stored segment map as text: described from its clip when the audio is given, else its lines; None if empty.

    Reads ``synth.evidence.EvidenceClip`` JSON (what the renders part stores), an ``EvidenceReport``,
    or a bare list of segments.
    """
    from pydantic import ValidationError

    from ...evals.evidence import EvidenceReport

    if not map_json or not isinstance(map_json, str):
        return None
    try:
        data = json.loads(map_json)
    except ValueError:
        return None
    if isinstance(data, list):
        data = {"segments": data}
    if not isinstance(data, dict):
        return None
    if audio and isinstance(data.get("segments"), list):
        try:
            return _clip_report_text(data, audio)
        except (KeyError, TypeError, ValueError, RuntimeError):
            pass  # an unreadable clip: fall back to the map alone
    try:
        return EvidenceReport.model_validate(data).text()
    except ValidationError:
        pass
    segments = data.get("segments")
    if not isinstance(segments, list):
        return json.dumps(data, separators=(",", ":"), sort_keys=True)[:4000]
    lines = [_segment_line(s) for s in segments if isinstance(s, dict)]
    return "\n".join(lines) or None


def stored_evidence(request: "CotRequest") -> str | None:
    """The evidence text of a request's stored maps (muted, then isolated), or None."""
    parts = []
    for text_map, audio, head in ((request.evidence_off_map, request.evidence_off_audio, "Each operator muted (OFF):"),
                                  (request.evidence_on_map, request.evidence_on_audio, "Each operator isolated (ON):")):
        text = evidence_text(text_map, audio)
        if text:
            parts.append(text if text.startswith("Evidence") else f"{head}\n{text}")
    return "\n\n".join(parts) or None


class CotTeacher:
    """The source research's teacher behind an OpenAI-compatible endpoint."""

    def __init__(self, model: str, base_url: str | None = None, *, api_key: str | None = None,
                 timeout_s: float = 120.0, max_retries: int = 3, cache_dir: str | Path | None = None,
                 send_audio: bool = False, audio_format: str = "wav", compute_evidence: bool = True,
                 retry_base_s: float = 1.0, temperature: float | None = None, max_tokens: int | None = None):
        """Check the settings and make the client (no request is made here).

        ``send_audio``: also send the evidence clip (else the render) as ``input_audio``, for audio-capable
        teachers. ``compute_evidence``: render the evidence here when the build stored no segment map.
        """
        from .captions import check_audio_format
        from .endpoint import ChatEndpoint

        self.audio_format = check_audio_format(audio_format)
        self.endpoint = ChatEndpoint(model, base_url, api_key=api_key, timeout_s=timeout_s, max_retries=max_retries,
                                     retry_base_s=retry_base_s, cache_dir=cache_dir, namespace="cot",
                                     temperature=temperature, max_tokens=max_tokens)
        self.name = f"model:{self.endpoint.model}"
        self.send_audio = bool(send_audio)
        self.compute_evidence = bool(compute_evidence)
        self._schema: dict[str, Any] | None = None

    @property
    def schema(self) -> dict[str, Any]:
        """The patch JSON Schema the teacher is shown."""
        if self._schema is None:
            from ...schema.jsonschema import patch_json_schema

            self._schema = patch_json_schema()
        return self._schema

    def _evidence(self, request: CotRequest) -> tuple[str | None, bytes | None]:
        """The evidence text (given, or rendered here) and, when rendered here, the clip as WAV bytes."""
        if request.evidence:
            return request.evidence, None
        stored = stored_evidence(request)
        if stored or not self.compute_evidence:
            return stored, None
        from ...evals.evidence import render_evidence_report
        from .captions import audio_file

        report, audio = render_evidence_report(json.loads(request.patch), mode="off")
        return report.text(), (audio_file(audio, report.sample_rate) if self.send_audio else None)

    def messages(self, request: CotRequest) -> list[dict[str, Any]]:
        """The chat messages for one voice."""
        evidence, clip = self._evidence(request)
        text = teacher_user_text(caption=request.caption, schema=self.schema, patch_json=request.patch,
                                 evidence=evidence)
        content: Any = text
        audio = request.evidence_off_audio or request.evidence_on_audio or clip or request.audio
        if self.send_audio and audio is not None:
            from .captions import encode_audio

            content = [{"type": "text", "text": text},
                       {"type": "input_audio", "input_audio": {"data": encode_audio(audio, self.audio_format),
                                                               "format": self.audio_format}}]
        return [{"role": "system", "content": TEACHER_SYSTEM}, {"role": "user", "content": content}]

    def teach(self, request: CotRequest) -> CotResult:
        """Ask the teacher for one voice and keep its reasoning only if its JSON equals the ground truth."""
        out = CotResult(id=request.id, cot_source=self.name)
        answer, out.cot_error = self.endpoint.ask_prepared(
            lambda: self.messages(request), lambda err: f"cannot prepare the teacher's prompt: {str(err)[:300]}")
        if answer is None:
            return out
        out.cached = answer.cached
        parsed = parse_teacher_answer(answer.content, answer.reasoning)
        if parsed.patch is None or parsed.cot is None:
            cut = " (the answer was cut off at the token limit)" if answer.finish_reason == "length" else ""
            out.cot_error = "malformed answer: " + "; ".join(parsed.problems or ["nothing usable"]) + cut
            return out
        if re.search(r"```", parsed.cot):
            out.cot_error = r"malformed answer: the \cot{...} block holds a fenced code block"
            return out
        if _LEAK.search(parsed.cot):
            out.cot_error = r"the \cot{...} block mentions the given answer (it must reason as if it did not know it)"
            return out
        try:
            why = compare_to_truth(request.patch, parsed.patch)
        except ValueError as err:
            out.cot_error = f"the ground-truth patch is not valid: {str(err).splitlines()[0][:200]}"
            return out
        if why is not None:
            out.cot_error = why
            return out
        out.cot, out.cot_analysis = parsed.cot, parsed.analysis
        return out


def make_teacher(model: str, base_url: str | None = None, *, api_key: str | None = None, timeout_s: float = 120.0,
                 max_retries: int = 3, cache_dir: Path | None = None, send_audio: bool = False,
                 compute_evidence: bool = True, retry_base_s: float = 1.0) -> CotTeacher:
    """The CoT teacher at ``base_url`` serving ``model`` (there is no offline teacher)."""
    if model is None or not str(model).strip() or str(model).strip().lower() == "offline":
        raise ValueError("the chain-of-thought teacher needs a model: give the model name an OpenAI-compatible "
                         "endpoint serves (and its base URL); there is no offline teacher")
    return CotTeacher(str(model), base_url, api_key=api_key, timeout_s=timeout_s, max_retries=max_retries,
                      cache_dir=cache_dir, send_audio=send_audio, compute_evidence=compute_evidence,
                      retry_base_s=retry_base_s)


# --- the stage -----------------------------------------------------------------------------------------------


def _cot_table(results: list[CotResult]) -> Any:
    import pyarrow as pa

    cols = ("id", "cot", "cot_analysis", "cot_source", "cot_error")
    schema = pa.schema([(c, pa.string()) for c in cols])
    return pa.table({c: [getattr(r, c) for r in results] for c in cols}, schema=schema)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _bytes_or_none(value: Any) -> bytes | None:
    return bytes(value) if isinstance(value, (bytes, bytearray)) and value else None


def run_cot_stage(out_dir: Path, teacher: CotTeacher, *, workers: int = 4, progress: bool = True) -> StageReport:
    """Write the CoT part of every shard that has none yet (its captions part must exist); never raises per row."""
    workers = check_workers(workers)
    if not isinstance(getattr(teacher, "name", None), str) or not callable(getattr(teacher, "teach", None)):
        raise ValueError(f"teacher: found {type(teacher).__name__}, allowed a CotTeacher (make_teacher makes one)")
    out_dir = Path(out_dir)
    plan = plan_shards(out_dir, "cot", ["id", "name", "patch"])
    report = StageReport(stage="cot", shards_total=plan.shards_total,
                         shards_done_before=plan.shards_total - len(plan.pending))
    # The evidence clips are always read (their descriptors make the evidence text); the render only to be heard.
    binary = ["evidence_off", "evidence_on"] + (["audio"] if getattr(teacher, "send_audio", False) else [])
    for k in plan.pending:
        captions = read_part(out_dir, "captions", k, columns=["id", "caption"])
        if captions is None:
            report.add_error(f"shard {k}: no captions part yet ({part_path(out_dir, 'captions', k)}); "
                             "run the caption stage first")
            continue
        renders = chosen_renders(out_dir, k, columns=["evidence_off_map", "evidence_on_map"], binary_columns=binary)
        if renders is None:
            report.add_error(f"shard {k}: no renders part yet ({part_path(out_dir, 'renders', k)})")
            continue
        caption_of = {str(r["id"]): r["caption"] for r in captions.to_pylist()}
        results: list[CotResult | None] = []
        todo: list[tuple[int, CotRequest]] = []
        for row in plan.rows(k):
            rid = str(row["id"])
            render = renders.get(rid)
            caption = caption_of.get(rid)
            if render is not None and render.get("error"):
                results.append(CotResult(id=rid, cot_error=f"the render failed: {render['error']}"[:400]))
            elif render is not None and render.get("silent"):
                results.append(CotResult(id=rid, cot_error=SILENT_NOTE))
            elif not isinstance(caption, str) or not caption.strip():
                results.append(CotResult(id=rid, cot_error="no caption for this voice: nothing to reason from"))
            elif not isinstance(row.get("patch"), str):
                results.append(CotResult(id=rid, cot_error="the manifest row has no patch"))
            else:
                results.append(None)
                r = render or {}
                todo.append((len(results) - 1, CotRequest(
                    id=rid, caption=caption.strip(), patch=row["patch"],
                    evidence_off_map=_text_or_none(r.get("evidence_off_map")),
                    evidence_on_map=_text_or_none(r.get("evidence_on_map")),
                    evidence_off_audio=_bytes_or_none(r.get("evidence_off")),
                    evidence_on_audio=_bytes_or_none(r.get("evidence_on")),
                    audio=_bytes_or_none(r.get("audio")))))

        finish_shard(out_dir, k, report, results, todo, teacher.teach, column="cot", result_type=CotResult,
                     source=teacher.name, who="the teacher", nothing="no reasoning", silent_note=SILENT_NOTE,
                     table=_cot_table, workers=workers, progress=progress)
    return report
