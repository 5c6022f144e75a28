"""Figures of a run: metric bars beside the published values, and spectrograms of example items.

matplotlib (the ``eval`` extra) is imported only here, inside the functions, with the Agg backend
(no display needed); without it ``write_plots`` raises ``PlotsUnavailable`` and the run goes on
without figures. Figures are written as PNG with fixed metadata so that the same run gives the same
bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .report import PUBLISHED_COLUMNS, PUBLISHED_ROWS, source_render

_PNG_META = {"Software": None}  # no matplotlib version string in the file: same run, same bytes


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotsUnavailable("plots need matplotlib (pip install 'patchsmith[eval]'); no figures were made") from None
    return plt


def metric_bars(run: Any, path: Path) -> bool:
    """One panel per metric of this run: its value (with CI), and the published rows in the paper's columns.

    Published values are drawn only beside a published-comparable number of a run rendered the source's
    way; other numbers are drawn alone, labelled with their column. Returns False when the run has no metric to draw.
    """
    metrics = [m for m in run.metrics if m.get("value") is not None]
    if not metrics:
        return False
    plt = _pyplot()
    cols = min(4, len(metrics))
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    index = {k: i for i, (k, _, _) in enumerate(PUBLISHED_COLUMNS)}
    label = str(run.config.system.get("name") or "this run")
    same_render = source_render(run.config.render)  # else no number of this run is comparable with the paper's
    for ax, m in zip(axes.flat, metrics):
        names, values, colours = [label], [m["value"]], ["tab:blue"]
        if m.get("published") and m["metric"] in index and same_render:
            for name, vals in PUBLISHED_ROWS:
                v = vals[index[m["metric"]]]
                if v is not None:
                    names.append(name)
                    values.append(v)
                    colours.append("tab:gray")
        y = np.arange(len(names))
        ax.barh(y, values, color=colours)
        ci = m.get("ci") or {}
        if ci.get("low") is not None and ci.get("high") is not None:
            ax.errorbar([m["value"]], [0], xerr=[[m["value"] - ci["low"]], [ci["high"] - m["value"]]], fmt="none",
                        ecolor="black", capsize=3)
        ax.set_yticks(y, [n[:28] for n in names], fontsize=7)
        ax.invert_yaxis()
        ax.set_title(m["column"], fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_PNG_META)
    plt.close(fig)
    return True


def _log_spec(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    from .distances import log_mel_db

    return log_mel_db(np.asarray(audio, dtype=np.float64), sample_rate, n_mels=96), 512 / sample_rate


def spectrograms(run: Any, kept: Mapping[str, tuple[np.ndarray, np.ndarray | None]], path: Path) -> bool:
    """Log-mel spectrograms of example items: generated (left) beside the ground-truth render (right)."""
    if not kept:
        return False
    plt = _pyplot()
    sr = run.config.render.sample_rate
    captions = {it.id: it.caption for it in run.items}
    fig, axes = plt.subplots(len(kept), 2, figsize=(9, 2.2 * len(kept)), squeeze=False)
    for row, (rid, (gen, ref)) in enumerate(kept.items()):
        for col, (audio, what) in enumerate(((gen, "generated"), (ref, "reference"))):
            ax = axes[row][col]
            if audio is None:
                ax.axis("off")
                ax.text(0.5, 0.5, "no reference", ha="center", va="center", fontsize=8)
                continue
            spec, hop_s = _log_spec(audio, sr)
            ax.imshow(spec.T, origin="lower", aspect="auto", vmin=-100, vmax=0,  # spec: (frames, mel bands)
                      extent=(0, spec.shape[0] * hop_s, 0, spec.shape[1]), cmap="magma")
            ax.set_title(f"{rid} {what}: {captions.get(rid, '')[:48]}", fontsize=7)
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata=_PNG_META)
    plt.close(fig)
    return True


def write_plots(run: Any, folder: Path, kept: Mapping[str, tuple[np.ndarray, np.ndarray | None]]) -> list[str]:
    """Write the figures of a run into ``folder``; returns the file names made."""
    _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    if metric_bars(run, folder / "metrics.png"):
        made.append("metrics.png")
    if spectrograms(run, kept, folder / "spectrograms.png"):
        made.append("spectrograms.png")
    return made


__all__ = ["PlotsUnavailable", "metric_bars", "spectrograms", "write_plots"]
