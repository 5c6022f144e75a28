"""DX7 sysex <-> ``Patch``: single voices (VCED, 163 bytes) and 32-voice banks (VMEM, 4104 bytes).

Layout facts: ``shared/reference/dx7.md`` §3. Three representations meet here:

* packed voice: the 128 bytes a VMEM bank stores per voice (bit fields, OP6 first);
* VCED parameters: the 155 numbers of a single-voice dump, one parameter each (OP6 first);
* ``Patch``: the project's format (OP1 first, ``patch-schema.md``).

This module is strict: out-of-range values and malformed messages raise ``SysexError``.
Real-world files go through the tolerant reader, ``read_bank_file`` / ``read_bank_bytes``
(``patchsmith.synth.sysex_reader``, also importable from here), which never raises and reports
what it tolerated.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from patchsmith.schema.algorithms import ALGORITHMS, algorithm_of, nearest_algorithm
from patchsmith.schema.params import KLS_CURVES, LFO_WAVES
from patchsmith.schema.patch import Lfo, Patch

VCED_SIZE = 155  # parameters in a single-voice dump (the op on/off byte 155 is not part of it)
PACKED_SIZE = 128  # bytes per voice in a bank
PACKED_PARAMS_SIZE = 118  # packed bytes before the name
VOICES_PER_BANK = 32
VCED_MESSAGE_SIZE = 163
VMEM_MESSAGE_SIZE = 4104
BANK_PAYLOAD_SIZE = VOICES_PER_BANK * PACKED_SIZE
NAME_SIZE = 10

# VCED offsets inside one operator block (21 parameters per operator).
_EG_RATE, _EG_LEVEL, _BP, _LDEPTH, _RDEPTH, _LCURVE, _RCURVE = 0, 4, 8, 9, 10, 11, 12
_RS, _AMS, _KVS, _OL, _MODE, _COARSE, _FINE, _DETUNE = 13, 14, 15, 16, 17, 18, 19, 20
_OP_BLOCK = 21
# VCED offsets of the global parameters.
_PEG_RATE, _PEG_LEVEL, _ALG, _FB, _OKS = 126, 130, 134, 135, 136
_LFO_SPEED, _LFO_DELAY, _LFO_PMD, _LFO_AMD, _LFO_SYNC, _LFO_WAVE, _PMS, _TRANSPOSE, _NAME = range(137, 146)

_OP_FIELDS: tuple[tuple[str, int], ...] = (
    ("EG rate 1", 99), ("EG rate 2", 99), ("EG rate 3", 99), ("EG rate 4", 99),
    ("EG level 1", 99), ("EG level 2", 99), ("EG level 3", 99), ("EG level 4", 99),
    ("breakpoint", 99), ("left depth", 99), ("right depth", 99), ("left curve", 3), ("right curve", 3),
    ("rate scaling", 7), ("amp mod sensitivity", 3), ("key velocity sensitivity", 7), ("output level", 99),
    ("osc mode", 1), ("coarse", 31), ("fine", 99), ("detune", 14),
)  # fmt: skip
_GLOBAL_FIELDS: tuple[tuple[str, int], ...] = (
    ("pitch EG rate 1", 99), ("pitch EG rate 2", 99), ("pitch EG rate 3", 99), ("pitch EG rate 4", 99),
    ("pitch EG level 1", 99), ("pitch EG level 2", 99), ("pitch EG level 3", 99), ("pitch EG level 4", 99),
    ("algorithm", 31), ("feedback", 7), ("osc key sync", 1), ("LFO speed", 99), ("LFO delay", 99),
    ("LFO pitch mod depth", 99), ("LFO amp mod depth", 99), ("LFO sync", 1), ("LFO wave", 5),
    ("pitch mod sensitivity", 7), ("transpose", 48),
)  # fmt: skip

# (label, maximum) of each of the 155 VCED parameters; the name characters are printable ASCII.
VCED_PARAMS: tuple[tuple[str, int], ...] = (
    tuple((f"OP{6 - block} {label}", top) for block in range(6) for label, top in _OP_FIELDS)
    + _GLOBAL_FIELDS
    + tuple((f"name character {c + 1}", 126) for c in range(NAME_SIZE))
)
assert len(VCED_PARAMS) == VCED_SIZE
_MAXIMA = tuple(top for _, top in VCED_PARAMS[:_NAME])

# Bits of a packed voice's bit-field bytes that carry no parameter; the DX7 ignores them.
# byte index -> mask (per operator block: curves, RS/detune, AMS/KVS, mode/coarse; then globals).
UNUSED_BITS: dict[int, int] = {
    **{17 * block + offset: mask for block in range(6) for offset, mask in ((11, 0xF0), (12, 0x80), (13, 0xE0), (15, 0xC0))},
    110: 0xE0,
    111: 0xF0,
    116: 0x80,
}
_PLAIN_BYTE_MASK = 0x80  # bit 7 of a plain (non bit-field) byte is never valid in sysex data


class SysexError(ValueError):
    """Malformed DX7 sysex data or a parameter outside its DX7 range."""


class NotRepresentableError(ValueError):
    """The patch's topology is not one of the 32 DX7 algorithms, so it has no sysex form."""


