"""Validation: every problem with its pointer, found and allowed; never an exception; lenient coercions."""

from __future__ import annotations

import copy
import itertools
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchsmith.schema.params import ALL_PARAMS, CORE_KEYS, NAME_MAX_LEN, TOP_LEVEL_KEYS, param_by_path
from patchsmith.schema.patch import Patch
from patchsmith.schema.validate import (
    Coercion,
    PatchValidationError,
    Problem,
    ValidationReport,
    pairs_to_dict,
    parse_patch,
    validate,
    validate_json,
)

from .patch_factories import LFO, TOP, core_patch, full_patch, random_patch

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def set_at(doc, pointer: str, value):
    """Set the value at a JSON pointer (the parent must exist)."""
    *parents, last = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    node = doc
    for t in parents:
        node = node[int(t)] if isinstance(node, list) else node[t]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def resolve(doc, pointer: str):
    """The value at a JSON pointer (RFC 6901); KeyError/IndexError if it does not resolve."""
    node = doc
    if pointer == "":
        return node
    for t in pointer.split("/")[1:]:
        t = t.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            if not t.isdigit():
                raise KeyError(t)
            node = node[int(t)]
        elif isinstance(node, dict):
            node = node[t]
        else:
            raise KeyError(t)
    return node


def pointers(report: ValidationReport) -> list[str]:
    return [p.pointer for p in report.problems]


# --- valid input ---------------------------------------------------------------------------------


def test_core_patch_is_valid_and_reports_its_algorithm():
    r = validate(core_patch(5))
    assert r.valid and r.problems == [] and r.coercions == []
    assert isinstance(r.patch, Patch)
    assert (r.algorithm, r.nearest_algorithm, r.nearest_distance) == (5, 5, 0)
    assert r.summary() == "valid (DX7 algorithm 5)"


def test_full_patch_is_valid_and_kept_exactly():
    d = full_patch()
    r = validate(d)
    assert r.valid, r.summary()
    assert r.patch.to_dict() == d
    assert r.algorithm == 4


def test_null_for_optional_keys_means_absent():
    d = core_patch()
    d |= {k: None for k in TOP_LEVEL_KEYS if k not in CORE_KEYS}
    r = validate(d)
    assert r.valid, r.summary()
    assert r.patch == parse_patch(core_patch())
    d["lfo"] = {k: None for k in LFO}
    assert validate(d).patch == parse_patch(core_patch())


def test_partial_lfo_takes_defaults_for_the_rest():
    d = core_patch() | {"lfo": {"speed": 10}}
    p = parse_patch(d)
    assert p.lfo.speed == 10 and p.lfo.wave == "triangle" and p.lfo.sync is True


def test_non_dx7_topology_is_valid_with_nearest_algorithm():
    d = core_patch(1)
    d["modmatrix"][0][5] = 1  # an extra edge OP6 -> OP1
    r = validate(d)
    assert r.valid and r.problems == []
    assert r.algorithm is None
    assert (r.nearest_algorithm, r.nearest_distance) == (1, 1)
    assert "nearest is 1" in r.summary()


def test_patch_instance_is_accepted():
    p = parse_patch(full_patch())
    assert validate(p).patch == p


def test_numpy_integers_are_integers_but_numpy_bools_are_not():
    np = pytest.importorskip("numpy")
    d = core_patch()
    d["ol"] = list(np.array(d["ol"], dtype=np.int64))
    d["feedback"] = np.int32(3)
    r = validate(d)
    assert r.valid, r.summary()
    assert type(r.patch.ol[0]) is int
    d["feedback"] = np.bool_(True)
    assert pointers(validate(d)) == ["/feedback"]
    d["feedback"] = np.float64(3.0)
    assert pointers(validate(d)) == ["/feedback"]


