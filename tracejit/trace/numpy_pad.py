"""numpy.pad on traced values (constant, edge, reflect, symmetric, wrap and the statistic modes): each side of each
axis is a concatenation of slices, gathers or broadcast constants, so it fuses and differentiates like the rest of
numpy_more."""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir.graph import Value
from .numpy_api import IMPLS, impl
from .numpy_more import _concat, _dimv, _u, _v


_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap", "empty", "maximum", "minimum", "mean")


@impl("pad")
def pad(array, pad_width, mode="constant", **kwargs):
    """numpy.pad, one axis at a time: constant parts are broadcasts, the other modes gather from the axis at
    positions computed with numpy's periodic rule (so pads longer than the axis repeat as numpy's do)."""
    if callable(mode) or mode not in _PAD_MODES:
        raise UnsupportedError(f"np.pad: mode={mode!r} is not supported by tracejit (supported: "
                               f"{', '.join(_PAD_MODES)})")
    allowed = {"constant": {"constant_values"}, "reflect": {"reflect_type"}, "symmetric": {"reflect_type"},
               "maximum": {"stat_length"}, "minimum": {"stat_length"}, "mean": {"stat_length"}}.get(mode, set())
    bad = set(kwargs) - allowed
    if bad:
        raise ValueError(f"unsupported keyword arguments for mode '{mode}': {bad}")
    if kwargs.get("reflect_type", "even") != "even":
        raise UnsupportedError("np.pad: reflect_type='odd' is not supported by tracejit")
    if kwargs.get("stat_length") is not None:
        raise UnsupportedError("np.pad: stat_length= is not supported by tracejit")
    pw = _pairs(pad_width, array.ndim, "pad_width", integral=True)
    if np.any(pw < 0):
        raise ValueError("index can't contain negative values")
    cv = kwargs.get("constant_values", 0)
    cvals = None
    if mode in ("constant", "empty"):
        cvals = _constant_pairs(cv, array.ndim) if mode == "constant" else [(0, 0)] * array.ndim
    x = array
    for ax in range(array.ndim):
        lo, hi = int(pw[ax, 0]), int(pw[ax, 1])
        if lo == 0 and hi == 0:
            continue
        if cvals is not None:
            x = _pad_const(x, ax, lo, hi, cvals[ax])
        elif mode in ("maximum", "minimum", "mean"):
            x = _pad_stat(x, ax, lo, hi, mode)
        else:
            x = _pad_gather(x, ax, lo, hi, mode)
    return x


def _pairs(w, ndim, what, integral=False):
    arr = np.asarray(w.const if isinstance(w, Value) and w.is_const else w)
    if isinstance(w, Value) and not w.is_const:
        raise UnsupportedError(f"np.pad: a traced {what} gives a data-dependent shape; pass static ints")
    if integral and arr.dtype.kind not in "iu":
        raise TypeError("`pad_width` must be of integral type.")
    try:
        return np.broadcast_to(arr, (ndim, 2))
    except ValueError:
        raise ValueError(f"operands could not be broadcast together with remapped shapes [original->remapped]: "
                         f"{arr.shape} and requested shape ({ndim},2)") from None


def _constant_pairs(cv, ndim):
    if isinstance(cv, Value) and not cv.is_const:
        if cv.ndim == 0:
            return [(cv, cv)] * ndim
        raise UnsupportedError("np.pad: traced constant_values must be a scalar")
    arr = np.asarray(cv.const if isinstance(cv, Value) else cv)
    b = np.broadcast_to(arr, (ndim, 2))
    return [(b[i, 0], b[i, 1]) for i in range(ndim)]


def _pad_const(x, ax, lo, hi, vals):
    parts = []
    for n, v in ((lo, vals[0]), (hi, vals[1])):
        shape = list(x.shape)
        shape[ax] = n
        v = _v(v)
        if v.dtype != x.dtype:  # numpy casts the fill to the array's dtype (unsafe: 1.7 in an int array is 1)
            v = ops.convert(v, x.dtype)
        parts.append(ops.broadcast_to(v, tuple(shape)))
    return _concat([parts[0], x, parts[1]], ax)


def _nonempty_axis(x, ax):
    ops.require_nonempty(x.shape[ax], f"can't extend empty axis {ax} using modes other than 'constant' or 'empty'")


def _pad_gather(x, ax, lo, hi, mode):
    _nonempty_axis(x, ax)
    n = x.shape[ax]
    nv = _dimv(n)
    pos = [ops.constant(np.arange(-lo, 0, dtype=np.int64)), _u("add", nv, ops.constant(np.arange(hi, dtype=np.int64)))]
    parts = [_pad_index(p, nv, mode) for p in pos]
    return _concat([ops.bind("gather", x, parts[0], axis=ax), x, ops.bind("gather", x, parts[1], axis=ax)], ax)


def _pad_index(p, nv, mode):
    """The source position of padded position ``p`` (which may lie outside [0, n)) under ``mode``."""
    if mode == "edge":
        return _u("minimum", _u("maximum", p, 0), _u("subtract", nv, 1))
    if mode == "wrap":
        return _u("remainder", p, nv)
    if mode == "symmetric":  # period 2n: 0..n-1 then n-1..0
        j = _u("remainder", p, _u("multiply", nv, 2))
        return _u("where", _u("less", j, nv), j, _u("subtract", _u("subtract", _u("multiply", nv, 2), 1), j))
    period = _u("maximum", _u("multiply", _u("subtract", nv, 1), 2), 1)  # reflect: period 2(n-1), edge if n == 1
    j = _u("remainder", p, period)
    return _u("where", _u("less", j, nv), j, _u("subtract", period, j))


def _pad_stat(x, ax, lo, hi, mode):
    _nonempty_axis(x, ax)
    red = {"maximum": "max", "minimum": "min"}.get(mode)
    if red:
        s = ops.reduce(red, x, ax, keepdims=True)
    else:
        s = IMPLS["mean"](x, axis=ax, keepdims=True)
        if x.dtype.kind != "f":  # numpy rounds the mean into an integer array
            s = ops.convert(_u("rint", s), x.dtype)
    parts = []
    for n in (lo, hi):
        shape = list(x.shape)
        shape[ax] = n
        parts.append(ops.broadcast_to(s, tuple(shape)))
    return _concat([parts[0], x, parts[1]], ax)
