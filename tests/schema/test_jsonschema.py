"""The JSON Schema export: generated from the table, OpenAI strict-mode rules, agreement with validate()."""

from __future__ import annotations

import copy
import json
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from patchsmith.schema.jsonschema import DRAFT_2020_12, NAME_PATTERN, patch_json_schema
from patchsmith.schema.params import ALL_PARAMS, CORE_KEYS, NAME_MAX_LEN, TOP_LEVEL_KEYS
from patchsmith.schema.validate import validate

from .patch_factories import LFO, core_patch, full_patch, random_patch

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ecma_pattern(validator, pattern, instance, schema):
    """`pattern` with ECMA-262 semantics for a final `$` (end of input; Python's `$` also matches before a final newline)."""
    if not validator.is_type(instance, "string"):
        return
    regex = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith(r"\$") else pattern
    if not re.search(regex, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})
DEFAULT = EcmaValidator(patch_json_schema())
STRICT = EcmaValidator(patch_json_schema(strict=True))


def strict_form(d: dict) -> dict:
    """The same patch with every optional key present (null = absent), as an OpenAI strict tool call sends it."""
    out = copy.deepcopy(d)
    for k in TOP_LEVEL_KEYS:
        if k not in CORE_KEYS:
            out.setdefault(k, None)
    if isinstance(out.get("lfo"), dict):
        for k in LFO:
            out["lfo"].setdefault(k, None)
    return out


FULL = full_patch()


def _walk(schema, depth=0):
    """Every sub-schema with its nesting depth (objects and arrays count as levels)."""
    yield schema, depth
    for v in schema.get("properties", {}).values():
        yield from _walk(v, depth + 1)
    if "items" in schema:
        yield from _walk(schema["items"], depth + 1)
    for v in schema.get("anyOf", []):
        yield from _walk(v, depth)


# --- structure -------------------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
def test_schema_is_a_valid_draft_2020_12_schema(strict):
    Draft202012Validator.check_schema(patch_json_schema(strict=strict))
    json.dumps(patch_json_schema(strict=strict))


def test_default_schema_shape():
    s = patch_json_schema()
    assert s["$schema"] == DRAFT_2020_12
    assert s["type"] == "object" and s["additionalProperties"] is False
    assert s["required"] == list(CORE_KEYS)
    assert list(s["properties"]) == list(TOP_LEVEL_KEYS)
    name = s["properties"]["name"]["anyOf"][0]
    assert name["maxLength"] == NAME_MAX_LEN and name["pattern"] == NAME_PATTERN
    assert s["properties"]["pms"]["default"] == 0
    assert s["properties"]["lfo"]["default"]["speed"] == 35
    assert s["properties"]["kls_left_curve"]["default"] == ["-lin"] * 6


def test_every_object_is_closed():
    for strict in (False, True):
        for sub, _ in _walk(patch_json_schema(strict=strict)):
            if sub.get("type") == "object":
                assert sub["additionalProperties"] is False
                if strict:
                    assert sorted(sub["required"]) == sorted(sub["properties"])


STRICT_KEYWORDS = {"type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
                   "minimum", "maximum", "enum", "anyOf", "description", "title", "pattern"}


def test_strict_schema_uses_only_supported_keywords():
    s = patch_json_schema(strict=True)
    assert "anyOf" not in s and s["type"] == "object"  # the root must be a plain object
    assert s["required"] == list(TOP_LEVEL_KEYS)
    depths = []
    for sub, depth in _walk(s):
        assert set(sub) <= STRICT_KEYWORDS, set(sub) - STRICT_KEYWORDS
        depths.append(depth)
    assert max(depths) <= 10
    text = json.dumps(s)
    for banned in ("allOf", '"not"', "prefixItems", '"default"', "$schema", "maxLength", "minLength", "const"):
        assert banned not in text


def test_ranges_and_descriptions_come_from_the_table():
    for strict in (False, True):
        s = patch_json_schema(strict=strict)
        for p in ALL_PARAMS:
            node = s["properties"]["lfo"]["anyOf"][0]["properties"][p.key] if p.parent else s["properties"][p.key]
            assert node["description"].startswith(p.description)
            if "anyOf" in node:
                assert node["anyOf"][1] == {"type": "null"} and not p.core
                node = node["anyOf"][0]
            for n in p.shape:
                assert node["type"] == "array" and node["minItems"] == n == node["maxItems"]
                node = node["items"]
            node = {k: v for k, v in node.items() if k != "description"}
            if p.kind in ("integer", "binary"):
                assert node == {"type": "integer", "minimum": p.low, "maximum": p.high}
            elif p.kind == "categorical":
                assert node == {"type": "string", "enum": list(p.choices)}
            else:
                assert node == {"type": "boolean"}


def test_strict_descriptions_state_the_defaults():
    s = patch_json_schema(strict=True)
    assert "neutral default 0" in s["properties"]["pms"]["description"]
    assert '"speed":35' in s["properties"]["lfo"]["description"]


# --- agreement on examples -------------------------------------------------------------------------


def _good_examples():
    yield core_patch()
    yield FULL
    yield core_patch() | {"name": None, "lfo": None, "pms": None}
    yield core_patch() | {"lfo": {"speed": 3}}
    yield core_patch() | {"name": ""}
    d = core_patch(1)
    d["modmatrix"][0][5] = 1  # not a DX7 algorithm: still valid
    yield d