@dataclass(frozen=True)
class SysexRead:
    """What ``read_sysex`` found: one voice (VCED) or a bank of 32 (VMEM)."""

    kind: Literal["voice", "bank"]
    channel: int  # MIDI channel 0-15 from the header
    voices: list[Patch]


def checksum(data: bytes | Sequence[int]) -> int:
    """The DX7 sysex checksum of a message's data bytes."""
    return (-sum(data)) & 0x7F


# --- packed voice <-> VCED parameters ----------------------------------------------------------


def unpack_voice(packed: bytes | Sequence[int]) -> list[int]:
    """The 155 VCED parameters of a 128-byte packed voice, as stored (bit fields split, no range check)."""
    if len(packed) != PACKED_SIZE:
        raise SysexError(f"a packed voice has {PACKED_SIZE} bytes, got {len(packed)}")
    b = list(packed)
    vced = [0] * VCED_SIZE
    for block in range(6):
        p, v = 17 * block, _OP_BLOCK * block
        vced[v : v + 11] = b[p : p + 11]
        vced[v + _LCURVE] = b[p + 11] & 0x03
        vced[v + _RCURVE] = (b[p + 11] >> 2) & 0x03
        vced[v + _RS] = b[p + 12] & 0x07
        vced[v + _DETUNE] = (b[p + 12] >> 3) & 0x0F
        vced[v + _AMS] = b[p + 13] & 0x03
        vced[v + _KVS] = (b[p + 13] >> 2) & 0x07
        vced[v + _OL] = b[p + 14]
        vced[v + _MODE] = b[p + 15] & 0x01
        vced[v + _COARSE] = (b[p + 15] >> 1) & 0x1F
        vced[v + _FINE] = b[p + 16]
    vced[_PEG_RATE : _PEG_RATE + 8] = b[102:110]
    vced[_ALG] = b[110] & 0x1F
    vced[_FB] = b[111] & 0x07
    vced[_OKS] = (b[111] >> 3) & 0x01
    vced[_LFO_SPEED : _LFO_SPEED + 4] = b[112:116]
    vced[_LFO_SYNC] = b[116] & 0x01
    vced[_LFO_WAVE] = (b[116] >> 1) & 0x07
    vced[_PMS] = (b[116] >> 4) & 0x07
    vced[_TRANSPOSE] = b[117]
    vced[_NAME : _NAME + NAME_SIZE] = b[118:128]
    return vced


