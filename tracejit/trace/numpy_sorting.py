"""Sorting and data-dependent lengths on traced values: np.sort/argsort and np.partition/argpartition (numpy's sort
and introselect are the implementations, library primitives), the order statistics built on them (median,
percentile, quantile with every numpy method), and the functions whose result length only the data decides
(nonzero, flatnonzero, argwhere, one-argument where, unique, compress, extract, ``x[mask]``): their length is a
fresh unbacked Dim bound by the ``nonzero`` primitive. ``unique(axis=)`` orders slices with ``argsort_rows``.
"""
from __future__ import annotations

import operator

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from ..ir.graph import Value
from .numpy_api import IMPLS, impl, ravel
from .numpy_more import _ax, _concat, _cut, _u

_SORT_KINDS = ("quicksort", "mergesort", "heapsort", "stable")


def _kind(kind, stable, what):
    if stable is not None:
        if kind is not None:
            raise ValueError(f"np.{what}: `kind` and `stable` parameters can't both be specified.")
        return "stable" if stable else "quicksort"
    kind = "quicksort" if kind is None else str(kind).lower()
    if kind not in _SORT_KINDS:
        raise ValueError(f"np.{what}: sort kind must be one of 'quick', 'heap', or 'stable' (got {kind!r})")
    return kind


def _sort_prim(prim, a, axis, kind, order, stable):
    if order is not None:
        raise UnsupportedError(f"np.{prim}(order=...) sorts structured arrays, which tracejit does not trace")
    if axis is None:
        a, axis = ravel(a), 0
    if a.ndim == 0:
        raise np.exceptions.AxisError(axis, 0)
    return ops.bind(prim, a, axis=_ax(axis, a.ndim), kind=_kind(kind, stable, prim))


@impl("sort")
def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    """numpy.sort (nan last, as numpy)."""
    return _sort_prim("sort", a, axis, kind, order, stable)


@impl("argsort")
def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    return _sort_prim("argsort", a, axis, kind, order, stable)


def _kth(kth, n) -> tuple:
    """numpy's kth (an int or a sequence of them; lengths such as ``x.shape[0] // 2`` too) as a tuple. numpy
    checks the bounds when the call runs, against the run-time length."""
    if isinstance(kth, Value) and kth.is_const:  # a numpy array argument arrives as a constant
        kth = np.asarray(kth.const)
    if isinstance(kth, np.ndarray) and kth.ndim == 0:
        kth = kth[()]
    if isinstance(kth, np.ndarray) and kth.ndim > 1:
        raise ValueError("object too deep for desired array")
    ks = tuple(kth) if isinstance(kth, (tuple, list, np.ndarray)) else (kth,)
    if not ks and not (isinstance(kth, np.ndarray) and kth.dtype.kind in "iu"):
        raise TypeError("Partition index must be integer")  # numpy reads [] as a float array
    out = []
    for k in ks:
        if isinstance(k, T.Dim):
            out.append(k)
            continue
        if isinstance(k, (bool, np.bool_)):
            raise ValueError("Booleans unacceptable as partition index")
        if isinstance(k, (float, np.floating)) or (isinstance(k, Value) and k.dtype.kind not in "iu"):
            raise TypeError("Partition index must be integer")
        if isinstance(k, Value):
            raise UnsupportedError("np.partition: kth must be a Python int (or a length such as x.shape[0] // 2); a "
                                   "traced kth would need a guard on its value: pass it as static (static_argnums)")
        k = operator.index(k)
        if isinstance(n, int) and not -n <= k < n:
            raise ValueError(f"kth(={k}) out of bounds ({n})")
        out.append(k)
    return tuple(out)


def _partition_prim(prim, a, kth, axis, kind, order):
    """Numpy's own introselect (a library call): the result is numpy's, element for element."""
    if order is not None:
        raise UnsupportedError(f"np.{prim}(order=...) partitions structured arrays, which tracejit does not trace")
    if kind != "introselect":
        raise ValueError(f"np.{prim}: partition kind must be 'introselect' (got {kind!r})")
    if axis is None:
        a, axis = ravel(a), 0
    if a.ndim == 0:
        raise np.exceptions.AxisError(axis, 0)
    ax = _ax(axis, a.ndim)
    ks = _kth(kth, a.shape[ax])
    if not ks:  # an empty int kth: numpy moves nothing
        return a if prim == "partition" else IMPLS["broadcast_to"](
            _from_iota(a, ax), tuple(a.shape))
    # a negative axis counts from the end, so vmap's leading batch axis leaves it valid
    return ops.bind(prim, a, kth=ks, axis=ax - a.ndim)


