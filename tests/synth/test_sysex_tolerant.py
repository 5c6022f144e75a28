"""The tolerant reader: real-world files load with a report, garbage is refused, nothing ever raises."""

from __future__ import annotations

import hashlib
import random
import time
import zipfile

import pytest
from ..conftest import ALLTHEWEB, YAMAHA, need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from .sysex_strategies import random_bank, random_patch

from patchsmith.schema.patch import Patch
from patchsmith.synth import sysex
from patchsmith.synth.sysex import checksum, pack_voice, patch_to_vced, write_vced, write_vmem
from patchsmith.synth.sysex_reader import BankRead, read_bank_bytes, read_bank_file


def _check_invariants(read: BankRead) -> None:
    """What every answer of the reader satisfies, whatever the input."""
    assert isinstance(read, BankRead)
    assert read.refused is None or "internal error" not in read.refused, read.refused
    assert (read.refused is None) == bool(read.voices)
    assert len(read.names) == len(read.voices)
    assert all(isinstance(v, Patch) and isinstance(n, str) and len(n) == 10 for v, n in zip(read.voices, read.names))
    assert all(isinstance(line, str) for line in read.tolerated)


@pytest.fixture(scope="module")
def bank() -> list[Patch]:
    return random_bank(11)


@pytest.fixture(scope="module")
def message(bank) -> bytes:
    return write_vmem(bank)


def test_clean_bank_is_read_without_remarks(bank, message):
    read = read_bank_bytes(message, source="clean.syx")
    assert read.ok and read.voices == bank and read.tolerated == [] and read.source == "clean.syx"


def test_reexported_from_sysex_module():
    assert sysex.read_bank_bytes is read_bank_bytes and sysex.BankRead is BankRead
    with pytest.raises(AttributeError):
        sysex.no_such_name  # noqa: B018


def test_bad_checksum_is_tolerated_and_reported(bank, message):
    data = bytearray(message)
    data[4102] = (data[4102] + 1) & 0x7F
    read = read_bank_bytes(bytes(data))
    assert read.voices == bank
    assert any("checksum mismatch" in line for line in read.tolerated)


def test_raw_payload_without_framing(bank, message):
    read = read_bank_bytes(message[6:4102])
    assert read.voices == bank
    assert read.tolerated == ["raw 4096-byte bank payload without sysex framing"]


def test_raw_unpacked_bank_of_32_voices(bank):
    data = b"".join(bytes(patch_to_vced(p)) for p in bank)
    assert len(data) == 4960
    read = read_bank_bytes(data)
    assert read.voices == bank and "32 unpacked" in read.tolerated[0]


def test_single_voice_dump_raw_voice_and_raw_packed_voice(bank):
    read = read_bank_bytes(write_vced(bank[0], channel=3))
    assert read.voices == [bank[0]] and read.tolerated == []
    assert read_bank_bytes(bytes(patch_to_vced(bank[1]))).voices == [bank[1]]
    assert read_bank_bytes(pack_voice(patch_to_vced(bank[2]))).voices == [bank[2]]


def test_concatenated_messages_with_junk_around(bank, message):
    other = random_bank(12)
    parameter_change = bytes([0xF0, 0x43, 0x10, 0x01, 0x06, 0x00, 0xF7])
    data = b"JUNK" + message + parameter_change + write_vced(other[5]) + write_vmem(other) + b"\x00\x01trailing"
    read = read_bank_bytes(data)
    assert read.voices == bank + [other[5]] + other
    assert read.names[32] == other[5].name
    text = "\n".join(read.tolerated)
    assert "skipped 1 sysex message(s) that are not DX7 voice data: F0 43 10 01 06 00 (a parameter change)" in text
    assert "ignored 14 byte(s) outside any sysex message" in text


