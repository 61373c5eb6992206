"""``x[idx] = v`` as a functional update: the IR has no mutation, so a write builds the new array from existing
primitives and the tracer rebinds ``x`` (and, through views, its base) to it.

- basic indices (ints, slices with any step, ``None``, ``...``): the written region is spliced in with
  ``concatenate`` and slices, one axis at a time (a step k > 1 reshapes the covered run into rows of k and replaces
  their first column);
- one integer array (alone or among basic indices): numpy's "last write wins" for repeated indices, found with an
  (n, k) comparison against the index (a max over positions + 1; O(n * k) work, a first implementation);
- a boolean mask keeping the shape: ``where``.
Fusion decides where the result is stored; nothing here needs a new primitive.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from ..ir.graph import Value
from ..ir.types import Dim
from . import guards
from .indexing import advanced, full_key, getitem, several_advanced, slice_dims


def set_item(x: Value, key, v: Value) -> Value:
    """The value of ``x`` after numpy's ``x[key] = v``."""
    if not isinstance(key, tuple):
        key = (key,)
    key = tuple(_index_value(k) for k in key)
    masks = [k for k in key if isinstance(k, Value) and k.dtype == T.BOOL]
    if masks:
        return _set_mask(x, key, v)
    target = getitem(x, key)
    v = _fit(ops.convert(v, x.dtype) if v.dtype != x.dtype else v, target.shape)
    full = full_key(x, key)
    if several_advanced(full):
        return _set_advanced(x, full, v)
    arrays = [i for i, k in enumerate(key) if isinstance(k, Value)]
    if not arrays:
        return _set_basic(x, key, v)
    if len(arrays) > 1:  # several 0-d traced indices: one axis at a time
        i = arrays[0]
        inner = set_item(getitem(x, key[:i + 1]), key[i + 1:], v)
        return set_item(x, key[:i + 1], inner)
    pos = arrays[0]
    idx = key[pos]
    basic = key[:pos] + (slice(None),) + key[pos + 1:]
    y = getitem(x, basic)
    axis = _result_axis(key, pos, x.ndim)
    # the values with one axis for the (flattened) index: a scalar index writes a length-1 slab
    vals = ops.reshape(v, y.shape[:axis] + (T.prod(idx.shape),) + y.shape[axis + 1:]) if idx.ndim != 1 else v
    return _set_basic(x, basic, _set_along(y, axis, idx, vals))


def _set_advanced(x: Value, key, v: Value) -> Value:
    """``x[key] = v`` with several advanced entries: write into the merged axis of ``x[basic]`` (see
    indexing.Advanced) at the flat positions, then undo the merge and the transpose."""
    a = advanced(x, key)
    y = getitem(x, a.basic)
    merged = a.merged(y)
    p = a.axis
    vals = ops.reshape(v, merged.shape[:p] + (T.prod(a.index_shape),) + merged.shape[p + 1:])
    new = _set_along(merged, p, a.flat, vals)
    perm = a.perm
    new = ops.reshape(new, tuple(y.shape[i] for i in perm))
    inverse = tuple(perm.index(i) for i in range(len(perm)))
    if inverse != tuple(range(len(perm))):
        new = ops.transpose(new, inverse)
    return _set_basic(x, a.basic, new)


def _index_value(k):
    """Tracers and arrays in an index become Values (lists of ints are integer arrays, as in numpy)."""
    from .tracer import Tracer
    if isinstance(k, Tracer):
        return k._tj_value
    if isinstance(k, (np.ndarray, list)):
        return ops.as_value(np.asarray(k))
    return k


def _fit(v: Value, shape) -> Value:
    """``v`` broadcast to the written region's shape, as numpy's setitem (leading length-1 axes may be dropped)."""
    while v.ndim > len(shape) and v.shape[0] == 1:
        v = ops.reshape(v, v.shape[1:])
    if v.ndim > len(shape):
        raise ValueError(f"could not broadcast input array from shape {T.shape_str(v.shape)} into shape "
                         f"{T.shape_str(shape)}")
    try:
        return ops.broadcast_to(v, shape)
    except ValueError:
        raise ValueError(f"could not broadcast input array from shape {T.shape_str(v.shape)} into shape "
                         f"{T.shape_str(shape)}") from None


def _result_axis(key, pos, ndim) -> int:
    """Axis of ``x[key with key[pos] -> :]`` that key[pos] indexes (ints drop axes, None adds them)."""
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    axis = 0
    for i, k in enumerate(key):
        if i == pos:
            return axis
        if k is Ellipsis:
            axis += ndim - n_real
        elif k is None or isinstance(k, slice) or isinstance(k, Value):
            axis += 1
    return axis


