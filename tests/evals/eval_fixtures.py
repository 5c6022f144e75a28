"""Project-made evaluation data: a tiny source-research CSV pair written from ``examples/*.json``.

The runners' tests use these (they always exist) and, when present, the real train captions of
``../shared/data/captions``. Helpers for scripted OpenAI-compatible models that answer every caption
with its ground-truth patch, need one correction, or never call the tool.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from patchsmith.examples import load_examples
from patchsmith.schema.source_research import export_source_dict, import_source_dict

FAST_RENDER = ("--hold-s", "0.6", "--release-s", "0.3")
SHORT = {"notes": [60], "hold_s": 0.5, "release_s": 0.2}  # what the scripted models ask the render tool for


def write_source_csvs(folder: Path, count: int = 4) -> tuple[Path, Path, dict[str, dict[str, Any]]]:
    """(captions CSV, patch CSV, {caption: canonical patch}) for the first ``count`` examples, ids 100, 101, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    captions, patches = folder / "DX7_TINY_captions.csv", folder / "DX7_TINY.csv"
    truth: dict[str, dict[str, Any]] = {}
    with open(captions, "w", newline="", encoding="utf-8") as fc, open(patches, "w", newline="", encoding="utf-8") as fp:
        wc = csv.writer(fc)
        wp = csv.writer(fp)
        wc.writerow(["", "id", "wav_path", "name", "caption"])
        wp.writerow(["", "index", "patch_number", "name", "patch_data", "file_path", "syx_file", "has_fixed_freqs",
                     "id", "wav_path", "inaudible"])
        for k, ex in enumerate(load_examples()[:count]):
            pid = str(100 + k)
            caption = ex.captions[0]
            data = export_source_dict(ex.patch)
            data["name"] = ex.patch.name or ex.key[:10]
            wc.writerow([k, pid, f"tiny/{pid}.wav", ex.key, caption])
            wp.writerow([k, k, k, ex.key, repr(data), "tiny/bank.syx", "bank.syx", data["has_fixed_freq"], pid,
                         f"tiny/{pid}.wav", False])
            truth[caption] = import_source_dict(data).to_dict()  # the 12 core keys, as the CSV holds them
    return captions, patches, truth


def _caption(body: dict[str, Any]) -> str:
    users = [m for m in body["messages"] if m.get("role") == "user"]
    return users[0]["content"] if users else ""


def _last(body: dict[str, Any]) -> dict[str, Any]:
    return body["messages"][-1]


def correct_model(truth: dict[str, dict[str, Any]]) -> Any:
    """A model that renders each caption's ground-truth patch, then answers."""
    def turn(body: dict[str, Any]) -> dict[str, Any]:
        if _last(body).get("role") == "tool":
            return {"content": "Made it."}
        return {"tool_calls": [("render_patch", {"patch": truth[_caption(body)], **SHORT})]}

    return turn


def correcting_model(truth: dict[str, dict[str, Any]]) -> Any:
    """A model whose first patch is out of range; it fixes it after the tool error, then answers."""
    def turn(body: dict[str, Any]) -> dict[str, Any]:
        last = _last(body)
        if last.get("role") == "tool":
            if json.loads(last["content"]).get("ok"):
                return {"content": "Fixed and made it."}
            return {"tool_calls": [("render_patch", {"patch": truth[_caption(body)], **SHORT})]}
        bad = json.loads(json.dumps(truth[_caption(body)]))
        bad["ol"][0] = 150
        return {"tool_calls": [("render_patch", {"patch": bad, **SHORT})]}

    return turn


def chatty_model() -> Any:
    """A model that never calls the tool."""
    return lambda body: {"content": "A warm sound would need a sine carrier; I will not call any tool."}


def zeroshot_model(truth: dict[str, dict[str, Any]]) -> Any:
    """A text model that answers the zero-shot prompt with the patch as a fenced JSON block."""
    from patchsmith.schema.validate import parse_patch

    def turn(body: dict[str, Any]) -> dict[str, Any]:
        prompt = _caption(body)
        caption = prompt.rsplit("### Prompt: ", 1)[-1]
        core = parse_patch(truth[caption]).core()
        return {"content": "Here it is.\n```json\n" + json.dumps(core) + "\n```"}

    return turn
