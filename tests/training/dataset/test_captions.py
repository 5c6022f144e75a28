"""The caption stage: offline captions from descriptors, and an audio-language model over real HTTP."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patchsmith.agent.library import load_library
from patchsmith.training.dataset.captions import (
    OFFLINE_SOURCE,
    SILENT_NOTE,
    AudioModelCaptioner,
    CaptionRequest,
    CaptionResult,
    OfflineCaptioner,
    caption_from_descriptors,
    clean_caption,
    make_captioner,
    run_caption_stage,
)
from patchsmith.training.dataset.endpoint import ChatEndpoint, EndpointError
from patchsmith.training.dataset.endpoint_cache import EndpointCache, request_key
from patchsmith.training.dataset.stages import StageError

from .model_stage_fixture import Voice, silent_patch, wav_frames, write_build
from .scripted_endpoint import ScriptedEndpoint, input_audio, user_text

LIB = {e.id: e for e in load_library()}


def _voices() -> list[Voice]:
    return [Voice("EPIANO", LIB["ep_tine"].patch), Voice("BELL", LIB["bell_church"].patch),
            Voice("SILENT", silent_patch(LIB["organ_drawbar"].patch)),
            Voice("ORGAN", LIB["organ_drawbar"].patch, caption="Organ, given by the source research.",
                  caption_source="source-research"),
            Voice("SNARE", LIB["perc_snare"].patch)]


def _part(out: Path, stage: str, k: int) -> list[dict]:
    return pq.read_table(out / "stage" / stage / f"part-{k:05d}.parquet").to_pylist()


def _all(out: Path, stage: str) -> dict[str, dict]:
    rows = {}
    for f in sorted((out / "stage" / stage).glob("part-*.parquet")):
        rows.update({r["id"]: r for r in pq.read_table(f).to_pylist()})
    return rows


# --- offline -------------------------------------------------------------------------------------------------


def test_offline_stage_writes_every_shard_keeps_given_captions_and_resumes(tmp_path):
    voices = _voices()
    write_build(tmp_path, voices, shard_size=2)
    report = run_caption_stage(tmp_path, make_captioner(None), workers=2, progress=False)
    assert (report.shards_total, report.shards_done_before, report.shards_written, report.rows) == (3, 0, 3, 5)
    assert report.errors == 0, report.error_examples  # a silent voice is noted in its row, not an error
    table = pq.read_table(tmp_path / "stage" / "captions" / "part-00000.parquet")
    assert table.column_names == ["id", "caption", "caption_source", "caption_error"]
    assert all(str(t) == "string" for t in table.schema.types)
    rows = _all(tmp_path, "captions")
    assert list(rows) == [v.id for v in voices]  # manifest order, every voice once
    ep, bell, silent, organ, snare = (rows[v.id] for v in voices)
    # The instrument type comes first (the nearest library family), then timbre, then envelope words.
    assert ep["caption"].startswith("Electric piano, which has a ") and ep["caption_source"] == OFFLINE_SOURCE
    assert bell["caption"].startswith("Bell, which has a ") and "attack" in bell["caption"]
    assert snare["caption"].startswith("Percussion, which has a ") and "quick decay" in snare["caption"]
    assert silent["caption"] is None and silent["caption_error"] == SILENT_NOTE
    assert organ == {"id": voices[3].id, "caption": "Organ, given by the source research.",
                     "caption_source": "source-research", "caption_error": None}

    # Resume: every part exists, nothing is redone; a lost part is rewritten with the same bytes.
    again = run_caption_stage(tmp_path, make_captioner("offline"), progress=False)
    assert (again.shards_done_before, again.shards_written, again.rows) == (3, 0, 0)
    first = (tmp_path / "stage" / "captions" / "part-00001.parquet").read_bytes()
    (tmp_path / "stage" / "captions" / "part-00001.parquet").unlink()
    redo = run_caption_stage(tmp_path, OfflineCaptioner(), workers=1, progress=False)
    assert (redo.shards_done_before, redo.shards_written) == (2, 1)
    assert (tmp_path / "stage" / "captions" / "part-00001.parquet").read_bytes() == first
    assert not list((tmp_path / "stage" / "captions").glob("*.tmp"))


def test_recaption_replaces_given_captions_and_a_user_library_adds_families(tmp_path):
    voices = _voices()[3:4]
    write_build(tmp_path, voices, shard_size=2)
    run_caption_stage(tmp_path, OfflineCaptioner(), progress=False, recaption=True)
    row = _part(tmp_path, "captions", 0)[0]
    assert row["caption_source"] == OFFLINE_SOURCE and row["caption"].startswith("Organ, which has a ")
    # A library of one patch, in a family of its own: the nearest patch is that one.
    only = LIB["organ_drawbar"].model_copy(update={"id": "mine", "family": "tonewheel thing"})
    caption = OfflineCaptioner([only]).caption(CaptionRequest(id="x", patch=json.dumps(only.patch.to_dict()),
                                                              hold_s=0.3, release_s=0.1, sample_rate=16000))
    assert caption.caption.startswith("Tonewheel thing, which has a ")


def test_a_voice_name_that_names_an_instrument_narrows_the_match():
    organ = json.dumps(LIB["organ_drawbar"].patch.to_dict())
    captioner = OfflineCaptioner()
    short = {"hold_s": 0.384, "release_s": 0.216, "sample_rate": 16000}  # as the fixture builds render: fast
    named = [captioner.caption(CaptionRequest(id="x", name=name, patch=organ, **short)).caption for name in
             ("BRASS   1 ", "STRINGS 2", "INIT VOICE", None, "VOICE   1 ")]
    assert named[0].startswith("Brass, which has a ")
    assert named[1].startswith("Strings, which have a ")  # the verb agrees with a plural instrument
    assert named[2].startswith("Organ, which has a ") and named[3] == named[2]
    assert named[4].startswith("Choir, which has a ")


def test_caption_words_follow_the_library_thresholds():
    d = {"centroid_hz": 1000.0, "brightness": 0.3, "inharmonicity": 0.3, "beating": 0.0, "attack_ms": 2.0,
         "decay20_ms": 300.0, "sustain_db": None, "release_ms": None, "pitch_stability_cents": 9.0}
    assert caption_from_descriptors("bell", d, 60) == ("Bell, which has a bright, metallic timbre with vibrato, "
                                                        "a sharp, percussive attack and a quick decay.")
    assert "vibrato" not in caption_from_descriptors("bell", d, 60, lfo_pitch=False)  # no LFO pitch: no vibrato
    pad = d | {"centroid_hz": 270.0, "brightness": 0.0, "inharmonicity": 0.0, "attack_ms": 400.0, "decay20_ms": None,
               "sustain_db": -2.0, "release_ms": 1500.0, "beating": 0.2}
    assert caption_from_descriptors("pads", pad, 60, lfo_pitch=False) == (
        "Pads, which have a dark, pure, shimmering timbre, a slow, swelling attack, a steady sustain and a long "
        "release.")


def test_offline_captioner_reports_bad_rows_instead_of_raising():
    bad = OfflineCaptioner().caption(CaptionRequest(id="x", patch='{"ol": [1, 2]}'))
    assert bad.caption is None and bad.caption_error.startswith("the manifest patch is not valid: ")


def test_missing_renders_part_is_an_error_in_the_report_not_a_part(tmp_path):
    write_build(tmp_path, _voices()[:2], shard_size=1)
    (tmp_path / "stage" / "renders" / "part-00001.parquet").unlink()
    report = run_caption_stage(tmp_path, OfflineCaptioner(), progress=False)
    assert (report.shards_written, report.errors) == (1, 1)
    assert "no renders part yet" in report.error_examples[0]
    assert not (tmp_path / "stage" / "captions" / "part-00001.parquet").exists()
    with pytest.raises(StageError, match="does not exist"):
        run_caption_stage(tmp_path / "nowhere", OfflineCaptioner(), progress=False)
    with pytest.raises(ValueError, match="workers: found 0"):
        run_caption_stage(tmp_path, OfflineCaptioner(), workers=0, progress=False)


def test_a_captioner_that_raises_answers_junk_or_nothing_leaves_an_error_in_that_row(tmp_path):
    voices = [v for v in _voices() if v.caption is None and v.name != "SILENT"]
    write_build(tmp_path, voices, shard_size=3)
    behaviour = {voices[0].id: "raise", voices[1].id: "junk", voices[2].id: "empty"}

    class Unruly:
        name, needs_audio = "unruly", False

        def caption(self, request):
            if behaviour[request.id] == "raise":
                raise RuntimeError("boom")
            return "a caption, but a string" if behaviour[request.id] == "junk" else CaptionResult(id=request.id)

    report = run_caption_stage(tmp_path, Unruly(), workers=2, progress=False)
    rows = _all(tmp_path, "captions")
    assert [rows[v.id]["caption_error"] for v in voices] == [
        "the captioner failed: RuntimeError: boom", "the captioner returned str, not a CaptionResult",
        "the captioner gave no caption and no reason"]
    assert [rows[v.id]["caption_source"] for v in voices] == ["unruly", "unruly", None]
    assert (report.shards_written, report.rows, report.errors) == (1, 3, 3)


# --- with a model over HTTP ----------------------------------------------------------------------------------


def test_clean_caption_reads_what_models_write():
    assert clean_caption('Caption: "Bell, which has a bright timbre."') == ("Bell, which has a bright timbre.", None)
    assert clean_caption("<think>hmm</think>\n\nOrgan, which is warm") == ("Organ, which is warm.", None)
    assert clean_caption("**Caption:**\nPad, which swells slowly.")[0] == "Pad, which swells slowly."
    assert clean_caption("Here is the caption:\n\n'Harp, which is plucked.'\nMore.")[0] == "Harp, which is plucked."
    assert clean_caption("")[1] == "malformed caption: the answer is empty"
    assert clean_caption("...")[1].startswith("malformed caption: no words")
    assert "cut off" in clean_caption("Bass, which has", "length")[1]
    assert "at most 600" in clean_caption("Bell " + "very " * 200)[1]


CAPTIONS = {0: "Electric piano, which has a warm, glassy tone and a long decay.",
            1: "Bell, which has a bright, metallic timbre with a long, ringing decay."}


def _responder(frames_to_index: dict[int, int], hits: dict[int, int]):
    """Answers by which voice it hears: 0 good, 1 503 twice then good, 2 a 400, 3 empty (malformed)."""
    lock = threading.Lock()

    def respond(body, attempt):
        (audio,) = input_audio(body)
        frames, rate, fmt = wav_frames(audio["data"])
        assert (audio["format"], fmt, rate) == ("wav", "WAV", 16000)
        assert "instrument type first" in user_text(body)
        i = frames_to_index[frames]
        with lock:
            hits[i] = hits.get(i, 0) + 1
        if i == 0:
            return {"content": CAPTIONS[0]}
        if i == 1:
            return {"status": 503, "error": "warming up"} if attempt <= 2 else {"content": f'"{CAPTIONS[1]}"'}
        if i == 2:
            return {"status": 400, "error": "audio too long for this model"}
        return {"content": "   "}
    return respond


def test_model_captions_retry_record_errors_and_come_back_from_the_cache(tmp_path):
    voices = [v for v in _voices() if v.name != "SILENT"]
    voices[2] = Voice("ORGAN", LIB["organ_drawbar"].patch)  # no given caption: it is asked for
    out, cache = tmp_path / "out", tmp_path / "cache"
    index = write_build(out, voices, shard_size=3)
    hits: dict[int, int] = {}
    with ScriptedEndpoint(_responder(index, hits)) as ep:
        captioner = make_captioner("audio-model", ep.url, cache_dir=cache, retry_base_s=0.01, max_retries=3)
        report = run_caption_stage(out, captioner, workers=3, progress=False)
        rows = _all(out, "captions")
        assert (report.shards_written, report.rows, report.errors) == (2, 4, 2)
        good, flaky, organ, snare = (rows[v.id] for v in voices)
        assert good == {"id": voices[0].id, "caption": CAPTIONS[0], "caption_source": "model:audio-model",
                        "caption_error": None}
        assert flaky["caption"] == CAPTIONS[1] and flaky["caption_error"] is None  # quotes stripped
        assert organ["caption"] is None and "HTTP 400: audio too long" in organ["caption_error"]
        assert snare["caption"] is None and snare["caption_error"] == "malformed caption: the answer is empty"
        assert hits == {0: 1, 1: 3, 2: 1, 3: 1}  # 503 retried twice; a 400 is final at once
        assert all(r["model"] == "audio-model" for r in ep.requests)
        sent = len(ep.requests)

        # Resume in the same folder: nothing to do, no request.
        assert run_caption_stage(out, captioner, progress=False).shards_written == 0
        # A fresh build with the same cache: every answer that came back (even the empty one) is reused;
        # only the 400 is asked again.
        fresh = tmp_path / "fresh"
        shutil.copytree(out / "stage", fresh / "stage", ignore=shutil.ignore_patterns("captions"))
        run_caption_stage(fresh, make_captioner("audio-model", ep.url, cache_dir=cache), progress=False)
        assert len(ep.requests) == sent + 1 and hits[2] == 2
        assert _all(fresh, "captions") == rows
    assert len(EndpointCache(cache)) == 3


def test_timeouts_connection_errors_and_unusable_bodies_are_row_errors(tmp_path):
    voices = _voices()[:2]
    out = tmp_path / "out"
    index = write_build(out, voices, shard_size=2)

    def respond(body, attempt):
        frames, _, _ = wav_frames(input_audio(body)[0]["data"])
        return {"sleep": 5.0} if index[frames] == 0 else {"raw": "<html>not a completion</html>"}

    with ScriptedEndpoint(respond) as ep:
        captioner = AudioModelCaptioner("m", ep.url, timeout_s=0.3, max_retries=1, retry_base_s=0.01)
        report = run_caption_stage(out, captioner, workers=2, progress=False)
        assert len(ep.requests) == 4  # each twice (one retry)
        url = ep.url
    rows = _all(out, "captions")
    slow, bad = (rows[v.id] for v in voices)
    assert slow["caption_error"] == f"m at {url}: no answer within 0.3 s after 2 attempts"
    assert bad["caption"] is None and "unusable answer" in bad["caption_error"]
    assert report.errors == 2 and len(report.error_examples) == 2
    # Nothing listens any more: a connection error, retried, then recorded.
    (out / "stage" / "captions" / "part-00000.parquet").unlink()
    run_caption_stage(out, captioner, progress=False)
    assert all("cannot connect" in r["caption_error"] for r in _all(out, "captions").values())


def test_a_429_waits_for_retry_after_and_flac_can_be_sent(tmp_path):
    voices = _voices()[:1]
    write_build(tmp_path, voices, shard_size=1)

    def respond(body, attempt):
        assert input_audio(body)[0]["format"] == "flac"
        assert wav_frames(input_audio(body)[0]["data"])[2] == "FLAC"
        if attempt == 1:
            return {"status": 429, "error": "slow down", "headers": {"Retry-After": "0.05"}}
        return {"content": "Piano, which is bright."}

    with ScriptedEndpoint(respond) as ep:
        captioner = AudioModelCaptioner("m", ep.url, audio_format="flac", retry_base_s=0.001)
        run_caption_stage(tmp_path, captioner, progress=False)
        assert len(ep.requests) == 2
    assert _part(tmp_path, "captions", 0)[0]["caption"] == "Piano, which is bright."


def test_settings_are_checked_with_what_is_allowed():
    with pytest.raises(ValueError, match="audio_format: found 'mp3'"):
        AudioModelCaptioner("m", "http://127.0.0.1:9/v1", audio_format="mp3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_retries: found -1"):
        ChatEndpoint("m", "http://127.0.0.1:9/v1", max_retries=-1)
    with pytest.raises(ValueError, match="model: found an empty name"):
        ChatEndpoint(" ", "http://127.0.0.1:9/v1")
    assert isinstance(make_captioner(None), OfflineCaptioner)
    assert make_captioner("qwen-audio", "http://127.0.0.1:9/v1").name == "model:qwen-audio"
    with pytest.raises(EndpointError, match="cannot connect"):
        ChatEndpoint("m", "http://127.0.0.1:9/v1", max_retries=0).ask([{"role": "user", "content": "hi"}])


def test_cache_keys_are_stable_and_entries_survive_threads_and_damage(tmp_path):
    a = request_key("caption", {"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert a == request_key("caption", {"messages": [{"role": "user", "content": "x"}], "model": "m"})
    assert a != request_key("cot", {"model": "m", "messages": [{"role": "user", "content": "x"}]})
    cache = EndpointCache(tmp_path / "c")
    assert cache.get(a) is None and len(cache) == 0
    threads = [threading.Thread(target=cache.put, args=(a, {"content": f"answer {i}"})) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get(a)["content"].startswith("answer ") and len(cache) == 1
    cache.path(a).write_text("{broken", encoding="utf-8")
    assert cache.get(a) is None
    with pytest.raises(ValueError, match="cache key"):
        cache.path("../../etc")


def test_audio_stored_as_files_is_read_from_inside_the_build_folder_only(tmp_path):
    voices = _voices()[:2]
    out = tmp_path / "out"
    write_build(out, voices, shard_size=2)
    part = out / "stage" / "renders" / "part-00000.parquet"
    table = pq.read_table(part)
    rows = table.to_pylist()
    (tmp_path / "outside.flac").write_bytes(rows[1]["audio"]["bytes"])
    for i, r in enumerate(rows):  # the builder's --audio files layout: bytes null, path relative to OUT
        rel = Path("audio") / r["render_id"][:2] / f"{r['render_id']}.flac"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(r["audio"]["bytes"])
        r["audio"] = {"bytes": None, "path": "../outside.flac" if i == 3 else rel.as_posix()}
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), part)
    with ScriptedEndpoint(lambda body, attempt: {"content": "Tone, which is plain."}) as ep:
        run_caption_stage(out, AudioModelCaptioner("m", ep.url), progress=False)
        assert len(ep.requests) == 1
    got = _part(out, "captions", 0)
    assert got[0]["caption"] == "Tone, which is plain."
    assert got[1]["caption"] is None
    assert got[1]["caption_error"] == "cannot read the render's audio: no audio to caption"
