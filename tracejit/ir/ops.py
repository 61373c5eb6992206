"""Building equations: ``bind`` (hash-consed), constants, and numpy-semantics helpers over Values.

The tracer, the Theano-style API, autodiff rules and rewrites all build IR through these functions, so numpy's
dtype promotion, broadcasting and axis rules are implemented once.
"""
from __future__ import annotations

import threading

import numpy as np
from numpy.exceptions import AxisError

from . import types as T
from .constraints import Constraint
from . import graph as G
from .graph import Equation, Value, const_key, freeze_params
from .primitives import LIBRARY_TYPES, PRIMS, unbacked_outputs, UFUNCS, elementwise_dtypes, reduce_dtype
from .types import Dim, TensorType

_state = threading.local()


class Builder:
    """Hash-cons table and shape constraints of the graph being built (one per trace or pass run)."""

    def __init__(self):
        self.table: dict = {}
        self.consts: dict = {}
        self.constraints: list = []
        self.checks: list = []  # (bool Value, exception type, message): raise when the value is true at run time
        # arrays whose id keys a large constant: kept alive with the table, so no later array can reuse the id (a
        # temporary np.arange freed after its constant was made must not alias the next temporary's constant)
        self.keyed_arrays: list = []

    def __enter__(self):
        stack = getattr(_state, "stack", None)
        if stack is None:
            stack = _state.stack = []
        stack.append(self)
        return self

    def __exit__(self, *exc):
        _state.stack.pop()


_default_builder = None


def nesting() -> int:
    """How many traces are open: 2 or more inside a loop or branch body traced within a function."""
    return len(getattr(_state, "stack", None) or ())


def current() -> Builder:
    stack = getattr(_state, "stack", None)
    if stack:
        return stack[-1]
    global _default_builder
    if _default_builder is None:
        _default_builder = Builder()
    return _default_builder


# ------------------------------------------------------------------------------------------------ core


def constant(value, dtype=None, weak=False) -> Value:
    arr = np.asarray(value, dtype=dtype)
    if arr.dtype not in T.SUPPORTED_DTYPES:
        T.check_dtype(arr.dtype, "a constant")
    b = current()
    key = const_key(arr) + (weak,)
    hit = b.consts.get(key)
    if hit is not None:
        return hit
    if key[0] == "cid":
        b.keyed_arrays.append(arr)
    arr = arr.copy() if arr.flags.writeable else arr
    arr.flags.writeable = False
    v = Value(TensorType(arr.dtype, arr.shape, weak), const=arr)
    b.consts[key] = v
    return v


def _type_of(prim, inputs, params) -> TensorType:
    P = PRIMS[prim]
    if P.kind == "elementwise":
        if prim == "convert":
            return TensorType(params["dtype"], inputs[0].shape, False)
        _, out_dt, weak = elementwise_dtypes(prim, [v.type for v in inputs])
        shape = T.broadcast_shapes(*[v.shape for v in inputs], constraints=current().constraints)
        return TensorType(out_dt, shape, weak and all(v.ndim == 0 for v in inputs))
    if P.kind == "reduce":
        axes = params["axes"]
        shape = tuple(d for i, d in enumerate(inputs[0].shape) if i not in axes)
        return TensorType(reduce_dtype(prim, inputs[0].dtype), shape)
    if P.kind == "library":  # a library routine's result (primitives.LIBRARY_TYPES)
        return LIBRARY_TYPES[prim](inputs, params)
    x = inputs[0] if inputs else None
    if prim in ("reshape", "broadcast_to"):
        return TensorType(x.dtype, tuple(params["shape"]), x.type.weak and not params["shape"])
    if prim == "transpose":
        return TensorType(x.dtype, tuple(x.shape[p] for p in params["perm"]))
    if prim == "slice":
        return TensorType(x.dtype, tuple(params["shape"]))
    if prim == "matmul":
        return _matmul_type(*inputs)
    if prim == "concatenate":
        ax = params["axis"]
        total = 0
        for v in inputs:
            total = total + v.shape[ax]
        shape = list(inputs[0].shape)
        shape[ax] = total
        return TensorType(inputs[0].dtype, tuple(shape))
    if prim == "gather":
        idx = inputs[1]
        ax = params["axis"]
        return TensorType(x.dtype, x.shape[:ax] + idx.shape + x.shape[ax + 1:])
    if prim == "scatter_add":
        g, idx = inputs
        ax = params["axis"]
        return TensorType(g.dtype, g.shape[:ax] + (params["size"],) + g.shape[ax + idx.ndim:])
    if prim == "dimsize":
        return TensorType(T.INT64, (), weak=True)
    if prim == "iota":
        return TensorType(T.INT64, (params["length"],))
    if prim in ("custom_vjp_call", "remat_barrier"):
        return x.type
    if P.kind == "region":
        from .regions import type_of
        return type_of(prim, params)
    raise NotImplementedError(prim)


