"""numpy's functions on traced complex arrays, as real work on their parts (see complex_array.py).

``COMPLEX_IMPLS`` maps a numpy name to its complex form; ``tracer.call_numpy`` sends a call here when an operand is
complex or a complex dtype is asked for. Formulas follow numpy's (npymath) where it matters for finite values:
Smith's division, the half-angle ``sqrt``, lexicographic ordering for ``<``/``maximum`` (numpy 2). A real operand
takes part without an imaginary part (no ``0 * inf`` terms), as mathematics has it.
"""
from __future__ import annotations

import contextvars
import warnings

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from .complex_array import (ComplexArray, Operand, _is_complex_type, check_complex_dtype, make, operand,
                            part_dtype, parts_in, promote)

COMPLEX_IMPLS: dict = {}


def cimpl(*names):
    def deco(f):
        for n in names:
            COMPLEX_IMPLS[n] = f
        return f
    return deco


def call(name, args, kwargs):
    """numpy function ``name`` on arguments of which one is complex (or a complex dtype is asked for)."""
    f = COMPLEX_IMPLS.get(name)
    if f is None:
        raise UnsupportedError(f"np.{name} of a complex traced array is not supported by tracejit yet; compute it "
                               f"from the array's .real and .imag")
    from .tracer import wrap
    return wrap(f(*args, **kwargs))  # the library's implementations (np.fft) give IR values


def _binary(x, y):
    """((a, b), (c, d), dtype, weak) of two operands in their common dtype's parts."""
    ox, oy = operand(x), operand(y)
    dt, weak = promote(ox, oy)
    fdt = part_dtype(check_complex_dtype(dt, "the result dtype"))
    return parts_in(ox, fdt), parts_in(oy, fdt), dt, weak


def _unary(z):
    o = operand(z)
    if o.dtype.kind != "c":
        o = Operand(o.re, None, np.result_type(o.dtype, np.complex64) if o.dtype.kind == "f" else np.complex128,
                    o.weak)
    return parts_in(o, part_dtype(o.dtype)) + (o.dtype,)


def _sum(p, q):
    return p if q is None else q if p is None else p + q


def _diff(p, q):
    return p if q is None else -q if p is None else p - q


def _prod(p, q):
    return None if p is None or q is None else p * q


# ------------------------------------------------------------------------------------------------ arithmetic
@cimpl("add")
def add(x, y, **kw):
    (a, b), (c, d), dt, weak = _binary(x, y)
    return make(a + c, _sum(b, d), dt, weak)


@cimpl("subtract")
def subtract(x, y, **kw):
    (a, b), (c, d), dt, weak = _binary(x, y)
    return make(a - c, _diff(b, d), dt, weak)


@cimpl("multiply")
def multiply(x, y, **kw):
    (a, b), (c, d), dt, weak = _binary(x, y)
    return make(_diff(a * c, _prod(b, d)), _sum(_prod(a, d), _prod(b, c)), dt, weak)


@cimpl("divide", "true_divide")
def divide(x, y, **kw):
    (a, b), (c, d), dt, weak = _binary(x, y)
    if d is None:
        return make(a / c, None if b is None else b / c, dt, weak)
    b = 0.0 if b is None else b
    # Smith's algorithm (numpy's): divide by the larger of |c|, |d| so that c*c + d*d never overflows
    big_c = np.abs(c) >= np.abs(d)
    r = np.where(big_c, d / np.where(c == 0, 1.0, c), c / np.where(d == 0, 1.0, d))
    den = np.where(big_c, c + d * r, c * r + d)
    re = np.where(big_c, a + b * r, a * r + b) / den
    im = np.where(big_c, b - a * r, b * r - a) / den
    both0 = (c == 0) & (d == 0)  # x / 0: numpy's a/|c|, b/|c| (inf or nan parts)
    return make(np.where(both0, a / np.abs(c), re), np.where(both0, b / np.abs(c), im), dt, weak)


