"""SFT/GRPO data: loading CSVs and Parquet, both chat formats, the reasoning ratio, refinement turns, token
lengths under an offline tokenizer, and files that ``datasets`` and TRL read."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest

from patchsmith.examples import load_examples
from patchsmith.schema.compact import dumps_compact
from patchsmith.schema.source_research import export_source_dict
from patchsmith.training import rewards as R
from patchsmith.training.sft_data import (LoadReport, SftRow, answer_example, build_sft_dataset,
                                          build_sft_dataset_with_stats, grpo_prompt, load_rows, load_rows_report,
                                          prepare, token_length_report, tool_example, tools_for_prompt,
                                          tools_system_text)

from ..conftest import CAPTIONS, REPO, need


def example_patches() -> list:
    return [ex.patch for ex in load_examples(REPO / "examples")]


@pytest.fixture(scope="module")
def tokenizer():
    from patchsmith.training.tiny_model import offline_tokenizer

    return offline_tokenizer()


def rows(n_cot: int = 2) -> list[SftRow]:
    out = []
    for i, p in enumerate(example_patches()):
        out.append(SftRow(caption=f"sound number {i}", patch=p, cot=f"reasoning {i}" if i < n_cot else None,
                          id=f"r{i}", source="test"))
    return out


def write_source_csvs(folder: Path) -> tuple[Path, Path]:
    """A source-research patches CSV (OP6-first dicts) and its captions CSV; one voice uncaptioned, one broken."""
    patches = folder / "DX7_TEST_train.csv"
    captions = folder / "DX7_TEST_train_captions.csv"
    with open(patches, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["", "index", "patch_number", "name", "patch_data", "file_path", "syx_file", "has_fixed_freqs",
                    "id", "wav_path", "inaudible"])
        for i, p in enumerate(example_patches()):
            w.writerow([i, i, i, p.name or "", repr(export_source_dict(p)), "x.syx", "x.syx", False, str(10 + i), "", False])
        w.writerow([99, 99, 99, "broken", "{'modmatrix': 1}", "x.syx", "x.syx", False, "99", "", False])
    with open(captions, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["", "id", "wav_path", "name", "caption"])
        for i in range(len(example_patches()) - 1):  # the last voice has no caption
            w.writerow([i, str(10 + i), "", "", f"caption {10 + i}"])
        w.writerow([99, "99", "", "", "caption of a broken patch"])
    return patches, captions


def write_dataset(folder: Path) -> Path:
    """A built dataset's data/*.parquet: one row per render (ids repeat), a null caption, a broken patch."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = folder / "built" / "data"
    data.mkdir(parents=True)
    recs = []
    for i, p in enumerate(example_patches()):
        for note in (48, 60):  # two renders of each voice
            recs.append({"id": f"{i:016x}", "name": p.name or "", "patch": dumps_compact(p),
                         "caption": None if i == 1 else f"dataset caption {i}",
                         "cot": (f"think {i}" if note == 60 else None) if i in (0, 2) else None, "note": note})
    recs.append({"id": "f" * 16, "name": "bad", "patch": '{"modmatrix": 1}', "caption": "bad", "cot": None, "note": 60})
    pq.write_table(pa.Table.from_pylist(recs), data / "train-00000-of-00001.parquet")
    return folder / "built"


# --- loading ------------------------------------------------------------------------------------------


def test_load_source_research_csvs(tmp_path):
    pc, cc = write_source_csvs(tmp_path)
    got, report = load_rows_report([pc, cc])
    n = len(example_patches())
    assert len(got) == n - 1
    assert report.rows_read == n + 1 and report.rows_kept == n - 1
    assert report.skipped == {"no caption": 1, "invalid patch": 1}
    # The OP6-first source dict came back OP1-first, joined with its caption by id.
    assert got[0].patch == example_patches()[0].model_copy(update={"name": got[0].patch.name})
    assert got[0].caption == "caption 10" and got[0].id == "10" and got[0].source == "source-research:DX7_TEST_train.csv"
    with pytest.raises(ValueError, match="without their patches"):
        load_rows([cc])


def test_source_csv_repeated_id_takes_first_caption(tmp_path):
    # As the dataset builder and the evaluation runner do: a second caption of an id does not replace the first.
    pc, cc = write_source_csvs(tmp_path)
    with open(cc, "a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([[100, "10", "", "", "a later caption of 10"], [101, "11", "", "", "   "]])
    got = {r.id: r.caption for r in load_rows([pc, cc])}
    assert got["10"] == "caption 10" and got["11"] == "caption 11"


def test_load_dataset_parquet(tmp_path):
    folder = write_dataset(tmp_path)
    got, report = load_rows_report([folder])
    n = len(example_patches())
    assert [r.id for r in got] == [f"{i:016x}" for i in range(n) if i != 1]
    assert report.skipped == {"no caption": 1, "invalid patch": 1}
    by_id = {r.id: r for r in got}
    assert by_id[f"{0:016x}"].cot == "think 0"  # the cot of the second render row of the same voice
    assert by_id[f"{3:016x}"].cot is None
    assert by_id[f"{2:016x}"].patch == example_patches()[2]


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_rows([tmp_path / "nope.csv"])
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="neither patch_data"):
        load_rows([odd])
    with pytest.raises(ValueError, match="no inputs"):
        load_rows([])


