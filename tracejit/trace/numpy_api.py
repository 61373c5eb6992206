"""numpy function -> IR: one implementation per numpy name, over Values. ``tracejit.numpy`` is generated from it.

Each entry takes Values (already converted from tracers, arrays and Python scalars by the caller) and numpy's
keyword arguments, and returns a Value (or a tuple of Values).
"""
from __future__ import annotations


import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from ..ir.primitives import BINARY_UFUNCS, UNARY_UFUNCS, forced_dtypes
from ..ir.types import Dim

IMPLS: dict = {}


def impl(*names):
    def deco(f):
        for n in names:
            IMPLS[n] = f
        return f
    return deco


def _no(kw, *names, fn=""):
    for n in names:
        if kw.get(n) is not None:
            raise UnsupportedError(f"np.{fn}: the {n}= argument is not supported by tracejit")


# ------------------------------------------------------------------------------------------------ ufuncs
def _make_ufunc(name):
    nin = 1 if name in UNARY_UFUNCS else 2

    def f(*xs, out=None, where=True, dtype=None, casting="same_kind", order="K", subok=True, signature=None):
        if len(xs) > nin:  # numpy takes extra positional arguments as out=
            out, xs = xs[nin:], xs[:nin]
        if len(xs) < nin:
            raise TypeError(f"np.{name} expects {nin} input(s), got {len(xs)}")
        _no({"out": out, "signature": signature}, "out", "signature", fn=name)
        _ufunc_options(name, where, casting, order, dtype)
        if name == "positive":
            x = ops.as_value(xs[0])
            if x.dtype == T.BOOL:  # as numpy 2: no positive loop for bool
                raise TypeError("np.positive is not supported for bool inputs (numpy has no such loop); use "
                                "x.astype(np.int64) first")
            return x if dtype is None else _ufunc_with_dtype(name, (x,), dtype, casting)
        if dtype is not None:
            return _ufunc_with_dtype(name, xs, dtype, casting)
        return ops.ufunc(name, *xs)
    f.__name__ = name
    f.takes_scalars = True
    return f


def _ufunc_options(name, where, casting, order, dtype):
    """Refuse the ufunc options whose effect tracejit does not reproduce (rather than ignore them)."""
    if where is not True:
        raise UnsupportedError(f"np.{name}: the where= argument is not supported by tracejit; use "
                               f"np.where(mask, np.{name}(...), fallback)")
    if order not in ("K", "A", "C", None):
        raise UnsupportedError(f"np.{name}: order={order!r} is not supported by tracejit (results are C-ordered)")
    if casting not in ("same_kind", "unsafe") and dtype is None:
        raise UnsupportedError(f"np.{name}: casting={casting!r} without dtype= is not supported by tracejit")


def _ufunc_with_dtype(name, xs, dtype, casting):
    """``np.<ufunc>(..., dtype=dt)``: numpy picks the loop that computes in ``dt`` (inputs cast by ``casting``),
    so int32 + int32 with dtype=int64 does not wrap around."""
    dt = T.check_dtype(dtype, f"np.{name}'s dtype=")
    vals = [ops.as_value(x) for x in xs]
    ins, out_dt = forced_dtypes(name, [v.type for v in vals], dt, casting)
    conv = []
    for v, d in zip(vals, ins):
        ops.check_weak_int(v, d, name)
        conv.append(ops.convert(v, d))
    out = ops.ufunc(name, *conv)
    return out if out.dtype == out_dt else ops.convert(out, out_dt)


for _n in list(UNARY_UFUNCS) + list(BINARY_UFUNCS):
    IMPLS[_n] = _make_ufunc(_n)
IMPLS["abs"] = IMPLS["absolute"]
IMPLS["true_divide"] = IMPLS["divide"]
IMPLS["mod"] = IMPLS["remainder"]
IMPLS["pow"] = IMPLS["power"]
IMPLS["conjugate"] = IMPLS["positive"]
IMPLS["radians"] = IMPLS["deg2rad"]
IMPLS["degrees"] = IMPLS["rad2deg"]


@impl("expit", "sigmoid")
def sigmoid(x):
    return ops.ufunc("sigmoid", x)