def _from_iota(a, ax):
    """0..n-1 along axis ``ax`` of ``a``'s shape (argpartition with nothing to move)."""
    from .numpy_more import iota
    return ops.reshape(iota(a.shape[ax]), tuple(a.shape[ax] if i == ax else 1 for i in range(a.ndim)))


@impl("partition")
def partition(a, kth, axis=-1, kind="introselect", order=None):
    """numpy.partition: the kth elements in their sorted places, smaller ones before, larger ones after."""
    return _partition_prim("partition", a, kth, axis, kind, order)


@impl("argpartition")
def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    return _partition_prim("argpartition", a, kth, axis, kind, order)


# ------------------------------------------------------------------------------------------------ order statistics
def _last_axis(a: Value, axis):
    """``a`` with the reduced axes merged into one last axis, and the shape keepdims restores."""
    axes = ops.normalize_axis(axis, a.ndim)
    keep = tuple(i for i in range(a.ndim) if i not in axes)
    x = ops.transpose(a, keep + axes) if keep + axes != tuple(range(a.ndim)) else a
    kept = tuple(a.shape[i] for i in keep)
    x = ops.reshape(x, kept + (T.prod([a.shape[i] for i in axes]),))
    return x, tuple(1 if i in axes else d for i, d in enumerate(a.shape)), kept


def _virtual_index(method, n, q):
    """Where numpy's ``method`` puts quantile ``q`` in a sorted sample of ``n``: (float index, is_discrete)."""
    continuous = {"interpolated_inverted_cdf": (0, 1), "hazen": (0.5, 0.5), "weibull": (0, 0),
                  "median_unbiased": (1 / 3.0, 1 / 3.0), "normal_unbiased": (3 / 8.0, 3 / 8.0)}
    nm1q = _u("multiply", _u("subtract", n, 1), q)
    if method in ("linear", "midpoint"):
        return nm1q
    if method in continuous:
        alpha, beta = continuous[method]
        return _u("subtract", _u("add", _u("multiply", n, q), _u("add", alpha, _u("multiply", q, 1 - alpha - beta))),
                  1)
    if method == "averaged_inverted_cdf":
        return _u("subtract", _u("multiply", n, q), 1)
    if method == "lower":
        return _u("floor", nm1q)
    if method == "higher":
        return _u("ceil", nm1q)
    if method == "nearest":
        return _u("rint", nm1q)
    if method in ("inverted_cdf", "closest_observation"):
        index = _u("subtract", _u("multiply", n, q), 1.5 if method == "closest_observation" else 1)
        prev = _u("floor", index)
        at_prev = _u("equal", _u("subtract", index, prev), 0)
        if method == "closest_observation":  # round to the nearest odd (1-based even) order statistic at a tie
            at_prev = _u("logical_and", at_prev, _u("equal", _u("remainder", prev, 2), 1))
        return _u("maximum", _u("where", at_prev, prev, _u("add", prev, 1)), 0)
    raise ValueError(f"'{method}' is not a valid method. Use one of: linear, lower, higher, midpoint, nearest, "
                     f"inverted_cdf, averaged_inverted_cdf, closest_observation, interpolated_inverted_cdf, hazen, "
                     f"weibull, median_unbiased, normal_unbiased")


def _take_last(s: Value, idx: Value) -> Value:
    """``s[..., idx]`` for an int index array: the result has ``s``'s leading shape then ``idx``'s shape."""
    return ops.bind("gather", s, ops.convert(idx, T.INT64), axis=s.ndim - 1)


def _interpolate(s, vi, n, method):
    """numpy's interpolation between the sorted neighbours of each virtual index (numpy's _lerp)."""
    last = _u("subtract", n, 1)
    prev = _u("floor", vi)
    gamma = _u("subtract", vi, prev)
    if method == "averaged_inverted_cdf":
        gamma = _u("where", _u("equal", gamma, 0), 0.5, 1.0)
    elif method == "midpoint":
        gamma = _u("where", _u("equal", _u("remainder", vi, 1), 0), 0.0, 0.5)
    above, below = _u("greater_equal", vi, last), _u("less", vi, 0)
    prev = _u("where", above, last, _u("where", below, 0, prev))
    nxt = _u("where", above, last, _u("where", below, 0, _u("add", prev, 1)))
    a, b = _take_last(s, prev), _take_last(s, nxt)
    t = ops.convert(gamma, s.dtype)
    diff = _u("subtract", b, a)
    return _u("where", _u("greater_equal", t, 0.5), _u("subtract", b, _u("multiply", diff, _u("subtract", 1, t))),
              _u("add", a, _u("multiply", diff, t)))


