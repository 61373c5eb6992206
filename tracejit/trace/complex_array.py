"""Traced complex arrays (complex64, complex128) as their two real parts.

A ``ComplexArray`` holds the real and imaginary parts as two traced float arrays (float32 parts for complex64) and
writes every complex operation as real work on them (``(a+bi)(c+di) = (ac-bd) + (ad+bc)i``). The IR, the scalar
table and every backend therefore see only real elementwise work, which fuses as any other (``np.abs(np.exp(1j*x)
* z)`` is one kernel), runs under CUDA and its simulator unchanged, and is differentiated by the real rules.
Complex arguments enter a jitted function as the two parts of the array (``trace.tree_flatten``'s complex node)
and complex results leave it as one numpy complex array. numpy's promotion (NEP 50: complex64 + float64 ->
complex128, Python complex scalars are weak) is computed by numpy itself on stand-in dtypes and Python scalars.

The operations themselves (ufuncs, reductions, matmul, layout functions) are in complex_functions.py.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value
from . import masked

COMPLEX64, COMPLEX128 = np.dtype(np.complex64), np.dtype(np.complex128)
_PY_OF_KIND = {"b": False, "i": 0, "u": 0, "f": 0.0, "c": 0j}  # weak operands, as numpy 2 sees Python scalars


def part_dtype(dt) -> np.dtype:
    """The float dtype of a complex dtype's parts (float32 for complex64)."""
    return T.FLOAT32 if np.dtype(dt) == COMPLEX64 else T.FLOAT64


def complex_of(dt) -> np.dtype:
    """The complex dtype whose parts have float dtype ``dt``."""
    return COMPLEX64 if np.dtype(dt) == T.FLOAT32 else COMPLEX128


def is_complex_dtype(dt) -> bool:
    try:
        return np.dtype(dt).kind == "c"
    except TypeError:
        return False


def check_complex_dtype(dt, what="dtype") -> np.dtype:
    dt = np.dtype(dt)
    if dt not in (COMPLEX64, COMPLEX128):
        raise TypeError(f"{what} {dt} is not supported by tracejit; use complex64 or complex128")
    return dt


class Operand:
    """One operand of a complex operation: its parts (``im`` None for a real operand), its dtype and weakness."""

    __slots__ = ("re", "im", "dtype", "weak")

    def __init__(self, re, im, dtype, weak):
        self.re, self.im, self.dtype, self.weak = re, im, np.dtype(dtype), weak


def operand(x) -> Operand:
    """``x`` (a complex or real traced array, a numpy array or scalar, a Python number) as an Operand."""
    from .tracer import Tracer, wrap
    if isinstance(x, ComplexArray):
        return Operand(x._re, x._im, x.dtype, x.weak)
    if isinstance(x, complex):
        return Operand(x.real, x.imag, COMPLEX128, True)
    if isinstance(x, (bool, int, float)):
        return Operand(x, None, np.asarray(x).dtype if not isinstance(x, bool) else T.BOOL, True)
    if isinstance(x, (np.ndarray, np.generic)):
        if x.dtype.kind == "c":
            check_complex_dtype(x.dtype, "a numpy array used in the traced function has dtype")
            return Operand(wrap(ops.as_value(np.ascontiguousarray(np.real(x)))),
                           wrap(ops.as_value(np.ascontiguousarray(np.imag(x)))), x.dtype, False)
        return Operand(wrap(ops.as_value(np.asarray(x))), None, x.dtype, False)
    if isinstance(x, masked.MaskedSelection):
        return Operand(x, None, x.full.dtype, False)
    if isinstance(x, Tracer):
        v = x._tj_value
        return Operand(x, None, v.dtype, v.type.weak)
    if isinstance(x, Value) or hasattr(x, "_tj_value"):
        v = x if isinstance(x, Value) else x._tj_value
        return Operand(wrap(v), None, v.dtype, v.type.weak)
    raise TypeError(f"cannot use an object of type {type(x).__name__} with a complex traced array")


def promote(*operands: Operand) -> tuple[np.dtype, bool]:
    """numpy 2's result dtype of ``operands`` and whether it is weak (every operand a Python scalar)."""
    if all(o.weak for o in operands):
        return np.result_type(*[_PY_OF_KIND[o.dtype.kind] for o in operands]), True
    strong = [o.dtype for o in operands if not o.weak]
    weak = [_PY_OF_KIND[o.dtype.kind] for o in operands if o.weak]
    return np.result_type(*strong, *weak), False


