"""The DX7 engine's numeric tables (facts from ``reference/dx7.md`` §2), as numpy arrays.

Every table the engine reads lives here, each with a comment naming what it is in DX7 terms.
Tables that depend on the sample rate are built by functions at the bottom.
"""

from __future__ import annotations

import math

import numpy as np

N = 64  # samples per control block: EG, LFO, pitch EG and frequencies update once per block
LG_N = 6

# Output-level scaling S(x) for x < 20 (x >= 20 maps to x + 28): 0..99 -> 0..127.
SCALE_OUT_LOW = (
    0, 5, 9, 13, 17, 20, 23, 25, 27, 29, 31, 33,
    35, 37, 39, 41, 42, 43, 45, 46,
)

# Dexed's measured hold ("static" segment) in samples at 44.1 kHz, by rate 0..76; 20*(99-R) above.
STATIC_HOLD = (
    1764000, 1764000, 1411200, 1411200, 1190700, 1014300, 992250, 882000, 705600, 705600, 584325, 507150,
    502740, 441000, 418950, 352800, 308700, 286650, 253575, 220500, 220500, 176400, 145530, 145530,
    125685, 110250, 110250, 88200, 88200, 74970, 61740, 61740, 55125, 48510, 44100, 37485,
    31311, 30870, 27562, 27562, 22050, 18522, 17640, 15435, 14112, 13230, 11025, 9261,
    9261, 7717, 6615, 6615, 5512, 5512, 4410, 3969, 3969, 3439, 2866, 2690,
    2249, 1984, 1896, 1808, 1411, 1367, 1234, 1146, 926, 837, 837, 705,
    573, 573, 529, 441, 441,
)

# Keyboard level scaling: exponential curve by group of three keys.
EXP_SCALE = (
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 14,
    16, 19, 23, 27, 33, 39, 47, 56, 66, 80, 94, 110,
    126, 142, 158, 174, 190, 206, 222, 238, 250,
)

# Velocity curve indexed by velocity >> 1.
VELOCITY = (
    0, 70, 86, 97, 106, 114, 121, 126, 132, 138, 142, 148,
    152, 156, 160, 163, 166, 170, 173, 174, 178, 181, 184, 186,
    189, 190, 194, 196, 198, 200, 202, 205, 206, 209, 211, 214,
    216, 218, 220, 222, 224, 225, 227, 229, 230, 232, 233, 235,
    237, 238, 240, 241, 242, 243, 244, 246, 246, 248, 249, 250,
    251, 252, 253, 254,
)

# Pitch EG level 0..99 -> offset in 1/32 octave (50 = none).
PITCHENV_LEVEL = (
    -128, -116, -104, -95, -85, -76, -68, -61, -56, -52, -49, -46,
    -43, -41, -39, -37, -35, -33, -32, -31, -30, -29, -28, -27,
    -26, -25, -24, -23, -22, -21, -20, -19, -18, -17, -16, -15,
    -14, -13, -12, -11, -10, -9, -8, -7, -6, -5, -4, -3,
    -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33,
    34, 35, 38, 40, 43, 46, 49, 53, 58, 65, 73, 82,
    92, 103, 115, 127,
)

# Pitch EG rate 0..99 -> speed in units of 1/21.3 octave per second.
PITCHENV_RATE = (
    1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7,
    8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
    14, 14, 15, 16, 16, 17, 18, 18, 19, 20, 21, 22,
    23, 24, 25, 26, 27, 28, 30, 31, 33, 34, 36, 37,
    38, 39, 41, 42, 44, 46, 47, 49, 51, 53, 54, 56,
    58, 60, 62, 64, 66, 68, 70, 72, 74, 76, 79, 82,
    85, 88, 91, 94, 98, 102, 106, 110, 115, 120, 125, 130,
    135, 141, 147, 153, 159, 165, 171, 178, 185, 193, 202, 211,
    232, 243, 254, 255,
)

# Dexed's measured LFO speed table (2025), Hz before the engine's 4437500000/2^32 factor.
LFO_SPEED_HZ = (
    0.062541, 0.125031, 0.312393, 0.437120, 0.624610, 0.750694, 0.936330, 1.125302, 1.249609, 1.436782, 1.560915, 1.752081,
    1.875117, 2.062494, 2.247191, 2.374451, 2.560492, 2.686728, 2.873976, 2.998950, 3.188013, 3.369840, 3.500175, 3.682224,
    3.812065, 4.000800, 4.186202, 4.310716, 4.501260, 4.623209, 4.814636, 4.930480, 5.121901, 5.315191, 5.434783, 5.617346,
    5.750431, 5.946717, 6.062811, 6.248438, 6.431695, 6.564264, 6.749460, 6.868132, 7.052186, 7.250580, 7.375719, 7.556294,
    7.687577, 7.877738, 7.993605, 8.181967, 8.372405, 8.504848, 8.685079, 8.810573, 8.986341, 9.122423, 9.300595, 9.500285,
    9.607994, 9.798158, 9.950249, 10.117361, 11.251125, 11.384335, 12.562814, 13.676149, 13.904338, 15.092062, 16.366612, 16.638935,
    17.869907, 19.193858, 19.425019, 20.833333, 21.034918, 22.502250, 24.003841, 24.260068, 25.746653, 27.173913, 27.578599, 29.052876,
    30.693677, 31.191516, 32.658393, 34.317090, 34.674064, 36.416606, 38.197097, 38.550501, 40.387722, 40.749796, 42.625746, 44.326241,
    44.883303, 46.772685, 48.590865, 49.261084,
)