def bind(prim: str, *inputs: Value, **params) -> Value:
    """Append (or find) the equation ``prim(*inputs, **params)`` and return its output Value."""
    P = PRIMS[prim]
    fparams = freeze_params(params)
    ids = tuple(v.id for v in inputs)
    if P.commutative:
        ids = tuple(sorted(ids))
    key = (prim, ids, fparams)
    b = current()
    hit = b.table.get(key)
    if hit is not None:
        return hit
    out_type = _type_of(prim, inputs, params)
    eqn = Equation(prim, tuple(inputs), fparams)
    v = Value(out_type, eqn)
    eqn.out = v
    b.table[key] = v
    if T.UNBACKED_SOURCES:
        eqn.length_deps = tuple(src.out for src in G.length_sources(eqn))
    if P.kind == "library":  # the data-dependent lengths it binds (see graph.toposort)
        for sym in unbacked_outputs(eqn):
            T.UNBACKED_SOURCES[sym] = v
    return v


def add_check(flag: Value, exc: type, message: str) -> None:
    """Raise ``exc(message)`` from the call when the 0-d bool ``flag`` is true at run time (a failure only the data
    can show, such as a negative integer exponent); the traced program computes the flag as an extra output, and
    the caller raises before handing any output back."""
    b = current()
    if not any(f is flag and m == message for f, _, m in b.checks):
        b.checks.append((flag, exc, message))


def require_nonempty(n, what: str) -> None:
    """numpy's error when a length ``n`` (static or symbolic) that must not be 0 is 0: at trace time when it is
    known, else a run-time check on the input lengths (``min(n, 1) == 1``)."""
    if isinstance(n, int):
        if n == 0:
            raise ValueError(what)
        return
    current().constraints.append(Constraint.same(T.dim_min(n, 1), 1, what.replace("{", "{{").replace("}", "}}")))


# ------------------------------------------------------------------------------------------------ numpy-style


def convert(x: Value, dtype) -> Value:
    dtype = np.dtype(dtype)
    if dtype not in T.SUPPORTED_DTYPES:  # the backends store only these: anything else would be a wrong layout
        raise TypeError(f"cannot convert a {x.dtype} value to {dtype} inside a traced function: tracejit computes "
                        f"in {T.SUPPORTED_NAMES}; convert the result after the call instead "
                        f"(f(x).astype(np.{dtype.name}))")
    if x.dtype == dtype:
        if x.type.weak:
            if x.is_const:
                return constant(x.const, dtype)
            return bind("convert", x, dtype=dtype)
        return x
    if x.is_const:
        with np.errstate(over="ignore", invalid="ignore"):  # as numpy's astype: 1e300 -> inf in float32
            return constant(x.const.astype(dtype), weak=False)
    return bind("convert", x, dtype=dtype)


def ufunc(prim: str, *xs) -> Value:
    """Apply an elementwise primitive with numpy's promotion: inputs are converted to the compute dtype, and Python
    ints that do not fit it raise OverflowError as in numpy 2 (NEP 50)."""
    prim, xs = _python_int_operands(prim, xs)
    xs = tuple(as_value(x) for x in xs)
    if prim in COMPARISONS:
        xs = _widen_for_weak_int(xs)
    ins, _, weak = elementwise_dtypes(prim, [x.type for x in xs])
    if prim == "where":
        conv = [convert(xs[0], T.BOOL) if xs[0].dtype != T.BOOL else xs[0]]
        conv += [x if (x.dtype == d and (weak or not x.type.weak)) else convert(x, d) for x, d in zip(xs[1:], ins[1:])]
        return bind(prim, *conv)
    if prim in UFUNCS:
        for x, d in zip(xs, ins):
            check_weak_int(x, d, prim)
    conv = [x if (x.dtype == d and (weak or not x.type.weak)) else convert(x, d) for x, d in zip(xs, ins)]
    out = bind(prim, *conv)
    if prim == "power" and ins[1].kind in "iu":
        _check_int_exponent(conv[1], out.shape)
    return out


