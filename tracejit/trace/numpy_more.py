"""More numpy functions on traced values (issue 14): array manipulation, indexing and scans.

Every function here is a decomposition into existing IR primitives (slices, gathers, concatenates, reshapes,
broadcasts, elementwise ops and reductions), so it fuses like hand-written code and every backend, gradient and
vmap rule applies with no new row anywhere. Lengths may be symbolic (one compile for every length) unless a
docstring says a static length is needed. Registered into the same IMPLS table as ``numpy_api``.
"""
from __future__ import annotations

import numpy as np
from numpy.exceptions import AxisError

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from ..ir.graph import Value
from .numpy_api import concatenate, impl, ravel
from ..ir.ops import iota  # int64 0..n-1 for a static or symbolic length

# ------------------------------------------------------------------------------------------------ helpers


def _v(x) -> Value:
    return ops.as_value(x)


def _ax(axis, ndim) -> int:
    """One axis, normalized (numpy's AxisError when out of range)."""
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"'{type(axis).__name__}' object cannot be interpreted as an integer")
    return ops.normalize_axis(_int(axis, "axis"), ndim)[0]


def _int(k, what):
    """A static Python int argument (numpy's TypeError for anything else; a traced value cannot be a length)."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        if isinstance(k, Value):
            raise UnsupportedError(f"{what} must be a static int for tracejit (it decides a shape); got a traced "
                                   f"value: pass it as a Python int or mark the argument static")
        raise TypeError(f"'{type(k).__name__}' object cannot be interpreted as an integer ({what})")
    return int(k)


def _getitem(x, key):
    from .indexing import getitem
    return getitem(x, key)


def _sl(x, axis, start=None, stop=None, step=None):
    """``x[..., start:stop:step, ...]`` on one axis, with numpy's clamping for static and symbolic lengths."""
    key = [slice(None)] * x.ndim
    key[axis] = slice(start, stop, step)
    return _getitem(x, tuple(key))


def _cut(x, axis, start, length):
    """The ``length`` elements of ``x`` from ``start`` along ``axis`` (both known to be in range)."""
    shape = list(x.shape)
    shape[axis] = length
    starts = [0] * x.ndim
    starts[axis] = start
    return ops.bind("slice", x, starts=tuple(starts), steps=(1,) * x.ndim, shape=tuple(shape))


def _along(v: Value, axis, ndim) -> Value:
    """A 1-D ``v`` shaped to broadcast along ``axis`` of an ``ndim``-d array."""
    shape = [1] * ndim
    shape[axis] = v.shape[0]
    return ops.reshape(v, tuple(shape))


def _dimv(n) -> Value:
    return ops.dimsize(n) if not isinstance(n, int) else ops.constant(n, T.INT64, weak=True)


def _u(name, *xs):
    return ops.ufunc(name, *xs)


def _concat(parts, axis):
    parts = [p for p in parts if not (isinstance(p.shape[axis], int) and p.shape[axis] == 0)] or parts[:1]
    return parts[0] if len(parts) == 1 else ops.bind("concatenate", *parts, axis=axis)


def _index_value(idx, what) -> Value:
    """An index argument as an int64 Value (numpy refuses float indices with a TypeError)."""
    idx = _v(idx)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{what}: Cannot cast array data from dtype('{idx.dtype}') to dtype('int64') according to "
                        f"the rule 'safe'")
    return ops.convert(idx, T.INT64) if idx.dtype != T.INT64 or idx.type.weak else idx


def _list_args(f):
    """Mark ``f`` as taking its array arguments in a list or as ``*args``: the dispatcher leaves them alone."""
    f.takes_scalars = True
    return f


