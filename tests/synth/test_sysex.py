"""The DX7 sysex codec: packed voice <-> VCED <-> Patch, VCED/VMEM messages, strict reading.

Project-made banks run everywhere; the Yamaha banks and the dexed-py cross-check need ../shared.
"""

from __future__ import annotations

import random
import warnings

import pytest
from ..conftest import FACTORY_BANKS, YAMAHA, need
from hypothesis import given, settings
from hypothesis import strategies as st
from .sysex_strategies import dx7_patches, random_bank, random_patch

from patchsmith.schema.patch import Patch
from patchsmith.schema.algorithms import ALGORITHMS, algorithm_of
from patchsmith.schema.params import KLS_CURVES
from patchsmith.synth.sysex import (
    VCED_PARAMS,
    NotRepresentableError,
    SysexError,
    checksum,
    init_voice,
    pack_voice,
    patch_to_vced,
    read_sysex,
    unpack_voice,
    vced_to_patch,
    voice_key,
    write_vced,
    write_vmem,
)
from patchsmith.synth.sysex_reader import read_bank_bytes, read_bank_file

# --- packed <-> VCED -----------------------------------------------------------------------------

vced_values = st.tuples(*[st.integers(0, top) for _, top in VCED_PARAMS[:145]]).map(list)
names = st.binary(min_size=10, max_size=10).map(lambda b: [0x20 + c % 95 for c in b])


@given(vced_values, names)
def test_pack_unpack_round_trip(values, name):
    vced = values + name
    packed = pack_voice(vced)
    assert len(packed) == 128
    assert unpack_voice(packed) == vced
    assert pack_voice(unpack_voice(packed)) == packed


def test_packed_bit_fields_follow_the_documented_layout():
    vced = [0] * 145 + list(b"BIT FIELDS")
    op1 = 105  # OP1 is the last operator block of a VCED
    vced[op1 + 11], vced[op1 + 12] = 2, 3  # left / right curve
    vced[op1 + 13], vced[op1 + 20] = 5, 14  # rate scaling, detune
    vced[op1 + 14], vced[op1 + 15] = 3, 6  # AMS, KVS
    vced[op1 + 17], vced[op1 + 18] = 1, 31  # osc mode, coarse
    vced[134], vced[135], vced[136] = 31, 7, 1  # algorithm, feedback, OKS
    vced[141], vced[142], vced[143] = 1, 5, 7  # LFO sync, wave, PMS
    packed = pack_voice(vced)
    p = 17 * 5
    assert packed[p + 11] == 2 | 3 << 2
    assert packed[p + 12] == 5 | 14 << 3
    assert packed[p + 13] == 3 | 6 << 2
    assert packed[p + 15] == 1 | 31 << 1
    assert packed[110] == 31 and packed[111] == 7 | 1 << 3
    assert packed[116] == 1 | 5 << 1 | 7 << 4
    assert packed[118:] == b"BIT FIELDS"


def test_pack_refuses_out_of_range_values_naming_them():
    vced = [0] * 145 + list(b"          ")
    vced[0] = 100
    vced[134] = 32
    with pytest.raises(SysexError, match=r"OP6 EG rate 1 is 100, allowed 0\.\.99.*algorithm is 32"):
        pack_voice(vced)
    with pytest.raises(SysexError, match="155 VCED parameters"):
        pack_voice([0] * 10)
    with pytest.raises(SysexError, match="integers"):
        pack_voice([0.5] * 155)


# --- VCED <-> Patch -------------------------------------------------------------------------------


def _distinct_vced() -> list[int]:
    """A VCED where each operator's fields differ, so any order mix-up shows."""
    vced = []
    for block in range(6):  # block 0 is OP6
        op = 6 - block
        vced += [10 + op, 20 + op, 30 + op, 40 + op, 50 + op, 60 + op, 70 + op, 80 + op]  # rates, levels
        vced += [op, 10 * op, 11 * op, op % 4, (op + 1) % 4, op, op % 4, op, 90 + op, op % 2, op + 20, op + 30, op]
    vced += [91, 92, 93, 94, 45, 46, 47, 48]  # pitch EG
    vced += [3, 5, 0, 33, 44, 55, 66, 0, 5, 6, 30]  # alg 4, fb 5, OKS off, LFO (S&H), PMS 6, transpose 30
    return vced + list(b"ORDER TEST")


