"""A tiny randomly initialised Qwen3 and a tokenizer built offline: the CPU smoke test's model.

Nothing is downloaded (``reference/llm_tools.md`` §3.3). The tokenizer is byte-level BPE, so any text
round-trips exactly; its merges are learnt from the project's own text (the tools' JSON schemas, patches
in compact JSON, numbers, chat words) so that prompts and patches cost few tokens. The chat markers are
special tokens; ``<think>``/``<tool_call>`` and friends are added tokens that are *not* special, as in
the real Qwen3 tokenizer, so decoding with ``skip_special_tokens=True`` keeps them. The chat template
is the stock Qwen3 template that TRL ships, which TRL's training-template logic recognises.

The same seed gives the same weights, and the same tokenizer bytes, on every run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TINY_MODEL_ID = "tiny-qwen3"  # the config's model name that builds this model instead of loading one
SEED = 1234
VOCAB_SIZE = 1024
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Non-special added tokens of the real Qwen3 tokenizer that the output parsers look for.
TAG_TOKENS = ("<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")
_CHAT_WORDS = (
    "system", "user", "assistant", "tool", "# Tools", "You may call one or more functions to assist with the user query.",
    "You are provided with function signatures within <tools></tools> XML tags:",
    "For each function call, return a json object with function name and arguments within <tool_call></tool_call> "
    "XML tags:", '{"name": <function-name>, "arguments": <args-json-object>}', "/think", "/no_think",
    "bright electric piano with a soft attack", "deep punchy bass", "slow warm pad with vibrato",
    "glassy bell, long decay", "brass", "organ", "marimba", "strings", "metallic", "```json", "```",
)


def qwen3_chat_template() -> str:
    """The stock Qwen3 chat template (as shipped with TRL)."""
    import importlib.resources

    return (importlib.resources.files("trl") / "chat_templates" / "qwen3.jinja").read_text(encoding="utf-8")


def _corpus() -> list[str]:
    """The project's own text the BPE merges are learnt from (tool schemas, patches, numbers, chat words)."""
    from ..agent.library import load_library
    from ..schema.compact import dumps_compact
    from ..schema.openai_tools import openai_tools
    from ..schema.params import TOP_LEVEL_KEYS

    texts: list[str] = list(_CHAT_WORDS)
    # The template prints each tool with tojson (", " and ": " separators); tool calls look the same.
    texts += [json.dumps(t, ensure_ascii=False) for t in openai_tools()]
    texts += [json.dumps(k) for k in TOP_LEVEL_KEYS]
    texts += [" ".join(str(n) for n in range(-24, 128)), ",".join(str(n) for n in range(0, 100))]
    for entry in load_library():  # the packaged library: captioned patches
        compact = dumps_compact(entry.patch)
        texts.append(compact)
        texts.append(json.dumps({"name": "render_patch", "arguments": {"patch": json.loads(compact)}}))
        texts += entry.captions
    return texts


def offline_tokenizer() -> Any:
    """A Qwen3-style fast tokenizer (byte-level BPE, ChatML specials, Qwen3 template) built without any download."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TAG_TOKENS])
    tk = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tk.chat_template = qwen3_chat_template()
    return tk


def tiny_qwen3(tokenizer: Any, *, seed: int = SEED) -> Any:
    """A randomly initialised two-layer Qwen3 (hidden size 32) sized for ``tokenizer``, the same for one seed."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=32768,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(pad_token_id=tokenizer.pad_token_id,
                                               eos_token_id=tokenizer.eos_token_id, do_sample=False)
    return model


def save_tiny_checkpoint(path: str | Path, *, seed: int = SEED) -> Path:
    """Write a tiny random Qwen3 checkpoint (model, tokenizer, chat template) into ``path``; returns it."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = offline_tokenizer()
    model = tiny_qwen3(tokenizer, seed=seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


__all__ = ["SEED", "TINY_MODEL_ID", "offline_tokenizer", "qwen3_chat_template", "save_tiny_checkpoint", "tiny_qwen3"]
