"""describe_patch: topology naming for all 32 algorithms and custom matrices, levels, frequencies,
envelope times against the reference table and against a real render, and robustness."""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest

from patchsmith.schema.algorithms import ALGORITHMS, algorithm
from patchsmith.schema.patch import Patch
from patchsmith.synth.describe import MAX_STAGE_S, PatchDescription, describe_patch
from patchsmith.synth.render import RenderError, render
from patchsmith.synth.sysex import init_voice

CURVES = ["-lin", "-exp", "+exp", "+lin"]
WAVES = ["triangle", "saw_down", "saw_up", "square", "sine", "sample_hold"]


def edit(p: Patch, **fields) -> Patch:
    """``p`` with ``fields`` replaced (validated)."""
    return Patch.model_validate(p.model_dump() | fields)


def with_algorithm(p: Patch, number: int) -> Patch:
    """``p`` with the topology of DX7 algorithm ``number``."""
    a = algorithm(number)
    return p.model_copy(update={"modmatrix": [list(r) for r in a.modmatrix], "outmatrix": list(a.outmatrix)})


def solo_op1(**env) -> Patch:
    """Algorithm 32 with only OP1 sounding; ``env`` sets OP1's R1..R4 / L1..L4 (r1=..., l2=...)."""
    p = with_algorithm(init_voice(), 32)
    rates = [row[:] for row in p.eg_rate]
    levels = [row[:] for row in p.eg_level]
    for k in range(4):
        rates[k][0] = env.get(f"r{k + 1}", rates[k][0])
        levels[k][0] = env.get(f"l{k + 1}", levels[k][0])
    return p.model_copy(update={"eg_rate": rates, "eg_level": levels})


def epiano() -> Patch:
    """A factory-like E.PIANO (algorithm 5: three 2-op stacks, a 14:1 tine stack, feedback on OP6)."""
    p = with_algorithm(init_voice(), 5)
    return Patch.model_validate(p.model_dump() | dict(
        name="E.PIANO", feedback=6, coarse=[1, 14, 1, 1, 1, 1], detune=[3, 0, 0, 0, -7, 7],
        ol=[99, 58, 99, 89, 99, 79],
        eg_rate=[[96, 95, 95, 95, 95, 95], [25, 50, 20, 29, 20, 29], [25, 35, 20, 20, 20, 20], [67, 78, 50, 50, 50, 50]],
        eg_level=[[99] * 6, [75, 75, 95, 95, 95, 95], [0] * 6, [0] * 6],
        sensitivity=[2, 7, 2, 6, 0, 6], rate_scaling=[3] * 6, kls_right_depth=[0, 0, 0, 0, 0, 19],
        lfo={"speed": 34, "delay": 33, "pmd": 0, "amd": 0, "sync": False, "wave": "sine"}, pms=3,
    ))


def random_patch(rng: random.Random) -> Patch:
    """Any valid patch: every field over its full range, a third of them with a random topology."""
    six = lambda lo, hi: [rng.randint(lo, hi) for _ in range(6)]  # noqa: E731
    if rng.random() < 1 / 3:
        mod = [[1 if rng.random() < 0.25 else 0 for _ in range(6)] for _ in range(6)]
        out = [1 if rng.random() < 0.4 else 0 for _ in range(6)]
    else:
        a = ALGORITHMS[rng.randrange(32)]
        mod, out = [list(r) for r in a.modmatrix], list(a.outmatrix)
    return Patch(
        modmatrix=mod, outmatrix=out, feedback=rng.randint(0, 7), fixed_freq=six(0, 1), coarse=six(0, 31),
        fine=six(0, 99), detune=six(-7, 7), transpose=rng.randint(-24, 24), ol=six(0, 99),
        eg_rate=[six(0, 99) for _ in range(4)], eg_level=[six(0, 99) for _ in range(4)], sensitivity=six(0, 7),
        name="RANDOM" if rng.random() < 0.5 else None,
        lfo={"speed": rng.randint(0, 99), "delay": rng.randint(0, 99), "pmd": rng.randint(0, 99),
             "amd": rng.randint(0, 99), "sync": rng.random() < 0.5, "wave": rng.choice(WAVES)},
        pms=rng.randint(0, 7), pitch_eg_rate=[rng.randint(0, 99) for _ in range(4)],
        pitch_eg_level=[rng.randint(0, 99) for _ in range(4)], osc_sync=rng.random() < 0.5, ams=six(0, 3),
        rate_scaling=six(0, 7), kls_breakpoint=six(0, 99), kls_left_depth=six(0, 99), kls_right_depth=six(0, 99),
        kls_left_curve=[rng.choice(CURVES) for _ in range(6)], kls_right_curve=[rng.choice(CURVES) for _ in range(6)],
    )


