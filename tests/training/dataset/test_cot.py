"""The CoT stage: the teacher's prompt, parsing its answer, the value-identity check, over real HTTP."""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from patchsmith.agent.library import load_library
from patchsmith.schema.compact import dumps_compact
from patchsmith.training.dataset.cot import (
    SILENT_NOTE,
    CotRequest,
    compare_to_truth,
    make_teacher,
    parse_teacher_answer,
    run_cot_stage,
)

from .model_stage_fixture import Voice, silent_patch, wav_frames, write_build, write_captions
from .scripted_endpoint import ScriptedEndpoint, input_audio, user_text

LIB = {e.id: e for e in load_library()}
TRUTH = dumps_compact(LIB["ep_tine"].patch)


def _answer(patch_json: str, cot: str = "A tine piano wants a bright modulator on a sine carrier {ratio 14}.",
            analysis: str = "Analysis: OP2 is the tine.") -> str:
    return f"{analysis}\n\n\\cot{{{cot}}}\n\n```json\n{patch_json}\n```\n"


# --- parsing and the identity check -----------------------------------------------------------------------------


def test_parse_teacher_answer_splits_analysis_cot_and_json():
    parsed = parse_teacher_answer(_answer(TRUTH))
    assert parsed.analysis == "OP2 is the tine."  # the heading is not part of it
    assert parsed.cot == "A tine piano wants a bright modulator on a sine carrier {ratio 14}."
    assert parsed.patch == json.loads(TRUTH) and parsed.problems == []
    # A reasoning model's think block and the server's reasoning field stand in for a missing analysis.
    parsed = parse_teacher_answer("<think>first thoughts</think>\n" + _answer(TRUTH, analysis=""))
    assert parsed.analysis == "first thoughts"
    assert parse_teacher_answer(_answer(TRUTH, analysis=""), reasoning="server side").analysis == "server side"
    # An unbalanced brace inside the block: it runs to the final JSON block.
    parsed = parse_teacher_answer(f"\\cot{{choose {{ ratio 14}}\n```json\n{TRUTH}\n```")
    assert parsed.cot == "choose { ratio 14" and parsed.patch is not None
    assert parse_teacher_answer(f"```json\n{TRUTH}\n```").problems == [r"no \cot{...} block in the answer"]
    assert parse_teacher_answer("\\cot{fine} and no json").problems == [
        r"no final JSON patch after the \cot{...} block"]
    assert "does not parse" in parse_teacher_answer("\\cot{x}\n```json\n{\"ol\": [1,\n```").problems[0]
    assert parse_teacher_answer(None).problems


def test_value_identity_ignores_the_name_and_omitted_defaults_but_nothing_else():
    truth = json.loads(TRUTH)
    assert compare_to_truth(TRUTH, truth) is None
    assert compare_to_truth(TRUTH, {**truth, "name": "Something much too long"}) is None
    assert compare_to_truth(TRUTH, {k: v for k, v in truth.items() if k != "name"}) is None
    full = LIB["ep_tine"].patch.to_dict(full=True)  # every neutral full-voice key written out: same values
    assert compare_to_truth(TRUTH, full) is None
    wrong = json.loads(TRUTH)
    wrong["eg_rate"][2][1] = (wrong["eg_rate"][2][1] + 1) % 100
    assert compare_to_truth(TRUTH, wrong) == (f"final JSON differs from ground truth at /eg_rate/2/1 (teacher "
                                              f"{wrong['eg_rate'][2][1]}, truth {truth['eg_rate'][2][1]})")
    wrong["feedback"] = (truth["feedback"] + 1) % 8
    assert compare_to_truth(TRUTH, wrong).endswith("; 2 values differ")
    assert compare_to_truth(TRUTH, {**truth, "ol": [1.5] * 6}).startswith(
        "final JSON is not a valid patch: /ol/0: found 1.5")
    assert compare_to_truth(TRUTH, {**truth, "lfo": {**full["lfo"], "speed": full["lfo"]["speed"] + 1}}) \
        .startswith("final JSON differs from ground truth at /lfo/speed")


def test_make_teacher_needs_a_model():
    with pytest.raises(ValueError, match="needs a model"):
        make_teacher(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="there is no offline teacher"):
        make_teacher("offline", "http://127.0.0.1:9/v1")
    assert make_teacher("teacher-x", "http://127.0.0.1:9/v1").name == "model:teacher-x"


# --- the stage over HTTP ----------------------------------------------------------------------------------------


