"""evaluate(): per-item and set-level metrics on DX7 notes the project renders itself, tagging, edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from patchsmith.evals.metrics import pipeline as P
from patchsmith.evals.metrics.backends import BackendInfo, Classifier, create_backend
from patchsmith.evals.metrics.stub_backends import HashText
from patchsmith.synth.render import render

SR = 44100
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
NAMES = ("bell", "brass", "epiano", "marimba", "bass", "organ")


@pytest.fixture(scope="module")
def examples() -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """name -> (caption, note 60, note 64) rendered from the repository's example patches."""
    out = {}
    for name in NAMES:
        doc = json.loads((EXAMPLES / f"{name}.json").read_text())
        a = render(doc["patch"], note=60, hold_s=0.3, release_s=0.2, sample_rate=SR).astype(np.float64)
        b = render(doc["patch"], note=64, hold_s=0.3, release_s=0.2, sample_rate=SR).astype(np.float64)
        out[name] = (doc["captions"][0], a, b)
    return out


def _items(examples, gen_note: int = 1) -> list[P.EvalItem]:
    return [P.EvalItem(id=n, caption=c, generated=(a, b)[gen_note], reference=a, sample_rate=SR)
            for n, (c, a, b) in examples.items()]


def test_offline_evaluation_tags_every_value_and_keeps_stubs_out_of_published_columns(examples):
    res = P.evaluate(_items(examples), n_boot=200)
    assert res.n_items == len(NAMES) and not res.counts
    got = {s.metric: s for s in res.summaries}
    assert list(got) == [m for m in P.METRICS if m != "ac"]  # no timbral backend was given
    for m in ("clap", "clap_synth", "clap_audio_sim"):
        assert got[m].backend_id == "hash-text-stub" and got[m].backend_kind == "stub"
    assert got["kl"].backend_id == "fixed-projection-stub"
    assert got["fad"].backend_id == got["kad"].backend_id == "logmel-stats"
    for m in ("clap", "clap_synth", "kl", "fad", "kad"):
        assert not got[m].published and got[m].column == f"{m}[{got[m].backend_id}]"
    assert got["rms"].published and got["rms"].column == "rms"  # model-free, librosa-equivalent definition
    assert got["fad"].n == len(NAMES) and got["fad"].value > 0
    for it in res.items:
        assert {v.metric for v in it.values} == set(P.METRICS) - {"fad", "kad", "ac"}
        for v in it.values:
            assert v.value is not None and v.item_id == it.id and v.backend_id
    assert got["rms"].ci.low <= got["rms"].value <= got["rms"].ci.high
    assert set(res.backends) == {"hash-text-stub", "fixed-projection-stub", "logmel-stats", "rms-envelope",
                                 "spectral-numpy"}
    kad_cfg = next(v for v in res.set_values if v.metric == "kad").config
    assert kad_cfg["bandwidth_from"] == "eval" and kad_cfg["scale"] == "100" and kad_cfg["median"] == "lower"


def test_evaluation_is_deterministic_and_serialisable(examples):
    items = _items(examples)
    a = P.evaluate(items, metrics=["clap", "kl", "kad", "rms"], n_boot=50)
    b = P.evaluate(items, metrics=["clap", "kl", "kad", "rms"], n_boot=50)
    assert a.model_dump_json() == b.model_dump_json()
    back = P.EvalResult.model_validate_json(a.model_dump_json())
    assert back.summary("kad").value == a.summary("kad").value
    assert [s.metric for s in a.summaries] == ["clap", "kl", "kad", "rms"]


def test_generated_equal_to_reference_gives_the_ideal_values(examples):
    res = P.evaluate(_items(examples, gen_note=0), n_boot=10)
    assert res.summary("rms").value == pytest.approx(1.0)
    assert res.summary("logmel_db").value == 0.0 and res.summary("mss").value == 0.0
    assert res.summary("mfcc").value == 0.0
    # KL(p||p) with audiocraft's eps is -sum p log(1 + eps/p), about -eps per class: -5.3e-4 for 527 classes
    assert -527e-6 <= res.summary("kl").value < 0.0
    assert res.summary("clap_audio_sim").value == pytest.approx(1.0)
    assert res.summary("fad").value == pytest.approx(0.0, abs=1e-6)
    assert res.summary("kad").value < 0.0  # unbiased MMD of identical sets: the cross term keeps its diagonal