# --- topology -------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", range(1, 33))
def test_every_algorithm_is_named_with_its_carriers_and_paths(number):
    alg = ALGORITHMS[number - 1]
    d = describe_patch(with_algorithm(init_voice(), number))
    text = d.text()
    carriers = ", ".join(f"OP{c + 1}" for c in alg.carriers)
    assert f"Algorithm {number}; carriers {carriers}\n" in text
    assert d.topology.algorithm == number
    assert d.topology.carriers == [c + 1 for c in alg.carriers]
    assert d.topology.unused == []
    # Every forward edge lies on a described chain, and chains use forward edges only.
    forward = {(s + 1, t + 1) for t in range(6) for s in range(t + 1, 6) if alg.modmatrix[t][s]}
    in_chains = {(c[i], c[i + 1]) for c in d.topology.chains for i in range(len(c) - 1)}
    assert in_chains == forward
    assert all(c[-1] in d.topology.carriers for c in d.topology.chains)
    fs, ft = alg.feedback_edge
    assert [(e.source, e.target) for e in d.topology.feedback_edges] == [(fs + 1, ft + 1)]


def test_chains_read_as_paths_to_carriers():
    text = describe_patch(with_algorithm(init_voice(), 1)).text()
    assert "Paths: OP6 -> OP5 -> OP4 -> OP3 (carrier); OP2 -> OP1 (carrier)" in text
    text = describe_patch(with_algorithm(init_voice(), 32)).text()
    assert "Paths: OP1, OP2, OP3, OP4, OP5, OP6 unmodulated" in text


@pytest.mark.parametrize(("number", "loop"), [(4, "loop OP4 -> OP6"), (6, "loop OP5 -> OP6")])
def test_feedback_loops_of_algorithms_4_and_6(number, loop):
    p = with_algorithm(init_voice(), number).model_copy(update={"feedback": 5})
    assert f"Feedback: {loop}, amount 5" in describe_patch(p).text()
    assert f"Feedback: {loop}, off (amount 0)" in describe_patch(with_algorithm(init_voice(), number)).text()


def test_self_feedback_and_amount():
    p = with_algorithm(init_voice(), 5).model_copy(update={"feedback": 7})
    assert "Feedback: OP6 self-feedback, amount 7" in describe_patch(p).text()


def test_custom_topology_names_the_nearest_algorithm():
    p = with_algorithm(init_voice(), 5)
    mod = [row[:] for row in p.modmatrix]
    mod[0][2] = 1  # OP3 also modulates OP1
    d = describe_patch(p.model_copy(update={"modmatrix": mod}))
    assert d.topology.algorithm is None
    assert (d.topology.nearest_algorithm, d.topology.differing_entries) == (5, 1)
    assert "Custom topology, nearest algorithm 5 (1 entry differs)" in d.text()
    assert "OP4 -> OP3 (carrier) -> OP1 (carrier)" in d.text()