# ------------------------------------------------------------------------------------------------ roll, diff, flip
@impl("roll")
def roll(a, shift, axis=None):
    """numpy.roll. A static length rolls with two slices and a concatenate; a symbolic length or a traced shift
    with a gather at ``(i - shift) mod n`` (a symbolic ``shift mod n`` is no length the IR can name)."""
    if axis is None:
        return ops.reshape(roll(ravel(a), shift, 0), a.shape)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    shifts = shift if isinstance(shift, (tuple, list)) else (shift,)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    if len(axes) == 1 and len(shifts) > 1:
        axes = axes * len(shifts)
    if len(axes) != len(shifts):
        raise ValueError("'shift' and 'axis' should be scalars or 1D sequences")
    total = {}
    for ax, s in zip(axes, shifts):
        ax = _ax(ax, a.ndim)
        total[ax] = s if ax not in total else _u("add", total[ax], s)
    for ax, s in total.items():
        a = _roll1(a, s, ax)
    return a


def _roll1(a, s, ax):
    n = a.shape[ax]
    if isinstance(s, (int, np.integer)) and not isinstance(s, bool) and isinstance(n, int):
        k = int(s) % n if n else 0
        return a if k == 0 else _concat([_cut(a, ax, n - k, k), _cut(a, ax, 0, n - k)], ax)
    sv = _index_value(s, "np.roll's shift")
    if sv.ndim:
        raise UnsupportedError("np.roll: an array shift is supported only as a tuple of static ints")
    nv = _dimv(n)
    idx = _u("remainder", _u("subtract", iota(n), sv), _u("maximum", nv, 1))
    return ops.bind("gather", a, idx, axis=ax)


@impl("diff")
def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    """numpy.diff: ``n`` rounds of ``x[1:] - x[:-1]`` (``!=`` for bool, as numpy)."""
    n = _int(n, "np.diff's n")
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n!r}")
    if a.ndim == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    ax = _ax(axis, a.ndim)
    parts = []
    for extra, where in ((prepend, 0), (append, 1)):
        if extra is np._NoValue:
            continue
        e = _v(extra)
        if e.ndim == 0:
            shape = list(a.shape)
            shape[ax] = 1
            e = ops.broadcast_to(e, tuple(shape))
        parts.append((where, e))
    if parts:
        pre = [e for w, e in parts if w == 0]
        post = [e for w, e in parts if w == 1]
        items = pre + [a] + post
        dt = T.result_dtype(*[v.type for v in items])[0]
        a = concatenate([ops.convert(v, dt) for v in items], axis=ax)
    op = "not_equal" if a.dtype == T.BOOL else "subtract"
    for _ in range(n):
        a = _u(op, _sl(a, ax, 1, None), _sl(a, ax, None, -1))
    return a


@impl("flip")
def flip(m, axis=None):
    """numpy.flip: a slice with step -1 on each axis (a view; no data moves until it is used)."""
    axes = ops.normalize_axis(axis, m.ndim)
    key = tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(m.ndim))
    return _getitem(m, key) if axes else m


@impl("fliplr")
def fliplr(m):
    if m.ndim < 2:
        raise ValueError("Input must be >= 2-d.")
    return flip(m, 1)


@impl("flipud")
def flipud(m):
    if m.ndim < 1:
        raise ValueError("Input must be >= 1-d.")
    return flip(m, 0)


@impl("rot90")
def rot90(m, k=1, axes=(0, 1)):
    """numpy.rot90: flips and a transpose."""
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    if axes[0] == axes[1] or abs(axes[0] - axes[1]) == m.ndim:
        raise ValueError("Axes must be different.")
    if not (-m.ndim <= axes[0] < m.ndim and -m.ndim <= axes[1] < m.ndim):
        raise ValueError(f"Axes={axes} out of range for array of dimension {m.ndim}")
    k = _int(k, "np.rot90's k") % 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, axes[0]), axes[1])
    perm = list(range(m.ndim))
    a0, a1 = axes[0] % m.ndim, axes[1] % m.ndim
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return ops.transpose(flip(m, a1), tuple(perm))
    return flip(ops.transpose(m, tuple(perm)), a1)


