"""The 32 DX7 algorithms as (modmatrix, outmatrix, feedback edge), and topology <-> algorithm.

Convention (``patch-schema.md`` §1-2): ``modmatrix[t][s] = 1`` means OP(s+1) modulates OP(t+1);
indices are 0-based, index 0 = OP1. A feedback edge is one whose source is not higher than its
target: the diagonal, or the "upward" loops of algorithms 4 (OP4 -> OP6) and 6 (OP5 -> OP6).
"""

from __future__ import annotations

from dataclasses import dataclass

# (carriers, forward edges source->target, feedback edge source->target), DX7 operator numbers.
_TABLE: tuple[tuple[tuple[int, ...], tuple[tuple[int, int], ...], tuple[int, int]], ...] = (
    ((1, 3), ((6, 5), (5, 4), (4, 3), (2, 1)), (6, 6)),
    ((1, 3), ((6, 5), (5, 4), (4, 3), (2, 1)), (2, 2)),
    ((1, 4), ((6, 5), (5, 4), (3, 2), (2, 1)), (6, 6)),
    ((1, 4), ((6, 5), (5, 4), (3, 2), (2, 1)), (4, 6)),
    ((1, 3, 5), ((6, 5), (4, 3), (2, 1)), (6, 6)),
    ((1, 3, 5), ((6, 5), (4, 3), (2, 1)), (5, 6)),
    ((1, 3), ((6, 5), (5, 3), (4, 3), (2, 1)), (6, 6)),
    ((1, 3), ((6, 5), (5, 3), (4, 3), (2, 1)), (4, 4)),
    ((1, 3), ((6, 5), (5, 3), (4, 3), (2, 1)), (2, 2)),
    ((1, 4), ((6, 4), (5, 4), (3, 2), (2, 1)), (3, 3)),
    ((1, 4), ((6, 4), (5, 4), (3, 2), (2, 1)), (6, 6)),
    ((1, 3), ((6, 3), (5, 3), (4, 3), (2, 1)), (2, 2)),
    ((1, 3), ((6, 3), (5, 3), (4, 3), (2, 1)), (6, 6)),
    ((1, 3), ((6, 4), (5, 4), (4, 3), (2, 1)), (6, 6)),
    ((1, 3), ((6, 4), (5, 4), (4, 3), (2, 1)), (2, 2)),
    ((1,), ((6, 5), (5, 1), (4, 3), (3, 1), (2, 1)), (6, 6)),
    ((1,), ((6, 5), (5, 1), (4, 3), (3, 1), (2, 1)), (2, 2)),
    ((1,), ((6, 5), (5, 4), (4, 1), (3, 1), (2, 1)), (3, 3)),
    ((1, 4, 5), ((6, 5), (6, 4), (3, 2), (2, 1)), (6, 6)),
    ((1, 2, 4), ((6, 4), (5, 4), (3, 2), (3, 1)), (3, 3)),
    ((1, 2, 4, 5), ((6, 5), (6, 4), (3, 2), (3, 1)), (3, 3)),
    ((1, 3, 4, 5), ((6, 5), (6, 4), (6, 3), (2, 1)), (6, 6)),
    ((1, 2, 4, 5), ((6, 5), (6, 4), (3, 2)), (6, 6)),
    ((1, 2, 3, 4, 5), ((6, 5), (6, 4), (6, 3)), (6, 6)),
    ((1, 2, 3, 4, 5), ((6, 5), (6, 4)), (6, 6)),
    ((1, 2, 4), ((6, 4), (5, 4), (3, 2)), (6, 6)),
    ((1, 2, 4), ((6, 4), (5, 4), (3, 2)), (3, 3)),
    ((1, 3, 6), ((5, 4), (4, 3), (2, 1)), (5, 5)),
    ((1, 2, 3, 5), ((6, 5), (4, 3)), (6, 6)),
    ((1, 2, 3, 6), ((5, 4), (4, 3)), (5, 5)),
    ((1, 2, 3, 4, 5), ((6, 5),), (6, 6)),
    ((1, 2, 3, 4, 5, 6), (), (6, 6)),
)

Matrix = tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Algorithm:
    """One DX7 algorithm (``number`` 1..32) as matrices, OP1-first."""

    number: int
    modmatrix: Matrix
    outmatrix: tuple[int, ...]
    feedback_edge: tuple[int, int]  # (source, target), 0-based operator indices

    @property
    def carriers(self) -> tuple[int, ...]:
        """0-based indices of the carriers."""
        return tuple(i for i, c in enumerate(self.outmatrix) if c)


def _build(number: int) -> Algorithm:
    carriers, edges, (fs, ft) = _TABLE[number - 1]
    m = [[0] * 6 for _ in range(6)]
    for s, t in edges:
        m[t - 1][s - 1] = 1
    m[ft - 1][fs - 1] = 1
    out = tuple(1 if (i + 1) in carriers else 0 for i in range(6))
    return Algorithm(number, tuple(tuple(r) for r in m), out, (fs - 1, ft - 1))


ALGORITHMS: tuple[Algorithm, ...] = tuple(_build(n) for n in range(1, 33))


def algorithm(number: int) -> Algorithm:
    """The DX7 algorithm ``number`` (1..32)."""
    if not 1 <= number <= 32:
        raise ValueError(f"algorithm number must be 1..32, got {number}")
    return ALGORITHMS[number - 1]


def _key(modmatrix, outmatrix) -> tuple[Matrix, tuple[int, ...]]:
    return tuple(tuple(int(v) for v in row) for row in modmatrix), tuple(int(v) for v in outmatrix)


_BY_TOPOLOGY = {_key(a.modmatrix, a.outmatrix): a.number for a in ALGORITHMS}


def algorithm_of(modmatrix, outmatrix) -> int | None:
    """The DX7 algorithm number (1..32) of this exact topology, or None if it is not one of the 32."""
    return _BY_TOPOLOGY.get(_key(modmatrix, outmatrix))


def topology_distance(modmatrix, outmatrix, alg: Algorithm) -> int:
    """How many matrix entries (modmatrix and outmatrix) differ from ``alg``."""
    d = sum(int(modmatrix[i][j]) != alg.modmatrix[i][j] for i in range(6) for j in range(6))
    return d + sum(int(outmatrix[i]) != alg.outmatrix[i] for i in range(6))


def nearest_algorithm(modmatrix, outmatrix) -> tuple[int, int]:
    """(algorithm number, differing entries) of the nearest DX7 algorithm; ties go to the lowest number."""
    best = min(ALGORITHMS, key=lambda a: (topology_distance(modmatrix, outmatrix, a), a.number))
    return best.number, topology_distance(modmatrix, outmatrix, best)