# --- each kind of problem ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pointer, value, found",
    [
        ("/eg_rate/2/4", 120, "120"),
        ("/eg_rate/2/4", -1, "-1"),
        ("/feedback", 8, "8"),
        ("/feedback", True, "true"),
        ("/outmatrix/0", False, "false"),
        ("/ol/3", 3.0, "3.0"),
        ("/ol/3", 3.5, "3.5"),
        ("/ol/3", float("nan"), "NaN"),
        ("/ol/3", float("inf"), "Infinity"),
        ("/ol/3", float("-inf"), "-Infinity"),
        ("/ol/3", "42", '"42"'),
        ("/ol/3", None, "null"),
        ("/ol/3", [1], "[1]"),
        ("/ol/3", {"a": 1}, '{"a":1}'),
        ("/detune/0", 8, "8"),
        ("/detune/0", -8, "-8"),
        ("/transpose", 25, "25"),
        ("/coarse/5", 32, "32"),
        ("/modmatrix/0/0", 2, "2"),
        ("/feedback", None, "null"),
    ],
)
def test_single_bad_leaf(pointer, value, found):
    d = core_patch()
    set_at(d, pointer, value)
    r = validate(d)
    assert not r.valid and r.patch is None
    assert len(r.problems) == 1
    (p,) = r.problems
    assert p.pointer == pointer
    assert p.found == found
    param = param_by_path("/" + pointer.split("/")[1])
    assert p.allowed == param.allowed  # the text comes from the metadata table
    assert p.message


def test_summary_line_format():
    d = core_patch()
    d["eg_rate"][2][4] = 120
    r = validate(d)
    assert r.summary() == "/eg_rate/2/4: found 120, allowed integer 0..99"
    d["transpose"] = 30
    assert r.summary() in validate(d).summary()
    assert len(validate(d).summary().splitlines()) == 2


def test_every_problem_is_reported_not_just_the_first():
    d = full_patch()
    d["ol"] = [100, True, 3.5, "x", None, -1]
    d["lfo"]["wave"] = "noise"
    d["kls_left_curve"][2] = "lin"
    d["name"] = "much too long a name"
    del d["fine"]
    d["extra"] = 1
    r = validate(d)
    assert pointers(r) == ["/fine", "/ol/0", "/ol/1", "/ol/2", "/ol/3", "/ol/4", "/ol/5", "/name", "/lfo/wave",
                           "/kls_left_curve/2", "/extra"]
    assert r.problems[0].found == "missing"


@pytest.mark.parametrize("p", [p for p in ALL_PARAMS if p.kind in ("integer", "binary")], ids=lambda p: p.path)
def test_ranges_come_from_the_table(p):
    d = full_patch()
    index = "/0" * len(p.shape)
    for bad in (p.low - 1, p.high + 1):
        set_at(d, p.path + index, bad)
        r = validate(d)
        assert [(x.pointer, x.allowed) for x in r.problems] == [(p.path + index, p.allowed)]
    for good in (p.low, p.high):
        set_at(d, p.path + index, good)
        assert validate(d).valid


@pytest.mark.parametrize("key", CORE_KEYS)
def test_missing_core_key(key):
    d = core_patch()
    del d[key]
    r = validate(d)
    assert [(p.pointer, p.found) for p in r.problems] == [("/" + key, "missing")]
    assert r.problems[0].allowed.startswith(("array of", "integer"))


def test_unknown_keys_top_level_and_in_lfo():
    d = core_patch() | {"algorithm": 5, "lfo": {"speed": 3, "rate": 1}}
    r = validate(d)
    assert pointers(r) == ["/lfo/rate", "/algorithm"]
    assert r.problems[1].allowed.startswith("no such key; allowed keys: modmatrix, outmatrix")
    assert r.problems[0].allowed == "no such key; allowed keys: speed, delay, pmd, amd, sync, wave"
    assert r.problems[1].found == "5"


def test_pointer_escaping_of_odd_keys():
    d = core_patch() | {"a/b~c": 1, "": 2}
    r = validate(d)
    assert pointers(r) == ["/a~1b~0c", "/"]
    for p in r.problems:
        assert resolve(d, p.pointer) in (1, 2)


def test_non_string_keys_are_problems():
    d = core_patch()
    d[3] = "x"
    d[None] = 1
    r = validate(d)
    assert pointers(r) == ["/3", "/null"]
    assert "keys must be strings" in r.problems[0].message


