"""Load on the MCP server over streamable HTTP (loopback only): latency, correctness and memory.

``patchsmith serve --http 127.0.0.1:0`` runs in a subprocess; 50 concurrent MCP clients each make 20
``render_patch`` calls of a 2 s clip and check every answer's audio hash against the one they expect
(computed here, in-process), so a lost or mixed-up result is an error. Two phases:

- ``distinct``: every call asks for a different render (each client its own patch and velocity, each
  call its own note), so every call renders and measures;
- ``repeat``: each client asks for its own render 20 times, as an agent auditioning the same patch
  does; the server's recent-render cache answers all but the first.

It prints p50/p95 latency, throughput, the server's RSS before and after each phase, and the ratio of
p50 to the bare in-process render time of the same clip (``synth.render.render``; target <= 1.5x), with
the bare render-and-measure time and an unloaded single client for context. It stops by itself
(a deadline on every phase, the server process ended at the end).

    .venv/bin/python benchmarks/server_load.py [--clients 50] [--calls 20] [--phases distinct,repeat]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HOLD_S, RELEASE_S = 1.5, 0.5  # a 2 s clip
SAMPLE_RATE = 48000
TARGET_RATIO = 1.5


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process in MiB (Linux /proc), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, by linear interpolation."""
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def plan(clients: int, calls: int, phase: str) -> list[list[dict[str, Any]]]:
    """Each client's list of render settings (distinct: a new note per call; repeat: the same each time)."""
    out = []
    for i in range(clients):
        velocity = 40 + i % 88
        notes = [36 + (j * 7 + i) % 48 for j in range(calls)] if phase == "distinct" else [60] * calls
        out.append([{"notes": [n], "velocity": velocity} for n in notes])
    return out


def expected_hash(patch: Any, note: int, velocity: int) -> str:
    """The SHA-256 of the WAV the server must return for these settings."""
    from patchsmith.server.renders import encode_wav
    from patchsmith.synth.render import render

    audio = render(patch, note=note, velocity=velocity, hold_s=HOLD_S, release_s=RELEASE_S, sample_rate=SAMPLE_RATE)
    return hashlib.sha256(encode_wav(audio, SAMPLE_RATE)[0]).hexdigest()


def bare_times(patch: Any, repeat: int = 30) -> tuple[float, float]:
    """Median seconds of the bare render of the clip, and of render + descriptors + WAV (the tool's work)."""
    from patchsmith.evals.descriptors import render_and_describe
    from patchsmith.server.renders import encode_wav
    from patchsmith.synth.render import render

    render(patch, hold_s=0.1, release_s=0.1)
    render_and_describe(patch, hold_s=0.1, release_s=0.1)
    r, w = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        render(patch, note=60, velocity=100, hold_s=HOLD_S, release_s=RELEASE_S, sample_rate=SAMPLE_RATE)
        r.append(time.perf_counter() - t)
        t = time.perf_counter()
        audio, _ = render_and_describe(patch, 60, 100, HOLD_S, RELEASE_S, SAMPLE_RATE)
        encode_wav(audio, SAMPLE_RATE)
        w.append(time.perf_counter() - t)
    return statistics.median(r), statistics.median(w)