# ------------------------------------------------------------------------------------------------ cumsum, cumprod
_BLOCK = 16     # scans work on blocks of this many elements: a masked reduction per block (16 ops per element)
_LEVELS = 4     # levels of blocks before the block totals are scanned directly (quadratic in n / 16**4)
_RED = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min"}
_FUSED_SCAN_MAX = 4 * _BLOCK  # a sum along a static axis this short stays a fused kernel (it fuses into its users)


def _masked_reduce(x, strict, op, ident):
    """``out[..., i] = op-reduce of x[..., j] over j < i`` with a (len, len) bool mask ``strict[i, j]``: one fused
    kernel (a where() under a reduction), O(len**2) work."""
    n = x.shape[-1]
    xe = ops.reshape(x, x.shape[:-1] + (1, n))
    picked = _u("where", strict, xe, ops.constant(ident, x.dtype))
    return ops.convert(ops.reduce(_RED[op], picked, picked.ndim - 1), x.dtype)  # int32 sums wrap as numpy's


def _strict_lower(n):
    """(n, n) bool ``j < i`` for a static or symbolic n."""
    if isinstance(n, int):
        return ops.constant(np.tril(np.ones((n, n), bool), -1))
    i = iota(n)
    return _u("less", ops.reshape(i, (1, n)), ops.reshape(i, (n, 1)))


def _exclusive_scan(x, op, ident, level=0):
    """Exclusive scan along the last axis (``out[i] = x[0] op ... op x[i-1]``) for any length n: blocks of _BLOCK
    are scanned by a masked reduction, their totals scanned recursively (_LEVELS deep, then directly), and each
    block's prefix combined in. Products and sums only: exact for integers, differentiable by the existing rules."""
    n = x.shape[-1]
    lead = x.shape[:-1]
    if level == _LEVELS or (isinstance(n, int) and n <= 4 * _BLOCK):
        return _masked_reduce(x, _strict_lower(n), op, ident)
    m = T.dim_floordiv(n + (_BLOCK - 1), _BLOCK)
    pad = ops.broadcast_to(ops.constant(ident, x.dtype), lead + (m * _BLOCK - n,))
    xb = ops.reshape(ops.bind("concatenate", x, pad, axis=x.ndim - 1), lead + (m, _BLOCK))
    inner = _masked_reduce(xb, _strict_lower(_BLOCK), op, ident)
    totals = ops.convert(ops.reduce(_RED[op], xb, xb.ndim - 1), x.dtype)
    before = _exclusive_scan(totals, op, ident, level + 1)
    y = ops.reshape(_u(op, inner, ops.reshape(before, lead + (m, 1))), lead + (m * _BLOCK,))
    return _cut(y, y.ndim - 1, 0, n)


def _cumulative(name, op, ident, a, axis, dtype, out):
    if out is not None:
        raise UnsupportedError(f"np.{name}: the out= argument is not supported by tracejit")
    if axis is None:
        a, axis = ravel(a), 0
    elif a.ndim == 0:
        raise AxisError(axis, 0)
    ax = _ax(axis, a.ndim)
    if dtype is not None:
        a = ops.convert(a, T.check_dtype(dtype, f"np.{name}'s dtype="))
    elif a.dtype.kind in "biu" and a.dtype.itemsize < 8:  # as numpy: small ints accumulate in the platform
        a = ops.convert(a, T.UINT64 if a.dtype.kind == "u" else T.INT64)  # (unsigned) integer
    x = ops.transpose(a, tuple(i for i in range(a.ndim) if i != ax) + (ax,))
    n = x.shape[-1]
    if op == "add" and not (isinstance(n, int) and n <= _FUSED_SCAN_MAX):
        y = ops.bind("cumsum", x)  # numpy's own loop (a library call): one pass, numpy's rounding
    else:
        y = _u(op, _exclusive_scan(x, op, ident), x)
    back = list(range(a.ndim - 1))
    back.insert(ax, a.ndim - 1)
    return ops.transpose(y, tuple(back))


@impl("cumsum")
def cumsum(a, axis=None, dtype=None, out=None):
    """numpy.cumsum: numpy's loop as a library call, or along a short static axis a fused masked reduction."""
    return _cumulative("cumsum", "add", 0, a, axis, dtype, out)