@cimpl("negative")
def negative(z, **kw):
    a, b, dt = _unary(z)
    return make(-a, None if b is None else -b, dt)


@cimpl("positive")
def positive(z, **kw):
    a, b, dt = _unary(z)
    return make(a, b, dt)


@cimpl("conjugate", "conj")
def conjugate(z, **kw):
    a, b, dt = _unary(z)
    return make(a, None if b is None else -b, dt)


@cimpl("square")
def square(z, **kw):
    return multiply(z, z)


@cimpl("reciprocal")
def reciprocal(z, **kw):
    return divide(1.0, z)


@cimpl("power")
def power(x, y, **kw):
    if isinstance(y, (int, np.integer)) and not isinstance(y, bool) and abs(int(y)) <= 100:
        return _integer_power(x, int(y))
    (a, b), (c, d), dt, weak = _binary(x, y)
    z = make(a, b, dt, weak)
    w = exp(multiply(make(c, d, dt), log(z)))
    zero = (a == 0) & ((0.0 if b is None else b) == 0)
    return where(zero & (c > 0), 0.0, w)  # 0 ** w is 0 for Re(w) > 0, as numpy


def _integer_power(z, n):
    """z ** n by squaring and multiplying (numpy's exact form for small integer exponents)."""
    from .numpy_api import power_by_squaring
    a, b, dt = _unary(z)
    out = power_by_squaring(make(a, b, dt), abs(n), multiply)
    if out is None:
        out = make(np.ones_like(a) if not isinstance(a, float) else 1.0, None, dt)
    return divide(1.0, out) if n < 0 else out


# ------------------------------------------------------------------------------------------------ math
@cimpl("absolute", "abs")
def absolute(z, **kw):
    a, b, _ = _unary(z)
    return np.abs(a) if b is None else np.hypot(a, b)


@cimpl("exp")
def exp(z, **kw):
    a, b, dt = _unary(z)
    ea = np.exp(a)
    if b is None:
        return make(ea, None, dt)
    return make(ea * np.cos(b), ea * np.sin(b), dt)


@cimpl("log")
def log(z, **kw):
    a, b, dt = _unary(z)
    b = 0.0 * a if b is None else b
    return make(np.log(np.hypot(a, b)), np.arctan2(b, a), dt)


@cimpl("sqrt")
def sqrt(z, **kw):
    """numpy's csqrt: t = sqrt((|a| + |z|) / 2); the root with a non-negative real part, sign of b on the other."""
    a, b, dt = _unary(z)
    b = 0.0 * a if b is None else b
    t = np.sqrt((np.abs(a) + np.hypot(a, b)) * 0.5)
    safe_t = np.where(t == 0, 1.0, t)
    pos = a >= 0
    re = np.where(pos, t, np.abs(b) / (2 * safe_t))
    im = np.where(pos, b / (2 * safe_t), np.copysign(t, b))
    return make(np.where(t == 0, 0.0 * a, re), np.where(t == 0, b, im), dt)


@cimpl("sin")
def sin(z, **kw):
    a, b, dt = _unary(z)
    b = 0.0 * a if b is None else b
    return make(np.sin(a) * np.cosh(b), np.cos(a) * np.sinh(b), dt)


@cimpl("cos")
def cos(z, **kw):
    a, b, dt = _unary(z)
    b = 0.0 * a if b is None else b
    return make(np.cos(a) * np.cosh(b), -(np.sin(a) * np.sinh(b)), dt)


@cimpl("angle")
def angle(z, deg=False):
    a, b, _ = _unary(z)
    r = np.arctan2(0.0 * a if b is None else b, a)
    return r * (180 / np.pi) if deg else r


@cimpl("real")
def real(z):
    return _unary(z)[0]


@cimpl("imag")
def imag(z):
    a, b, _ = _unary(z)
    return np.zeros_like(a) if b is None else b


