"""Backends: the offline default, the labelled stubs, the registry, the real backends' BackendUnavailable
messages, weights hashing, timbral-models through its compatibility layer, and the published-column rules."""

from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
import pytest

from patchsmith.evals.metrics import backends as B
from patchsmith.evals.metrics.backends import BackendInfo, BackendUnavailable, create_backend
from patchsmith.evals.metrics.pipeline import MetricValue, published_column

SR = 44100


def _tone(hz: float, seconds: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return 0.4 * np.sin(2 * np.pi * hz * t + 1.5 * np.sin(2 * np.pi * 2 * hz * t)) * np.exp(-3 * t)


# ------------------------------------------------------------------ offline default and stubs

def test_logmel_stats_is_deterministic_weight_free_and_defined_on_silence():
    a, b = create_backend("logmel-stats"), create_backend("logmel-stats")
    x = _tone(440)
    e1, e2 = a.embed(x, SR), b.embed(x.copy(), SR)
    assert e1.shape == (1, 512) and e1.tobytes() == e2.tobytes()
    assert not np.allclose(e1, a.embed(_tone(880), SR))
    assert np.allclose(a.embed(_tone(440, sr=32000), 32000), e1, atol=1.5)  # the rate is handled by resampling
    silent = a.embed(np.zeros(SR // 2), SR)
    assert np.all(np.isfinite(silent)) and np.allclose(silent[0, :128], -100.0)
    assert a.embed_clip(x, SR).shape == (512,)
    assert a.info.kind == "offline" and a.info.weights_sha256 is None and a.info.tag() == "logmel-stats@noweights"


def test_stubs_are_labelled_and_deterministic():
    t1, t2 = create_backend("hash-text-stub"), create_backend("hash-text-stub")
    assert t1.info.kind == "stub" and t1.info.family == "stub"
    e = t1.embed_text(["Bright metallic bell", "bell metallic BRIGHT", ""])
    assert e.shape == (3, 512)
    assert np.allclose(np.linalg.norm(e[:2], axis=1), 1.0) and np.allclose(e[0], e[1])  # bag of words
    assert np.all(e[2] == 0.0)
    assert e.tobytes() == t2.embed_text(["Bright metallic bell", "bell metallic BRIGHT", ""]).tobytes()
    a = t1.embed_audio([_tone(440), _tone(660)], SR)
    assert a.shape == (2, 512) and np.allclose(np.linalg.norm(a, axis=1), 1.0)
    with pytest.raises(TypeError, match="list of strings"):
        t1.embed_text("one string")
    c = create_backend("fixed-projection-stub")
    assert c.info.kind == "stub" and len(c.labels) == 527
    lg = c.logits(_tone(440), SR)
    again = create_backend("fixed-projection-stub").logits(_tone(440), SR)
    assert lg.shape == (527,) and lg.tobytes() == again.tobytes()


# ------------------------------------------------------------------ registry

def test_registry_names_unknown_names_and_custom_backends():
    names = B.backend_names()
    for n in ("logmel-stats", "hash-text-stub", "fixed-projection-stub", "laion-clap", "passt", "passt-classifier",
              "timbral-models"):
        assert n in names
    assert B.backend_names("text_audio") == sorted(["hash-text-stub", "laion-clap"])
    with pytest.raises(ValueError, match="unknown backend 'vggish'; allowed: .*logmel-stats"):
        create_backend("vggish")

    class Ones(B.AudioEmbedder):
        info = BackendInfo(id="ones", family="test", kind="stub", version="0", sample_rate=SR)

        def embed(self, audio, sample_rate):
            return np.ones((1, 3))

    B.register_backend("test-ones", "embedder", Ones)
    try:
        assert create_backend("test-ones").embed_clip(np.zeros(4), SR).tolist() == [1.0, 1.0, 1.0]
        B.register_backend("test-wrong-role", "classifier", Ones)
        with pytest.raises(TypeError, match="should be a Classifier"):
            create_backend("test-wrong-role")
        with pytest.raises(ValueError, match="unknown role"):
            B.register_backend("x", "decoder", Ones)  # type: ignore[arg-type]
    finally:
        B._REGISTRY.pop("test-ones", None)
        B._REGISTRY.pop("test-wrong-role", None)


def test_weights_sha256_is_right_and_cached_by_path_mtime_size(tmp_path):
    f = tmp_path / "w.pt"
    f.write_bytes(b"abc" * 1000)
    assert B.weights_sha256(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert any(k[0] == str(f.resolve()) for k in B._HASH_CACHE)
    f.write_bytes(b"changed")
    os.utime(f, ns=(1, 1))
    assert B.weights_sha256(f) == hashlib.sha256(b"changed").hexdigest()


def test_as_mono_and_resample():
    st = np.vstack([np.ones(100), np.zeros(100)])
    assert np.allclose(B.as_mono(st), 0.5) and np.allclose(B.as_mono(st.T), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        B.as_mono(np.array([0.0, np.nan]))
    y = B.resample(_tone(440, sr=48000), 48000, 32000)
    assert y.size == int(0.5 * 32000)
    assert np.isnan(B.as_mono(np.array([0.0, np.nan]), finite=False)[1])  # EvalItem flags such clips itself


def test_clip_memo_computes_each_clip_once_and_hands_out_copies():
    memo, calls = B.ClipMemo(2), []

    def compute(x):
        calls.append(x.copy())
        return x * 2.0

    a, b, c = _tone(440), _tone(330), _tone(220)
    first = memo.get(a, SR, compute)
    first[:] = 0.0  # a caller changing its result does not change the memo's
    assert np.allclose(memo.get(a.copy(), SR, compute), 2 * a) and len(calls) == 1
    memo.get(a, SR, compute, settings=("other",))  # other settings, other entry
    memo.get(a, 16000, compute)  # another rate too
    assert len(calls) == 3
    memo.get(b, SR, compute)
    memo.get(c, SR, compute)
    memo.get(a, SR, compute)  # bounded: the oldest entries were dropped
    assert len(calls) == 6 and calls[0].dtype == np.float64
    with pytest.raises(ValueError, match="size"):
        B.ClipMemo(0)


# ------------------------------------------------------------------ real backends: clear messages when absent

def test_laion_clap_unavailable_messages(tmp_path, monkeypatch):
    with pytest.raises(BackendUnavailable, match="no CLAP checkpoint path was given.*ckpt_path"):
        create_backend("laion-clap")
    with pytest.raises(BackendUnavailable, match="CLAP checkpoint not found at .*missing.pt"):
        create_backend("laion-clap", ckpt_path=tmp_path / "missing.pt")
    ckpt = tmp_path / "music_audioset_epoch_15_esc_90.14.pt"
    ckpt.write_bytes(b"not really weights")
    hf = tmp_path / "hf"
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(BackendUnavailable, match="has sha256 [0-9a-f]{64}, not the expected 00"):
        create_backend("laion-clap", ckpt_path=ckpt, hf_home=hf, expected_sha256="00" * 32)
    with pytest.raises(BackendUnavailable, match="lacks bert-base-uncased, roberta-base, facebook/bart-base"):
        create_backend("laion-clap", ckpt_path=ckpt, hf_home=hf)
    for repo in ("bert-base-uncased", "roberta-base", "facebook--bart-base"):
        (hf / "hub" / f"models--{repo}").mkdir(parents=True)
    monkeypatch.setitem(sys.modules, "laion_clap", None)  # as if it were not installed
    for var in ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(BackendUnavailable, match="'laion_clap' cannot be imported.*pip install laion-clap"):
        create_backend("laion-clap", ckpt_path=ckpt, hf_home=hf)


def test_passt_unavailable_messages(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(BackendUnavailable, match=r"PaSST checkpoint not found at .*hub/checkpoints/passt-s-f128"):
        create_backend("passt")
    w = tmp_path / "passt.pt"
    w.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "hear21passt", None)
    monkeypatch.setitem(sys.modules, "hear21passt.base", None)
    with pytest.raises(BackendUnavailable, match="'hear21passt.base' cannot be imported.*pip install hear21passt"):
        create_backend("passt-classifier", weights_path=w)
    with pytest.raises(BackendUnavailable, match="not the expected"):
        create_backend("passt", weights_path=w, expected_sha256="ff" * 32)
    with pytest.raises(ValueError, match="mode must be"):
        create_backend("passt", weights_path=w, mode="logits")


def test_timbral_unavailable_message_when_the_package_is_missing(monkeypatch):
    from patchsmith.evals.metrics import timbral_backend

    timbral_backend.load_timbral_models.cache_clear()
    monkeypatch.setitem(sys.modules, "timbral_models", None)
    try:
        with pytest.raises(BackendUnavailable, match="--no-deps timbral-models==0.4.0"):
            create_backend("timbral-models")
    finally:
        timbral_backend.load_timbral_models.cache_clear()


# ------------------------------------------------------------------ timbral-models for real (when installed)

def test_timbral_models_runs_through_the_compat_layer():
    pytest.importorskip("timbral_models")
    pytest.importorskip("librosa")
    import librosa

    original = librosa.onset.onset_detect
    tb = create_backend("timbral-models")
    assert tb.info.kind == "published" and tb.info.version == "0.4.0"
    x = _tone(440, seconds=0.5)
    a = tb.attributes(x, SR)
    assert set(a) == {"hardness", "depth", "brightness", "roughness", "warmth", "sharpness", "boominess"}
    assert all(np.isfinite(v) for v in a.values())
    assert a == tb.attributes(x.copy(), SR)  # cached by content
    assert a == create_backend("timbral-models").attributes(x, SR)  # and deterministic
    assert tb.attributes(0.1 * x, SR)["brightness"] == pytest.approx(a["brightness"], abs=1.0)  # -24 LUFS normalised
    assert tb.attributes(_tone(2000, seconds=0.5), SR)["brightness"] > a["brightness"]
    with pytest.raises(B.SilentAudio):
        tb.attributes(np.zeros(SR // 2), SR)
    # the layer replaced names inside timbral_models only
    import timbral_models.timbral_util as tu

    assert librosa.onset.onset_detect is original and tu.librosa is not librosa and tu.np is not np


# ------------------------------------------------------------------ published-column rules

def _info(id_: str, kind: str = "published", sha: str | None = "ab" * 32, **config: str) -> BackendInfo:
    return BackendInfo(id=id_, family=id_.split("-")[0], kind=kind, version="1", sample_rate=32000,
                       weights_sha256=sha, config=config)


def test_published_column_rules():
    clap = _info("laion-clap-music")
    passt = _info("passt-base-10s", embedding="all-1295", padding="10s")
    assert published_column("clap", clap) and published_column("clap_synth", clap)
    assert not published_column("clap", _info("laion-clap-630k-audioset"))  # another checkpoint
    assert not published_column("clap", _info("laion-clap-music", sha=None))  # no weights hash
    assert not published_column("clap_audio_sim", clap)  # our extra metric has no published column
    assert published_column("kl", passt) and published_column("fad", passt)
    assert published_column("kad", passt, {"bandwidth_from": "eval", "scale": "100"})
    assert not published_column("kad", passt, {"bandwidth_from": "ref", "scale": "100"})
    assert not published_column("kad", passt, {"bandwidth_from": "eval", "scale": "1000"})
    assert not published_column("fad", _info("passt-base-10s", embedding="embed-768", padding="10s"))
    assert not published_column("fad", _info("passt-base-10s", embedding="all-1295", padding="none"))
    for stub in ("logmel-stats", "hash-text-stub", "fixed-projection-stub"):
        for metric in ("clap", "kl", "fad", "kad", "ac"):
            assert not published_column(metric, create_backend(stub).info)
    assert not published_column("kl", _info("passt-base-10s", kind="stub"))  # the id alone is not enough
    assert published_column("ac", _info("timbral-models", sha=None))
    assert not published_column("ac", _info("timbral-models", sha=None), {"input_rate": "16000"})
    assert not published_column("ac", clap)
    v = MetricValue(metric="kad", scope="set", value=0.5, backend_id="passt-base-10s", backend_kind="published",
                    weights_sha256="ab" * 32, config={"embedding": "all-1295", "padding": "10s",
                                                      "bandwidth_from": "eval", "scale": "100"})
    assert v.published and v.column == "kad" and published_column("kad", v)
    with pytest.raises(ValueError, match="unknown metric 'fid'"):
        published_column("fid", clap)


# ------------------------------------------------------------------ real backends' own code, against stand-in packages
# laion_clap and hear21passt cannot be installed here (they would change torch) and their weights cannot be
# fetched, so these stand-ins implement just the documented calls the backends make, to exercise our side:
# where the checkpoint is looked for, offline settings, padding/cropping, and how outputs are sliced.

_FAKE_PASST = '''
import torch
calls = {}

class _Model:
    def to(self, device):
        return self
    def eval(self):
        return self
    def get_scene_embeddings(self, audio):
        calls.setdefault("shapes", []).append(tuple(audio.shape))
        n = audio.shape[0]
        energy = (audio.double() ** 2).mean(dim=1, keepdim=True)
        logits = torch.arange(527, dtype=torch.float64).repeat(n, 1) * energy
        feats = torch.full((n, 768), 7.0, dtype=torch.float64)
        return torch.cat([logits, feats], dim=1).float()

def get_basic_model(mode="all"):
    import os
    hub = torch.hub.get_dir()
    calls["mode"] = mode
    calls["found"] = os.path.isfile(os.path.join(hub, "checkpoints", "passt-s-f128-p16-s10-ap.476-swa.pt"))
    return _Model()
'''

_FAKE_CLAP = '''
import os
import numpy as np
calls = {"audio": [], "text": []}

class CLAP_Module:
    def __init__(self, enable_fusion=False, device=None, amodel="HTSAT-tiny", tmodel="roberta"):
        calls["init"] = dict(enable_fusion=enable_fusion, amodel=amodel, offline=os.environ.get("HF_HUB_OFFLINE"))
    def load_ckpt(self, ckpt=None):
        calls["ckpt"] = ckpt
    def eval(self):
        return self
    def get_text_embedding(self, x, tokenizer=None, use_tensor=False):
        if len(x) == 1:
            raise ValueError("not enough values to unpack (expected 2, got 1)")  # LAION-AI/CLAP#85
        calls["text"].append(list(x))
        out = np.zeros((len(x), 512), dtype=np.float32)
        out[:, 0] = 1.0
        return out
    def get_audio_embedding_from_data(self, x, use_tensor=False):
        calls["audio"].append(x.shape)
        out = np.zeros((x.shape[0], 512), dtype=np.float32)
        out[:, 0] = 0.6
        out[:, 1] = 0.8
        return out
'''


def _install(tmp_path, monkeypatch, package: str, module: str, source: str):
    root = tmp_path / "fakes"
    pkg = root / package
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / f"{module}.py").write_text(source)  # module "__init__" puts the source in the package itself
    monkeypatch.syspath_prepend(str(root))
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        monkeypatch.delitem(sys.modules, name)


def test_passt_backend_finds_any_checkpoint_file_and_pads_to_10_s(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import torch

    _install(tmp_path, monkeypatch, "hear21passt", "base", _FAKE_PASST)
    weights = tmp_path / "my-passt.pt"
    weights.write_bytes(b"pretend weights")
    hub_before = torch.hub.get_dir()
    p = create_backend("passt", weights_path=weights)
    import hear21passt.base as fake

    assert fake.calls["found"] and fake.calls["mode"] == "all"  # the package's loader saw the file
    assert torch.hub.get_dir() == hub_before  # and the hub folder was restored
    assert p.info.weights_sha256 == hashlib.sha256(b"pretend weights").hexdigest()
    assert p.info.config["embedding"] == "all-1295" and p.info.config["padding"] == "10s"
    e = p.embed(_tone(440, seconds=0.5), SR)
    assert e.shape == (1, 1295) and fake.calls["shapes"][-1] == (1, 320000)  # 10 s at 32 kHz
    passes = len(fake.calls["shapes"])
    lg = p.logits(_tone(440, seconds=0.5), SR)
    assert lg.shape == (527,) and np.allclose(lg, e[0, :527])
    assert len(fake.calls["shapes"]) == passes  # KL's logits reuse the embedding's forward pass of that clip
    p.logits(_tone(330, seconds=0.5), SR)
    assert len(fake.calls["shapes"]) == passes + 1  # another clip is another pass
    short = create_backend("passt", weights_path=weights, mode="embed_only", pad="none")
    assert short.embed(_tone(440, seconds=0.5), SR).shape == (1, 768)
    assert fake.calls["shapes"][-1] == (1, 16000)
    assert short.info.config["embedding"] == "embed-768" and short.info.config["padding"] == "none"


def test_laion_clap_backend_offline_settings_single_text_and_crop(tmp_path, monkeypatch):
    _install(tmp_path, monkeypatch, "laion_clap", "__init__", _FAKE_CLAP)
    for var in ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    hf = tmp_path / "hf"
    for repo in ("bert-base-uncased", "roberta-base", "facebook--bart-base"):
        (hf / "hub" / f"models--{repo}").mkdir(parents=True)
    ckpt = tmp_path / "music_audioset_epoch_15_esc_90.14.pt"
    ckpt.write_bytes(b"clap")
    clap = create_backend("laion-clap", ckpt_path=ckpt, hf_home=hf)
    import laion_clap as fake

    assert fake.calls["init"] == {"enable_fusion": False, "amodel": "HTSAT-base", "offline": "1"}
    assert fake.calls["ckpt"] == str(ckpt)
    assert "HF_HUB_OFFLINE" not in os.environ and "HF_HOME" not in os.environ  # restored after loading
    assert clap.info.id == "laion-clap-music" and clap.info.kind == "published"
    assert published_column("clap", clap.info)
    t = clap.embed_text(["one caption"])  # a batch of one works despite the package bug
    assert t.shape == (1, 512) and fake.calls["text"][-1] == ["one caption", ""]
    a = clap.embed_audio([_tone(440, seconds=12.0, sr=16000), _tone(440, seconds=1.0, sr=16000)], 16000)
    assert a.shape == (2, 512) and fake.calls["audio"] == [(1, 480000), (1, 48000)]  # 48 kHz, cropped to 10 s
    other = tmp_path / "630k-audioset-best.pt"
    other.write_bytes(b"x")
    tiny = create_backend("laion-clap", ckpt_path=other, hf_home=hf)
    assert tiny.info.id == "laion-clap-630k-audioset" and fake.calls["init"]["amodel"] == "HTSAT-tiny"
    assert not published_column("clap", tiny.info)
