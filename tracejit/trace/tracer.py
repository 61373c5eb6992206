"""Tracer: a stand-in for an array during tracing. Every numpy operation on it appends an equation to the IR.

numpy's own functions reach it through ``__array_ufunc__`` / ``__array_function__``; misuse that needs a concrete
value (``if x > 0``, ``float(x)``) raises ConcretizationError at the user's line.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConcretizationError, UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value
from . import numpy_api as npi

# how many leading positional arguments of a numpy function are arrays ("list": the first is a sequence of arrays)
_ARRAY_ARGS = {"where": 3, "clip": 3, "dot": 2, "matmul": 2, "vdot": 2, "inner": 2, "outer": 2, "tensordot": 2,
               "concatenate": "list", "concat": "list", "stack": "list", "full_like": 2, "einsum": "einsum"}


def _concretization(what, v: Value):
    return ConcretizationError(
        f"{what} was called on a traced value of type {v.type} (it has no concrete value while tracejit traces the "
        f"function). Python control flow cannot depend on traced values: use np.where(cond, x, y) for "
        f"data-dependent choices, or pass the argument as static (tj.jit(f, static_argnums=...)).")


def wrap(x):
    if isinstance(x, Value):
        return Tracer(x)
    if isinstance(x, tuple):
        return tuple(wrap(e) for e in x)
    if isinstance(x, list):
        return [wrap(e) for e in x]
    return x


def unwrap(x):
    if isinstance(x, Tracer):
        return x._tj_value
    if isinstance(x, np.ndarray):
        return ops.as_value(x)
    if isinstance(x, list):
        return [unwrap(e) for e in x]
    if isinstance(x, tuple):
        return tuple(unwrap(e) for e in x)
    return x


def call_numpy(name, args, kwargs):
    """Run tracejit's implementation of numpy function ``name`` on tracers / arrays / scalars."""
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


class Tracer:
    """An array under tracing, backed by an IR Value."""

    __slots__ = ("_tj_value", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, value: Value):
        self._tj_value = value

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
        raise UnsupportedError(f"np.{ufunc.__name__}.{method} is not supported on traced values by tracejit")

    def __array_function__(self, func, types, args, kwargs):
        return call_numpy(func.__name__, args, kwargs)

    def __array__(self, dtype=None, copy=None):
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
        return wrap(ops.transpose(self._tj_value))

    @property
    def mT(self):
        nd = self.ndim
        return wrap(ops.transpose(self._tj_value, tuple(range(nd - 2)) + (nd - 1, nd - 2)))

    def __repr__(self):
        return f"Tracer<{self._tj_value.type}>"

    # concreteness -------------------------------------------------------------------------------
    def __bool__(self):
        raise _concretization("bool() (an `if`, `while`, `and`/`or` or assert on an array)", self._tj_value)

    def __float__(self):
        raise _concretization("float()", self._tj_value)

    def __int__(self):
        raise _concretization("int()", self._tj_value)

    def __index__(self):
        raise _concretization("int() / use as an index", self._tj_value)

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
    __and__, __rand__ = _bin("bitwise_and"), _bin("bitwise_and", True)
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
    del _method

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

    def flatten(self):
        return self.ravel()

    # indexing -----------------------------------------------------------------------------------
    def __getitem__(self, key):
        return wrap(getitem(self._tj_value, key))

    def __setitem__(self, key, value):
        raise TypeError("traced arrays are immutable: x[idx] = y is not supported inside tracejit functions; use "
                        "np.where(mask, y, x) or build the result with np.concatenate")