def _voices() -> list[Voice]:
    return [Voice("GOOD", LIB["ep_tine"].patch), Voice("WRONG", LIB["bell_church"].patch),
            Voice("MALFORMED", LIB["perc_snare"].patch), Voice("FLAKY", LIB["organ_drawbar"].patch),
            Voice("LEAK", LIB["pad_warm"].patch), Voice("NOCAP", LIB["bass_slap"].patch),
            Voice("SILENT", silent_patch(LIB["lead_saw"].patch))]


def _prompt_parts(body: dict) -> tuple[str, str]:
    text = user_text(body)
    caption = text.split("(the student's prompt):\n", 1)[1].split("\n\n", 1)[0]
    truth = re.search(r"ground-truth patch \(the answer the reasoning must reach\):\n```json\n(.*?)\n```", text,
                      re.DOTALL).group(1)
    return caption, truth


def _teacher(counts: dict[str, int]):
    lock = threading.Lock()

    def respond(body, attempt):
        caption, truth = _prompt_parts(body)
        kind = caption.split()[0]
        with lock:
            counts[kind] = counts.get(kind, 0) + 1
        if kind == "GOOD":
            return {"content": _answer(truth)}
        if kind == "WRONG":
            patch = json.loads(truth)
            patch["ol"][0] = (patch["ol"][0] + 1) % 100
            return {"content": _answer(json.dumps(patch))}
        if kind == "MALFORMED":
            return {"content": "I think the answer is the JSON above.", "finish_reason": "length"}
        if kind == "FLAKY":
            return {"status": 502, "error": "bad gateway"} if attempt == 1 else {"content": _answer(truth)}
        if kind == "LEAK":
            return {"content": _answer(truth, cot="Copying the ground truth patch.")}
        raise AssertionError(f"unexpected request for {kind}")
    return respond


def _rows(out: Path) -> dict[str, dict]:
    rows = {}
    for f in sorted((out / "stage" / "cot").glob("part-*.parquet")):
        rows.update({r["id"]: r for r in pq.read_table(f).to_pylist()})
    return rows


def test_cot_stage_keeps_only_exact_answers_and_reruns_from_the_cache(tmp_path):
    voices = _voices()
    out, cache = tmp_path / "out", tmp_path / "cache"
    write_build(out, voices, shard_size=3, evidence=True)
    write_captions(out, {v.id: f"{v.name} sound, which has a test timbre." for v in voices if v.name != "NOCAP"},
                   voices, shard_size=3)
    counts: dict[str, int] = {}
    with ScriptedEndpoint(_teacher(counts)) as ep:
        teacher = make_teacher("teacher", ep.url, cache_dir=cache, retry_base_s=0.01)
        report = run_cot_stage(out, teacher, workers=3, progress=False)
        assert (report.shards_total, report.shards_written, report.rows) == (3, 3, 7)
        assert counts == {"GOOD": 1, "WRONG": 1, "MALFORMED": 1, "FLAKY": 2, "LEAK": 1}

        # What the teacher was sent: the caption, the schema, the ground truth and the evidence, described.
        good = next(b for b in ep.requests if _prompt_parts(b)[0].startswith("GOOD"))
        assert [m["role"] for m in good["messages"]] == ["system", "user"]
        text = user_text(good)
        assert _prompt_parts(good)[1] == TRUTH
        assert '"$schema":"https://json-schema.org/draft/2020-12/schema"' in text
        assert "Evidence (each operator muted)" in text and "FULL [0-0.5 s]: peak" in text
        assert re.search(r"OP\d_OFF \((carrier|modulator).*\[[\d.]+-[\d.]+ s\]: level [+-]\d", text)
        assert r"\cot{...}" in text and "as if you did NOT know" in text
        assert isinstance(good["messages"][1]["content"], str)  # a text-only teacher gets no audio

        table = pq.read_table(out / "stage" / "cot" / "part-00000.parquet")
        assert table.column_names == ["id", "cot", "cot_analysis", "cot_source", "cot_error"]
        rows = _rows(out)
        got = {v.name: rows[v.id] for v in voices}
        assert got["GOOD"] == {"id": voices[0].id, "cot": "A tine piano wants a bright modulator on a sine carrier "
                               "{ratio 14}.", "cot_analysis": "OP2 is the tine.", "cot_source": "model:teacher",
                               "cot_error": None}
        assert got["FLAKY"]["cot"] is not None and got["FLAKY"]["cot_error"] is None
        assert got["WRONG"]["cot"] is None and got["WRONG"]["cot_analysis"] is None
        assert got["WRONG"]["cot_error"].startswith("final JSON differs from ground truth at /ol/0 (teacher ")
        assert got["MALFORMED"]["cot_error"] == (r"malformed answer: no \cot{...} block in the answer "
                                                 "(the answer was cut off at the token limit)")
        assert "mentions the given answer" in got["LEAK"]["cot_error"]
        assert got["NOCAP"]["cot_error"].startswith("no caption for this voice")
        assert got["SILENT"]["cot_error"] == SILENT_NOTE and got["SILENT"]["cot_source"] is None
        assert report.errors == 4 and len(report.error_examples) == 4  # the silent voice is not an error
        sent = len(ep.requests)

        # Resume: nothing to do. A fresh folder with the same cache: every answer comes from it.
        assert run_cot_stage(out, teacher, progress=False).shards_written == 0
        fresh = tmp_path / "fresh"
        shutil.copytree(out / "stage", fresh / "stage", ignore=shutil.ignore_patterns("cot"))
        run_cot_stage(fresh, make_teacher("teacher", ep.url, cache_dir=cache), workers=2, progress=False)
        assert len(ep.requests) == sent
        assert _rows(fresh) == rows