def test_unused_operators_are_marked():
    p = with_algorithm(init_voice(), 32)
    out = list(p.outmatrix)
    out[5] = 0  # OP6: no longer a carrier and modulates nothing
    d = describe_patch(p.model_copy(update={"outmatrix": out}))
    assert d.topology.unused == [6]
    assert d.operators[5].role == "unused"
    assert "Unused (reach no carrier): OP6" in d.text()
    assert "OP6 unused" in d.text()
    # A modulator that only feeds an unused operator is unused too.
    p = with_algorithm(init_voice(), 1)
    out = list(p.outmatrix)
    out[2] = 0  # OP3 stops being a carrier: the whole OP6 -> OP3 stack is dead
    d = describe_patch(p.model_copy(update={"outmatrix": out}))
    assert d.topology.unused == [3, 4, 5, 6]
    assert [o.role for o in d.operators] == ["carrier", "modulator", "unused", "unused", "unused", "unused"]
    assert d.topology.chains == [[2, 1]]


def test_roles_name_whom_a_modulator_modulates():
    d = describe_patch(with_algorithm(init_voice(), 22).model_copy(update={"ol": [99] * 6}))
    assert d.operators[5].modulates == [3, 4, 5]
    assert "OP6 modulates OP3, OP4, OP5 |" in d.text()


# --- levels and frequencies -----------------------------------------------------------------------


def test_full_level_operator_is_0_db():
    d = describe_patch(init_voice(), velocity=100)
    op1 = d.operators[0]
    assert op1.level_db == 0.0 and op1.peak_db == 0.0
    assert op1.envelope.stages[0].target_db == 0.0
    assert "level 0.0 dB (OL 99)" in d.text()


def test_output_level_90_matches_dexed_py():
    p = init_voice().model_copy(update={"ol": [90, 0, 0, 0, 0, 0]})
    assert describe_patch(p).operators[0].level_db == pytest.approx(-6.78, abs=0.05)


def test_output_level_follows_the_s_curve():
    # 0.7526 dB per OL step above 20 (reference §2.2: OL 50 -> -36.83 dB, OL 40 -> -44.3 dB)
    for ol, db in ((50, -36.83), (40, -44.3)):
        p = init_voice().model_copy(update={"ol": [ol, 0, 0, 0, 0, 0]})
        assert describe_patch(p).operators[0].level_db == pytest.approx(db, abs=0.15)


def test_velocity_sensitivity_moves_the_level():
    p = init_voice().model_copy(update={"sensitivity": [7, 0, 0, 0, 0, 0]})
    soft = describe_patch(p, velocity=64).operators[0]
    assert soft.velocity_db == pytest.approx(-10.5, abs=0.1)  # reference §2.6 table
    assert soft.level_db == pytest.approx(-10.5, abs=0.1)
    assert soft.velocity_range_db == pytest.approx((-78.6, 5.3), abs=0.1)


def test_keyboard_level_scaling_at_the_note():
    p = init_voice().model_copy(update={"ol": [80, 0, 0, 0, 0, 0], "kls_right_depth": [99, 0, 0, 0, 0, 0],
                                        "kls_right_curve": ["-lin"] * 6, "kls_breakpoint": [39] * 6})
    low = describe_patch(p, note=60).operators[0]
    high = describe_patch(p, note=60 + 17 + 12).operators[0]
    assert low.level_scaling is not None and low.level_scaling.breakpoint_midi == 60
    assert high.level_scaling.db_at_note < -20  # four groups of three keys above the centre
    assert high.level_db == pytest.approx(low.level_db + high.level_scaling.db_at_note - low.level_scaling.db_at_note, abs=0.05)
    assert "level scaling BP 39 (MIDI 60)" in describe_patch(p).text()