def test_real_source_research_files():
    folder = need(CAPTIONS)
    got, report = load_rows_report([folder / "DX7_YAMAHA_train.csv", folder / "DX7_YAMAHA_train_captions.csv"])
    assert isinstance(report, LoadReport) and len(got) > 900
    assert all(r.caption and r.patch for r in got)


# --- the formats -----------------------------------------------------------------------------------------


def test_answer_format():
    r = rows()[0]
    think = answer_example(r, True)["messages"]
    assert think[0] == {"role": "user", "content": "sound number 0 /think"}
    assert think[1]["content"] == f"<think>\nreasoning 0\n</think>\n\n```json\n{dumps_compact(r.patch)}\n```"
    plain = answer_example(r, False)["messages"]
    assert plain[0]["content"].endswith(" /no_think")
    assert plain[1]["content"].startswith("<think>\n\n</think>\n\n```json\n")
    # What the model is taught to write is what the rewards read back, at the maximum.
    a = [dumps_compact(r.patch)]
    assert R.format_reward([think[1]["content"]]) == [1.0]
    assert R.distance_reward([plain[1]["content"]], answer=a) == [1.0]
    assert R.toolrl_exact_reward([think[-1:]], answer=a) == [3.0]
    with pytest.raises(ValueError, match="needs reasoning"):
        answer_example(rows()[5], True)


def test_tool_format_uses_the_published_render_patch_schema(tokenizer):
    r = rows()[0]
    ex = tool_example(r, False)
    from patchsmith.schema.openai_tools import openai_tools

    assert ex["tools"] == [t for t in openai_tools() if t["function"]["name"] == "render_patch"]
    call = ex["messages"][1]["tool_calls"][0]["function"]
    assert call["name"] == "render_patch" and json.loads(call["arguments"])["patch"] == r.patch.to_dict(full=False)
    assert R.toolrl_exact_reward([ex["messages"][1:]], answer=[dumps_compact(r.patch)]) == [3.0]
    text = tokenizer.apply_chat_template(ex["messages"], tools=ex["tools"], tokenize=False)
    assert "# Tools" in text and '"name": "render_patch"' in text
    assert '<|im_start|>assistant\n<think>\n\n</think>\n\n<tool_call>\n{"name": "render_patch", "arguments": {"patch": {\n' in text
    # The rendered completion is read back by the reward functions too.
    completion = text.split("<|im_start|>assistant\n")[-1]
    assert R.format_reward([completion]) == [1.0]
    with pytest.raises(ValueError, match="allowed"):
        tools_for_prompt(["render_dx7"])


def test_grpo_prompts(tokenizer):
    r = rows()[0]
    g = grpo_prompt(r, "answer")
    assert g == {"prompt": [{"role": "user", "content": "sound number 0 /no_think"}],
                 "answer": dumps_compact(r.patch), "id": "r0"}
    gt = grpo_prompt(r, "tools", think=True)
    tools = tools_for_prompt()
    # The system text is exactly what the chat template writes for tools=, so GRPO sees SFT's prompt.
    with_tools = tokenizer.apply_chat_template(gt["prompt"][1:], tools=tools, tokenize=False, add_generation_prompt=True)
    pre_rendered = tokenizer.apply_chat_template(gt["prompt"], tokenize=False, add_generation_prompt=True)
    assert pre_rendered == with_tools
    assert gt["prompt"][0]["content"] == tools_system_text(tools)
    with pytest.raises(ValueError, match="fmt"):
        grpo_prompt(r, "xml")


def test_reasoning_ratio_keeps_every_reasoning_row():
    many = rows(n_cot=2) * 4  # 8 reasoning rows, 20 plain rows
    many = [r.model_copy(update={"id": f"{r.id}-{k}"}) for k, r in enumerate(many)]
    ex, stats = build_sft_dataset_with_stats(many, "answer", reasoning_ratio=0.5, seed=3)
    assert stats.reasoning_rows == 8 and stats.plain_rows_kept == 8 and stats.plain_rows_dropped == 12
    assert len(ex) == 16 and stats.reasoning_ratio == 0.5
    thinks = [e for e in ex if e["messages"][0]["content"].endswith("/think")]
    assert len(thinks) == 8
    again = build_sft_dataset(many, "answer", reasoning_ratio=0.5, seed=3)
    assert again == ex
    other = build_sft_dataset(many, "answer", reasoning_ratio=0.5, seed=4)
    assert {e["id"] for e in other} != {e["id"] for e in ex}
    assert len(build_sft_dataset(many, "answer", reasoning_ratio=None)) == 28
    assert len(build_sft_dataset(many, "answer", reasoning_ratio=0.2)) == 28  # 8 / 0.2 = 40 > 28: all kept
    _, s = build_sft_dataset_with_stats(rows(n_cot=0), "answer", reasoning_ratio=0.5)
    assert s.warnings and "no row has reasoning" in s.warnings[0]
    with pytest.raises(ValueError, match="reasoning_ratio"):
        build_sft_dataset(many, "answer", reasoning_ratio=1.5)