def test_evidence_is_computed_when_the_build_stored_none_and_audio_goes_to_audio_teachers(tmp_path):
    voices = [Voice("GOOD", LIB["ep_tine"].patch)]
    frames = write_build(tmp_path, voices, shard_size=1, evidence=False)
    write_captions(tmp_path, {voices[0].id: "GOOD piano."}, voices, shard_size=1)
    seen: list[dict] = []

    def respond(body, attempt):
        seen.append(body)
        return {"content": _answer(_prompt_parts(body)[1])}

    with ScriptedEndpoint(respond) as ep:
        run_cot_stage(tmp_path, make_teacher("t", ep.url), progress=False)
        assert "Evidence (each operator muted), 4 s segments" in user_text(seen[-1])
        (tmp_path / "stage" / "cot" / "part-00000.parquet").unlink()
        run_cot_stage(tmp_path, make_teacher("t", ep.url, compute_evidence=False), progress=False)
        assert "Operator evidence: none available for this patch." in user_text(seen[-1])
        (tmp_path / "stage" / "cot" / "part-00000.parquet").unlink()
        run_cot_stage(tmp_path, make_teacher("t", ep.url, compute_evidence=False, send_audio=True), progress=False)
        (audio,) = input_audio(seen[-1])
        assert wav_frames(audio["data"])[0] in frames  # no evidence clip stored: the note-60 render is heard
    assert _rows(tmp_path)[voices[0].id]["cot"] is not None


def test_a_shard_without_captions_waits_and_bad_requests_are_row_errors(tmp_path):
    voices = _voices()[:2]
    write_build(tmp_path, voices, shard_size=1)
    write_captions(tmp_path, {voices[0].id: "GOOD piano."}, voices[:1], shard_size=1)
    with ScriptedEndpoint(lambda body, attempt: {"status": 401, "error": "bad key"}) as ep:
        report = run_cot_stage(tmp_path, make_teacher("t", ep.url, compute_evidence=False), progress=False)
        assert len(ep.requests) == 1  # 401 is final
    assert (report.shards_written, report.errors) == (1, 2)
    assert "no captions part yet" in report.error_examples[1]
    assert not (tmp_path / "stage" / "cot" / "part-00001.parquet").exists()
    assert "HTTP 401: bad key" in _rows(tmp_path)[voices[0].id]["cot_error"]
    with pytest.raises(ValueError, match="workers: found 'many'"):
        run_cot_stage(tmp_path, make_teacher("t", "http://127.0.0.1:9/v1"), workers="many")  # type: ignore[arg-type]


def test_teacher_prompt_for_a_request_is_deterministic():
    # The evidence rendered on the fly must come out the same every time, or the cache would never hit.
    teacher = make_teacher("t", "http://127.0.0.1:9/v1")
    request = CotRequest(id="x", caption="Electric piano.", patch=TRUTH)
    first, again = teacher.messages(request), make_teacher("t", "http://127.0.0.1:9/v1").messages(request)
    assert "OP2_OFF" in first[1]["content"]
    assert first == again and teacher.endpoint.cache_key(first) == teacher.endpoint.cache_key(again)
