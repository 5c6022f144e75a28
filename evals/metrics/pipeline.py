"""One evaluation pipeline for every backend: items in, tagged metric values out.

``evaluate(items, backends=...)`` computes, for each ``EvalItem`` (caption, generated audio, optional
reference audio), the per-item metrics its backends allow, and the set-level FAD and KAD over all items
with a reference. Every value is a ``MetricValue`` tagged with the metric name, the backend id, kind and
weights hash, and the metric's own settings. ``published_column(metric, backend)`` says whether such a
value may appear in a column compared with the published table (reference §4.1); everything else must
be shown under its own name (e.g. ``KAD[logmel-stats]``).

Metric names (``METRICS``):

| name | what | needs | better |
|---|---|---|---|
| ``clap`` | cos(CLAP_text(caption), CLAP_audio(generated)) | text_audio | higher |
| ``clap_synth`` | the same, caption prefixed by ``"Synthesized "`` (the source's CLAP_synth) | text_audio | higher |
| ``clap_audio_sim`` | cos(CLAP_audio(gen), CLAP_audio(ref)); NOT the published CLAP_synth | text_audio, ref | higher |
| ``kl`` | KL(softmax(logits_ref) ‖ softmax(logits_gen)) | classifier, ref | lower |
| ``ac`` | mean |Δ| of 7 timbral attributes (clipped 0-100) / 100 | timbral, ref | lower |
| ``rms`` | cosine of frame-RMS envelopes (2048/512, centred, shorter zero-padded) | ref | higher |
| ``logmel_db``, ``mss``, ``mfcc`` | spectral distances (``spectral.py``) | ref | lower |
| ``fad``, ``kad`` | set-level over clip embeddings (``scope='set'``) | embedder, ≥2 refs | lower |

Bad input never raises out of ``evaluate`` once the items validate: a generated clip with NaN/inf gets
``None`` values with the reason and the flag ``generated_invalid`` and is left out of FAD/KAD; a silent
one is evaluated (RMS is 0 by definition; AC is ``None`` because timbral-models is undefined on silence)
and flagged ``generated_silent``; a backend error on one item becomes ``None`` with the error as reason.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import core, spectral
from .backends import (AudioEmbedder, BackendInfo, Classifier, SilentAudio, TextAudioModel, TimbralModel,
                       as_mono, create_backend)
from .bootstrap import ConfidenceInterval, bootstrap_ci, bootstrap_kad, bootstrap_set_metric

PUBLISHED_METRICS = ("clap", "clap_synth", "kl", "fad", "kad", "ac", "rms")  # the source table's columns, in order
EXTRA_METRICS = ("clap_audio_sim", "logmel_db", "mss", "mfcc")
METRICS = PUBLISHED_METRICS + EXTRA_METRICS
SET_METRICS = ("fad", "kad")
HIGHER_IS_BETTER = {"clap": True, "clap_synth": True, "clap_audio_sim": True, "kl": False, "fad": False,
                    "kad": False, "ac": False, "rms": True, "logmel_db": False, "mss": False, "mfcc": False}
SYNTH_PREFIX = "Synthesized "  # hoyso48/LLMforFM evaluate.py: clap_score_synthesized
SILENCE_PEAK = 10 ** (-90 / 20)  # below -90 dBFS peak a clip counts as silent

# Pseudo-backend for the model-free metrics: their numbers depend only on these settings.
RMS_INFO = BackendInfo(id="rms-envelope", family="dsp", kind="published", version="1", sample_rate=1,
                       config={"frame": "2048", "hop": "512", "center": "true", "length_rule": "pad",
                               "definition": "librosa.feature.rms(center=True, pad_mode='constant')"})
SPECTRAL_INFO = BackendInfo(id="spectral-numpy", family="dsp", kind="offline", version="1", sample_rate=1,
                            config={"length_rule": "truncate", "mss_fft_sizes": "2048,1024,512,256,128,64",
                                    "mfcc": "20 of 128 mel dB"})

# What may appear in a published-comparison column (reference §3.2 / §4.1): metric -> backend ids.
PUBLISHED_BACKENDS: dict[str, tuple[str, ...]] = {
    "clap": ("laion-clap-music",),
    "clap_synth": ("laion-clap-music",),
    "kl": ("passt-base-10s",),
    "fad": ("passt-base-10s",),
    "kad": ("passt-base-10s",),
    "ac": ("timbral-models",),
    "rms": ("rms-envelope",),
}


class EvalItem(BaseModel):
    """One evaluated case: its id, the caption it was made from, the generated audio and the reference audio.

    Audio is mono float in [-1, 1] (a (channels, samples) array is averaged to mono) at ``sample_rate``;
    ``reference`` is the ground-truth render, or None when there is none (then only CLAP is computed).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str = Field(min_length=1)
    caption: str
    generated: np.ndarray
    reference: np.ndarray | None = None
    sample_rate: int = Field(gt=0)

    @field_validator("generated", "reference", mode="before")
    @classmethod
    def _audio(cls, v: Any) -> Any:
        # NaN/inf is allowed here: evaluate flags such a clip instead of refusing the whole set
        return None if v is None else as_mono(v, finite=False)


