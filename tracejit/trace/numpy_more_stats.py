"""More numpy functions on traced values (issue 14), continued: rounding, closeness, nan-aware reductions and
weighted averages, as decompositions into existing IR primitives (registered into numpy_api.IMPLS)."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from .numpy_api import IMPLS, impl
from .numpy_more import _along, _ax, _int, _u, _v
from .numpy_more_math import _const, _float, _same_length

# ------------------------------------------------------------------------------------------------ rounding
@impl("round", "around", "round_")
def round_(a, decimals=0, out=None):
    """numpy.round: round half to even. Floats scale by 10**decimals and ``rint`` (numpy's own method, with the same
    double rounding); ints are unchanged for decimals >= 0, else rounded half-even to a multiple of 10**-decimals."""
    if out is not None:
        raise UnsupportedError("np.round: the out= argument is not supported by tracejit")
    d = _int(decimals, "np.round's decimals")
    if a.dtype == T.BOOL:
        raise TypeError("np.round of a bool array computes in float16 in numpy, a dtype tracejit does not compute "
                        "in; convert first (x.astype(np.float32))")
    if a.dtype.kind == "f":
        if d == 0:
            return _u("rint", a)
        f = _const(10.0 ** abs(d), a.dtype)
        if d > 0:
            return _u("divide", _u("rint", _u("multiply", a, f)), f)
        return _u("multiply", _u("rint", _u("divide", a, f)), f)
    if d >= 0:
        return a
    f = _const(10 ** -d, a.dtype) if 10 ** -d <= np.iinfo(a.dtype).max else None
    if f is None:
        return ops.broadcast_to(_const(0, a.dtype), a.shape)
    q = _u("floor_divide", a, f)
    r = _u("subtract", a, _u("multiply", q, f))
    twice = _u("multiply", r, 2)
    up = _u("logical_or", _u("greater", twice, f),
            _u("logical_and", _u("equal", twice, f), _u("not_equal", _u("remainder", q, 2), 0)))
    return _u("multiply", _u("add", q, ops.convert(up, a.dtype)), f)


# ------------------------------------------------------------------------------------------------ closeness
@impl("isclose")
def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """numpy.isclose, numpy 2's formula: ``|a - b| <= atol + rtol * |b|`` where b is finite, or a == b (infinities),
    or both nan when equal_nan. b is first taken to a float dtype, as numpy does."""
    b = _v(b)
    if b.dtype.kind != "f":  # numpy: an array b becomes result_type(b, 1.0); a Python int b a (weak) Python float
        weak_const = b.type.weak and b.is_const
        b = ops.constant(float(b.const), T.FLOAT64, weak=True) if weak_const else ops.convert(b, T.FLOAT64)
    if a.dtype == T.BOOL:
        a = ops.convert(a, T.INT64)
    tol = _u("add", atol, _u("multiply", rtol, _u("absolute", b)))
    close = _u("logical_and", _u("less_equal", _u("absolute", _u("subtract", a, b)), tol), _u("isfinite", b))
    res = _u("logical_or", close, _u("equal", a, b))
    if equal_nan:
        res = _u("logical_or", res, _u("logical_and", _u("isnan", _float(a)), _u("isnan", b)))
    return res


@impl("allclose")
def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """numpy.allclose as a traced 0-d bool (``bool()`` of it needs a concrete value: use it in np.where, or
    return it)."""
    return ops.reduce("all", isclose(a, b, rtol, atol, equal_nan))


# ------------------------------------------------------------------------------------------------ nan-aware
@impl("nan_to_num")
def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """numpy.nan_to_num: nan -> ``nan``, +-inf -> ``posinf``/``neginf`` (the dtype's extremes by default)."""
    if x.dtype.kind != "f":
        return x
    info = np.finfo(x.dtype)
    big = info.max if posinf is None else posinf
    small = info.min if neginf is None else neginf
    out = _u("where", _u("isnan", x), ops.convert(_v(nan), x.dtype), x)
    out = _u("where", _u("logical_and", _u("isinf", x), _u("greater", x, 0)), ops.convert(_v(big), x.dtype), out)
    return _u("where", _u("logical_and", _u("isinf", x), _u("less", x, 0)), ops.convert(_v(small), x.dtype), out)


def _no_nan(x, fill):
    return x if x.dtype.kind != "f" else _u("where", _u("isnan", x), _const(fill, x.dtype), x)


@impl("nansum")
def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    """numpy.nansum: nan counted as 0."""
    return IMPLS["sum"](_no_nan(a, 0), axis=axis, dtype=dtype, out=out, keepdims=keepdims, initial=initial,
                        where=where)


@impl("nanprod")
def nanprod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
    """numpy.nanprod: nan counted as 1."""
    return IMPLS["prod"](_no_nan(a, 1), axis=axis, dtype=dtype, out=out, keepdims=keepdims, initial=initial,
                         where=where)


@impl("nanmean")
def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    """numpy.nanmean: the sum of the non-nan values over their count (nan where there are none, as numpy, which
    also warns)."""
    if a.dtype.kind != "f":
        return IMPLS["mean"](a, axis=axis, dtype=dtype, out=out, keepdims=keepdims, where=where)
    ok = _u("logical_not", _u("isnan", a))
    s = IMPLS["sum"](_no_nan(a, 0), axis=axis, dtype=dtype, out=out, keepdims=keepdims, where=where)
    n = ops.reduce("sum", ok, axis, keepdims)
    return _u("divide", s, ops.convert(n, s.dtype))


def _make_nanext(prim, name, fill):
    def f(a, axis=None, out=None, keepdims=False, initial=None, where=True):
        if a.dtype.kind != "f":
            return IMPLS[prim](a, axis=axis, out=out, keepdims=keepdims, initial=initial, where=where)
        r = IMPLS[prim](_no_nan(a, fill), axis=axis, out=out, keepdims=keepdims, initial=initial, where=where)
        if initial is not None:
            return r
        allnan = ops.reduce("all", _u("isnan", a), axis, keepdims)  # numpy: nan (and a RuntimeWarning)
        return _u("where", allnan, _const(np.nan, a.dtype), r)
    f.__name__ = name
    f.__doc__ = f"numpy.{name}: nan ignored (the {prim} of the rest); nan for an all-nan slice, as numpy."
    return f


IMPLS["nanmax"] = _make_nanext("max", "nanmax", -np.inf)
IMPLS["nanmin"] = _make_nanext("min", "nanmin", np.inf)


@impl("count_nonzero")
def count_nonzero(a, axis=None, *, keepdims=False):
    """numpy.count_nonzero: the int64 sum of ``a != 0``."""
    return ops.reduce("sum", _u("not_equal", a, _const(0, a.dtype)), axis, keepdims)


# ------------------------------------------------------------------------------------------------ average
@impl("average")
def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """numpy.average: sum(a * w) / sum(w). A zero weight sum raises ZeroDivisionError at run time, as numpy."""
    if weights is None:
        avg = IMPLS["mean"](a, axis=axis, keepdims=keepdims)
        if not returned:
            return avg
        n = ops.count(a.shape, ops.normalize_axis(axis, a.ndim))
        return avg, ops.broadcast_to(ops.convert(n, avg.dtype), avg.shape)
    w = _v(weights)
    if w.ndim == a.ndim and all(p == q or not (isinstance(p, int) and isinstance(q, int))
                                for p, q in zip(w.shape, a.shape)):
        for p, q in zip(a.shape, w.shape):  # equal at run time, or numpy's error (as a ValueError)
            _same_length(p, q, "np.average: the shapes of a and weights differ")
        if any(p != q for p, q in zip(a.shape, w.shape)):  # a bound reshape: a constant w must not fold to a
            w = ops.bind("reshape", w, shape=a.shape)          # numpy reshape with a symbolic length
    if w.shape != a.shape:
        if axis is None:
            raise TypeError("Axis must be specified when shapes of a and weights differ.")
        if isinstance(axis, (tuple, list)):
            raise UnsupportedError("np.average: a tuple axis with weights of another shape is not supported by "
                                   "tracejit")
        ax = _ax(axis, a.ndim)
        if w.ndim != 1:
            raise TypeError("1D weights expected when shapes of a and weights differ.")
        n, nw = a.shape[ax], w.shape[0]
        if isinstance(n, int) and isinstance(nw, int):
            if n != nw:
                raise ValueError("Length of weights not compatible with specified axis.")
        elif n != nw:
            ops.current().constraints.append(Constraint.same(
                n, nw, "Length of weights not compatible with specified axis."))
        w = _along(w, ax, a.ndim)
    dt = T.result_dtype(a.type, w.type)[0]
    dt = dt if dt.kind == "f" else T.FLOAT64
    a, w = ops.convert(a, dt), ops.convert(w, dt)
    wb = ops.broadcast_to(w, a.shape) if w.shape != a.shape else w
    scl = ops.reduce("sum", wb, axis, keepdims)
    zero = _u("equal", scl, 0)
    ops.add_check(ops.reduce("any", zero) if zero.ndim else zero, ZeroDivisionError,
                  "Weights sum to zero, can't be normalized")
    avg = _u("divide", ops.reduce("sum", _u("multiply", a, w), axis, keepdims), scl)
    return (avg, scl) if returned else avg