def test_ratio_and_fixed_frequencies():
    p = edit(init_voice(), coarse=[0, 3, 2, 1, 1, 1], fine=[0, 50, 0, 0, 0, 0], fixed_freq=[0, 0, 1, 0, 0, 0],
             ol=[99] * 6)
    d = describe_patch(p, note=69)
    f1, f2, f3 = (d.operators[i].frequency for i in range(3))
    assert f1.mode == "ratio" and f1.ratio == 0.5 and f1.hz == pytest.approx(220.0, rel=1e-4)
    assert f2.ratio == 4.5 and f2.hz == pytest.approx(1980.0, rel=1e-4)
    assert f3.mode == "fixed" and f3.ratio is None and f3.hz == pytest.approx(100.0, abs=0.01)
    # Transpose moves ratio operators, not fixed ones.
    d = describe_patch(p.model_copy(update={"transpose": 12}), note=69)
    assert d.operators[0].frequency.hz == pytest.approx(440.0, rel=1e-4)
    assert d.operators[2].frequency.hz == pytest.approx(100.0, abs=0.01)
    text = describe_patch(p, note=69).text()
    assert "ratio 0.50 = 220.00 Hz" in text and "ratio 4.50 = 1980.00 Hz" in text
    assert "fixed 100.00 Hz" in text


def test_detune_in_cents():
    p = edit(init_voice(), detune=[7, -7, 0, 0, 0, 0], ol=[99] * 6)
    d = describe_patch(p, note=60)
    assert d.operators[0].frequency.detune_cents == pytest.approx(7 * 1.20, rel=0.05)  # ~1.2 c/step at C4
    assert d.operators[1].frequency.detune_cents == pytest.approx(-d.operators[0].frequency.detune_cents)
    assert f"detune +7 ({d.operators[0].frequency.detune_cents:+.2f} c)" in d.text()


def test_modulation_index_of_a_full_scale_modulator():
    p = with_algorithm(init_voice(), 1).model_copy(update={"ol": [99, 99, 0, 0, 0, 0]})
    op2 = describe_patch(p).operators[1]
    assert op2.role == "modulator" and op2.modulates == [1]
    assert op2.mod_index_rad == pytest.approx(4 * math.pi, rel=1e-3)  # +-2 cycles (reference §2.3)


# --- envelopes ------------------------------------------------------------------------------------

# reference/dx7.md §2.4: (R, decay L99 -> L0 seconds, attack silence -> L99 seconds) at 44.1 kHz
EG_TABLE = [
    (0, 355.2, 44.19), (10, 118.4, 14.73), (20, 44.40, 5.52), (30, 12.69, 1.58), (40, 4.44, 0.552),
    (50, 1.387, 0.171), (60, 0.463, 0.0566), (70, 0.174, 0.0203), (80, 0.0508, 0.0058), (90, 0.0174, 0.0015),
    (99, 0.0073, 0.0015),
]


@pytest.mark.parametrize(("rate", "decay_s", "attack_s"), EG_TABLE)
def test_envelope_times_match_the_reference_table(rate, decay_s, attack_s):
    block = 64 / 44100
    d = describe_patch(solo_op1(r2=rate, l2=0), sample_rate=44100)
    decay = d.operators[0].envelope.stages[1]
    assert decay.silent
    if decay_s > MAX_STAGE_S:
        assert decay.time_ms is None
        assert f"decay1 > {MAX_STAGE_S:g} s to silent" in d.text()
    else:
        assert decay.time_ms / 1000 == pytest.approx(decay_s, rel=0.01, abs=block)
    attack = describe_patch(solo_op1(r1=rate), sample_rate=44100).operators[0].envelope.stages[0]
    assert attack.target_db == 0.0
    assert attack.time_ms / 1000 == pytest.approx(attack_s, rel=0.03, abs=block)


def test_rate_99_attack_is_one_block():
    d = describe_patch(init_voice(), sample_rate=48000)
    assert d.operators[0].envelope.stages[0].time_ms == pytest.approx(64 / 48, abs=0.05)


def test_envelope_times_do_not_depend_on_the_sample_rate():
    p = solo_op1(r2=45, l2=60, r3=30, l3=20, r4=55)
    a = describe_patch(p, sample_rate=44100).operators[0].envelope.stages
    b = describe_patch(p, sample_rate=16000).operators[0].envelope.stages
    for x, y in zip(a, b):
        assert x.time_ms == pytest.approx(y.time_ms, rel=0.02, abs=5)
        assert x.target_db == y.target_db


