"""numpy functions that are a few lines of numpy over others: written here as numpy code on tracers (they fuse and
differentiate like the user's own code) and registered in numpy_api.IMPLS. Real-valued forms; complex input goes
through complex_functions first."""
from __future__ import annotations

import operator

import numpy as np

from ..errors import UnsupportedError
from .numpy_api import impl
from .numpy_extra import _on_tracers


def _register(*names):
    def deco(f):
        return impl(*names)(_on_tracers(f))
    return deco


@_register("angle")
def angle(z, deg=False):
    """A real number's angle: 0, or pi for negative numbers (and -0.0), as arctan2(0, x)."""
    a = np.arctan2(np.zeros_like(z, dtype=np.result_type(z, 1.0)), z)
    return np.rad2deg(a) if deg else a


@_register("fabs")
def fabs(x, out=None, **kw):
    if np.result_type(x).kind in "iub":
        x = x.astype(np.float64) if np.result_type(x).itemsize > 2 or np.result_type(x).kind == "b" else \
            x.astype(np.float16 if np.result_type(x).itemsize == 1 else np.float32)
    return np.abs(x)


@_register("fix")
def fix(x, out=None):
    """Round toward zero, keeping the dtype (numpy's fix: floor above zero, ceil below)."""
    return np.trunc(x)


@_register("iscomplexobj")
def iscomplexobj(x):
    return False  # complex arrays take complex_functions' path


@_register("isrealobj")
def isrealobj(x):
    return True


@_register("isreal")
def isreal(x):
    return np.ones_like(x, dtype=bool)


@_register("iscomplex")
def iscomplex(x):
    return np.zeros_like(x, dtype=bool)


@_register("diagflat")
def diagflat(v, k=0):
    return np.diag(np.ravel(v), k)


@_register("ediff1d")
def ediff1d(ary, to_end=None, to_begin=None):
    d = np.diff(np.ravel(ary))
    parts = ([np.ravel(np.asarray(to_begin, dtype=d.dtype))] if to_begin is not None else []) + [d] + \
        ([np.ravel(np.asarray(to_end, dtype=d.dtype))] if to_end is not None else [])
    return np.concatenate(parts) if len(parts) > 1 else d


@_register("append")
def append(arr, values, axis=None):
    if axis is None:
        return np.concatenate([np.ravel(arr), np.ravel(values)])
    return np.concatenate([arr, values], axis=axis)


@_register("delete")
def delete(arr, obj, axis=None):
    """Remove static positions (an int, a slice or a sequence of ints) along ``axis`` (None: flattened)."""
    if hasattr(obj, "_tj_value"):
        raise UnsupportedError("np.delete: the positions must be static (Python ints, a slice) in tracejit")
    if axis is None:
        arr, axis = np.ravel(arr), 0
    moved = np.moveaxis(arr, axis, 0)
    n = moved.shape[0]
    if isinstance(obj, slice) or np.ndim(obj) != 0:
        n = operator.index(n)  # the positions kept depend on the length: specialized on it (a guard), as len()
        drop = set(range(n)[obj]) if isinstance(obj, slice) else {int(i) % n for i in np.ravel(obj)}
        keep = [i for i in range(n) if i not in drop]
        out = moved[np.array(keep, dtype=np.int64)] if keep else moved[:0]
    else:
        i = int(obj)
        if isinstance(n, int) and not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for axis {axis} with size {n}")
        out = np.concatenate([moved[:i], moved[i + 1:]]) if i != -1 else moved[:-1]
    return np.moveaxis(out, 0, axis)


@_register("trapezoid", "trapz")
def trapezoid(y, x=None, dx=1.0, axis=-1):
    y = np.moveaxis(y, axis, -1)
    if x is None:
        return ((y[..., 1:] + y[..., :-1]) * 0.5).sum(-1) * dx
    d = np.diff(x) if np.ndim(x) == 1 else np.diff(np.moveaxis(x, axis, -1), axis=-1)
    return (d * (y[..., 1:] + y[..., :-1]) * 0.5).sum(-1)