def test_refinement_rows_are_multi_turn():
    base = rows()
    ex, stats = build_sft_dataset_with_stats(base, "answer", seed=1, refinement=1)
    assert len(ex) == len(base) + 1 and stats.refinement_examples == 1
    msgs = ex[-1]["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert "The current patch:" in msgs[2]["content"] and msgs[2]["content"].endswith("``` /no_think")
    first = R.extract_patch(msgs[1]["content"])
    second = R.extract_patch(msgs[3]["content"])
    assert first != second  # the refinement changed the patch
    tex = build_sft_dataset(base, "tools", seed=1, refinement=1)[-1]["messages"]
    assert [m["role"] for m in tex] == ["user", "assistant", "tool", "user", "assistant"]
    tool_msg = json.loads(tex[2]["content"])
    assert tool_msg["ok"] is True and "Rendered 1 note" in tool_msg["summary"]
    assert tool_msg["result"]["notes"][0]["descriptors"]["duration_s"] == 4.0


def test_token_length_report_counts_what_trl_would_cut(tokenizer):
    ex = build_sft_dataset(rows(), "tools")
    full = token_length_report(ex, tokenizer, None)
    assert full.n == len(ex) and full.over_max_length == 0 and full.min <= full.p50 <= full.max
    assert all(p < n for p, n in zip(full.prompt_lengths, full.lengths))
    cut = sorted(full.lengths)[len(ex) // 2]
    with pytest.warns(UserWarning, match="longer than max_length"):
        rep = token_length_report(ex, tokenizer, cut)
    assert rep.over_max_length == sum(1 for n in full.lengths if n > cut)
    with pytest.warns(UserWarning):
        tiny = token_length_report(ex, tokenizer, min(full.prompt_lengths))
    assert tiny.fully_masked == sum(1 for p in full.prompt_lengths if p >= min(full.prompt_lengths))
    assert tiny.over_max_length == len(ex) and len(tiny.over_ids) == len(ex)


def test_prepare_writes_files_datasets_reads(tmp_path, tokenizer):
    from datasets import load_dataset

    pc, cc = write_source_csvs(tmp_path)
    folder = write_dataset(tmp_path)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = prepare([pc, cc, folder], out, fmt="tools", reasoning_ratio=0.5, refinement=1, seed=0,
                         tokenizer=tokenizer, max_length=100_000)
    assert report.sft_examples == (json.loads((out / "report.json").read_text()))["sft_examples"]
    assert report.load.rows_kept == 2 * len(example_patches()) - 2
    assert report.lengths is not None and report.lengths.over_max_length == 0
    sft = load_dataset("json", data_files=str(out / "sft.jsonl"), split="train")
    grpo = load_dataset("json", data_files=str(out / "grpo.jsonl"), split="train")
    assert len(sft) == report.sft_examples and len(grpo) == report.grpo_prompts == report.load.rows_kept
    row = sft[0]
    assert isinstance(row["tools"], str) and json.loads(row["tools"])[0]["function"]["name"] == "render_patch"
    assert R.format_reward([[m for m in row["messages"] if m["role"] == "assistant"][-1:]]) == [1.0]
    g = grpo[0]
    assert g["prompt"][0]["role"] == "system" and R.distance_reward(
        [f"```json\n{g['answer']}\n```"], answer=[g["answer"]]) == [1.0]
    # Same inputs, same seed: the same bytes.
    out2 = tmp_path / "out2"
    prepare([pc, cc, folder], out2, fmt="tools", reasoning_ratio=0.5, refinement=1, seed=0)
    assert (out / "sft.jsonl").read_bytes() == (out2 / "sft.jsonl").read_bytes()
    assert (out / "grpo.jsonl").read_bytes() == (out2 / "grpo.jsonl").read_bytes()
    with pytest.raises(ValueError, match="needs a tokenizer"):
        prepare([pc, cc], out, max_length=10)


def test_trl_sft_trains_on_the_tool_format_file(tmp_path, tokenizer):
    """One SFT step on the written file (tools column as JSON text, arguments as JSON text, tool messages)."""
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    from patchsmith.training.tiny_model import tiny_qwen3

    pc, cc = write_source_csvs(tmp_path)
    out = tmp_path / "out"
    prepare([pc, cc], out, fmt="tools", refinement=1, seed=0)
    ds = load_dataset("json", data_files=str(out / "sft.jsonl"), split="train").select(range(3))
    args = SFTConfig(output_dir=str(tmp_path / "ckpt"), use_cpu=True, bf16=False, gradient_checkpointing=False,
                     report_to="none", save_strategy="no", max_steps=1, per_device_train_batch_size=2,
                     logging_steps=1, assistant_only_loss=True, max_length=16384)
    trainer = SFTTrainer(model=tiny_qwen3(tokenizer), processing_class=tokenizer, args=args, train_dataset=ds)
    assert len(trainer.train_dataset) == 3  # nothing dropped
    result = trainer.train()
    assert result.training_loss > 0