COMPARISONS = ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
_MIRROR = {"less": "greater", "less_equal": "greater_equal", "greater": "less", "greater_equal": "less_equal",
           "equal": "equal", "not_equal": "not_equal"}
# ``x OP v`` for an int v above (below) every value of x's dtype has the answer of ``x OP' max`` (``x OP' min``)
_ABOVE = {"less": "less_equal", "less_equal": "less_equal", "greater": "greater", "greater_equal": "greater",
          "equal": "greater", "not_equal": "less_equal"}
_BELOW = {"less": "less", "less_equal": "less", "greater": "greater_equal", "greater_equal": "greater_equal",
          "equal": "less", "not_equal": "greater_equal"}


def _is_pyint(x) -> bool:
    return isinstance(x, int) and not isinstance(x, (bool, np.generic))


def _python_int_operands(prim, xs):
    """numpy 2 compares an int array with any Python int exactly, and adds a too-big-for-int64 Python int to a
    float array as a float; everything else about a Python int that does not fit is an OverflowError (later)."""
    if len(xs) != 2 or prim not in UFUNCS or not any(_is_pyint(x) for x in xs):
        return prim, xs
    i = 0 if _is_pyint(xs[0]) else 1
    v, other = xs[i], as_value(xs[1 - i])
    if prim in COMPARISONS and other.dtype.kind in "iu" and not other.type.weak:
        info = np.iinfo(other.dtype)
        if not info.min <= v <= info.max:
            if i == 0:
                prim = _MIRROR[prim]
            prim, v = (_ABOVE[prim], int(info.max)) if v > info.max else (_BELOW[prim], int(info.min))
            return prim, (other, v)
    if other.dtype.kind == "f" and not -2 ** 63 <= v < 2 ** 63:
        v = float(v) if abs(v) < 2 ** 1024 else (np.inf if v > 0 else -np.inf)
        return prim, ((v, other) if i == 0 else (other, v))
    return prim, xs


def _widen_for_weak_int(xs):
    """A comparison of a narrow int array with a Python int known only at run time is computed in int64: numpy
    answers it exactly whatever the int's size."""
    if not any(x.type.weak and x.dtype.kind == "i" and not x.is_const for x in xs):
        return xs
    return tuple(convert(x, T.INT64) if x.dtype.kind in "iu" and not x.type.weak and x.dtype.itemsize < 8 else x
                 for x in xs)


def check_weak_int(x: Value, dtype, what: str) -> None:
    """numpy 2 (NEP 50) raises OverflowError when a Python int is used with an array of a narrower int dtype it
    does not fit; a constant is checked now, a Python int argument (or value computed from them) at each call."""
    dtype = np.dtype(dtype)
    if not (x.type.weak and x.dtype.kind == "i" and dtype.kind in "iu"
            and (dtype.itemsize < x.dtype.itemsize or dtype.kind == "u")):
        return
    info = np.iinfo(dtype)
    if x.is_const:
        v = int(x.const)
        if not info.min <= v <= info.max:
            raise OverflowError(f"Python integer {v} out of bounds for {dtype} (np.{what} of {dtype} values and "
                                f"a Python int computes in {dtype}, as in numpy 2); use np.int64({v}) or convert "
                                f"the array first (x.astype(np.int64))")
        return
    if x.eqn is not None and x.eqn.prim == "dimsize":
        return  # an array length: it fits any index type the array it measures could have
    top = min(int(info.max), int(np.iinfo(np.int64).max))  # a Python int argument is traced as an int64
    lo, hi = constant(int(info.min), T.INT64, weak=True), constant(top, T.INT64, weak=True)
    flag = ufunc("logical_or", ufunc("less", x, lo), ufunc("greater", x, hi))
    add_check(flag, OverflowError, f"a Python int argument is out of bounds for {dtype}, the dtype np.{what} computes "
                                   f"in with the {dtype} array it meets (numpy 2 raises here too, NEP 50); pass it "
                                   f"as np.int64(k), or convert the array first (x.astype(np.int64))")


_NEG_POWER = "Integers to negative integer powers are not allowed."