def test_vced_to_patch_is_op1_first_everywhere():
    patch = vced_to_patch(_distinct_vced())
    ops = [1, 2, 3, 4, 5, 6]
    assert patch.ol == [90 + op for op in ops]
    assert patch.eg_rate == [[10 * (s + 1) + op for op in ops] for s in range(4)]
    assert patch.eg_level == [[50 + 10 * s + op for op in ops] for s in range(4)]
    assert patch.kls_breakpoint == ops
    assert patch.kls_left_depth == [10 * op for op in ops]
    assert patch.kls_right_depth == [11 * op for op in ops]
    assert patch.kls_left_curve == [KLS_CURVES[op % 4] for op in ops]
    assert patch.kls_right_curve == [KLS_CURVES[(op + 1) % 4] for op in ops]
    assert patch.rate_scaling == ops
    assert patch.ams == [op % 4 for op in ops]
    assert patch.sensitivity == ops
    assert patch.fixed_freq == [op % 2 for op in ops]
    assert patch.coarse == [op + 20 for op in ops]  # fixed operators keep the full 0-31 value
    assert patch.fine == [op + 30 for op in ops]
    assert patch.detune == [op - 7 for op in ops]
    assert patch.pitch_eg_rate == [91, 92, 93, 94] and patch.pitch_eg_level == [45, 46, 47, 48]
    assert algorithm_of(patch.modmatrix, patch.outmatrix) == 4
    assert patch.modmatrix[5][3] == 1 and patch.modmatrix[3][3] == 0  # algorithm 4's OP4 -> OP6 loop
    assert patch.feedback == 5 and patch.osc_sync is False
    assert (patch.lfo.speed, patch.lfo.delay, patch.lfo.pmd, patch.lfo.amd) == (33, 44, 55, 66)
    assert patch.lfo.sync is False and patch.lfo.wave == "sample_hold" and patch.pms == 6
    assert patch.transpose == 6
    assert patch.name == "ORDER TEST"
    assert patch_to_vced(patch) == _distinct_vced()


def test_every_algorithm_round_trips_with_its_feedback_edge():
    rng = random.Random(1)
    for alg in ALGORITHMS:
        patch = random_patch(rng, alg.number)
        vced = patch_to_vced(patch)
        assert vced[134] == alg.number - 1
        back = vced_to_patch(vced)
        assert back == patch
        source, target = alg.feedback_edge
        assert back.modmatrix[target][source] == 1


@settings(max_examples=200, deadline=None)
@given(dx7_patches())
def test_patch_vced_patch_is_identity(patch):
    assert vced_to_patch(patch_to_vced(patch)) == patch
    assert read_sysex(write_vced(patch)).voices == [patch]


def test_names_are_exact_ten_characters_and_short_names_are_padded():
    patch = random_patch(random.Random(2))
    trailing = patch.model_copy(update={"name": "PAD       "})
    assert vced_to_patch(patch_to_vced(trailing)).name == "PAD       "
    short = patch.model_copy(update={"name": "PAD"})
    assert bytes(patch_to_vced(short)[145:]) == b"PAD       "
    nameless = patch.model_copy(update={"name": None})
    assert bytes(patch_to_vced(nameless)[145:]) == b" " * 10


def test_export_refuses_a_topology_that_is_no_dx7_algorithm():
    patch = random_patch(random.Random(3), 1)
    modmatrix = [list(r) for r in patch.modmatrix]
    modmatrix[0][5] = 1  # OP6 also modulates OP1: algorithm 1 plus one entry
    odd = patch.model_copy(update={"modmatrix": modmatrix})
    with pytest.raises(NotRepresentableError, match=r"nearest is algorithm 1 \(1 matrix entry differs\)"):
        patch_to_vced(odd)
    with pytest.raises(NotRepresentableError, match=r"voice 2 .*nearest is algorithm 1"):
        write_vmem([patch, odd])
    with pytest.raises(ValueError):  # NotRepresentableError is a ValueError
        write_vced(odd)
    no_feedback_edge = [list(r) for r in patch.modmatrix]
    no_feedback_edge[5][5] = 0
    with pytest.raises(NotRepresentableError, match=r"\(1 matrix entry differs\)"):
        voice_key(patch.model_copy(update={"modmatrix": no_feedback_edge}))