# --------------------------------------------------------------------------------------------- basic indices
def _set_basic(x: Value, key, v: Value) -> Value:
    """``x[key] = v`` for ints, slices, None and ``...``; ``v`` already has ``x[key]``'s shape."""
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if Ellipsis in [k for k in key if not isinstance(k, Value)]:
        i = [j for j, k in enumerate(key) if k is Ellipsis][0]
        key = key[:i] + (slice(None),) * (x.ndim - n_real) + key[i + 1:]
    key = tuple(k for k in key if k is not None)
    key = key + (slice(None),) * (x.ndim - len(key))
    region, spans = [], []
    for axis, k in enumerate(key):
        n = x.shape[axis]
        if isinstance(k, slice):
            start, length = slice_dims(k, n)
            step = 1 if k.step is None else int(k.step)
        else:
            start, length, step = _int_start(k, n), 1, 1
        spans.append((start, step, length))
        region.append(length)
    v = ops.reshape(v, tuple(region))  # drop None axes (length 1), restore int-indexed axes as length 1
    return _place(x, v, spans, 0)


def _int_start(k, n):
    k = k if isinstance(k, Dim) else int(k)
    if isinstance(n, int) and isinstance(k, int):
        if not -n <= k < n:
            raise IndexError(f"index {k} is out of bounds for axis 0 with size {n}")
        return k % n
    ops.current().constraints.append(Constraint.index(k, n, 0))
    return k if guards.nonnegative(k) else n + k


def _place(x: Value, v: Value, spans, axis: int) -> Value:
    """Splice region ``v`` into ``x`` on axes ``axis..``: cut the run of the region on this axis, place the rest of
    ``v`` in it recursively, splice the run back."""
    while axis < x.ndim and _whole(spans[axis], x.shape[axis]):
        axis += 1
    if axis == x.ndim:
        return v
    start, step, length = spans[axis]
    if isinstance(length, int) and length == 0:
        return x
    if step < 0:  # the same positions in increasing order, the values reversed
        start, step = start + step * (length - 1), -step
        v = _cut(v, axis, length - 1, -1, length)
    if step == 1:
        inner = _place(_cut(x, axis, start, 1, length), v, spans, axis + 1)
        return _splice(x, axis, start, length, inner)
    return _place_strided(x, v, spans, axis, start, step, length)


def _whole(span, n) -> bool:
    start, step, length = span
    return step == 1 and isinstance(start, int) and start == 0 and (length is n or length == n)


def _place_strided(x, v, spans, axis, start, step, length):
    """Step k > 1: with k - 1 elements of padding, the run x[start : start + L*k] is L rows of k whose first
    column is written (no case for L == 0, so a symbolic L needs no guard)."""
    n = x.shape[axis]
    pad_shape = x.shape[:axis] + (step - 1,) + x.shape[axis + 1:]
    xp = ops.bind("concatenate", x, ops.broadcast_to(ops.constant(np.zeros((), x.dtype)), pad_shape), axis=axis)
    run = _cut(xp, axis, start, 1, length * step)
    rows = ops.reshape(run, run.shape[:axis] + (length, step) + run.shape[axis + 1:])
    first = _cut(rows, axis + 1, 0, 1, 1)
    rest = _cut(rows, axis + 1, 1, 1, step - 1)
    rows_new = ops.bind("concatenate", _place_rows(first, v, spans, axis), rest, axis=axis + 1)
    xp_new = _splice(xp, axis, start, length * step, ops.reshape(rows_new, run.shape))
    return _cut(xp_new, axis, 0, 1, n)


def _place_rows(first, vhead, spans, axis):
    """The first column of each row of k: ``vhead`` placed on the remaining axes (spans past ``axis``)."""
    flat = ops.reshape(first, first.shape[:axis + 1] + first.shape[axis + 2:])
    placed = _place(flat, vhead, spans, axis + 1)
    return ops.reshape(placed, first.shape)


def _cut(x: Value, axis: int, start, step, length) -> Value:
    starts = [0] * x.ndim
    steps = [1] * x.ndim
    shape = list(x.shape)
    starts[axis], steps[axis], shape[axis] = start, step, length
    if tuple(shape) == tuple(x.shape) and all(s == 0 for s in starts) and all(s == 1 for s in steps):
        return x
    return ops.bind("slice", x, starts=tuple(starts), steps=tuple(steps), shape=tuple(shape))


def _splice(x: Value, axis: int, start, length, middle: Value) -> Value:
    """x with positions [start, start + length) on ``axis`` replaced by ``middle``."""
    n = x.shape[axis]
    parts = []
    if not (isinstance(start, int) and start == 0):
        parts.append(_cut(x, axis, 0, 1, start))
    parts.append(middle)
    rest = n - start - length
    if not (isinstance(rest, int) and rest == 0):
        parts.append(_cut(x, axis, start + length, 1, rest))
    if len(parts) == 1:
        return middle
    return ops.bind("concatenate", *parts, axis=axis)


