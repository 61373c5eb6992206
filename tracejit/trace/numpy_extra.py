"""numpy functions that real kernels call and that are plain numpy code over other numpy functions: ``gradient``,
``cov``, ``corrcoef``, ``select``, ``piecewise``, ``isin``/``in1d``, ``apply_along_axis``. Each is written here
as numpy code on tracers (so it fuses and differentiates like the user's own code) and registered in
numpy_api.IMPLS, which hands it Values and takes a Value back."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from .numpy_api import impl


def _on_tracers(f):
    """An IMPLS entry (Values in, Values out) from numpy code on tracers."""
    def entry(*args, **kwargs):
        from .tracer import unwrap, wrap
        return unwrap(f(*wrap(args), **{k: wrap(v) for k, v in kwargs.items()}))
    entry.__name__ = f.__name__
    entry.__doc__ = f.__doc__
    entry.takes_scalars = True  # arguments arrive as given (a function, a list of conditions), wrapped here
    return entry


def _float(x):
    return x if x.dtype.kind in "fc" else x.astype(np.float64)


# ------------------------------------------------------------------------------------------------ gradient
def _gradient_1(f, axis, h, edge_order):
    """numpy.gradient along one axis with uniform spacing ``h``: central differences inside, one-sided ones at the
    edges (first order, or second order with ``edge_order=2``)."""
    def cut(lo, hi):
        key = [slice(None)] * f.ndim
        key[axis] = slice(lo, hi)
        return f[tuple(key)]
    n = f.shape[axis]
    if isinstance(n, int) and n < edge_order + 1:
        raise ValueError("Shape of array too small to calculate a numerical gradient, at least (edge_order + 1) "
                         "elements are required.")
    inner = (cut(2, None) - cut(None, -2)) / (2.0 * h)
    if edge_order == 1:
        first = (cut(1, 2) - cut(0, 1)) / h
        last = (cut(-1, None) - cut(-2, -1)) / h
    else:
        first = (-1.5 * cut(0, 1) + 2.0 * cut(1, 2) - 0.5 * cut(2, 3)) / h
        last = (0.5 * cut(-3, -2) - 2.0 * cut(-2, -1) + 1.5 * cut(-1, None)) / h
    return np.concatenate([first, inner, last], axis=axis)


@impl("gradient")
@_on_tracers
def gradient(f, *varargs, axis=None, edge_order=1):
    """numpy.gradient with scalar (uniform) spacings."""
    if edge_order not in (1, 2):
        raise ValueError("'edge_order' greater than 2 not supported")
    f = _float(f)
    axes = tuple(range(f.ndim)) if axis is None else (axis,) if np.ndim(axis) == 0 else tuple(axis)
    axes = tuple(ops.normalize_axis(a, f.ndim)[0] for a in axes)
    if len(varargs) == 0:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1:
        spacing = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        spacing = list(varargs)
    else:
        raise TypeError("invalid number of arguments")
    if any(np.ndim(h) != 0 for h in spacing):
        raise UnsupportedError("np.gradient with coordinate arrays (non-uniform spacing) is not supported by "
                               "tracejit; pass scalar spacings")
    out = [_gradient_1(f, a, h, edge_order) for a, h in zip(axes, spacing)]
    return out[0] if len(out) == 1 else tuple(out)


# ------------------------------------------------------------------------------------------------ cov, corrcoef
@impl("cov")
@_on_tracers
def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, dtype=None):
    """numpy.cov without weights: variables in rows (``rowvar``), observations in columns."""
    if fweights is not None or aweights is not None:
        raise UnsupportedError("np.cov with fweights/aweights is not supported by tracejit")
    if m.ndim > 2:
        raise ValueError("m has more than 2 dimensions")
    x = _float(np.atleast_2d(m))
    if not rowvar and x.shape[0] != 1:
        x = x.T
    if y is not None:
        y = _float(np.atleast_2d(y))
        if not rowvar and y.shape[0] != 1:
            y = y.T
        x = np.concatenate([x, y], axis=0)
    if dtype is not None:
        x = x.astype(dtype)
    if ddof is None:
        ddof = 0 if bias else 1
    x = x - x.mean(axis=1, keepdims=True)
    c = (x @ x.T) / (x.shape[1] - ddof)
    return c.squeeze()


@impl("corrcoef")
@_on_tracers
def corrcoef(x, y=None, rowvar=True, dtype=None):
    """numpy.corrcoef: the covariance scaled by the standard deviations, clipped to [-1, 1]."""
    c = np.cov(x, y, rowvar, dtype=dtype)
    if c.ndim == 0:
        return c / c
    d = np.sqrt(np.diagonal(c))
    return np.clip(c / d[:, None] / d[None, :], -1.0, 1.0)


# ------------------------------------------------------------------------------------------------ choices
@impl("select")
@_on_tracers
def select(condlist, choicelist, default=0):
    """numpy.select: the first true condition's choice, else ``default``."""
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if len(choicelist) == 0:
        raise ValueError("select with an empty condition list is not possible")
    for c in condlist:
        if getattr(c, "dtype", None) != np.bool_ and np.asarray(c).dtype != np.bool_:
            raise TypeError("invalid entry in condlist: should be boolean ndarray")
    dtype = np.result_type(*[getattr(c, "dtype", c) for c in choicelist], getattr(default, "dtype", default))
    out = np.asarray(default, dtype) if not hasattr(default, "_tj_value") else default.astype(dtype)
    for cond, choice in zip(reversed(condlist), reversed(choicelist)):
        out = np.where(cond, choice, out).astype(dtype)
    return out


