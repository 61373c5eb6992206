"""More numpy functions on traced values (issue 14), continued: counting (bincount, histogram, searchsorted), interpolation, 1-D convolution, array construction with
static lengths, np.linalg.norm, and clear refusals for what needs a sort or LAPACK.

Decompositions into existing IR primitives, as in ``numpy_more``: counting is done with comparisons and sums (or a
scatter-add), never with a data-dependent length.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from ..ir.graph import Value
from .numpy_api import IMPLS, impl, ravel
from .numpy_more import _along, _concat, _cut, _dimv, _int, _u, _v, iota

# ------------------------------------------------------------------------------------------------ helpers


def _float(x: Value) -> Value:
    """x in a float dtype (float64 for bool and ints, as numpy's true division)."""
    return x if x.dtype.kind == "f" else ops.convert(x, T.FLOAT64)


def _impl_if_absent(*names):
    """Register unless another module (numpy_api, which owns array construction) already provides the name."""
    def deco(f):
        for n in names:
            IMPLS.setdefault(n, f)
        return f
    return deco


def _const(v, dt):
    return ops.constant(v, dt)


# ------------------------------------------------------------------------------------------------ counting
@impl("searchsorted")
def searchsorted(a, v, side="left", sorter=None):
    """numpy.searchsorted by counting the elements before each query (``a < v`` for 'left', ``a <= v`` for 'right',
    nan last as in numpy's sort order), in blocks: see _sorted_count. Equal to numpy's binary search whenever ``a``
    is sorted, as numpy requires."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right' (got {side!r})")
    if a.ndim != 1:
        raise ValueError("object too deep for desired array" if a.ndim > 1 else "object of too small depth for "
                                                                               "desired array")
    if sorter is not None:
        a = ops.bind("gather", a, ops.convert(_v(sorter), T.INT64), axis=0)
    v = _v(v)
    dt = T.result_dtype(a.type, v.type)[0]
    a, v = ops.convert(a, dt), ops.convert(v, dt)

    def before(e, q):
        b = _u("less", e, q) if side == "left" else _u("less_equal", e, q)
        if dt.kind != "f":
            return b
        qnan = _u("isnan", q)  # everything is before a nan query ('left': every non-nan), a nan before nothing
        return _u("logical_or", b, _u("logical_and", qnan, _u("logical_not", _u("isnan", e))) if side == "left"
                  else qnan)
    return _sorted_count(a, v, before)


_SEARCH_BLOCK = 64


def _sorted_count(a, v, before):
    """How many elements of the sorted 1-D ``a`` satisfy ``before(element, v)`` (true on a prefix of ``a``), per
    element of ``v``. Short static ``a``: one fused count, O(len(a)) per query. Otherwise ``a`` is padded to m
    blocks of _SEARCH_BLOCK: counting the blocks whose last element is before v finds the block holding the
    boundary, and counting within it finishes: O(len(a) / 64 + 64) per query, no data-dependent length."""
    K, B = a.shape[0], _SEARCH_BLOCK
    lead = (1,) * v.ndim
    if isinstance(K, int) and K <= 2 * B:
        return ops.reduce("sum", before(ops.reshape(a, (K,) + lead), v), 0)
    fill = np.nan if a.dtype.kind == "f" else True if a.dtype.kind == "b" else np.iinfo(a.dtype).max
    m = T.dim_floordiv(K + (B - 1), B)
    tail = ops.broadcast_to(_const(fill, a.dtype), (m * B - K + 1,))  # one more: every position below is valid
    padded = ops.bind("concatenate", a, tail, axis=0)                   # (m * B + 1,)
    heads = ops.reshape(_cut(ops.reshape(_cut(padded, 0, 0, m * B), (m, B)), 1, B - 1, 1), (m,) + lead)
    start = _u("multiply", ops.reduce("sum", before(heads, v), 0), B)
    pos = _u("add", ops.reshape(start, (1,) + v.shape), ops.constant(np.arange(B).reshape((B,) + lead)))
    elem = ops.bind("gather", padded, _u("minimum", pos, _dimv(m * B)), axis=0)
    count = _u("add", start, ops.reduce("sum", before(elem, v), 0))
    return _u("minimum", count, _dimv(K))  # padding counted (a nan query, an int query at the maximum) is cut


@impl("bincount")
def bincount(x, weights=None, minlength=0):
    """numpy.bincount: a scatter-add of ones (or weights). Without ``minlength`` the length is numpy's max(x) + 1,
    a data-dependent length bound at run time (the ``trip_count`` primitive, as np.nonzero's); with it, the static
    length ``minlength``, where a larger value raises ValueError at run time rather than returning a different
    length than numpy would. A negative value raises numpy's ValueError."""
    if x.ndim != 1:
        raise ValueError("object too deep for desired array" if x.ndim else "object of too small depth for "
                                                                              "desired array")
    if x.dtype.kind not in "iub":
        raise TypeError("Cannot cast array data from dtype('float64') to dtype('int64') according to the rule 'safe'")
    m = minlength if not isinstance(minlength, Value) else None
    if m is None or isinstance(m, (bool, np.bool_)):
        raise UnsupportedError("np.bincount: minlength must be a static int or a length (x.shape[0]) in tracejit")
    if not isinstance(m, T.Dim):  # a length (C.shape[0]) stays symbolic: the result has that many bins
        m = _int(m, "np.bincount's minlength")
        if m < 0:
            raise ValueError("'minlength' must not be negative")
    xi = ops.convert(x, T.INT64)
    neg = _u("less", xi, 0)
    if x.shape[0] != 0:
        ops.add_check(ops.reduce("any", neg), ValueError, "'list' argument must have no negative elements")
    if isinstance(m, int) and m == 0:
        m = _data_length(xi)
        bad = neg
    else:
        big = _u("greater_equal", xi, m if isinstance(m, int) else ops.dimsize(m))
        if x.shape[0] != 0:
            ops.add_check(ops.reduce("any", big), ValueError,
                          f"np.bincount in tracejit: a value is >= minlength={m}, which would lengthen numpy's "
                          f"result; raise minlength to a bound on max(x) + 1, or leave it out")
        bad = _u("logical_or", neg, big)
    safe = _u("where", bad, 0, xi)
    if weights is None:
        g = _u("where", bad, _const(0, T.INT64), _const(1, T.INT64))
    else:
        w = ops.convert(_v(weights), T.FLOAT64)
        _same_length(x.shape[0], w.shape[0] if w.ndim == 1 else None, "The weights and list don't have the same "
                                                                       "length.")
        g = _u("where", bad, _const(0.0, T.FLOAT64), w)
    return ops.bind("scatter_add", g, safe, axis=0, size=m)


def _data_length(xi: Value):
    """max(x) + 1 (0 for an empty x, at least 0) as a fresh length known when the call runs."""
    top = ops.reduce("max", _concat([xi, ops.constant(np.full(1, -1, np.int64))], 0))
    count = ops.bind("trip_count", _u("maximum", _u("add", top, 1), 0), length=T.unbacked_dim())
    return count.shape[0]


def _same_length(n, m, msg):
    """numpy's ValueError when two lengths differ: now if both are static, at run time if either is symbolic."""
    if m is None or (isinstance(n, int) and isinstance(m, int) and n != m):
        raise ValueError(msg)
    if n != m:
        ops.current().constraints.append(Constraint.same(n, m, msg))


def _linspace_values(start, stop, num, endpoint, dt):
    """numpy.linspace's arithmetic in dtype ``dt`` on 0-d (or broadcast) start/stop: ``start + i * step``, with
    ``i / div * delta`` when the step underflows to 0, and the last value exactly ``stop`` (endpoint)."""
    div = (num - 1) if endpoint else num
    start, stop = ops.convert(_v(start), dt), ops.convert(_v(stop), dt)
    delta = _u("subtract", stop, start)
    y = ops.constant(np.arange(num, dtype=dt))
    shape = T.broadcast_shapes(start.shape, stop.shape, constraints=ops.current().constraints)
    y = ops.reshape(y, (num,) + (1,) * len(shape))
    if div > 0:
        step = _u("divide", delta, div)
        zero_step = _u("equal", step, 0)
        y = _u("where", zero_step, _u("multiply", _u("divide", y, div), delta), _u("multiply", y, step))
    else:
        step = ops.broadcast_to(_const(np.nan, dt), ())
        y = _u("multiply", y, delta)
    y = _u("add", y, start)
    if endpoint and num > 1:
        last = ops.reshape(ops.broadcast_to(stop, shape), (1,) + shape)
        y = ops.bind("concatenate", _cut(y, 0, 0, num - 1), ops.convert(last, y.dtype), axis=0)
    return y, step


@impl("histogram")
def histogram(a, bins=10, range=None, density=None, weights=None):
    """numpy.histogram with a static bin count (edges from numpy's linspace of the range, or of the data's min and
    max) or explicit edges: bin i holds edges[i] <= a < edges[i+1], the last bin its right edge too. Equal bins
    are counted as numpy does (a computed bin, corrected against the edges, then a scatter-add: O(len(a))),
    explicit edges by comparisons under one reduction (O(len(a) * bins))."""
    if isinstance(bins, str):
        raise UnsupportedError(f"np.histogram: bins={bins!r} chooses the bin count from the data; tracejit needs "
                               f"a static count or explicit edges")
    a = ravel(a)
    w = None if weights is None else ravel(_v(weights))
    if w is not None:
        _same_length(a.shape[0], w.shape[0], "weights should have the same shape as a.")
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        nb = int(bins)
        if nb < 1:
            raise ValueError("`bins` must be positive, when an integer")
        edges = _uniform_edges(a, nb, range)
    else:
        edges = _v(bins)
        if edges.ndim != 1:
            raise ValueError("`bins` must be 1d, when an array")
        if range is not None:
            pass  # numpy ignores range= when the edges are given
        if isinstance(edges.shape[0], int) and edges.shape[0] < 2:
            raise ValueError("`bins` must be 1d, when an array")  # numpy's message for a too-short array
        inc = _u("less", _cut(edges, 0, 1, edges.shape[0] - 1), _cut(edges, 0, 0, edges.shape[0] - 1))
        ops.add_check(ops.reduce("any", inc), ValueError, "`bins` must increase monotonically, when an array")
        return _density(_counts_by_comparison(a, w, edges), edges, density), edges
    return _density(_counts_uniform(a, w, edges, nb), edges, density), edges


def _density(hist, edges, density):
    if not density:
        return hist
    nb1 = edges.shape[0]
    width = _u("subtract", _cut(edges, 0, 1, nb1 - 1), _cut(edges, 0, 0, nb1 - 1))
    return _u("divide", _u("divide", hist, width), ops.reduce("sum", hist))


def _counts_uniform(a, w, edges, nb):
    """numpy's own method for equal bins, O(len(a)): the bin from ``(a - first) / (last - first) * bins``, moved
    down or up one when the edges (computed by linspace) disagree, then a scatter-add of ones or weights."""
    dt = T.result_dtype(a.type, edges.type)[0]
    x, e = ops.convert(a, dt), ops.convert(edges, dt)
    first, last = _at(e, 0), _at(e, nb)
    keep = _u("logical_and", _u("greater_equal", x, first), _u("less_equal", x, last))
    x64, f64, l64 = (ops.convert(v, T.FLOAT64) for v in (x, first, last))
    f = _u("multiply", _u("divide", _u("subtract", x64, f64), _u("subtract", l64, f64)), nb)
    f = _u("where", keep, f, 0.0)  # nan and out-of-range values go nowhere (weight 0 below)
    idx = _u("minimum", _u("maximum", ops.convert(_u("floor", f), T.INT64), 0), nb - 1)
    idx = _u("subtract", idx, ops.convert(_u("less", x, ops.bind("gather", e, idx, axis=0)), T.INT64))
    idx = _u("maximum", idx, 0)
    up = _u("logical_and", _u("greater_equal", x, ops.bind("gather", e, _u("add", idx, 1), axis=0)),
            _u("not_equal", idx, nb - 1))
    idx = _u("add", idx, ops.convert(up, T.INT64))
    if w is None:
        g = ops.convert(keep, T.INT64)
    else:
        g = _u("where", keep, w, _const(0, w.dtype))
    return ops.bind("scatter_add", g, idx, axis=0, size=nb)


def _counts_by_comparison(a, w, edges):
    """Explicit edges: bin i counts edges[i] <= a < edges[i+1] (the last bin its right edge too), by comparisons
    under one reduction, O(len(a) * bins)."""
    nb1 = edges.shape[0]
    lo = ops.reshape(_cut(edges, 0, 0, nb1 - 1), (1, nb1 - 1))
    hi = ops.reshape(_cut(edges, 0, 1, nb1 - 1), (1, nb1 - 1))
    dt = T.result_dtype(a.type, edges.type)[0]
    x = ops.reshape(ops.convert(a, dt), (a.shape[0], 1))
    lo, hi = ops.convert(lo, dt), ops.convert(hi, dt)
    last = _along(_u("equal", iota(nb1 - 1), _u("subtract", _dimv(nb1), 2)), 1, 2)
    inside = _u("logical_and", _u("greater_equal", x, lo),
                _u("logical_or", _u("less", x, hi), _u("logical_and", last, _u("equal", x, hi))))
    if w is None:
        return ops.reduce("sum", inside, 0)
    wv = ops.reshape(w, (w.shape[0], 1))
    return ops.reduce("sum", _u("where", inside, wv, _const(0, w.dtype)), 0)


def _uniform_edges(a, nb, rng):
    """numpy's equal-width edges in numpy's dtype (the data's for float data, else float64): linspace of the range
    (computed in float64, as numpy's of Python floats) or of the data's min and max (in their dtype)."""
    bin_dt = a.dtype if a.dtype.kind == "f" else T.FLOAT64
    if rng is not None:
        lo, hi = (r.const if isinstance(r, Value) and r.is_const else r for r in rng)
        if isinstance(lo, Value) or isinstance(hi, Value):
            raise UnsupportedError("np.histogram: a traced range= is not supported by tracejit; pass Python floats")
        if lo > hi:
            raise ValueError("max must be larger than min in range parameter.")
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError(f"supplied range of [{lo}, {hi}] is not finite")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        first, last = _const(float(lo), T.FLOAT64), _const(float(hi), T.FLOAT64)
        return ops.convert(_linspace_values(first, last, nb + 1, True, T.FLOAT64)[0], bin_dt)
    else:
        af = _float(a)
        n = a.shape[0]
        if isinstance(n, int) and n == 0:
            return ops.convert(_linspace_values(0.0, 1.0, nb + 1, True, T.FLOAT64)[0], bin_dt)
        else:
            ends = ops.constant(np.array([np.inf, -np.inf], af.dtype))  # no reduction of nothing
            mn = ops.reduce("min", ops.bind("concatenate", af, _cut(ends, 0, 0, 1), axis=0))
            mx = ops.reduce("max", ops.bind("concatenate", af, _cut(ends, 0, 1, 1), axis=0))
            empty = _u("equal", _dimv(n), 0)
            mn = _u("where", empty, 0.0, mn)
            mx = _u("where", empty, 1.0, mx)
            bad = _u("logical_not", _u("logical_and", _u("isfinite", mn), _u("isfinite", mx)))
            ops.add_check(bad, ValueError, "autodetected range of the histogram's data is not finite")
            same = _u("equal", mn, mx)
            first = _u("where", same, _u("subtract", mn, 0.5), mn)
            last = _u("where", same, _u("add", mx, 0.5), mx)
    return _linspace_values(first, last, nb + 1, True, bin_dt)[0]


# ------------------------------------------------------------------------------------------------ interp, convolve
@impl("interp")
def interp(x, xp, fp, left=None, right=None, period=None):
    """numpy.interp for increasing ``xp``: the interval of each x found by counting ``xp <= x`` (_sorted_count),
    then numpy's formula ``slope * (x - xp[j]) + fp[j]``."""
    if period is not None:
        raise UnsupportedError("np.interp: period= is not supported by tracejit")
    xp, fp = _v(xp), _v(fp)
    if xp.ndim != 1 or fp.ndim != 1:
        raise ValueError("object too deep for desired array")
    K = xp.shape[0]
    if isinstance(K, int) and isinstance(fp.shape[0], int) and K != fp.shape[0]:
        raise ValueError("fp and xp are not of the same length.")
    if K != fp.shape[0]:
        ops.current().constraints.append(Constraint.same(K, fp.shape[0], "fp and xp are not of the same length."))
    ops.require_nonempty(K, "array of sample points is empty")
    for v in (x, xp, fp):
        if v.dtype.kind == "c":
            raise UnsupportedError("np.interp of complex values is not supported by tracejit")
    x, xp, fp = (ops.convert(v, T.FLOAT64) for v in (x, xp, fp))
    j = _sorted_count(xp, x, lambda e, q: _u("less_equal", e, q))
    j = _u("subtract", j, 1)                      # xp[j] <= x < xp[j+1]; -1 left of xp[0]
    last = _u("subtract", _dimv(K), 1)
    jl = _u("minimum", _u("maximum", j, 0), _u("maximum", _u("subtract", last, 1), 0))
    jr = _u("minimum", _u("add", jl, 1), last)
    x0, x1 = ops.bind("gather", xp, jl, axis=0), ops.bind("gather", xp, jr, axis=0)
    f0, f1 = ops.bind("gather", fp, jl, axis=0), ops.bind("gather", fp, jr, axis=0)
    slope = _u("divide", _u("subtract", f1, f0), _u("subtract", x1, x0))
    y = _u("add", _u("multiply", slope, _u("subtract", x, x0)), f0)
    y = _u("where", _u("equal", x, x0), f0, y)
    if isinstance(K, int) and K == 1:  # one sample point: fp[0] between the left and right values
        y = ops.broadcast_to(f0, y.shape)
    f_first, f_last = _at(fp, 0), _at(fp, K - 1)
    fl = f_first if left is None else ops.convert(_v(left), T.FLOAT64)
    fr = f_last if right is None else ops.convert(_v(right), T.FLOAT64)
    xlast = _at(xp, K - 1)
    y = _u("where", _u("equal", x, xlast), f_last, y)
    y = _u("where", _u("greater", x, xlast), fr, y)
    y = _u("where", _u("less", x, _at(xp, 0)), fl, y)
    if isinstance(K, int) and K == 1:  # numpy: one sample point answers fp[0] even for a nan x
        return y
    return _u("where", _u("isnan", x), _const(np.nan, T.FLOAT64), y)


def _at(v, i):
    """Element ``i`` (static or symbolic, in range) of a 1-D value, as a 0-d value (a slice, not a gather)."""
    return ops.reshape(_cut(v, 0, i, 1), ())


def _correlate_full(a, v):
    """c[k] = sum_j a[k + j - (M-1)] * v[j], k = 0 .. N+M-2 (zero outside a): a gather of the zero-padded ``a``
    at ``k + j`` times ``v[j]``, summed over j (fused: the (L, M) products are never stored)."""
    N, M = a.shape[0], v.shape[0]
    dt = T.result_dtype(a.type, v.type)[0]
    a, v = ops.convert(a, dt), ops.convert(v, dt)
    z = ops.broadcast_to(_const(0, dt), (M - 1,))
    ap = ops.bind("concatenate", z, a, z, axis=0)
    L = N + M - 1
    idx = _u("add", _along(iota(L), 0, 2), _along(iota(M), 1, 2))
    prod = _u("multiply", ops.bind("gather", ap, idx, axis=0), ops.reshape(v, (1, M)))
    out = ops.reduce("sum", prod, 1)
    return ops.convert(out, dt), N, M


def _mode_cut(full, N, M, mode, conv):
    lo, hi = T.dim_min(N, M), T.dim_max(N, M)
    if mode == "full":
        return full
    if mode == "valid":
        return _cut(full, 0, lo - 1, hi - lo + 1)
    if mode == "same":
        # numpy centres the longer operand: convolve starts at (min - 1) // 2; correlate's start counts from the
        # other end when ``a`` is the shorter one (it reverses the swapped result)
        centred = T.dim_floordiv(lo - 1, 2)
        if conv or isinstance(N, int) and isinstance(M, int) and N >= M:
            return _cut(full, 0, centred, hi)
        other = (lo - 1) - centred
        if isinstance(N, int) and isinstance(M, int):
            return _cut(full, 0, other, hi)
        a_longer = _u("greater_equal", _dimv(N), _dimv(M))
        return _u("where", a_longer, _cut(full, 0, centred, hi), _cut(full, 0, other, hi))
    raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")


def _conv(a, v, mode, conv):
    v = _v(v)
    if a.ndim != 1 or v.ndim != 1:
        raise ValueError("object too deep for desired array" if max(a.ndim, v.ndim) > 1 else
                         "object of too small depth for desired array")
    ops.require_nonempty(a.shape[0], "a cannot be empty" if conv else "v cannot be empty")
    ops.require_nonempty(v.shape[0], "v cannot be empty" if conv else "a cannot be empty")
    if conv:
        v = IMPLS["flip"](v)
    full, N, M = _correlate_full(a, v)
    return _mode_cut(full, N, M, mode, conv)


@impl("convolve")
def convolve(a, v, mode="full"):
    """numpy.convolve (1-D): a correlation with the reversed ``v``; O(N * M) direct sums."""
    return _conv(a, v, mode, True)


@impl("correlate")
def correlate(a, v, mode="valid"):
    """numpy.correlate (1-D, real): O(N * M) direct sums."""
    return _conv(a, v, mode, False)


# ------------------------------------------------------------------------------------------------ construction
_WEAK_FLOAT = T.TensorType(T.FLOAT64, (), True)  # numpy's float(num) in linspace's result_type: a weak float


@_impl_if_absent("linspace")
def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *, device=None):
    """numpy.linspace with a static ``num`` and traced (or array) start/stop: numpy's arithmetic in numpy's
    dtype (float32 endpoints stay float32), so the values are bit-identical; an integer dtype floors, as numpy."""
    num = _int(num, "np.linspace's num")
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    comp = T.result_dtype(_v(start).type, _v(stop).type, _WEAK_FLOAT)[0]
    y, step = _linspace_values(start, stop, num, endpoint, comp)
    if dtype is not None:
        dt = T.check_dtype(dtype, "np.linspace's dtype=")
        y = ops.convert(y if dt.kind == "f" else _u("floor", y), dt)
    if axis != 0:
        y = IMPLS["moveaxis"](y, 0, axis)
    return (y, step) if retstep else y


@_impl_if_absent("logspace")
def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """numpy.logspace: ``base ** linspace(start, stop)``."""
    y = linspace(start, stop, num, endpoint, axis=axis)
    p = _u("power", ops.convert(_v(base), y.dtype) if isinstance(base, Value) else base, y)
    if dtype is not None:
        dt = T.check_dtype(dtype, "np.logspace's dtype=")
        p = ops.convert(p if dt.kind == "f" else _u("floor", p), dt)
    return p


# ------------------------------------------------------------------------------------------------ linalg.norm
@impl("norm")
def norm(x, ord=None, axis=None, keepdims=False):
    """numpy.linalg.norm: vector norms (None/2, 1, inf, -inf, 0, any p) and the matrix norms that need no SVD
    ('fro', 1, -1, inf, -inf); 'nuc', 2 and -2 of a matrix from singular values (trace/numpy_linalg.py)."""
    x = _float(x)
    if axis is None:
        if ord is None or (ord in ("f", "fro") and x.ndim == 2):
            r = _u("sqrt", ops.reduce("sum", _u("square", _u("absolute", x))))
            return ops.reshape(r, (1,) * x.ndim) if keepdims else r
        if x.ndim not in (1, 2):
            raise ValueError("Improper number of dimensions to norm.")
        axis = tuple(range(x.ndim))
    axes = ops.normalize_axis(axis, x.ndim) if not isinstance(axis, (tuple, list)) else tuple(
        ops.normalize_axis(a, x.ndim)[0] for a in axis)
    if isinstance(axis, (tuple, list)) and len(set(axes)) != len(axes):
        raise ValueError("Duplicate axes given.")
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError("Improper number of dimensions to norm.")


def _vector_norm(x, ord, ax, keepdims):
    ab = _u("absolute", x)
    if ord is None or ord == 2:
        return _u("sqrt", ops.reduce("sum", _u("square", ab), ax, keepdims))
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    if ord == np.inf:
        return ops.reduce("max", ab, ax, keepdims)
    if ord == -np.inf:
        return ops.reduce("min", ab, ax, keepdims)
    if ord == 0:
        return ops.convert(ops.reduce("sum", _u("not_equal", x, 0), ax, keepdims), x.dtype)
    if ord == 1:
        return ops.reduce("sum", ab, ax, keepdims)
    p = float(ord)
    s = ops.reduce("sum", _u("power", ab, _const(p, x.dtype)), ax, keepdims)
    return _u("power", s, _const(1.0 / p, x.dtype))


def _matrix_norm(x, ord, axes, keepdims):
    r, c = axes
    if r == c:
        raise ValueError("Duplicate axes given.")
    if ord in (None, "fro", "f"):
        out = _u("sqrt", ops.reduce("sum", _u("square", _u("absolute", x)), axes, True))
    elif ord in (1, -1, np.inf, -np.inf):
        over, then = (r, c) if ord in (1, -1) else (c, r)
        red = "max" if ord in (1, np.inf) else "min"
        out = ops.reduce(red, ops.reduce("sum", _u("absolute", x), over, True), then, True)
    elif ord in (2, -2, "nuc"):
        from .numpy_linalg import singular_value_norm
        out = singular_value_norm(x, ord, axes, keepdims=True)
    else:
        raise ValueError("Invalid norm order for matrices.")
    if keepdims:
        return out
    return ops.reshape(out, tuple(d for i, d in enumerate(x.shape) if i not in axes))


# ------------------------------------------------------------------------------------------------ the rest
# sort, lexsort, linalg and fft: trace/numpy_sorting.py, numpy_sorting_keys.py, numpy_linalg.py, numpy_fft.py
LINALG_NAMES = ("norm", "solve", "inv", "det", "slogdet", "cholesky", "qr", "eigh", "eigvalsh", "svd", "lstsq", "pinv",
                "matrix_power", "eig", "eigvals", "matrix_rank")  # tracejit.numpy.linalg
FFT_NAMES = ("fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn", "irfftn",
             "hfft", "ihfft", "fftshift", "ifftshift", "fftfreq", "rfftfreq")  # tracejit.numpy.fft
from . import numpy_more_stats  # noqa: E402,F401  (rounding, closeness, nan-aware reductions, averages)
from . import numpy_sorting, numpy_sorting_keys, numpy_linalg, numpy_fft, numpy_extra  # noqa: E402,F401
from . import numpy_compositions  # noqa: E402,F401
from . import python_builtins  # noqa: E402,F401  (divmod)
assert all(_n in IMPLS for _n in LINALG_NAMES + FFT_NAMES)  # each name tracejit.numpy exports is implemented
