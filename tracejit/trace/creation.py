"""numpy's array constructors inside a traced function: ``np.zeros((n, 2))``, ``np.arange(n)``,
``np.linspace(0, 1, n)``, ``np.eye(n)`` with symbolic lengths.

These functions take no array argument, so numpy's dispatch protocols never reach a tracer: numpy would call
``int(n)`` (which specializes the trace on the length). While a jit trace runs, ``patched`` swaps them on the numpy
module for wrappers that, called from the user's code in the tracing thread, build traced arrays instead: the
lengths stay symbolic, and the result is a traced array the function can write into (``out = np.zeros(n);
out[1:] = ...``). Elsewhere (other threads, numpy's and tracejit's own code) the wrappers call numpy's function.
Code that imported the function by name (``from numpy import zeros``) still works, specialized on the length.
``np.empty`` is ``np.zeros``: reading an element before writing it is the user's bug, never a crash.
"""
from __future__ import annotations

import operator
import sys
import threading

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..ir.types import Dim
from . import guards

_lock = threading.Lock()
_depth = 0
_tracing = threading.local()  # this thread's trace nesting depth
_ORIGINAL: dict = {}


def _shape(shape) -> tuple:
    if isinstance(shape, (int, np.integer, Dim)) or hasattr(shape, "_tj_value"):
        shape = (shape,)
    out = []
    for d in shape:
        d = d if isinstance(d, Dim) else operator.index(d)
        if isinstance(d, int) and d < 0:
            raise ValueError("negative dimensions are not allowed")
        out.append(d)
    return tuple(out)


def _dtype(dtype, default=np.float64):
    dt = np.dtype(default if dtype is None else dtype)
    return T.check_dtype(dt, "the dtype of an array made in the traced function")


def _filled_dtype(dtype, default=np.float64):
    """The dtype of np.zeros/ones/full: a real one tracejit computes in, or complex64/complex128."""
    dt = np.dtype(default if dtype is None else dtype)
    return dt if dt in (np.complex64, np.complex128) else _dtype(dt)


def _filled(shape, value, dtype):
    from .tracer import wrap
    if dtype.kind == "c":  # a complex array is its two parts (complex_array.py)
        from .complex_array import ComplexArray, part_dtype
        v = value if hasattr(value, "_tj_value") or isinstance(value, ComplexArray) else complex(value)
        if isinstance(v, complex):
            return ComplexArray(_filled(shape, v.real, part_dtype(dtype)), _filled(shape, v.imag, part_dtype(dtype)),
                                dtype)
        return ComplexArray(_filled(shape, 0.0, part_dtype(dtype)), _filled(shape, 0.0, part_dtype(dtype)),
                            dtype) + v
    v = ops.as_value(value)
    v = ops.convert(v, dtype) if v.dtype != dtype or v.type.weak else v
    return wrap(ops.broadcast_to(v, _shape(shape)))


def zeros(shape, dtype=float, order="C", *, like=None, device=None):
    return _filled(shape, 0, _filled_dtype(dtype))


def ones(shape, dtype=None, order="C", *, like=None, device=None):
    return _filled(shape, 1, _filled_dtype(dtype))


def full(shape, fill_value, dtype=None, order="C", *, like=None, device=None):
    if dtype is None:
        v = ops.as_value(fill_value)
        dtype = v.dtype if not v.type.weak else np.asarray(fill_value if not hasattr(fill_value, "_tj_value")
                                                           else v.dtype.type(0)).dtype
    return _filled(shape, fill_value, _filled_dtype(dtype))


def arange(start, stop=None, step=None, dtype=None, *, like=None, device=None):
    from .tracer import wrap
    from ..ir.ops import iota
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    if not any(isinstance(a, Dim) for a in (start, stop, step)):
        return wrap(ops.constant(_ORIGINAL["arange"](start, stop, step, dtype=dtype)))
    if not all(isinstance(a, (int, np.integer, Dim)) for a in (start, stop, step)):
        raise TypeError("np.arange with a symbolic length takes integer start, stop and step inside tracejit")
    step = int(step)
    if step == 0:
        raise ZeroDivisionError("division by zero")
    n = _hi0(T.dim_floordiv(stop - start + (step - (1 if step > 0 else -1)), step))
    v = iota(n)
    if step != 1:
        v = ops.ufunc("multiply", v, ops.constant(step, np.int64, weak=True))
    if not (isinstance(start, int) and start == 0):
        v = ops.ufunc("add", v, ops.dimsize(start))
    dt = _dtype(dtype, np.int64)
    return wrap(ops.convert(v, dt) if v.dtype != dt else v)


