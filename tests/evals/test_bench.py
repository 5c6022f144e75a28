"""Bench splits (id lists only, hashed), the versioned result schema, and the leaderboard row."""

from __future__ import annotations

import csv
import json

import jsonschema
import pytest

from patchsmith.evals.bench import (SCHEMA_FILE, SCHEMA_VERSION, BenchResult, SplitError, bench_json_schema,
                                    build_result, ids_sha256, leaderboard_header, leaderboard_row, load_split,
                                    public_url, schema_text, split_names)
from patchsmith.evals.runner import EvalRun, ItemRecord, RunConfig, Stat
from patchsmith.evals.systems import RenderSpec

from ..conftest import CAPTIONS, REPO, need

SPLIT_KEYS = {"split", "version", "description", "selection", "data", "format", "id_column", "count", "ids_sha256", "ids"}


def test_the_shipped_splits_are_id_lists_with_matching_hashes():
    assert set(split_names()) >= {"bench-v1", "source-test", "dev-v1"}
    for name in split_names():
        split = load_split(name)
        raw = json.loads((REPO / "evals" / "splits" / f"{name}.json").read_text())
        assert set(raw) == SPLIT_KEYS  # ids and documentation, never captions or patches
        assert all(isinstance(i, str) and i.isdigit() for i in split.ids)
        assert split.ids_sha256 == ids_sha256(split.ids) and split.count == len(split.ids)
    bench, test = load_split("bench-v1"), load_split("source-test")
    assert bench.count == 50 and set(bench.ids) <= set(test.ids) and test.count == 100
    assert set(load_split("dev-v1").ids).isdisjoint(test.ids)


def test_the_held_out_splits_are_disjoint_from_the_train_csv():
    folder = need(CAPTIONS)
    with open(folder / "DX7_YAMAHA_train.csv", newline="", encoding="utf-8") as f:
        train = {r["id"] for r in csv.DictReader(f)}
    assert train.isdisjoint(load_split("source-test").ids)
    assert set(load_split("dev-v1").ids) <= train
    assert len(train) + len(load_split("source-test").ids) == 1058  # ids 0..1057: train + the held-out 100


def test_a_changed_or_unknown_split_is_refused(tmp_path):
    raw = json.loads((REPO / "evals" / "splits" / "bench-v1.json").read_text())
    raw["ids"][0] = "2"
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SplitError, match="do not match ids_sha256"):
        load_split(str(path))
    with pytest.raises(SplitError, match="unknown split; allowed bench-v1"):
        load_split("bench-v9")
    with pytest.raises(SplitError, match="unknown split"):
        load_split("../../etc/passwd")


def test_the_exported_schema_file_is_up_to_date():
    exported = REPO / "evals" / "schemas" / SCHEMA_FILE
    assert exported.read_text() == schema_text(), "regenerate it: patchsmith bench --print-schema > " + str(exported)
    assert bench_json_schema()["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_public_url_drops_credentials_and_queries():
    assert public_url("https://user:secret@api.example.com:8443/v1?key=abc#x") == "https://api.example.com:8443/v1"
    assert public_url(None) is None


def _run() -> EvalRun:
    items = [ItemRecord(id="1", caption="bell", valid=True, tool_called=True, corrections=1, attempts=2, turns=3,
                        patch_scores={"format": 1.0, "keys": 1.0, "distance": 0.8, "distance_gated": 0.5,
                                      "toolrl_exact": 1.0, "toolrl_exact_gated": 0.0}),
             ItemRecord(id="8", caption="pad", error="the model never called the render tool")]
    process = {k: Stat(value=v, low=0.0, high=1.0, n=2) for k, v in (
        ("tool_call_rate", 0.5), ("validity_rate", 0.5), ("first_try_valid_rate", 0.0), ("corrections_when_valid", 1.0),
        ("format", 1.0), ("keys", 1.0), ("distance", 0.8), ("toolrl_exact", 1.0))}
    metrics = [{"metric": "rms", "backend_id": "rms-envelope", "backend_kind": "published", "weights_sha256": None,
                "published": True, "column": "rms", "value": 0.7, "ci": None, "n": 2, "n_missing": 0}]
    return EvalRun(config=RunConfig(package_version="0.1.0", system={"kind": "openai", "name": "qwen", "model": "qwen",
                                                                     "base_url": "http://k:pw@host:8000/v1"},
                                    render=RenderSpec()),
                   items=items, metrics=metrics, item_metrics={"1": {"rms": 0.7}, "8": {"rms": 0.0}}, process=process)


def test_a_result_validates_against_its_schema_and_keeps_no_secrets():
    split = load_split("bench-v1")
    result = build_result(_run(), split, "openai:qwen@http://k:pw@host:8000/v1?api_key=zzz", [("c.csv", "ab" * 32)],
                          created_utc="2026-01-01T00:00:00+00:00")
    data = json.loads(result.model_dump_json())
    jsonschema.validate(data, bench_json_schema())
    text = json.dumps(data)
    assert "pw" not in text and "zzz" not in text
    assert data["model"]["base_url"] == "http://host:8000/v1" and data["model"]["system"] == "openai:qwen@http://host:8000/v1"
    assert data["split"]["ids_sha256"] == split.ids_sha256 and len(data["split"]["missing_ids"]) == 48
    assert data["items"][0]["corrections"] == 1 and data["items"][1]["tool_called"] is False
    assert BenchResult.model_validate_json(result.model_dump_json()) == result
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "schema_version": "patchsmith-bench/0"}, bench_json_schema())


def test_the_leaderboard_row_has_one_cell_per_column():
    result = build_result(_run(), load_split("bench-v1"), "openai:qwen", [])
    header = leaderboard_header().splitlines()[0]
    row = leaderboard_row(result)
    assert row.count("|") == header.count("|")
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:8] == ["qwen", "openai", f"bench-v1 ({load_split('bench-v1').ids_sha256[:8]}), 2 of 50", "2", "50%", "50%",
                         "0%", "1.00"]
    assert result.leaderboard_row == row
