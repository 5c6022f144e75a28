"""Patch dicts for the schema tests: a fixed core patch and random valid patches from the metadata."""

from __future__ import annotations

import random

from patchsmith.schema.algorithms import algorithm
from patchsmith.schema.params import ALL_PARAMS, CORE_KEYS, NAME_MAX_LEN, TOP_LEVEL_KEYS

TOP = {p.key: p for p in ALL_PARAMS if p.parent is None}
LFO = {p.key: p for p in ALL_PARAMS if p.parent == "lfo"}
PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))


def core_patch(number: int = 5) -> dict:
    """A valid core-only patch dict on DX7 algorithm ``number``, with range ends in several keys."""
    alg = algorithm(number)
    return {
        "modmatrix": [list(r) for r in alg.modmatrix],
        "outmatrix": list(alg.outmatrix),
        "feedback": 6,
        "fixed_freq": [0, 0, 0, 0, 0, 1],
        "coarse": [1, 2, 1, 3, 0, 31],
        "fine": [0, 0, 50, 99, 0, 0],
        "detune": [-7, 0, 3, 7, 0, 0],
        "transpose": -24,
        "ol": [99, 80, 99, 70, 60, 0],
        "eg_rate": [[99, 90, 80, 70, 60, 50], [50] * 6, [30] * 6, [70] * 6],
        "eg_level": [[99] * 6, [90] * 6, [0, 10, 20, 30, 40, 50], [0] * 6],
        "sensitivity": [0, 7, 3, 2, 1, 0],
    }


def full_patch() -> dict:
    """A valid patch dict with a name and every full-voice key set away from its neutral default."""
    return core_patch(4) | {
        "name": "E.PIANO 1",
        "lfo": {"speed": 34, "delay": 33, "pmd": 0, "amd": 0, "sync": False, "wave": "sine"},
        "pms": 3,
        "pitch_eg_rate": [94, 67, 95, 60],
        "pitch_eg_level": [50, 50, 50, 50],
        "osc_sync": True,
        "ams": [0, 0, 0, 0, 0, 3],
        "rate_scaling": [3] * 6,
        "kls_breakpoint": [0, 0, 0, 0, 0, 99],
        "kls_left_depth": [0] * 6,
        "kls_right_depth": [0, 0, 0, 0, 0, 14],
        "kls_left_curve": ["-lin", "-exp", "+exp", "+lin", "-lin", "-lin"],
        "kls_right_curve": ["-lin"] * 6,
    }


def random_patch(rnd: random.Random, nulls: bool = False) -> dict:
    """A random valid patch dict; range ends and real DX7 algorithms come up often.

    Drawn from one seeded Random rather than leaf by leaf with hypothesis strategies: 250 separate
    draws per patch made the property tests several times slower, and shrinking a patch buys little.
    """

    def leaf(p):
        if p.kind == "boolean":
            return rnd.random() < 0.5
        if p.kind == "categorical":
            return rnd.choice(p.choices)
        r = rnd.random()
        return p.low if r < 0.1 else p.high if r < 0.2 else rnd.randint(p.low, p.high)

    def shaped(p, dims):
        return [shaped(p, dims[1:]) for _ in range(dims[0])] if dims else leaf(p)

    d = {k: shaped(TOP[k], TOP[k].shape) for k in CORE_KEYS}
    if rnd.random() < 0.4:
        alg = algorithm(rnd.randint(1, 32))
        d["modmatrix"], d["outmatrix"] = [list(r) for r in alg.modmatrix], list(alg.outmatrix)
    for k in TOP_LEVEL_KEYS:
        if k in CORE_KEYS or rnd.random() < 0.4:
            continue
        if nulls and rnd.random() < 0.2:
            d[k] = None
        elif k == "name":
            d[k] = "".join(rnd.choice(PRINTABLE) for _ in range(rnd.randint(0, NAME_MAX_LEN)))
        elif k == "lfo":
            d[k] = {f: (None if nulls and rnd.random() < 0.2 else shaped(p, p.shape))
                    for f, p in LFO.items() if rnd.random() < 0.6}
        else:
            d[k] = shaped(TOP[k], TOP[k].shape)
    return d