def test_silent_invalid_empty_and_reference_less_items_never_raise(examples):
    caption, a, b = examples["bell"]
    nan = b.copy()
    nan[100] = np.nan
    items = _items(examples) + [
        P.EvalItem(id="silent", caption=caption, generated=np.zeros_like(a), reference=a, sample_rate=SR),
        P.EvalItem(id="nan", caption=caption, generated=nan, reference=a, sample_rate=SR),
        P.EvalItem(id="empty", caption=caption, generated=np.zeros(0), reference=a, sample_rate=SR),
        P.EvalItem(id="noref", caption=caption, generated=b, reference=None, sample_rate=SR),
        P.EvalItem(id="badref", caption=caption, generated=b, reference=np.full(10, np.inf), sample_rate=SR),
    ]
    res = P.evaluate(items, n_boot=20)
    assert res.counts == {"generated_silent": 1, "generated_invalid": 1, "generated_empty": 1, "no_reference": 1,
                          "reference_invalid": 1}
    by_id = {it.id: it for it in res.items}
    assert by_id["silent"].get("rms") == 0.0 and by_id["silent"].get("clap") is not None
    for bad in ("nan", "empty"):
        vals = by_id[bad].values
        assert vals and all(v.value is None and "NaN/inf" in v.reason for v in vals)
    noref = {v.metric: v for v in by_id["noref"].values}
    assert noref["clap"].value is not None and noref["kl"].value is None and noref["kl"].reason == "no reference audio"
    assert {v.metric: v for v in by_id["badref"].values}["rms"].reason.startswith("reference audio")
    assert res.summary("fad").n == len(NAMES) + 1  # the valid pairs plus the silent one
    assert res.summary("kl").n_missing == 4
    assert res.summary("clap").n == len(NAMES) + 3


def test_set_metrics_need_two_pairs_and_backend_errors_become_reasons(examples):
    caption, a, b = examples["bell"]
    one = [P.EvalItem(id="x", caption=caption, generated=b, reference=a, sample_rate=SR)]
    res = P.evaluate(one, metrics=["fad", "kad"])
    assert all(v.value is None and "at least 2 items" in v.reason for v in res.set_values)

    class Flaky(Classifier):
        info = BackendInfo(id="flaky", family="test", kind="stub", version="0", sample_rate=SR)

        def logits(self, audio, sample_rate):
            if audio.size > 20000 and abs(float(audio[20000])) > 0 and float(np.max(np.abs(audio))) > 1.1:
                raise RuntimeError("model exploded")
            return np.array([0.0, 1.0, float(np.max(np.abs(audio)))])

    items = _items(examples)
    loud = [it.id for it in items if np.max(np.abs(it.generated)) > 1.1 or np.max(np.abs(it.reference)) > 1.1]
    assert loud  # the brass and e-piano examples peak above full scale
    res = P.evaluate(items, P.BackendSet(classifier=Flaky()), metrics=["kl"])
    for it in res.items:
        v = it.values[0]
        assert (v.value is None and v.reason == "RuntimeError: model exploded") == (it.id in loud)


def test_clap_synth_sends_the_synthesized_prefix(examples):
    seen: list[str] = []

    class Recording(HashText):
        def embed_text(self, texts):
            seen.extend(texts)
            return super().embed_text(texts)

    items = _items(examples)
    res = P.evaluate(items, P.BackendSet(text_audio=Recording()), metrics=["clap", "clap_synth"])
    captions = [it.caption for it in items]
    assert seen == captions + ["Synthesized " + c for c in captions]
    assert res.summary("clap").value != res.summary("clap_synth").value
    assert {v.config["prefix"] for it in res.items for v in it.values} == {"", "Synthesized "}


