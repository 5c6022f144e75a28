"""patchsmith.synth: the DX7 engine, sysex codec, rendering and WAV I/O.

The numba kernels are compiled once and cached on disk. Numba's own cache only notices edits to
the file that defines a kernel, not to the kernels it calls, so the cache lives in a folder named
after a hash of every kernel source file: any change to the engine gets a fresh cache, and a
regular install never needs to write into site-packages. ``NUMBA_CACHE_DIR`` overrides the place.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_KERNEL_FILES = ("tables.py", "env.py", "pitchenv.py", "lfo.py", "fm_op_kernel.py", "scaling.py", "frequency.py",
                 "dx7note.py", "engine.py")


def _kernel_cache_dir() -> Path:
    import numba

    h = hashlib.sha256(numba.__version__.encode())
    here = Path(__file__).resolve().parent
    for name in _KERNEL_FILES:
        h.update((here / name).read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "patchsmith" / "numba"
    return base / h.hexdigest()[:16]


if not os.environ.get("NUMBA_CACHE_DIR"):
    try:
        import numba.core.config as _numba_config

        _dir = _kernel_cache_dir()
        _dir.mkdir(parents=True, exist_ok=True)
        _numba_config.CACHE_DIR = str(_dir)
    except OSError:  # no writable cache folder: numba falls back to its own locations
        pass