def test_header_with_junk_inside_and_midi_file_framing(bank):
    # Seen in real files: F0 81 22 43 00 00 01 1B ... (two stray bytes after F0).
    voice = write_vced(bank[0])
    read = read_bank_bytes(voice[:1] + b"\x81\x22" + voice[1:])
    assert read.voices == [bank[0]]
    assert any("no F0 directly before the header" in line for line in read.tolerated)
    # A standard MIDI file stores a sysex event as F0 <length> 43 00 09 ... .
    midi = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60MTrk\x00\x00\x10\x10\x00\xf0\xa0\x07" + write_vmem(bank)[1:]
    assert read_bank_bytes(midi).voices == bank


def test_nonstandard_byte_count_missing_checksum_and_f7(bank, message):
    data = bytearray(message)
    data[4] = 0x10  # byte count 10 00, written by some librarians
    read = read_bank_bytes(bytes(data))
    assert read.voices == bank
    assert "nonstandard byte count 10 00" in read.tolerated[0]
    read = read_bank_bytes(message[:4102])
    assert read.voices == bank and "checksum and F7 missing" in read.tolerated[0]
    read = read_bank_bytes(message[:4103])
    assert read.voices == bank and "no F7 after the checksum" in read.tolerated[0]


def test_out_of_range_values_are_clamped_and_reported(bank, message):
    data = bytearray(message)
    voice3 = 6 + 128 * 2
    data[voice3 + 0] = 127  # OP6 EG rate 1
    data[voice3 + 17 * 5 + 12] = (data[voice3 + 17 * 5 + 12] & 0x07) | (15 << 3)  # OP1 detune 15
    data[voice3 + 116] = (data[voice3 + 116] & 0xF1) | (7 << 1)  # LFO wave 7
    data[voice3 + 111] |= 0x40  # an unused bit
    data[voice3 + 118] = 0x7F  # name character 1
    data[4102] = checksum(data[6:4102])
    read = read_bank_bytes(bytes(data))
    assert len(read.voices) == 32
    voice = read.voices[2]
    assert voice.eg_rate[0][5] == 99 and voice.detune[0] == 7 and voice.lfo.wave == "sample_hold"
    assert voice.name == " " + bank[2].name[1:]
    (line,) = read.tolerated
    assert line.startswith("voice 3 (")
    for fragment in (
        "OP6 EG rate 1 127 out of range, clamped to 99",
        "OP1 detune 15 out of range, clamped to 14",
        "LFO wave 7 out of range, clamped to 5",
        "unused bits set in packed byte 111 (0x40), ignored",
        "name character 1 byte 0x7F not printable, replaced by a space",
    ):
        assert fragment in line


def test_high_bytes_inside_a_complete_bank_do_not_truncate_it(bank, message):
    data = bytearray(message)
    data[6 + 128 * 9 + 20] = 0xF0  # corrupt byte inside voice 10 (seen in real banks)
    data[6 + 128 * 9 + 30] = 0xF7
    read = read_bank_bytes(bytes(data))
    assert len(read.voices) == 32 and read.voices[:9] == bank[:9]
    assert any(line.startswith("voice 10 (") for line in read.tolerated)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"F0 43 this is a text file about DX7 banks\r\n" * 100, "not the size of a raw payload"),
        ((b"A DX7 bank listing: BRASS 1, STRINGS 2.\r\n" * 120)[:4096], "look like text"),
        (bytes([0xF0, 0x43, 0x10, 0x01, 0x06, 0x00, 0xF7]) * 9, "none of them DX7 voice data: F0 43 10 01 06 00 (a parameter change)"),
        (bytes([0xF0, 0x43, 0x00, 0x04, 0x20, 0x00]) + bytes(4096) + b"\x00\xf7", "4-operator"),
        (bytes(random.Random(0).randrange(256) for _ in range(4096)), "out of range: not DX7 voice data"),
    ],
)
def test_junk_is_refused_with_a_reason(data, reason):
    read = read_bank_bytes(data)
    _check_invariants(read)
    assert read.voices == [] and reason in read.refused


def test_truncated_bank_is_refused(message):
    read = read_bank_bytes(message[:3000])
    assert read.refused == "bank at offset 0: truncated after 2994 of 4096 data bytes"
    # Truncated, then another dump: the complete one is read, the cut one reported.
    read = read_bank_bytes(message[:3000] + message)
    assert len(read.voices) == 32 and "skipped bank at offset 0: truncated" in read.tolerated[0]