def pack_voice(vced: Sequence[int]) -> bytes:
    """The 128-byte packed form of 155 (or 156) in-range VCED parameters."""
    v = check_vced(vced)
    out = bytearray(PACKED_SIZE)
    for block in range(6):
        p, o = 17 * block, _OP_BLOCK * block
        out[p : p + 11] = bytes(v[o : o + 11])
        out[p + 11] = v[o + _LCURVE] | (v[o + _RCURVE] << 2)
        out[p + 12] = v[o + _RS] | (v[o + _DETUNE] << 3)
        out[p + 13] = v[o + _AMS] | (v[o + _KVS] << 2)
        out[p + 14] = v[o + _OL]
        out[p + 15] = v[o + _MODE] | (v[o + _COARSE] << 1)
        out[p + 16] = v[o + _FINE]
    out[102:110] = bytes(v[_PEG_RATE : _PEG_RATE + 8])
    out[110] = v[_ALG]
    out[111] = v[_FB] | (v[_OKS] << 3)
    out[112:116] = bytes(v[_LFO_SPEED : _LFO_SPEED + 4])
    out[116] = v[_LFO_SYNC] | (v[_LFO_WAVE] << 1) | (v[_PMS] << 4)
    out[117] = v[_TRANSPOSE]
    out[118:128] = bytes(v[_NAME : _NAME + NAME_SIZE])
    return bytes(out)


def unused_bits_set(packed: bytes | Sequence[int]) -> dict[int, int]:
    """Byte index -> the set bits of a packed voice that no parameter uses (empty for a clean voice)."""
    found = {i: packed[i] & mask for i, mask in UNUSED_BITS.items() if packed[i] & mask}
    if max(packed) & _PLAIN_BYTE_MASK:
        # Plain bytes hold 7-bit values; bit 7 set means the data is not valid sysex.
        found |= {i: b & _PLAIN_BYTE_MASK for i, b in enumerate(packed) if i not in UNUSED_BITS and b & _PLAIN_BYTE_MASK}
    return dict(sorted(found.items()))


def vced_in_range(vced: Sequence[int]) -> bool:
    """True when all 155 VCED parameters are within their DX7 ranges (name printable ASCII)."""
    # One pass in C over the values: this runs for every voice of every bank read.
    name = vced[_NAME:VCED_SIZE]
    return (
        min(vced[:_NAME]) >= 0
        and all(map(operator.le, vced[:_NAME], _MAXIMA))
        and min(name) >= 0x20
        and max(name) <= 0x7E
    )


def out_of_range(vced: Sequence[int]) -> list[tuple[int, int]]:
    """(index, nearest legal value) for every VCED parameter outside its DX7 range (a name byte
    that is not printable ASCII gets a space); empty when all are valid."""
    if vced_in_range(vced):
        return []
    out = []
    for i, (_, top) in enumerate(VCED_PARAMS):
        value = vced[i]
        if i >= _NAME:
            if not 0x20 <= value <= 0x7E:
                out.append((i, 0x20))
        elif not 0 <= value <= top:
            out.append((i, min(max(value, 0), top)))
    return out


def vced_problems(vced: Sequence[int]) -> list[tuple[int, str]]:
    """(index, message) for every VCED parameter outside its DX7 range; empty when all are valid."""
    problems = []
    for i, _ in out_of_range(vced):
        label, top = VCED_PARAMS[i]
        if i >= _NAME:
            problems.append((i, f"{label} is byte 0x{vced[i]:02X}, not printable ASCII"))
        else:
            problems.append((i, f"{label} is {vced[i]}, allowed 0..{top}"))
    return problems


def check_vced(vced: Sequence[int]) -> list[int]:
    """The 155 VCED parameters as a list, or ``SysexError`` naming every value outside its range."""
    try:
        items = list(vced) if not isinstance(vced, str) else None
    except TypeError:
        items = None
    if items is None:
        raise SysexError(f"VCED parameters must be a sequence of integers, got {type(vced).__name__}")
    if len(items) not in (VCED_SIZE, VCED_SIZE + 1):
        raise SysexError(f"a voice has {VCED_SIZE} VCED parameters (156 with the op on/off byte), got {len(items)}")
    try:
        # bytes() accepts exactly the integers 0..255 (numpy integers included, floats not) in one C call.
        values = list(bytes(items[:VCED_SIZE]))
    except (TypeError, ValueError):
        try:  # integers outside 0..255 are reported with their ranges below
            values = [operator.index(x) for x in items[:VCED_SIZE]]
        except TypeError:
            raise SysexError("VCED parameters must be integers") from None
    problems = vced_problems(values)
    if problems:
        raise SysexError("; ".join(msg for _, msg in problems))
    return values


