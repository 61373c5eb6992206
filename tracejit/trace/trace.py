"""Python function + example arguments -> Graph. Pytrees, signatures, symbolic input shapes."""
from __future__ import annotations

import numpy as np

from ..errors import ConcretizationError, UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.graph import Graph, Value, rebuild
from ..ir.primitives import whole_complex
from ..ir.types import Dim, TensorType
from . import creation, guards
from .complex_array import COMPLEX64, COMPLEX128, ComplexArray
from .tracer import Tracer, wrap


# ------------------------------------------------------------------------------------------------ pytrees
class Leaf:
    __slots__ = ()

    def __repr__(self):
        return "*"


LEAF = Leaf()


def tree_flatten(x):
    """(leaves, treedef): tuples, lists and dicts (sorted keys) are containers; None is an empty node."""
    leaves = []
    return leaves, _flatten(x, leaves)


def _flatten(x, leaves):
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return ("t", tuple(_flatten(e, leaves) for e in x))
    if isinstance(x, tuple):  # namedtuple
        return ("nt", type(x), tuple(_flatten(e, leaves) for e in x))
    if isinstance(x, list):
        return ("l", tuple(_flatten(e, leaves) for e in x))
    if isinstance(x, dict):
        keys = sorted(x, key=repr)
        return ("d", tuple(keys), tuple(_flatten(x[k], leaves) for k in keys))
    if x is None:
        return ("n",)
    if is_complex_leaf(x):
        return _flatten_complex(x, leaves)
    leaves.append(x)
    return LEAF


def is_complex_leaf(x) -> bool:
    """A complex64/complex128 array or number (a Python complex, a traced ComplexArray): two leaves, its parts."""
    t = type(x)
    if t is np.ndarray:  # the common case first: one attribute read (every call of the general path asks)
        return x.dtype.kind == "c" and x.dtype in (COMPLEX64, COMPLEX128)
    return t is complex or t is ComplexArray or (isinstance(x, np.complexfloating)
                                                 and x.dtype in (COMPLEX64, COMPLEX128))


def _flatten_complex(x, leaves):
    """A complex array (or Python complex) is a node of its two real parts: the compiled program reads and writes
    real arrays only (see complex_array.py); ``join_complex`` makes the numpy complex array again."""
    if type(x) is complex:  # a weak scalar: its parts are Python floats
        leaves += [x.real, x.imag]
        return ("c", "weak")
    if isinstance(x, ComplexArray):
        leaves += [x.real, x.imag]
        return ("c", x.dtype)
    x = np.asarray(x)
    leaves += [x.real, x.imag]
    return ("c", x.dtype)


def join_complex(t, re, im):
    """The complex value of node ``t`` from its parts: a numpy array from a compiled program's outputs, a traced
    ComplexArray from input tracers (``t[1]``: the dtype, or "weak" for a Python complex)."""
    if isinstance(re, str):  # a printed tree (control_flow._show)
        return re
    if not isinstance(re, Tracer) and not isinstance(im, Tracer):  # the compiled program's outputs
        whole = _parts_of_one(re, im, COMPLEX128 if t[1] == "weak" else t[1])
        if whole is not None:
            return whole
        out = np.empty(np.shape(re), COMPLEX128 if t[1] == "weak" else t[1])
        out.real, out.imag = re, im
        return out
    return ComplexArray(re, im, COMPLEX128 if t[1] == "weak" else t[1], weak=t[1] == "weak")


def _parts_of_one(re, im, dtype):
    """The complex array of ``dtype`` whose parts ``re`` and ``im`` are (an FFT's result handed out by its library
    call as two views), else None: returning it saves the copy into a fresh array."""
    whole = whole_complex(re, im)
    return whole if whole is not None and whole.dtype == dtype else None


def tree_unflatten(treedef, leaves):
    # a module-level recursion, not a self-referencing closure: that would be a reference cycle holding the
    # leaves until the garbage collector runs (and keep big outputs from being recycled)
    return _unflatten(treedef, iter(leaves))