def as_part(p, fdt):
    """A part (traced array, masked selection or Python number) in float dtype ``fdt``."""
    if p is None or isinstance(p, (bool, int, float)):
        return p
    dt = p.full.dtype if isinstance(p, masked.MaskedSelection) else p.dtype
    return p if dt == fdt else p.astype(fdt)


def parts_in(o: Operand, fdt):
    """(re, im) of an operand in float dtype ``fdt``; ``im`` None for a real operand."""
    return as_part(o.re, fdt), as_part(o.im, fdt)


def make(re, im, dtype, weak=False) -> "ComplexArray":
    """A complex array of ``dtype`` from its parts (``im`` None: zero)."""
    return ComplexArray(re, 0.0 if im is None else im, dtype, weak)


class ComplexArray:
    """A traced complex array as its two float parts (traced arrays of the same shape)."""

    __array_priority__ = 3000
    __slots__ = ("_re", "_im", "dtype", "weak")

    def __init__(self, re, im, dtype=None, weak=False):
        if dtype is None:
            dts = [np.dtype(p.dtype) for p in (re, im) if hasattr(p, "dtype")]
            dtype = complex_of(np.result_type(*dts) if dts else T.FLOAT64)
        self.dtype, self.weak = check_complex_dtype(dtype), weak
        fdt = part_dtype(self.dtype)
        lazy = [isinstance(p, masked.MaskedSelection) for p in (re, im)]
        if all(lazy) and re.mask is im.mask:  # z[m] * w[m]: kept lazy until written back through the mask
            self._re, self._im = as_part(re, fdt), as_part(im, fdt)
            return
        vals = [ops.as_value(p.tracer() if isinstance(p, masked.MaskedSelection) else p) for p in (re, im)]
        shape = T.broadcast_shapes(*[v.shape for v in vals], constraints=ops.current().constraints)
        self._re, self._im = [_part(p, v, fdt, shape) for p, v in zip((re, im), vals)]

    # the parts, as numpy names them ------------------------------------------------------------------------
    @property
    def real(self):
        return self._re

    @real.setter
    def real(self, value):  # z.real = x writes the real part, as numpy
        self._re[...] = value

    @property
    def imag(self):
        return self._im

    @imag.setter
    def imag(self, value):
        self._im[...] = value

    re = property(lambda self: ops.as_value(_materialized(self._re)))
    im = property(lambda self: ops.as_value(_materialized(self._im)))
    shape = property(lambda self: self.re.shape)
    ndim = property(lambda self: self.re.ndim)
    size = property(lambda self: T.prod(self.re.shape))
    itemsize = property(lambda self: self.dtype.itemsize)
    nbytes = property(lambda self: self.size * self.dtype.itemsize)
    T = property(lambda self: self.transpose())
    mT = property(lambda self: _call("matrix_transpose", self))

    @property
    def _tj_value(self):
        raise TypeError(f"a {self.dtype} traced array cannot be used where tracejit needs a real array; use its "
                        f".real and .imag (or np.abs)")

    def __repr__(self):
        return f"ComplexArray({self.dtype}{list(self.shape)})"

    def __len__(self):
        return len(_materialized(self._re))

    def __iter__(self):
        return iter([self[i] for i in range(len(self))])

    def __bool__(self):
        return bool(_call("not_equal", self, 0))

    def __complex__(self):
        from .tracer import _concretization
        raise _concretization("complex()", self.re)

    __hash__ = None

    # indexing ----------------------------------------------------------------------------------------------
    def __getitem__(self, key):
        return ComplexArray(self._re[key], self._im[key], self.dtype)

    def __setitem__(self, key, value):
        re, im = parts_in(operand(value), part_dtype(self.dtype))  # cast as numpy's assignment casts
        self._re[key] = re
        self._im[key] = 0.0 if im is None else im

    def fill(self, value):
        self[...] = value

    # numpy's protocols -------------------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "reduce" and ufunc.__name__ in ("add", "multiply"):
            kwargs.setdefault("axis", 0)
            return _call({"add": "sum", "multiply": "prod"}[ufunc.__name__], *inputs, **kwargs)
        if method == "accumulate" and ufunc.__name__ in ("add", "multiply"):
            kwargs.setdefault("axis", 0)
            return _call({"add": "cumsum", "multiply": "cumprod"}[ufunc.__name__], *inputs, **kwargs)
        if method != "__call__":
            raise UnsupportedError(f"np.{ufunc.__name__}.{method} of a complex traced array is not supported by "
                                   f"tracejit")
        from .tracer import call_numpy
        return call_numpy(ufunc.__name__, list(inputs), kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .tracer import call_numpy
        return call_numpy(func.__name__, list(args), kwargs)

    def __array__(self, dtype=None, copy=None):
        from .tracer import _concretization
        raise _concretization("np.asarray() (conversion to a concrete numpy array)", self.re)

    # operators ---------------------------------------------------------------------------------------------
    def _bin(name, reflected=False):
        def f(self, other):
            if isinstance(other, (str, bytes, dict, set)) or other is None:
                return NotImplemented
            return _call(name, other, self) if reflected else _call(name, self, other)
        return f

    __add__, __radd__ = _bin("add"), _bin("add", True)
    __sub__, __rsub__ = _bin("subtract"), _bin("subtract", True)
    __mul__, __rmul__ = _bin("multiply"), _bin("multiply", True)
    __truediv__, __rtruediv__ = _bin("divide"), _bin("divide", True)
    __pow__, __rpow__ = _bin("power"), _bin("power", True)
    __matmul__, __rmatmul__ = _bin("matmul"), _bin("matmul", True)
    __lt__, __le__ = _bin("less"), _bin("less_equal")
    __gt__, __ge__ = _bin("greater"), _bin("greater_equal")
    __eq__, __ne__ = _bin("equal"), _bin("not_equal")
    del _bin

    def _inplace(name):
        def f(self, other):
            self[...] = _call(name, self, other)  # complex128 into complex64: numpy's same_kind allows it
            return self
        return f

    __iadd__, __isub__, __imul__ = _inplace("add"), _inplace("subtract"), _inplace("multiply")
    __itruediv__, __ipow__ = _inplace("divide"), _inplace("power")
    del _inplace

    def __neg__(self):
        return _call("negative", self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _call("absolute", self)

    def __floordiv__(self, other):
        raise TypeError(f"unsupported operand type(s) for //: '{self.dtype}' arrays (numpy has no complex "
                        f"floor_divide)")

    __rfloordiv__ = __mod__ = __rmod__ = __floordiv__

    # methods -----------------------------------------------------------------------------------------------
    def _method(name):
        def f(self, *args, **kwargs):
            return _call(name, self, *args, **kwargs)
        f.__name__ = name
        return f

    sum, prod, mean, cumsum, cumprod = _method("sum"), _method("prod"), _method("mean"), _method("cumsum"), \
        _method("cumprod")
    conj = conjugate = _method("conjugate")
    ravel, squeeze, swapaxes, copy = _method("ravel"), _method("squeeze"), _method("swapaxes"), _method("copy")
    diagonal, repeat, take, trace = _method("diagonal"), _method("repeat"), _method("take"), _method("trace")
    dot, var, std, max, min = _method("dot"), _method("var"), _method("std"), _method("max"), _method("min")
    del _method

    def flatten(self):
        return self.ravel()

    def reshape(self, *shape, order="C"):
        return _call("reshape", self, shape[0] if len(shape) == 1 else shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _call("transpose", self, axes or None)

    def astype(self, dtype, copy=True):
        return _call("astype", self, dtype)


def _part(p, v, fdt, shape):
    """A part as a traced array of dtype ``fdt`` and ``shape``: the very tracer when it is one already, so that
    writes into the complex array reach the tracer (an argument, a view's base)."""
    from .tracer import Tracer, wrap
    if isinstance(p, Tracer) and v.dtype == fdt and not v.type.weak and v.shape == shape:
        return p
    v = ops.convert(v, fdt) if v.dtype != fdt or v.type.weak else v
    return wrap(v if v.shape == shape else ops.broadcast_to(v, shape))


def _materialized(p):
    return p.tracer() if isinstance(p, masked.MaskedSelection) else p


def _call(name, *args, **kwargs):
    from .tracer import call_numpy
    return call_numpy(name, list(args), kwargs)


def _is_complex_type(a) -> bool:
    if isinstance(a, np.dtype):
        return a.kind == "c"
    if isinstance(a, type):
        return issubclass(a, (complex, np.complexfloating))
    if isinstance(a, str):
        return a.startswith("complex") or a in ("c8", "c16", "D")  # not "F": numpy's Fortran order
    return False


def _is_complex_arg(a) -> bool:
    t = type(a)
    if t is ComplexArray or t is complex:
        return True
    if t is np.ndarray or isinstance(a, np.generic):
        return a.dtype.kind == "c"
    return _is_complex_type(a)


def involves_complex(args, kwargs) -> bool:
    """Whether a numpy call has a complex operand or asks for a complex dtype (then complex_functions serves it)."""
    for a in args:
        if _is_complex_arg(a):
            return True
        if type(a) in (list, tuple) and any(_is_complex_arg(e) for e in a):
            return True
    dt = kwargs.get("dtype") if kwargs else None
    return dt is not None and _is_complex_type(dt)