@pytest.mark.parametrize(
    "pointer, value, found_start",
    [
        ("/ol", [99] * 5, "[99,99,99,99,99] (5 items)"),
        ("/ol", [99] * 7, "[99,99,99,99,99,99,99] (7 items)"),
        ("/ol", 99, "99"),
        ("/ol", "99,99,99,99,99,99", '"99,99'),
        ("/eg_rate", [[99] * 6] * 3, "[[99,99"),
        ("/eg_rate/1", 50, "50"),
        ("/eg_rate/1", [50] * 5, "[50,50,50,50,50] (5 items)"),
        ("/modmatrix", [0] * 36, "[0,0,0"),
        ("/outmatrix", {}, "{}"),
    ],
)
def test_wrong_shapes(pointer, value, found_start):
    d = core_patch()
    set_at(d, pointer, value)
    r = validate(d)
    assert r.problems, r.summary()
    assert r.problems[0].pointer == pointer
    assert r.problems[0].found.startswith(found_start.split(" (")[0][:20])
    if "items)" in found_start:
        assert r.problems[0].found.endswith(found_start[found_start.index("("):])
    assert r.problems[0].allowed.startswith("array of")


def test_flat_modmatrix_reports_the_shape_and_each_bad_row():
    d = core_patch()
    d["modmatrix"] = [0] * 36
    r = validate(d)
    assert pointers(r) == ["/modmatrix"] + [f"/modmatrix/{i}" for i in range(6)]
    assert r.problems[0].allowed == "array of 6 arrays of 6 integers 0 or 1"
    assert r.problems[1].allowed == "array of 6 integers 0 or 1"
    assert r.algorithm is None and r.nearest_algorithm is None


@pytest.mark.parametrize("value", [[], 3, None, "patch", True, 1.5, [core_patch()]])
def test_top_level_must_be_an_object(value):
    r = validate(value)
    assert [p.pointer for p in r.problems] == [""]
    assert r.problems[0].allowed.startswith("an object with keys modmatrix")
    assert r.summary().startswith("(root): found ")


@pytest.mark.parametrize("name", ["", "A", "E.PIANO 1", " " * 10, "~!@#$%^&*(", None])
def test_good_names(name):
    r = validate(core_patch() | {"name": name})
    assert r.valid, r.summary()
    assert r.patch.name == name


@pytest.mark.parametrize("name", ["x" * (NAME_MAX_LEN + 1), "café", "tab\there", "line\n", "\x7f", 3, True, ["a"]])
def test_bad_names(name):
    r = validate(core_patch() | {"name": name})
    assert pointers(r) == ["/name"]
    assert "10 printable ASCII" in r.problems[0].allowed


def test_lfo_must_be_an_object_and_its_fields_typed():
    r = validate(core_patch() | {"lfo": [1, 2]})
    assert pointers(r) == ["/lfo"]
    r = validate(core_patch() | {"lfo": {"sync": 1, "wave": "Sine", "speed": 100}})
    assert pointers(r) == ["/lfo/speed", "/lfo/sync", "/lfo/wave"]
    assert r.problems[1].allowed == "true or false"
    assert r.problems[2].allowed.startswith('one of "triangle"')


def test_found_is_truncated():
    d = core_patch()
    d["feedback"] = "x" * 1000
    (p,) = validate(d).problems
    assert len(p.found) <= 60 and p.found.endswith("...")
    d["feedback"] = 10**5000  # str() of this would raise ValueError
    (p,) = validate(d).problems
    assert p.found == "<5001-digit integer>"
    d["feedback"] = -(10**100)
    (p,) = validate(d).problems
    assert len(p.found) <= 60


# --- lenient mode ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, used",
    [(3.0, 3), (-0.0, 0), ("42", 42), (" 7 ", 7), ("+5", 5), ("5.0", 5), ("07", 7)],
)
def test_lenient_reads_and_reports(value, used):
    d = core_patch()
    d["ol"][3] = value
    strict = validate(d)
    assert pointers(strict) == ["/ol/3"]
    r = validate(d, lenient=True)
    assert r.valid, r.summary()
    assert r.patch.ol[3] == used
    assert [(c.pointer, c.used) for c in r.coercions] == [("/ol/3", used)]
    assert isinstance(r.coercions[0], Coercion) and r.coercions[0].reason
    assert "/ol/3: read" in r.summary()