def _quantile(a, q, axis, method, keepdims, what, empty_is_nan=False):
    qv = ops.as_value(q)
    if qv.ndim > 1:
        raise ValueError("q must be a scalar or 1d")
    if a.ndim == 0:
        a = ops.reshape(a, (1,))
    discrete = method in _DISCRETE_METHODS  # these pick an element: numpy keeps the input's dtype
    dt = a.dtype if discrete or a.dtype.kind == "f" else T.FLOAT64  # interpolation: float64 from any integer
    if not discrete and not qv.type.weak and qv.dtype.kind == "f":
        dt = np.result_type(dt, qv.dtype)
    x, kept_shape, kept = _last_axis(ops.convert(a, dt) if a.dtype != dt else a, axis)
    s = sort(x, -1)
    n = ops.dimsize(x.shape[-1])
    if empty_is_nan and not (isinstance(x.shape[-1], int) and x.shape[-1] > 0):
        # numpy's median of nothing is nan: a nan after the sorted values is what every index of a length-0 axis
        # reads (the indices of a longer one stop before it)
        s = ops.bind("concatenate", s, ops.broadcast_to(ops.constant(np.nan, dt), s.shape[:-1] + (1,)),
                     axis=s.ndim - 1)
        n = _u("maximum", n, 1)
    vi = _virtual_index(method, ops.convert(n, T.FLOAT64), ops.convert(qv, T.FLOAT64))
    if discrete:
        last = _u("subtract", n, 1)
        out = _take_last(s, _u("minimum", _u("maximum", vi, 0), ops.convert(last, T.FLOAT64)))
    else:
        out = _interpolate(s, vi, n, method)
    if dt.kind == "f":
        has_nan = _take_last(_u("isnan", s), ops.convert(_u("subtract", n, 1), T.INT64))  # nan sorts last
        if has_nan.ndim < out.ndim:
            has_nan = ops.reshape(has_nan, has_nan.shape + (1,) * (out.ndim - has_nan.ndim))
        out = _u("where", has_nan, ops.constant(np.nan, dt), out)
    if qv.ndim == 1:  # numpy puts q's axis first
        out = ops.transpose(out, (out.ndim - 1,) + tuple(range(out.ndim - 1)))
    if keepdims:
        out = ops.reshape(out, qv.shape + kept_shape)
    return out


_DISCRETE_METHODS = ("lower", "higher", "nearest", "inverted_cdf", "closest_observation")


def _no_extras(what, out, overwrite_input, weights=None, interpolation=None):
    if out is not None:
        raise UnsupportedError(f"np.{what}: the out= argument is not supported by tracejit")
    if weights is not None:
        raise UnsupportedError(f"np.{what}: weights= is not supported by tracejit yet")
    if interpolation is not None:
        raise TypeError(f"np.{what}: the 'interpolation' keyword was removed; use method=")


@impl("quantile")
def quantile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *, weights=None,
             interpolation=None):
    _no_extras("quantile", out, overwrite_input, weights, interpolation)
    _check_q(q, 1, "Quantiles")
    return _quantile(a, q, axis, method, keepdims, "quantile")


@impl("percentile")
def percentile(a, q, axis=None, out=None, overwrite_input=False, method="linear", keepdims=False, *, weights=None,
               interpolation=None):
    _no_extras("percentile", out, overwrite_input, weights, interpolation)
    _check_q(q, 100, "Percentiles")
    qv = ops.as_value(q)
    return _quantile(a, _u("divide", qv, 100), axis, method, keepdims, "percentile")


def _check_q(q, top, what):
    """numpy's ValueError for a constant q out of [0, top] (a traced q is not checked)."""
    if isinstance(q, Value) or hasattr(q, "_tj_value"):
        return
    arr = np.asarray(q, dtype=float)
    if arr.size and not ((arr >= 0) & (arr <= top)).all():
        raise ValueError(f"{what} must be in the range [0, {top}]")


@impl("median")
def median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    _no_extras("median", out, overwrite_input)
    return _quantile(a, 0.5, axis, "linear", keepdims, "median", empty_is_nan=True)


# ------------------------------------------------------------------------------------------------ data-dependent
def nonzero_rows(a: Value) -> Value:
    """(a.ndim, u) int64 indices of the nonzero elements, u a fresh data-dependent length."""
    return ops.bind("nonzero", a, length=T.unbacked_dim())


def _row(nz: Value, i: int) -> Value:
    return ops.reshape(_cut(nz, 0, i, 1), (nz.shape[1],))


