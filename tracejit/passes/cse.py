"""Common-subexpression elimination (merge): structurally equal equations become one.

Two equations are equal when they have the same primitive, parameters and inputs (in any order for a
commutative primitive); equal constants (by contents, large ones included) are one Value. Rebuilding the graph
bottom-up through the Builder's hash-cons table does the merging: once the inputs of two equations are merged,
the equations themselves hash alike, so whole equal subgraphs collapse in one sweep.
"""
from __future__ import annotations

from .patterns import rewrite


NO_RULES: dict = {}


def cse(graph, strict_ieee=False, stats=None, memo=None, **_):
    """Merge structurally equal equations and equal constants (exact: never changes a result)."""
    return rewrite(graph, NO_RULES, strict_ieee, stats, memo)