def test_rate_scaling_speeds_the_envelope_up():
    p = solo_op1(r2=50, l2=0)
    slow = describe_patch(p, note=60).operators[0]
    fast = describe_patch(p.model_copy(update={"rate_scaling": [7, 0, 0, 0, 0, 0]}), note=60).operators[0]
    assert fast.rate_scaling is not None and fast.rate_scaling.qrate_offset == 11
    ratio = slow.envelope.stages[1].time_ms / fast.envelope.stages[1].time_ms
    assert ratio == pytest.approx(6.7, rel=0.15)  # reference §2.7: +11 qrate ~ x6.7


def _block_db(x: np.ndarray) -> np.ndarray:
    n = len(x) // 64
    peak = np.abs(x[: n * 64]).reshape(n, 64).max(axis=1)
    return 20 * np.log10(np.maximum(peak, 1e-12))


def _crossing_s(db: np.ndarray, level: float, start: int = 0) -> float:
    i = start + int(np.argmax(db[start:] <= level))
    return i * 64 / 48000


@pytest.mark.parametrize(("r2", "l2"), [(40, 50), (55, 30), (30, 80)])
def test_described_decay_matches_a_render(r2, l2):
    p = solo_op1(r2=r2, l2=l2, r3=99, l3=l2, r4=60)
    env = describe_patch(p).operators[0].envelope
    attack, decay = env.stages[0], env.stages[1]
    db = _block_db(render(p, hold_s=decay.time_ms / 1000 + 1.0, release_s=0.1))
    # The decay is linear in dB: time from 3 dB below the peak to 3 dB above the target.
    t1 = _crossing_s(db, attack.target_db - 3)
    t2 = _crossing_s(db, decay.target_db + 3)
    span = attack.target_db - decay.target_db
    predicted = decay.time_ms / 1000 * (span - 6) / span
    assert t2 - t1 == pytest.approx(predicted, rel=0.10)


def test_described_release_matches_a_render():
    p = solo_op1(r2=99, l2=99, r3=99, l3=90, r4=45)
    env = describe_patch(p).operators[0].envelope
    rel = env.stages[3]
    hold = 0.5
    db = _block_db(render(p, hold_s=hold, release_s=rel.time_ms / 1000 + 0.5))
    start = int(hold * 48000 / 64)
    t1 = _crossing_s(db, env.sustain_db - 3, start)
    t2 = _crossing_s(db, -60.0, start)
    # Linear in dB from the sustain level to the release target.
    fraction = ((env.sustain_db - 3) - (-60.0)) / (env.sustain_db - rel.target_db)
    predicted = rel.time_ms / 1000 * fraction
    assert t2 - t1 == pytest.approx(predicted, rel=0.10)


def test_holds_and_release_from_peak():
    d = describe_patch(epiano())
    op1 = d.operators[0].envelope
    assert op1.stages[2].silent and op1.stages[3].hold
    assert op1.release_from_peak_ms is not None and op1.release_from_peak_ms > op1.stages[3].time_ms
    assert "release" in d.text() and "from peak to silent" in d.text()


# --- pitch EG, LFO --------------------------------------------------------------------------------


def test_pitch_eg_flat_and_moving():
    assert "Pitch EG: flat" in describe_patch(init_voice()).text()
    p = init_voice().model_copy(update={"pitch_eg_level": [82, 50, 50, 50], "pitch_eg_rate": [99, 50, 99, 99]})
    d = describe_patch(p)
    pe = d.pitch_eg
    assert not pe.flat and pe.start_cents == 0 and pe.stages[0].cents == 1200
    # R50 moves about 1.92 octaves per second (reference §2.12): one octave back in ~0.52 s.
    assert pe.stages[1].time_ms / 1000 == pytest.approx(1 / 1.92, rel=0.05)
    assert "attack" in d.text() and "+1200 c" in d.text()


