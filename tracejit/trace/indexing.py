"""numpy indexing on traced values: ``x[key]`` as a slice (basic indexing, an exact view) and gathers (integer
arrays). Lengths may be symbolic: bounds clamp with guards where Python needs the outcome, and indices into a
symbolic axis add a run-time bounds constraint."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from ..ir.graph import Value
from . import guards


def getitem(x: Value, key) -> Value:
    """numpy basic indexing (ints, slices, None, Ellipsis) plus one integer-array index (a gather)."""
    sel = _Selection()
    axis = 0
    for k in _full_key(x, key):
        if k is None:
            sel.new_axes.append(sel.out_axis)
            sel.out_axis += 1
            continue
        sel.index_axis(k, x.shape[axis], axis)
        axis += 1
        sel.out_axis += 1
    return sel.apply(x)


def _full_key(x: Value, key) -> tuple:
    """``key`` as a tuple with one entry per axis of x (Ellipsis expanded, missing trailing axes as ``:``) plus
    its None entries; tracers replaced by their values."""
    if not isinstance(key, tuple):
        key = (key,)
    key = tuple(getattr(k, "_tj_value", k) for k in key)  # a Tracer's value (the tracer module imports this one)
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_real > x.ndim:
        raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, but {n_real} were indexed")
    if Ellipsis in [k for k in key if not isinstance(k, (np.ndarray, Value, list))]:
        i = [j for j, k in enumerate(key) if k is Ellipsis][0]
        return key[:i] + (slice(None),) * (x.ndim - n_real) + key[i + 1:]
    return key + (slice(None),) * (x.ndim - n_real)


@dataclass
class _Selection:
    """What a key selects, axis by axis: a slice (start, step, length per axis), the axes an int removes
    (``squeeze``), where None adds axes in the result, and the integer arrays to gather with."""
    starts: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    out_shape: list = field(default_factory=list)
    squeeze: list = field(default_factory=list)
    new_axes: list = field(default_factory=list)
    arrays: list = field(default_factory=list)
    out_axis: int = 0

    def index_axis(self, k, n, axis):
        """Record the index ``k`` on ``axis`` (of length ``n``)."""
        if isinstance(k, (bool, np.bool_)):
            raise UnsupportedError("boolean scalar indices are not supported by tracejit")
        if isinstance(k, T.Dim):  # a computed length used as an index (x[n // 2])
            ops.current().constraints.append(Constraint.index(k, n, axis))
            self.take_one(axis, k if guards.nonnegative(k) else n + k)
        elif isinstance(k, (int, np.integer)):
            k = int(k)
            if isinstance(n, int):
                if not -n <= k < n:
                    raise IndexError(f"index {k} is out of bounds for axis {axis} with size {n}")
                self.take_one(axis, k % n)
            else:
                ops.current().constraints.append(Constraint.index(k, n, axis))
                self.take_one(axis, n + k if k < 0 else k)
        elif isinstance(k, slice):
            start, length = slice_dims(k, n)
            self.keep(start, int(k.step) if k.step is not None else 1, length)
        elif isinstance(k, (np.ndarray, list, Value)):
            idx = _index_array(k)
            self.arrays.append((axis, idx))
            self.out_axis += idx.ndim - 1
            self.keep(0, 1, n)
        else:
            raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer "
                             f"arrays are valid indices, got {type(k).__name__}")

    def keep(self, start, step, length):
        self.starts.append(start)
        self.steps.append(step)
        self.out_shape.append(length)

    def take_one(self, axis, start):
        """An int index: a length-1 slice whose axis the result drops."""
        self.keep(start, 1, 1)
        self.squeeze.append(axis)
        self.out_axis -= 1  # no result axis (undone by the caller's increment)

    def apply(self, x: Value) -> Value:
        v = x
        if any(s != 0 for s in self.starts) or any(s != 1 for s in self.steps) \
                or tuple(self.out_shape) != tuple(x.shape):
            v = ops.bind("slice", x, starts=tuple(self.starts), steps=tuple(self.steps), shape=tuple(self.out_shape))
        if len(self.arrays) > 1 and any(idx.ndim for _, idx in self.arrays):
            raise UnsupportedError("indexing with more than one integer array is not supported by tracejit; index "
                                   "one axis at a time")
        # integer arrays: gather along their axis (positions counted before squeezing/new axes); several 0-d
        # indices (x[i, j] with traced scalars) are one gather each, the last axis first so earlier positions stay
        squeeze = list(self.squeeze)
        for real_pos, idx in sorted(self.arrays, key=lambda a: -a[0]):
            if idx.dtype != T.INT64:
                idx = ops.convert(idx, T.INT64)
            v = ops.bind("gather", v, idx, axis=real_pos)
            shift = idx.ndim - 1
            squeeze = [s + shift if s > real_pos else s for s in squeeze]
        shape = [d for i, d in enumerate(v.shape) if i not in squeeze]
        for a in sorted(self.new_axes):
            shape.insert(a, 1)
        if tuple(shape) != v.shape:
            v = ops.reshape(v, tuple(shape))
        return v


def _index_array(k) -> Value:
    idx = ops.as_value(k)
    if idx.dtype == T.BOOL:
        raise UnsupportedError(
            f"reading x[mask] gives an array whose length depends on the data, which tracejit does not "
            f"trace yet (at {guards.user_line()}). Keep the shape instead: np.where(mask, x, 0), "
            f"(x * mask).sum(), or write through the mask (x[mask] = v and x[mask] -= v work)")
    if idx.dtype.kind not in "iu":
        raise IndexError("arrays used as indices must be of integer (or boolean) type")
    return idx


def slice_dims(k: slice, n):
    """(start, length) of slice ``k`` on an axis of length ``n`` (an int or a symbolic Dim)."""
    step = 1 if k.step is None else int(k.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    start, stop = _bound(k.start), _bound(k.stop)
    if isinstance(n, int) and not isinstance(start, T.Dim) and not isinstance(stop, T.Dim):
        start, stop, step = slice(start, stop, step).indices(n)
        return start, len(range(start, stop, step))
    if step > 0:
        s = 0 if start is None else (_lo(start, n) if guards.nonnegative(start) else _hi(n + start, 0))
        e = n if stop is None else (_lo(stop, n) if guards.nonnegative(stop) else _hi(n + stop, 0))
        length = T.dim_max(T.dim_floordiv(e - s + (step - 1), step), 0) if step != 1 else T.dim_max(e - s, 0)
        if step == 1 and (isinstance(start, T.Dim) or isinstance(stop, T.Dim)):
            length = _hi(e - s, 0)
        if start is None and stop is None and step == 1:
            length = n
        return s, length
    # negative step
    s = n - 1 if start is None else (_lo(start, n - 1) if guards.nonnegative(start) else _hi(n + start, -1))
    e = -1 if stop is None else (_lo(stop, n - 1) if guards.nonnegative(stop) else _hi(n + stop, -1))
    length = T.dim_max(T.dim_floordiv(s - e + (-step - 1), -step), 0)
    return s, length


def _bound(b):
    """A slice bound: None, an int, or a symbolic length (a traced int argument specializes, with a guard)."""
    if b is None or isinstance(b, T.Dim):
        return b
    return int(b)


def _lo(a, n):
    """min(a, n): ``a`` itself when provably (or, for a symbolic bound, guardedly) at most n."""
    if isinstance(a, T.Dim):
        r = guards.at_most(a, n)
        if r is not None:
            return a if r else n
    return T.dim_min(a, n)


def _hi(a, lo):
    """max(a, lo), likewise."""
    if isinstance(a, T.Dim):
        r = guards.at_most(lo, a)
        if r is not None:
            return a if r else lo
    return T.dim_max(a, lo)


def same_key(a, b) -> bool:
    try:
        return a is not None and type(a) is type(b) and bool(a == b)
    except Exception:  # noqa: BLE001 - keys holding arrays compare elementwise: not the same write
        return False


def is_basic(key) -> bool:
    """Whether numpy's ``x[key]`` is a view (ints, slices, None, ...), not a copy (integer arrays, masks)."""
    for k in key if isinstance(key, tuple) else (key,):
        if not (k is None or k is Ellipsis or isinstance(k, (slice, T.Dim)) or
                (isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)))):
            return False
    return True
