"""The source research's patch dicts: OP6-first arrays, the algorithm 4/6 repair, the CSV rows."""

from __future__ import annotations

import json
import random

import pytest
from ..conftest import CAPTIONS, YAMAHA, need
from hypothesis import given, settings
from hypothesis import strategies as st

from patchsmith.schema.algorithms import ALGORITHMS, algorithm_of
from patchsmith.schema.patch import Patch
from patchsmith.schema.source_research import (
    CaptionRow,
    SourceResearchError,
    export_source_dict,
    first_captions,
    import_source_dict,
    parse_caption_csv,
    read_caption_csv,
    read_source_csv,
    repair_name,
)

# The "Triangle" row of DX7_YAMAHA_train.csv (GreyMatter E! Card 7, voice 0), as stored there.
TRIANGLE = """{
    'name': 'Triangle ',
    'modmatrix': [
		[0, 0, 0, 0, 0, 0],
		[0, 0, 1, 0, 0, 0],
		[0, 0, 0, 0, 0, 0],
		[0, 0, 0, 0, 0, 1],
		[0, 0, 0, 0, 0, 1],
		[0, 0, 0, 0, 0, 1]
    ],
    'outmatrix': [1, 1, 0, 1, 1, 0],
    'feedback': 5,
    'fixed_freq': [1, 1, 1, 1, 1, 1],
    'coarse': [1, 3, 3, 3, 3, 3],
    'fine': [54, 43, 60, 55, 92, 42],
    'detune': [0, 0, 0, 0, 0, 0],
    'transpose': 12,
    'ol': [99, 76, 99, 87, 99, 99],
    'eg_rate': [
		[99, 99, 99, 99, 99, 99],
		[99, 99, 99, 99, 99, 99],
		[25, 35, 35, 22, 27, 35],
		[17, 65, 65, 46, 64, 65]
    ],
    'eg_level': [
		[99, 99, 99, 99, 99, 99],
		[66, 90, 96, 97, 99, 99],
		[0, 0, 0, 0, 0, 0],
		[0, 0, 0, 0, 0, 0]
    ],
    'sensitivity': [0, 0, 2, 0, 1, 1],
    'has_fixed_freq': True,
}"""


def _source_dict(algorithm: int, rng: random.Random) -> dict:
    """A dict the way the source research writes algorithm ``algorithm`` (single diagonal feedback)."""
    alg = ALGORITHMS[algorithm - 1]
    m = [list(r) for r in alg.modmatrix]
    source, target = alg.feedback_edge
    m[target][source] = 0
    m[{4: 3, 6: 4}.get(algorithm, source)][{4: 3, 6: 4}.get(algorithm, source)] = 1

    def six(lo, hi):
        return [rng.randint(lo, hi) for _ in range(6)]

    return {
        "name": "SRC",
        "modmatrix": m,
        "outmatrix": list(alg.outmatrix),
        "feedback": rng.randint(0, 7),
        "fixed_freq": six(0, 1),
        "coarse": six(0, 31),
        "fine": six(0, 99),
        "detune": six(-7, 7),
        "transpose": rng.randint(-24, 24),
        "ol": six(0, 99),
        "eg_rate": [six(0, 99) for _ in range(4)],
        "eg_level": [six(0, 99) for _ in range(4)],
        "sensitivity": six(0, 7),
        "has_fixed_freqs": False,
    }


def test_python_literal_is_reversed_to_op1_first():
    patch = import_source_dict(TRIANGLE)
    assert patch.name == "Triangle "
    assert patch.ol == [99, 99, 87, 99, 76, 99]  # the source's list is OP6-first
    assert patch.coarse == [3, 3, 3, 3, 3, 1]
    assert patch.fine == [42, 92, 55, 60, 43, 54]
    assert patch.sensitivity == [1, 1, 0, 2, 0, 0]
    assert patch.eg_rate[3] == [65, 64, 46, 65, 65, 17]
    assert patch.eg_level[1] == [99, 99, 97, 96, 90, 66]
    assert patch.modmatrix[1][2] == 1 and patch.outmatrix == [1, 1, 0, 1, 1, 0]  # matrices stay as they are
    assert patch.transpose == 12 and patch.feedback == 5


