"""The tolerant DX7 sysex reader: real-world files in, voices and a report of what was tolerated out.

Real files (``shared/reference/dx7.md`` §3.4) carry stale checksums, nonstandard byte counts,
raw payloads without framing, several messages in one file, junk around the dump, values outside
the DX7 ranges and unprintable name bytes. ``read_bank_bytes`` loads whatever complete voice data
it finds, repairs values by clamping (the way the source research's loader does), and lists each
thing it tolerated. It refuses, with a reason, files in which no complete voice can be found.
It never raises on any input bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from patchsmith.schema.patch import Patch

from .sysex import (
    BANK_PAYLOAD_SIZE,
    NAME_SIZE,
    PACKED_SIZE,
    VCED_PARAMS,
    VCED_SIZE,
    VOICES_PER_BANK,
    checksum,
    out_of_range,
    unpack_voice,
    unused_bits_set,
    vced_to_patch,
)

_NAME_START = VCED_SIZE - NAME_SIZE
_RAW_VCED_BANK_SIZE = VOICES_PER_BANK * VCED_SIZE  # 4960: 32 unpacked voices, seen in TX802/DX7S files
# A raw payload has no header to vouch for it; refuse it when it looks like something else. Real
# raw banks need at most ~10% of their parameters repaired (the worst in "DX7 All The Web": 9.6%);
# random 7-bit bytes need ~15%, random bytes ~40%.
_RAW_MAX_BAD_SHARE = 0.10
# Voice data is full of small numbers (curves, depths, algorithm); text is almost all printable.
_RAW_MAX_TEXT_SHARE = 0.90
_TEXT_BYTES = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}

# The header of a DX7 bank (format 9) or single voice (format 0). With F0 in front any byte count
# is accepted (some librarians wrote 10 00 instead of 20 00); without it, only the exact header,
# so that text does not match by chance.
_DX7_HEADER = re.compile(
    rb"\xf0\x43[\x00-\x0f]\x09[\x00-\x7f][\x00-\x7f]|\xf0\x43[\x00-\x0f]\x00\x01\x1b"
    rb"|\x43[\x00-\x0f]\x09\x20\x00|\x43[\x00-\x0f]\x00\x01\x1b",
    re.DOTALL,
)


_ANY_SYSEX = re.compile(rb"\xf0[\x00-\x7f]{0,5}", re.DOTALL)
_YAMAHA_FORMATS = {
    0x03: "a 4-operator (DX21/DX27/DX100/TX81Z) voice",
    0x04: "a 4-operator (DX21/DX27/DX100/TX81Z) bank",
    0x05: "a DX7II/TX802 voice supplement",
    0x06: "a DX7II/TX802 supplement bank",
    0x7E: "a DX7II/TX802 performance or system dump",
}


def _describe(header: bytes) -> str:
    """A sysex message's first bytes, and what they are when known."""
    text = header.hex(" ").upper()
    if len(header) >= 4 and header[1] == 0x43:
        if header[2] & 0xF0 == 0x10:
            return f"{text} (a parameter change)"
        if header[2] & 0xF0 == 0x00 and header[3] in _YAMAHA_FORMATS:
            return f"{text} ({_YAMAHA_FORMATS[header[3]]})"
    return text


@dataclass
class BankRead:
    """What the tolerant reader got from one file: its voices and a report."""

    source: str
    voices: list[Patch] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # each voice's exact 10-character name
    tolerated: list[str] = field(default_factory=list)  # one line per thing repaired or skipped
    refused: str | None = None  # why no voice could be read; None when voices were read

    @property
    def ok(self) -> bool:
        """True when the file gave voices."""
        return self.refused is None


@dataclass
class _Chunk:
    """Voice data found in the file, before it is turned into patches."""

    where: str  # "bank at offset 0", for messages
    packed: list[bytes] = field(default_factory=list)  # 128-byte packed voices
    vced: list[list[int]] = field(default_factory=list)  # 155-parameter unpacked voices