async def run_clients(url: str, patches: list[dict[str, Any]], settings: list[list[dict[str, Any]]],
                      expected: list[list[str]], deadline_s: float) -> tuple[list[float], list[str], float]:
    """All clients at once; returns (every call's latency, every error, wall seconds)."""
    import anyio
    from mcp import Client

    latencies: list[float] = []
    errors: list[str] = []

    async def client(i: int) -> None:
        try:
            async with Client(url, read_timeout_seconds=deadline_s) as c:
                for j, s in enumerate(settings[i]):
                    args = {"patch": patches[i], "hold_s": HOLD_S, "release_s": RELEASE_S,
                            "sample_rate": SAMPLE_RATE, **s}
                    t = time.perf_counter()
                    r = await c.call_tool("render_patch", args)
                    latencies.append(time.perf_counter() - t)
                    if r.is_error:
                        errors.append(f"client {i} call {j}: {r.content[0].text[:200]}")
                        continue
                    audio = [b for b in r.content if b.type == "audio"]
                    got = hashlib.sha256(base64.b64decode(audio[0].data)).hexdigest() if audio else None
                    if got != expected[i][j]:
                        errors.append(f"client {i} call {j}: audio hash {str(got)[:12]} != expected "
                                      f"{expected[i][j][:12]} (lost or mixed-up result)")
        except Exception as err:  # one broken client is an error to report, not a reason to stop the others
            errors.append(f"client {i}: {type(err).__name__}: {err}")

    start = time.perf_counter()
    with anyio.fail_after(deadline_s):
        async with anyio.create_task_group() as tg:
            for i in range(len(settings)):
                tg.start_soon(client, i)
    return latencies, errors, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--phases", default="distinct,repeat", help="comma-separated: distinct, repeat")
    ap.add_argument("--deadline", type=float, default=600.0, help="seconds each phase may take at most")
    args = ap.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if not set(phases) <= {"distinct", "repeat"} or not 1 <= args.clients <= 200 or not 1 <= args.calls <= 100:
        ap.error("--phases: distinct and/or repeat; --clients 1..200; --calls 1..100")

    import anyio

    from patchsmith.examples import load_examples
    from patchsmith.server.limits import RENDER_CACHE_BYTES
    from tests.server.server_support import http_server

    examples = [e.patch for e in load_examples()]
    patches = [examples[i % len(examples)].to_dict() for i in range(args.clients)]
    t_render, t_work = bare_times(examples[0])
    print(f"clip: {HOLD_S + RELEASE_S:g} s at {SAMPLE_RATE} Hz; {args.clients} clients x {args.calls} render_patch "
          f"calls per phase; {os.cpu_count()} CPU cores")
    print(f"bare in-process render of the clip (synth.render): {1000 * t_render:.1f} ms")
    print(f"bare in-process render + descriptors + WAV (the tool's work): {1000 * t_work:.1f} ms")
    print(f"server: one process, {os.cpu_count()} render workers, recent-render cache bounded at "
          f"{RENDER_CACHE_BYTES // (1024 * 1024)} MiB")

    failed = False
    with http_server(cwd=Path(os.environ.get("TMPDIR", "/tmp"))) as server:
        pid = server.process.pid
        single, _, _ = anyio.run(run_clients, server.url, patches[:1],
                                 [[{"notes": [60], "velocity": 100 + k % 20} for k in range(10)]],
                                 [[expected_hash(examples[0], 60, 100 + k % 20) for k in range(10)]], args.deadline)
        print(f"one client alone, 10 calls: p50 {1000 * percentile(single, 0.5):.1f} ms "
              f"({percentile(single, 0.5) / t_render:.1f}x the bare render, "
              f"{percentile(single, 0.5) / t_work:.2f}x the bare tool work)")
        for phase in phases:
            settings = plan(args.clients, args.calls, phase)
            expected = [[expected_hash(examples[i % len(examples)], s["notes"][0], s["velocity"]) for s in row]
                        for i, row in enumerate(settings)]
            before = rss_mb(pid)
            latencies, errors, wall = anyio.run(run_clients, server.url, patches, settings, expected, args.deadline)
            after = rss_mb(pid)
            n = args.clients * args.calls
            p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
            print(f"\n[{phase}] {len(latencies)}/{n} calls answered in {wall:.1f} s "
                  f"({len(latencies) / wall:.1f} calls/s), {len(errors)} errors")
            for e in errors[:10]:
                print(f"  error: {e}")
            print(f"  latency p50 {1000 * p50:.1f} ms, p95 {1000 * p95:.1f} ms")
            met = "met" if p50 / t_render <= TARGET_RATIO else "NOT met"
            print(f"  p50 / bare render: {p50 / t_render:.1f}x (target <= {TARGET_RATIO}x: {met}); "
                  f"p50 / bare tool work: {p50 / t_work:.1f}x")
            print(f"  server time per call (wall / calls): {1000 * wall / max(1, len(latencies)):.1f} ms = "
                  f"{wall / max(1, len(latencies)) / t_work:.2f}x the bare tool work on one core "
                  f"({wall / max(1, len(latencies)) * (os.cpu_count() or 1) / t_work:.2f}x per core)")
            print(f"  server RSS: {before:.0f} MiB before, {after:.0f} MiB after" if before and after else
                  "  server RSS: not available")
            failed |= bool(errors) or len(latencies) != n
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