def _bad_examples():
    def with_(pointer_path, value, base=None):
        d = copy.deepcopy(base or core_patch())
        node = d
        for t in pointer_path[:-1]:
            node = node[t]
        node[pointer_path[-1]] = value
        return d

    yield with_(["eg_rate", 2, 4], 120)
    yield with_(["feedback"], True)
    yield with_(["feedback"], 3.5)
    yield with_(["feedback"], float("nan"))
    yield with_(["feedback"], "3")
    yield with_(["feedback"], None)
    yield with_(["ol"], [99] * 5)
    yield with_(["ol"], [99] * 7)
    yield with_(["ol", 0], None)
    yield with_(["modmatrix"], [0] * 36)
    yield with_(["detune", 1], -8)
    yield with_(["name"], "x" * 11)
    yield with_(["name"], "café")
    yield with_(["name"], "ok\n")
    yield with_(["lfo"], {"wave": "noise"})
    yield with_(["lfo"], {"speed": 1, "rate": 2})
    yield with_(["lfo"], [])
    yield with_(["osc_sync"], 1)
    yield with_(["kls_left_curve", 0], "lin", FULL)
    yield with_(["bogus"], 1)
    yield {k: v for k, v in core_patch().items() if k != "ol"}
    yield []
    yield None
    yield "patch"


@pytest.mark.parametrize("example", list(_good_examples()))
def test_good_examples_agree(example):
    assert validate(example).valid
    assert DEFAULT.is_valid(example)
    assert STRICT.is_valid(strict_form(example))


@pytest.mark.parametrize("example", list(_bad_examples()))
def test_bad_examples_agree(example):
    assert not validate(example).valid
    assert not DEFAULT.is_valid(example)
    assert not STRICT.is_valid(strict_form(example) if isinstance(example, dict) else example)


def test_strict_schema_needs_every_key():
    assert not STRICT.is_valid(core_patch())
    d = strict_form(FULL)
    assert STRICT.is_valid(d)
    del d["lfo"]["wave"]
    assert not STRICT.is_valid(d)


def test_known_divergence_integer_valued_float():
    # JSON Schema's "integer" is mathematical: 3.0 is an integer there. validate() is stricter, and
    # lenient mode accepts it but records the coercion.
    d = core_patch() | {"feedback": 3.0}
    assert DEFAULT.is_valid(d) and STRICT.is_valid(strict_form(d))
    assert not validate(d).valid
    r = validate(d, lenient=True)
    assert r.valid and len(r.coercions) == 1


def test_name_pattern_is_anchored_at_the_end_of_input():
    assert re.fullmatch(NAME_PATTERN[1:-1], "E.PIANO 1")
    assert not EcmaValidator({"type": "string", "pattern": NAME_PATTERN}).is_valid("ok\n")


# --- agreement, property-based ---------------------------------------------------------------------


VALID_PATCHES = st.builds(random_patch, st.randoms(use_true_random=True), st.just(True))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**18, max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda c: st.lists(c, max_size=7) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=20,
)


def _has_integral_float(x) -> bool:
    if isinstance(x, float):
        return x.is_integer()
    if isinstance(x, list):
        return any(_has_integral_float(v) for v in x)
    if isinstance(x, dict):
        return any(_has_integral_float(v) for v in x.values())
    return False


def _paths(d, prefix=()):
    """Every path (as a tuple) to a value inside d: containers and leaves."""
    if isinstance(d, dict):
        items = d.items()
    elif isinstance(d, list):
        items = enumerate(d)
    else:
        return
    for k, v in items:
        yield prefix + (k,)
        yield from _paths(v, prefix + (k,))


def _strict_valid_expected(d) -> bool:
    """What the strict schema should say: validate() is happy and every key is spelled out."""
    if not validate(d).valid:
        return False
    if not all(k in d for k in TOP_LEVEL_KEYS):
        return False
    return d["lfo"] is None or all(k in d["lfo"] for k in LFO)


@FAST
@given(VALID_PATCHES)
def test_valid_patches_validate_against_both_schemas(d):
    assert validate(d).valid
    assert DEFAULT.is_valid(d)
    assert STRICT.is_valid(strict_form(d))


@FAST
@given(VALID_PATCHES, st.data())
def test_one_replaced_value_agrees(d, data):
    path = data.draw(st.sampled_from(list(_paths(d))), label="path")
    value = data.draw(JSON_VALUES, label="value")
    assume(not _has_integral_float(value))
    mutated = copy.deepcopy(d)
    node = mutated
    for t in path[:-1]:
        node = node[t]
    node[path[-1]] = value
    ok = validate(mutated).valid
    assert DEFAULT.is_valid(mutated) == ok, (path, value)
    sf = strict_form(mutated)
    assert STRICT.is_valid(sf) == _strict_valid_expected(sf), (path, value)


@FAST
@given(st.dictionaries(st.sampled_from(TOP_LEVEL_KEYS) | st.text(max_size=4), JSON_VALUES, max_size=16) | JSON_VALUES)
def test_arbitrary_json_agrees(x):
    assume(not _has_integral_float(x))
    assert DEFAULT.is_valid(x) == validate(x).valid
    if isinstance(x, dict):
        assert STRICT.is_valid(x) == _strict_valid_expected(x)
    else:
        assert not STRICT.is_valid(x)
