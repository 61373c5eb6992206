"""np.sort / np.argsort of complex traced arrays: numpy's lexicographic order (real part first, then imaginary),
after numpy's nan classes ``R + Rj < R + nanj < nan + Rj < nan + nanj`` (a stable lexsort of the class, the real
part and the imaginary part)."""
from __future__ import annotations

import numpy as np

from .complex_functions import COMPLEX_IMPLS, _unary, make


def _order(z, axis, what):
    a, b, dt = _unary(z)
    b = np.zeros_like(a) if b is None else b
    if axis is None:
        a, b, axis = np.ravel(a), np.ravel(b), -1
    if np.ndim(a) == 0:
        raise np.exceptions.AxisError(axis, 0)
    nan_class = 2 * np.isnan(a).astype(np.int8) + np.isnan(b).astype(np.int8)
    return a, b, dt, axis, np.lexsort((b, a, nan_class), axis=axis)


def sort(a, axis=-1, kind=None, order=None, *, stable=None):
    if order is not None:
        raise ValueError("Cannot specify order when the array has no fields.")
    re, im, dt, axis, perm = _order(a, axis, "sort")
    return make(np.take_along_axis(re, perm, axis), np.take_along_axis(im, perm, axis), dt)


def argsort(a, axis=-1, kind=None, order=None, *, stable=None):
    """The stable order (numpy's default kind may order equal values otherwise)."""
    if order is not None:
        raise ValueError("Cannot specify order when the array has no fields.")
    return _order(a, axis, "argsort")[-1]


COMPLEX_IMPLS["sort"] = sort
COMPLEX_IMPLS["argsort"] = argsort
