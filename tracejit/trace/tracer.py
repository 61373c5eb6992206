"""Tracer: a stand-in for an array during tracing. Every numpy operation on it appends an equation to the IR.

numpy's own functions reach it through ``__array_ufunc__`` / ``__array_function__``; misuse that needs a concrete
value (``if x > 0``, ``float(x)``) raises ConcretizationError at the user's line.
"""
from __future__ import annotations

import sys

from ..ir import types as _types

import numpy as np

from ..errors import ConcretizationError, UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value
from . import complex_functions, guards, masked, writes
from .complex_array import involves_complex
from .indexing import getitem, is_basic, same_key
from . import numpy_api as npi
from .python_builtins import builtin_comparison_error, python_round

# how many leading positional arguments of a numpy function are arrays ("list": the first is a sequence of arrays)
_ARRAY_ARGS = {"where": 3, "clip": 3, "dot": 2, "matmul": 2, "vdot": 2, "inner": 2, "outer": 2, "tensordot": 2,
               "concatenate": "list", "concat": "list", "stack": "list", "full_like": 2, "einsum": "einsum"}


def _concretization(what, v: Value):
    return ConcretizationError(
        f"{what} was called on a traced value of type {v.type} (it has no concrete value while tracejit traces the "
        f"function). Python control flow cannot depend on traced values: use np.where(cond, x, y) or "
        f"tj.cond / tj.switch for data-dependent choices, tj.fori_loop / tj.while_loop / tj.scan for loops whose "
        f"trip count or exit depends on data, or pass the argument as static (tj.jit(f, static_argnums=...)).")


def wrap(x):
    if isinstance(x, Value):
        return Tracer(x)
    if isinstance(x, tuple):  # numpy 2's named results (EighResult, ...) keep their class
        items = [wrap(e) for e in x]
        return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
    if isinstance(x, list):
        return [wrap(e) for e in x]
    return x


def unwrap(x):
    if isinstance(x, Tracer):
        return x._tj_value
    if isinstance(x, np.ndarray):
        return x if x.dtype.kind == "c" else ops.as_value(x)  # complex constants: complex_functions takes them
    if isinstance(x, list):
        return [unwrap(e) for e in x]
    if isinstance(x, tuple):
        return tuple(unwrap(e) for e in x)
    return x


def call_numpy(name, args, kwargs):
    """Run tracejit's implementation of numpy function ``name`` on tracers / arrays / scalars. ``out=`` writes the
    result into the given (traced) array, as numpy; results of numpy's view functions remember their base."""
    out = kwargs.get("out")
    if out is not None:
        kwargs = {k: v for k, v in kwargs.items() if k != "out"}
        res = call_numpy(name, args, kwargs)
        return _write_out(name, out, res)
    if involves_complex(args, kwargs):
        return complex_functions.call(name, args, kwargs)
    if name in _SPECIAL:
        return _SPECIAL[name](*args, **kwargs)
    res = _call_impl(name, args, kwargs)
    if name in _VIEW_FUNCS and args and isinstance(args[0], Tracer) and isinstance(res, Tracer):
        if res._v is args[0]._tj_value and name in ("asarray", "asanyarray", "ascontiguousarray"):
            return args[0]  # numpy returns the very same array object
        res._link = _Link(args[0], None, None)  # writes into it make the base unreadable (see _Link)
    return res


def _call_impl(name, args, kwargs):
    f = npi.IMPLS.get(name)
    if f is None:
        raise UnsupportedError(f"np.{name} is not supported on traced values by tracejit")
    # ufuncs take Python scalars as they are: whether a Python int fits is decided against the other operand
    spec = _ARRAY_ARGS.get(name, 0 if getattr(f, "takes_scalars", False) else 1)
    args = list(args)
    if spec == "list":
        args[0] = [ops.as_value(unwrap(a)) for a in args[0]]
    elif spec == "einsum":
        args[1:] = [ops.as_value(unwrap(a)) for a in args[1:]]
    else:
        for i in range(min(spec, len(args))):
            if args[i] is not None:
                args[i] = ops.as_value(unwrap(args[i]))
    args = [unwrap(a) for a in args]
    kwargs = {k: unwrap(v) for k, v in kwargs.items()}
    return wrap(f(*args, **kwargs))