def ufunc_accumulate(name, a, axis=0, dtype=None, out=None):
    """``np.add/multiply/maximum/minimum.accumulate``: the cumulative scan along ``axis`` (default 0, as numpy's
    ufunc method; cumsum's default ravels). maximum/minimum scan from the dtype's lowest/highest value, so nan
    propagates as in numpy's ufuncs."""
    if name in ("add", "multiply"):
        return _cumulative(f"{name}.accumulate", name, 0 if name == "add" else 1, a, axis, dtype, out)
    if out is not None:
        raise UnsupportedError(f"np.{name}.accumulate: the out= argument is not supported by tracejit")
    if axis is None:
        raise ValueError(f"np.{name}.accumulate needs an integer axis (numpy refuses axis=None here)")
    if a.ndim == 0:
        raise AxisError(axis, 0)
    if dtype is not None:
        a = ops.convert(a, T.check_dtype(dtype, f"np.{name}.accumulate's dtype="))
    ax = _ax(axis, a.ndim)
    dt = np.dtype(a.dtype.name)
    low = name == "maximum"
    ident = (-np.inf if low else np.inf) if dt.kind in "fc" else (dt.kind == "b" and not low) if dt.kind == "b" \
        else (np.iinfo(dt).min if low else np.iinfo(dt).max)
    x = ops.transpose(a, tuple(i for i in range(a.ndim) if i != ax) + (ax,))
    y = _u(name, _exclusive_scan(x, name, ident), x)
    back = list(range(a.ndim - 1))
    back.insert(ax, a.ndim - 1)
    return ops.transpose(y, tuple(back))


@impl("cumprod")
def cumprod(a, axis=None, dtype=None, out=None):
    """numpy.cumprod: the same scan as cumsum with multiply (products only, so gradients are exact with zeros)."""
    return _cumulative("cumprod", "multiply", 1, a, axis, dtype, out)


# ------------------------------------------------------------------------------------------------ tile, repeat


@impl("tile")
def tile(A, reps):
    """numpy.tile: A broadcast along a new axis before each of its axes, then merged (one view, one copy)."""
    reps = tuple(reps) if isinstance(reps, (tuple, list)) else (reps,)
    reps = tuple(_int(r, "np.tile's reps") for r in reps)
    if any(r < 0 for r in reps):
        raise ValueError("negative dimensions are not allowed")
    d = max(len(reps), A.ndim)
    reps = (1,) * (d - len(reps)) + reps
    A = ops.reshape(A, (1,) * (d - A.ndim) + A.shape)
    inter = []
    for r, n in zip(reps, A.shape):
        inter += [1, n]
    big = []
    for r, n in zip(reps, A.shape):
        big += [r, n]
    x = ops.broadcast_to(ops.reshape(A, tuple(inter)), tuple(big))
    return ops.reshape(x, tuple(r * n for r, n in zip(reps, A.shape)))


@impl("repeat")
def repeat(a, repeats, axis=None):
    """numpy.repeat. An int repeats each element by broadcasting; static per-element counts gather at their
    positions (the result length is their sum). Traced counts give a data-dependent length: refused."""
    if axis is None:
        a, axis = ravel(a), 0
    ax = _ax(axis, a.ndim)
    if isinstance(repeats, Value) and not repeats.is_const:
        raise UnsupportedError("np.repeat with traced repeats gives a data-dependent length, which tracejit cannot "
                               "trace; pass the counts as a numpy array or Python list (static)")
    reps = np.asarray(repeats.const if isinstance(repeats, Value) else repeats)
    if reps.dtype.kind not in "iub":
        raise TypeError(f"Cannot cast array data from dtype('{reps.dtype}') to dtype('int64') according to the "
                        f"rule 'safe'")
    if reps.ndim > 1:
        raise ValueError("object too deep for desired array")
    if np.any(reps < 0):
        raise ValueError("repeats may not contain negative values.")
    n = a.shape[ax]
    if reps.size == 1:
        r = int(reps.reshape(()))
        shape = a.shape[:ax + 1] + (1,) + a.shape[ax + 1:]
        big = a.shape[:ax + 1] + (r,) + a.shape[ax + 1:]
        x = ops.broadcast_to(ops.reshape(a, shape), big)
        return ops.reshape(x, a.shape[:ax] + (n * r,) + a.shape[ax + 1:])
    if not isinstance(n, int):
        ops.current().constraints.append(Constraint.same(
            n, reps.size, "operands could not be broadcast together with shape ({a},) ({b},)"))
        n = reps.size
    if n != reps.size:
        raise ValueError(f"operands could not be broadcast together with shape ({n},) ({reps.size},)")
    idx = ops.constant(np.repeat(np.arange(n, dtype=np.int64), reps))
    return ops.bind("gather", a, idx, axis=ax)


