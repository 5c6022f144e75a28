"""The preset search: deterministic BM25 over names and captions."""

from __future__ import annotations

from patchsmith.server.presets import PresetLibrary, words


def test_words():
    assert words("The Bells, with a glassy TINE!") == ["bell", "glassy", "tine"]


def test_search_ranks_the_described_preset_first():
    lib = PresetLibrary.load()
    assert lib.search("glassy electric piano", 3)[0].example.key == "epiano"
    assert lib.search("tubular bells, metallic", 1)[0].example.key == "bell"
    assert lib.search("zzzz qqqq", 5) == []
    first = [(m.example.key, m.score, m.caption) for m in lib.search("bright warm sound", 7)]
    assert first == [(m.example.key, m.score, m.caption) for m in lib.search("bright warm sound", 7)]
    assert all(a[1] >= b[1] for a, b in zip(first, first[1:]))


def test_best_caption_is_the_matching_one():
    m = PresetLibrary.load().search("chorused mellow piano", 1)[0]
    assert "chorused" in m.caption


def test_an_empty_library_says_why():
    lib = PresetLibrary([], note="no examples folder")
    assert lib.search("bell", 5) == [] and lib.note == "no examples folder"