def getitem(x: Value, key) -> Value:
    """numpy basic indexing (ints, slices, None, Ellipsis) plus one integer-array index (a gather)."""
    if not isinstance(key, tuple):
        key = (key,)
    key = tuple(unwrap(k) if isinstance(k, Tracer) else k for k in key)
    n_real = sum(1 for k in key if k is not None and k is not Ellipsis)
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if n_real > x.ndim:
        raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, but {n_real} were indexed")
    if Ellipsis in [k for k in key if not isinstance(k, (np.ndarray, Value, list))]:
        i = [j for j, k in enumerate(key) if k is Ellipsis][0]
        key = key[:i] + (slice(None),) * (x.ndim - n_real) + key[i + 1:]
    else:
        key = key + (slice(None),) * (x.ndim - n_real)
    # squeeze: axes of x indexed by an int; new_axes: positions of the None axes in the final result
    starts, steps, out_shape, squeeze, new_axes, arrays = [], [], [], [], [], []
    axis = 0
    out_axis = 0
    for k in key:
        if k is None:
            new_axes.append(out_axis)
            out_axis += 1
            continue
        n = x.shape[axis]
        if isinstance(k, (bool, np.bool_)):
            raise UnsupportedError("boolean scalar indices are not supported by tracejit")
        if isinstance(k, (int, np.integer)):
            k = int(k)
            if isinstance(n, int):
                if not -n <= k < n:
                    raise IndexError(f"index {k} is out of bounds for axis {axis} with size {n}")
                start = k % n
            else:
                start = n + k if k < 0 else k
                ops.current().constraints.append(("index", k, n, axis))
            starts.append(start)
            steps.append(1)
            out_shape.append(1)
            squeeze.append(axis)
            out_axis -= 1  # no result axis (undone by the increment below)
        elif isinstance(k, slice):
            st, ln = _slice_dims(k, n)
            starts.append(st)
            steps.append(k.step if k.step is not None else 1)
            out_shape.append(ln)
        elif isinstance(k, (np.ndarray, list, Value)):
            idx = ops.as_value(k)
            if idx.dtype == T.BOOL:
                raise UnsupportedError("boolean mask indexing gives a data-dependent shape, which tracejit cannot "
                                       "trace; use np.where(mask, x, 0) or sum with a mask instead")
            if idx.dtype.kind not in "iu":
                raise IndexError("arrays used as indices must be of integer (or boolean) type")
            arrays.append((axis, idx))
            out_axis += idx.ndim - 1
            starts.append(0)
            steps.append(1)
            out_shape.append(n)
        else:
            raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer "
                             f"arrays are valid indices, got {type(k).__name__}")
        axis += 1
        out_axis += 1
    v = x
    if any(s != 0 for s in starts) or any(s != 1 for s in steps) or tuple(out_shape) != tuple(x.shape):
        v = ops.bind("slice", x, starts=tuple(starts), steps=tuple(steps), shape=tuple(out_shape))
    if len(arrays) > 1:
        raise UnsupportedError("indexing with more than one integer array is not supported by tracejit; index one "
                               "axis at a time")
    # integer arrays: gather along their axis (positions counted before squeezing/new axes)
    if arrays:
        real_pos, idx = arrays[0]
        if idx.dtype != T.INT64:
            idx = ops.convert(idx, T.INT64)
        v = ops.bind("gather", v, idx, axis=real_pos)
        shift = idx.ndim - 1
        squeeze = [s + shift if s > real_pos else s for s in squeeze]
    shape = [d for i, d in enumerate(v.shape) if i not in squeeze]
    shape_real = list(shape)
    for a in sorted(new_axes):
        shape_real.insert(a, 1)
    if tuple(shape_real) != v.shape:
        v = ops.reshape(v, tuple(shape_real))
    return v


def _slice_dims(k: slice, n):
    """(start, length) of slice ``k`` on an axis of length ``n`` (an int or a symbolic Dim)."""
    step = 1 if k.step is None else int(k.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    if isinstance(n, int):
        start, stop, step = k.indices(n)
        return start, len(range(start, stop, step))
    start, stop = k.start, k.stop
    if start is not None:
        start = int(start)
    if stop is not None:
        stop = int(stop)
    if step > 0:
        s = 0 if start is None else (T.dim_min(start, n) if start >= 0 else T.dim_max(n + start, 0))
        e = n if stop is None else (T.dim_min(stop, n) if stop >= 0 else T.dim_max(n + stop, 0))
        length = T.dim_max(T.dim_floordiv(e - s + (step - 1), step), 0) if step != 1 else T.dim_max(e - s, 0)
        if start is None and stop is None and step == 1:
            length = n
        return s, length
    # negative step
    s = n - 1 if start is None else (T.dim_min(start, n - 1) if start >= 0 else T.dim_max(n + start, -1))
    e = -1 if stop is None else (T.dim_min(stop, n - 1) if stop >= 0 else T.dim_max(n + stop, -1))
    length = T.dim_max(T.dim_floordiv(s - e + (-step - 1), -step), 0)
    return s, length
