"""patchsmith.synth: the DX7 engine, sysex codec, rendering and WAV I/O."""