@impl("nonzero")
def nonzero(a):
    if a.ndim == 0:
        raise ValueError("Calling nonzero on 0d arrays is not allowed. Use np.atleast_1d(scalar).nonzero() instead. "
                         "If the context of this error is of the form `arr[nonzero(cond)]`, just use `arr[cond]`.")
    nz = nonzero_rows(a)
    return tuple(_row(nz, i) for i in range(a.ndim))


@impl("flatnonzero")
def flatnonzero(a):
    return _row(nonzero_rows(ravel(a) if a.ndim != 1 else a), 0)


@impl("argwhere")
def argwhere(a):
    if a.ndim == 0:  # numpy: shape (1, 0) or (0, 0)
        nz = nonzero_rows(ops.reshape(a, (1,)))
        return ops.reshape(_cut(nz, 0, 0, 0), (nz.shape[1], 0))
    return ops.transpose(nonzero_rows(a), (1, 0))


def where_one(cond):
    """np.where(cond) with one argument: np.nonzero(cond)."""
    return nonzero(ops.as_value(cond))


@impl("compress")
def compress(condition, a, axis=None, out=None):
    if out is not None:
        raise UnsupportedError("np.compress: the out= argument is not supported by tracejit")
    c = ops.as_value(condition)
    if c.ndim != 1:
        raise ValueError("condition must be a 1-d array")
    if axis is None:
        a, axis = ravel(a), 0
    ax = _ax(axis, a.ndim)
    return ops.bind("gather", a, flatnonzero(c), axis=ax)


@impl("extract")
def extract(condition, arr):
    return ops.bind("gather", ravel(arr), flatnonzero(ops.as_value(condition)), axis=0)


def select_by_mask(x: Value, mask: Value) -> Value:
    """``x[mask]`` for a boolean mask over ``x``'s leading axes: the selected elements (rows) in C order."""
    k = mask.ndim
    if k > x.ndim:
        raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, but {k} were indexed")
    for i, (dm, dx) in enumerate(zip(mask.shape, x.shape)):
        if isinstance(dm, int) and isinstance(dx, int) and dm != dx:
            raise IndexError(f"boolean index did not match indexed array along axis {i}; size of axis is {dx} but "
                             f"size of corresponding boolean axis is {dm}")
        if dm != dx:
            ops.current().constraints.append(Constraint.same(
                dm, dx, f"boolean index did not match indexed array along axis {i}; size of axis is {{b}} but size "
                f"of corresponding boolean axis is {{a}}"))
    lead = T.prod(x.shape[:k])
    flat_x = ops.reshape(x, (lead,) + tuple(x.shape[k:]))
    return ops.bind("gather", flat_x, flatnonzero(mask), axis=0)


def masked_assign(x: Value, mask: Value, v: Value) -> Value:
    """``x[mask] = v``: the i-th true element of the mask (C order) takes ``v[i]``; ``v`` may also be one row that
    every selected element takes. A count that differs from ``len(v)`` raises numpy's ValueError at run time."""
    k = mask.ndim
    rest = tuple(x.shape[k:])
    v = ops.convert(v, x.dtype) if v.dtype != x.dtype else v
    full_mask = ops.reshape(mask, tuple(mask.shape) + (1,) * len(rest))
    if v.ndim <= len(rest):  # one row for every selected element: no compaction
        return _u("where", full_mask, ops.broadcast_to(v, tuple(x.shape)), x)
    if v.ndim != 1 + len(rest):
        raise ValueError(f"shape mismatch: value array of shape {T.shape_str(v.shape)} could not be broadcast to "
                         f"indexing result of {1 + len(rest)} dimensions")
    lead = T.prod(x.shape[:k])
    flags = ops.convert(ops.reshape(mask, (lead,)), T.INT64)
    count = ops.reduce("sum", flags)
    ops.add_check(_u("logical_and", _u("not_equal", count, ops.dimsize(v.shape[0])),
                     _u("not_equal", ops.dimsize(v.shape[0]), 1)), ValueError,
                  "NumPy boolean array indexing assignment cannot assign the values: their number differs from the "
                  "number of true elements of the mask")
    rows = ops.broadcast_to(v, (v.shape[0],) + rest)
    padded = _concat([rows, ops.broadcast_to(ops.constant(0, x.dtype), (1,) + rest)], 0)  # never empty
    single = _u("equal", ops.dimsize(v.shape[0]), 1)  # one value broadcast to every selected element
    pos = _u("where", single, 0, _u("maximum", _u("subtract", IMPLS["cumsum"](flags), 1), 0))
    taken = ops.reshape(ops.bind("gather", padded, pos, axis=0), tuple(x.shape))
    return _u("where", full_mask, taken, x)


