"""LAION-CLAP as a ``TextAudioModel``, loaded from a checkpoint file the user supplies.

Setup (nothing downloads at run time):

- ``pip install laion-clap`` in an environment whose torch it may change (it needs torchvision, h5py,
  webdataset, wget; ``transformers<5`` is what it was built against);
- a Hugging Face cache holding the ``bert-base-uncased``, ``roberta-base`` and ``facebook/bart-base``
  tokenizers and the ``roberta-base`` weights (``laion_clap`` loads them at import and in ``CLAP_Module()``);
  point ``hf_home`` (or ``HF_HOME``) at it; ``HF_HUB_OFFLINE=1`` is set while loading;
- the checkpoint, e.g. ``music_audioset_epoch_15_esc_90.14.pt`` (HTSAT-base, the source research's
  choice and the only one admitted to the published CLAP columns) or ``630k-audioset-best.pt`` (HTSAT-tiny).

Audio goes in at 48 kHz; clips longer than 10 s are cropped to their first 10 s here (the package would
crop at random), shorter ones are repeat-padded by the package itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .backends import (BackendInfo, BackendUnavailable, TextAudioModel, check_sha256, require_file, require_module,
                       resample)

CLAP_RATE = 48000
CLAP_MAX_S = 10.0
# checkpoint file -> (backend id, audio model) for the LAION releases (reference §1.4)
KNOWN_CHECKPOINTS = {
    "music_audioset_epoch_15_esc_90.14.pt": ("laion-clap-music", "HTSAT-base"),
    "music_speech_epoch_15_esc_89.25.pt": ("laion-clap-music-speech", "HTSAT-base"),
    "music_speech_audioset_epoch_15_esc_89.98.pt": ("laion-clap-music-speech-audioset", "HTSAT-base"),
    "630k-audioset-best.pt": ("laion-clap-630k-audioset", "HTSAT-tiny"),
    "630k-best.pt": ("laion-clap-630k", "HTSAT-tiny"),
}
INSTALL = ("pip install laion-clap (in a separate environment: it pulls torchvision and may change torch), "
           "and put the bert-base-uncased, roberta-base and facebook/bart-base tokenizers plus roberta-base "
           "weights in a Hugging Face cache given as hf_home or HF_HOME")
WEIGHTS = ("download a LAION-CLAP checkpoint (Hugging Face lukewys/laion_clap, e.g. "
           "music_audioset_epoch_15_esc_90.14.pt) and pass its path as ckpt_path")


def _hf_cache_has(hub: Path, repo: str) -> bool:
    return (hub / f"models--{repo.replace('/', '--')}").is_dir()


class LaionClap(TextAudioModel):
    """LAION-CLAP text and audio towers from a local checkpoint; embeddings are L2-normalised."""

    def __init__(self, ckpt_path: str | os.PathLike[str] | None = None, amodel: str | None = None,
                 enable_fusion: bool = False, hf_home: str | os.PathLike[str] | None = None, device: str = "cpu",
                 expected_sha256: str | None = None) -> None:
        name = "laion-clap"
        ckpt = require_file(name, ckpt_path, "CLAP checkpoint", WEIGHTS)
        digest = check_sha256(name, ckpt, expected_sha256)
        backend_id, default_amodel = KNOWN_CHECKPOINTS.get(ckpt.name, ("laion-clap-custom", "HTSAT-base"))
        self.amodel = amodel or default_amodel
        home = Path(hf_home or os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()
        # HF_HUB_CACHE, when set, overrides <HF_HOME>/hub (huggingface_hub's rule) unless hf_home is given.
        hub = Path(os.environ["HF_HUB_CACHE"]).expanduser() if os.environ.get("HF_HUB_CACHE") and not hf_home \
            else home / "hub"
        missing = [r for r in ("bert-base-uncased", "roberta-base", "facebook/bart-base") if not _hf_cache_has(hub, r)]
        if missing:
            raise BackendUnavailable(name, f"the Hugging Face cache at {hub} lacks {', '.join(missing)}", INSTALL)
        saved = {k: os.environ.get(k) for k in ("HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        os.environ.update(HF_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        try:
            laion_clap = require_module(name, "laion_clap", INSTALL)
            torch = require_module(name, "torch", INSTALL)
            try:
                model = laion_clap.CLAP_Module(enable_fusion=enable_fusion, amodel=self.amodel, device=device)
                model.load_ckpt(str(ckpt))  # always with a path: without one the package downloads
                model.eval()
            except Exception as exc:
                raise BackendUnavailable(name, f"loading {ckpt} failed ({type(exc).__name__}: {exc})", INSTALL) from exc
        finally:  # the offline settings are only needed while the tokenizers and the text model load
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        self._torch, self._model = torch, model
        self.info = BackendInfo(
            id=backend_id, family="laion-clap", kind="published", version=str(getattr(laion_clap, "__version__", "?")),
            sample_rate=CLAP_RATE, weights_path=str(ckpt), weights_sha256=digest,
            config={"amodel": self.amodel, "fusion": str(enable_fusion).lower(), "crop": "first 10 s",
                    "pad": "repeatpad (package)"})

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Text embeddings (n, 512), L2-normalised by the model."""
        if isinstance(texts, str):
            raise TypeError("embed_text takes a list of strings, not one string")
        batch = list(texts)
        if not batch:
            return np.zeros((0, 512))
        # laion_clap releases before LAION-AI/CLAP#105 fail on a batch of one text: add a blank and drop it.
        padded = batch + [""] if len(batch) == 1 else batch
        with self._torch.no_grad():
            out = self._model.get_text_embedding(padded, use_tensor=False)
        return np.asarray(out, dtype=np.float64)[: len(batch)]

    def embed_audio(self, audios: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """Audio embeddings (n, 512) at 48 kHz, each clip cropped to its first 10 s."""
        n_max = int(CLAP_MAX_S * CLAP_RATE)
        rows = []
        with self._torch.no_grad():
            for a in audios:
                x = resample(a, sample_rate, CLAP_RATE)[:n_max].astype(np.float32)
                if x.size == 0:
                    x = np.zeros(CLAP_RATE, dtype=np.float32)
                e = self._model.get_audio_embedding_from_data(x=x[None, :], use_tensor=False)
                rows.append(np.asarray(e, dtype=np.float64)[0])
        return np.vstack(rows) if rows else np.zeros((0, 512))