@cimpl("sign")
def sign(z, **kw):
    """numpy 2: z / |z|, and 0 at 0."""
    r = absolute(z)
    a, b, dt = _unary(z)
    safe = np.where(r == 0, 1.0, r)
    return make(np.where(r == 0, 0.0, a / safe), np.where(r == 0, 0.0, (0.0 * a if b is None else b) / safe), dt)


@cimpl("isnan")
def isnan(z, **kw):
    a, b, _ = _unary(z)
    return np.isnan(a) if b is None else np.isnan(a) | np.isnan(b)


@cimpl("isinf")
def isinf(z, **kw):
    a, b, _ = _unary(z)
    return np.isinf(a) if b is None else np.isinf(a) | np.isinf(b)


@cimpl("isfinite")
def isfinite(z, **kw):
    a, b, _ = _unary(z)
    return np.isfinite(a) if b is None else np.isfinite(a) & np.isfinite(b)


@cimpl("iscomplexobj")
def iscomplexobj(z):
    return True


@cimpl("isrealobj")
def isrealobj(z):
    return False


@cimpl("iscomplex")
def iscomplex(z):
    return imag(z) != 0


@cimpl("isreal")
def isreal(z):
    return imag(z) == 0


@cimpl("real_if_close")
def real_if_close(a, tol=100):
    raise UnsupportedError("np.real_if_close under tracejit: its result dtype depends on the values (real when "
                           "every imaginary part is small), which a trace cannot know; return the complex array, or "
                           "use .real where the imaginary parts are known to vanish")


# ------------------------------------------------------------------------------------------------ comparisons
def _parts_of_pair(x, y):
    (a, b), (c, d), _, _ = _binary(x, y)
    return a, 0.0 * a if b is None else b, c, 0.0 * c if d is None else d


@cimpl("equal")
def equal(x, y, **kw):
    a, b, c, d = _parts_of_pair(x, y)
    return (a == c) & (b == d)


@cimpl("not_equal")
def not_equal(x, y, **kw):
    a, b, c, d = _parts_of_pair(x, y)
    return (a != c) | (b != d)


def _lexicographic(strict_op, last_op):
    """numpy 2 orders complex numbers by real part, then imaginary part."""
    def f(x, y, **kw):
        a, b, c, d = _parts_of_pair(x, y)
        return strict_op(a, c) | ((a == c) & last_op(b, d))
    return f


COMPLEX_IMPLS["less"] = _lexicographic(np.less, np.less)
COMPLEX_IMPLS["less_equal"] = _lexicographic(np.less, np.less_equal)
COMPLEX_IMPLS["greater"] = _lexicographic(np.greater, np.greater)
COMPLEX_IMPLS["greater_equal"] = _lexicographic(np.greater, np.greater_equal)


def _pick(op):
    """numpy's maximum/minimum: ``x`` where it wins (lexicographically) or has a nan part, else ``y``."""
    def f(x, y, **kw):
        return where(COMPLEX_IMPLS[op](x, y) | isnan(x), x, y)
    return f


COMPLEX_IMPLS["maximum"] = _pick("greater_equal")
COMPLEX_IMPLS["minimum"] = _pick("less_equal")


@cimpl("isclose")
def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    ok = absolute(subtract(a, b)) <= atol + rtol * absolute(b)
    return ok | (isnan(a) & isnan(b)) if equal_nan else ok


@cimpl("allclose")
def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return np.all(isclose(a, b, rtol, atol, equal_nan))


@cimpl("where")
def where(cond, x=None, y=None):
    if x is None:
        raise UnsupportedError("np.where(condition) with one argument on a complex array is not supported")
    (a, b), (c, d), dt, weak = _binary(x, y)
    return make(np.where(cond, a, c), np.where(cond, 0.0 if b is None else b, 0.0 if d is None else d), dt, weak)