def test_voice_key_ignores_the_name_only():
    patch = random_patch(random.Random(4))
    renamed = patch.model_copy(update={"name": "OTHER NAME"})
    assert len(voice_key(patch)) == 118
    assert voice_key(patch) == voice_key(renamed)
    other_level = patch.model_copy(update={"ol": [(patch.ol[0] + 1) % 100, *patch.ol[1:]]})
    assert voice_key(other_level) != voice_key(patch)


# --- messages --------------------------------------------------------------------------------------


def test_write_vced_layout():
    patch = random_patch(random.Random(5))
    message = write_vced(patch, channel=5)
    assert len(message) == 163
    assert message[:6] == bytes([0xF0, 0x43, 0x05, 0x00, 0x01, 0x1B])
    assert message[6:161] == bytes(patch_to_vced(patch))
    assert message[161] == checksum(message[6:161]) and message[162] == 0xF7
    read = read_sysex(message)
    assert (read.kind, read.channel, read.voices) == ("voice", 5, [patch])


def test_write_vmem_layout_padding_and_limits():
    bank = random_bank(6)
    message = write_vmem(bank[:3], channel=15)
    assert len(message) == 4104
    assert message[:6] == bytes([0xF0, 0x43, 0x0F, 0x09, 0x20, 0x00])
    assert message[4102] == checksum(message[6:4102]) and message[4103] == 0xF7
    read = read_sysex(message)
    assert read.kind == "bank" and read.channel == 15
    assert read.voices[:3] == bank[:3]
    assert read.voices[3:] == [init_voice()] * 29
    assert read.voices[3].name == "INIT VOICE" and read.voices[3].ol == [99, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="at most 32"):
        write_vmem(bank + bank[:1])
    with pytest.raises(ValueError, match="channel"):
        write_vmem(bank, channel=16)


@pytest.mark.parametrize("seed", range(8))
def test_project_made_bank_round_trips_bytes_and_patches(seed):
    bank = random_bank(seed)
    message = write_vmem(bank)
    strict = read_sysex(message)
    assert strict.voices == bank
    tolerant = read_bank_bytes(message)
    assert tolerant.voices == bank and tolerant.tolerated == [] and tolerant.refused is None
    assert tolerant.names == [p.name for p in bank]
    assert write_vmem(tolerant.voices) == message


@settings(max_examples=25, deadline=None)
@given(st.lists(dx7_patches(), min_size=1, max_size=32))
def test_any_project_bank_round_trips(patches):
    message = write_vmem(patches)
    voices = read_bank_bytes(message).voices
    assert voices[: len(patches)] == patches
    assert write_vmem(voices) == message


def test_read_sysex_is_strict():
    message = bytearray(write_vmem(random_bank(7)))
    good = bytes(message)
    bad_checksum = bytearray(good)
    bad_checksum[4102] ^= 0x01
    with pytest.raises(SysexError, match="checksum mismatch"):
        read_sysex(bytes(bad_checksum))
    with pytest.raises(SysexError, match="4104 bytes, got 4103"):
        read_sysex(good[:-1])
    with pytest.raises(SysexError, match="F0 43"):
        read_sysex(good[6:])
    four_op = bytearray(good)
    four_op[3] = 0x04
    with pytest.raises(SysexError, match="neither a DX7 single voice"):
        read_sysex(bytes(four_op))
    no_f7 = bytearray(good)
    no_f7[-1] = 0x00
    with pytest.raises(SysexError, match="F7"):
        read_sysex(bytes(no_f7))
    out_of_range = bytearray(good)
    out_of_range[6 + 128 * 4 + 0] = 127  # voice 5, OP6 EG rate 1
    out_of_range[4102] = checksum(out_of_range[6:4102])
    with pytest.raises(SysexError, match=r"voice 5: OP6 EG rate 1 is 127"):
        read_sysex(bytes(out_of_range))