@_register("geomspace")
def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    if np.ndim(start) or np.ndim(stop) or axis:
        raise UnsupportedError("np.geomspace: scalar start and stop only in tracejit")
    out = np.logspace(np.log10(start), np.log10(stop), num, endpoint=endpoint, dtype=dtype)
    return out


def _nan_to(x, fill):
    return np.where(np.isnan(x), fill, x)


@_register("nancumsum")
def nancumsum(a, axis=None, dtype=None, out=None):
    return np.cumsum(_nan_to(a, 0), axis=axis, dtype=dtype)


@_register("nancumprod")
def nancumprod(a, axis=None, dtype=None, out=None):
    return np.cumprod(_nan_to(a, 1), axis=axis, dtype=dtype)


@_register("nanvar")
def nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    return _nanvar(a, axis, ddof, keepdims)


def _nanvar(a, axis, ddof, keepdims):
    ok = ~np.isnan(a)
    n = ok.sum(axis=axis, keepdims=True)
    mean = _nan_to(a, 0).sum(axis=axis, keepdims=True) / n
    sq = np.where(ok, (a - mean) ** 2, 0).sum(axis=axis, keepdims=keepdims)
    count = n if keepdims else ok.sum(axis=axis)
    return sq / np.maximum(count - ddof, 0)


@_register("nanstd")
def nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
    return np.sqrt(_nanvar(a, axis, ddof, keepdims))


def _cumulative(scan, identity, x, axis, dtype, include_initial):
    """numpy 2's cumulative_sum / cumulative_prod: the scan, optionally after the identity element."""
    if axis is None:
        if x.ndim > 1:
            raise ValueError("axis must be specified for multi-dimensional arrays")
        axis = 0
    y = scan(x, axis=axis, dtype=dtype)
    return np.concatenate([identity(np.take(y, [0], axis=axis)), y], axis=axis) if include_initial else y


@_register("cumulative_sum")
def cumulative_sum(x, axis=None, dtype=None, out=None, include_initial=False):
    return _cumulative(np.cumsum, np.zeros_like, x, axis, dtype, include_initial)


@_register("cumulative_prod")
def cumulative_prod(x, axis=None, dtype=None, out=None, include_initial=False):
    return _cumulative(np.cumprod, np.ones_like, x, axis, dtype, include_initial)


@_register("matrix_transpose")
def matrix_transpose(x):
    if x.ndim < 2:
        raise ValueError("Input array must be at least 2-dimensional")
    return np.swapaxes(x, -1, -2)


@_register("vecdot")
def vecdot(x1, x2, axis=-1):
    return (x1 * x2).sum(axis=axis)


@_register("matvec")
def matvec(x1, x2):
    return (x1 @ x2[..., None])[..., 0]


@_register("vecmat")
def vecmat(x1, x2):
    return (x1[..., None, :] @ x2)[..., 0, :]


@_register("unstack")
def unstack(x, axis=0):
    n = operator.index(x.shape[axis])  # as many results as the length: specialized on it (a guard)
    return tuple(np.take(x, i, axis=axis) for i in range(n))


@_register("vector_norm")
def vector_norm(x, axis=None, keepdims=False, ord=2):
    return np.linalg.norm(x if axis is not None else np.ravel(x), ord=ord, axis=axis, keepdims=keepdims) \
        if axis is not None or not keepdims else np.linalg.norm(x, ord=ord, axis=tuple(range(x.ndim)),
                                                                 keepdims=True)


@_register("matrix_norm")
def matrix_norm(x, keepdims=False, ord="fro"):
    return np.linalg.norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


@_register("svdvals")
def svdvals(x):
    return np.linalg.svd(x, compute_uv=False)


@_register("multi_dot")
def multi_dot(arrays, out=None):
    """Left to right (numpy picks the cheapest order; the values agree up to rounding)."""
    result = arrays[0]
    for a in arrays[1:]:
        result = result @ a
    return result


@_register("cond")
def cond(x, p=None):
    """The 2-norm condition number (other ``p`` through the norm of the inverse, as numpy)."""
    if p is None or p == 2 or p == -2:
        s = np.linalg.svd(x, compute_uv=False)
        return s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
    return np.linalg.norm(x, ord=p, axis=(-2, -1)) * np.linalg.norm(np.linalg.inv(x), ord=p, axis=(-2, -1))