def _unflatten(t, it):
    if t is LEAF:
        return next(it)
    kind = t[0]
    if kind == "t":
        return tuple(_unflatten(e, it) for e in t[1])
    if kind == "nt":
        return t[1](*[_unflatten(e, it) for e in t[2]])
    if kind == "l":
        return [_unflatten(e, it) for e in t[1]]
    if kind == "d":
        return dict(zip(t[1], [_unflatten(e, it) for e in t[2]]))
    if kind == "chk":
        return _checked(t, it)
    if kind == "c":
        return join_complex(t, next(it), next(it))
    return None


def _checked(t, it):
    """The outputs of ``("chk", tree, ((exception, message), ...))``: the run-time checks' flags follow the
    outputs; any flag set raises its error, so the caller never sees outputs of a failed call."""
    out = _unflatten(t[1], it)
    for exc, message in t[2]:
        if _truthy(next(it)):
            raise exc(message)
    return out


def _truthy(flag) -> bool:
    host = getattr(flag, "copy_to_host", None) or getattr(flag, "get", None)  # a device array: read it back
    return bool(np.asarray(host() if host is not None else flag))


# ------------------------------------------------------------------------------------------------ signatures
_WEAK = {bool: T.BOOL, int: T.INT64, float: T.FLOAT64}


def is_device_array(x) -> bool:
    """A GPU array (``__cuda_array_interface__``, or numba's simulated one): kept on the device, never np.asarray'd."""
    return not isinstance(x, np.ndarray) and (hasattr(x, "__cuda_array_interface__")
                                              or type(x).__name__ == "FakeCUDAArray")


def _device_meta(x):
    """(shape, dtype, C-contiguous) of a device array, read without copying it to the host."""
    cai = getattr(x, "__cuda_array_interface__", None)
    if cai is None:  # numba's CUDA simulator
        return tuple(x.shape), np.dtype(x.dtype), x.is_c_contiguous()
    shape, dt = tuple(cai["shape"]), np.dtype(cai["typestr"])
    strides = cai.get("strides")
    contiguous = strides is None or all(s == c for s, c, d in zip(strides, _c_strides(shape, dt.itemsize), shape)
                                        if d != 1)
    return shape, dt, contiguous


def _c_strides(shape, item):
    out = []
    for d in reversed(shape):
        out.append(item)
        item *= d
    return out[::-1]


def leaf_signature(x, what):
    """The cache key of one argument leaf: dtype, rank, which dims are 1, C-contiguity (or a weak scalar kind).
    ``what`` names the leaf in errors: a string, or the leaf's index (formatted only when an error is raised)."""
    t = type(x)
    if t is not np.ndarray and t not in _WEAK and is_device_array(x):
        shape, dt, contiguous = _device_meta(x)
        if dt not in T.SUPPORTED_DTYPES:
            raise TypeError(f"{_desc(what)} is a device array of dtype {dt}, which tracejit does not support; use one of "
                            f"{T.SUPPORTED_NAMES}")
        return (dt.num, tuple(d == 1 for d in shape) if 1 in shape else len(shape), contiguous, "device")
    if t is np.ndarray:
        dt = x.dtype
        if dt not in T.SUPPORTED_DTYPES:
            T.check_dtype(dt, _desc(what))
        shape = x.shape
        return (dt.num, tuple(d == 1 for d in shape) if 1 in shape else len(shape), x.flags.c_contiguous)
    if t in _WEAK:
        return t
    if isinstance(x, np.generic):
        return leaf_signature(np.asarray(x), what)
    if isinstance(x, (int, float, bool)) and not isinstance(x, np.generic):
        return _WEAK[bool if isinstance(x, bool) else int if isinstance(x, int) else float]
    if isinstance(x, complex):
        raise TypeError(f"{_desc(what)} is a complex number, which tracejit does not support")
    try:
        arr = np.asarray(x)
    except Exception as e:
        raise TypeError(f"{_desc(what)} of type {type(x).__name__} cannot be converted to an array: {e}") from None
    if arr.dtype == object:
        raise TypeError(f"{_desc(what)} of type {type(x).__name__} is not an array, a number or a pytree of them")
    return leaf_signature(arr, what)


def _desc(what) -> str:
    return f"argument leaf {what}" if isinstance(what, int) else what