# ------------------------------------------------------------------------------------------------ unique
@impl("unique")
def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *, equal_nan=True,
           sorted=True):
    """numpy.unique: a stable sort, the first element of each run of equal values (nans one run when
    ``equal_nan``), and the run starts through ``nonzero`` (a data-dependent length). With ``axis`` the elements
    are the slices along it, ordered lexicographically (numpy's order), and equal when all their elements are."""
    if axis is not None:
        return _unique_slices(ar, _ax(axis, ar.ndim), return_index, return_inverse, return_counts)
    flat = ravel(ar) if ar.ndim != 1 else ar
    n = flat.shape[0]
    if isinstance(n, int) and n == 0:  # numpy: empty results (the run starts below need one element)
        return _empty_unique(flat, return_index + return_inverse + return_counts)
    perm = argsort(flat, kind="stable")
    s = ops.bind("gather", flat, perm, axis=0)
    head, tail = _neighbours(s)
    new = _u("not_equal", tail, head)
    if equal_nan and s.dtype.kind == "f":
        new = _u("logical_and", new, _u("logical_not", _u("logical_and", _u("isnan", tail), _u("isnan", head))))
    starts, extras = _runs(perm, new, n, return_index, return_inverse, return_counts)
    if return_inverse and ar.ndim > 1:  # numpy 2 gives the inverse the input's shape
        extras[1 if return_index else 0] = ops.reshape(extras[1 if return_index else 0], ar.shape)
    values = ops.bind("gather", s, starts, axis=0)
    return (values, *extras) if extras else values


def _empty_unique(values, n_extras):
    empty = ops.constant(np.zeros(0, np.int64))
    return (values, *[empty] * n_extras) if n_extras else values


def _neighbours(s):
    """(s[:-1], s[1:]) along the first axis (empty for an empty array, whose length is known at run time)."""
    pairs = T.dim_max(s.shape[0] - 1, 0)
    return _cut(s, 0, 0, pairs), _cut(s, 0, 1, pairs)


def _runs(perm, new, n, return_index, return_inverse, return_counts):
    """The starts of the runs of equal sorted elements (``new`` flags each neighbour pair that differs), and the
    requested extras: first index (through the stable ``perm``), inverse, counts."""
    flag = _concat([ops.constant(np.ones(1, bool)), new], 0)  # a run starts at 0 and wherever the value changes
    if flag.shape[0] != n:
        flag = _cut(flag, 0, 0, n)
    starts = flatnonzero(flag)
    extras = []
    if return_index:
        extras.append(ops.bind("gather", perm, starts, axis=0))
    if return_inverse:
        group = _u("subtract", IMPLS["cumsum"](flag), 1)
        extras.append(ops.bind("scatter_add", group, perm, axis=0, size=n))
    if return_counts:
        u = starts.shape[0]
        ends = _cut(_concat([starts, ops.reshape(ops.dimsize(n), (1,))], 0), 0, 1, u)
        extras.append(_u("subtract", ends, starts))
    return starts, extras


def _unique_slices(ar, ax, return_index, return_inverse, return_counts):
    """np.unique(ar, axis=ax): the slices along ``ax`` as rows, sorted lexicographically (a library call)."""
    moved = ops.transpose(ar, (ax,) + tuple(i for i in range(ar.ndim) if i != ax)) if ax else ar
    n, rest = moved.shape[0], tuple(moved.shape[1:])
    rows = ops.reshape(moved, (n, T.prod(rest)))
    if isinstance(n, int) and n == 0:
        return _empty_unique(ar, return_index + return_inverse + return_counts)
    perm = ops.bind("argsort_rows", rows)
    s = ops.bind("gather", rows, perm, axis=0)
    head, tail = _neighbours(s)
    new = ops.reduce("any", _u("not_equal", tail, head), 1)  # numpy compares rows field by field: nan != nan
    starts, extras = _runs(perm, new, n, return_index, return_inverse, return_counts)
    values = ops.reshape(ops.bind("gather", s, starts, axis=0), (starts.shape[0],) + rest)
    if ax:
        values = ops.transpose(values, tuple(range(1, ax + 1)) + (0,) + tuple(range(ax + 1, ar.ndim)))
    return (values, *extras) if extras else values


__all__ = ["sort", "argsort", "partition", "argpartition", "median", "percentile", "quantile", "nonzero", "flatnonzero",
           "argwhere", "unique", "compress", "extract", "select_by_mask", "where_one", "masked_assign"]

from . import complex_sorting  # noqa: E402,F401  (the complex arrays' forms, registered into COMPLEX_IMPLS)
