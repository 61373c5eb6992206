"""Symbolic variables: graph inputs made without a Python function to trace, and expressions over them.

``Variable`` is a ``Tracer`` over such a Value, so numpy's operators, methods, indexing and ``np.exp(x)`` build IR
exactly as they do under ``jit``. Every expression is built in one long-lived Builder, which remembers the shape
constraints recorded for each value, so a graph cut out of it (``roots``, ``symbols_of``, ``constraints_of``)
gets exactly the run-time checks of what it computes. Theano's surface over these (``function``, ``shared``,
``pp``) lives in ``tracejit.theano``.
"""
from __future__ import annotations

import itertools
import re

import numpy as np

from ..errors import ConcretizationError
from ..ir import graph as G
from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value
from ..ir.types import Dim, TensorType
from .tracer import Tracer


# ------------------------------------------------------------------------------------------------ building
# One long-lived Builder for every expression over symbolic variables (hash-consing across calls gives CSE).
# Shape constraints recorded while an expression is built are remembered per Value, so that a function gets
# exactly the run-time checks of the expressions it computes.
BUILDER = ops.Builder()
_CONSTRAINTS: dict = {}  # Value id -> constraints recorded when that value was built


def _in_foreign_builder() -> bool:
    stack = getattr(ops._state, "stack", None)
    return bool(stack)


def symbolic_apply(fn, *args, **kwargs):
    """Run ``fn`` (which builds IR) in the symbolic builder and return its Values/Tracers as Variables.

    Inside a ``jit`` trace (another Builder active) it runs there and returns plain tracers, so a jitted function
    may use shared variables.
    """
    if _in_foreign_builder():
        return fn(*args, **kwargs)
    b = BUILDER
    mark = next(G._ids)
    n0 = len(b.constraints)
    with b:
        out = fn(*args, **kwargs)
    if len(b.constraints) > n0:
        _attribute(out, mark, b.constraints[n0:])
    return _rewrap(out)


def _attribute(out, mark, new):
    stack = [o for o in _flat_values(out)]
    seen = set()
    while stack:
        v = stack.pop()
        if v.id <= mark or v.id in seen:
            continue
        seen.add(v.id)
        _CONSTRAINTS.setdefault(v.id, []).extend(new)
        if v.eqn is not None:
            stack.extend(v.eqn.inputs)


def _flat_values(x):
    if isinstance(x, Value):
        yield x
    elif isinstance(x, Tracer):
        yield x._tj_value
    elif isinstance(x, (list, tuple)):
        for e in x:
            yield from _flat_values(e)


def _rewrap(x):
    if type(x) is Tracer or isinstance(x, Value):
        return Variable(x if isinstance(x, Value) else x._tj_value)
    if isinstance(x, tuple):
        return tuple(_rewrap(e) for e in x)
    if isinstance(x, list):
        return [_rewrap(e) for e in x]
    return x


# ------------------------------------------------------------------------------------------------ symbols
_USED_SYMBOLS: set = set()
_JIT_SYMBOL = re.compile(r"^([nmkpqrstuvw]\d*|n\d+_\d*)$")  # names jit gives its own inputs' lengths


def fresh_symbol(name, axis) -> str:
    base = re.sub(r"\W", "_", name or "") or "a"
    if base[0].isdigit():
        base = "v" + base
    base = f"{base}{axis}"
    if _JIT_SYMBOL.match(base):
        base = "s_" + base
    sym, k = base, 1
    while sym in _USED_SYMBOLS:
        k += 1
        sym = f"{base}_{k}"
    _USED_SYMBOLS.add(sym)
    return sym


_PREFIX = {"int8": "b", "int32": "i", "int64": "l", "float32": "f", "float64": "d"}
_KIND = {0: "scalar", 1: "vector", 2: "matrix", 3: "tensor3", 4: "tensor4"}


def type_name(dtype, ndim) -> str:
    """Theano's name of a variable type: ``dmatrix``, ``fvector``, ``int16 tensor5``."""
    dtype = np.dtype(dtype)
    kind = _KIND.get(ndim, f"tensor{ndim}")
    p = _PREFIX.get(dtype.name)
    return f"{p}{kind}" if p else f"{dtype.name} {kind}"