# --- VCED parameters <-> Patch -----------------------------------------------------------------


def _op_values(v: Sequence[int], field: int) -> list[int]:
    """One per-operator field, OP1-first (the VCED stores OP6's block first)."""
    return list(v[field : field + 6 * _OP_BLOCK : _OP_BLOCK][::-1])


def vced_to_patch(vced: Sequence[int]) -> Patch:
    """The ``Patch`` (core and every full-voice key, exact 10-character name) of 155 VCED parameters."""
    v = check_vced(vced)
    alg = ALGORITHMS[v[_ALG]]
    return Patch(
        modmatrix=[list(row) for row in alg.modmatrix],
        outmatrix=list(alg.outmatrix),
        feedback=v[_FB],
        fixed_freq=_op_values(v, _MODE),
        coarse=_op_values(v, _COARSE),
        fine=_op_values(v, _FINE),
        detune=[d - 7 for d in _op_values(v, _DETUNE)],
        transpose=v[_TRANSPOSE] - 24,
        ol=_op_values(v, _OL),
        eg_rate=[_op_values(v, _EG_RATE + s) for s in range(4)],
        eg_level=[_op_values(v, _EG_LEVEL + s) for s in range(4)],
        sensitivity=_op_values(v, _KVS),
        name=bytes(v[_NAME : _NAME + NAME_SIZE]).decode("ascii"),
        lfo=Lfo(
            speed=v[_LFO_SPEED],
            delay=v[_LFO_DELAY],
            pmd=v[_LFO_PMD],
            amd=v[_LFO_AMD],
            sync=bool(v[_LFO_SYNC]),
            wave=LFO_WAVES[v[_LFO_WAVE]],
        ),
        pms=v[_PMS],
        pitch_eg_rate=v[_PEG_RATE : _PEG_RATE + 4],
        pitch_eg_level=v[_PEG_LEVEL : _PEG_LEVEL + 4],
        osc_sync=bool(v[_OKS]),
        ams=_op_values(v, _AMS),
        rate_scaling=_op_values(v, _RS),
        kls_breakpoint=_op_values(v, _BP),
        kls_left_depth=_op_values(v, _LDEPTH),
        kls_right_depth=_op_values(v, _RDEPTH),
        kls_left_curve=[KLS_CURVES[c] for c in _op_values(v, _LCURVE)],
        kls_right_curve=[KLS_CURVES[c] for c in _op_values(v, _RCURVE)],
    )


def dx7_algorithm(patch: Patch) -> int:
    """The DX7 algorithm number (1..32) of the patch's topology, or ``NotRepresentableError``."""
    number = algorithm_of(patch.modmatrix, patch.outmatrix)
    if number is None:
        nearest, differing = nearest_algorithm(patch.modmatrix, patch.outmatrix)
        raise NotRepresentableError(
            "the patch's topology (modmatrix and outmatrix, feedback edges included) is not one of the 32 DX7 "
            f"algorithms, so it cannot be written as DX7 sysex; the nearest is algorithm {nearest} "
            f"({differing} matrix entr{'y differs' if differing == 1 else 'ies differ'})"
        )
    return number


