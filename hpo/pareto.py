"""Pareto sets: the trials no other trial beats on every objective at once.

A point *dominates* another when it is at least as good on every objective and strictly
better on one ("min" objectives: smaller is better; "max": larger). The Pareto set of a
study is its completed trials that no other completed trial dominates; equal points do
not dominate each other, so both stay. Pure Python, no database: storage and tests share
it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Mode = Literal["min", "max"]


def dominates(a: Sequence[float], b: Sequence[float], modes: Sequence[Mode]) -> bool:
    """Whether point `a` dominates point `b` under `modes` (one per objective)."""
    strictly = False
    for x, y, mode in zip(a, b, modes, strict=True):
        if mode == "max":
            x, y = -x, -y
        if x > y:
            return False
        strictly = strictly or x < y
    return strictly


def pareto_indices(points: Sequence[Sequence[float]], modes: Sequence[Mode]) -> list[int]:
    """Indices of the non-dominated `points`, in ascending order.

    Points are visited best-first lexicographically (signs flipped for "max"), so a point
    can only be dominated by one visited before it, and only a kept point needs checking
    (a dominated dominator's dominator dominates too): O(n log n + n·front).

        >>> pareto_indices([(1, 5), (2, 2), (3, 3), (5, 1)], ["min", "min"])
        [0, 1, 3]
    """
    signs = [-1.0 if m == "max" else 1.0 for m in modes]
    order = sorted(
        range(len(points)), key=lambda i: [s * v for s, v in zip(signs, points[i], strict=True)]
    )
    front: list[int] = []
    for i in order:
        if not any(dominates(points[j], points[i], modes) for j in front):
            front.append(i)
    return sorted(front)
