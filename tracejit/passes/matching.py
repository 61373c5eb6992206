"""Patterns for rewrite rules, read like the comment they implement: ``x = arg(v, "negative")`` is "v is -x";
``a, b = args(v, "add")``; ``scalar(v)`` is the value of a one-element constant."""
from __future__ import annotations

import numpy as np

from ..ir import ops


def eqn_of(v, prim):
    """The equation producing ``v`` if its primitive is ``prim`` (a name or a set of names), else None.

    ``v`` may be None (a sub-pattern that did not match), so patterns chain: ``arg(arg(v, "exp"), "log")``."""
    e = v.eqn if v is not None else None
    if e is None:
        return None
    if e.prim == prim if isinstance(prim, str) else e.prim in prim:
        return e
    return None


def args(v, prim):
    """The inputs of ``v = prim(...)``, or None when v is something else."""
    e = eqn_of(v, prim)
    return e.inputs if e is not None else None


def arg(v, prim):
    """The single input x of ``v = prim(x)``, or None."""
    e = eqn_of(v, prim)
    return e.inputs[0] if e is not None else None


def param(v, name):
    return v.eqn.p[name]


def scalar(v):
    """The Python value of a constant whose elements are all equal (a scalar of any shape), else None.

    Rules may treat it as a 0-d scalar: ``conform`` broadcasts their result back to the shape it had. A constant
    broadcast to a symbolic shape is one too (the zero imaginary part of a real operand in complex arithmetic)."""
    c = v.const
    if c is None:
        e = v.eqn
        if e is None or e.prim != "broadcast_to" or e.inputs[0].const is None:
            return None
        c = e.inputs[0].const
    if c.size == 1:
        return c.reshape(()).item()
    if 1 < c.size <= 64 and c.dtype.kind != "f" and (c == c.flat[0]).all():
        return c.flat[0].item()
    if 1 < c.size <= 64 and c.dtype.kind == "f" and (c.view(np.dtype(f"u{c.itemsize}")) ==
                                                   c.view(np.dtype(f"u{c.itemsize}")).flat[0]).all():
        return c.flat[0].item()  # bitwise equal, so -0.0 and 0.0 or two nans are not mixed up
    return None


def is_scalar(v, value) -> bool:
    s = scalar(v)
    return s is not None and s == value


def operands_with_scalar(v, prim, value):
    """For a commutative ``v = prim(a, b)``: the operand other than a constant equal to ``value``, else None."""
    ab = args(v, prim)
    if ab is None:
        return None
    a, b = ab
    if is_scalar(a, value):
        return b
    if is_scalar(b, value):
        return a
    return None


def is_float(v) -> bool:
    return v.dtype.kind == "f"


def is_num(v) -> bool:
    """int or float: the dtypes where add/multiply are the ring operations (bool add is logical or)."""
    return v.dtype.kind in "iuf"


def neg(x, flip_differences=False):
    """-x, without building --y; with ``flip_differences``, -(a - b) as b - a (not for strict IEEE: signed zero)."""
    inner = arg(x, "negative")
    if inner is not None:
        return inner
    ab = args(x, "subtract") if flip_differences else None
    if ab is not None:
        return ops.ufunc("subtract", ab[1], ab[0])
    return ops.ufunc("negative", x)


def const_like(value, like):
    """A 0-d constant of ``like``'s dtype and weakness (``conform`` broadcasts it to like's shape where needed)."""
    return ops.constant(np.asarray(value).astype(like.dtype), weak=like.type.weak)
