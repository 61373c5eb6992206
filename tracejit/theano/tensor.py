"""Theano's ``tensor`` module (``from tracejit import tensor``): symbolic variable constructors, numpy-named
math over them, Theano's own names (``sqr``, ``switch``, ``eq``, ``cast``, ...), ``grad`` and ``nnet``.

Typed constructors follow Theano's prefixes: ``b`` int8, ``i`` int32, ``l`` int64, ``f`` float32, ``d`` float64
(``dmatrix``, ``fvector``, ...); the plurals (``dmatrices('x', 'y')``) make several at once.
"""
from __future__ import annotations

import builtins as _builtins
import warnings as _warnings

import numpy as _np

from . import nnet
from ..ir import ops as _ops
from ..ir import types as _T
from ..ir.graph import Value as _graph_Value
from ..ir.graph import toposort as _toposort
from ..trace.numpy_api import IMPLS as _IMPLS
from ..trace import symbolic as _sym
from ..trace.symbolic import Variable, compute_dtype, constant, symbolic_apply, variable  # noqa: F401 (re-exported)
from ..trace.tracer import Tracer as _Tracer
from ..trace.tracer import call_numpy as _call_numpy
from .function import MissingInputError, UnusedInputError  # noqa: F401 (re-exported)
from .config import config as _config
from .shared import SharedVariable  # noqa: F401 (re-exported)


# ------------------------------------------------------------------------------------------------ numpy names
def _numpy_function(name):
    def f(*args, **kwargs):
        return symbolic_apply(_call_numpy, name, args, kwargs)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"numpy.{name} over symbolic variables (builds an expression)."
    return f


for _name in _IMPLS:
    globals()[_name] = _numpy_function(_name)


# ------------------------------------------------------------------------------------------------ constructors
_PREFIXES = {"b": "int8", "i": "int32", "l": "int64", "f": "float32", "d": "float64"}
_RANKS = {"scalar": 0, "vector": 1, "matrix": 2, "tensor3": 3, "tensor4": 4, "row": 2, "col": 2}
_PLURALS = {"scalar": "scalars", "vector": "vectors", "matrix": "matrices", "tensor3": "tensor3s",
            "tensor4": "tensor4s", "row": "rows", "col": "cols"}
_ONES = {"row": (0,), "col": (1,)}  # axes of length 1 (Theano's broadcastable pattern)


def _constructor(kind, dtype=None):
    ndim, ones = _RANKS[kind], _ONES.get(kind, ())
    if dtype is None:
        def make(name=None, dtype=None):
            return variable(dtype or _config.floatX, ndim, name, ones=ones)
        make.__doc__ = f"A symbolic {kind} (rank {ndim}) of ``dtype`` (default config.floatX: float64)."
    else:
        def make(name=None):
            return variable(dtype, ndim, name, ones=ones)
        make.__doc__ = f"A symbolic {dtype} {kind} (rank {ndim})."
    return make


def _plural(kind, dtype=None):
    one = _constructor(kind, dtype)

    def make(*names, dtype=None):
        kw = {} if dtype is None else {"dtype": dtype}
        if len(names) == 1 and isinstance(names[0], int) and not isinstance(names[0], bool):
            return [one(**kw) for _ in range(names[0])]
        if len(names) == 1 and isinstance(names[0], (list, tuple)):
            names = tuple(names[0])
        made = [one(n, **kw) for n in names]
        return made[0] if len(made) == 1 else made
    make.__doc__ = f"Several symbolic {kind}s: one per name (or ``n`` unnamed ones)."
    return make


for _kind in _RANKS:
    globals()[_kind] = _constructor(_kind)
    globals()[_PLURALS[_kind]] = _plural(_kind)
    for _p, _dt in _PREFIXES.items():
        globals()[_p + _kind] = _constructor(_kind, _dt)
        globals()[_p + _PLURALS[_kind]] = _plural(_kind, _dt)


def as_tensor_variable(x, name=None):
    """A symbolic expression for ``x`` (a variable stays itself; numbers and arrays become constants)."""
    if isinstance(x, Variable):
        return x
    if isinstance(x, _Tracer):
        return Variable(x._tj_value)
    return constant(x, name)


# ------------------------------------------------------------------------------------------------ Theano's names
# Theano's names for numpy functions: the same functions under a second name
_THEANO_NAMES = {"sqr": "square", "switch": "where", "lt": "less", "le": "less_equal", "gt": "greater",
                 "ge": "greater_equal", "eq": "equal", "neq": "not_equal"}