@impl("sinc")
def sinc(x):
    return ops.ufunc("sinc", x)


@impl("softplus")
def softplus(x):
    return ops.ufunc("softplus", x)


@impl("relu")
def relu(x):
    return ops.ufunc("maximum", x, ops.constant(0, x.dtype, weak=True))


@impl("where")
def where(cond, x=None, y=None):
    if x is None and y is None:  # np.nonzero(cond): a data-dependent length
        from .numpy_sorting import where_one
        return where_one(cond)
    if x is None or y is None:
        raise UnsupportedError("np.where(cond) with one argument returns data-dependent shapes, which tracejit "
                               "cannot trace; use np.where(cond, x, y)")
    return ops.ufunc("where", cond, x, y)


@impl("clip")
def clip(x, a_min=None, a_max=None, out=None, *, min=None, max=None, dtype=None, **kw):
    _no({"out": out, **kw}, "out", *kw, fn="clip")
    if (a_min is not None and min is not None) or (a_max is not None and max is not None):
        raise TypeError("np.clip: pass each bound once, as a_min/a_max or as min=/max=")
    lo, hi = (a_min if min is None else min), (a_max if max is None else max)
    if dtype is not None:
        dt = T.check_dtype(dtype, "np.clip's dtype=")
        _require_cast(x.dtype, dt, "same_kind", "np.clip")
        x = ops.convert(x, dt)
    if lo is not None:
        x = ops.ufunc("maximum", x, _clip_bound(lo, x))
    if hi is not None:
        x = ops.ufunc("minimum", x, _clip_bound(hi, x))
    return x


def _clip_bound(b, x):
    """A Python int bound beyond x's int dtype clips nothing on that side (numpy 2 clips, it does not raise)."""
    b = ops.as_value(b)
    if x.dtype.kind != "i" or not (b.type.weak and b.dtype.kind == "i") or x.dtype.itemsize >= b.dtype.itemsize:
        return b
    info = np.iinfo(x.dtype)
    if b.is_const:
        return ops.constant(int(np.clip(int(b.const), info.min, info.max)), x.dtype)
    lo, hi = ops.constant(int(info.min), T.INT64, weak=True), ops.constant(int(info.max), T.INT64, weak=True)
    return ops.convert(ops.ufunc("minimum", ops.ufunc("maximum", b, lo), hi), x.dtype)


def _require_cast(src, dst, casting, what):
    if not np.can_cast(src, dst, casting):
        raise TypeError(f"{what}: cannot cast {np.dtype(src)} to {np.dtype(dst)} according to the rule "
                        f"{casting!r} (as numpy); pass casting='unsafe' or convert first with .astype")


# ------------------------------------------------------------------------------------------------ reductions
_NP_REDUCE_NAME = {"max": "maximum", "min": "minimum"}
_COMBINE = {"sum": "add", "prod": "multiply", "max": "maximum", "min": "minimum"}


def _legacy_0d_axis(x, axis):
    """numpy accepts an int axis 0 or -1 (not a tuple) for these reductions of a 0-d array."""
    if x.ndim == 0 and isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and axis in (0, -1):
        return None
    return axis


def _reduced_size(x, axis):
    return T.prod([x.shape[a] for a in ops.normalize_axis(axis, x.ndim)])


def _reduction(prim, name, x, axis, dtype=None, out=None, keepdims=False, initial=None, where=True):
    """sum/prod/max/min/any/all with numpy's keywords: dtype= is the accumulation and result dtype, initial= is
    combined into the result, and max/min of nothing raise numpy's ValueError (at call time if lengths are
    symbolic)."""
    _no({"out": out}, "out", fn=name)
    if where is not True:
        raise UnsupportedError(f"np.{name}: the where= argument is not supported by tracejit; use "
                               f"np.where(mask, x, identity) before reducing")
    axis = _legacy_0d_axis(x, axis)
    dt = None
    if dtype is not None:
        dt = T.check_dtype(dtype, f"np.{name}'s dtype=")
        x = ops.convert(x, dt)
    if prim in ("max", "min") and initial is None:
        ops.require_nonempty(_reduced_size(x, axis), f"zero-size array to reduction operation "
                                                     f"{_NP_REDUCE_NAME[prim]} which has no identity")
    r = ops.reduce(prim, x, axis, keepdims)
    if dt is not None and r.dtype != dt:  # int sum/prod accumulate in int64: the same bits modulo 2**32
        r = ops.convert(r, dt)
    if initial is not None:
        r = ops.ufunc(_COMBINE[prim], r, ops.convert(ops.as_value(initial), r.dtype))
    return r