def as_runtime_array(x):
    """The array the compiled program reads for a leaf (weak scalars become 0-d arrays of their kind)."""
    t = type(x)
    if t is np.ndarray:
        return x
    if t in _WEAK:
        return np.asarray(x, _WEAK[t])
    if is_device_array(x):
        return x
    return np.asarray(x)


def make_input(x, index: int, symbols: dict, name: str | None = None) -> Value:
    """A graph input for argument leaf ``x``; dims other than 1 become symbols recorded in ``symbols``."""
    t = type(x)
    if t in _WEAK or (isinstance(x, (int, float, bool)) and not isinstance(x, np.generic)):
        k = bool if isinstance(x, bool) else int if isinstance(x, int) else float
        return Value(TensorType(_WEAK[k], (), weak=True), name=name)
    if is_device_array(x):  # only shape and dtype are read: a zero-stride stand-in, no host copy
        shape, dt, _ = _device_meta(x)
        arr = np.broadcast_to(np.empty((), dt), shape)
    else:
        arr = np.asarray(x)
    shape = []
    for axis, d in enumerate(arr.shape):
        if d == 1:
            shape.append(1)
        else:
            sym = f"{_sym_prefix(index)}{axis}" if arr.ndim > 1 else _sym_prefix(index)
            symbols[sym] = (index, axis)
            shape.append(Dim.symbol(sym))
    return Value(TensorType(arr.dtype, tuple(shape)), name=name)


def _sym_prefix(i):
    letters = "nmkpqrstuvw"
    return letters[i] if i < len(letters) else f"n{i}_"


# ------------------------------------------------------------------------------------------------ tracing
def trace(fun, leaves, treedef, rebuild_args, names=None, info=None):
    """Trace ``fun``: ``rebuild_args(tracers)`` turns the input tracers back into fun's (args, kwargs).

    With an ``info`` dict (``api.jit`` passes one) the trace may specialize where Python needs a concrete length
    or int/bool argument (``info["guards"]``, see guards.py), and arguments the function writes into become extra
    outputs (``info["mutated"]``: their leaf indices) that the caller copies back into the caller's arrays."""
    symbols: dict = {}
    with ops.Builder() as b:
        inputs = [make_input(x, i, symbols, names[i] if names else None) for i, x in enumerate(leaves)]
        _share_complex_shapes(treedef, inputs, symbols)
        tracers = [wrap(v) for v in inputs]
        if info is not None and info.get("share_same_objects"):
            tracers = _one_tracer_per_array(tracers, leaves)
        args, kwargs = rebuild_args(tracers)
        ctx = guards.Context(leaves, symbols, inputs, eager=info.get("eager", False)) if info is not None else None
        try:
            with guards.active(ctx), creation.patched(True):
                out = fun(*args, **kwargs)
        except ConcretizationError as e:
            hint = _number_sequences(treedef, leaves) if getattr(e, "from_asarray", False) else None
            if hint is None:
                raise
            raise ConcretizationError(f"numpy tried to convert a list of traced numbers into an array: {hint}. "
                                      f"{ops.LIST_HINT}").with_traceback(e.__traceback__) from e  # the user's line
        out_leaves, out_tree = tree_flatten(out)
        outs = []
        for o in out_leaves:
            try:
                outs.append(ops.as_value(o))
            except TypeError:
                raise TypeError(f"the traced function returned an object of type {type(o).__name__}; tracejit "
                                f"functions must return arrays or pytrees (tuples, lists, dicts) of arrays"
                                ) from None
        mutated = _mutated(tracers, inputs, leaves)
        if mutated and info is None:
            raise UnsupportedError("this transformation does not support functions that write into their arguments; "
                                   "copy the argument first (x = x.copy())")
        # output index -> the argument it updates; none when a run-time check may fail after the program ran
        # (a failed check leaves the caller's arguments untouched)
        updates = {len(outs) + m: i for m, i in enumerate(mutated)} if not b.checks else {}
        if mutated:  # the written arguments' final values follow the outputs
            outs += [tracers[i]._tj_value for i in mutated]
            out_tree = ("t", (out_tree, ("t", (LEAF,) * len(mutated))))
        if info is not None:
            info["mutated"] = mutated
            info["updates"] = updates
            info["guards"] = list(ctx.guards)
        if b.checks:  # their flags are extra outputs, read by tree_unflatten
            outs += [flag for flag, _, _ in b.checks]
            out_tree = ("chk", out_tree, tuple((exc, msg) for _, exc, msg in b.checks))
        g = Graph(inputs=inputs, outputs=outs, constraints=_dedupe(b.constraints), symbols=symbols)
    return rebuild(g), out_tree


