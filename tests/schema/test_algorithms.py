"""The 32 DX7 algorithms: topology <-> number, nearest algorithm, feedback edges."""

from __future__ import annotations

import itertools

import pytest

from patchsmith.schema.algorithms import ALGORITHMS, algorithm, algorithm_of, nearest_algorithm, topology_distance


def _mutable(alg):
    return [list(r) for r in alg.modmatrix], list(alg.outmatrix)


def _feedback_edges(modmatrix):
    """(source, target) of every edge whose source is not higher than its target (0-based)."""
    return [(s, t) for t in range(6) for s in range(6) if modmatrix[t][s] and s <= t]


@pytest.mark.parametrize("number", range(1, 33))
def test_round_trip_through_algorithm_of(number):
    alg = algorithm(number)
    assert alg.number == number
    assert algorithm_of(alg.modmatrix, alg.outmatrix) == number
    mm, om = _mutable(alg)  # lists as well as tuples
    assert algorithm_of(mm, om) == number
    assert nearest_algorithm(mm, om) == (number, 0)


def test_the_32_topologies_are_distinct():
    keys = {(a.modmatrix, a.outmatrix) for a in ALGORITHMS}
    assert len(keys) == 32


@pytest.mark.parametrize("number", range(1, 33))
def test_exactly_one_feedback_edge(number):
    alg = algorithm(number)
    edges = _feedback_edges(alg.modmatrix)
    assert edges == [alg.feedback_edge]


@pytest.mark.parametrize("number", range(1, 33))
def test_every_algorithm_has_a_carrier_and_binary_matrices(number):
    alg = algorithm(number)
    assert alg.carriers
    assert all(v in (0, 1) for row in alg.modmatrix for v in row)
    assert len(alg.modmatrix) == 6 and all(len(r) == 6 for r in alg.modmatrix)


def test_algorithm_4_feedback_is_op4_to_op6():
    alg = algorithm(4)
    assert alg.modmatrix[5][3] == 1  # row = target OP6, column = source OP4
    assert alg.feedback_edge == (3, 5)
    assert alg.modmatrix[3][3] == 0 and alg.modmatrix[5][5] == 0


def test_algorithm_6_feedback_is_op5_to_op6():
    alg = algorithm(6)
    assert alg.modmatrix[5][4] == 1
    assert alg.feedback_edge == (4, 5)


def test_algorithm_1_is_the_classic_two_stacks():
    alg = algorithm(1)
    assert alg.carriers == (0, 2)
    assert alg.modmatrix[0][1] and alg.modmatrix[2][3] and alg.modmatrix[3][4] and alg.modmatrix[4][5]
    assert alg.feedback_edge == (5, 5)


@pytest.mark.parametrize("bad", [0, 33, -1])
def test_algorithm_number_out_of_range(bad):
    with pytest.raises(ValueError):
        algorithm(bad)


def _all_flips():
    cells = [("m", t, s) for t in range(6) for s in range(6)] + [("o", i, None) for i in range(6)]
    return cells


def _flip(mm, om, cell):
    kind, a, b = cell
    if kind == "m":
        mm[a][b] ^= 1
    else:
        om[a] ^= 1


@pytest.mark.parametrize("number", range(1, 33))
def test_nearest_of_a_one_entry_perturbation(number):
    for cell in _all_flips():
        mm, om = _mutable(algorithm(number))
        _flip(mm, om, cell)
        found, distance = nearest_algorithm(mm, om)
        brute = min((topology_distance(mm, om, a), a.number) for a in ALGORITHMS)
        assert (distance, found) == brute
        if algorithm_of(mm, om) is None:
            assert distance == 1
            assert topology_distance(mm, om, algorithm(number)) == 1
        else:
            assert distance == 0 and found == algorithm_of(mm, om)


def test_nearest_of_a_two_entry_perturbation_is_within_two():
    mm0, om0 = _mutable(algorithm(4))
    for c1, c2 in itertools.combinations(_all_flips()[:20], 2):
        mm, om = _mutable(algorithm(4))
        _flip(mm, om, c1)
        _flip(mm, om, c2)
        _, distance = nearest_algorithm(mm, om)
        assert distance <= 2
    assert (mm0, om0) == _mutable(algorithm(4))  # the table itself is immutable


def test_nearest_ties_go_to_the_lowest_number():
    # Algorithms 1 and 2 differ only in the feedback edge; with neither, both are at distance 1.
    mm, om = _mutable(algorithm(1))
    mm[5][5] = 0
    assert topology_distance(mm, om, algorithm(2)) == 1
    assert nearest_algorithm(mm, om) == (1, 1)


def test_empty_topology_is_not_an_algorithm():
    mm = [[0] * 6 for _ in range(6)]
    om = [0] * 6
    assert algorithm_of(mm, om) is None
    number, distance = nearest_algorithm(mm, om)
    assert 1 <= number <= 32 and distance >= 2