# ------------------------------------------------------------------------------------------------ dtypes
@cimpl("astype")
def astype(x, dtype, copy=True, **kw):
    a, b, src = _unary(x) if operand(x).dtype.kind == "c" else (operand(x).re, None, operand(x).dtype)
    dt = np.dtype(dtype)
    if dt.kind == "c":
        fdt = part_dtype(check_complex_dtype(dt, "astype to"))
        return make(a.astype(fdt), None if b is None else b.astype(fdt), dt)
    if dt == np.bool_:
        return (a != 0) if b is None else (a != 0) | (b != 0)
    warnings.warn("Casting complex values to real discards the imaginary part", np.exceptions.ComplexWarning,
                  stacklevel=4)
    return a.astype(dt)


def _like(fill_real, fill_imag):
    def f(a, dtype=None, order="K", subok=True, shape=None, **kw):
        dt = np.dtype(dtype) if dtype is not None else operand(a).dtype
        re = operand(a).re
        if dt.kind != "c":
            return np.full_like(re, fill_real, dtype=dt, shape=shape)
        fdt = part_dtype(check_complex_dtype(dt, "the dtype of"))
        return make(np.full_like(re, fill_real, dtype=fdt, shape=shape),
                    np.full_like(re, fill_imag, dtype=fdt, shape=shape), dt)
    return f


COMPLEX_IMPLS["zeros_like"] = COMPLEX_IMPLS["empty_like"] = _like(0.0, 0.0)
COMPLEX_IMPLS["ones_like"] = _like(1.0, 0.0)


@cimpl("full_like")
def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None):
    v = complex(fill_value) if not hasattr(fill_value, "dtype") and not hasattr(fill_value, "_tj_value") else None
    if v is None:
        return add(_like(0.0, 0.0)(a, dtype, shape=shape), fill_value)
    return _like(v.real, v.imag)(a, dtype, shape=shape)


# ------------------------------------------------------------------------------------------------ layout and sums
# functions linear in the array: the same call on each part gives the parts of the result
_PARTWISE = ("reshape", "transpose", "ravel", "squeeze", "expand_dims", "swapaxes", "moveaxis", "broadcast_to",
             "flip", "fliplr", "flipud", "rot90", "roll", "take", "diagonal", "repeat", "tile", "atleast_1d",
             "atleast_2d", "atleast_3d", "matrix_transpose", "diff", "trace", "copy", "asarray", "asanyarray",
             "ascontiguousarray", "array", "triu", "tril", "sum", "mean", "cumsum", "pad", "take_along_axis")


def _partwise(name):
    def f(z, *args, **kwargs):
        if kwargs.get("dtype") is not None and _is_complex_type(kwargs["dtype"]):
            z = astype(z, kwargs.pop("dtype"))
        a, b, dt = _unary(z)
        from .tracer import call_numpy
        re = call_numpy(name, [a, *args], kwargs)
        im = call_numpy(name, [b if b is not None else 0.0 * a, *args], kwargs)
        return make(re, im, dt)
    f.__name__ = name
    return f


for _n in _PARTWISE:
    COMPLEX_IMPLS[_n] = _partwise(_n)


def _joined(name):
    def f(arrays, *args, **kwargs):
        ops_ = [operand(x) for x in arrays]
        dt, _ = promote(*ops_)
        fdt = part_dtype(check_complex_dtype(dt, "the result dtype"))
        pairs = [parts_in(o, fdt) for o in ops_]
        from .tracer import call_numpy
        re = call_numpy(name, [[p[0] for p in pairs], *args], kwargs)
        im = call_numpy(name, [[p[1] if p[1] is not None else 0.0 * p[0] for p in pairs], *args], kwargs)
        return make(re, im, dt)
    f.__name__ = name
    return f


for _n in ("concatenate", "stack", "hstack", "vstack", "column_stack", "dstack"):
    COMPLEX_IMPLS[_n] = _joined(_n)