def read_bank_file(path: str | Path) -> BankRead:
    """Read a DX7 sysex file tolerantly (never raises; an unreadable file is refused)."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        return BankRead(str(path), refused=f"cannot read the file: {err}")
    return read_bank_bytes(data, source=str(path))


def read_bank_bytes(data: bytes, source: str = "<bytes>") -> BankRead:
    """Read DX7 voice data tolerantly: banks, single voices, raw payloads, concatenations."""
    result = BankRead(source)
    try:
        _read(bytes(data), result)
    except Exception as err:  # a bug must not take down a batch import; it shows up as a refusal
        result.voices, result.names = [], []
        result.refused = f"internal error while reading: {type(err).__name__}: {err}"
        return result
    if not result.voices and result.refused is None:
        result.refused = "no DX7 voice found"
    return result


def _read(data: bytes, result: BankRead) -> None:
    if not data:
        result.refused = "empty file"
        return
    chunks, covered = _find_messages(data, result)
    if result.refused is not None:
        return
    if not chunks:
        raw = _raw_chunk(data, result)
        if raw is None:
            return
        chunks = [raw]
    else:
        _report_uncovered(data, covered, result)
    for chunk in chunks:
        prefix = f"{chunk.where}, " if len(chunks) > 1 else ""
        for index, packed in enumerate(chunk.packed):
            junk = unused_bits_set(packed)
            notes = [f"unused bits set in packed byte {i} (0x{bits:02X}), ignored" for i, bits in junk.items()]
            _add_voice(unpack_voice(packed), f"{prefix}voice {index + 1}", notes, result, packed=bytes(packed))
        for index, vced in enumerate(chunk.vced):
            _add_voice(vced, f"{prefix}voice {index + 1}", [], result)


def _find_messages(data: bytes, result: BankRead) -> tuple[list[_Chunk], list[tuple[int, int]]]:
    """DX7 bank and voice messages in the data, with the byte spans they (and other sysex) cover."""
    chunks: list[_Chunk] = []
    covered: list[tuple[int, int]] = []
    truncated: list[str] = []
    pos = 0
    while (match := _DX7_HEADER.search(data, pos)) is not None:
        start = match.start()
        framed = data[start] == 0xF0
        h = start + 1 if framed else start  # index of the 0x43
        is_bank = data[h + 2] == 0x09
        size = BANK_PAYLOAD_SIZE if is_bank else VCED_SIZE
        kind = "bank" if is_bank else "single voice"
        body = h + 5
        payload = data[body : body + size]
        where = f"{kind} at offset {start}"
        # A payload cut short, or one that another message interrupts, is a truncated transfer. Where
        # the F7 sits at its expected place the message is complete even if corrupt bytes inside it
        # happen to be F0 or F7 (seen in real banks).
        interrupted = None
        if data[body + size + 1 : body + size + 2] != b"\xf7":
            interrupted = next((i for i, b in enumerate(payload) if b in (0xF0, 0xF7)), None)
        if len(payload) < size or interrupted is not None:
            got = len(payload) if interrupted is None else interrupted
            truncated.append(f"{where}: truncated after {got} of {size} data bytes")
            covered.append((start, body + got))
            pos = body + max(got, 1)
            continue
        notes = []
        if not framed:
            notes.append("no F0 directly before the header")
        if is_bank and data[h + 3 : h + 5] != b"\x20\x00":
            notes.append(f"nonstandard byte count {data[h + 3]:02X} {data[h + 4]:02X} in the header (expected 20 00)")
        end = body + size
        if end < len(data):
            stored = data[end]
            if stored != checksum(payload):
                notes.append(f"checksum mismatch (stored 0x{stored:02X}, computed 0x{checksum(payload):02X}), loaded anyway")
            end += 1
            if end < len(data) and data[end] == 0xF7:
                end += 1
            else:
                notes.append("no F7 after the checksum")
        else:
            notes.append("checksum and F7 missing at the end of the data")
        if notes:
            result.tolerated.append(f"{where}: " + "; ".join(notes))
        chunk = _Chunk(where)
        if is_bank:
            chunk.packed = [payload[PACKED_SIZE * k : PACKED_SIZE * (k + 1)] for k in range(VOICES_PER_BANK)]
        else:
            chunk.vced = [list(payload)]
        chunks.append(chunk)
        covered.append((start, end))
        pos = end
    if truncated:
        line = "; ".join(truncated)
        if chunks:
            result.tolerated.append(f"skipped {line}")
        else:
            result.refused = line
    return chunks, covered


def _report_uncovered(data: bytes, covered: list[tuple[int, int]], result: BankRead) -> None:
    """Report other sysex messages and junk bytes outside the DX7 messages that were read."""
    others: list[str] = []
    junk = 0
    pos = 0
    for start, end in sorted(covered) + [(len(data), len(data))]:
        gap = data[pos:start]
        offset = pos
        while gap:
            f0 = gap.find(0xF0)
            if f0 < 0:
                junk += len(gap)
                break
            junk += f0
            f7 = gap.find(0xF7, f0)
            stop = len(gap) if f7 < 0 else f7 + 1
            others.append(f"{_describe(gap[f0 : min(stop, f0 + 6)])} at offset {offset + f0}")
            offset += stop
            gap = gap[stop:]
        pos = max(pos, end)
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        result.tolerated.append(f"skipped {len(others)} sysex message(s) that are not DX7 voice data: {shown}")
    if junk:
        result.tolerated.append(f"ignored {junk} byte(s) outside any sysex message")


def _raw_chunk(data: bytes, result: BankRead) -> _Chunk | None:
    """Voice data without sysex framing, recognised by its size; None (and a refusal) otherwise."""
    n = len(data)
    if n == BANK_PAYLOAD_SIZE:
        chunk = _Chunk("raw bank", packed=[data[PACKED_SIZE * k : PACKED_SIZE * (k + 1)] for k in range(VOICES_PER_BANK)])
        what = "raw 4096-byte bank payload without sysex framing"
        vceds = [unpack_voice(p) for p in chunk.packed]
    elif n == _RAW_VCED_BANK_SIZE:
        vceds = [list(data[VCED_SIZE * k : VCED_SIZE * (k + 1)]) for k in range(VOICES_PER_BANK)]
        chunk = _Chunk("raw unpacked bank", vced=vceds)
        what = "raw 4960-byte file of 32 unpacked (155-byte) voices without sysex framing"
    elif n in (VCED_SIZE, VCED_SIZE + 1):
        vceds = [list(data[:VCED_SIZE])]
        chunk = _Chunk("raw voice", vced=vceds)
        what = f"raw {n}-byte unpacked voice without sysex framing"
    elif n == PACKED_SIZE:
        chunk = _Chunk("raw packed voice", packed=[data])
        what = "raw 128-byte packed voice without sysex framing"
        vceds = [unpack_voice(data)]
    else:
        start = data[:8].hex(" ").upper()
        headers = [m.group() for m in _ANY_SYSEX.finditer(data)]
        if headers:
            kinds = list(dict.fromkeys(_describe(h) for h in headers))
            result.refused = f"{len(headers)} sysex message(s), none of them DX7 voice data: " + "; ".join(kinds[:3])
        else:
            result.refused = (
                f"no DX7 sysex message found, and {n} bytes is not the size of a raw payload "
                f"(4096 packed bank, 4960 unpacked bank, 155/156 voice, 128 packed voice); starts {start}"
            )
        return None
    text = sum(b in _TEXT_BYTES for b in data)
    if text > _RAW_MAX_TEXT_SHARE * n:
        result.refused = f"{n} bytes without sysex framing that look like text ({text} printable bytes), not DX7 voice data"
        return None
    bad = sum(len(out_of_range(v)) for v in vceds)
    if bad > _RAW_MAX_BAD_SHARE * len(vceds) * VCED_SIZE:
        result.refused = (
            f"{n} bytes without sysex framing, but {bad} of its {len(vceds) * VCED_SIZE} parameters are out of "
            "range: not DX7 voice data"
        )
        return None
    result.tolerated.append(what)
    return chunk


def _add_voice(vced: list[int], where: str, notes: list[str], result: BankRead, packed: bytes | None = None) -> None:
    """Repair the voice's out-of-range values, report them, and append it to the result."""
    original = tuple(vced)
    vced = list(vced)
    raw_name = bytes(vced[_NAME_START:VCED_SIZE])
    for i, repaired in out_of_range(vced):
        label = VCED_PARAMS[i][0]
        if i >= _NAME_START:
            notes.append(f"{label} byte 0x{vced[i]:02X} not printable, replaced by a space")
        else:
            notes.append(f"{label} {vced[i]} out of range, clamped to {repaired}")
        vced[i] = repaired
    patch = vced_to_patch(vced)
    if notes:
        # Keep what the file held, so an unedited voice is written back byte for byte.
        patch._sysex_origin = (tuple(vced), packed, original)
        shown = raw_name.decode("ascii", "replace")
        result.tolerated.append(f"{where} ({shown!r}): " + "; ".join(notes))
    result.voices.append(patch)
    result.names.append(patch.name or "")