@impl("piecewise")
@_on_tracers
def piecewise(x, condlist, funclist, *args, **kw):
    """numpy.piecewise. Each function is evaluated on the whole array and its values kept where its condition
    holds (numpy calls it on the selected elements only: the same result for elementwise functions)."""
    if not isinstance(condlist, (list, tuple)) or (len(condlist) and np.ndim(condlist[0]) == 0 and x.ndim):
        condlist = [condlist]
    n = len(condlist)
    if len(funclist) not in (n, n + 1):
        raise ValueError(f"with {n} condition(s), either {n} or {n + 1} functions are expected")
    if len(funclist) == n + 1:  # the last function applies where no condition holds
        other = ~np.any(np.stack([np.broadcast_to(c, x.shape) for c in condlist]), axis=0)
        condlist = list(condlist) + [other]
    out = np.zeros_like(x)
    for cond, fn in zip(condlist, funclist):
        vals = fn(x, *args, **kw) if callable(fn) else fn
        out = np.where(cond, np.asarray(vals) if not hasattr(vals, "_tj_value") else vals, out).astype(x.dtype)
    return out


# ------------------------------------------------------------------------------------------------ membership
@impl("isin")
@_on_tracers
def isin(element, test_elements, assume_unique=False, invert=False, kind=None):
    """numpy.isin by comparing every element with every test element (test sets in kernels are small)."""
    tests = np.ravel(test_elements)
    hit = np.any(np.expand_dims(element, -1) == tests, axis=-1)
    return ~hit if invert else hit


@impl("in1d")
@_on_tracers
def in1d(ar1, ar2, assume_unique=False, invert=False, kind=None):
    return np.isin(np.ravel(ar1), ar2, invert=invert)


# ------------------------------------------------------------------------------------------------ apply_along_axis
@impl("apply_along_axis")
@_on_tracers
def apply_along_axis(func1d, axis, arr, *args, **kwargs):
    """numpy.apply_along_axis, as ``vmap`` of ``func1d`` over every other axis (one trace of func1d, not one call
    per slice); the function's result axes take ``axis``'s place, as numpy puts them."""
    from ..vectorize import vmap
    axis = ops.normalize_axis(axis, arr.ndim)[0]
    moved = np.moveaxis(arr, axis, -1)
    outer = moved.shape[:-1]
    rows = moved.reshape((-1, moved.shape[-1]))
    res = vmap(lambda r: func1d(r, *args, **kwargs))(rows)
    res = res.reshape(tuple(outer) + tuple(res.shape[1:]))
    k = res.ndim - len(outer)  # the result axes of one call
    return np.moveaxis(res, tuple(range(len(outer), res.ndim)), tuple(range(axis, axis + k))) if k else res


# ------------------------------------------------------------------------------------------------ fmod, nanarg*
@impl("fmod")
@_on_tracers
def fmod(x1, x2, out=None, **kw):
    """C's fmod (the remainder takes the dividend's sign), from numpy's remainder (the divisor's sign): floats
    as copysign(remainder(|x1|, |x2|), x1), exact as fmod is; integers move a nonzero remainder whose sign
    differs from x1's back by x2 (x2 == 0 gives 0, as numpy)."""
    if out is not None or kw:
        raise UnsupportedError("np.fmod: out=, where= and other ufunc keywords are not supported by tracejit")
    r = np.remainder(x1, x2)
    if r.dtype.kind == "f":
        return np.copysign(np.remainder(np.abs(x1), np.abs(x2)), x1).astype(r.dtype)
    if r.dtype.kind in "ub":
        return r
    return np.where((r != 0) & ((r < 0) != (x1 < 0)), r - x2, r).astype(r.dtype)


def _nanarg(name, a, axis, out, keepdims):
    if out is not None:
        raise UnsupportedError(f"np.{name}: the out= argument is not supported by tracejit")
    if a.dtype.kind not in "fc":
        return getattr(np, name[3:])(a, axis=axis, keepdims=keepdims)
    nan = np.isnan(a)
    fill = -np.inf if name == "nanargmax" else np.inf
    from .tracer import unwrap
    all_nan = nan.all(axis=axis)
    ops.add_check(unwrap(all_nan.any()), ValueError, "All-NaN slice encountered")
    return getattr(np, name[3:])(np.where(nan, fill, a), axis=axis, keepdims=keepdims)


