"""The published metrics (CLAP, CLAP_synth, KL, FAD, KAD, AC, RMS) and cheap spectral distances.

Entry points: ``pipeline.evaluate(items, backends=...)`` -> ``EvalResult`` (every value tagged with its
metric, backend id and weights hash), ``pipeline.published_column(metric, backend)``, the pure numpy math
in ``core``, the paired distances in ``spectral``, ``bootstrap`` CIs, and ``backends.create_backend(name)``.
"""

from .backends import (AudioEmbedder, BackendInfo, BackendUnavailable, Classifier, TextAudioModel, TimbralModel,
                       backend_names, create_backend, register_backend)
from .bootstrap import ConfidenceInterval, bootstrap_ci, bootstrap_kad, bootstrap_set_metric
from .pipeline import (EXTRA_METRICS, HIGHER_IS_BETTER, METRICS, PUBLISHED_METRICS, BackendSet, EvalItem, EvalResult,
                       ItemResult, MetricSummary, MetricValue, evaluate, offline_backends, published_column)

__all__ = [
    "AudioEmbedder", "BackendInfo", "BackendSet", "BackendUnavailable", "Classifier", "ConfidenceInterval", "EvalItem",
    "EvalResult", "EXTRA_METRICS", "HIGHER_IS_BETTER", "ItemResult", "METRICS", "MetricSummary", "MetricValue",
    "PUBLISHED_METRICS", "TextAudioModel",
    "TimbralModel", "backend_names", "bootstrap_ci", "bootstrap_kad", "bootstrap_set_metric", "create_backend",
    "evaluate", "offline_backends", "published_column", "register_backend",
]