# ------------------------------------------------------------------------------------------------ take & co.
@impl("take")
def take(a, indices, axis=None, out=None, mode="raise"):
    """numpy.take: a gather (negative indices count from the end; out of range raises IndexError at run time
    for mode='raise'; 'wrap' and 'clip' map the index first)."""
    if out is not None:
        raise UnsupportedError("np.take: the out= argument is not supported by tracejit")
    if axis is None:
        a, axis = ravel(a), 0
    ax = _ax(axis, a.ndim)
    idx = _index_value(indices, "np.take")
    n = a.shape[ax]
    if mode in ("wrap", "clip"):
        _nonempty_take(n, idx)
    if mode == "wrap":
        idx = _u("remainder", idx, _u("maximum", _dimv(n), 1))
    elif mode == "clip":
        idx = _u("minimum", _u("maximum", idx, 0), _u("subtract", _dimv(n), 1))
    elif mode != "raise":
        raise ValueError(f"clipmode must be one of 'clip', 'raise', or 'wrap' (got {mode!r})")
    return ops.bind("gather", a, idx, axis=ax)


def _nonempty_take(n, idx):
    """numpy's IndexError for a wrapped or clipped take of some indices from an empty axis (now, or at run time)."""
    msg = "cannot do a non-empty take from an empty axes."
    m = T.prod(idx.shape)
    if isinstance(n, int) and isinstance(m, int):
        if n == 0 and m:
            raise IndexError(msg)
        return
    if isinstance(n, int) and n:
        return
    ops.add_check(_u("logical_and", _u("equal", _dimv(n), 0), _u("greater", _dimv(m), 0)), IndexError, msg)


def _flat_positions(shape, ax, idx):
    """Flat C-order positions in an array of ``shape`` of the elements ``idx`` picks along ``ax`` (the other
    coordinates are the index array's own): the gather into the raveled array that take_along_axis is."""
    nd = len(shape)
    pos = None
    stride = ops.constant(1, T.INT64, weak=True)
    out_shape = T.broadcast_shapes(*[tuple(1 if i != j else (idx.shape[j] if j == ax else shape[j])
                                           for i in range(nd)) for j in range(nd)],
                                   constraints=ops.current().constraints)
    for j in reversed(range(nd)):
        c = idx if j == ax else _along(iota(shape[j]), j, nd)
        term = _u("multiply", c, stride)
        pos = term if pos is None else _u("add", pos, term)
        stride = _u("multiply", stride, _dimv(shape[j]))
    return ops.broadcast_to(pos, T.broadcast_shapes(pos.shape, out_shape, constraints=ops.current().constraints))