def test_lfo_is_described_when_it_has_depth():
    assert "LFO" not in describe_patch(init_voice()).text()
    p = edit(init_voice(), lfo={"speed": 50, "delay": 50, "pmd": 99, "amd": 0, "sync": True, "wave": "sine"}, pms=7)
    d = describe_patch(p)
    assert d.lfo.active
    assert d.lfo.rate_hz == pytest.approx(7.993605 * 1.033186, rel=1e-3)
    assert d.lfo.pitch_depth_cents == pytest.approx(0.992 * 1200, rel=0.01)
    assert d.lfo.delay_ms == pytest.approx(313, rel=0.05) and d.lfo.fade_ms == pytest.approx(333, rel=0.05)
    assert "LFO: sine 8.26 Hz" in d.text()
    q = edit(p, pms=0)
    assert "no effect" in describe_patch(q).text()


def test_tremolo_is_reported_on_its_operators():
    p = edit(init_voice(), ams=[3, 0, 0, 0, 0, 0],
             lfo={"speed": 35, "delay": 0, "pmd": 0, "amd": 50, "sync": True, "wave": "triangle"})
    d = describe_patch(p)
    tr = d.operators[0].tremolo
    assert tr is not None and tr.always_db < 0 and tr.depth_db is not None and tr.depth_db < 0
    assert "tremolo AMD 50 on OP1" in d.text() and "AMS 3" in d.text()


# --- robustness and the text/data contract --------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.#])[+-]?\d+(?:\.\d+)?")


def _numbers(obj) -> list[float]:
    if isinstance(obj, bool) or obj is None:
        return []
    if isinstance(obj, (int, float)):
        return [float(obj)]
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in _numbers(v)]
    if isinstance(obj, (list, tuple)):
        return [x for v in obj for x in _numbers(v)]
    return []


def _text_numbers_are_in_the_data(d: PatchDescription) -> None:
    data = _numbers(d.model_dump()) + [MAX_STAGE_S]
    for tok in _NUMBER.findall(d.text()):
        x = float(tok)
        nd = len(tok.split(".")[1]) if "." in tok else 0
        tol = 0.5 * 10 ** -nd + 1e-9
        ok = any(abs(abs(v) - abs(x)) <= tol or abs(abs(v) / 1000 - abs(x)) <= tol for v in data)
        assert ok, f"{tok} in the text is not in the data:\n{d.text()}"


def test_random_patches_never_crash_and_stay_compact():
    rng = random.Random(20240601)
    for _ in range(200):
        p = random_patch(rng)
        d = describe_patch(p, note=rng.randint(0, 127), velocity=rng.randint(1, 127),
                           sample_rate=rng.choice([16000, 22050, 32000, 44100, 48000]))
        text = d.text()
        lines = text.splitlines()
        assert 5 <= len(lines) <= 32, text
        assert len(text) <= 4000 and max(map(len, lines)) <= 260, text
        assert PatchDescription.model_validate(d.model_dump()) == d
        _text_numbers_are_in_the_data(d)


def test_epiano_text_and_data_agree():
    d = describe_patch(epiano())
    _text_numbers_are_in_the_data(d)
    text = d.text()
    assert "Algorithm 5; carriers OP1, OP3, OP5" in text
    assert "Paths: OP6 -> OP5 (carrier); OP4 -> OP3 (carrier); OP2 -> OP1 (carrier)" in text
    assert "Feedback: OP6 self-feedback, amount 6" in text
    assert "OP2 modulates OP1 | ratio 14.00" in text
    assert 15 <= len(text.splitlines()) <= 30


def test_accepts_a_dict_and_rejects_bad_requests():
    d = describe_patch(init_voice().to_dict())
    assert d.name == "INIT VOICE"
    with pytest.raises(RenderError, match="note"):
        describe_patch(init_voice(), note=128)
    with pytest.raises(RenderError, match="velocity"):
        describe_patch(init_voice(), velocity=0)
    with pytest.raises(RenderError, match="sample_rate"):
        describe_patch(init_voice(), sample_rate=8000)