def compute_dtype(dtype, what="a symbolic variable") -> np.dtype:
    """The dtype a declared dtype computes in: Theano's 8/16-bit ints compute in int32 and uint32 in int64, as
    tracejit's Theano layer always did (its range checks name the declared dtype)."""
    if isinstance(dtype, str) and dtype == "floatX":
        dtype = "float64"
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{what}: unknown dtype {dtype!r}") from None
    if dt.kind in "iu" and dt.itemsize < 4:  # Theano's narrow ints keep computing in int32 (range-checked)
        return T.INT32
    if dt in T.SUPPORTED_DTYPES and dt != T.UINT32:
        return dt
    if dt.kind == "u" and dt.itemsize == 4:
        return T.INT64
    raise TypeError(f"{what} has dtype {dt}, which tracejit does not support; use one of bool, int8, int32, "
                    f"int64, float32, float64")


# ------------------------------------------------------------------------------------------------ variables
class Variable(Tracer):
    """A symbolic array: a graph input (``tensor.dmatrix('x')``) or an expression over them (``x + y``).

    It behaves like a traced array (numpy operators, methods, indexing, ``np.exp(x)``) and has a ``name``.
    """

    __slots__ = ("_decl", "_subtensor", "_tag")

    def __init__(self, value: Value, declared_dtype=None):
        Tracer.__init__(self, value)
        self._decl = declared_dtype  # for int8 inputs (computed in int32); None: the value's dtype
        self._subtensor = None  # (base, key) when this is base[key]: what Theano's set_subtensor writes into
        self._tag = None

    @property
    def tag(self):
        """Theano's free-form annotations (``x.tag.test_value = ...``), kept but not evaluated."""
        if self._tag is None:
            import types
            self._tag = types.SimpleNamespace()
        return self._tag

    # identity, names, types ------------------------------------------------------------------------
    __hash__ = object.__hash__

    @property
    def name(self):
        return self._tj_value.name

    @name.setter
    def name(self, name):
        self._tj_value.name = name

    @property
    def dtype(self):
        return self._decl if self._decl is not None else self._tj_value.dtype

    @property
    def type(self) -> TensorType:
        t = self._tj_value.type
        vt = VariableType(t.dtype, t.shape, t.weak)
        object.__setattr__(vt, "declared", self.dtype)
        return vt

    @property
    def broadcastable(self) -> tuple:
        return tuple(isinstance(d, int) and d == 1 for d in self._tj_value.shape)

    @property
    def is_input(self) -> bool:
        v = self._tj_value
        return v.eqn is None and not v.is_const

    @property
    def type_name(self) -> str:
        return type_name(self.dtype, self.ndim)

    def label(self) -> str:
        """How error messages name this variable: ``'x' (dmatrix)`` or ``an unnamed dscalar``."""
        if self.name:
            return f"{self.name!r} ({self.type_name})"
        return f"an unnamed {self.type_name}" if self.is_input else f"the expression {_infix_text(self)}"

    def __repr__(self):
        v = self._tj_value
        kind = type(self).__name__
        if self.is_input:
            what = self.name or "<unnamed>"
        else:
            what = shorten(_infix_text(self))
        return f"<{kind} {what}: {self.type_name} {v.dtype.name}{T.shape_str(v.shape)}>"

    def __str__(self):
        return self.name if self.is_input and self.name else _infix_text(self)

    def _repr_html_(self):
        import html
        from ..ir.printing import graph_text, value_graph
        v = self._tj_value
        rows = [("name", self.name or ""), ("type", self.type_name), ("dtype", v.dtype.name),
                ("shape", T.shape_str(v.shape))]
        if not self.is_input:
            rows.append(("expression", shorten(_infix_text(self), 400)))
        body = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{html.escape(str(x))}"
                       f"</td></tr>" for k, x in rows)
        out = f"<table>{body}</table>"
        if not self.is_input:
            out += ("<details><summary>graph</summary><pre>" + html.escape(graph_text(value_graph([v])))
                    + "</pre></details>")
        return out

    # no concrete value -----------------------------------------------------------------------------
    def __bool__(self):
        raise ConcretizationError(
            f"bool() of the symbolic variable {self.label()}: it has no value until a compiled function runs. "
            f"Use tensor.switch(cond, a, b) for a choice that depends on data.")

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"the symbolic variable {self.label()} has no concrete value; compile it with "
                        f"tj.function([...], expr) or evaluate it with expr.eval({{x: value}})")

    def eval(self, inputs_to_values=None):
        """Compile (cached) and run this expression: ``(x + y).eval({x: 1.0, y: 2.0})``."""
        from ..theano.function import function  # Theano's surface sits above trace/: imported at use
        pairs = list((inputs_to_values or {}).items())
        ins = [k for k, _ in pairs]
        key = (self._tj_value.id,) + tuple(k._tj_value.id for k in ins)
        f = _EVAL_CACHE.get(key)
        if f is None:
            f = _EVAL_CACHE[key] = function(ins, self, on_unused_input="ignore")
        return f(*[v for _, v in pairs])