class MetricValue(BaseModel):
    """One number with its provenance; ``value`` is None when undefined, with ``reason`` saying why."""

    metric: str
    scope: Literal["item", "set"] = "item"
    item_id: str | None = Field(default=None, description="the item, for scope='item'")
    value: float | None
    reason: str | None = None
    backend_id: str
    backend_kind: str
    weights_sha256: str | None = None
    config: dict[str, str] = Field(default_factory=dict, description="metric settings (bandwidth rule, scale, ...)")
    n: int | None = Field(default=None, description="items used, for scope='set'")
    ci: ConfidenceInterval | None = None

    @property
    def column(self) -> str:
        """Display name: the bare metric when publishable, else 'metric[backend-id]'."""
        return self.metric if self.published else f"{self.metric}[{self.backend_id}]"

    @property
    def published(self) -> bool:
        """Whether this value may sit in the published-comparison column of its metric."""
        return _published(self.metric, self.backend_id, self.backend_kind, self.weights_sha256, self.config)


class ItemResult(BaseModel):
    """All per-item values of one item, and its flags (generated_silent, generated_invalid, no_reference, ...)."""

    id: str
    values: list[MetricValue]
    flags: list[str] = Field(default_factory=list)

    def get(self, metric: str) -> float | None:
        """This item's value of a metric, None if absent or undefined."""
        return next((v.value for v in self.values if v.metric == metric), None)


class MetricSummary(BaseModel):
    """A metric over the set: mean of per-item values (or the set-level value) with its bootstrap CI."""

    metric: str
    backend_id: str
    backend_kind: str
    weights_sha256: str | None
    published: bool
    column: str
    value: float | None
    ci: ConfidenceInterval | None
    n: int
    n_missing: int = Field(description="items whose value was undefined (silent, invalid, no reference, error)")


class EvalResult(BaseModel):
    """Everything ``evaluate`` measured: per-item values, set-level values, summaries and the backends used."""

    items: list[ItemResult]
    set_values: list[MetricValue]
    summaries: list[MetricSummary]
    backends: dict[str, BackendInfo] = Field(description="backend id -> identity of every backend that was used")
    n_items: int
    counts: dict[str, int] = Field(default_factory=dict, description="flag -> number of items carrying it")

    def summary(self, metric: str) -> MetricSummary | None:
        """The summary of one metric, or None if it was not computed."""
        return next((s for s in self.summaries if s.metric == metric), None)

    def per_item(self, metric: str) -> list[float | None]:
        """The metric's value for each item, in item order."""
        return [it.get(metric) for it in self.items]