def patch_to_vced(patch: Patch) -> list[int]:
    """The 155 VCED parameters of a DX7-representable patch (``NotRepresentableError`` otherwise)."""
    number = dx7_algorithm(patch)
    v = [0] * VCED_SIZE
    per_op = {
        _MODE: patch.fixed_freq,
        _COARSE: patch.coarse,
        _FINE: patch.fine,
        _DETUNE: [d + 7 for d in patch.detune],
        _OL: patch.ol,
        _KVS: patch.sensitivity,
        _AMS: patch.ams,
        _RS: patch.rate_scaling,
        _BP: patch.kls_breakpoint,
        _LDEPTH: patch.kls_left_depth,
        _RDEPTH: patch.kls_right_depth,
        _LCURVE: [KLS_CURVES.index(c) for c in patch.kls_left_curve],
        _RCURVE: [KLS_CURVES.index(c) for c in patch.kls_right_curve],
    }
    per_op |= {_EG_RATE + s: patch.eg_rate[s] for s in range(4)}
    per_op |= {_EG_LEVEL + s: patch.eg_level[s] for s in range(4)}
    for field, values in per_op.items():
        for op in range(6):
            v[_OP_BLOCK * (5 - op) + field] = int(values[op])
    v[_PEG_RATE : _PEG_RATE + 4] = patch.pitch_eg_rate
    v[_PEG_LEVEL : _PEG_LEVEL + 4] = patch.pitch_eg_level
    v[_ALG] = number - 1
    v[_FB] = patch.feedback
    v[_OKS] = int(patch.osc_sync)
    v[_LFO_SPEED] = patch.lfo.speed
    v[_LFO_DELAY] = patch.lfo.delay
    v[_LFO_PMD] = patch.lfo.pmd
    v[_LFO_AMD] = patch.lfo.amd
    v[_LFO_SYNC] = int(patch.lfo.sync)
    v[_LFO_WAVE] = LFO_WAVES.index(patch.lfo.wave)
    v[_PMS] = patch.pms
    v[_TRANSPOSE] = patch.transpose + 24
    # A DX7 name is always 10 characters; a shorter or absent name is padded with spaces.
    v[_NAME : _NAME + NAME_SIZE] = (patch.name or "").ljust(NAME_SIZE).encode("ascii")
    return v


def voice_key(patch: Patch) -> bytes:
    """The 118 packed parameter bytes of a voice without its name: equal keys mean identical sound."""
    return pack_voice(patch_to_vced(patch))[:PACKED_PARAMS_SIZE]


def init_voice() -> Patch:
    """The DX7 init voice (algorithm 1, only OP1 sounding at level 99), named "INIT VOICE"."""
    alg = ALGORITHMS[0]
    return Patch(
        modmatrix=[list(row) for row in alg.modmatrix],
        outmatrix=list(alg.outmatrix),
        feedback=0,
        fixed_freq=[0] * 6,
        coarse=[1] * 6,
        fine=[0] * 6,
        detune=[0] * 6,
        transpose=0,
        ol=[99, 0, 0, 0, 0, 0],
        eg_rate=[[99] * 6 for _ in range(4)],
        eg_level=[[99] * 6, [99] * 6, [99] * 6, [0] * 6],
        sensitivity=[0] * 6,
        name="INIT VOICE",
    )


# --- messages ------------------------------------------------------------------------------------


def _check_channel(channel: int) -> int:
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel <= 15:
        raise ValueError(f"MIDI channel must be an integer 0..15 (channel 1 is 0), got {channel!r}")
    return channel


def vced_header(channel: int = 0) -> bytes:
    """The 6-byte header of a single-voice dump."""
    return bytes([0xF0, 0x43, _check_channel(channel), 0x00, 0x01, 0x1B])


def vmem_header(channel: int = 0) -> bytes:
    """The 6-byte header of a 32-voice bank dump."""
    return bytes([0xF0, 0x43, _check_channel(channel), 0x09, 0x20, 0x00])


def _origin(patch: Patch, vced: list[int]) -> tuple[bytes | None, tuple[int, ...]] | None:
    """The bytes a repaired voice was read from, if the patch is still exactly what was read."""
    origin = patch._sysex_origin
    if origin is not None and tuple(vced) == origin[0]:
        return origin[1], origin[2]
    return None


def write_vced(patch: Patch, channel: int = 0) -> bytes:
    """The 163-byte single-voice sysex message of a DX7-representable patch."""
    vced = patch_to_vced(patch)
    origin = _origin(patch, vced)
    data = bytes(v & 0x7F for v in origin[1]) if origin else bytes(vced)
    return vced_header(channel) + data + bytes([checksum(data), 0xF7])


