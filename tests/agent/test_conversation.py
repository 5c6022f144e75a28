"""Conversation state: versions with diffs, undo/redo, the refinement message, rollback, saved files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from patchsmith.agent.conversation import Conversation, NothingToDo, write_outputs
from patchsmith.agent.loop import AgentError, AgentReply, Transcript
from patchsmith.agent.output_parsing import split_request
from patchsmith.schema.validate import parse_patch
from patchsmith.synth.wav import read_wav

REPO = Path(__file__).resolve().parents[2]
EPIANO = json.loads((REPO / "examples" / "epiano.json").read_text())["patch"]


def variant(**changes):
    p = copy.deepcopy(EPIANO)
    p.update(changes)
    return p


class StubAgent:
    """Stands in for ``Agent``: each run answers with the next scripted patch (or raises it)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.transcript = Transcript()
        self.sent: list[str] = []

    def run(self, messages):
        self.sent.append(messages[-1]["content"])
        answer = self.answers.pop(0)
        messages.append({"role": "assistant", "content": "ok"})
        if isinstance(answer, Exception):
            raise answer
        return AgentReply(text="done", patch=answer, turns=1)


def test_versions_diffs_undo_redo():
    agent = StubAgent(EPIANO, variant(feedback=EPIANO["feedback"] + 1 if EPIANO["feedback"] < 7 else 0),
                      variant(transpose=3))
    conv = Conversation(agent)
    first = conv.request("glassy electric piano").version
    assert first.number == 1 and first.changes == [] and conv.current == parse_patch(EPIANO)
    second = conv.request("more feedback").version
    assert [c["path"] for c in second.changes] == ["/feedback"]
    # The refinement carries the current patch itself, so a backend can edit exactly that patch.
    words, patch = split_request(agent.sent[1])
    assert words == "more feedback" and parse_patch(patch) == parse_patch(EPIANO)

    assert conv.undo().number == 1 and conv.current == parse_patch(EPIANO)
    with pytest.raises(NothingToDo):
        conv.undo()
    assert conv.redo().number == 2
    with pytest.raises(NothingToDo):
        conv.redo()
    conv.undo()
    third = conv.request("up a minor third").version
    # After an undo the model is sent the version the user went back to, and the redo branch is dropped.
    assert parse_patch(split_request(agent.sent[2])[1]) == parse_patch(EPIANO)
    assert third.number == 2 and len(conv.versions) == 2
    assert [c["path"] for c in third.changes] == ["/transpose"]
    kinds = [e["type"] for e in conv.transcript.entries]
    assert kinds.count("request") == 3 and "undo" in kinds and "redo" in kinds


def test_new_description_is_sent_without_the_current_patch():
    agent = StubAgent(EPIANO, variant(transpose=-12))
    conv = Conversation(agent)
    conv.request("epiano")
    version = conv.request("deep bass", new=True).version
    assert split_request(agent.sent[1]) == ("deep bass", None)
    assert version.number == 2


def test_unchanged_patch_or_no_patch_makes_no_version():
    agent = StubAgent(EPIANO, EPIANO, None)
    conv = Conversation(agent)
    conv.request("epiano")
    assert conv.request("keep it").version is None
    assert conv.request("what is FM?").version is None
    assert len(conv.versions) == 1


def test_failed_request_leaves_the_conversation_as_it_was():
    agent = StubAgent(EPIANO, AgentError("turn limit reached"))
    conv = Conversation(agent)
    conv.request("epiano")
    before = copy.deepcopy(conv.messages)
    with pytest.raises(AgentError):
        conv.request("brighter")
    assert conv.messages == before and len(conv.versions) == 1


def test_empty_request_and_nothing_to_save():
    conv = Conversation(StubAgent())
    with pytest.raises(ValueError):
        conv.request("   ")
    with pytest.raises(NothingToDo):
        conv.describe()
    with pytest.raises(NothingToDo):
        conv.write(Path("."))


def test_write_and_describe(tmp_path):
    conv = Conversation(StubAgent(EPIANO), note=64, velocity=90)
    conv.request("epiano")
    assert "OP1" in conv.describe()
    notes = conv.write(tmp_path)
    assert notes == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["patch.json", "sound.wav", "transcript.json", "voice.syx"]
    assert parse_patch(json.loads((tmp_path / "patch.json").read_text())) == parse_patch(EPIANO)
    audio, sr = read_wav(tmp_path / "sound.wav")
    assert sr == 48000 and len(audio) == 4 * 48000
    assert (tmp_path / "voice.syx").read_bytes()[:2] == b"\xf0\x43"
    assert json.loads((tmp_path / "transcript.json").read_text())["entries"][0]["type"] == "request"


def test_non_dx7_topology_writes_no_sysex(tmp_path):
    odd = copy.deepcopy(EPIANO)
    odd["modmatrix"] = [[0] * 6 for _ in range(6)]
    odd["modmatrix"][0][1] = odd["modmatrix"][0][2] = odd["modmatrix"][1][2] = 1  # not one of the 32
    odd["outmatrix"] = [1, 0, 0, 1, 1, 1]
    notes = write_outputs(tmp_path, parse_patch(odd))
    assert not (tmp_path / "voice.syx").exists() and notes and "voice.syx" in notes[0]
    assert (tmp_path / "patch.json").exists() and (tmp_path / "sound.wav").exists()


def test_old_requests_are_dropped_from_the_model_history():
    agent = StubAgent(*[variant(transpose=t) for t in range(6)])
    conv = Conversation(agent, keep_requests=3)
    for t in range(6):
        conv.request(f"request {t}")
        assert len([m for m in conv.messages if m["role"] == "user"]) == min(t + 1, 3)
    assert conv.messages[0]["role"] == "system"
    assert [split_request(m["content"])[0] for m in conv.messages if m["role"] == "user"] == [
        "request 3", "request 4", "request 5"]
    assert len(conv.versions) == 6  # the history of versions is kept whole