class BackendSet(BaseModel):
    """The backends one evaluation uses, one per role; a None role skips the metrics that need it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    embedder: AudioEmbedder | None = None
    text_audio: TextAudioModel | None = None
    classifier: Classifier | None = None
    timbral: TimbralModel | None = None


def offline_backends(timbral: bool = False) -> BackendSet:
    """LogMelStats for FAD/KAD plus the labelled stubs for CLAP and KL (and timbral-models if asked and installed)."""
    return BackendSet(embedder=create_backend("logmel-stats"), text_audio=create_backend("hash-text-stub"),
                      classifier=create_backend("fixed-projection-stub"),
                      timbral=create_backend("timbral-models") if timbral else None)


def _published(metric: str, backend_id: str, kind: str, sha: str | None, config: Mapping[str, str]) -> bool:
    allowed = PUBLISHED_BACKENDS.get(metric)
    if not allowed or backend_id not in allowed or kind != "published":
        return False
    if backend_id in ("laion-clap-music", "passt-base-10s") and not sha:
        return False  # a model number without the hash of its weights is not comparable
    if metric in SET_METRICS and (config.get("embedding") != "all-1295" or config.get("padding") != "10s"):
        return False
    if metric == "kad" and (config.get("bandwidth_from") != "eval" or config.get("scale") != "100"):
        return False
    if metric == "ac" and int(config.get("input_rate", "44100")) < 44100:
        return False  # below 44.1 kHz timbral-models resamples, and librosa versions disagree there (ref. §1.5)
    return True


def published_column(metric: str, backend: BackendInfo | MetricValue, config: Mapping[str, str] | None = None) -> bool:
    """Whether a number of ``metric`` from ``backend`` may appear in the published-comparison column.

    Only the published model with hashed weights qualifies: ``laion-clap-music`` for CLAP/CLAP_synth,
    ``passt-base-10s`` for KL, and for FAD/KAD with the kadtk conventions (1295-d 'all' embedding, pad to
    10 s; KAD with bandwidth from the eval set and scale 100); ``timbral-models`` for AC on audio at 44.1 kHz
    or more; the librosa-equivalent ``rms-envelope`` for RMS. Offline and stub backends never qualify.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    if not isinstance(backend, (BackendInfo, MetricValue)):
        raise TypeError(f"published_column needs a BackendInfo or a MetricValue (which carry the weights hash and "
                        f"settings), got {type(backend).__name__}")
    merged = {**backend.config, **(config or {})}
    if isinstance(backend, MetricValue):
        return _published(metric, backend.backend_id, backend.backend_kind, backend.weights_sha256, merged)
    return _published(metric, backend.id, backend.kind, backend.weights_sha256, merged)


# ------------------------------------------------------------------ evaluation

def _value(metric: str, info: BackendInfo, value: float | None, item_id: str | None = None, reason: str | None = None,
           config: Mapping[str, str] | None = None, scope: Literal["item", "set"] = "item", n: int | None = None,
           ci: ConfidenceInterval | None = None) -> MetricValue:
    if value is not None and not np.isfinite(value):
        value, reason = None, reason or "the value was not finite"
    return MetricValue(metric=metric, scope=scope, item_id=item_id, value=None if value is None else float(value),
                       reason=reason, backend_id=info.id, backend_kind=info.kind, weights_sha256=info.weights_sha256,
                       config={**info.config, **(config or {})}, n=n, ci=ci)


def _is_valid(a: np.ndarray | None) -> bool:
    return a is not None and a.size > 0 and bool(np.all(np.isfinite(a)))