# numpy functions whose result may share memory with their first argument: writing into such a result updates the
# base in numpy only when the result is a view (it depends on the layout), so tracejit does not guess: the base
# becomes unreadable instead (an error at its next use), never silently stale. Basic indexing and .T/transpose are
# exact views (see _Link).
_VIEW_FUNCS = {"transpose", "flip", "fliplr", "flipud", "rot90", "reshape", "ravel", "squeeze", "expand_dims", "swapaxes", "moveaxis", "broadcast_to", "atleast_1d",
               "atleast_2d", "atleast_3d", "asarray", "asanyarray", "ascontiguousarray", "diagonal", "real"}


def _write_out(name, out, res):
    """``np.<f>(..., out=o)``: the result cast into ``o`` (numpy's same_kind rule), ``o`` returned."""
    tup = isinstance(out, tuple)
    outs = out if tup else (out,)
    ress = res if isinstance(res, tuple) else (res,)
    if len(outs) != len(ress):
        raise ValueError(f"np.{name}: out= has {len(outs)} arrays but the function returns {len(ress)}")
    for o, r in zip(outs, ress):
        if o is None:
            continue
        if not isinstance(o, Tracer):
            raise UnsupportedError(f"np.{name}(..., out=a) with a numpy array made outside the traced function "
                                   f"cannot be written by tracejit; create it inside (np.empty/np.zeros) or return "
                                   f"the result")
        _check_same_kind(name, r.dtype, o.dtype)
        o[...] = r
    return outs[0] if len(outs) == 1 and not isinstance(res, tuple) else out


def _check_same_kind(name, src, dst):
    if not np.can_cast(src, dst, "same_kind"):
        raise TypeError(
            f"Cannot cast ufunc '{name}' output from dtype('{src}') to dtype('{dst}') with casting rule 'same_kind'")


def _copyto(dst, src, casting="same_kind", where=True):
    if not isinstance(dst, Tracer):
        raise UnsupportedError("np.copyto into a numpy array made outside the traced function cannot be written by "
                               "tracejit; create the destination inside the function or return the result")
    s = ops.as_value(unwrap(src))
    if not np.can_cast(s.dtype, dst.dtype, casting):
        raise TypeError(f"Cannot cast array data from dtype('{s.dtype}') to dtype('{dst.dtype}') according to the "
                        f"rule '{casting}'")
    if where is True:
        dst[...] = wrap(s)
    else:
        s = ops.broadcast_to(ops.convert(s, dst.dtype), dst.shape) if s.dtype != dst.dtype else s
        dst[...] = call_numpy("where", [where, wrap(s), dst], {})


def _fill_diagonal(a, val, wrap=False):
    """numpy's in-place ``np.fill_diagonal``: flat positions 0, step, 2*step, ... (step = 1 + the sum of the
    row-major strides in elements); a tall 2-D array stops after its square part unless ``wrap``."""
    if not isinstance(a, Tracer):
        raise UnsupportedError("np.fill_diagonal into a numpy array made outside the traced function cannot be "
                               "written by tracejit; create the array inside the function or return the result")
    if a.ndim < 2:
        raise ValueError("array must be at least 2-d")
    if a.ndim > 2 and any(d is not a.shape[0] and d != a.shape[0] for d in a.shape):
        raise ValueError("All dimensions of input must be of equal length")
    if np.ndim(val) != 0:
        raise UnsupportedError("np.fill_diagonal with an array of values is not supported by tracejit; pass a "
                               "scalar, or write the diagonal with a[np.arange(n), np.arange(n)] = values")
    shape = a.shape
    step = 1
    stride = 1
    for d in reversed(shape[1:]):
        stride = stride * d
        step = step + stride
    flat = Tracer(ops.reshape(ops.iota(T.prod(shape)), shape))  # (the argument `wrap` hides wrap())
    mask = flat % step == 0
    if a.ndim == 2 and not wrap:
        mask = mask & (flat < shape[1] * shape[1])
    a[...] = call_numpy("where", [mask, val, a], {})