def test_json_text_and_dict_give_the_same_patch():
    import ast

    as_dict = ast.literal_eval(TRIANGLE)
    assert import_source_dict(json.dumps(as_dict)) == import_source_dict(as_dict) == import_source_dict(TRIANGLE)


@pytest.mark.parametrize("algorithm", range(1, 33))
def test_every_algorithm_imports_as_that_dx7_algorithm(algorithm):
    patch = import_source_dict(_source_dict(algorithm, random.Random(algorithm)))
    assert algorithm_of(patch.modmatrix, patch.outmatrix) == algorithm


def test_algorithm_4_and_6_feedback_repair():
    alg4 = import_source_dict(_source_dict(4, random.Random(0)))
    assert alg4.modmatrix[3][3] == 0 and alg4.modmatrix[5][3] == 1  # OP4 -> OP6
    alg6 = import_source_dict(_source_dict(6, random.Random(0)))
    assert alg6.modmatrix[4][4] == 0 and alg6.modmatrix[5][4] == 1  # OP5 -> OP6
    # A diagonal on OP4 with a matrix other than algorithm 3's is left alone.
    other = _source_dict(1, random.Random(0))
    other["modmatrix"] = [[0] * 6 for _ in range(6)]
    other["modmatrix"][3][3] = 1
    assert import_source_dict(other).modmatrix[3][3] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("ol"), "missing key(s): ol"),
        (lambda d: d.update(extra=1), "unknown key(s): 'extra'"),
        (lambda d: d.update(ol=[1, 2, 3]), "/ol: expected a list of 6, got 3 entries"),
        (lambda d: d["ol"].__setitem__(0, 120), "/ol/0 (OP6): 120 is outside 0..99"),
        (lambda d: d["eg_rate"][2].__setitem__(5, -1), "/eg_rate/2/5 (stage 3, OP1): -1 is outside 0..99"),
        (lambda d: d["coarse"].__setitem__(1, 2.0), "/coarse/1 (OP5): expected integer 0..31, got 2.0"),
        (lambda d: d["fixed_freq"].__setitem__(1, True), "/fixed_freq/1 (OP5): expected integer 0..1, got True"),
        (lambda d: d["modmatrix"][0].__setitem__(5, 2), "/modmatrix/0/5 (OP1 <- OP6): 2 is outside 0..1"),
        (lambda d: d.update(feedback="7"), "/feedback: expected integer 0..7, got '7'"),
        (lambda d: d.update(name="x" * 11), "/name: expected up to 10 printable"),
        (lambda d: d.update(name="a\x1bb"), "/name: expected up to 10 printable"),
    ],
)
def test_bad_dicts_are_refused_with_the_source_path(change, message):
    data = _source_dict(5, random.Random(1))
    change(data)
    with pytest.raises(SourceResearchError, match="invalid source-research patch") as err:
        import_source_dict(data)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "neither a Python literal nor JSON"),
        ("__import__('os').system('echo no')", "neither a Python literal nor JSON"),
        ("{'a': ", "neither a Python literal nor JSON"),
        ("[1, 2, 3]", "must be a dict, got list"),
        ("[" * 100_001, "characters long"),
        ("[" * 5000 + "]" * 5000, "neither a Python literal nor JSON"),
        ('{"feedback": NaN}', "missing key(s)"),
    ],
)
def test_garbage_text_is_refused_not_crashed(text, message):
    with pytest.raises(SourceResearchError) as err:
        import_source_dict(text)
    assert message in str(err.value)


def test_lenient_name_repairs_unprintable_characters():
    data = _source_dict(2, random.Random(2))
    data["name"] = "Roe\x1bBear "
    assert import_source_dict(data, lenient_name=True).name == "Roe Bear "
    assert repair_name("Bello 3\x7f ") == "Bello 3  "


