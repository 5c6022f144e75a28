"""Where the library's measured tags start, in descriptor units (``evals.descriptors``; f0 = the played note).

The library's tests check every tagged patch against these (agent/presets/README.md lists them as a
table); the modifiers' first rungs and the offline captioner's words start at the same places, so that
"bright" means one thing to the library, the designer and the training captions.
"""

from __future__ import annotations

FAST_ATTACK_MS = 15.0  # fast-attack: attack_ms <= this; soft-attack: attack_ms >= this
SLOW_ATTACK_MS = 150.0  # slow-attack: attack_ms >= this
PERCUSSIVE_DECAY_MS = 600.0  # percussive: decay20_ms < this
LONG_DECAY_MS = 1000.0  # long-decay: decay20_ms >= this (or never)
SUSTAINED_DB = -12.0  # sustained: never falls 20 dB while held and sustain_db >= this
SHORT_RELEASE_MS = 400.0  # short-release: release_ms <= this
LONG_RELEASE_MS = 800.0  # long-release: release_ms >= this (or longer than the clip)
BRIGHT_RATIO = 2.0  # bright: centroid_hz >= this * f0
VERY_BRIGHT_RATIO = 5.0  # the top rung of "brighter", and the captioner's "very bright"
DARK_RATIO = 1.5  # dark: brightness <= DARK_BRIGHTNESS and (centroid_hz <= this * f0 or <= DARK_CENTROID_HZ)
DARK_BRIGHTNESS = 0.05
DARK_CENTROID_HZ = 400.0
INHARMONIC = 0.2  # inharmonic: inharmonicity >= this
NOISY = 0.5  # noisy: inharmonicity >= this
VIBRATO_CENTS = 4.0  # vibrato (with LFO pitch depth and pms set): pitch_stability_cents >= this
TREMOLO_BEATING = 0.15  # tremolo (with LFO amplitude depth and an ams set): beating >= this
DETUNED_BEATING = 0.05  # detuned: beating >= this

__all__ = ["BRIGHT_RATIO", "DARK_BRIGHTNESS", "DARK_CENTROID_HZ", "DARK_RATIO", "DETUNED_BEATING", "FAST_ATTACK_MS",
           "INHARMONIC", "LONG_DECAY_MS", "LONG_RELEASE_MS", "NOISY", "PERCUSSIVE_DECAY_MS", "SHORT_RELEASE_MS",
           "SLOW_ATTACK_MS", "SUSTAINED_DB", "TREMOLO_BEATING", "VERY_BRIGHT_RATIO", "VIBRATO_CENTS"]
