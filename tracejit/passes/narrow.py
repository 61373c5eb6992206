"""Products computed only as wide as they are read: ``(a @ b)[r0:r1, c0:c1] -> a[r0:r1] @ b[:, c0:c1]``.

The reverse step of ``concatenate([x, h]) @ w`` multiplies the cotangent by all of ``w.T`` and then keeps only
h's columns (x's cotangent is not needed): half the product is thrown away. Slicing the operands first computes
only what is read; the slices are views, so BLAS reads them in place. Exact (each kept element is the same dot
product). A product that something else also reads is left whole.
"""
from __future__ import annotations

from ..ir import ops
from .matching import arg, args, param
from .patterns import on, rewrite, rule_table


def _unit_steps(v) -> bool:
    return all(s == 1 for s in param(v, "steps"))


def _same_lengths(v) -> bool:
    """``v = broadcast_to(x)`` that copies nothing: equal rank, and no length 1 stretched (a symbolic length is
    never 1 here: the signature fixes which lengths are 1)."""
    x = v.eqn.inputs[0]
    return x.ndim == v.ndim and all(a == b or a != 1 for a, b in zip(x.shape, v.shape))


@on("slice", reach=3)
def slice_of_matmul(v, ctx):
    """(a @ b)[rows, cols] -> a[rows] @ b[:, cols] (2-d, unit steps, the product read by the slice alone)"""
    m = arg(v, "slice")
    if m is None or v.ndim != 2 or not _unit_steps(v):
        return None
    if m.eqn is not None and m.eqn.prim == "broadcast_to" and _same_lengths(m):
        if ctx.shared(m):
            return None
        m = m.eqn.inputs[0]
    ab = args(m, "matmul")
    if ab is None or ab[0].ndim != 2 or ab[1].ndim != 2 or ctx.shared(m):
        return None
    a, b = ab
    (r0, c0), (nr, nc) = param(v, "starts"), v.shape
    if (r0, c0) == (0, 0) and (nr, nc) == m.shape:
        return None
    if (r0, nr) != (0, m.shape[0]):
        a = ops.bind("slice", a, starts=(r0, 0), steps=(1, 1), shape=(nr, a.shape[1]))
    if (c0, nc) != (0, m.shape[1]):
        b = ops.bind("slice", b, starts=(0, c0), steps=(1, 1), shape=(b.shape[0], nc))
    return ops.bind("matmul", a, b)


NARROW_RULES = rule_table(slice_of_matmul)


def narrow(graph, strict_ieee=False, stats=None, memo=None, **_):
    return rewrite(graph, NARROW_RULES, strict_ieee, stats, memo)
