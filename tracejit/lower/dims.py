"""Symbolic lengths as the planner compares them, and views as strided Accesses.

Views (reshape, transpose, broadcast_to, slice) of a value in memory cost nothing: they become Accesses with
other strides over the same buffer. Whether two strides or lengths are the same is asked of ``DimCanon``,
which knows the lengths that the graph's run-time checks force equal.
"""
from __future__ import annotations

from ..ir.constraints import ConstraintKind
from ..ir.types import Dim, symbol_name
from .plan import Access, contiguous_strides


class DimCanon:
    """Symbols that run-time checks force equal are compared as one (``n1 == m`` after broadcasting)."""

    def __init__(self, constraints):
        self.parent = {}  # symbol -> a symbol it equals
        self._canonical = {}  # Dim -> its canonical form (planning and lowering ask for the same few lengths often)
        self.alias = {}   # other expression (``max(0, min(1, k1))`` of a slice) -> an expression it equals
        eqs = [(c.a, c.b) for c in constraints
               if c.kind is ConstraintKind.EQ and isinstance(c.a, Dim) and isinstance(c.b, Dim)]
        for a, b in eqs:
            sa, sb = symbol_name(a), symbol_name(b)
            if sa and sb:
                ra, rb = self.find(sa), self.find(sb)
                if ra != rb:
                    lo, hi = sorted((ra, rb))
                    self.parent[hi] = lo
        for a, b in eqs:
            ra, rb = self.dim(a), self.dim(b)
            if ra != rb:
                lo, hi = sorted((ra, rb), key=repr)
                self.alias[hi] = lo
                self._canonical.clear()  # forms computed before this alias may change
        for c in constraints:  # a length checked equal to a number (a loop body's k1 == 32) is that number
            if c.kind is ConstraintKind.EQ and isinstance(c.a, Dim) != isinstance(c.b, Dim):
                d, n = (c.a, c.b) if isinstance(c.a, Dim) else (c.b, c.a)
                if isinstance(n, int) and n != 1:
                    self.alias.setdefault(self.dim(d), n)
                    self._canonical.clear()

    def find(self, s):
        while s in self.parent:
            s = self.parent[s]
        return s

    def dim(self, d):
        if not isinstance(d, Dim) or not (self.parent or self.alias):
            return d
        hit = self._canonical.get(d)
        if hit is None:
            hit = self._canonical[d] = self._canonicalize(d)
        return hit

    def _canonicalize(self, d):
        terms = {}
        for mono, c in d.terms:
            m = tuple(sorted((self.find(a) if isinstance(a, str) else a for a in mono), key=repr))
            terms[m] = terms.get(m, 0) + c
        d = Dim.make(terms)
        while isinstance(d, Dim) and d in self.alias:
            d = self.alias[d]
        return d

    def shape(self, s):
        return tuple(self.dim(d) for d in s)

    def eq(self, a, b):
        return self.dim(a) == self.dim(b)

    def shape_eq(self, a, b):
        return len(a) == len(b) and all(self.eq(x, y) for x, y in zip(a, b))




def view_access(eqn, acc: Access, canon: DimCanon):
    """The Access of a view equation applied to ``acc``, or None when it needs a copy first."""
    p = eqn.p
    if eqn.prim == "transpose":
        perm = p["perm"]
        return Access(acc.buf, tuple(acc.shape[i] for i in perm), tuple(acc.strides[i] for i in perm), acc.offset)
    if eqn.prim == "broadcast_to":
        return broadcast_access(acc, p["shape"])
    if eqn.prim == "slice":
        off = acc.offset
        strides = []
        for st, step, s in zip(p["starts"], p["steps"], acc.strides):
            if not (isinstance(st, int) and st == 0):
                off = off + st * s if not isinstance(s, int) or s != 0 else off
            strides.append(s * step if not (isinstance(s, int) and s == 0) else 0)
        return Access(acc.buf, tuple(p["shape"]), tuple(strides), off)
    if eqn.prim == "reshape":
        new = tuple(p["shape"])
        old_nz = [(d, s) for d, s in zip(acc.shape, acc.strides) if d != 1]
        new_nz = [d for d in new if d != 1]
        if [canon.dim(d) for d, _ in old_nz] == [canon.dim(d) for d in new_nz]:
            it = iter(s for _, s in old_nz)
            return Access(acc.buf, new, tuple(0 if d == 1 else next(it) for d in new), acc.offset)
        if is_contiguous(acc, canon):
            return Access(acc.buf, new, contiguous_strides(new), acc.offset)
        return None
    raise NotImplementedError(eqn.prim)


def broadcast_access(acc: Access, shape) -> Access:
    """``acc`` read as ``shape`` (numpy broadcasting): stride 0 along the dims it is repeated over."""
    pad = len(shape) - len(acc.shape)
    strides = [0] * pad + [0 if (d == 1 and t != 1) else s for d, s, t in zip(acc.shape, acc.strides, shape[pad:])]
    return Access(acc.buf, tuple(shape), tuple(strides), acc.offset)


def is_contiguous(acc: Access, canon: DimCanon) -> bool:
    """Every non-unit dim has its C-order stride (offset aside)."""
    expect = contiguous_strides(acc.shape)
    return all(d == 1 or canon.eq(s, e) for d, s, e in zip(acc.shape, acc.strides, expect))


GATHERED = "g"  # the loop-index name a gather's source reads its gathered axis with


def gather_source_axes(x_shape, axis: int, out_axes: tuple, index_ndim: int) -> tuple:
    """The kernel axis each dim of a gather's source ``x`` is read along: None for length-1 dims, the output's
    axes before and after ``axis``, and ``GATHERED`` (the index's value) for ``axis`` itself."""
    out = []
    for j, d in enumerate(x_shape):
        if d == 1:
            out.append(None)
        elif j < axis:
            out.append(out_axes[j])
        elif j == axis:
            out.append(GATHERED)
        else:
            out.append(out_axes[j - 1 + index_ndim])
    return tuple(out)