@st.composite
def any_patches(draw) -> Patch:
    """Patches with arbitrary topologies (diagonal feedback only) or any DX7 algorithm."""
    ints = lambda lo, hi, n: [draw(st.integers(lo, hi)) for _ in range(n)]  # noqa: E731
    if draw(st.booleans()):
        alg = ALGORITHMS[draw(st.integers(0, 31))]
        modmatrix, outmatrix = [list(r) for r in alg.modmatrix], list(alg.outmatrix)
    else:
        # Forward edges (source higher than target) and self-feedback: what the source format can hold.
        modmatrix = [[draw(st.integers(0, 1)) if j >= i else 0 for j in range(6)] for i in range(6)]
        outmatrix = ints(0, 1, 6)
        off_diagonal = [[0 if i == j else modmatrix[i][j] for j in range(6)] for i in range(6)]
        diagonal = [i for i in range(6) if modmatrix[i][i]]
        for op, reference in ((3, ALGORITHMS[2]), (4, ALGORITHMS[4])):
            ref = [[0 if i == j else reference.modmatrix[i][j] for j in range(6)] for i in range(6)]
            # This one pattern is read back as algorithm 4 / 6 by design (the source's stand-in).
            if diagonal == [op] and off_diagonal == ref:
                modmatrix[op][op] = 0
    return Patch(
        modmatrix=modmatrix,
        outmatrix=outmatrix,
        feedback=draw(st.integers(0, 7)),
        fixed_freq=ints(0, 1, 6),
        coarse=ints(0, 31, 6),
        fine=ints(0, 99, 6),
        detune=ints(-7, 7, 6),
        transpose=draw(st.integers(-24, 24)),
        ol=ints(0, 99, 6),
        eg_rate=[ints(0, 99, 6) for _ in range(4)],
        eg_level=[ints(0, 99, 6) for _ in range(4)],
        sensitivity=ints(0, 7, 6),
        name=draw(st.none() | st.text(alphabet=[chr(c) for c in range(32, 127)], max_size=10)),
    )


@settings(max_examples=300, deadline=None)
@given(any_patches())
def test_export_then_import_is_identity(patch):
    exported = export_source_dict(patch)
    assert exported["ol"] == patch.ol[::-1]
    assert [row for row in exported["eg_rate"]] == [row[::-1] for row in patch.eg_rate]
    assert exported["has_fixed_freq"] == any(patch.fixed_freq)
    back = import_source_dict(exported)
    assert back.core() == patch.core() and back.name == patch.name
    assert import_source_dict(json.dumps(exported)) == back
    assert import_source_dict(repr(exported)) == back


def test_export_writes_algorithm_4_and_6_loops_as_diagonals():
    for number, op in ((4, 3), (6, 4)):
        alg = ALGORITHMS[number - 1]
        patch = import_source_dict(_source_dict(number, random.Random(number)))
        exported = export_source_dict(patch)
        assert exported["modmatrix"][op][op] == 1 and exported["modmatrix"][5][op] == 0
        assert algorithm_of(import_source_dict(exported).modmatrix, alg.outmatrix) == number


def test_export_refuses_upward_edges_the_format_cannot_hold():
    patch = import_source_dict(_source_dict(1, random.Random(3)))
    modmatrix = [list(r) for r in patch.modmatrix]
    modmatrix[4][1] = 1  # OP2 -> OP5: an upward (feedback) edge that is not a DX7 loop
    with pytest.raises(SourceResearchError, match=r"OP2 -> OP5"):
        export_source_dict(patch.model_copy(update={"modmatrix": modmatrix}))


# --- the 958 captioned rows against the Yamaha banks (third-party data) ------------------------------


def _bank_file(file_path: str) -> str:
    """The file under data/dx7/yamaha/ that a CSV ``file_path`` points at (shared/README.md)."""
    folder, name = file_path.split("/")[-2:]
    return f"greymatter-{name}" if folder.startswith("GreyMatter") else name.lower()


def test_every_csv_row_equals_its_bank_voice():
    from patchsmith.synth.sysex_reader import read_bank_file

    rows = read_source_csv(need(CAPTIONS) / "DX7_YAMAHA_train.csv")
    need(YAMAHA)
    assert len(rows) == 958
    assert [r.id for r in rows if r.error] == []
    assert len({r.id for r in rows}) == 958
    banks: dict[str, list[Patch]] = {}
    algorithms = set()
    for row in rows:
        bank = _bank_file(row.file_path)
        if bank not in banks:
            banks[bank] = read_bank_file(YAMAHA / bank).voices
        voice = banks[bank][row.patch_number]
        expected = voice.core()
        # The source's loader stored fixed-frequency operators with coarse mod 4 and detune 0.
        for op in range(6):
            if expected["fixed_freq"][op]:
                expected["coarse"][op] %= 4
                expected["detune"][op] = 0
        assert row.patch.core() == expected, (row.id, row.file_path, row.patch_number)
        assert row.patch.name == voice.name[:9]  # the source kept 9 of the 10 name characters
        algorithms.add(algorithm_of(row.patch.modmatrix, row.patch.outmatrix))
    assert algorithms == set(range(1, 33))  # 4 and 6 included, thanks to the repair
    assert [r.notes for r in rows if r.notes] == [
        ("name 'Roe\\x1bBear ' has unprintable characters, imported as 'Roe Bear '",),
        ("name 'Bello 3\\x7f ' has unprintable characters, imported as 'Bello 3  '",),
    ]