@cimpl("prod")
def prod(z, axis=None, dtype=None, keepdims=False, **kw):
    """numpy's product: ``acc = 1; acc = acc * z[k]`` in order (see _running_products)."""
    return _running_products(z, axis, dtype, keepdims=keepdims, accumulate=False, what="prod")


@cimpl("cumprod")
def cumprod(z, axis=None, dtype=None, **kw):
    """numpy's running product: ``out[0] = z[0]; out[k] = out[k-1] * z[k]``."""
    return _running_products(z, axis, dtype, keepdims=False, accumulate=True, what="cumprod")


def _running_products(z, axis, dtype, keepdims, accumulate, what):
    """Complex products in numpy's order with numpy's multiplication, ``(ar xr - ai xi) + (ar xi + ai xr)i``, one
    element at a time (a scan over the reduced axes, raveled), so zeros, infs and nans come out as numpy's: no
    other order or formula (a tree, polar form) does (``(inf+0j)(1+1j)(1-1j)`` is inf+nanj in order, inf+0j as
    a tree)."""
    from ..control_flow import scan
    if dtype is not None:
        z = astype(z, dtype)
        if np.dtype(dtype).kind != "c":
            return (np.cumprod if accumulate else np.prod)(z, axis=axis, **({} if accumulate else
                                                                            {"keepdims": keepdims}))
    a, b, dt = _unary(z)
    b = np.zeros_like(a) if b is None else b
    nd = np.ndim(a)
    if accumulate and axis is None:
        a, b, axes = np.ravel(a), np.ravel(b), (0,)
    elif axis is None:
        axes = tuple(range(nd))
    else:
        axes = tuple(sorted({int(x) % nd if -nd <= int(x) < nd else _bad_axis(x, nd)
                             for x in (axis if isinstance(axis, (tuple, list)) else (axis,))}))
    if accumulate and len(axes) != 1:
        raise TypeError(f"np.{what}: axis must be an integer, got {axis!r}")
    rest = tuple(np.shape(a)[k] for k in range(np.ndim(a)) if k not in axes)
    n = 1
    for k in axes:
        n = n * np.shape(a)[k]
    front = [np.reshape(np.moveaxis(p, axes, tuple(range(len(axes)))), (n,) + rest) for p in (a, b)]

    def step(carry, x):
        (ar, ai, k), (xr, xi) = carry, x
        re, im = ar * xr - ai * xi, ar * xi + ai * xr
        if accumulate:  # numpy's accumulate starts from z[0] itself, not from 1 * z[0]
            re, im = np.where(k == 0, xr, re), np.where(k == 0, xi, im)
        return (re, im, k + 1), (re, im)

    one = np.ones(rest, a.dtype) if rest else np.ones((), a.dtype)
    (re, im, _), ys = scan(step, (one, one * 0, np.int64(0)), (front[0], front[1]))
    if accumulate:
        ax = axes[0]
        return make(np.moveaxis(ys[0], 0, ax), np.moveaxis(ys[1], 0, ax), dt)
    if keepdims:
        re, im = (np.reshape(p, tuple(1 if k in axes else np.shape(a)[k] for k in range(nd))) for p in (re, im))
    return make(re, im, dt)


def _bad_axis(axis, nd):
    raise np.exceptions.AxisError(axis, nd)


def _extreme(pick_real):
    """numpy's max/min of complex values: lexicographic, the real part first (nan parts propagate through the
    real reductions, as numpy's)."""
    def f(z, axis=None, out=None, keepdims=False, **kw):
        a, b, dt = _unary(z)
        b = 0.0 * a if b is None else b
        best_re = pick_real(a, axis=axis, keepdims=True)
        fill = -np.inf if pick_real is np.max else np.inf
        best_im = pick_real(np.where(a == best_re, b, fill), axis=axis, keepdims=True)
        if not keepdims:
            axes = tuple(range(np.ndim(a))) if axis is None else axis
            best_re, best_im = np.squeeze(best_re, axis=axes), np.squeeze(best_im, axis=axes)
        return make(best_re, best_im, dt)
    return f