def _check_int_exponent(e: Value, out_shape) -> None:
    """numpy raises ValueError for a negative integer exponent: at trace time for a constant exponent, else a
    run-time check over the exponents actually used (none for an empty result)."""
    hint = (" (np.power of an integer base); use a float base for negative powers, e.g. "
            "x.astype(np.float64) ** y")
    if e.is_const:
        if np.any(np.asarray(e.const) < 0) and 0 not in out_shape:
            raise ValueError(_NEG_POWER + hint)
        return
    neg = ufunc("less", e, constant(0, e.dtype, weak=True))
    if neg.shape != tuple(out_shape):
        neg = broadcast_to(neg, out_shape)
    add_check(reduce("any", neg) if neg.ndim else neg, ValueError, _NEG_POWER + hint)


def normalize_axis(axis, ndim, what="axis") -> tuple:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise AxisError(a, ndim)
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    return tuple(sorted(out))


def reduce(prim: str, x: Value, axis=None, keepdims=False) -> Value:
    axes = normalize_axis(axis, x.ndim)
    if prim in ("argmax", "argmin") and axis is not None and isinstance(axis, (tuple, list)):
        raise TypeError(f"np.{prim}: axis must be an integer or None, got {axis!r}")
    if not axes:
        out = x if prim not in ("argmax", "argmin", "any", "all") else None
        if out is None:
            out = bind(prim, x, axes=())
        elif reduce_dtype(prim, x.dtype) != x.dtype:  # sum of a 0-d bool/int32 is int64, as in numpy
            out = convert(x, reduce_dtype(prim, x.dtype))
    else:
        if prim in ("sum", "prod") and x.dtype in (T.BOOL, T.INT32):
            pass  # reduce_dtype widens, as numpy does
        out = bind(prim, x, axes=axes)
    if keepdims:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        out = reshape(out, shape)
    return out


def reshape(x: Value, shape) -> Value:
    shape = tuple(shape)
    if shape == x.shape:
        return x
    if x.is_const:
        return constant(x.const.reshape(shape))
    return bind("reshape", x, shape=shape)


def resolve_reshape(x: Value, newshape) -> tuple:
    """numpy's reshape argument (with one -1) to a shape of DimLikes, checked against x's size."""
    if isinstance(newshape, (int, np.integer, Dim)):
        newshape = (newshape,)
    newshape = tuple(int(d) if isinstance(d, (int, np.integer)) else d for d in newshape)
    total = T.prod(x.shape)
    neg = [i for i, d in enumerate(newshape) if isinstance(d, int) and d == -1]
    if len(neg) > 1:
        raise ValueError("can only specify one unknown dimension")
    for d in newshape:
        if isinstance(d, int) and d < -1:
            raise ValueError(f"negative dimensions not allowed: {newshape}")
    if neg:
        known = T.prod([d for d in newshape if not (isinstance(d, int) and d == -1)])
        # numpy: -1 is ambiguous when the other lengths multiply to 0 (whatever the array's size)
        require_nonempty(known, f"cannot reshape an array of shape {_fmt(x.shape)} into shape {_fmt(newshape)}: "
                                f"the -1 is ambiguous when the other lengths ({known}) multiply to 0, as in "
                                f"numpy; give every length explicitly")
        if isinstance(known, int) and isinstance(total, int):
            if known == 0 or total % known:
                raise ValueError(f"cannot reshape array of size {total} into shape {_fmt(newshape)}")
            missing = total // known
        else:
            missing = T.dim_floordiv(total, known)  # may be opaque: the size check below then runs at call time
        newshape = newshape[:neg[0]] + (missing,) + newshape[neg[0] + 1:]
    new_total = T.prod(newshape)
    if new_total != total:
        if isinstance(new_total, int) and isinstance(total, int):
            raise ValueError(f"cannot reshape array of size {total} into shape {_fmt(newshape)}")
        current().constraints.append(Constraint.reshape(total, new_total, x.shape, newshape))
    return newshape


def _fmt(shape):
    return T.shape_str(shape)


def transpose(x: Value, perm=None) -> Value:
    if perm is None:
        perm = tuple(reversed(range(x.ndim)))
    perm = tuple(a % x.ndim if -x.ndim <= a < x.ndim else _axis_error(a, x.ndim) for a in perm)
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"axes {perm} don't match array of {x.ndim} dimensions")
    if perm == tuple(range(x.ndim)):
        return x
    return bind("transpose", x, perm=perm)