def _make_reduce(prim, npname):
    if prim in ("sum", "prod"):
        def f(x, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=True):
            return _reduction(prim, npname, x, axis, dtype, out, keepdims, initial, where)
    elif prim in ("max", "min"):
        def f(x, axis=None, out=None, keepdims=False, initial=None, where=True):
            return _reduction(prim, npname, x, axis, None, out, keepdims, initial, where)
    else:
        def f(x, axis=None, out=None, keepdims=False, *, where=True):
            return _reduction(prim, npname, x, axis, None, out, keepdims, None, where)
    f.__name__ = npname
    return f


for _p, _names in {"sum": ("sum",), "prod": ("prod",), "max": ("max", "amax"), "min": ("min", "amin"),
                   "any": ("any",), "all": ("all",)}.items():
    for _nm in _names:
        IMPLS[_nm] = _make_reduce(_p, _nm)


def _make_arg(prim):
    def f(x, axis=None, out=None, *, keepdims=False):
        _no({"out": out}, "out", fn=prim)
        axis = _legacy_0d_axis(x, axis)
        if isinstance(axis, (tuple, list)):
            raise TypeError(f"np.{prim}: axis must be an integer or None, got {axis!r}")
        empty = f"attempt to get {prim} of an empty sequence"
        if axis is None:
            n = T.prod(x.shape)
            ops.require_nonempty(n, empty)
            r = ops.reduce(prim, ops.reshape(x, (n,)) if x.ndim != 1 else x, 0, False)
            return ops.reshape(r, (1,) * x.ndim) if keepdims else r
        ops.require_nonempty(_reduced_size(x, int(axis)), empty)
        return ops.reduce(prim, x, int(axis), keepdims)
    f.__name__ = prim
    return f


IMPLS["argmax"] = _make_arg("argmax")
IMPLS["argmin"] = _make_arg("argmin")


@impl("mean")
def mean(x, axis=None, dtype=None, out=None, keepdims=False, *, where=True):
    _no({"out": out}, "out", fn="mean")
    if where is not True:
        raise UnsupportedError("np.mean: the where= argument is not supported by tracejit")
    axes = ops.normalize_axis(axis, x.ndim)
    if dtype is not None:
        dt = T.check_dtype(dtype, "np.mean's dtype=")
        s = _reduction("sum", "mean", x, axis, dt, keepdims=keepdims)
        m = ops.ufunc("divide", s, ops.count(x.shape, axes))
        return m if m.dtype == dt else ops.convert(m, dt)  # an int dtype= truncates, as numpy's unsafe cast
    if x.dtype.kind != "f":
        x = ops.convert(x, T.FLOAT64)
    s = ops.reduce("sum", x, axis, keepdims)
    return ops.ufunc("divide", s, ops.count(x.shape, axes))


@impl("var")
def var(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None, correction=None):
    _no({"out": out, "mean": mean}, "out", "mean", fn="var")
    if where is not True:
        raise UnsupportedError("np.var/np.std: the where= argument is not supported by tracejit")
    if correction is not None:
        if ddof != 0:
            raise ValueError("ddof and correction can't be provided simultaneously.")
        ddof = correction
    axes = ops.normalize_axis(axis, x.ndim)
    if dtype is not None:
        dt = T.check_dtype(dtype, "np.var/np.std's dtype=")
        if dt.kind != "f":
            raise UnsupportedError(f"np.var/np.std with dtype={dt} (an integer accumulation) is not supported by "
                                   f"tracejit; use a float dtype")
        x = ops.convert(x, dt)
    elif x.dtype.kind != "f":
        x = ops.convert(x, T.FLOAT64)
    m = ops.ufunc("divide", ops.reduce("sum", x, axis, True), ops.count(x.shape, axes))
    d = ops.ufunc("subtract", x, m)
    ss = ops.reduce("sum", ops.ufunc("square", d), axis, keepdims)
    n = ops.count(x.shape, axes)
    if ddof:
        n = ops.ufunc("subtract", n, ops.as_value(ddof))
        n = ops.ufunc("maximum", n, ops.constant(0, weak=True))
    return ops.ufunc("divide", ss, n)