def _is_silent(a: np.ndarray) -> bool:
    return a.size == 0 or float(np.max(np.abs(a))) < SILENCE_PEAK


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def evaluate(items: Sequence[EvalItem], backends: BackendSet | None = None, metrics: Iterable[str] | None = None,
             kad_bandwidth_from: core.BandwidthFrom = "eval", kad_scale: float = core.KAD_SCALE,
             n_boot: int = 1000, set_boot: int = 0, seed: int = 0, level: float = 0.95) -> EvalResult:
    """Compute per-item metrics and set-level FAD/KAD for the items with the given backends (offline by default).

    ``metrics`` restricts what is computed (default: all that the backends allow). ``n_boot`` draws give the
    CI of each per-item mean; ``set_boot`` draws (0 = none, it is slower) give the CIs of FAD and KAD.
    """
    items = list(items)
    if not items:
        raise ValueError("evaluate needs at least one item")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise ValueError("item ids must be unique")
    if n_boot < 0 or set_boot < 0:
        raise ValueError(f"n_boot and set_boot must be >= 0, got {n_boot} and {set_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if kad_bandwidth_from not in ("eval", "ref", "pooled"):
        raise ValueError(f"kad_bandwidth_from must be 'eval', 'ref' or 'pooled', got {kad_bandwidth_from!r}")
    wanted = set(METRICS if metrics is None else [metrics] if isinstance(metrics, str) else metrics)
    unknown = wanted - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; allowed: {', '.join(METRICS)}")
    b = backends if backends is not None else offline_backends()
    used: dict[str, BackendInfo] = {}

    results: dict[str, ItemResult] = {it.id: ItemResult(id=it.id, values=[]) for it in items}
    valid: dict[str, bool] = {}
    for it in items:
        flags = results[it.id].flags
        valid[it.id] = _is_valid(it.generated)
        if not valid[it.id]:
            flags.append("generated_invalid" if it.generated.size else "generated_empty")
        elif _is_silent(it.generated):
            flags.append("generated_silent")
        if it.reference is None:
            flags.append("no_reference")
        elif not _is_valid(it.reference):
            flags.append("reference_invalid")
        elif _is_silent(it.reference):
            flags.append("reference_silent")

    def has_ref(it: EvalItem) -> bool:
        return _is_valid(it.reference)

    def skip(metric: str, info: BackendInfo, it: EvalItem, need_ref: bool) -> bool:
        if not valid[it.id]:
            results[it.id].values.append(_value(metric, info, None, it.id, "generated audio is empty or has NaN/inf"))
            return True
        if need_ref and not has_ref(it):
            why = "no reference audio" if it.reference is None else "reference audio is empty or has NaN/inf"
            results[it.id].values.append(_value(metric, info, None, it.id, why))
            return True
        return False

    # CLAP family: one batch of text and audio embeddings per role.
    ta = b.text_audio
    if ta is not None and wanted & {"clap", "clap_synth", "clap_audio_sim"}:
        used[ta.info.id] = ta.info
        ok = [it for it in items if valid[it.id]]
        gen_emb: dict[str, np.ndarray] = {}
        try:
            if ok:
                rows = ta.embed_audio([it.generated for it in ok], ok[0].sample_rate) if \
                    len({it.sample_rate for it in ok}) == 1 else \
                    np.vstack([ta.embed_audio([it.generated], it.sample_rate) for it in ok])
                gen_emb = {it.id: r for it, r in zip(ok, rows)}
            clap_err = None
        except Exception as exc:  # a model failure is reported per item, never raised
            clap_err = _err(exc)
        for metric, prefix in (("clap", ""), ("clap_synth", SYNTH_PREFIX)):
            if metric not in wanted:
                continue
            text = None
            if clap_err is None and ok:
                try:
                    text = ta.embed_text([prefix + it.caption for it in ok])
                except Exception as exc:
                    clap_err = _err(exc)
            tmap = {it.id: r for it, r in zip(ok, text)} if text is not None else {}
            for it in items:
                if skip(metric, ta.info, it, need_ref=False):
                    continue
                if it.id not in gen_emb or it.id not in tmap:
                    results[it.id].values.append(_value(metric, ta.info, None, it.id, clap_err or "no embedding"))
                    continue
                v = core.cosine_per_pair(tmap[it.id][None, :], gen_emb[it.id][None, :])[0]
                results[it.id].values.append(_value(metric, ta.info, v, it.id, config={"prefix": prefix}))
        if "clap_audio_sim" in wanted:
            for it in items:
                if skip("clap_audio_sim", ta.info, it, need_ref=True):
                    continue
                try:
                    ref = ta.embed_audio([it.reference], it.sample_rate)[0]
                    v = core.cosine_per_pair(ref[None, :], gen_emb[it.id][None, :])[0] if it.id in gen_emb else None
                    results[it.id].values.append(_value("clap_audio_sim", ta.info, v, it.id,
                                                        None if v is not None else clap_err or "no embedding"))
                except Exception as exc:
                    results[it.id].values.append(_value("clap_audio_sim", ta.info, None, it.id, _err(exc)))

    # KL over classifier label distributions.
    clf = b.classifier
    if clf is not None and "kl" in wanted:
        used[clf.info.id] = clf.info
        for it in items:
            if skip("kl", clf.info, it, need_ref=True):
                continue
            try:
                lr = np.asarray(clf.logits(it.reference, it.sample_rate), dtype=np.float64)[None, :]
                lg = np.asarray(clf.logits(it.generated, it.sample_rate), dtype=np.float64)[None, :]
                v = float(core.kl_from_logits(lr, lg)[0])
                results[it.id].values.append(_value("kl", clf.info, v, it.id, config={
                    "direction": "KL(ref||gen)", "probabilities": "softmax", "eps": str(core.KL_EPS)}))
            except Exception as exc:
                results[it.id].values.append(_value("kl", clf.info, None, it.id, _err(exc)))

    # AC: timbral attributes.
    tm = b.timbral
    if tm is not None and "ac" in wanted:
        used[tm.info.id] = tm.info
        cfg = {"attributes": ",".join(core.TIMBRAL_ATTRIBUTES), "clip": "0-100", "norm": "100", "reduce": "mae"}
        for it in items:
            if skip("ac", tm.info, it, need_ref=True):
                continue
            if _is_silent(it.generated) or _is_silent(it.reference):
                which = "generated" if _is_silent(it.generated) else "reference"
                results[it.id].values.append(_value("ac", tm.info, None, it.id,
                                                    f"{which} audio is silent: timbral attributes are undefined",
                                                    config=cfg))
                continue
            try:
                v = core.timbral_error(tm.attributes(it.reference, it.sample_rate),
                                       tm.attributes(it.generated, it.sample_rate))
                results[it.id].values.append(_value("ac", tm.info, v, it.id,
                                                    config={**cfg, "input_rate": str(it.sample_rate)}))
            except SilentAudio as exc:
                results[it.id].values.append(_value("ac", tm.info, None, it.id, f"silent audio: {exc}", config=cfg))
            except Exception as exc:
                results[it.id].values.append(_value("ac", tm.info, None, it.id, _err(exc), config=cfg))

    # Model-free paired metrics.
    for metric in ("rms", "logmel_db", "mss", "mfcc"):
        if metric not in wanted:
            continue
        info = RMS_INFO if metric == "rms" else SPECTRAL_INFO
        used[info.id] = info
        for it in items:
            if skip(metric, info, it, need_ref=True):
                continue
            try:
                ref, gen, sr = it.reference, it.generated, it.sample_rate
                if metric == "rms":
                    v = core.rms_cosine(ref, gen, sr)
                elif metric == "logmel_db":
                    v = spectral.log_mel_distance(ref, gen, sr)
                elif metric == "mss":
                    v = spectral.multiscale_stft_distance(ref, gen)
                else:
                    v = spectral.mfcc_distance(ref, gen, sr)
                results[it.id].values.append(_value(metric, info, v, it.id))
            except Exception as exc:
                results[it.id].values.append(_value(metric, info, None, it.id, _err(exc)))

    # Set-level FAD / KAD over clip embeddings of the items with a valid generated clip and reference.
    set_values: list[MetricValue] = []
    emb = b.embedder
    if emb is not None and wanted & set(SET_METRICS):
        used[emb.info.id] = emb.info
        pairs = [it for it in items if valid[it.id] and has_ref(it)]
        er: list[np.ndarray] = []
        eg: list[np.ndarray] = []
        reason = None
        try:
            for it in pairs:
                er.append(emb.embed_clip(it.reference, it.sample_rate))
                eg.append(emb.embed_clip(it.generated, it.sample_rate))
        except Exception as exc:
            reason = _err(exc)
        if reason is None and len(pairs) < 2:
            reason = f"needs at least 2 items with valid generated and reference audio, got {len(pairs)}"
        R = G = None
        if reason is None:
            try:
                R, G = np.vstack(er), np.vstack(eg)
            except ValueError as exc:  # embeddings of different sizes from a misbehaving backend
                reason = _err(exc)
        for metric in SET_METRICS:
            if metric not in wanted:
                continue
            if metric == "fad":
                fn = core.fad
                cfg = {"stats": "np.cov ddof=1", "sqrt": "eigh symmetric"}
            else:
                def fn(r: np.ndarray, g: np.ndarray) -> float:
                    return core.kad(r, g, bandwidth_from=kad_bandwidth_from, scale=kad_scale)
                cfg = {"bandwidth_from": kad_bandwidth_from, "scale": f"{kad_scale:g}", "kernel": "gaussian",
                       "median": "lower", "estimator": "unbiased"}
            if R is None:
                set_values.append(_value(metric, emb.info, None, reason=reason, config=cfg, scope="set", n=len(pairs)))
                continue
            try:
                ci = None
                if set_boot > 0 and metric == "fad":
                    ci = bootstrap_set_metric(fn, R, G, n=set_boot, seed=seed, level=level, recenter=True)
                elif set_boot > 0:
                    ci = bootstrap_kad(R, G, bandwidth_from=kad_bandwidth_from, scale=kad_scale, n=set_boot,
                                       seed=seed, level=level)
                set_values.append(_value(metric, emb.info, fn(R, G), config=cfg, scope="set", n=len(pairs), ci=ci))
            except Exception as exc:
                set_values.append(_value(metric, emb.info, None, reason=_err(exc), config=cfg, scope="set",
                                         n=len(pairs)))

    # Summaries in the published table's order, then the extras.
    summaries: list[MetricSummary] = []
    item_list = [results[i] for i in ids]
    for metric in METRICS:
        if metric in SET_METRICS:
            sv = next((v for v in set_values if v.metric == metric), None)
            if sv is None:
                continue
            summaries.append(MetricSummary(metric=metric, backend_id=sv.backend_id, backend_kind=sv.backend_kind,
                                           weights_sha256=sv.weights_sha256, published=sv.published, column=sv.column,
                                           value=sv.value, ci=sv.ci, n=sv.n or 0,
                                           n_missing=len(items) - (sv.n or 0)))
            continue
        vals = [v for it in item_list for v in it.values if v.metric == metric]
        if not vals:
            continue
        ci = bootstrap_ci([v.value for v in vals], n=max(1, n_boot), seed=seed, level=level)
        first = vals[0]
        published = all(v.published for v in vals)  # one value outside the conventions takes the mean out
        summaries.append(MetricSummary(metric=metric, backend_id=first.backend_id, backend_kind=first.backend_kind,
                                       weights_sha256=first.weights_sha256, published=published,
                                       column=metric if published else f"{metric}[{first.backend_id}]",
                                       value=ci.estimate, ci=ci if n_boot > 0 else None, n=ci.n,
                                       n_missing=sum(v.value is None for v in vals)))
    counts = Counter(f for it in item_list for f in it.flags)
    return EvalResult(items=item_list, set_values=set_values, summaries=summaries, backends=used,
                      n_items=len(items), counts=dict(counts))