@pytest.mark.parametrize("value", ["120", 120.0, True, "1e3", "0x10", "3.5", "", "nan", float("nan"), "1_0", "9" * 40])
def test_lenient_still_rejects(value):
    d = core_patch()
    d["ol"][3] = value
    r = validate(d, lenient=True)
    assert pointers(r) == ["/ol/3"], r.summary()
    assert r.coercions == []


def test_lenient_booleans():
    d = core_patch() | {"osc_sync": " False ", "lfo": {"sync": "true"}}
    assert pointers(validate(d)) == ["/lfo/sync", "/osc_sync"]
    r = validate(d, lenient=True)
    assert r.valid
    assert r.patch.osc_sync is False and r.patch.lfo.sync is True
    assert len(r.coercions) == 2
    assert pointers(validate(core_patch() | {"osc_sync": 1}, lenient=True)) == ["/osc_sync"]
    assert pointers(validate(core_patch() | {"osc_sync": "yes"}, lenient=True)) == ["/osc_sync"]


def test_lenient_is_not_a_fixer():
    d = core_patch()
    d["ol"] = [99] * 7
    d["lfo"] = {"wave": "SINE"}
    d["name"] = "x" * 11
    assert pointers(validate(d, lenient=True)) == ["/ol", "/name", "/lfo/wave"]


# --- JSON text -----------------------------------------------------------------------------------


def test_validate_json_valid_text():
    r = validate_json(json.dumps(full_patch()))
    assert r.valid and r.patch.to_dict() == full_patch()


@pytest.mark.parametrize(
    "text",
    ["", "{", '{"ol": [1,2,}', "not json", "[" * 100_000, '{"feedback": ' + "9" * 5000 + "}", "\x00", '"\\ud800"'],
)
def test_validate_json_bad_text_is_a_problem_at_root(text):
    r = validate_json(text)
    assert not r.valid
    assert r.problems[0].pointer == ""


def test_validate_json_parse_error_says_where():
    (p,) = validate_json('{"ol": [1,2,}').problems
    assert "line 1 column" in p.found and "line 1 column" in p.message


def test_validate_json_non_string_and_bytes():
    assert pointers(validate_json(None)) == [""]
    assert validate_json(json.dumps(core_patch()).encode()).valid
    assert pointers(validate_json(b"\xff\xfe")) == [""]


def test_duplicate_keys_are_a_problem_in_strict_mode_and_a_coercion_in_lenient():
    text = json.dumps(core_patch())[:-1] + ', "feedback": 2, "lfo": {"speed": 1, "speed": 2}}'
    r = validate_json(text)
    assert pointers(r) == ["/feedback", "/lfo/speed"]
    assert all(p.found == "duplicate key" for p in r.problems)
    r = validate_json(text, lenient=True)
    assert r.valid and r.patch.feedback == 2 and r.patch.lfo.speed == 2
    assert [c.pointer for c in r.coercions] == ["/feedback", "/lfo/speed"]


def test_pairs_to_dict_lets_validate_see_duplicate_keys_in_json_parsed_elsewhere():
    text = json.dumps(core_patch())[:-1] + ', "feedback": 2, "feedback": 3}'
    data = json.loads(text, object_pairs_hook=pairs_to_dict)
    assert data["feedback"] == 3 and data.duplicate_keys == ("feedback",)
    assert pointers(validate(data)) == ["/feedback"]
    assert validate(json.loads(text)).valid  # plain json.loads keeps the last value: nothing to report


# --- parse_patch ---------------------------------------------------------------------------------


def test_parse_patch_raises_with_problems():
    d = core_patch()
    d["eg_rate"][2][4] = 120
    d["feedback"] = True
    with pytest.raises(PatchValidationError) as info:
        parse_patch(d)
    err = info.value
    assert isinstance(err, ValueError)
    assert [p.pointer for p in err.problems] == ["/feedback", "/eg_rate/2/4"]
    assert str(err) == "/feedback: found true, allowed integer 0..7\n/eg_rate/2/4: found 120, allowed integer 0..99"
    assert all(isinstance(p, Problem) for p in err.problems)


def test_parse_patch_lenient():
    d = core_patch()
    d["feedback"] = "6"
    with pytest.raises(PatchValidationError):
        parse_patch(d)
    assert parse_patch(d, lenient=True) == parse_patch(core_patch())