def _one_tracer_per_array(tracers, leaves) -> list:
    """The same array passed twice (``f(a, a)``) is one tracer, so that a write through one name is seen through
    the other, as in numpy (api.jit keys such calls apart)."""
    first = {}
    out = list(tracers)
    for j, x in enumerate(leaves):
        if type(x) is np.ndarray:
            out[j] = out[first.setdefault(id(x), j)]
    return out


def _share_complex_shapes(treedef, inputs, symbols):
    """The imaginary part of a complex argument takes its real part's symbolic shape: the two are one array's
    parts (same shape at every call), and a ComplexArray keeps both input tracers only when their shapes agree."""
    for i in _complex_leaf_positions(treedef, [0]):
        inputs[i + 1] = Value(TensorType(inputs[i + 1].dtype, inputs[i].shape, inputs[i + 1].type.weak),
                              name=inputs[i + 1].name)
        for sym in [s for s, (leaf, _) in symbols.items() if leaf == i + 1]:
            del symbols[sym]


def _complex_leaf_positions(t, pos) -> list:
    """Leaf indices of the real parts of the complex nodes in treedef ``t`` (``pos``: a one-item counter)."""
    if t is LEAF:
        pos[0] += 1
        return []
    kind = t[0]
    if kind == "c":
        pos[0] += 2
        return [pos[0] - 2]
    kids = t[2] if kind in ("d", "nt") else t[1] if kind in ("t", "l") else ()
    return [i for k in kids for i in _complex_leaf_positions(k, pos)]


def _mutated(tracers, inputs, leaves) -> list:
    """Indices of the argument leaves the function wrote into (numpy arrays only: numbers cannot be mutated); an
    array passed twice counts at its first place."""
    out = []
    for i, (t, v) in enumerate(zip(tracers, inputs)):
        if not isinstance(t, Tracer) or t._v is v and t._stale is None or any(t is u for u in tracers[:i]):
            continue
        if t._stale is not None:
            raise UnsupportedError(f"argument leaf {i}: {t._stale}")
        if type(leaves[i]) is not np.ndarray:
            raise TypeError(f"argument leaf {i} of type {type(leaves[i]).__name__} was written into; only numpy "
                            f"arrays can be updated in place for the caller")
        if not leaves[i].flags.writeable:
            raise ValueError(f"argument leaf {i}: assignment destination is read-only")
        out.append(i)
    return out


def _number_sequences(treedef, leaves):
    """Which arguments are lists or tuples of Python numbers (each a pytree of scalars, not an array), worded
    for an error; None when there are none."""
    if not (isinstance(treedef, tuple) and treedef[0] == "t" and len(treedef[1]) == 2):
        return None
    (targs, tkwargs), pos, found = treedef[1], 0, []
    named = [(f"argument {i}", t) for i, t in enumerate(targs[1])] if targs[0] == "t" else []
    if tkwargs[0] == "d":
        named += [(f"argument {k!r}", t) for k, t in zip(tkwargs[1], tkwargs[2])]
    for name, t in named:  # args, then kwargs: the order tree_flatten gave the leaves
        n = _count_leaves(t)
        mine = leaves[pos:pos + n]
        pos += n
        if t is not LEAF and t[0] in ("l", "t") and mine and all(type(x) in _WEAK for x in mine):
            found.append(f"{name} is a {'list' if t[0] == 'l' else 'tuple'} of {n} Python numbers")
    return "; ".join(found) or None


def _count_leaves(t) -> int:
    if t is LEAF:
        return 1
    if t[0] == "c":
        return 2
    kids = t[2] if t[0] in ("d", "nt") else t[1] if t[0] in ("t", "l") else ()
    return sum(_count_leaves(k) for k in kids)


def _dedupe(cs):
    out, seen = [], set()
    for c in cs:
        k = repr(c)
        if k not in seen:
            seen.add(k)
            out.append(c)
    return out


