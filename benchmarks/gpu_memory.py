"""Peak GPU memory of a Qwen3-8B full fine-tune step as `training/configs/qwen3-8b-sft.toml` sets it up.

Needs a CUDA GPU with about 70 GiB free, torch and transformers; no weights (the model is randomly
initialised with Qwen3-8B's shape) and no network. For each (batch, tokens) shape it runs two training
steps with bf16 weights, gradient checkpointing and SDPA attention, and prints the steady-state peak (the
second step, when the gradients of the first are still held, as between optimizer steps) plus the
8-bit AdamW states (2 bytes per parameter) the config adds.

    python benchmarks/gpu_memory.py                     # shapes 2x4096 (the config) and 1x8192, 2x8192
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    """Print the peak memory table for the asked shapes."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="2x4096,1x8192,2x8192", help="BATCHxTOKENS,... (default %(default)s)")
    ap.add_argument("--json", action="store_true", help="print the table as JSON")
    args = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    # Qwen3-8B's published shape (config.json of Qwen/Qwen3-8B).
    cfg = Qwen3Config(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                      num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                      rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=False, use_cache=False)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen3ForCausalLM(cfg).to(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    model.gradient_checkpointing_enable()
    model.train()
    adam8 = 2 * n / 2**30
    rows = []
    for batch, tokens in shapes:
        peak = 0.0
        for _ in range(2):  # the second step holds the first step's gradients, as training does
            torch.cuda.reset_peak_memory_stats()
            ids = torch.randint(0, cfg.vocab_size, (batch, tokens), device="cuda")
            t = time.perf_counter()
            model(input_ids=ids, labels=ids).loss.backward()
            torch.cuda.synchronize()
            step_s = time.perf_counter() - t
            peak = torch.cuda.max_memory_allocated() / 2**30
            model.zero_grad(set_to_none=False)
        rows.append({"batch": batch, "tokens": tokens, "peak_gib": round(peak, 2), "with_8bit_adam_gib":
                     round(peak + adam8, 2), "step_s": round(step_s, 2)})
    if args.json:
        print(json.dumps({"gpu": torch.cuda.get_device_name(), "params": n, "rows": rows}, indent=2))
        return
    print(f"{torch.cuda.get_device_name()}: Qwen3-8B shape, {n / 1e9:.2f} B parameters, bf16, gradient checkpointing")
    print(f"{'batch x tokens':>15} {'weights+grads+acts':>19} {'+ 8-bit AdamW':>14} {'fits 80 GB':>11} {'step s':>7}")
    for r in rows:
        fits = "yes" if r["with_8bit_adam_gib"] < 78.0 else "no"
        print(f"{r['batch']:>7} x {r['tokens']:<5} {r['peak_gib']:>15.1f} GiB {r['with_8bit_adam_gib']:>10.1f} GiB "
              f"{fits:>11} {r['step_s']:>7.2f}")


if __name__ == "__main__":
    main()