# --------------------------------------------------------------------------------------------- integer arrays
def _set_along(y: Value, axis: int, idx: Value, vals: Value) -> Value:
    """``y`` with ``y[..., idx[j], ...] = vals[..., j, ...]`` on ``axis``; for a repeated index the last j wins."""
    if idx.dtype.kind not in "iu":
        raise IndexError("arrays used as indices must be of integer (or boolean) type")
    n = y.shape[axis]
    idx = ops.reshape(ops.convert(idx, T.INT64) if idx.dtype != T.INT64 else idx, (T.prod(idx.shape),))
    k = idx.shape[0]
    nv = ops.dimsize(n)
    bad = ops.reduce("any", ops.ufunc("logical_or", ops.ufunc("less", idx, ops.ufunc("negative", nv)),
                                      ops.ufunc("greater_equal", idx, nv)))
    ops.add_check(bad, IndexError, f"an index written to is out of bounds for axis {axis} with size {n}")
    idx = ops.ufunc("where", ops.ufunc("less", idx, ops.constant(0, np.int64, weak=True)), ops.ufunc("add", idx, nv), idx)
    if isinstance(k, int) and k == 1:  # one index (x[i] = v in a loop): a select, no search for the last write
        hit = ops.reshape(ops.ufunc("equal", ops.iota(n), idx), (1,) * axis + (n,) + (1,) * (y.ndim - axis - 1))
        return ops.ufunc("where", hit, vals, y)
    match = ops.ufunc("equal", ops.reshape(ops.iota(n), (n, 1)), ops.reshape(idx, (1, k)))      # (n, k)
    pos1 = ops.ufunc("where", match, ops.reshape(ops.ufunc("add", ops.iota(k), ops.constant(1, np.int64, weak=True)),
                                                 (1, k)), ops.constant(0, np.int64, weak=True))
    zero_col = ops.broadcast_to(ops.constant(np.zeros((), np.int64)), (n, 1))  # never an empty max
    pos1 = ops.bind("concatenate", zero_col, pos1, axis=1)
    last1 = ops.reduce("max", pos1, axis=(1,))                                                   # (n,), 0: none
    hit = ops.ufunc("greater", last1, ops.constant(0, np.int64, weak=True))
    j = ops.ufunc("maximum", ops.ufunc("subtract", last1, ops.constant(1, np.int64, weak=True)),
                  ops.constant(0, np.int64, weak=True))
    if isinstance(k, int) and k == 0:
        return y
    gathered = ops.bind("gather", vals, j, axis=axis)
    hit = ops.reshape(hit, (1,) * axis + (n,) + (1,) * (y.ndim - axis - 1))
    return ops.ufunc("where", hit, gathered, y)


def add_at(x: Value, idx: Value, v: Value, negate=False) -> Value:
    """numpy's ``np.add.at(x, idx, v)`` on axis 0: repeated indices accumulate (``scatter_add``)."""
    idx = ops.as_value(idx)
    if idx.dtype == T.BOOL:
        idx = None
    if idx is None or idx.dtype.kind not in "iu":
        raise UnsupportedError("np.add.at with a non-integer index is not supported by tracejit")
    n = x.shape[0]
    idx = ops.convert(idx, T.INT64) if idx.dtype != T.INT64 else idx
    nv = ops.dimsize(n)
    idx = ops.ufunc("where", ops.ufunc("less", idx, ops.constant(0, np.int64, weak=True)), ops.ufunc("add", idx, nv), idx)
    shape = idx.shape + tuple(x.shape[1:])
    v = _fit(ops.convert(v, x.dtype) if v.dtype != x.dtype else v, shape)
    if negate:
        v = ops.ufunc("negative", v)
    return ops.ufunc("add", x, ops.bind("scatter_add", v, idx, axis=0, size=n))


# --------------------------------------------------------------------------------------------- boolean masks
def _set_mask(x: Value, key, v: Value) -> Value:
    """``x[mask] = v`` with a scalar (or length-1) ``v``: the shape is kept, so this is ``where(mask, v, x)``."""
    if len(key) != 1:
        raise UnsupportedError("a boolean mask mixed with other indices is not supported for writes by tracejit; "
                               "write x[mask] = v with a mask of x's leading shape, or use np.where")
    mask = key[0]
    if mask.ndim > x.ndim or any(not _same_len(a, b) for a, b in zip(mask.shape, x.shape)):
        raise IndexError(f"boolean index of shape {T.shape_str(mask.shape)} does not match the indexed array of "
                         f"shape {T.shape_str(x.shape)}")
    if any(d != 1 for d in v.shape):  # values in the order of the mask's true elements (trace/numpy_sorting.py)
        from .numpy_sorting import masked_assign
        return masked_assign(x, mask, v)
    v = ops.reshape(v, ())
    v = ops.convert(v, x.dtype) if v.dtype != x.dtype else v
    mask = ops.reshape(mask, mask.shape + (1,) * (x.ndim - mask.ndim))
    return ops.ufunc("where", mask, v, x)


def _same_len(a, b) -> bool:
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if a == b:
        return True
    ops.current().constraints.append(Constraint.same(a, b, "boolean index did not match indexed array: {a} vs {b}"))
    return True