def _ptp(a, axis=None, out=None, keepdims=False):
    if out is not None:
        raise UnsupportedError("np.ptp(..., out=) is not supported by tracejit; use the returned array")
    return wrap(unwrap(a)).ptp(axis, keepdims) if not isinstance(a, Tracer) else a.ptp(axis, keepdims)


def _put_along_axis(arr, indices, values, axis, inplace=True):
    """numpy's in-place ``np.put_along_axis``: numpy's own definition, ``arr[fancy index] = values`` (the index
    along ``axis``, aranges on the other axes), as a write into the tracer: repeated indices keep the last write,
    aliases and a jitted function's argument see the update, and it returns None. ``inplace=False`` is
    tracejit.numpy's functional form (JAX's), returning the new array."""
    if not inplace:
        return _call_impl("put_along_axis", [arr, indices, values, axis], {"inplace": False})
    if not isinstance(arr, Tracer):
        raise UnsupportedError("np.put_along_axis into a numpy array made outside the traced function cannot be "
                               "written by tracejit; create the array inside the function, or use "
                               "tracejit.numpy.put_along_axis(arr, indices, values, axis, inplace=False)")
    idx = ops.as_value(unwrap(indices))
    if idx.dtype.kind not in "iu":
        raise IndexError("`indices` must be an integer array")
    if axis is None:
        if idx.ndim != 1:
            raise ValueError("when axis=None, `indices` must have a single dimension.")
        flat = Tracer(ops.reshape(arr._tj_value, (T.prod(arr.shape),)))
        flat[idx] = values
        arr[...] = wrap(ops.reshape(flat._tj_value, arr.shape))
        return None
    ax = ops.normalize_axis(axis, arr.ndim)[0]
    if idx.ndim != arr.ndim:
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    arr[tuple(idx if j == ax else ops.reshape(ops.iota(n), tuple(n if i == j else 1 for i in range(arr.ndim)))
              for j, n in enumerate(arr.shape))] = values
    return None


_SPECIAL = {"copyto": _copyto, "fill_diagonal": _fill_diagonal, "ptp": _ptp, "put_along_axis": _put_along_axis}


class _Link:
    """How a traced array derives from another one (its base). ``fwd(base) -> view`` and ``bwd(base, view) ->
    base`` make an exact view: a write into it rebuilds the base, and it is recomputed when the base changes.
    Without them it is an untracked view: writing into it marks the base unreadable."""
    __slots__ = ("base", "fwd", "bwd", "seen", "key")

    def __init__(self, base, fwd, bwd, key=None):
        self.base, self.fwd, self.bwd, self.key = base, fwd, bwd, key
        self.seen = base._tj_value