# Pitch modulation sensitivity 0..7 -> multiplier.
PMS_TAB = (0, 10, 20, 33, 55, 92, 153, 255)
# Amplitude modulation sensitivity 0..3 -> Q24 fraction.
AMS_TAB = (0, 4342338, 7171437, 16777216)

ENV_MAX = 1 << 14  # Mark I attenuation full scale (1/1024 doubling units)
LEVEL_THRESH = ENV_MAX - 100  # an operator quieter than this for a whole block is skipped
JUMP_TARGET = 1716  # attack starts no lower than this (microsteps), about -50 dB


def scale_out_table() -> np.ndarray:
    """S(x) for x = 0..99 (output level and EG level scaling)."""
    return np.array([SCALE_OUT_LOW[x] if x < 20 else x + 28 for x in range(100)], dtype=np.int64)


def sin_log_table() -> np.ndarray:
    """Quarter-wave log-sine table of the Mark I (YM21280-like) operator: -1024*log2(sin)."""
    i = np.arange(1024, dtype=np.float64)
    x = np.sin(((0.5 + i) / 1024.0) * math.pi / 2.0).astype(np.float32).astype(np.float64)
    return np.round(-1024.0 * np.log2(x)).astype(np.int64)


def sin_exp_table() -> np.ndarray:
    """Exponential table of the Mark I operator: 4096*(2^(i/1024) - 1)."""
    i = np.arange(1024, dtype=np.float64)
    x = ((np.power(2.0, (i / 1024.0).astype(np.float32)) - 1.0) * 4096.0).astype(np.float32)
    return np.round(x.astype(np.float64)).astype(np.int64)


def coarse_table() -> np.ndarray:
    """Coarse frequency 0..31 -> log2 ratio in Q24 (coarse 0 means ratio 0.5)."""
    out = np.empty(32, dtype=np.int64)
    out[0] = -(1 << 24)
    for c in range(1, 32):
        out[c] = int(round(math.log2(c) * (1 << 24)))
    return out


def freq_table(sample_rate: float) -> np.ndarray:
    """Phase increment (Q24 cycles per sample, scaled by 2^20) for 1025 log-frequency steps of one octave."""
    # int64 instead of the reference's int32 so rates below ~16.4 kHz do not overflow.
    y = float(1 << 44) / sample_rate
    inc = 2.0 ** (1.0 / 1024)
    out = np.empty(1025, dtype=np.int64)
    for i in range(1025):
        out[i] = int(math.floor(y + 0.5))
        y *= inc
    return out


def sr_multiplier(sample_rate: float) -> int:
    """EG time scale: (44100 / sr) in Q24; the EG is calibrated for 64-sample blocks at 44.1 kHz."""
    return int((44100.0 / sample_rate) * (1 << 24))


def pitchenv_unit(sample_rate: float) -> int:
    """Pitch EG increment unit per block, so pitch-EG timing does not depend on the sample rate."""
    return int(N * (1 << 24) / (21.3 * sample_rate) + 0.5)


def lfo_unit(sample_rate: float) -> int:
    """LFO delay-counter unit per block."""
    return int(N * 25190424 / sample_rate + 0.5)


def lfo_delta_table(sample_rate: float) -> np.ndarray:
    """LFO phase increment per block (2^32 = one cycle) for speeds 0..99."""
    unit = int(4437500000.0 * N / sample_rate)  # truncated first, as the reference engine does
    return np.array([int(unit * h) & 0xFFFFFFFF for h in LFO_SPEED_HZ], dtype=np.int64)


def lfo_sine_table() -> np.ndarray:
    """1024-step sine (Q24) for the LFO's sine wave, built by rotation as the reference engine does,
    interleaved as (slope, value) pairs for linear interpolation."""
    n = 1024
    dphase = 2 * math.pi / n
    c = int(math.floor(math.cos(dphase) * (1 << 30) + 0.5))
    s = int(math.floor(math.sin(dphase) * (1 << 30) + 0.5))
    r = 1 << 29
    u, v = 1 << 30, 0
    tab = np.zeros(2 * n, dtype=np.int64)
    for i in range(n // 2):
        tab[2 * i + 1] = (v + 32) >> 6
        tab[2 * (i + n // 2) + 1] = -((v + 32) >> 6)
        t = (u * s + v * c + r) >> 30
        u = (u * c - v * s + r) >> 30
        v = t
    for i in range(n - 1):
        tab[2 * i] = tab[2 * i + 3] - tab[2 * i + 1]
    tab[2 * n - 2] = -tab[2 * n - 1]
    return tab