def test_report_to_dict_is_json():
    d = core_patch()
    d["ol"][0] = float("nan")
    d["fine"][1] = "5"
    for lenient in (False, True):
        out = validate(d, lenient=lenient).to_dict()
        text = json.dumps(out, allow_nan=False)
        assert json.loads(text)["valid"] is False
    ok = validate(full_patch()).to_dict()
    assert ok["valid"] is True and ok["algorithm"] == 4 and ok["patch"]["name"] == "E.PIANO 1"
    assert set(ok) == {"valid", "problems", "coercions", "algorithm", "nearest_algorithm", "nearest_distance", "patch"}


# --- hostile Python objects -----------------------------------------------------------------------


class _Hostile:
    def __repr__(self):
        raise RuntimeError("no repr")

    def __eq__(self, other):
        raise RuntimeError("no eq")

    __hash__ = object.__hash__


def test_hostile_objects_never_raise():
    loop: list = []
    loop.append(loop)
    deep: list = []
    node = deep
    for _ in range(100_000):
        node.append([])
        node = node[0]
    cases = [_Hostile(), loop, deep, {"ol": loop}, {"ol": deep}, {"lfo": deep}, core_patch() | {"ol": _Hostile()},
             core_patch() | {"name": _Hostile()}, {_Hostile(): 1}, object, lambda: 0, {"eg_rate": [[object()] * 6] * 4},
             core_patch() | {"ol": (1, 2, 3, 4, 5, 6)}, b"{}", bytearray(3), set(), frozenset({1}), 1j]
    for case in cases:
        for lenient in (False, True):
            r = validate(case, lenient=lenient)
            assert isinstance(r, ValidationReport)
            assert all("internal" not in p.message for p in r.problems), r.summary()
            r.summary()
            json.dumps(r.to_dict())


def test_tuples_are_read_as_arrays():
    d = core_patch()
    d["ol"] = tuple(d["ol"])
    d["modmatrix"] = tuple(tuple(r) for r in d["modmatrix"])
    assert validate(d).valid


# --- property-based: arbitrary input --------------------------------------------------------------

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**18, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
ANY_JSON = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=8), children, max_size=6),
    max_leaves=25,
)
# Objects keyed by the patch's own keys so that the walk goes below the top level.
KEY = st.sampled_from(TOP_LEVEL_KEYS + ("speed", "wave", "sync")) | st.text(max_size=6)
PATCHLIKE = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, min_size=0, max_size=7) | st.dictionaries(KEY, children, max_size=12),
    max_leaves=30,
)


def _check_report(data, r: ValidationReport) -> None:
    assert isinstance(r, ValidationReport)
    assert r.valid == (not r.problems)
    for p in r.problems:
        assert isinstance(p.pointer, str) and isinstance(p.found, str) and p.allowed and p.message
        assert "internal" not in p.message, p
        assert p.pointer == "" or p.pointer.startswith("/")
        if p.found != "missing":
            resolve(data, p.pointer)  # the pointer names a value that is in the input
        else:
            parent = p.pointer.rsplit("/", 1)[0]
            assert isinstance(resolve(data, parent), dict)
    json.dumps(r.to_dict(), allow_nan=False)
    r.summary()


@FAST
@given(ANY_JSON, st.booleans())
def test_arbitrary_json_never_raises(data, lenient):
    _check_report(data, validate(data, lenient=lenient))


@FAST
@given(PATCHLIKE, st.booleans())
def test_patchlike_json_never_raises(data, lenient):
    _check_report(data, validate(data, lenient=lenient))


@FAST
@given(st.text(max_size=200), st.booleans())
def test_arbitrary_text_never_raises(text, lenient):
    r = validate_json(text, lenient=lenient)
    assert isinstance(r, ValidationReport)
    r.summary()


# --- property-based: valid and mutated patches -----------------------------------------------------


VALID_PATCHES = st.builds(random_patch, st.randoms(use_true_random=True))


def leaf_pointers(d: dict) -> list[tuple[str, object]]:
    """(pointer, param or "name") of every leaf present in a valid patch dict."""
    out: list[tuple[str, object]] = []
    for k, v in d.items():
        if k == "name":
            out.append(("/name", "name"))
        elif k == "lfo":
            out += [(f"/lfo/{f}", LFO[f]) for f in v]
        else:
            p = TOP[k]
            for idx in itertools.product(*(range(n) for n in p.shape)):
                out.append(("/" + "/".join([k, *map(str, idx)]), p))
    return out