def _hi0(n):
    if isinstance(n, int):
        return max(n, 0)
    return n if guards.dim_compare(n, ">=", 0) else 0


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *, device=None):
    """numpy's algorithm: ``arange(num) * step + start``, the last element exactly ``stop`` when endpoint."""
    from .tracer import wrap
    if not isinstance(num, Dim) and not any(hasattr(a, "_tj_value") for a in (start, stop)):
        out = _ORIGINAL["linspace"](start, stop, operator.index(num), endpoint, retstep, dtype, axis)
        return (wrap(ops.constant(out[0])), out[1]) if retstep else wrap(ops.constant(out))
    arrays = axis != 0 or np.ndim(start) or np.ndim(stop) or getattr(start, "ndim", 0) or getattr(stop, "ndim", 0)
    if arrays and not isinstance(num, Dim):  # a static count: numpy_more_math's linspace takes arrays and axis=
        from .tracer import call_numpy
        return call_numpy("linspace", [start, stop, num], dict(endpoint=endpoint, retstep=retstep, dtype=dtype,
                                                                axis=axis))
    if arrays:
        raise NotImplementedError("np.linspace with array endpoints or axis= is not supported by tracejit with a "
                                  "symbolic length")
    num = num if isinstance(num, Dim) else operator.index(num)
    if isinstance(num, int) and num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    from ..ir.ops import iota
    f64 = np.dtype(np.float64)
    a = ops.convert(ops.as_value(start), f64)
    b = ops.convert(ops.as_value(stop), f64)
    div = num - 1 if endpoint else num
    divv = ops.convert(ops.dimsize(div), f64)
    delta = ops.ufunc("subtract", b, a)
    safe = ops.ufunc("maximum", divv, ops.constant(1.0, f64))
    step = ops.ufunc("divide", delta, safe)
    i = ops.convert(iota(num), f64)
    y = ops.ufunc("add", ops.ufunc("multiply", i, step), a)
    if endpoint:
        last = ops.ufunc("logical_and", ops.ufunc("equal", i, divv), ops.ufunc("greater", divv, ops.constant(0.0, f64)))
        y = ops.ufunc("where", last, b, y)
    dt = _dtype(dtype, f64)
    y = wrap(ops.convert(y, dt) if dt != f64 else y)
    if retstep:
        return y, wrap(ops.ufunc("where", ops.ufunc("greater", divv, ops.constant(0.0, f64)), step,
                                 ops.constant(np.nan, f64)))
    return y


def eye(N, M=None, k=0, dtype=float, order="C", *, like=None, device=None):
    from .tracer import wrap
    from ..ir.ops import iota
    M = N if M is None else M
    N, M = (d if isinstance(d, Dim) else operator.index(d) for d in (N, M))
    k = operator.index(k)
    rows = ops.reshape(iota(N), (N, 1))
    if k:
        rows = ops.ufunc("add", rows, ops.constant(k, np.int64, weak=True))
    hit = ops.ufunc("equal", rows, ops.reshape(iota(M), (1, M)))
    return wrap(ops.convert(hit, _dtype(dtype)))


def identity(n, dtype=None, *, like=None):
    return eye(n, dtype=float if dtype is None else dtype)


def _fft_freq(name):
    """np.fft.fftfreq/rfftfreq: with a symbolic length (``x.shape[0]``), the traced form of numpy_fft.py."""
    def f(n, d=1.0, device=None):
        if isinstance(n, Dim):
            from . import numpy_fft
            from .tracer import wrap
            return wrap(getattr(numpy_fft, name)(n, d))
        return _ORIGINAL[f"fft.{name}"](n, d)
    return f


_IMPLS = {"zeros": zeros, "ones": ones, "empty": zeros, "full": full, "arange": arange, "linspace": linspace,
          "eye": eye, "identity": identity, "fft.fftfreq": _fft_freq("fftfreq"), "fft.rfftfreq": _fft_freq("rfftfreq")}


def _module_and_attr(name):
    """numpy's module holding ``name`` ("fft.fftfreq": np.fft) and the attribute."""
    mod, _, attr = name.rpartition(".")
    return (getattr(np, mod) if mod else np), attr


def _wrapper(name):
    original = _ORIGINAL[name]
    impl = _IMPLS[name]

    def f(*args, **kwargs):
        if getattr(_tracing, "depth", 0) and _from_user():
            return impl(*args, **kwargs)
        return original(*args, **kwargs)
    f.__name__ = name
    f.__doc__ = original.__doc__
    f.__wrapped__ = original
    return f


def _from_user() -> bool:
    fn = sys._getframe(2).f_code.co_filename
    return not (fn.startswith(guards._PKG) or fn.startswith(guards._NUMPY))


class patched:
    """``with patched(on):`` numpy's constructors build traced arrays for the user's code while a trace runs."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        global _depth
        if not self.on:
            return
        _tracing.depth = getattr(_tracing, "depth", 0) + 1
        with _lock:
            if _depth == 0:
                for name in _IMPLS:
                    mod, attr = _module_and_attr(name)
                    _ORIGINAL.setdefault(name, getattr(mod, attr))
                    setattr(mod, attr, _wrapper(name))
            _depth += 1

    def __exit__(self, *exc):
        global _depth
        if not self.on:
            return
        _tracing.depth -= 1
        with _lock:
            _depth -= 1
            if _depth == 0:
                for name, f in _ORIGINAL.items():
                    mod, attr = _module_and_attr(name)
                    setattr(mod, attr, f)


def _register_like():
    """``np.empty_like`` on a tracer: ``zeros_like`` (reading unwritten elements is the user's bug, not a crash)."""
    from .numpy_api import IMPLS
    if "zeros_like" in IMPLS:
        IMPLS.setdefault("empty_like", IMPLS["zeros_like"])


_register_like()