def test_read_source_csv_reports_bad_rows(tmp_path):
    path = tmp_path / "DX7_TEST.csv"
    good = export_source_dict(import_source_dict(_source_dict(7, random.Random(7))))
    path.write_text(
        "id,name,file_path,patch_number,patch_data\n"
        f'1,ok,bank.syx,3,"{json.dumps(good).replace(chr(34), chr(34) * 2)}"\n'
        '2,bad,bank.syx,x,"{\'a\': 1}"\n',
        encoding="utf-8",
    )
    ok, bad = read_source_csv(path)
    assert ok.patch is not None and ok.error is None and ok.patch_number == 3 and ok.id == "1"
    assert bad.patch is None and "missing key(s)" in bad.error and bad.patch_number is None
    (tmp_path / "nocols.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(SourceResearchError, match="missing column"):
        read_source_csv(tmp_path / "nocols.csv")


# --- the caption CSV (DX7_*_captions.csv: ",id,wav_path,name,caption") ---------------------------------------


def test_read_caption_csv_keeps_every_row_in_file_order(tmp_path):
    path = tmp_path / "DX7_TEST_captions.csv"
    path.write_text(
        ",id,wav_path,name,caption\n"
        "0,7,a.wav,  Brass 1 , Bright brass \n"
        "1,3,b.wav,Piano,\n"  # an empty caption: kept as "", not dropped
        "2,7,c.wav,Brass 1,Second take\n"  # a repeated id keeps its place
        '3,3,d.wav,Piano,"Soft, warm piano"\n'
        "4,,e.wav,,orphan\n",
        encoding="utf-8",
    )
    rows = read_caption_csv(path)
    assert rows == [
        CaptionRow(id="7", caption="Bright brass", name="Brass 1"),
        CaptionRow(id="3", caption="", name="Piano"),
        CaptionRow(id="7", caption="Second take", name="Brass 1"),
        CaptionRow(id="3", caption="Soft, warm piano", name="Piano"),
        CaptionRow(id="", caption="orphan", name=""),
    ]
    # The first caption of an id wins; an empty caption or id never does.
    first = first_captions(rows)
    assert list(first) == ["7", "3"]
    assert first["7"].caption == "Bright brass" and first["3"].caption == "Soft, warm piano"


def test_parse_caption_csv_without_name_column():
    rows = parse_caption_csv(["id,caption\n", "1,hello\n"], "mem.csv")
    assert rows == [CaptionRow(id="1", caption="hello", name="")]


@pytest.mark.parametrize(("text", "expected"), [
    ("id,text\n1,hello\n", "mem.csv: missing column(s) caption (found id, text)"),
    ("", "mem.csv: missing column(s) id, caption (found none)"),
])
def test_parse_caption_csv_names_missing_columns(text, expected):
    with pytest.raises(SourceResearchError) as err:
        parse_caption_csv(text.splitlines(keepends=True), "mem.csv")
    assert str(err.value).startswith(expected) and "allowed" in str(err.value)


def test_read_caption_csv_refuses_bad_utf8(tmp_path):
    path = tmp_path / "bad_captions.csv"
    path.write_bytes(b"id,caption\n1,caf\xe9 \xff\n")
    with pytest.raises(SourceResearchError, match=r"bad_captions\.csv: not a readable CSV file \(.*utf-8"):
        read_caption_csv(path)


def test_parse_caption_csv_refuses_broken_csv():
    # A cell over the csv module's field size limit (131072 characters) is a csv.Error.
    with pytest.raises(SourceResearchError, match="mem.csv: not a readable CSV file .*field"):
        parse_caption_csv(["id,caption\n", f'1,"{"x" * 200_000}"\n'], "mem.csv")