def bad_values(param, pointer: str) -> list:
    """Values that are wrong at this leaf, in strict mode, whatever the rest of the patch."""
    if param == "name":
        return ["x" * (NAME_MAX_LEN + 1), "é", "\t", 5, True, [], {}]
    optional_scalar = not param.core and not param.shape  # null there means "absent", which is fine
    common = [[], {}, [1], {"a": 1}] + ([] if optional_scalar else [None])
    if param.kind == "boolean":
        return common + [0, 1, "true", "false", 1.0]
    if param.kind == "categorical":
        return common + ["bogus", param.choices[0].upper(), 0, True, param.choices[0] + " "]
    return common + [param.low - 1, param.high + 1, 10**30, -(10**30), True, False, 0.5, float(param.low),
                     float("nan"), float("inf"), float("-inf"), str(param.low), "", "x"]


@FAST
@given(VALID_PATCHES, st.booleans())
def test_valid_patches_have_no_problems(d, lenient):
    r = validate(d, lenient=lenient)
    assert r.valid and r.problems == [] and r.coercions == [], r.summary()
    assert r.patch.to_dict(full=False) == Patch.model_validate(d).to_dict(full=False)
    assert r.patch == parse_patch(json.loads(json.dumps(d)))
    assert validate_json(json.dumps(d)).valid


@FAST
@given(VALID_PATCHES, st.data())
def test_single_mutated_leaf_is_reported_exactly(d, data):
    pointer, param = data.draw(st.sampled_from(leaf_pointers(d)), label="leaf")
    value = data.draw(st.sampled_from(bad_values(param, pointer)), label="bad value")
    mutated = copy.deepcopy(d)
    set_at(mutated, pointer, value)
    r = validate(mutated)
    assert pointers(r) == [pointer], (pointer, value, r.summary())
    assert r.patch is None


@FAST
@given(VALID_PATCHES, st.data())
def test_structural_mutation_is_reported_exactly(d, data):
    mutated = copy.deepcopy(d)
    kind = data.draw(st.sampled_from(["drop_core", "unknown_key", "shorter", "longer", "wrap"]))
    arrays = [k for k in mutated if k in TOP and TOP[k].shape]
    if kind == "drop_core":
        key = data.draw(st.sampled_from(CORE_KEYS))
        del mutated[key]
        expected = "/" + key
    elif kind == "unknown_key":
        key = data.draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in TOP_LEVEL_KEYS))
        mutated[key] = data.draw(ANY_JSON)
        expected = "/" + key.replace("~", "~0").replace("/", "~1")
    else:
        key = data.draw(st.sampled_from(arrays))
        if kind == "shorter":
            mutated[key] = mutated[key][:-1]
        elif kind == "longer":
            mutated[key] = mutated[key] + [mutated[key][0]]
        else:
            mutated[key] = {"value": mutated[key]}
        expected = "/" + key
    r = validate(mutated)
    assert pointers(r) == [expected], r.summary()
    _check_report(mutated, r)


@FAST
@given(VALID_PATCHES, st.data())
def test_lenient_coercion_of_one_leaf(d, data):
    ints = [(ptr, p) for ptr, p in leaf_pointers(d) if p != "name" and p.kind in ("integer", "binary")]
    pointer, _ = data.draw(st.sampled_from(ints))
    original = resolve(d, pointer)
    variant = data.draw(st.sampled_from([float(original), str(original), f" {original} "]))
    mutated = copy.deepcopy(d)
    set_at(mutated, pointer, variant)
    assert pointers(validate(mutated)) == [pointer]
    r = validate(mutated, lenient=True)
    assert r.valid and [c.pointer for c in r.coercions] == [pointer]
    assert r.patch == parse_patch(d)


def test_nan_and_infinity_from_json_text():
    text = json.dumps(core_patch()).replace('"feedback": 6', '"feedback": NaN')
    assert pointers(validate_json(text)) == ["/feedback"]
    assert pointers(validate_json(text, lenient=True)) == ["/feedback"]
    assert math.isnan(json.loads(text)["feedback"])
