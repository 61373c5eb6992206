"""``x[mask]`` read only to be written back: ``x[mask] -= L``, ``x[x > t] *= 2``, ``z[mask] = y[mask]``.

A mask read has a length known only from the data, which tracejit does not trace yet. But in these statements the
selection is only computed with element by element and written back through a mask, so the whole computation can
run on every element and be merged with ``where(mask, new, x)``: the shape is kept. ``MaskedSelection`` stands for
the selection while it is used that way; any other use (a reduction, its shape, a return) raises an error that
names the line and the way out.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir.graph import Value
from . import guards


def _refuse(what):
    return UnsupportedError(
        f"x[mask] has a length that depends on the data; tracejit supports it only inside a write back through a "
        f"mask (x[mask] = ..., x[mask] -= v, z[mask] = y[mask] * 2), not {what} (at {guards.user_line()}). Keep "
        f"the shape instead: np.where(mask, x, 0), (x * mask).sum() or np.count_nonzero(mask)")


class MaskedSelection:
    """The elements of ``full`` where ``mask`` holds (``full`` has the masked array's shape)."""

    __slots__ = ("full", "mask")
    __array_priority__ = 2000

    def __init__(self, full: Value, mask: Value):
        self.full, self.mask = full, mask

    def _other(self, o):
        if isinstance(o, MaskedSelection):
            if o.mask is not self.mask:
                raise _refuse("an operation between selections by different masks")
            return o.full
        v = ops.as_value(o._tj_value if hasattr(o, "_tj_value") else o)
        if any(d != 1 for d in v.shape):
            raise _refuse(f"an operation with an array of shape {v.shape}")
        return ops.reshape(v, ())

    def _apply(self, name, args):
        from .tracer import call_numpy
        from .tracer import wrap
        vals = [self.full if a is self else self._other(a) for a in args]
        out = call_numpy(name, [wrap(v) for v in vals], {})
        return MaskedSelection(out._tj_value, self.mask)

    def _bin(name, reflected=False):
        def f(self, other):
            return self._apply(name, [other, self] if reflected else [self, other])
        return f

    __add__, __radd__ = _bin("add"), _bin("add", True)
    __sub__, __rsub__ = _bin("subtract"), _bin("subtract", True)
    __mul__, __rmul__ = _bin("multiply"), _bin("multiply", True)
    __truediv__, __rtruediv__ = _bin("divide"), _bin("divide", True)
    __floordiv__, __rfloordiv__ = _bin("floor_divide"), _bin("floor_divide", True)
    __mod__, __rmod__ = _bin("remainder"), _bin("remainder", True)
    __pow__, __rpow__ = _bin("power"), _bin("power", True)
    __and__, __or__, __xor__ = _bin("bitwise_and"), _bin("bitwise_or"), _bin("bitwise_xor")
    del _bin

    def __neg__(self):
        return self._apply("negative", [self])

    def __abs__(self):
        return self._apply("absolute", [self])

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs or ufunc.nout != 1:
            raise _refuse(f"np.{ufunc.__name__}.{method} with keywords")
        return self._apply(ufunc.__name__, list(inputs))

    def __array_function__(self, func, types, args, kwargs):
        raise _refuse(f"np.{func.__name__}")

    def __array__(self, dtype=None, copy=None):
        raise _refuse("a conversion to a numpy array")

    def __bool__(self):
        raise _refuse("bool()")

    def __len__(self):
        raise _refuse("len()")

    def __iter__(self):
        raise _refuse("iteration")

    def __getattr__(self, name):
        raise _refuse(f".{name}")


def write_back(x: Value, mask: Value, sel: MaskedSelection) -> Value:
    """``x[mask] = sel`` where ``sel`` was computed from a selection by the same mask."""
    if sel.mask is not mask:
        raise _refuse("a write through a different mask than the one the values were selected with")
    full = ops.convert(sel.full, x.dtype) if sel.full.dtype != x.dtype else sel.full
    m = ops.reshape(mask, mask.shape + (1,) * (x.ndim - mask.ndim))
    return ops.ufunc("where", m, ops.broadcast_to(full, x.shape), x)


def is_mask_key(key) -> bool:
    k = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    v = getattr(k, "_tj_value", k)
    return (isinstance(v, Value) and v.dtype == np.bool_ and v.ndim > 0) or \
        (isinstance(v, np.ndarray) and v.dtype == np.bool_ and v.ndim > 0)


def mask_of(key) -> Value:
    k = key[0] if isinstance(key, tuple) else key
    return ops.as_value(getattr(k, "_tj_value", k))