for _alias, _name in _THEANO_NAMES.items():
    globals()[_alias] = globals()[_name]


def arange(start, stop=None, step=1, dtype=None):
    """``start, start + step, ...`` below ``stop``, as numpy's; bounds may be symbolic lengths (``x.shape[0]``).
    Integer bounds give int64 (Theano's default), float bounds float64."""
    from ..trace.creation import arange as _arange
    for name, b in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(b, _Tracer):
            raise TypeError(f"tensor.arange: {name} is a symbolic variable; tracejit needs static bounds or a "
                            f"variable's length (x.shape[0]) to know the result's length")
    if stop is None:
        start, stop = 0, start
    if not _builtins.any(isinstance(b, _T.Dim) for b in (start, stop, step)):
        return constant(_np.arange(start, stop, step, dtype=compute_dtype(dtype) if dtype else None))
    return symbolic_apply(_symbolic_arange, start, stop, step, _np.dtype(compute_dtype(dtype or "int64")))


def _symbolic_arange(start, stop, step, dtype):
    """arange with a symbolic bound: its length ``max(ceil((stop - start) / step), 0)`` stays symbolic (no guard
    on its sign: a symbolic variable's function serves every length)."""
    from ..trace.tracer import wrap
    from ..ir.ops import iota
    step = int(step)
    if step == 0:
        raise ValueError("tensor.arange: step must not be 0")
    span = stop - start
    if step == 1 and isinstance(span, _T.Dim) and isinstance(start, int) and start == 0:
        n = span  # a length: never negative
    else:
        n = _T.dim_max(_T.dim_floordiv(span + (step - (1 if step > 0 else -1)), step), 0)
    v = iota(n)
    if step != 1:
        v = _ops.ufunc("multiply", v, _ops.constant(step, _np.int64, weak=True))
    if not (isinstance(start, int) and start == 0):
        v = _ops.ufunc("add", v, _ops.dimsize(start) if isinstance(start, _T.Dim) else
                       _ops.constant(start, _np.int64, weak=True))
    return wrap(_ops.convert(v, dtype) if v.dtype != dtype else v)


def zeros(shape, dtype=None):
    """An array of zeros; ``shape`` may hold symbolic lengths (``x.shape[0]``)."""
    from ..trace.creation import zeros as _zeros
    return symbolic_apply(_zeros, _shape_arg(shape, "zeros"), compute_dtype(dtype or _config.floatX))


def ones(shape, dtype=None):
    """An array of ones; ``shape`` may hold symbolic lengths (``x.shape[0]``)."""
    from ..trace.creation import ones as _ones
    return symbolic_apply(_ones, _shape_arg(shape, "ones"), compute_dtype(dtype or _config.floatX))


def _shape_arg(shape, what):
    shape = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
    for d in shape:
        if isinstance(d, _Tracer):
            raise TypeError(f"tensor.{what}: a length is a symbolic variable; use a variable's length (x.shape[0]) "
                            f"or an int")
    return shape


def cast(x, dtype):
    """``x`` converted to ``dtype`` ('floatX' is float64; int8 computes in int32)."""
    return symbolic_apply(_call_numpy, "astype", (x, compute_dtype(dtype, "tensor.cast")), {})


def sigmoid(x):
    return nnet.sigmoid(x)


def softplus(x):
    return nnet.softplus(x)


def abs_(x):
    return absolute(x)  # noqa: F821


def neg(x):
    return negative(x)  # noqa: F821


def inv(x):
    return reciprocal(x)  # noqa: F821


