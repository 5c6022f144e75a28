"""The published metrics (CLAP, CLAP_synth, KL, FAD, KAD, AC, RMS) and cheap spectral distances."""
