"""PaSST (hear21passt) as an embedder for FAD/KAD and a 527-class AudioSet classifier for KL.

Setup (nothing downloads at run time):

- ``pip install hear21passt`` in an environment whose torch it may change (it needs timm -> torchvision);
- the checkpoint ``passt-s-f128-p16-s10-ap.476-swa.pt`` (GitHub releases of kkoutini/PaSST), passed as
  ``weights_path`` or found at ``$TORCH_HOME/hub/checkpoints/``. The package's own loader is used: it is
  pointed (``torch.hub.set_dir``, restored afterwards) at the folder holding ``checkpoints/<that name>``,
  or at a private folder linking that name to the file given.

Conventions (kadtk ``passt-base-10s``): 32 kHz mono, each clip zero-padded or cropped to exactly 10 s
(``pad="10s"``; ``pad="none"`` keeps the clip as is, as audiocraft's KL does for clips under 10 s).
``mode="all"`` gives the 1295-d scene embedding (527 logits + 768 features, the kadtk FAD/KAD embedding),
``mode="embed_only"`` the 768-d features. One loaded model serves both the embeddings and the logits.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .backends import (AudioEmbedder, BackendInfo, BackendUnavailable, Classifier, ClipMemo, check_sha256,
                       require_file, require_module, resample)

PASST_RATE = 32000
PASST_FILE = "passt-s-f128-p16-s10-ap.476-swa.pt"
PASST_ARCH = "passt_s_swa_p16_128_ap476"
INSTALL = "pip install hear21passt (in a separate environment: it pulls timm and torchvision, which may change torch)"
WEIGHTS = (f"download {PASST_FILE} (GitHub releases of kkoutini/PaSST) and pass its path as weights_path, or put it "
           f"at $TORCH_HOME/hub/checkpoints/{PASST_FILE}")


def default_weights_path() -> Path:
    """Where timm/torch.hub would cache the PaSST checkpoint ($TORCH_HOME/hub/checkpoints/...)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(home).expanduser() / "hub" / "checkpoints" / PASST_FILE


def _load_with_package_loader(torch: Any, base: Any, path: Path) -> Any:
    """hear21passt's own model with the checkpoint found where timm's cached download looks for it."""
    if path.name == PASST_FILE and path.parent.name == "checkpoints":
        hub_dir = path.parent.parent
    else:
        # Any other name or place: a private hub folder whose checkpoints/<expected name> links to the file,
        # so that the package's loader (and its checkpoint filter) is used unchanged and nothing downloads.
        hub_dir = Path(tempfile.mkdtemp(prefix="patchsmith-passt-hub-"))
        (hub_dir / "checkpoints").mkdir()
        link = hub_dir / "checkpoints" / PASST_FILE
        try:
            link.symlink_to(path.resolve())
        except OSError:
            shutil.copyfile(path, link)
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(hub_dir))
    try:
        try:
            return base.get_basic_model(mode="all")
        except TypeError:  # releases whose wrapper has no 'mode' always return logits + features
            return base.get_basic_model()
    finally:
        torch.hub.set_dir(previous)


class Passt(AudioEmbedder, Classifier):
    """PaSST-S (AudioSet, ap .476, SWA) from local weights: scene embeddings and AudioSet logits."""

    def __init__(self, weights_path: str | os.PathLike[str] | None = None, mode: Literal["all", "embed_only"] = "all",
                 pad: Literal["10s", "none"] = "10s", device: str = "cpu", expected_sha256: str | None = None) -> None:
        name = "passt"
        if mode not in ("all", "embed_only"):
            raise ValueError(f"mode must be 'all' or 'embed_only', got {mode!r}")
        if pad not in ("10s", "none"):
            raise ValueError(f"pad must be '10s' or 'none', got {pad!r}")
        path = require_file(name, weights_path if weights_path is not None else default_weights_path(),
                            "PaSST checkpoint", WEIGHTS)
        digest = check_sha256(name, path, expected_sha256)
        torch = require_module(name, "torch", INSTALL)
        base = require_module(name, "hear21passt.base", INSTALL)
        try:
            model = _load_with_package_loader(torch, base, path)
            model.to(device)
            model.eval()
        except Exception as exc:
            raise BackendUnavailable(name, f"loading {path} failed ({type(exc).__name__}: {exc})", INSTALL) from exc
        self._torch, self._model, self._device = torch, model, device
        self._memo = ClipMemo(256)  # KL's logits and FAD's embedding of a clip come from one forward pass
        self.mode, self.pad = mode, pad
        self.labels = None
        self.info = BackendInfo(
            id="passt-base-10s", family="passt", kind="published", version="hear21passt",
            sample_rate=PASST_RATE, weights_path=str(path), weights_sha256=digest,
            config={"arch": PASST_ARCH, "embedding": "all-1295" if mode == "all" else "embed-768",
                    "padding": pad, "probabilities": "softmax"})

    def _input(self, audio: np.ndarray, sample_rate: int) -> object:
        x = resample(audio, sample_rate, PASST_RATE)
        if self.pad == "10s":
            n = 10 * PASST_RATE
            x = np.pad(x[:n], (0, max(0, n - x.size)))
        elif x.size < PASST_RATE // 10:  # the mel front-end needs a few frames
            x = np.pad(x, (0, PASST_RATE // 10 - x.size))
        return self._torch.from_numpy(x.astype(np.float32))[None, :].to(self._device)

    def _scene(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return self._memo.get(audio, sample_rate, lambda x: self._forward(x, sample_rate))

    def _forward(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        with self._torch.no_grad():
            out = self._model.get_scene_embeddings(self._input(audio, sample_rate))
        return out.detach().cpu().numpy().astype(np.float64)[0]

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """One row: the 1295-d scene embedding (527 logits then 768 features), or the 768 features alone."""
        e = self._scene(audio, sample_rate)
        return (e if self.mode == "all" else e[-768:])[None, :]

    def logits(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The 527 AudioSet logits (the first 527 values of the 'all' scene embedding)."""
        return self._scene(audio, sample_rate)[:527]