@impl("std")
def std(x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=True, mean=None, correction=None):
    return ops.ufunc("sqrt", var(x, axis, dtype, out, ddof, keepdims, where=where, mean=mean,
                                 correction=correction))


# ------------------------------------------------------------------------------------------------ shapes
@impl("reshape")
def reshape(x, shape, order="C", *, copy=None):  # numpy 2's signature (newshape= is gone)
    newshape = shape
    if order in ("A", "K") and x.ndim > 1:  # these follow the memory layout, which a traced value does not have
        raise UnsupportedError(f"np.reshape/ravel: order={order!r} depends on the array's memory layout, which "
                               f"tracejit does not track; write order='C' or order='F'")
    if order == "F":  # column-major: reverse the axes, reshape to the reversed shape, reverse back
        shp = ops.resolve_reshape(x, newshape)
        flipped = ops.reshape(ops.transpose(x, tuple(reversed(range(x.ndim)))), tuple(reversed(shp)))
        return ops.transpose(flipped, tuple(reversed(range(len(shp)))))
    if order not in ("C", "A", "K", None):  # numpy reads None as the default, 'C'
        raise ValueError(f"order must be one of 'C', 'F', 'A', or 'K' (got {order!r})")
    return ops.reshape(x, ops.resolve_reshape(x, newshape))


@impl("ravel")
def ravel(x, order="C"):
    return reshape(x, -1, order=order) if x.ndim != 1 else x


@impl("transpose", "permute_dims")
def transpose(x, axes=None):
    return ops.transpose(x, None if axes is None else tuple(axes))


@impl("swapaxes")
def swapaxes(x, axis1, axis2):
    a, b = ops.normalize_axis(axis1, x.ndim)[0], ops.normalize_axis(axis2, x.ndim)[0]
    perm = list(range(x.ndim))
    perm[a], perm[b] = perm[b], perm[a]
    return ops.transpose(x, tuple(perm))