def _axis_error(a, nd):
    raise AxisError(a, nd)


def broadcast_to(x: Value, shape) -> Value:
    shape = tuple(shape)
    if shape == x.shape:
        return x
    T.broadcast_shapes(x.shape, shape, constraints=current().constraints)
    if len(shape) < x.ndim:
        raise ValueError(f"cannot broadcast a {x.ndim}-d array of shape {_fmt(x.shape)} to {_fmt(shape)}")
    for a, b in zip(x.shape[::-1], shape[::-1]):
        if a != 1 and a != b and isinstance(a, int) and isinstance(b, int):
            raise ValueError(f"cannot broadcast an array of shape {_fmt(x.shape)} to {_fmt(shape)}")
    return bind("broadcast_to", x, shape=shape)


def dimsize(d) -> Value:
    if isinstance(d, int):
        return constant(d, np.int64, weak=True)
    return bind("dimsize", dim=d)


def iota(n) -> Value:
    """int64 ``0..n-1``: a constant for a static length, else the ``iota`` primitive (computed where it is read)."""
    if isinstance(n, int):
        return constant(np.arange(n, dtype=np.int64))
    return bind("iota", length=n)


def count(shape, axes) -> Value:
    """The number of elements reduced over ``axes`` as a (weak) int64 value."""
    n = T.prod([shape[a] for a in axes])
    return dimsize(n)


def as_value(x) -> Value:
    """A Value for anything array-like: Values, tracers, numpy arrays and scalars, Python numbers (weak), lists."""
    if isinstance(x, Value):
        return x
    v = getattr(x, "_tj_value", None)
    if v is not None:
        return v() if callable(v) else v
    if isinstance(x, Dim):  # x.shape[0] used as a number
        return dimsize(x)
    if isinstance(x, np.generic):  # numpy scalars are strong (np.float64 is a float subclass: test it first)
        return constant(check_scalar(x))
    if isinstance(x, bool):
        return constant(x, T.BOOL, weak=True)
    if isinstance(x, int):
        return constant(x, T.INT64, weak=True)
    if isinstance(x, float):
        return constant(x, T.FLOAT64, weak=True)
    if isinstance(x, np.ndarray):
        arr = x
        if arr.dtype not in T.SUPPORTED_DTYPES:
            T.check_dtype(arr.dtype, "an array used in the traced function")
        return constant(arr)
    if isinstance(x, (list, tuple)):
        if any(isinstance(e, Value) or hasattr(e, "_tj_value") for e in _flat(x)):
            parts = [as_value(e) for e in x]
            if len({p.shape for p in parts}) > 1:
                raise ValueError(f"setting an array element with a sequence: the nested list is ragged (its items "
                                 f"have shapes {', '.join(T.shape_str(p.shape) for p in parts)}). {LIST_HINT}")
            dt = T.result_dtype(*[p.type for p in parts])[0]
            rows = [reshape(convert(p, dt), (1,) + tuple(p.shape)) for p in parts]  # numpy's stack along axis 0
            return rows[0] if len(rows) == 1 else bind("concatenate", *rows, axis=0)
        return as_value(np.asarray(x))
    if isinstance(x, complex):
        raise TypeError("complex numbers are not supported by tracejit")
    raise TypeError(f"cannot use an object of type {type(x).__name__} as an array in a traced function")


LIST_HINT = ("tracejit takes a list or tuple argument as a pytree (each item a separate leaf, each number a "
             "scalar), not as an array: convert it before the call, f(np.asarray(x)), if it is an array")


def check_scalar(x: np.generic) -> np.ndarray:
    """A numpy scalar as a 0-d array of a dtype tracejit computes in (its own dtype: numpy scalars are not weak)."""
    arr = np.asarray(x)
    if arr.dtype not in T.SUPPORTED_DTYPES:
        T.check_dtype(arr.dtype, f"the numpy scalar {x!r} used in the traced function")
    return arr


def _flat(x):
    for e in x:
        if isinstance(e, (list, tuple)):
            yield from _flat(e)
        else:
            yield e


def _matmul_type(a: Value, b: Value) -> TensorType:
    """matmul primitive: (batch..., n, k) @ (batch..., k, m) with equal batch shapes (numpy_api broadcasts)."""
    return TensorType(a.dtype, a.shape[:-1] + (b.shape[-1],))
