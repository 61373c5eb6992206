"""``x[mask]``: a selection whose length only the data decides, kept lazy while it is only written back.

In ``x[mask] -= L``, ``x[x > t] *= 2`` or ``z[mask] = y[mask]`` the selection is only computed with element by
element and written back through the same mask, so the whole computation runs on every element and is merged with
``where(mask, new, x)``: the shape is kept and no compaction runs. ``MaskedSelection`` stands for the selection
while it is used that way; any other use (a reduction, its shape, a return, an operation with another array)
materializes it: the selected elements, a gather by ``np.flatnonzero(mask)`` whose length is a data-dependent
(unbacked) dim (trace/numpy_sorting.py).
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.graph import Value


class MaskedSelection:
    """The elements of ``full`` where ``mask`` holds (``full`` has the masked array's shape)."""

    __slots__ = ("full", "mask")
    __array_priority__ = 2000

    def __init__(self, full: Value, mask: Value):
        self.full, self.mask = full, mask

    @property
    def _tj_value(self) -> Value:
        """The selected elements as an array (materialized on first use other than a write back)."""
        from .numpy_sorting import select_by_mask
        return select_by_mask(self.full, self.mask)

    def tracer(self):
        from .tracer import wrap
        return wrap(self._tj_value)

    def _lazy_operand(self, o):
        """``o`` as an operand computed on every element (a selection by the same mask, or a scalar), else None."""
        if isinstance(o, MaskedSelection):
            return o.full if o.mask is self.mask else None
        v = ops.as_value(o)
        if any(d != 1 for d in v.shape):
            return None
        return ops.reshape(v, ())

    def _apply(self, name, args):
        from .tracer import call_numpy
        from .tracer import wrap
        vals = [self.full if a is self else self._lazy_operand(a) for a in args]
        if any(v is None for v in vals):  # an array operand: compute on the selected elements themselves
            return call_numpy(name, [_materialized(a) for a in args], {})
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
    __lt__, __le__, __gt__, __ge__ = _bin("less"), _bin("less_equal"), _bin("greater"), _bin("greater_equal")
    __eq__, __ne__ = _bin("equal"), _bin("not_equal")
    __hash__ = None
    del _bin

    def __neg__(self):
        return self._apply("negative", [self])

    def __abs__(self):
        return self._apply("absolute", [self])

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs or ufunc.nout != 1:
            return getattr(ufunc, method)(*[_materialized(a) for a in inputs], **kwargs)
        return self._apply(ufunc.__name__, list(inputs))

    def __array_function__(self, func, types, args, kwargs):
        from .tracer import call_numpy
        return call_numpy(func.__name__, [_materialized(a) for a in args], kwargs)

    def __array__(self, dtype=None, copy=None):
        return self.tracer().__array__(dtype)

    def __bool__(self):
        return bool(self.tracer())

    def __len__(self):
        return len(self.tracer())

    def __iter__(self):
        return iter(self.tracer())

    def __getitem__(self, key):
        return self.tracer()[key]

    def __matmul__(self, other):
        return self.tracer() @ _materialized(other)

    def __rmatmul__(self, other):
        return _materialized(other) @ self.tracer()

    def __getattr__(self, name):  # .sum(), .shape, .mean(), .astype(), ...
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.tracer(), name)


def _materialized(a):
    return a.tracer() if isinstance(a, MaskedSelection) else a


def write_back(x: Value, mask: Value, sel: MaskedSelection) -> Value:
    """``x[mask] = sel`` where ``sel`` was computed from a selection by the same mask."""
    if sel.mask is not mask:  # the selected values, in order, into the other mask's true elements
        from .numpy_sorting import masked_assign
        return masked_assign(x, mask, sel._tj_value)
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
