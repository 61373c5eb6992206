"""numpy indexing on traced values: ``x[key]`` as a slice (basic indexing, an exact view) and gathers (integer
arrays). Lengths may be symbolic: bounds clamp with guards where Python needs the outcome, and indices into a
symbolic axis add a run-time bounds constraint."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConcretizationError, UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from ..ir.graph import Value
from . import guards


def getitem(x: Value, key) -> Value:
    """numpy basic indexing (ints, slices, None, Ellipsis) and integer-array (advanced) indexing."""
    key = full_key(x, key)
    x, key = _dynamic_slices(x, key)
    if several_advanced(key):
        return _advanced(x, key)
    sel = _Selection()
    axis = 0
    for k in key:
        if k is None:
            sel.new_axes.append(sel.out_axis)
            sel.out_axis += 1
            continue
        sel.index_axis(k, x.shape[axis], axis)
        axis += 1
        sel.out_axis += 1
    return sel.apply(x)


def full_key(x: Value, key) -> tuple:
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


def _is_array(k) -> bool:
    return isinstance(k, (np.ndarray, list, Value))


def several_advanced(key) -> bool:
    """Index arrays (one of them not 0-d) together with other arrays or ints: numpy's advanced indexing, where
    the ints count as 0-d arrays and the broadcast index shape goes first unless the advanced entries are
    adjacent (``x[0, :, idx]`` has the index axes first)."""
    arrays = [k for k in key if _is_array(k)]
    if not arrays or not any(np.ndim(k) if not isinstance(k, Value) else k.ndim for k in arrays):
        return False
    ints = [k for k in key if isinstance(k, (int, np.integer, T.Dim)) and not isinstance(k, (bool, np.bool_))]
    return len(arrays) + len(ints) >= 2


@dataclass
class Advanced:
    """How ``x[key]`` with several advanced entries reads: take ``x[basic]`` (the key's slices; whole advanced
    axes; no None), transpose by ``perm`` so the advanced axes (in key order) sit together at ``axis`` (the first
    one's place when adjacent in the key, else first), merge them into one axis of ``dims``' product and gather
    ``flat`` there (the flat position the broadcast index arrays compute, of ``index_shape``); ``shape`` is the
    result's, with a length-1 axis per None."""
    basic: tuple
    perm: tuple
    axis: int
    dims: list
    flat: Value
    index_shape: tuple
    shape: tuple

    def merged(self, y: Value) -> Value:
        """``x[basic]`` with the advanced axes brought together and merged."""
        if self.perm != tuple(range(y.ndim)):
            y = ops.transpose(y, self.perm)
        p, k = self.axis, len(self.dims)
        return ops.reshape(y, y.shape[:p] + (T.prod(self.dims),) + y.shape[p + k:])


def advanced(x: Value, key) -> Advanced:
    """The reading plan of an expanded key with several advanced entries (see ``several_advanced``)."""
    basic, order, found, lengths = [], [], [], []
    axis = 0
    for k in key:
        if k is None:
            order.append(None)
            continue
        n = x.shape[axis]
        if isinstance(k, slice):
            basic.append(k)
            lengths.append(slice_dims(k, n)[1])
            order.append(lengths[-1])
        else:
            basic.append(slice(None))
            lengths.append(n)
            order.append("adv")
            found.append((axis, _checked_index(k, n, axis)))
        axis += 1
    index_shape = T.broadcast_shapes(*[i.shape for _, i in found], constraints=ops.current().constraints)
    at = [j for j, o in enumerate(order) if isinstance(o, str)]
    adjacent = at == list(range(at[0], at[0] + len(at)))
    adv_axes = [a for a, _ in found]
    rest = [a for a in range(x.ndim) if a not in adv_axes]
    p = sum(1 for a in rest if a < adv_axes[0]) if adjacent else 0
    dims = [lengths[a] for a in adv_axes]
    flat = None
    for j, (_, idx) in enumerate(found):
        stride = T.prod(dims[j + 1:])
        term = idx if (isinstance(stride, int) and stride == 1) else ops.ufunc("multiply", idx, ops.dimsize(stride))
        flat = term if flat is None else ops.ufunc("add", flat, term)
    kept = [o if o is not None else 1 for o in order if not isinstance(o, str)]
    if adjacent:
        before = [o if o is not None else 1 for o in order[:at[0]]]
        shape = before + list(index_shape) + kept[len(before):]
    else:
        shape = list(index_shape) + kept
    return Advanced(tuple(basic), tuple(rest[:p] + adv_axes + rest[p:]), p, dims,
                    ops.broadcast_to(flat, index_shape), index_shape, tuple(shape))


def _advanced(x: Value, key) -> Value:
    a = advanced(x, key)
    out = ops.bind("gather", a.merged(getitem(x, a.basic)), a.flat, axis=a.axis)
    return ops.reshape(out, a.shape) if a.shape != out.shape else out


def _checked_index(k, n, axis) -> Value:
    """An advanced index entry as int64 positions in [0, n): negative ones count from the end; out-of-range ones
    raise numpy's IndexError (at trace time when both are known, else when the call runs)."""
    if isinstance(k, (int, np.integer)) and isinstance(n, int):
        if not -n <= int(k) < n:
            raise IndexError(f"index {int(k)} is out of bounds for axis {axis} with size {n}")
        return ops.constant(int(k) % n, np.int64, weak=True)
    idx = ops.dimsize(k) if isinstance(k, T.Dim) else _index_array(k) if _is_array(k) else \
        ops.constant(int(k), np.int64, weak=True)
    if idx.dtype != T.INT64:
        idx = ops.convert(idx, T.INT64)
    nv = ops.dimsize(n)
    bad = ops.ufunc("logical_or", ops.ufunc("less", idx, ops.ufunc("negative", nv)), ops.ufunc("greater_equal", idx, nv))
    which = f"index {int(k)}" if isinstance(k, (int, np.integer)) else "an index"
    size = f" with size {n}" if isinstance(n, int) else ""
    ops.add_check(ops.reduce("any", bad) if bad.ndim else bad, IndexError,
                  f"{which} is out of bounds for axis {axis}{size}")
    return ops.ufunc("where", ops.ufunc("less", idx, ops.constant(0, np.int64, weak=True)), ops.ufunc("add", idx, nv), idx)


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


def _dynamic_slices(x: Value, key):
    """Slices whose bounds are traced values that cannot become ints here (a Theano minibatch
    ``data[i * n:(i + 1) * n]`` with a symbolic ``i``) are cut first, each as a gather of a run-time length; the
    rest of the key then indexes the result."""
    axis, out = 0, []
    for k in key:
        if isinstance(k, slice) and _traced_bounds(k):
            x = _gather_slice(x, axis, k)
            k = slice(None)
        out.append(k)
        axis += k is not None
    return x, tuple(out)


def _traced_bounds(k: slice) -> bool:
    for b in (k.start, k.stop):
        b = getattr(b, "_tj_value", b)
        if isinstance(b, Value):
            try:
                int(_tracer(b))  # under jit a traced int argument specializes (with a guard)
            except ConcretizationError:
                return True
    return False


def _tracer(v):
    from .tracer import wrap
    return wrap(v)


def _gather_slice(x: Value, axis: int, k: slice) -> Value:
    """``x[start:stop:step]`` along ``axis`` with traced bounds, as numpy clips them; its length is a run-time
    symbol (bound by the ``trip_count`` primitive, as Theano's scan binds a symbolic n_steps)."""
    from ..ir.ops import iota
    k = slice(*(getattr(b, "_tj_value", b) for b in (k.start, k.stop, k.step)))
    if isinstance(k.step, Value):
        raise UnsupportedError("a slice step must be a Python int inside tracejit (the bounds may be traced)")
    step = 1 if k.step is None else int(k.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    n = ops.convert(ops.dimsize(x.shape[axis]), T.INT64)
    lo, hi = (0, n) if step > 0 else (-1, ops.ufunc("subtract", n, _i64(1)))

    def bound(b, default):
        if b is None:
            return default
        b = ops.convert(ops.as_value(b), T.INT64) if isinstance(b, Value) else _i64(int(b))
        b = ops.ufunc("where", ops.ufunc("less", b, _i64(0)), ops.ufunc("add", b, n), b)
        return ops.ufunc("minimum", ops.ufunc("maximum", b, _i64(lo) if isinstance(lo, int) else lo), hi)
    start, stop = bound(k.start, _i64(0) if step > 0 else hi), bound(k.stop, n if step > 0 else _i64(-1))
    span = ops.ufunc("subtract", stop, start) if step > 0 else ops.ufunc("subtract", start, stop)
    count = ops.ufunc("floor_divide", ops.ufunc("add", span, _i64(abs(step) - 1)), _i64(abs(step)))
    count = ops.ufunc("maximum", count, _i64(0))
    rows = ops.bind("trip_count", count, length=T.unbacked_dim())
    idx = ops.ufunc("add", ops.ufunc("multiply", iota(rows.shape[0]), _i64(step)), start)
    return getitem(x, (slice(None),) * axis + (idx,))


def _i64(v):
    return ops.constant(v, np.int64)


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