def test_unreadable_path_is_refused(tmp_path):
    read = read_bank_file(tmp_path / "missing.syx")
    assert read.refused.startswith("cannot read the file") and read.voices == []
    path = tmp_path / "bank.syx"
    path.write_bytes(write_vmem([random_patch(random.Random(1))]))
    assert read_bank_file(path).ok and read_bank_file(str(path)).source == str(path)


# --- never raises ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=9000))
def test_random_bytes_never_raise(data):
    _check_invariants(read_bank_bytes(data))


sizes = st.sampled_from([0, 1, 6, 127, 128, 155, 156, 163, 4095, 4096, 4103, 4104, 4960, 8208])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["bank", "voice"]),
    st.lists(st.tuples(st.integers(0, 8300), st.integers(0, 255)), max_size=40),
    st.integers(0, 8300),
    st.binary(max_size=20),
    st.binary(max_size=20),
    st.booleans(),
)
def test_corrupted_and_truncated_dumps_never_raise(kind, corruptions, cut, before, after, twice):
    rng = random.Random(len(corruptions))
    one = write_vmem(random_bank(rng.randrange(4))) if kind == "bank" else write_vced(random_patch(rng))
    data = bytearray(before + one * (2 if twice else 1) + after)
    for position, value in corruptions:
        if position < len(data):
            data[position] = value
    _check_invariants(read_bank_bytes(bytes(data[: max(cut, 1) if cut < len(data) else len(data)])))


@settings(max_examples=200, deadline=None)
@given(sizes, st.binary(min_size=1, max_size=64))
def test_sized_garbage_never_raises(size, seed_bytes):
    data = (seed_bytes * (size // len(seed_bytes) + 1))[:size]
    _check_invariants(read_bank_bytes(data))


def test_truncations_and_corruptions_of_real_banks_never_raise():
    files = sorted(need(YAMAHA).glob("*.syx"))
    rng = random.Random(2024)
    for path in files:
        data = path.read_bytes()
        for cut in (0, 1, 5, 6, 7, 128, 135, 2000, 4095, 4101, 4102, 4103):
            _check_invariants(read_bank_bytes(data[:cut]))
        for _ in range(20):
            corrupt = bytearray(data)
            for _ in range(rng.randrange(1, 50)):
                corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
            read = read_bank_bytes(bytes(corrupt) + data[: rng.randrange(4104)])
            _check_invariants(read)


# --- the "DX7 All The Web" collection ------------------------------------------------------------------


def test_alltheweb_collection(record_property, capsys):
    """Every file of the collection is read or refused with a reason, and nothing raises."""
    archive = zipfile.ZipFile(need(ALLTHEWEB))
    started = time.monotonic()
    counts = {"files": 0, "clean": 0, "tolerated": 0, "refused": 0, "voices": 0}
    by_content: dict[bytes, BankRead] = {}
    # The collection holds many copies of the same file under different folders; the reader is a
    # pure function of the bytes, so each distinct content is read once and counted per file.
    for info in archive.infolist():
        if info.is_dir():
            continue
        data = archive.read(info)
        digest = hashlib.sha256(data).digest()
        if digest not in by_content:
            by_content[digest] = read_bank_bytes(data, source=info.filename)
            _check_invariants(by_content[digest])
        read = by_content[digest]
        counts["files"] += 1
        counts["voices"] += len(read.voices)
        counts["refused" if read.refused else "tolerated" if read.tolerated else "clean"] += 1
    elapsed = time.monotonic() - started
    summary = ", ".join(f"{k} {v}" for k, v in counts.items()) + f" ({len(by_content)} distinct contents, {elapsed:.0f} s)"
    record_property("alltheweb", summary)
    with capsys.disabled():
        print(f"\nDX7 All The Web: {summary}")
    assert counts["files"] > 11_000
    assert counts["refused"] < 0.02 * counts["files"]
    assert counts["voices"] > 350_000