class Tracer:
    """An array under tracing, backed by an IR Value."""

    __slots__ = ("_v", "_link", "_stale", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, value: Value, link=None):
        self._v = value
        self._link = link
        self._stale = None

    @property
    def _tj_value(self) -> Value:
        """The array's current value: a view is recomputed from its base when the base was written."""
        link = self._link
        if link is not None and link.fwd is not None:
            bv = link.base._tj_value
            if bv is not link.seen:
                self._v = link.fwd(bv)
                link.seen = bv
        if self._stale is not None:
            raise UnsupportedError(self._stale)
        return self._v

    def _assign(self, new: Value):
        """Rebind this array to ``new`` (a write), and its base through the view chain."""
        if new.dtype != self._v.dtype or new.shape != self._v.shape:
            new = ops.broadcast_to(ops.convert(new, self._v.dtype) if new.dtype != self._v.dtype else new,
                                   self._v.shape)
        link = self._link
        self._v = new
        if link is None:
            return
        if link.fwd is None:
            link.base._stale = (
                f"this array was read after a write into the result of a function that may return a view of it "
                f"(reshape, ravel, squeeze, ...): numpy updates it only when that result is a view, which depends on "
                f"the memory layout, so tracejit does not guess. Write into the array itself (x[...] = ...), or "
                f"copy the result first (.copy()). The write was at {guards.user_line()}")
            return
        base = link.base
        base._assign(link.bwd(base._tj_value, new))
        link.seen = base._v

    # numpy protocols ----------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method == "__call__":
            return call_numpy(ufunc.__name__, [unwrap(x) for x in inputs], kwargs)
        if method == "reduce" and ufunc.__name__ in ("add", "multiply", "maximum", "minimum", "logical_and",
                                                      "logical_or"):
            red = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min", "logical_and": "all",
                   "logical_or": "any"}[ufunc.__name__]
            kwargs.setdefault("axis", 0)
            if red in ("max", "min", "all", "any") and kwargs.get("dtype") is not None:
                if red in ("all", "any"):
                    raise UnsupportedError(f"np.{ufunc.__name__}.reduce with dtype= is not supported by tracejit")
                inputs = (call_numpy("astype", [inputs[0], kwargs.pop("dtype")], {}),)  # reduced in dtype
            kwargs = {k: v for k, v in kwargs.items() if not (k == "dtype" and v is None and red not in ("sum", "prod"))}
            return call_numpy(red, inputs, kwargs)
        if method == "accumulate" and ufunc.__name__ in ("add", "multiply", "maximum", "minimum") \
                and len(inputs) == 1:
            from .numpy_more import ufunc_accumulate
            return wrap(ufunc_accumulate(ufunc.__name__, ops.as_value(unwrap(inputs[0])), **kwargs))
        if method == "at" and ufunc.__name__ in ("add", "subtract") and len(inputs) == 3:
            x, idx, v = inputs
            if not isinstance(x, Tracer):
                raise UnsupportedError(f"np.{ufunc.__name__}.at into a numpy array made outside the traced function "
                                       f"cannot be written by tracejit; create it inside the function")
            x._assign(writes.add_at(x._tj_value, unwrap(idx), ops.as_value(unwrap(v)),
                                    negate=ufunc.__name__ == "subtract"))
            return None
        raise UnsupportedError(f"np.{ufunc.__name__}.{method} is not supported on traced values by tracejit")

    def __array_function__(self, func, types, args, kwargs):
        return call_numpy(func.__name__, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        # np.arange(n), np.zeros(n), np.full(n, v) on an int argument: numpy converts it to an array first
        c = guards.concrete_value(self._tj_value, "np.asarray()") if self.ndim == 0 else None
        if c is not None:
            return np.asarray(c, dtype=dtype if dtype is not None else self.dtype)
        e = _concretization("np.asarray() (conversion to a concrete numpy array)", self._tj_value)
        e.from_asarray = True  # trace() adds a hint when a list argument of numbers was the cause
        raise e

    # properties ---------------------------------------------------------------------------------
    @property
    def shape(self):
        return self._tj_value.shape

    @property
    def ndim(self):
        return self._tj_value.ndim

    @property
    def dtype(self):
        return self._tj_value.dtype

    @property
    def size(self):
        return T.prod(self.shape)

    @property
    def T(self):
        return Tracer(ops.transpose(self._tj_value),
                      _Link(self, lambda b: ops.transpose(b), lambda b, v: ops.transpose(v)))

    @property
    def mT(self):
        nd = self.ndim
        return wrap(ops.transpose(self._tj_value, tuple(range(nd - 2)) + (nd - 1, nd - 2)))

    def __repr__(self):
        return f"Tracer<{self._tj_value.type}>"

    # concreteness -------------------------------------------------------------------------------
    def _concrete(self, what):
        """The value Python needs, when it depends only on int/bool arguments (specialized, with a guard)."""
        c = guards.concrete_value(self._tj_value, what)
        if c is None:
            raise _concretization(what, self._tj_value)
        return c

    def __bool__(self):
        try:
            return bool(self._concrete("bool() (an `if`, `while`, `and`/`or` or assert on an array)"))
        except ConcretizationError as err:  # Python's max(a, b) / min(a, b) get numpy's names in the message
            raise builtin_comparison_error(err, sys._getframe(1)) from None

    def __float__(self):
        return float(self._concrete("float()"))

    def __int__(self):
        return int(self._concrete("int()"))

    def __index__(self):
        return int(self._concrete("int() / use as an index"))

    def __complex__(self):
        raise _concretization("complex()", self._tj_value)

    def item(self, *a):
        raise _concretization(".item()", self._tj_value)

    def tolist(self):
        raise _concretization(".tolist()", self._tj_value)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        d = self.shape[0]
        if isinstance(d, T.Dim) and guards.current() is not None:
            return guards.dim_value(d)  # the traced call's length, with a guard on the cache entry
        if isinstance(d, T.Dim):
            raise ConcretizationError(
                f"len() of a traced array whose first dimension has the symbolic length {d}: lengths other than 1 "
                f"are read at run time. Use x.shape[0] in array expressions, or mark the argument static "
                f"(static_argnums).")
        return d

    def __iter__(self):
        n = len(self)
        return iter([self[i] for i in range(n)])

    __hash__ = None

    # operators ----------------------------------------------------------------------------------
    def _bin(name, reflected=False):
        def f(self, other):
            if isinstance(other, (str, bytes, dict, set)) or other is None:
                return NotImplemented
            a, b = (other, self) if reflected else (self, other)
            return call_numpy(name, [unwrap(a), unwrap(b)], {})
        return f

    __add__, __radd__ = _bin("add"), _bin("add", True)
    __sub__, __rsub__ = _bin("subtract"), _bin("subtract", True)
    __mul__, __rmul__ = _bin("multiply"), _bin("multiply", True)
    __truediv__, __rtruediv__ = _bin("divide"), _bin("divide", True)
    __floordiv__, __rfloordiv__ = _bin("floor_divide"), _bin("floor_divide", True)
    __mod__, __rmod__ = _bin("remainder"), _bin("remainder", True)
    __pow__, __rpow__ = _bin("power"), _bin("power", True)
    __matmul__, __rmatmul__ = _bin("matmul"), _bin("matmul", True)
    __divmod__, __rdivmod__ = _bin("divmod"), _bin("divmod", True)
    __and__, __rand__ = _bin("bitwise_and"), _bin("bitwise_and", True)
    __lshift__, __rlshift__ = _bin("left_shift"), _bin("left_shift", True)
    __rshift__, __rrshift__ = _bin("right_shift"), _bin("right_shift", True)
    __or__, __ror__ = _bin("bitwise_or"), _bin("bitwise_or", True)
    __xor__, __rxor__ = _bin("bitwise_xor"), _bin("bitwise_xor", True)
    __lt__, __le__ = _bin("less"), _bin("less_equal")
    __gt__, __ge__ = _bin("greater"), _bin("greater_equal")
    __eq__, __ne__ = _bin("equal"), _bin("not_equal")
    del _bin

    def __neg__(self):
        if self.dtype == T.BOOL:
            raise TypeError("The numpy boolean negative, the `-` operator, is not supported, use the `~` operator "
                            "or the logical_not function instead.")
        return call_numpy("negative", [self], {})

    def __round__(self, ndigits=None):
        return wrap(python_round(self, ndigits))

    def __pos__(self):
        return self

    def __abs__(self):
        return call_numpy("absolute", [self], {})

    def __invert__(self):
        return call_numpy("invert", [self], {})

    # methods ------------------------------------------------------------------------------------
    def _method(name):
        def f(self, *args, **kwargs):
            return call_numpy(name, [self, *args], kwargs)
        f.__name__ = name
        return f

    sum = _method("sum")
    prod = _method("prod")
    mean = _method("mean")
    var = _method("var")
    std = _method("std")
    max = _method("max")
    min = _method("min")
    argmax = _method("argmax")
    argmin = _method("argmin")
    any = _method("any")
    all = _method("all")
    clip = _method("clip")
    dot = _method("dot")
    ravel = _method("ravel")
    squeeze = _method("squeeze")
    swapaxes = _method("swapaxes")
    copy = _method("copy")
    argsort = _method("argsort")
    nonzero = _method("nonzero")
    cumsum = _method("cumsum")
    cumprod = _method("cumprod")
    diagonal = _method("diagonal")
    repeat = _method("repeat")
    round = _method("round")
    take = _method("take")
    trace = _method("trace")
    searchsorted = _method("searchsorted")
    argpartition = _method("argpartition")
    conj = conjugate = _method("conjugate")
    del _method

    def ptp(self, axis=None, keepdims=False):
        return call_numpy("max", [self, axis], {"keepdims": keepdims}) - \
            call_numpy("min", [self, axis], {"keepdims": keepdims})

    def compress(self, condition, axis=None):
        return call_numpy("compress", [condition, self, axis], {})

    def partition(self, kth, axis=-1, kind="introselect", order=None):
        """In place, as ndarray.partition."""
        self[...] = call_numpy("partition", [self, kth, axis, kind, order], {})

    @property
    def real(self):
        return self  # real dtypes only (complex ones are refused where arrays enter)

    @property
    def imag(self):
        return call_numpy("zeros_like", [self], {})

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    def sort(self, axis=-1, kind=None, order=None):
        """In place, as ndarray.sort."""
        self[...] = call_numpy("sort", [self, axis, kind, order], {})

    def reshape(self, *shape, order="C"):
        if len(shape) == 1:
            shape = shape[0]
        return call_numpy("reshape", [self, shape], {"order": order})

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return call_numpy("transpose", [self, axes or None], {})

    def astype(self, dtype, copy=True):
        return call_numpy("astype", [self, dtype], {})

    def flatten(self, order="C"):
        return self.ravel(order)

    # indexing -----------------------------------------------------------------------------------
    def __getitem__(self, key):
        if masked.is_mask_key(key):  # lazy while only written back through the mask (x[m] -= v)
            return masked.MaskedSelection(self._tj_value, masked.mask_of(key))
        value = getitem(self._tj_value, key)
        if is_basic(key):  # an exact view: writes into it reach this array, and it sees this array's writes
            k = key
            return Tracer(value, _Link(self, lambda b: getitem(b, k), lambda b, v: writes.set_item(b, k, v), k))
        return wrap(value)

    def __setitem__(self, key, value):
        if isinstance(value, masked.MaskedSelection):
            if masked.is_mask_key(key):
                self._assign(masked.write_back(self._tj_value, masked.mask_of(key), value))
                return
            value = value.tracer()  # the selected elements themselves (a data-dependent length)
        link = getattr(value, "_link", None)
        if link is not None and link.base is self and link.seen is self._v and same_key(link.key, key):
            return  # x[k] op= v: the view x[k] already wrote itself into x (no second splice)
        self._assign(writes.set_item(self._tj_value, key, ops.as_value(unwrap(value))))

    def fill(self, value):
        self[...] = value

    # in-place operators: the result cast into this array (numpy's same_kind rule), which every alias sees
    def _inplace(name):
        def f(self, other):
            if isinstance(other, (str, bytes, dict, set)) or other is None:
                return NotImplemented
            r = call_numpy(name, [self, unwrap(other)], {})
            _check_same_kind(name, r.dtype, self.dtype)
            self[...] = r
            return self
        return f

    __iadd__, __isub__, __imul__ = _inplace("add"), _inplace("subtract"), _inplace("multiply")
    __itruediv__, __ifloordiv__, __imod__ = _inplace("divide"), _inplace("floor_divide"), _inplace("remainder")
    __ipow__, __imatmul__ = _inplace("power"), _inplace("matmul")
    __iand__, __ior__, __ixor__ = _inplace("bitwise_and"), _inplace("bitwise_or"), _inplace("bitwise_xor")
    del _inplace


_types.WRAP = wrap  # Dim.traced() hands lengths to user code as tracers