COMPLEX_IMPLS["max"] = COMPLEX_IMPLS["amax"] = _extreme(np.max)
COMPLEX_IMPLS["min"] = COMPLEX_IMPLS["amin"] = _extreme(np.min)


@cimpl("var")
def var(z, axis=None, dtype=None, ddof=0, keepdims=False, **kw):
    """Of the magnitudes of the deviations, as numpy: a real result."""
    dev = subtract(z, np.mean(z, axis=axis, keepdims=True))
    a, b, _ = _unary(dev)
    return np.var(a, axis=axis, ddof=ddof, keepdims=keepdims) + np.var(b, axis=axis, ddof=ddof, keepdims=keepdims)


@cimpl("std")
def std(z, axis=None, dtype=None, ddof=0, keepdims=False, **kw):
    return np.sqrt(var(z, axis=axis, ddof=ddof, keepdims=keepdims))


# ------------------------------------------------------------------------------------------------ products
@cimpl("matmul", "dot")
def matmul(x, y, **kw):
    """(A + iB)(C + iD) = (AC - BD) + i(AD + BC) through the real products (BLAS gemm on the CPU)."""
    (a, b), (c, d), dt, _ = _binary(x, y)
    if _one_gemm(a, b, c, d):
        from .tracer import wrap
        vals = [p._tj_value for p in (a, b, c, d)]
        return make(*(wrap(ops.bind("complex_matmul", *vals, output=k)) for k in range(2)), dt)
    return make(_diff(a @ c, _prod_m(b, d)), _sum(_prod_m(a, d), _prod_m(b, c)), dt)


# set while tracing for a device whose library calls run on the host (CUDA): its matmuls stay the pair form
PAIR_FORM_MATMUL = contextvars.ContextVar("tracejit_pair_form_matmul", default=False)


def _one_gemm(a, b, c, d):
    """Whether both operands are complex matrices of one dtype, which one complex gemm multiplies on the CPU (the
    pair form's real products took 14-18% longer at 500x500 complex128). A loop or branch body (a nested trace)
    keeps the pair form: a library call would take its loop off the native path (67x slower at 8x8)."""
    if PAIR_FORM_MATMUL.get() or ops.nesting() > 1:
        return False
    vals = [getattr(p, "_tj_value", None) for p in (a, b, c, d)]
    if any(v is None for v in vals) or len({v.dtype for v in vals}) != 1 or vals[0].ndim != 2 or vals[2].ndim != 2:
        return False
    return vals[0].shape == vals[1].shape and vals[2].shape == vals[3].shape and vals[0].dtype in (T.FLOAT32, T.FLOAT64)


def _prod_m(p, q):
    return None if p is None or q is None else p @ q


@cimpl("vdot")
def vdot(x, y):
    return np.sum(multiply(conjugate(np.ravel(x)), np.ravel(y)))


@cimpl("inner")
def inner(x, y):
    return np.sum(multiply(x, y), axis=-1) if np.ndim(x) <= 1 and np.ndim(y) <= 1 else matmul(x, np.swapaxes(y, -1, -2))


@cimpl("outer")
def outer(x, y):
    return multiply(np.reshape(x, (-1, 1)), np.reshape(y, (1, -1)))


@cimpl("ndim")
def ndim(z):
    return operand(z).re.ndim


@cimpl("shape")
def shape(z):
    return operand(z).re.shape


@cimpl("size")
def size(z):
    return ComplexArray.size.fget(z)


def _register_real_forms():
    """np.real / np.imag of a real traced array (numpy: the array itself, zeros)."""
    from ..ir import ops
    from .numpy_api import IMPLS
    IMPLS.setdefault("real", lambda x: x)
    IMPLS.setdefault("imag", lambda x: ops.broadcast_to(ops.constant(0, x.dtype), x.shape))


_register_real_forms()