def _along_axis_index(arr, indices, axis, what, keep_arr=False):
    idx = _index_value(indices, what)
    if idx.ndim != arr.ndim:
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    n = arr.shape[axis]
    nv = _dimv(n)
    idx = _u("where", _u("less", idx, 0), _u("add", idx, nv), idx)
    bad = _u("logical_or", _u("less", idx, 0), _u("greater_equal", idx, nv))
    ops.add_check(ops.reduce("any", bad) if bad.ndim else bad, IndexError,
                  f"{what}: an index is out of bounds for axis {axis} with size {n}")
    for j in range(arr.ndim):  # the other axes broadcast as numpy's
        if j != axis and idx.shape[j] != arr.shape[j] and idx.shape[j] != 1 and arr.shape[j] != 1:
            if isinstance(idx.shape[j], int) and isinstance(arr.shape[j], int):
                raise ValueError(f"shape mismatch: indexing arrays could not be broadcast together with shapes "
                                 f"{T.shape_str(arr.shape)} {T.shape_str(idx.shape)}")
    big = tuple(idx.shape[j] if j == axis else arr.shape[j] if keep_arr else
                T.broadcast_shapes((arr.shape[j],), (idx.shape[j],), constraints=ops.current().constraints)[0]
                for j in range(arr.ndim))
    shape = tuple(arr.shape[j] if j == axis else big[j] for j in range(arr.ndim))
    src = ops.broadcast_to(arr, shape) if shape != arr.shape else arr
    return src, ops.broadcast_to(idx, big) if idx.shape != big else idx


@impl("take_along_axis")
def take_along_axis(arr, indices, axis=-1):
    """numpy.take_along_axis: one gather from the raveled array at each picked element's flat position."""
    if axis is None:
        if indices.ndim != 1 if isinstance(indices, Value) else np.ndim(indices) != 1:
            raise ValueError("when axis=None, `indices` must have a single dimension.")
        arr, axis = ravel(arr), 0
    ax = _ax(axis, arr.ndim)
    src, idx = _along_axis_index(arr, indices, ax, "np.take_along_axis")
    pos = _flat_positions(src.shape, ax, idx)
    return ops.bind("gather", ravel(src), pos, axis=0)


@impl("put_along_axis")
def put_along_axis(arr, indices, values, axis, inplace=True):
    """numpy.put_along_axis as a new array (``inplace=False``, as JAX's): the written positions take ``values``,
    the others keep ``arr``. Two indices writing one element would need numpy's last-write-wins order, which a
    scatter-add cannot give: that raises at run time instead of answering wrongly. numpy's in-place call is a
    write into the tracer (tracer._put_along_axis), which keeps the last write."""
    if inplace:
        raise UnsupportedError("np.put_along_axis in place writes into a traced array: call it on the tracer "
                               "(numpy's np.put_along_axis(arr, ...)), or pass inplace=False for the new array")
    if axis is None:
        arr2 = ravel(arr)
        return ops.reshape(put_along_axis(arr2, ravel(_v(indices)), ravel(_v(values)), 0, inplace=False), arr.shape)
    ax = _ax(axis, arr.ndim)
    _, idx = _along_axis_index(arr, indices, ax, "np.put_along_axis", keep_arr=True)
    pos = ravel(_flat_positions(arr.shape, ax, idx))
    vals = ravel(ops.broadcast_to(ops.convert(_v(values), arr.dtype), idx.shape))
    size = T.prod(arr.shape)
    cnt = ops.bind("scatter_add", ops.broadcast_to(ops.constant(1, T.INT64), pos.shape), pos, axis=0, size=size)
    ops.add_check(_u("greater", _maxcount(cnt), 1),
                  UnsupportedError, "np.put_along_axis: two indices write the same element; tracejit cannot "
                                    "reproduce numpy's last-write-wins order")
    wv = vals if vals.dtype.kind in "if" else ops.convert(vals, T.INT64)
    written = ops.bind("scatter_add", wv, pos, axis=0, size=size)
    hit = _u("greater", cnt, 0)
    return ops.reshape(_u("where", hit, ops.convert(written, arr.dtype), ravel(arr)), arr.shape)


def _maxcount(cnt):
    n = cnt.shape[0]
    if isinstance(n, int) and n == 0:
        return ops.constant(0, T.INT64)
    z = ops.bind("concatenate", cnt, ops.constant(np.zeros(1, np.int64)), axis=0)
    return ops.reduce("max", z)




from . import numpy_more_layout, numpy_more_math, numpy_pad  # noqa: E402,F401  (the rest of issue 14's functions)
