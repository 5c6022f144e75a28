"""One tiny random Qwen3 checkpoint and one offline tokenizer per test session, shared by the test modules.

Building the offline tokenizer (a BPE trained on the project's text) takes seconds on a busy machine, so
it is built once; a test that changes a checkpoint (its ``patchsmith.json``) works on a copy.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any


@functools.cache
def shared_tokenizer() -> Any:
    """``training.tiny_model.offline_tokenizer()``, built once per session (treat it as read-only)."""
    from patchsmith.training.tiny_model import offline_tokenizer

    return offline_tokenizer()


@functools.cache
def shared_tiny_checkpoint() -> Path:
    """A tiny random Qwen3 checkpoint folder, written once per session (copy it before changing it)."""
    from patchsmith.training.tiny_model import save_tiny_checkpoint

    root = Path(tempfile.mkdtemp(prefix="patchsmith-tiny-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return save_tiny_checkpoint(root / "ckpt")


def tiny_checkpoint_copy(dest: Path) -> Path:
    """A copy of the shared checkpoint at ``dest``, for a test that writes into it."""
    return Path(shutil.copytree(shared_tiny_checkpoint(), dest))
