"""The folders import as patchsmith.* from both an editable and a regular (wheel) install."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from ..conftest import REPO

SUBPACKAGES = ("schema", "synth", "evals", "server", "agent", "training")
PROBE = ("import patchsmith, patchsmith.schema.patch, patchsmith.synth.render, patchsmith.evals.distances, "
         "patchsmith.server, patchsmith.agent, patchsmith.training; "
         "from patchsmith.synth.sysex import init_voice; from patchsmith.synth.render import render; "
         "print(patchsmith.synth.render.__file__); print(render(init_voice(), hold_s=0.05, release_s=0.05).shape[0])")


def test_editable_install_maps_every_folder(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, check=True)
    path, n = out.stdout.split()
    assert Path(path).resolve() == REPO / "synth" / "render.py"
    assert int(n) == 4800


def test_regular_wheel_install_has_the_same_layout(tmp_path, built_wheel):
    wheel = built_wheel
    names = zipfile.ZipFile(wheel).namelist()
    for sub in SUBPACKAGES:
        assert f"patchsmith/{sub}/__init__.py" in names
    assert not any(n.startswith(("tests/", "benchmarks/", "schema/", "synth/")) for n in names)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # -I: isolated mode, so neither the repo nor the editable install can be imported instead.
    probe = f"import sys; sys.path.insert(0, {str(site)!r}); " + PROBE
    out = subprocess.run([sys.executable, "-I", "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    path, n = out.stdout.split()
    assert Path(path).resolve() == (site / "patchsmith" / "synth" / "render.py").resolve()
    assert int(n) == 4800
