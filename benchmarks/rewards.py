"""Reward throughput: completions per second for format+keys+distance (one core) and for the audio reward.

Completions are made from the example patches: exact copies, patches with a few values moved, wrong
topologies, truncated JSON, garbage text and tool calls, in the answer format (think block + fenced
JSON) and as conversational tool calls; every one is distinct, so the parse cache never hits across
completions (it does across the three reward functions of one batch, as in GRPO). The audio reward is
timed cold (every render new) and warm (the same completions again: every render a cache hit).

    .venv/bin/python benchmarks/rewards.py [--n 4000] [--audio-n 32] [--batch 64] [--repeat 3]

Run it pinned to one core for the target figure: ``taskset -c 0 .venv/bin/python benchmarks/rewards.py``.
The table gives completions per wall-clock second and per CPU second (the latter is what one core
delivers, also on a machine other jobs keep busy).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_completions(n: int, seed: int = 0) -> tuple[list, list[str]]:
    """``n`` distinct completions (a mix of good, near, wrong and garbage) and their answers."""
    from patchsmith.examples import load_examples
    from patchsmith.schema.compact import dumps_compact

    patches = [ex.patch for ex in load_examples(REPO / "examples")]
    rng = random.Random(seed)
    completions, answers = [], []
    for i in range(n):
        truth = patches[i % len(patches)]
        d = truth.to_dict(full=False)
        kind = i % 10
        if kind in (1, 2, 3, 4):  # a few values moved
            for _ in range(1 + kind):
                key = rng.choice(["ol", "fine", "coarse", "detune"])
                lo, hi = {"ol": (0, 99), "fine": (0, 99), "coarse": (0, 31), "detune": (-7, 7)}[key]
                d[key][rng.randrange(6)] = rng.randint(lo, hi)
        elif kind == 5:  # another topology
            d["outmatrix"] = [1, 1, 1, 1, 1, 1]
            d["ol"][rng.randrange(6)] = rng.randint(0, 99)
        d["eg_rate"][0][i % 6] = (i * 7) % 100  # every completion distinct
        text = dumps_compact(d)
        if kind == 6:
            c = f"<think>\n\n</think>\n\n```json\n{text[: len(text) // 2]}"  # cut off
        elif kind == 7:
            c = "I cannot help with that. " * (1 + i % 5) + str(i)
        elif kind == 8:
            c = [{"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "render_patch", "arguments": {"patch": d}}}]}]
        else:
            c = f"<think>\nA bright bell {i}.\n</think>\n\n```json\n{text}\n```"
        completions.append(c)
        answers.append(dumps_compact(truth))
    return completions, answers


def main(argv: list[str] | None = None) -> int:
    """Print the throughput table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="completions for format+keys+distance")
    ap.add_argument("--audio-n", type=int, default=32, help="completions for the audio reward")
    ap.add_argument("--batch", type=int, default=64, help="completions per reward call (a GRPO batch)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the patch rewards; the fastest is shown")
    args = ap.parse_args(argv)
    if min(args.n, args.audio_n, args.batch, args.repeat) < 1:
        print("error: --n, --audio-n, --batch and --repeat must be positive", file=sys.stderr)
        return 2

    from patchsmith.training import rewards as R

    completions, answers = make_completions(args.n)
    R.format_reward(completions[:50], answer=answers[:50])  # warm the imports
    R.distance_reward(completions[:50], answer=answers[:50])
    R.clear_caches()
    rows = []
    for label, fns in [("format+keys+distance", [R.format_reward, R.keys_reward, R.distance_reward]),
                       ("all six patch rewards", [R.format_reward, R.keys_reward, R.distance_reward,
                                                  R.gated_distance_reward, R.toolrl_exact_reward,
                                                  R.gated_toolrl_exact_reward])]:
        best = (math.inf, math.inf)
        for _ in range(args.repeat):  # best of a few: a shared machine only ever makes a run slower
            R.clear_caches()
            t0, c0 = time.perf_counter(), time.process_time()
            for s in range(0, args.n, args.batch):
                c, a = completions[s:s + args.batch], answers[s:s + args.batch]
                for fn in fns:
                    fn(c, answer=a)
            best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
        rows.append((label, args.n, *best))

    audio = R.AudioReward()
    ac, aa = make_completions(args.audio_n, seed=1)
    for label in ("audio (cold: every render new)", "audio (warm: every render cached)"):
        t0, c0 = time.perf_counter(), time.process_time()
        audio(ac, answer=aa)
        rows.append((label, args.audio_n, time.perf_counter() - t0, time.process_time() - c0))

    # CPU seconds are what one core spends; wall seconds also count waiting on a busy machine.
    print(f"{'reward set':36s} {'completions':>11s} {'wall s':>8s} {'CPU s':>8s} {'per wall s':>11s} {'per CPU s':>10s}")
    for label, n, wall, cpu in rows:
        print(f"{label:36s} {n:11d} {wall:8.3f} {cpu:8.3f} {n / wall:11.0f} {n / max(cpu, 1e-9):10.0f}")
    print(f"audio render cache: {audio.cache_info()} (1 note, {audio.hold_s:g}+{audio.release_s:g} s at "
          f"{audio.sample_rate} Hz)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