_EVAL_CACHE: dict = {}


def _infix_text(var) -> str:
    """An expression as Theano's ``pp`` prints it (``x + 1.0``), for messages and reprs; imported at use, since
    Theano's surface (``tracejit.theano.printing``) sits above trace/."""
    from ..theano.printing import pp
    return pp(var)


def shorten(s, n=80):
    return s if len(s) <= n else s[:n - 3] + "..."


def _lift(name):
    base = getattr(Tracer, name)

    def method(self, *args, **kwargs):
        return symbolic_apply(base, self, *args, **kwargs)
    method.__name__ = name
    method.__doc__ = getattr(base, "__doc__", None)
    return method


_LIFTED = ["__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
           "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__", "__rpow__", "__matmul__",
           "__rmatmul__", "__and__", "__rand__", "__or__", "__ror__", "__xor__", "__rxor__", "__lt__", "__le__",
           "__gt__", "__ge__", "__eq__", "__ne__", "__neg__", "__abs__", "__invert__", "__getitem__",
           "__array_ufunc__", "__array_function__", "sum", "prod", "mean", "var", "std", "max", "min", "argmax",
           "argmin", "any", "all", "clip", "dot", "ravel", "squeeze", "swapaxes", "copy", "reshape", "transpose",
           "astype", "cumsum", "cumprod", "repeat", "round", "take", "trace", "diagonal", "nonzero", "argsort"]
for _name in _LIFTED:
    setattr(Variable, _name, _lift(_name))


def _getitem(self, key):
    out = symbolic_apply(Tracer.__getitem__, self, key)
    if isinstance(out, Variable):
        out._subtensor = (self, key)
    return out


Variable.__getitem__ = _getitem


def _dimshuffle(self, *pattern):
    """Theano's ``x.dimshuffle(1, 'x', 0)``: a permutation of the axes with ``'x'`` for new length-1 axes; axes
    left out must have length 1 (they are dropped)."""
    if len(pattern) == 1 and isinstance(pattern[0], (list, tuple)):
        pattern = tuple(pattern[0])
    axes = [p for p in pattern if p != "x"]
    if sorted(set(axes)) != sorted(axes) or any(not isinstance(a, int) or not 0 <= a < self.ndim for a in axes):
        raise ValueError(f"dimshuffle: {pattern} must list axes of this {self.ndim}-d variable at most once, with "
                         f"'x' for new axes")
    dropped = [a for a in range(self.ndim) if a not in axes]
    if any(not self.broadcastable[a] for a in dropped):
        raise ValueError(f"dimshuffle: axes {dropped} are left out of {pattern} but are not of length 1")
    x = self.reshape(tuple(d for a, d in enumerate(self.shape) if a not in dropped)) if dropped else self
    kept = sorted(axes)
    x = x.transpose([kept.index(a) for a in axes]) if axes != kept else x
    shape = list(x.shape)
    for i, p in enumerate(pattern):
        if p == "x":
            shape.insert(i, 1)
    return x.reshape(tuple(shape)) if len(shape) != x.ndim else x


def _flatten(self, ndim=1):
    """Theano's ``x.flatten(ndim)``: the leading ndim - 1 axes kept, the rest merged."""
    if not 1 <= ndim <= max(self.ndim, 1):
        raise ValueError(f"flatten: ndim must be between 1 and {self.ndim}, got {ndim}")
    return self.reshape(tuple(self.shape[:ndim - 1]) + (-1,))


