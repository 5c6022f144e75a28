"""Project-made inputs for the dataset builder's tests: banks from examples/*.json and edited variants.

``make_inputs(root)`` writes:

- ``banks/a.syx``: the 7 examples, 7 variants (OP1 coarse changed), 1 silent voice (no carrier level),
  padded with init voices;
- ``banks/sub/b.syx``: the 7 examples again under other names (duplicates), and one more variant;
- ``banks/notes.txt`` (ignored) and ``banks/junk.syx`` (refused: not DX7 data);
- ``more.zip``: ``c.syx`` (2 new variants) and ``inner.zip`` holding ``d.syx`` (1 new variant);
- ``csv/DX7_T.csv`` + ``csv/DX7_T_captions.csv``: 2 examples (captioned) and 1 new variant, source-research format.

and returns the expected figures.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from patchsmith.examples import load_examples
from patchsmith.schema.patch import Patch
from patchsmith.schema.source_research import export_source_dict
from patchsmith.synth.sysex import init_voice, write_vmem
from patchsmith.training.dataset.dedup import voice_id


@dataclass
class Inputs:
    root: Path
    paths: list[Path]
    unique_ids: list[str]  # in first-occurrence order
    silent_ids: set[str]
    captioned_ids: set[str]
    voices: int  # voices in the inputs, duplicates included
    files_read: int
    files_refused: int
    files_ignored: int


def _variant(p: Patch, k: int, name: str) -> Patch:
    d = p.to_dict(full=True)
    d["coarse"] = list(d["coarse"])
    d["coarse"][0] = (d["coarse"][0] + k) % 32 or 1
    d["name"] = name
    return Patch(**d)


def _silent(p: Patch) -> Patch:
    d = p.to_dict(full=True)
    d["ol"] = [0] * 6
    d["name"] = "SILENT"
    return Patch(**d)


def _bank(patches: list[Patch]) -> bytes:
    return write_vmem(patches)


def make_inputs(root: Path) -> Inputs:
    """Write the fixture inputs under ``root`` and return what a build of them must find."""
    ex = [e.patch for e in load_examples()]
    assert len(ex) >= 7
    ex = ex[:7]
    a = ex + [_variant(p, 1, f"VAR1 {i}") for i, p in enumerate(ex)] + [_silent(ex[0])]
    b = [Patch(**(p.to_dict(full=True) | {"name": f"DUP {i}"})) for i, p in enumerate(ex)] + [_variant(ex[0], 2, "VAR2")]
    c = [_variant(ex[1], 2, "VAR2 B"), _variant(ex[2], 2, "VAR2 C")]
    d = [_variant(ex[3], 2, "VAR2 D")]
    csv_new = _variant(ex[4], 3, "VAR3 E")
    banks = root / "banks"
    (banks / "sub").mkdir(parents=True)
    (banks / "a.syx").write_bytes(_bank(a))
    (banks / "sub" / "b.syx").write_bytes(_bank(b))
    (banks / "notes.txt").write_text("not a bank\n")
    (banks / "junk.syx").write_bytes(b"this is not sysex data at all, just text " * 5)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("deep/d.syx", _bank(d))
    with zipfile.ZipFile(root / "more.zip", "w") as z:
        z.writestr("c.syx", _bank(c))
        z.writestr("inner.zip", inner.getvalue())
    (root / "csv").mkdir()
    rows = [(ex[0], "Bright electric piano, which has a bell-like attack."), (ex[1], "Warm pad, which swells slowly."),
            (csv_new, None)]
    with open(root / "csv" / "DX7_T.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "id", "name", "file_path", "patch_number", "patch_data"])
        for i, (p, _) in enumerate(rows):
            w.writerow([i, f"t{i}", p.name or "", "fixture", i, repr(export_source_dict(p))])
    with open(root / "csv" / "DX7_T_captions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "id", "name", "caption"])
        for i, (p, cap) in enumerate(rows):
            if cap:
                w.writerow([i, f"t{i}", p.name or "", cap])

    init = init_voice()
    pad_a, pad_b, pad_c, pad_d = 32 - len(a), 32 - len(b), 32 - len(c), 32 - len(d)
    # Input order: folder banks (sorted: a.syx, junk.syx, notes.txt, sub/b.syx), then csv, then more.zip.
    order = a + [init] * pad_a + b + [init] * pad_b + [p for p, _ in rows] + c + [init] * pad_c + d + [init] * pad_d
    ids = list(dict.fromkeys(voice_id(p) for p in order))
    return Inputs(root=root, paths=[banks, root / "csv", root / "more.zip"], unique_ids=ids,
                  silent_ids={voice_id(_silent(ex[0]))}, captioned_ids={voice_id(ex[0]), voice_id(ex[1])},
                  voices=len(order), files_read=6, files_refused=1, files_ignored=1)
