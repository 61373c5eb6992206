"""Run-time shape checks recorded while tracing: two lengths that tracing could not compare.

A traced program is compiled for symbolic lengths, so a check like "these two axes broadcast" is deferred to
the call: the Graph keeps a list of Constraints, the compiled driver tests them inline and, when one fails,
``interpret.check_constraints`` raises numpy's own exception for it.
"""
from __future__ import annotations

import enum
from typing import Any, NamedTuple


class ConstraintKind(str, enum.Enum):
    """What a Constraint asks of its two lengths ``a`` and ``b`` (a str, so it prints as numpy users read it)."""

    EQ = "eq"            # broadcasting: equal, or a static 1 (a symbolic 1 is not broadcast); origin: the shapes
    SAME = "same"        # exact equality, no broadcasting; origin: (error message with {a}/{b}, shapes)
    RESHAPE = "reshape"  # equal total sizes; origin: (old shape, new shape)
    INDEX = "index"      # a valid index into an axis: -b <= a < b; origin: the axis number (for the message)


class Constraint(NamedTuple):
    """Lengths ``a`` and ``b`` (ints or Dims) must satisfy ``kind`` when the program runs; ``origin`` is what the
    error message needs (see ConstraintKind). A tuple so that it hashes and prints (cache keys, dedupe)."""

    kind: ConstraintKind
    a: Any
    b: Any
    origin: Any = ()

    @classmethod
    def eq(cls, a, b, shapes) -> "Constraint":
        return cls(ConstraintKind.EQ, a, b, tuple(shapes))

    @classmethod
    def same(cls, a, b, message: str, shapes=()) -> "Constraint":
        """``message`` is formatted with ``a`` and ``b`` (the run-time lengths) when the check fails."""
        return cls(ConstraintKind.SAME, a, b, (message, tuple(shapes)))

    @classmethod
    def reshape(cls, total, new_total, old_shape, new_shape) -> "Constraint":
        return cls(ConstraintKind.RESHAPE, total, new_total, (old_shape, new_shape))

    @classmethod
    def index(cls, i, n, axis) -> "Constraint":
        return cls(ConstraintKind.INDEX, i, n, axis)

    def map_lengths(self, fn) -> "Constraint":
        """The same check with ``fn`` applied to its lengths and to its origin (substituting symbols)."""
        return Constraint(self.kind, fn(self.a), fn(self.b), fn(self.origin))


def merge_symbols(pairs, position) -> dict:
    """Symbol -> its class's representative, for the symbols that ``pairs`` say are equal (pairs naming a symbol
    missing from ``position`` are ignored); the representative is the member with the lowest ``position``."""
    parent: dict = {}

    def find(s):
        while s in parent:
            s = parent[s]
        return s
    for sa, sb in pairs:
        if sa is None or sb is None or sa not in position or sb not in position:
            continue
        ra, rb = find(sa), find(sb)
        if ra != rb:
            first, second = sorted((ra, rb), key=lambda s: position[s])
            parent[second] = first
    return {s: find(s) for s in parent}