Variable.dimshuffle = _dimshuffle
Variable.flatten = _flatten
Variable.T = property(lambda self: symbolic_apply(Tracer.T.fget, self))
Variable.mT = property(lambda self: symbolic_apply(Tracer.mT.fget, self))
Variable.__hash__ = object.__hash__  # __eq__ above is symbolic; identity hashing keeps dict keys working


class VariableType(TensorType):
    """A variable's type as Theano shows it: calling it makes a new input variable of that type (``x.type()``,
    ``x.type('y')``); ``broadcastable`` marks the axes of length 1. Two types are equal as Theano's are: same
    dtype and broadcast pattern (each variable has its own length symbols)."""

    def __call__(self, name=None):
        ones = tuple(i for i, b in enumerate(self.broadcastable) if b)
        return variable(getattr(self, "declared", self.dtype), self.ndim, name, ones=ones)

    @property
    def broadcastable(self) -> tuple:
        return tuple(isinstance(d, int) and d == 1 for d in self.shape)

    def __eq__(self, other):
        return isinstance(other, VariableType) and (self.dtype, self.broadcastable) == \
            (other.dtype, other.broadcastable)

    def __hash__(self):
        return hash((self.dtype, self.broadcastable))


def variable(dtype, ndim, name=None, ones=()) -> Variable:
    """A new symbolic input of rank ``ndim``: each axis gets its own length symbol (``x0``, ``x1``, ...), except
    the axes in ``ones``, of length 1 (Theano's broadcastable axes: a row, a column)."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"a variable's name must be a string, got {type(name).__name__}")
    decl = np.dtype("float64" if dtype in (None, "floatX") else dtype)
    comp = compute_dtype(decl, f"variable {name!r}" if name else "a variable")
    shape = tuple(1 if ax in ones else Dim.symbol(fresh_symbol(name, ax)) for ax in range(ndim))
    return Variable(Value(TensorType(comp, shape), name=name), decl if decl != comp else None)


def constant(value, name=None, dtype=None) -> Variable:
    """A constant as a symbolic expression (``tensor.constant(2.0)``)."""
    v = symbolic_apply(lambda: ops.constant(value, dtype))
    return v


# ------------------------------------------------------------------------------------------------ cutting graphs
def roots(eqns, outputs) -> list:
    """The leaf Values (inputs: no equation, not constant) the equations and outputs read, in first-use order."""
    seen, out = set(), []
    for v in itertools.chain((x for e in eqns for x in e.inputs), outputs):
        if v.eqn is None and not v.is_const and v.id not in seen:
            seen.add(v.id)
            out.append(v)
    return out


def atoms(x) -> set:
    if isinstance(x, Dim):
        return x.atoms()
    if isinstance(x, tuple):
        out = set()
        for e in x:
            out |= atoms(e)
        return out
    return set()


def constraints_of(eqns, symbols, extra=()) -> list:
    """The run-time checks of these equations: those recorded when each was built, restricted to ``symbols``."""
    out, seen = [], set()
    cands = [c for e in eqns for c in _CONSTRAINTS.get(e.out.id, ())]
    default = ops._default_builder
    if default is not None:  # expressions built by plain tracers outside any Builder
        cands += default.constraints
    for c in itertools.chain(cands, extra):
        used = atoms(c.a) | atoms(c.b)
        if not used or not used <= symbols:
            continue
        k = repr(c)
        if k not in seen:
            seen.add(k)
            out.append(c)
    return out


def symbols_of(inputs) -> dict:
    syms = {}
    for i, v in enumerate(inputs):
        for ax, d in enumerate(v.shape):
            if isinstance(d, Dim):
                (s,) = d.atoms()
                syms.setdefault(s, (i, ax))  # unified axes share a symbol: read it from its first input
    return syms

def value_of(x, what) -> Value:
    if isinstance(x, Tracer):
        return x._tj_value
    if isinstance(x, Value):
        return x
    try:
        return symbolic_apply(ops.as_value, x)._tj_value
    except TypeError:
        raise TypeError(f"{what} must be a symbolic expression, got an object of type {type(x).__name__}") from None




__all__ = ["Variable", "variable", "constant", "symbolic_apply", "value_of", "roots", "symbols_of", "constraints_of",
           "type_name", "compute_dtype"]