def write_vmem(patches: Sequence[Patch], channel: int = 0) -> bytes:
    """The 4104-byte bank message of up to 32 patches (the rest are init voices)."""
    patches = list(patches)
    if len(patches) > VOICES_PER_BANK:
        raise ValueError(f"a DX7 bank holds at most {VOICES_PER_BANK} voices, got {len(patches)}")
    if len(patches) < VOICES_PER_BANK:
        patches += [init_voice()] * (VOICES_PER_BANK - len(patches))
    payload = bytearray()
    for index, patch in enumerate(patches):
        try:
            vced = patch_to_vced(patch)
            origin = _origin(patch, vced)
            payload += origin[0] if origin and origin[0] is not None else pack_voice(vced)
        except NotRepresentableError as err:
            raise NotRepresentableError(f"voice {index + 1} ({patch.name!r}): {err}") from None
    return vmem_header(channel) + bytes(payload) + bytes([checksum(payload), 0xF7])


def bank_to_patches(payload: bytes) -> list[Patch]:
    """The 32 patches of a clean 4096-byte bank payload (``SysexError`` naming the first bad voice)."""
    if len(payload) != BANK_PAYLOAD_SIZE:
        raise SysexError(f"a bank payload has {BANK_PAYLOAD_SIZE} bytes, got {len(payload)}")
    voices = []
    for index in range(VOICES_PER_BANK):
        try:
            voices.append(vced_to_patch(unpack_voice(payload[PACKED_SIZE * index : PACKED_SIZE * (index + 1)])))
        except SysexError as err:
            raise SysexError(f"voice {index + 1}: {err}") from None
    return voices


def read_sysex(data: bytes) -> SysexRead:
    """One well-formed DX7 single-voice or bank message (``SysexError`` says what is wrong).

    Strict: exactly one message, the right header and length, F7 at the end, a matching
    checksum and every parameter in range. Bits the DX7 ignores are ignored here too.
    """
    data = bytes(data)
    if len(data) < 6 or data[0] != 0xF0 or data[1] != 0x43:
        raise SysexError("not a Yamaha sysex message (expected it to start with F0 43)")
    if data[2] & 0xF0:
        raise SysexError(f"byte 2 is 0x{data[2]:02X}: not a bulk dump (expected 0x00..0x0F, the MIDI channel)")
    channel, header = data[2] & 0x0F, data[3:6]
    if header == b"\x00\x01\x1b":
        kind: Literal["voice", "bank"] = "voice"
        size, body = VCED_MESSAGE_SIZE, VCED_SIZE
    elif header == b"\x09\x20\x00":
        kind, size, body = "bank", VMEM_MESSAGE_SIZE, BANK_PAYLOAD_SIZE
    else:
        raise SysexError(
            f"header F0 43 {data[2]:02X} {header.hex(' ').upper()} is neither a DX7 single voice "
            "(F0 43 0n 00 01 1B) nor a 32-voice bank (F0 43 0n 09 20 00)"
        )
    if len(data) != size:
        raise SysexError(f"a DX7 {kind} message has {size} bytes, got {len(data)}")
    if data[-1] != 0xF7:
        raise SysexError(f"the message does not end with F7 (last byte 0x{data[-1]:02X})")
    payload = data[6 : 6 + body]
    if checksum(payload) != data[6 + body]:
        raise SysexError(f"checksum mismatch: stored 0x{data[6 + body]:02X}, computed 0x{checksum(payload):02X}")
    if kind == "voice":
        return SysexRead(kind, channel, [vced_to_patch(list(payload))])
    return SysexRead(kind, channel, bank_to_patches(payload))


def __getattr__(name: str) -> Any:
    # The tolerant reader lives in its own module; re-exported lazily to avoid an import cycle.
    if name in ("BankRead", "read_bank_bytes", "read_bank_file"):
        from . import sysex_reader

        return getattr(sysex_reader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