@impl("moveaxis")
def moveaxis(x, source, destination):
    src = [ops.normalize_axis(s, x.ndim)[0] for s in np.atleast_1d(source)]
    dst = [ops.normalize_axis(d, x.ndim)[0] for d in np.atleast_1d(destination)]
    if len(src) != len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number of elements")
    order = [n for n in range(x.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return ops.transpose(x, tuple(order))


@impl("expand_dims")
def expand_dims(x, axis):
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    nd = x.ndim + len(axes)
    axes = ops.normalize_axis(axes, nd)
    shape, it = [], iter(x.shape)
    for i in range(nd):
        shape.append(1 if i in axes else next(it))
    return ops.reshape(x, tuple(shape))


@impl("squeeze")
def squeeze(x, axis=None):
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if isinstance(d, int) and d == 1)
    else:
        axes = ops.normalize_axis(axis, x.ndim)
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError("cannot select an axis to squeeze out which has size not equal to one")
    return ops.reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


@impl("broadcast_to")
def broadcast_to(x, shape):
    if isinstance(shape, (int, Dim)):
        shape = (shape,)
    return ops.broadcast_to(x, tuple(shape))


@impl("atleast_1d")
def atleast_1d(x):
    return ops.reshape(x, (1,)) if x.ndim == 0 else x


@impl("concatenate", "concat")
def concatenate(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    _no({"out": out}, "out", fn="concatenate")
    arrays = list(arrays)
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        arrays = [ravel(a) for a in arrays]
        axis = 0
    nd = arrays[0].ndim
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    for a in arrays:
        if a.ndim != nd:
            raise ValueError(f"all the input array dimensions except for the concatenation axis must match exactly,"
                             f" but the arrays have {nd} and {a.ndim} dimension(s)")
    ax = ops.normalize_axis(axis, nd)[0]
    if dtype is not None:
        dt = T.check_dtype(dtype, "np.concatenate's dtype=")
        for a in arrays:
            _require_cast(a.dtype, dt, casting, "np.concatenate")
    else:
        dt = T.result_dtype(*[a.type for a in arrays])[0]
    arrays = [ops.convert(a, dt) for a in arrays]
    for a in arrays[1:]:
        for i in range(nd):
            if i != ax and a.shape[i] != arrays[0].shape[i]:
                if isinstance(a.shape[i], int) and isinstance(arrays[0].shape[i], int):
                    raise ValueError(
                        f"all the input array dimensions except for the concatenation axis must match exactly, but"
                        f" along dimension {i}, the array at index 0 has size {arrays[0].shape[i]} and another has "
                        f"size {a.shape[i]}")
                ops.current().constraints.append(Constraint.same(arrays[0].shape[i], a.shape[i], (
                    "all the input array dimensions except for the concatenation axis must match exactly, but "
                    f"along dimension {i}, the array at index 0 has size {{a}} and another has size {{b}}"),
                    tuple(v.shape for v in arrays)))
                ops.current().constraints.append(Constraint.eq(arrays[0].shape[i], a.shape[i],
                                                             tuple(v.shape for v in arrays)))
    if len(arrays) == 1:
        return arrays[0]
    return ops.bind("concatenate", *arrays, axis=ax)


@impl("stack")
def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    arrays = list(arrays)
    if not arrays:
        raise ValueError("need at least one array to stack")
    nd = arrays[0].ndim + 1
    ax = ops.normalize_axis(axis, nd)[0]
    return concatenate([expand_dims(a, ax) for a in arrays], axis=ax, out=out, dtype=dtype, casting=casting)


@impl("zeros_like", "ones_like")
def _like_placeholder(x, dtype=None, **kw):
    raise AssertionError


def _make_like(fill):
    def f(x, dtype=None, order="K", subok=True, shape=None):
        dt = np.dtype(dtype) if dtype is not None else x.dtype
        shp = x.shape if shape is None else tuple(shape)
        return ops.broadcast_to(ops.constant(fill, dt), shp)
    return f


IMPLS["zeros_like"] = _make_like(0)
IMPLS["ones_like"] = _make_like(1)


@impl("full_like")
def full_like(x, fill_value, dtype=None, order="K", subok=True, shape=None):
    dt = np.dtype(dtype) if dtype is not None else x.dtype
    shp = x.shape if shape is None else tuple(shape)
    fill = fill_value if not isinstance(fill_value, (int, float, bool)) else ops.constant(fill_value, dt)
    ops.check_weak_int(ops.as_value(fill), dt, "full_like")  # a Python int argument that dt cannot hold
    return ops.broadcast_to(ops.convert(fill, dt), shp)


def _as(x, dtype, order, what):
    """x in ``dtype`` (numpy's array constructors cast unsafely, as astype); results are always C-ordered."""
    if order not in (None, "K", "A", "C"):
        raise UnsupportedError(f"{what}: order={order!r} is not supported by tracejit (results are C-ordered)")
    return ops.convert(x, T.check_dtype(dtype, f"{what}'s dtype=")) if dtype is not None else x


@impl("copy")
def copy(x, order="K", subok=False):
    return _as(x, None, order, "np.copy")


@impl("array")
def array(x, dtype=None, *, copy=True, order="K", subok=False, ndmin=0, ndmax=0, like=None):
    _no({"like": like}, "like", fn="array")
    x = _as(x, dtype, order, "np.array")
    return ops.reshape(x, (1,) * (ndmin - x.ndim) + x.shape) if ndmin > x.ndim else x


@impl("asarray")
def asarray(x, dtype=None, order=None, *, device=None, copy=None, like=None):
    _no({"like": like}, "like", fn="asarray")
    if device not in (None, "cpu"):
        raise UnsupportedError(f"np.asarray: device={device!r} is not supported by tracejit")
    return _as(x, dtype, order, "np.asarray")


@impl("ascontiguousarray")
def ascontiguousarray(x, dtype=None, *, like=None):
    _no({"like": like}, "like", fn="ascontiguousarray")
    return _as(ops.reshape(x, (1,)) if x.ndim == 0 else x, dtype, "C", "np.ascontiguousarray")


@impl("astype")
def astype(x, dtype, copy=True):
    dt = T.check_dtype(dtype, "astype's dtype")
    return ops.convert(x, dt)


@impl("shape")
def shape(x):
    return x.shape


@impl("ndim")
def ndim(x):
    return x.ndim


@impl("size")
def size(x, axis=None):
    return T.prod(x.shape) if axis is None else x.shape[axis]


_WEAK_STANDIN = {"b": True, "i": 0, "u": 0, "f": 0.0, "c": 0j}


@impl("result_type")
def result_type(*xs):
    """numpy's result_type with traced operands: a traced array counts by its dtype (strong, as a 0-d array
    would), a traced Python scalar as the weak scalar it is; types, dtypes and values are numpy's to judge
    (``np.result_type(x, float)`` is float64 even beside float32)."""
    args = []
    for x in xs:
        if isinstance(x, ops.Value):
            args.append(_WEAK_STANDIN[np.dtype(x.dtype).kind] if x.type.weak else np.empty((), x.dtype))
        else:
            args.append(x)
    return np.result_type(*args)


# ------------------------------------------------------------------------------------------------ nn
@impl("stop_gradient")
def stop_gradient(x):
    return ops.ufunc("stop_gradient", x)


def _shift(x, axis):
    """The row max that softmax-like functions subtract; their value does not depend on it, so neither does their
    gradient (differentiating through the max would cost kernels to compute a zero)."""
    return stop_gradient(ops.reduce("max", x, axis, keepdims=True))


@impl("logsumexp")
def logsumexp(x, axis=None, b=None, keepdims=False, return_sign=False):  # scipy.special's argument order
    if b is not None or return_sign:
        raise UnsupportedError("logsumexp: b= and return_sign= are not supported by tracejit")
    if x.dtype.kind != "f":
        x = ops.convert(x, T.FLOAT64)
    m = _shift(x, axis)
    m = ops.ufunc("where", ops.ufunc("isfinite", m), m, ops.constant(0.0, x.dtype))
    s = ops.reduce("sum", ops.ufunc("exp", ops.ufunc("subtract", x, m)), axis, keepdims=True)
    out = ops.ufunc("add", ops.ufunc("log", s), m)
    if not keepdims:
        axes = ops.normalize_axis(axis, x.ndim)
        out = ops.reshape(out, tuple(d for i, d in enumerate(out.shape) if i not in axes))
    return out


@impl("softmax")
def softmax(x, axis=-1):
    if x.dtype.kind != "f":
        x = ops.convert(x, T.FLOAT64)
    m = _shift(x, axis)
    e = ops.ufunc("exp", ops.ufunc("subtract", x, m))
    return ops.ufunc("divide", e, ops.reduce("sum", e, axis, keepdims=True))


@impl("log_softmax")
def log_softmax(x, axis=-1):
    if x.dtype.kind != "f":
        x = ops.convert(x, T.FLOAT64)
    m = _shift(x, axis)
    sh = ops.ufunc("subtract", x, m)
    lse = ops.ufunc("log", ops.reduce("sum", ops.ufunc("exp", sh), axis, keepdims=True))
    return ops.ufunc("subtract", sh, lse)




def power_by_squaring(base, n: int, multiply):
    """``base`` multiplied by itself ``n >= 0`` times by squaring (numpy's order for integer powers), or None
    for n == 0; ``multiply(a, b)`` is the product (elementwise, complex or matrix)."""
    out = None
    while n:
        if n & 1:
            out = base if out is None else multiply(out, base)
        n >>= 1
        if n:
            base = multiply(base, base)
    return out


from . import numpy_products  # noqa: E402,F401  (matmul, dot, tensordot, einsum)
from . import numpy_more  # noqa: E402,F401  (issue 14: more numpy functions, registered into IMPLS)