def mul(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = multiply(out, x)  # noqa: F821
    return as_tensor_variable(out)


def sub(a, b):
    return subtract(a, b)  # noqa: F821


def true_div(a, b):
    return divide(a, b)  # noqa: F821


def int_div(a, b):
    return floor_divide(a, b)  # noqa: F821


def flatten(x, ndim=1):
    """``x`` reshaped to ``ndim`` dimensions, the trailing ones merged (Theano's flatten)."""
    x = as_tensor_variable(x)
    top = _builtins.max(x.ndim, 1)
    if ndim < 1 or ndim > top:
        raise ValueError(f"flatten: ndim must be between 1 and {top}, got {ndim}")
    lead = tuple(x.shape[:ndim - 1])
    rest = _T.prod(x.shape[ndim - 1:])
    return reshape(x, lead + (rest,))  # noqa: F821


# ------------------------------------------------------------------------------------------------ gradients
# identities that mean something to the reverse pass (a zero gradient, a custom rule, a recomputation point)
_GRADIENT_MARKS = frozenset({"stop_gradient", "custom_vjp_call", "remat_barrier"})


def _stable_form(cv, wrt_values):
    """The cost after the optimizer's passes, when every ``wrt`` is a leaf of its graph: differentiating
    -softplus(z) instead of log(1 - sigmoid(z)) keeps the gradient finite where sigmoid(z) rounds to 1
    (Theano's tutorial logistic regression starts there). The passes are those ``config`` gives a function
    compiled without a mode (``strict_ieee``, ``optimizer_excluding``)."""
    from ..compile import optimize
    from ..ir.graph import Graph
    from ..ir.printing import value_graph
    from .config import compile_options
    if getattr(_ops._state, "stack", None):
        return cv  # inside a jit trace or a loop body (T.grad in scan's step): differentiate as written
    g = value_graph([cv])
    if _marks_gradient(g.eqns):
        return cv  # the passes drop these identities: differentiate the graph that still says what they mean
    leaves = {v.id for v in g.inputs}
    if not _builtins.all(v.id in leaves or v.eqn is None for v in wrt_values):
        return cv  # gradient with respect to an intermediate value: keep the expression as written
    g = Graph(inputs=g.inputs, outputs=g.outputs, eqns=g.eqns, symbols=_sym.symbols_of(g.inputs),
              constraints=_sym.constraints_of(g.eqns, set(_sym.symbols_of(g.inputs))))
    options = compile_options()
    opt = symbolic_apply(lambda: optimize(g, options).outputs[0])._tj_value
    if _builtins.any(v.id not in leaves for v in _sym.roots(_toposort([opt]), [opt])):
        return cv
    return opt


def _marks_gradient(eqns) -> bool:
    """Whether any equation, also inside a loop or branch body (a truncated scan's), is a _GRADIENT_MARKS one."""
    from ..ir.regions import Region
    for e in eqns:
        if e.prim in _GRADIENT_MARKS:
            return True
        for _, p in e.params:
            if _builtins.any(isinstance(r, Region) and _marks_gradient(r.graph.eqns)
                             for r in (p if isinstance(p, tuple) else (p,))):
                return True
    return False


def _with_stopped(c, values):
    """``c`` rebuilt with each of ``values`` behind a stop_gradient."""
    from .substitute import replay

    def rebuild():
        (new,), _ = replay([c._tj_value], {v.id: _ops.bind("stop_gradient", v) for v in values}, {})
        return new
    return as_tensor_variable(symbolic_apply(rebuild))


class DisconnectedInputError(ValueError):
    """``grad`` was asked for the gradient with respect to a variable the cost does not depend on."""


def grad(cost, wrt, consider_constant=None, disconnected_inputs="raise"):
    """d(cost)/d(wrt) for a scalar ``cost``; ``wrt`` a variable or a list (the result has the same structure).

    Uses the reverse-mode pass of ``tj.grad`` (``passes.autodiff.backward``): the gradient is an ordinary
    expression that ``function`` compiles with the rest of the graph.
    """
    from ..passes.autodiff import backward
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError(f"disconnected_inputs must be 'raise', 'warn' or 'ignore', got {disconnected_inputs!r}")
    c = as_tensor_variable(cost)
    if consider_constant:  # every use of these variables in the cost passes no gradient
        c = _with_stopped(c, [as_tensor_variable(k)._tj_value for k in consider_constant])
    if c.ndim != 0:
        raise TypeError(f"tensor.grad: the cost must be a scalar, got {c.label()} of shape {_T.shape_str(c.shape)}"
                        f"; reduce it first (e.g. cost.sum() or cost.mean())")
    if not _T.is_float(c.dtype):
        raise TypeError(f"tensor.grad: the cost must be a float, got {c.label()} of dtype {c.dtype}")
    single = not isinstance(wrt, (list, tuple))
    ws = [wrt] if single else list(wrt)
    vals = []
    for i, w in enumerate(ws):
        if not isinstance(w, _Tracer):
            raise TypeError(f"tensor.grad: wrt[{i}] must be a symbolic variable, got {type(w).__name__}")
        vals.append(w._tj_value)
    cv = c._tj_value
    reached = {cv.id} | {v.id for e in _toposort([cv]) for v in e.inputs}
    for w, v in zip(ws, vals):
        if v.id not in reached and disconnected_inputs != "ignore":
            msg = (f"tensor.grad: the cost does not depend on {Variable(v).label()}; pass "
                   f"disconnected_inputs='ignore' to get zeros")
            if disconnected_inputs == "raise":
                raise DisconnectedInputError(msg)
            _warnings.warn(msg, stacklevel=2)

    def differentiate(c):
        from ..trace.tracer import wrap
        gs = symbolic_apply(lambda: backward([c], [_ops.constant(_np.ones((), c.dtype))], vals))
        return [wrap(g) if isinstance(g, _graph_Value) else g for g in gs]  # under a foreign builder: Values
    stable = _stable_form(cv, vals)
    try:
        gs = differentiate(stable)
    except NotImplementedError:  # a primitive the optimizer introduced has no gradient rule: use the original
        if stable is cv:
            raise
        gs = differentiate(cv)
    if single:
        return gs[0]
    return tuple(gs) if isinstance(wrt, tuple) else list(gs)


def _as_list(x):
    return (list(x), False) if isinstance(x, (list, tuple)) else ([x], True)


def _op_operands(f, wrt, eval_points, what, pair_with_wrt):
    """The Values of R/L-operator arguments, and whether the result is a single variable; ``eval_points`` come one
    per ``wrt`` (Rop) or one per expression (Lop)."""
    (fs, single_f), (ws, single_w), (es, _) = _as_list(f), _as_list(wrt), _as_list(eval_points)
    want = ws if pair_with_wrt else fs
    if len(es) != len(want):
        kind = "wrt variable(s)" if pair_with_wrt else "expression(s)"
        raise ValueError(f"tensor.{what}: {len(want)} {kind} but {len(es)} eval_points; give one per "
                         f"{'variable' if pair_with_wrt else 'expression'}")
    vals = [[as_tensor_variable(x)._tj_value for x in xs] for xs in (fs, ws, es)]
    return vals, (single_f if pair_with_wrt else single_w)


def Lop(f, wrt, eval_points):
    """Theano's L-operator: ``eval_points^T (df/dwrt)`` (a vector-Jacobian product; ``eval_points`` shaped like
    ``f``), with the structure of ``wrt``. The reverse pass of ``tj.grad``."""
    from ..passes.autodiff import backward
    (fv, wv, ev), single = _op_operands(f, wrt, eval_points, "Lop", False)
    out = symbolic_apply(lambda: backward(fv, ev, wv))
    return out[0] if single else list(out)


def Rop(f, wrt, eval_points):
    """Theano's R-operator: ``(df/dwrt) eval_points`` (a Jacobian-vector product; ``eval_points`` shaped like
    ``wrt``), with the structure of ``f``. Forward mode as ``tj.jvp`` computes it: the transpose of the pullback."""
    from ..ir.graph import Value
    from ..passes.autodiff import backward
    from ..transforms import _inline
    (fv, wv, ev), single = _op_operands(f, wrt, eval_points, "Rop", True)

    def build():
        us = [Value(_T.TensorType(v.dtype, tuple(v.shape))) for v in fv]
        pushed = backward(backward(fv, us, wv), ev, us)
        zeros = {u.id: _ops.broadcast_to(_ops.constant(_np.zeros((), u.dtype)), tuple(u.shape)) for u in us}
        return _inline(pushed, zeros)
    out = symbolic_apply(build)
    return out[0] if single else list(out)


from . import shared_randomstreams, signal  # noqa: E402 (theano.tensor.shared_randomstreams, .signal)
from .tensor_more import *  # noqa: E402,F401,F403
from .tensor_more import EXTRA_OPS_NUMPY_NAMES as _EXTRA_OPS_NUMPY_NAMES  # noqa: E402
from .tensor_more import SPECIAL_FUNCTIONS as _SPECIAL_FUNCTIONS  # noqa: E402

for _name, _f in _SPECIAL_FUNCTIONS.items():
    globals().setdefault(_name, _f)
for _name in _EXTRA_OPS_NUMPY_NAMES:
    setattr(extra_ops, _name, globals().get(_name) or _numpy_function(_name))  # noqa: F405 (extra_ops)

__all__ = sorted(n for n in globals() if not n.startswith("_") and n not in ("annotations",))