def test_a_published_backend_fills_the_bare_column(examples):
    class FakePublished(P.AudioEmbedder):
        """Stands in for PaSST here only to exercise the column logic; its numbers are logmel-stats'."""

        info = BackendInfo(id="passt-base-10s", family="passt", kind="published", version="t", sample_rate=32000,
                           weights_sha256="cd" * 32, config={"embedding": "all-1295", "padding": "10s"})

        def embed(self, audio, sample_rate):
            return create_backend("logmel-stats").embed(audio, sample_rate)

    items = _items(examples)
    res = P.evaluate(items, P.BackendSet(embedder=FakePublished()), metrics=["fad", "kad"])
    assert [(s.column, s.published) for s in res.summaries] == [("fad", True), ("kad", True)]
    assert res.summary("kad").weights_sha256 == "cd" * 32
    ref_rule = P.evaluate(items, P.BackendSet(embedder=FakePublished()), metrics=["kad"], kad_bandwidth_from="ref")
    assert ref_rule.summary("kad").column == "kad[passt-base-10s]"  # not kadtk's convention: own column


def test_set_bootstrap_gives_fad_and_kad_intervals(examples):
    res = P.evaluate(_items(examples), metrics=["fad", "kad"], set_boot=30)
    for s in res.summaries:
        assert s.ci is not None and s.ci.n_boot > 0 and s.ci.low <= s.ci.high


def test_bad_requests_and_items_are_explained():
    with pytest.raises(ValueError, match="at least one item"):
        P.evaluate([])
    it = P.EvalItem(id="a", caption="c", generated=np.zeros(100), reference=None, sample_rate=SR)
    with pytest.raises(ValueError, match="unique"):
        P.evaluate([it, it])
    with pytest.raises(ValueError, match="unknown metrics \\['fid'\\]; allowed: clap"):
        P.evaluate([it], metrics=["fid"])
    assert [s.metric for s in P.evaluate([it], metrics="clap", n_boot=5).summaries] == ["clap"]
    with pytest.raises(ValueError, match="level"):
        P.evaluate([it], level=95)
    with pytest.raises(ValueError, match="kad_bandwidth_from"):
        P.evaluate([it], kad_bandwidth_from="median")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="1-D"):
        P.EvalItem(id="a", caption="c", generated=np.zeros((2, 2, 2)), sample_rate=SR)
    with pytest.raises(ValidationError, match="greater than 0"):
        P.EvalItem(id="a", caption="c", generated=np.zeros(4), sample_rate=0)
    stereo = P.EvalItem(id="s", caption="c", generated=np.vstack([np.ones(50), np.zeros(50)]), sample_rate=SR)
    assert stereo.generated.shape == (50,) and np.allclose(stereo.generated, 0.5)


def test_ac_with_timbral_models_when_installed(examples):
    pytest.importorskip("timbral_models")
    pytest.importorskip("librosa")
    caption, a, b = examples["bell"]
    _, c, _ = examples["organ"]
    items = [P.EvalItem(id="same", caption=caption, generated=a, reference=a, sample_rate=SR),
             P.EvalItem(id="other", caption=caption, generated=c, reference=a, sample_rate=SR),
             P.EvalItem(id="silent", caption=caption, generated=np.zeros_like(a), reference=a, sample_rate=SR)]
    res = P.evaluate(items, P.BackendSet(timbral=create_backend("timbral-models")), metrics=["ac"], n_boot=10)
    ac = {it.id: it.values[0] for it in res.items}
    assert ac["same"].value == 0.0
    assert 0.0 < ac["other"].value < 1.0
    assert ac["silent"].value is None and "silent" in ac["silent"].reason
    s = res.summary("ac")
    assert s.published and s.column == "ac" and s.n == 2 and s.n_missing == 1


def test_ac_below_44k_is_kept_out_of_the_published_column():
    pytest.importorskip("timbral_models")
    pytest.importorskip("librosa")
    t = np.arange(8000) / 16000
    a = 0.5 * np.sin(2 * np.pi * 330 * t) * np.exp(-4 * t)
    b = 0.5 * np.sin(2 * np.pi * 330 * t + 2 * np.sin(2 * np.pi * 660 * t)) * np.exp(-4 * t)
    items = [P.EvalItem(id="low", caption="c", generated=b, reference=a, sample_rate=16000)]
    res = P.evaluate(items, P.BackendSet(timbral=create_backend("timbral-models")), metrics=["ac"], n_boot=5)
    s = res.summary("ac")
    assert s.value is not None and not s.published and s.column == "ac[timbral-models]"
    assert res.items[0].values[0].config["input_rate"] == "16000"
