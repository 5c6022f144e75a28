"""The tiny random Qwen3 and its offline tokenizer: deterministic, lossless, Qwen3-shaped."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("transformers")

from patchsmith.schema.compact import dumps_compact  # noqa: E402
from patchsmith.schema.openai_tools import openai_tools  # noqa: E402
from patchsmith.training.tiny_model import (TAG_TOKENS, offline_tokenizer, qwen3_chat_template,  # noqa: E402
                                            save_tiny_checkpoint, tiny_qwen3)

from ..conftest import REPO  # noqa: E402

EPIANO = json.loads((REPO / "examples" / "epiano.json").read_text())["patch"]


@pytest.fixture(scope="module")
def tok():
    return offline_tokenizer()


def test_tokenizer_is_built_the_same_every_time(tok):
    assert offline_tokenizer().backend_tokenizer.to_str() == tok.backend_tokenizer.to_str()


@pytest.mark.parametrize("text", [
    dumps_compact(EPIANO),
    json.dumps({"name": "render_patch", "arguments": {"patch": EPIANO, "notes": [36, 127], "velocity": 1}}),
    '{"detune":[-7,0,7,-3,3,1],"transpose":-24}',
    "é ü — 😀 \t tabs\nand\r\nnewlines",
])
def test_json_and_any_text_round_trip(tok, text):
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert all(i < len(tok) for i in ids)


def test_patch_keys_are_learnt_merges(tok):
    from patchsmith.schema.params import CORE_KEYS

    # Digits and punctuation (also "_") stay single characters, as the byte-level pre-tokenizer splits
    # them; every word of a key name is one token.
    for key in CORE_KEYS:
        assert len(tok.encode(key, add_special_tokens=False)) == 2 * key.count("_") + 1, key
    text = dumps_compact(EPIANO)
    assert len(tok.encode(text, add_special_tokens=False)) < len(text.encode())


def test_tags_are_single_non_special_tokens(tok):
    for tag in TAG_TOKENS:
        ids = tok.encode(tag, add_special_tokens=False)
        assert len(ids) == 1, tag
    text = "<think>\n\n</think>\n\n<tool_call>\n{}\n</tool_call><|im_end|>"
    kept = tok.decode(tok.encode(text, add_special_tokens=False), skip_special_tokens=True)
    assert kept == "<think>\n\n</think>\n\n<tool_call>\n{}\n</tool_call>"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"


def test_chat_template_is_qwen3_with_tools_and_thinking_switch(tok):
    assert tok.chat_template == qwen3_chat_template()
    tools = [t for t in openai_tools() if t["function"]["name"] == "render_patch"]
    text = tok.apply_chat_template([{"role": "user", "content": "warm pad"}], tools=tools, tokenize=False,
                                   add_generation_prompt=True, enable_thinking=False)
    assert text.startswith("<|im_start|>system\n# Tools")
    assert '"name": "render_patch"' in text
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    thinking = tok.apply_chat_template([{"role": "user", "content": "warm pad"}], tokenize=False,
                                       add_generation_prompt=True)
    assert thinking.endswith("<|im_start|>assistant\n")


def test_same_seed_same_weights_and_other_seed_differs(tok):
    import torch

    a, b, c = tiny_qwen3(tok), tiny_qwen3(tok), tiny_qwen3(tok, seed=7)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert a.config.vocab_size == len(tok) and a.config.eos_token_id == tok.eos_token_id


def test_saved_checkpoint_loads_offline_with_its_template(tmp_path, tok):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = save_tiny_checkpoint(tmp_path / "ckpt")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    loaded = AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert loaded.chat_template == tok.chat_template
    text = dumps_compact(EPIANO)
    assert loaded.encode(text, add_special_tokens=False) == tok.encode(text, add_special_tokens=False)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    assert model.config.model_type == "qwen3" and model.config.num_hidden_layers == 2
