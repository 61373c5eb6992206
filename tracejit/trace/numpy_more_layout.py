"""More numpy functions on traced values (issue 14), continued: splitting, stacking, grids, triangles, diagonals,
kron and cross. Decompositions into existing IR primitives, as in ``numpy_more``."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from ..ir.graph import Value
from .numpy_api import IMPLS, concatenate, impl, ravel
from .numpy_more import _along, _ax, _cut, _dimv, _int, _list_args, _sl, _u, _v, iota


# ------------------------------------------------------------------------------------------------ split, stack
@impl("array_split")
def array_split(ary, indices_or_sections, axis=0):
    """numpy.array_split. A static count N of a symbolic length n gives pieces of (n + N - 1 - i) // N: the
    first n % N one longer, as numpy; static split points are clamped slices."""
    ax = _ax(axis, ary.ndim)
    n = ary.shape[ax]
    ios = indices_or_sections
    if isinstance(ios, Value):
        if not ios.is_const:
            raise UnsupportedError("np.split/np.array_split: traced split points give data-dependent shapes; pass "
                                   "static ints")
        ios = ios.const.tolist()
    if isinstance(ios, (int, np.integer)) and not isinstance(ios, bool):
        N = int(ios)
        if N <= 0:
            raise ValueError("number sections must be larger than 0.")
        out, start = [], 0
        for i in range(N):
            ln = T.dim_floordiv(n + (N - 1 - i), N)
            out.append(_cut(ary, ax, start, ln))
            start = start + ln
        return out
    bounds = [None] + [_int(b, "split index") for b in ios] + [None]
    return [_sl(ary, ax, a, b) for a, b in zip(bounds[:-1], bounds[1:])]


@impl("split")
def split(ary, indices_or_sections, axis=0):
    """numpy.split: array_split that requires equal pieces (checked at run time for a symbolic length)."""
    ios = indices_or_sections
    if isinstance(ios, (int, np.integer)) and not isinstance(ios, bool):
        ax = _ax(axis, ary.ndim)
        n, N = ary.shape[ax], int(ios)
        if N <= 0:
            raise ValueError("number sections must be larger than 0.")
        if isinstance(n, int):
            if n % N:
                raise ValueError("array split does not result in an equal division")
        else:
            ops.current().constraints.append(Constraint.same(
                n, N * T.dim_floordiv(n, N), "array split does not result in an equal division"))
            return [_cut(ary, ax, i * T.dim_floordiv(n, N), T.dim_floordiv(n, N)) for i in range(N)]
    return array_split(ary, ios, axis)


def _atleast(x, nd):
    x = _v(x)
    if x.ndim >= nd:
        return x
    if nd == 1:
        return ops.reshape(x, (1,))
    if nd == 2:
        return ops.reshape(x, (1,) * (2 - x.ndim) + x.shape)
    if x.ndim == 0:
        return ops.reshape(x, (1, 1, 1))
    if x.ndim == 1:
        return ops.reshape(x, (1,) + x.shape + (1,))
    return ops.reshape(x, x.shape + (1,))


def _make_atleast(nd):
    def f(*arys):
        res = [_atleast(a, nd) for a in arys]
        return res[0] if len(res) == 1 else tuple(res)
    f.__name__ = f"atleast_{nd}d"
    f.__doc__ = f"numpy.atleast_{nd}d: a reshape (one array) or a tuple of them."
    return _list_args(f)


for _nd in (1, 2, 3):
    IMPLS[f"atleast_{_nd}d"] = _make_atleast(_nd)


def _seq(tup, name):
    if isinstance(tup, Value) or not isinstance(tup, (list, tuple)):
        raise TypeError(f"arrays to stack must be passed as a \"sequence\" type such as list or tuple (np.{name})")
    return [_v(t) for t in tup]


@impl("hstack")
@_list_args
def hstack(tup, *, dtype=None, casting="same_kind"):
    arrs = [_atleast(a, 1) if a.ndim == 0 else a for a in _seq(tup, "hstack")]
    return concatenate(arrs, axis=0 if arrs and arrs[0].ndim == 1 else 1, dtype=dtype, casting=casting)


@impl("vstack", "row_stack")
@_list_args
def vstack(tup, *, dtype=None, casting="same_kind"):
    return concatenate([_atleast(a, 2) for a in _seq(tup, "vstack")], axis=0, dtype=dtype, casting=casting)


@impl("dstack")
@_list_args
def dstack(tup):
    return concatenate([_atleast(a, 3) for a in _seq(tup, "dstack")], axis=2)


@impl("column_stack")
@_list_args
def column_stack(tup):
    arrs = []
    for a in _seq(tup, "column_stack"):
        arrs.append(ops.reshape(a, a.shape + (1,)) if a.ndim < 2 else a)
    return concatenate([_atleast(a, 2) for a in arrs], axis=1)


@impl("meshgrid")
@_list_args
def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """numpy.meshgrid: reshapes (sparse) or broadcasts of the raveled inputs."""
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    xs = [ravel(_v(x)) for x in xi]
    nd = len(xs)
    out = []
    for i, x in enumerate(xs):
        shape = [1] * nd
        shape[i] = x.shape[0]
        if indexing == "xy" and nd > 1 and i < 2:
            shape[0], shape[1] = shape[1], shape[0]
        out.append(ops.reshape(x, tuple(shape)))
    if not sparse and nd:
        full = T.broadcast_shapes(*[o.shape for o in out])
        out = [ops.broadcast_to(o, full) for o in out]
    return tuple(out)


@impl("indices")
@_list_args
def indices(dimensions, dtype=int, sparse=False):
    """numpy.indices for static or symbolic lengths (x.shape): one iota per axis, broadcast unless sparse."""
    dims = tuple(dimensions)
    dt = T.check_dtype(dtype, "np.indices's dtype=")
    nd = len(dims)
    grids = [ops.convert(_along(iota(d), i, nd), dt) for i, d in enumerate(dims)]
    if sparse:
        return tuple(grids)
    if nd == 0:
        return ops.constant(np.zeros((0,), dt))
    return concatenate([ops.reshape(ops.broadcast_to(g, dims), (1,) + dims) for g in grids], axis=0)


# ------------------------------------------------------------------------------------------------ triangles, diagonals
def _tri_mask(n, m, k):
    """(n, m) bool: column - row >= k."""
    i = _along(iota(n), 0, 2)
    j = _along(iota(m), 1, 2)
    return _u("greater_equal", _u("subtract", j, i), _int(k, "k"))


def _make_tri(name):
    def f(m, k=0):
        if m.ndim == 0:
            raise ValueError("input must be at least 1-d" if name else "")
        shp = m.shape[-2:] if m.ndim >= 2 else (m.shape[0], m.shape[0])
        if name == "triu":
            mask = _tri_mask(shp[0], shp[1], k)
        else:
            mask = _u("logical_not", _tri_mask(shp[0], shp[1], _int(k, "k") + 1))
        return _u("where", mask, m, ops.constant(0, m.dtype))
    f.__name__ = name
    f.__doc__ = f"numpy.{name}: a where() on a mask of column - row comparisons (fuses with its consumer)."
    return f


IMPLS["triu"] = _make_tri("triu")
IMPLS["tril"] = _make_tri("tril")


@impl("diagonal")
def diagonal(a, offset=0, axis1=0, axis2=1):
    """numpy.diagonal: a gather from the two axes raveled into one, at ``start + i * (n2 + 1)``."""
    if a.ndim < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    a1, a2 = _ax(axis1, a.ndim), _ax(axis2, a.ndim)
    if a1 == a2:
        raise ValueError("axis1 and axis2 cannot be the same")
    k = _int(offset, "offset")
    rest = [i for i in range(a.ndim) if i not in (a1, a2)]
    x = ops.transpose(a, tuple(rest) + (a1, a2))
    n1, n2 = x.shape[-2:]
    if k >= 0:
        ln = T.dim_max(T.dim_min(n1, n2 - k), 0)
        start = _dimv(T.dim_min(k, n2))
    else:
        ln = T.dim_max(T.dim_min(n1 + k, n2), 0)
        start = _u("multiply", _dimv(T.dim_min(-k, n1)), _dimv(n2))
    flat = ops.reshape(x, x.shape[:-2] + (n1 * n2,))
    pos = _u("add", start, _u("multiply", iota(ln), _u("add", _dimv(n2), 1)))
    return ops.bind("gather", flat, pos, axis=flat.ndim - 1)


@impl("diag")
def diag(v, k=0):
    """numpy.diag: the k-th diagonal of a 2-D array, or a square array with a 1-D ``v`` on its k-th diagonal (a
    where() on column - row == k over a gather of v, padded by one zero so no position is out of range)."""
    k = _int(k, "k")
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ValueError("Input must be 1- or 2-d.")
    n = v.shape[0]
    N = n + abs(k)
    i = _along(iota(N), 0, 2)
    j = _along(iota(N), 1, 2)
    src = i if k >= 0 else j
    vz = ops.bind("concatenate", v, ops.constant(np.zeros(1, v.dtype)), axis=0)
    g = ops.bind("gather", vz, _u("minimum", src, _dimv(n)), axis=0)
    return _u("where", _u("equal", _u("subtract", j, i), k), g, ops.constant(0, v.dtype))


@impl("trace")
def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """numpy.trace: the sum of diagonal()."""
    return IMPLS["sum"](diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype, out=out)


# ------------------------------------------------------------------------------------------------ kron, cross
@impl("kron")
def kron(a, b):
    """numpy.kron: the outer product with interleaved axes, merged pairwise."""
    b = _v(b)
    nd = max(a.ndim, b.ndim)
    a = ops.reshape(a, (1,) * (nd - a.ndim) + a.shape)
    b = ops.reshape(b, (1,) * (nd - b.ndim) + b.shape)
    sa, sb = [], []
    for da, db in zip(a.shape, b.shape):
        sa += [da, 1]
        sb += [1, db]
    p = _u("multiply", ops.reshape(a, tuple(sa)), ops.reshape(b, tuple(sb)))
    return ops.reshape(p, tuple(da * db for da, db in zip(a.shape, b.shape)))


@impl("cross")
def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """numpy.cross of 2- and 3-vectors: component slices combined elementwise."""
    b = _v(b)
    if axis is not None:
        axisa = axisb = axisc = axis
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("At least one array has zero dimension")
    a = ops.transpose(a, _to_last(_ax(axisa, a.ndim), a.ndim))
    b = ops.transpose(b, _to_last(_ax(axisb, b.ndim), b.ndim))
    na, nb = _vector_len(a.shape[-1]), _vector_len(b.shape[-1])
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("incompatible dimensions for cross product\n(dimension must be 2 or 3)")
    dt = T.result_dtype(a.type, b.type)[0]
    if dt == T.BOOL:
        raise TypeError("numpy boolean subtract, the `-` operator, is not supported, use the bitwise_xor, the `^` "
                        "operator, or the logical_xor function instead.")
    a, b = ops.convert(a, dt), ops.convert(b, dt)
    ca = [ops.reshape(_cut(a, a.ndim - 1, i, 1), a.shape[:-1]) for i in range(na)]
    cb = [ops.reshape(_cut(b, b.ndim - 1, i, 1), b.shape[:-1]) for i in range(nb)]
    zero = ops.constant(0, dt)
    ca += [zero] * (3 - na)
    cb += [zero] * (3 - nb)
    z = _u("subtract", _u("multiply", ca[0], cb[1]), _u("multiply", ca[1], cb[0]))
    if na == 2 and nb == 2:
        return z
    x = _u("subtract", _u("multiply", ca[1], cb[2]), _u("multiply", ca[2], cb[1]))
    y = _u("subtract", _u("multiply", ca[2], cb[0]), _u("multiply", ca[0], cb[2]))
    shape = T.broadcast_shapes(x.shape, y.shape, z.shape, constraints=ops.current().constraints)
    out = concatenate([ops.reshape(ops.broadcast_to(c, shape), shape + (1,)) for c in (x, y, z)], axis=len(shape))
    return ops.transpose(out, _from_last(_ax(axisc, out.ndim), out.ndim))


def _vector_len(n):
    """A cross-product vector length, which picks the formula: under jit a symbolic one is specialized on (guarded);
    inside transformations without guards it is taken as 3 and checked at run time."""
    if isinstance(n, int):
        return n
    from . import guards
    if guards.current() is not None:  # a jit trace: specialize on the length (a guard picks the entry per call)
        return guards.dim_value(n)
    ops.current().constraints.append(Constraint.same(n, 3, (
        "np.cross in tracejit: the vector axis had a symbolic length when traced, taken as 3, but it is {a} at run "
        "time; for 2-vectors append a zero component (np.pad(v, [(0, 0), (0, 1)])) and take [..., 2] of the result")))
    return 3


def _to_last(ax, nd):
    return tuple(i for i in range(nd) if i != ax) + (ax,)


def _from_last(ax, nd):
    perm = list(range(nd - 1))
    perm.insert(ax, nd - 1)
    return tuple(perm)
