"""Test helpers: DX7-representable patches made by the project itself (no third-party data needed)."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from patchsmith.schema.algorithms import ALGORITHMS
from patchsmith.schema.params import KLS_CURVES, LFO_WAVES
from patchsmith.schema.patch import Lfo, Patch

PRINTABLE = "".join(chr(c) for c in range(0x20, 0x7F))


def _six(draw, low: int, high: int) -> list[int]:
    return [draw(low, high) for _ in range(6)]


def make_patch(draw_int, draw_choice, algorithm: int, name: str | None) -> Patch:
    """A DX7-representable patch of ``algorithm`` (1..32) with every parameter drawn in its full range."""
    alg = ALGORITHMS[algorithm - 1]
    return Patch(
        modmatrix=[list(r) for r in alg.modmatrix],
        outmatrix=list(alg.outmatrix),
        feedback=draw_int(0, 7),
        fixed_freq=_six(draw_int, 0, 1),
        coarse=_six(draw_int, 0, 31),
        fine=_six(draw_int, 0, 99),
        detune=_six(draw_int, -7, 7),
        transpose=draw_int(-24, 24),
        ol=_six(draw_int, 0, 99),
        eg_rate=[_six(draw_int, 0, 99) for _ in range(4)],
        eg_level=[_six(draw_int, 0, 99) for _ in range(4)],
        sensitivity=_six(draw_int, 0, 7),
        name=name,
        lfo=Lfo(
            speed=draw_int(0, 99),
            delay=draw_int(0, 99),
            pmd=draw_int(0, 99),
            amd=draw_int(0, 99),
            sync=bool(draw_int(0, 1)),
            wave=draw_choice(LFO_WAVES),
        ),
        pms=draw_int(0, 7),
        pitch_eg_rate=[draw_int(0, 99) for _ in range(4)],
        pitch_eg_level=[draw_int(0, 99) for _ in range(4)],
        osc_sync=bool(draw_int(0, 1)),
        ams=_six(draw_int, 0, 3),
        rate_scaling=_six(draw_int, 0, 7),
        kls_breakpoint=_six(draw_int, 0, 99),
        kls_left_depth=_six(draw_int, 0, 99),
        kls_right_depth=_six(draw_int, 0, 99),
        kls_left_curve=[draw_choice(KLS_CURVES) for _ in range(6)],
        kls_right_curve=[draw_choice(KLS_CURVES) for _ in range(6)],
    )


def random_patch(rng: random.Random, algorithm: int | None = None) -> Patch:
    """A seeded random DX7-representable patch with an exact 10-character name."""
    name = "".join(rng.choice(PRINTABLE) for _ in range(10))
    return make_patch(rng.randint, rng.choice, algorithm or rng.randint(1, 32), name)


def random_bank(seed: int) -> list[Patch]:
    """32 seeded random patches covering all 32 algorithms."""
    rng = random.Random(seed)
    algorithms = list(range(1, 33))
    rng.shuffle(algorithms)
    return [random_patch(rng, a) for a in algorithms]


@st.composite
def dx7_patches(draw) -> Patch:
    """Hypothesis strategy: any DX7-representable patch with an exact 10-character name."""
    name = draw(st.text(alphabet=PRINTABLE, min_size=10, max_size=10))
    return make_patch(
        lambda lo, hi: draw(st.integers(lo, hi)),
        lambda choices: draw(st.sampled_from(choices)),
        draw(st.integers(1, 32)),
        name,
    )