@impl("nanargmax")
@_on_tracers
def nanargmax(a, axis=None, out=None, *, keepdims=False):
    """numpy's nanargmax: argmax with nan read as -inf; an all-nan slice raises ValueError at run time."""
    return _nanarg("nanargmax", a, axis, out, keepdims)


@impl("nanargmin")
@_on_tracers
def nanargmin(a, axis=None, out=None, *, keepdims=False):
    """numpy's nanargmin: argmin with nan read as +inf; an all-nan slice raises ValueError at run time."""
    return _nanarg("nanargmin", a, axis, out, keepdims)


# ------------------------------------------------------------------------------------------------ vander, insert
@impl("vander")
@_on_tracers
def vander(x, N=None, increasing=False):
    """numpy.vander: columns x**(N-1) ... x**0 (reversed with ``increasing``), by repeated multiplication as numpy
    computes them (so float results agree to the bit)."""
    if x.ndim != 1:
        raise ValueError("x must be a one-dimensional array or sequence.")
    n = x.shape[0] if N is None else N
    cols = np.ones_like(x)[:, None] * np.ones(n, dtype=x.dtype)  # (len, N) of ones
    powers = np.multiply.accumulate(np.concatenate([cols[:, :1], cols[:, 1:] * x[:, None]], axis=1), axis=1)
    return powers if increasing else powers[:, ::-1]


@impl("insert")
@_on_tracers
def insert(arr, obj, values, axis=None):
    """numpy.insert at static positions (an int, a slice or a sequence of ints): the pieces between the positions
    and the inserted values, concatenated along ``axis`` (None: the flattened array)."""
    if axis is None:
        arr, axis = arr.ravel(), 0
    axis = axis % arr.ndim if arr.ndim else 0
    n = arr.shape[axis]
    if isinstance(obj, slice):
        if not isinstance(n, int):
            raise UnsupportedError("np.insert with a slice needs a static length along the axis in tracejit")
        obj = list(range(*obj.indices(n)))
    if hasattr(obj, "_tj_value"):
        raise UnsupportedError("np.insert: the positions must be static (Python ints) in tracejit")
    scalar = np.ndim(obj) == 0
    idx = [int(obj)] if scalar else [int(i) for i in np.asarray(obj).ravel()]
    if isinstance(n, int):
        for i in idx:
            if not -n <= i <= n:
                raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
        idx = [i + n if i < 0 else i for i in idx]
    elif any(i < 0 for i in idx) and not all(i < 0 for i in idx):  # order unknown until the length is
        raise UnsupportedError("np.insert: positions mixing negative and nonnegative ints need a static length "
                               "along the axis in tracejit")
    vals = np.asarray(values, dtype=arr.dtype) if not hasattr(values, "_tj_value") else values.astype(arr.dtype)
    moved = np.moveaxis(arr, axis, 0)
    if scalar:  # numpy: values shaped like arr without the axis, or with that axis first
        v = vals if vals.ndim == moved.ndim else vals[None] if vals.ndim < moved.ndim else vals
        v = np.broadcast_to(v, (v.shape[0] if vals.ndim == moved.ndim else 1,) + moved.shape[1:])
        pieces = [moved[:idx[0]], v, moved[idx[0]:]]
        return np.moveaxis(np.concatenate(pieces, 0), 0, axis)
    k = len(idx)
    v = np.broadcast_to(np.moveaxis(vals, axis, 0) if vals.ndim == arr.ndim else vals.reshape(
        (-1,) + (1,) * (moved.ndim - 1)) if vals.ndim == 1 else vals, (k,) + moved.shape[1:])
    order = sorted(range(k), key=lambda j: idx[j])  # stable, as numpy's
    pieces, prev = [], None  # (slices with negative bounds count from the end, symbolic lengths too)
    for j in order:
        pieces += [moved[prev:idx[j]], v[j:j + 1]]
        prev = idx[j]
    pieces.append(moved[prev:])
    return np.moveaxis(np.concatenate(pieces, 0), 0, axis)


@impl("polyval")
@_on_tracers
def polyval(p, x):
    """numpy.polyval by Horner's rule, as numpy evaluates it (``p`` of static length, highest power first)."""
    if np.ndim(p) != 1 or not isinstance(np.shape(p)[0], int):
        raise UnsupportedError("np.polyval: the coefficients must be a 1-d array of static length in tracejit")
    y = np.zeros_like(x) if hasattr(x, "_tj_value") else np.zeros_like(np.asarray(x, dtype=float))
    for k in range(np.shape(p)[0]):
        y = y * x + p[k]
    return y