# --- the Yamaha banks (third-party data) -------------------------------------------------------------

# These banks hold values outside the DX7 ranges (mostly 127 = 0x7F in a 0-99 field, and detune 15)
# and, in rom3a/rom3b, set bits in unused bit-field positions. A Patch holds only in-range values, so
# they are clamped (as the source research's loader does) and the bank cannot come back byte for byte.
REPAIRED_BANKS = {
    "greymatter-5", "rom3a", "rom3b", "rom4a", "vrc101a", "vrc101b", "vrc102a", "vrc102b", "vrc103b",
    "vrc106a", "vrc106b", "vrc107a", "vrc107b", "vrc108a", "vrc108b", "vrc109a", "vrc109b", "vrc110a",
    "vrc110b", "vrc111a", "vrc111b",
}  # fmt: skip  (out-of-range values or junk bits: the reader repairs and reports them)


def _sanitized(bank: bytes) -> bytes:
    """The bank as the tolerant reader repairs it: values clamped, unused bits cleared, names printable."""
    payload = bytearray()
    for k in range(32):
        vced = unpack_voice(bank[6 + 128 * k : 6 + 128 * (k + 1)])
        vced = [min(v, top) for v, (_, top) in zip(vced[:145], VCED_PARAMS)]
        vced += [c if 0x20 <= c <= 0x7E else 0x20 for c in unpack_voice(bank[6 + 128 * k : 6 + 128 * (k + 1)])[145:]]
        payload += pack_voice(vced)
    return bank[:6] + bytes(payload) + bytes([checksum(payload), 0xF7])


def test_yamaha_banks_round_trip_byte_for_byte():
    files = sorted(need(YAMAHA).glob("*.syx"))
    assert len(files) == 35
    repaired = []
    for path in files:
        data = path.read_bytes()
        read = read_bank_file(path)
        assert read.refused is None and len(read.voices) == 32, (path.name, read.refused)
        assert write_vmem(read.voices) == data, path.name  # unedited voices keep the file's own bytes
        if read.tolerated:
            repaired.append(path.stem)
            # The repaired patches themselves hold legal values only; written as new patches
            # (origin dropped, as after any edit) they give the reported repairs and nothing else.
            fresh = [Patch.model_validate(p.model_dump()) for p in read.voices]
            assert write_vmem(fresh) == _sanitized(data), path.name
    assert set(repaired) == REPAIRED_BANKS


def test_an_edited_repaired_voice_is_written_from_its_parameters():
    path = need(YAMAHA) / "rom3a.syx"
    read = read_bank_file(path)
    k = next(i for i, p in enumerate(read.voices) if p._sysex_origin is not None)
    voice = read.voices[k].model_copy(deep=True)
    voice.ol[0] = (voice.ol[0] + 1) % 100
    written = write_vmem([voice])
    assert read_bank_bytes(written).voices[0].ol[0] == voice.ol[0]
    assert read_bank_bytes(written).tolerated == []


_DEXED_CURVES = {"lin": "-lin", "exp-": "-exp", "exp+": "+exp", "log": "+lin"}  # dexed-py index order 0..3
_DEXED_WAVES = {"triangle": "triangle", "saw_down": "saw_down", "saw_up": "saw_up", "square": "square", "sine": "sine", "s&h": "sample_hold"}  # fmt: skip


