"""Compact JSON: canonical order, one key per line, arrays on one line, round trips."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchsmith.schema.compact import dumps_compact, loads_patch
from patchsmith.schema.params import CORE_KEYS, TOP_LEVEL_KEYS, VOICE_KEYS
from patchsmith.schema.patch import Patch
from patchsmith.schema.validate import PatchValidationError, parse_patch

from .patch_factories import LFO, TOP, core_patch

FAST = settings(max_examples=100, deadline=None)


def _keys(text: str) -> list[str]:
    return [json.loads("{" + line.rstrip(",") + "}").popitem()[0] for line in text.splitlines()[1:-1]]


def test_layout_one_key_per_line_arrays_on_one_line():
    text = dumps_compact(core_patch())
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert len(lines) == len(CORE_KEYS) + 2
    assert lines[1] == '  "modmatrix": [[0,1,0,0,0,0],[0,0,0,0,0,0],[0,0,0,1,0,0],[0,0,0,0,0,0],[0,0,0,0,0,1],[0,0,0,0,0,1]],'
    assert lines[3] == '  "feedback": 6,'
    assert _keys(text) == list(CORE_KEYS)
    assert json.loads(text) == core_patch()


def test_core_only_patch_omits_neutral_voice_keys():
    p = parse_patch(core_patch())
    assert _keys(dumps_compact(p)) == list(CORE_KEYS)
    full = dumps_compact(p, full=True)
    assert _keys(full) == [k for k in TOP_LEVEL_KEYS if k != "name"]
    assert '  "lfo": {"speed":35,"delay":0,"pmd":0,"amd":0,"sync":true,"wave":"triangle"},' in full.splitlines()


def test_canonical_order_whatever_the_input_order():
    d = core_patch() | {"pms": 2, "name": "BRASS 1", "ams": [0, 0, 0, 0, 0, 1]}
    reordered = dict(reversed(list(d.items())))
    text = dumps_compact(reordered)
    assert _keys(text) == [*CORE_KEYS, "name", "pms", "ams"]
    assert text == dumps_compact(parse_patch(d))


def test_non_neutral_voice_keys_are_kept():
    d = core_patch() | {"lfo": {"speed": 35, "wave": "sine"}, "osc_sync": False}
    text = dumps_compact(d)
    assert _keys(text) == [*CORE_KEYS, "lfo", "osc_sync"]
    assert loads_patch(text) == parse_patch(d)


def test_dict_input_is_validated():
    d = core_patch()
    d["ol"][0] = 100
    with pytest.raises(PatchValidationError) as info:
        dumps_compact(d)
    assert [p.pointer for p in info.value.problems] == ["/ol/0"]


def test_loads_patch_is_strict():
    text = dumps_compact(core_patch()).replace('"feedback": 6', '"feedback": 6.0')
    with pytest.raises(PatchValidationError) as info:
        loads_patch(text)
    assert [p.pointer for p in info.value.problems] == ["/feedback"]
    with pytest.raises(PatchValidationError) as info:
        loads_patch("{not json")
    assert [p.pointer for p in info.value.problems] == [""]
    assert isinstance(info.value, ValueError)


def test_name_with_quotes_and_backslash():
    d = core_patch() | {"name": 'A"\\B \' ~'}
    assert loads_patch(dumps_compact(d)).name == 'A"\\B \' ~'


def test_shorter_than_pretty_json():
    d = core_patch()
    assert len(dumps_compact(d)) < len(json.dumps(d, indent=2)) / 2


# --- round trips, property-based -----------------------------------------------------------------

def _leaf(p):
    if p.kind == "boolean":
        return st.booleans()
    if p.kind == "categorical":
        return st.sampled_from(p.choices)
    return st.integers(p.low, p.high)


def _shaped(p):
    s = _leaf(p)
    for n in reversed(p.shape):
        s = st.lists(s, min_size=n, max_size=n)
    return s


# Core from a fixed example (its content is not what is tested here); voice keys drawn by hypothesis.
PATCHES = st.builds(
    lambda voice, number: Patch.model_validate(core_patch(number) | voice),
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10),
            "lfo": st.fixed_dictionaries({}, optional={k: _shaped(p) for k, p in LFO.items()}),
            **{k: _shaped(TOP[k]) for k in VOICE_KEYS if k != "lfo"},
        },
    ),
    st.integers(1, 32),
)


@FAST
@given(PATCHES, st.booleans())
def test_round_trip(patch, full):
    text = dumps_compact(patch, full=full)
    assert loads_patch(text) == patch
    assert json.loads(text) == patch.to_dict(full=full)
    assert dumps_compact(loads_patch(text), full=full) == text
    lines = text.splitlines()
    assert len(lines) == len(patch.to_dict(full=full)) + 2  # one line per top-level key
    assert _keys(text) == [k for k in TOP_LEVEL_KEYS if k in patch.to_dict(full=full)]