def test_factory_voices_match_dexed_py():
    """Every parameter of the 256 factory voices equals dexed-py's reading (the test-only oracle)."""
    dexed = pytest.importorskip("dexed", reason="dexed-py (GPL) is a dev-only test oracle")
    need(YAMAHA)
    clamped = []
    for bank in FACTORY_BANKS:
        path = YAMAHA / f"{bank}.syx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = dexed.Patch.load_bank(str(path))
        read = read_bank_file(path)
        assert len(theirs) == len(read.voices) == 32
        for index, (ours, them) in enumerate(zip(read.voices, theirs)):
            where = f"{bank} voice {index + 1}"

            def same(label: str, mine, their, top: int | None = None) -> None:
                expected = min(their, top) if top is not None else their
                if top is not None and their > top:
                    clamped.append(f"{where} {label} {their}")
                assert mine == expected, f"{where} {label}: ours {mine!r}, dexed-py {their!r}"

            same("algorithm", algorithm_of(ours.modmatrix, ours.outmatrix) - 1, them.algorithm)
            same("feedback", ours.feedback, them.feedback)
            same("osc key sync", ours.osc_sync, them.osc_key_sync)
            same("transpose", ours.transpose + 24, them.transpose, 48)
            same("pitch mod sensitivity", ours.pms, them.pitch_mod_sensitivity)
            same("LFO speed", ours.lfo.speed, them.lfo.speed, 99)
            same("LFO delay", ours.lfo.delay, them.lfo.delay, 99)
            same("LFO pmd", ours.lfo.pmd, them.lfo.pitch_mod_depth, 99)
            same("LFO amd", ours.lfo.amd, them.lfo.amp_mod_depth, 99)
            same("LFO sync", ours.lfo.sync, them.lfo.sync)
            same("LFO wave", ours.lfo.wave, _DEXED_WAVES[them.lfo.wave])
            for s in range(4):
                same(f"pitch EG rate {s + 1}", ours.pitch_eg_rate[s], them.pitch_envelope.rates[s], 99)
                same(f"pitch EG level {s + 1}", ours.pitch_eg_level[s], them.pitch_envelope.levels[s], 99)
            for k in range(6):
                op = them.op[k]  # dexed-py's op[0] is OP1, like ours
                same(f"OP{k + 1} output level", ours.ol[k], op.output_level, 99)
                same(f"OP{k + 1} coarse", ours.coarse[k], op.frequency_coarse)
                same(f"OP{k + 1} fine", ours.fine[k], op.frequency_fine, 99)
                same(f"OP{k + 1} osc mode", ours.fixed_freq[k], op.frequency_mode)
                same(f"OP{k + 1} detune", ours.detune[k] + 7, op.detune, 14)
                same(f"OP{k + 1} velocity sensitivity", ours.sensitivity[k], op.velocity_sensitivity)
                same(f"OP{k + 1} amp mod sensitivity", ours.ams[k], op.amp_mod_sensitivity)
                same(f"OP{k + 1} rate scaling", ours.rate_scaling[k], op.rate_scaling)
                same(f"OP{k + 1} breakpoint", ours.kls_breakpoint[k], op.breakpoint, 99)
                same(f"OP{k + 1} left depth", ours.kls_left_depth[k], op.left_depth, 99)
                same(f"OP{k + 1} right depth", ours.kls_right_depth[k], op.right_depth, 99)
                same(f"OP{k + 1} left curve", ours.kls_left_curve[k], _DEXED_CURVES[op.left_curve])
                same(f"OP{k + 1} right curve", ours.kls_right_curve[k], _DEXED_CURVES[op.right_curve])
                for s in range(4):
                    same(f"OP{k + 1} EG rate {s + 1}", ours.eg_rate[s][k], op.envelope.rates[s], 99)
                    same(f"OP{k + 1} EG level {s + 1}", ours.eg_level[s][k], op.envelope.levels[s], 99)
            same("name", ours.name, them.name)
            reported = " ".join(line for line in read.tolerated if line.startswith(f"voice {index + 1} "))
            for entry in clamped:
                if entry.startswith(where + " "):
                    label, _, value = entry[len(where) + 1 :].rpartition(" ")
                    assert f"{label} {value} out of range, clamped to" in reported, entry
    # dexed-py keeps the out-of-range factory values as stored; we clamp them, and report each.
    assert clamped == [
        "rom3a voice 20 OP2 EG level 3 127",
        "rom3b voice 2 OP6 EG rate 1 127",
        "rom3b voice 15 OP1 fine 100",
        "rom4a voice 8 OP5 EG level 4 127",
    ]
