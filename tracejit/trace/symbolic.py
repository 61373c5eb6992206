"""Theano-style symbolic variables, shared variables, ``function`` (with updates and givens), ``pp``, ``debugprint``.

A symbolic variable is a graph input Value made without a Python function to trace; ``Variable`` is a ``Tracer``
over it, so numpy's operators, methods, indexing and ``np.exp(x)`` build IR exactly as they do under ``jit``.
``function(inputs, outputs, updates)`` cuts the graph between the inputs (plus the shared variables it reaches,
read at every call) and the outputs and update expressions, and compiles it with the same pipeline as ``jit``.
"""
from __future__ import annotations

import itertools
import re
import sys
import warnings

import numpy as np

from ..errors import ConcretizationError, filter_traceback
from ..ir import graph as G
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import ConstraintKind
from ..ir.graph import Graph, Value, toposort
from ..ir.types import Dim, TensorType
from .tracer import Tracer


class MissingInputError(ValueError):
    """An output depends on a symbolic variable that is neither an input of the function nor shared."""


class UnusedInputError(ValueError):
    """An input of the function is not needed by any output or update (``on_unused_input='raise'``)."""


# ------------------------------------------------------------------------------------------------ building
# One long-lived Builder for every expression over symbolic variables (hash-consing across calls gives CSE).
# Shape constraints recorded while an expression is built are remembered per Value, so that a function gets
# exactly the run-time checks of the expressions it computes.
_BUILDER = ops.Builder()
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
    b = _BUILDER
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


def _fresh_symbol(name, axis) -> str:
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
    """The dtype a declared dtype computes in: tracejit has no 8/16-bit integer arithmetic (-> int32)."""
    if isinstance(dtype, str) and dtype == "floatX":
        dtype = "float64"
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{what}: unknown dtype {dtype!r}") from None
    if dt in T.SUPPORTED_DTYPES:
        return dt
    if dt.kind in "iu" and dt.itemsize < 4:
        return T.INT32
    if dt.kind == "u" and dt.itemsize == 4:
        return T.INT64
    raise TypeError(f"{what} has dtype {dt}, which tracejit does not support; use one of bool, int8, int32, "
                    f"int64, float32, float64")


# ------------------------------------------------------------------------------------------------ variables
class Variable(Tracer):
    """A symbolic array: a graph input (``tensor.dmatrix('x')``) or an expression over them (``x + y``).

    It behaves like a traced array (numpy operators, methods, indexing, ``np.exp(x)``) and has a ``name``.
    """

    __slots__ = ("_decl",)

    def __init__(self, value: Value, declared_dtype=None):
        Tracer.__init__(self, value)
        self._decl = declared_dtype  # for int8 inputs (computed in int32); None: the value's dtype

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
        return self._tj_value.type

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
        return f"an unnamed {self.type_name}" if self.is_input else f"the expression {pp(self)}"

    def __repr__(self):
        v = self._tj_value
        kind = "SharedVariable" if isinstance(self, SharedVariable) else "Variable"
        what = self.name if self.is_input and self.name else ("<unnamed>" if self.is_input else _short(pp(self)))
        return f"<{kind} {what}: {self.type_name} {v.dtype.name}{T.shape_str(v.shape)}>"

    def __str__(self):
        return self.name if self.is_input and self.name else pp(self)

    def _repr_html_(self):
        import html
        from ..ir.printing import graph_text, value_graph
        v = self._tj_value
        rows = [("name", self.name or ""), ("type", self.type_name), ("dtype", v.dtype.name),
                ("shape", T.shape_str(v.shape))]
        if not self.is_input:
            rows.append(("expression", _short(pp(self), 400)))
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
        pairs = list((inputs_to_values or {}).items())
        ins = [k for k, _ in pairs]
        key = (self._tj_value.id,) + tuple(k._tj_value.id for k in ins)
        f = _EVAL_CACHE.get(key)
        if f is None:
            f = _EVAL_CACHE[key] = function(ins, self, on_unused_input="ignore")
        return f(*[v for _, v in pairs])


_EVAL_CACHE: dict = {}


def _short(s, n=80):
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
           "astype", "flatten"]
for _name in _LIFTED:
    setattr(Variable, _name, _lift(_name))
Variable.T = property(lambda self: symbolic_apply(Tracer.T.fget, self))
Variable.mT = property(lambda self: symbolic_apply(Tracer.mT.fget, self))
Variable.__hash__ = object.__hash__  # __eq__ above is symbolic; identity hashing keeps dict keys working


def variable(dtype, ndim, name=None) -> Variable:
    """A new symbolic input of rank ``ndim``: each axis gets its own length symbol (``x0``, ``x1``, ...)."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"a variable's name must be a string, got {type(name).__name__}")
    decl = np.dtype("float64" if dtype in (None, "floatX") else dtype)
    comp = compute_dtype(decl, f"variable {name!r}" if name else "a variable")
    shape = tuple(Dim.symbol(_fresh_symbol(name, ax)) for ax in range(ndim))
    return Variable(Value(TensorType(comp, shape), name=name), decl if decl != comp else None)


def constant(value, name=None, dtype=None) -> Variable:
    """A constant as a symbolic expression (``tensor.constant(2.0)``)."""
    v = symbolic_apply(lambda: ops.constant(value, dtype))
    return v


# ------------------------------------------------------------------------------------------------ shared variables
_SHARED: dict = {}  # Value id -> SharedVariable; strong, since expressions hold only the Value


class SharedVariable(Variable):
    """A symbolic variable with a value that lives between calls: an implicit input of every function using it
    (read at each call, never baked in), and a target of ``updates``."""

    __slots__ = ("_storage",)

    def __init__(self, value: Value, storage: np.ndarray):
        super().__init__(value)
        self._storage = storage

    def get_value(self, borrow=False, return_internal_type=False):
        """A copy of the current value (``borrow=True``: the internal array itself)."""
        return self._storage if borrow else self._storage.copy()

    def set_value(self, value, borrow=False):
        """Replace the value; same dtype (lossless casts allowed) and rank, any lengths."""
        arr = _convert_array(value, self.dtype, self.dtype, self.ndim, self.label(), downcast=False)
        for ax, d in enumerate(self._tj_value.shape):
            if isinstance(d, int) and arr.shape[ax] != d:
                raise ValueError(f"shared variable {self.label()} was created with length {d} on axis {ax}, which "
                                 f"is fixed in its type; got a value of shape {arr.shape}")
        if not (borrow and arr is value and arr.flags.c_contiguous and arr.flags.writeable):
            arr = np.array(arr, order="C", copy=True)
        self._storage = arr

    @property
    def value(self):
        return self.get_value()

    @value.setter
    def value(self, v):
        self.set_value(v)


def shared(value, name=None, strict=False, allow_downcast=None, borrow=False) -> SharedVariable:
    """A shared variable holding ``value`` (copied unless ``borrow=True``). Lengths other than 1 are symbolic, so
    ``set_value`` may change them without recompiling."""
    if isinstance(value, Tracer):
        raise TypeError("tj.shared() needs a concrete value (a number or an array), got a symbolic variable")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"a shared variable's name must be a string, got {type(name).__name__}")
    try:
        arr = np.asarray(value)
    except Exception as e:
        raise TypeError(f"tj.shared({name!r}): cannot convert a {type(value).__name__} to an array: {e}") from None
    if arr.dtype == object:
        raise TypeError(f"tj.shared({name!r}): cannot convert a {type(value).__name__} to a numeric array")
    comp = compute_dtype(arr.dtype, f"shared variable {name!r}" if name else "a shared variable")
    if not (borrow and arr is value and arr.dtype == comp and arr.flags.c_contiguous and arr.flags.writeable):
        arr = np.array(arr, dtype=comp, order="C", copy=True)
    shape = tuple(1 if d == 1 else Dim.symbol(_fresh_symbol(name, ax)) for ax, d in enumerate(arr.shape))
    v = Value(TensorType(comp, shape), name=name)
    sv = SharedVariable(v, arr)
    _SHARED[v.id] = sv
    return sv


def shared_of(v: Value):
    """The SharedVariable whose input Value is ``v``, or None."""
    return _SHARED.get(v.id)


# ------------------------------------------------------------------------------------------------ arguments
def _describe_arg(a) -> str:
    if isinstance(a, np.ndarray):
        return f"a {a.dtype} array of shape {a.shape}"
    return f"a Python {type(a).__name__}" if not isinstance(a, np.generic) else f"a numpy {a.dtype} scalar"


def _cast_ok(arr, decl, from_python, downcast) -> bool:
    if np.can_cast(arr.dtype, decl, "safe") or downcast is True:
        return True
    if from_python and downcast is None and arr.dtype.kind == "f" and decl.kind == "f":
        return True  # Python floats may be rounded to a float32 input, as in Theano
    with np.errstate(all="ignore"):
        back = arr.astype(decl)
    return bool(np.array_equal(back, arr, equal_nan=arr.dtype.kind == "f" and decl.kind == "f"))


def _convert_array(a, decl, comp, ndim, label, downcast=None) -> np.ndarray:
    """An argument as a C-contiguous array of the compute dtype, checked against the declared dtype and rank."""
    if isinstance(a, Tracer):
        raise TypeError(f"{label} got the symbolic value {a!r}; a compiled function takes concrete values "
                        f"(use givens= in function() to substitute an expression)")
    from_python = not isinstance(a, (np.ndarray, np.generic))
    try:
        arr = np.asarray(a)
    except Exception as e:
        raise TypeError(f"{label} cannot be converted from {_describe_arg(a)}: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{label} expects {np.dtype(decl).name} values, got {_describe_arg(a)} of dtype "
                        f"{arr.dtype} that cannot be converted")
    if arr.ndim != ndim:
        raise TypeError(f"wrong number of dimensions for {label}: expected {ndim}, got {arr.ndim} "
                        f"(a value of shape {arr.shape})")
    decl = np.dtype(decl)
    if arr.dtype != decl:
        if not _cast_ok(arr, decl, from_python, downcast):
            raise TypeError(f"{label} expects {decl.name} values, got {_describe_arg(a)} whose values change "
                            f"when cast to {decl.name}; pass {decl.name} data, or compile with "
                            f"function(..., allow_input_downcast=True) to cast anyway")
        with np.errstate(all="ignore"):
            arr = arr.astype(decl)
    if comp != decl:
        arr = arr.astype(comp)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


def _make_converter(var: Variable, label: str, downcast):
    """A fast argument converter for one input: right-typed arrays and Python floats take a short path."""
    comp = var._tj_value.dtype
    decl = np.dtype(var.dtype)
    nd = var.ndim
    exact = decl == comp
    python_floats = exact and comp.kind == "f" and downcast is not False
    asarray, ndarray = np.asarray, np.ndarray
    scalar_type = comp.type if exact else None

    def convert(a):
        t = type(a)
        if t is ndarray:
            if exact and a.ndim == nd and (a.dtype is comp or a.dtype == comp) and a.flags.c_contiguous:
                return a
        elif t is scalar_type and nd == 0:  # a numpy scalar of exactly the input's dtype
            return asarray(a)
        elif python_floats and (t is float or t is list):
            try:
                arr = asarray(a, comp)
            except (ValueError, TypeError):
                pass
            else:
                if arr.ndim == nd:
                    return arr
        return _convert_array(a, decl, comp, nd, label, downcast)
    return convert


# ------------------------------------------------------------------------------------------------ graph surgery
def _roots(eqns, outputs) -> list:
    """The leaf Values (inputs: no equation, not constant) the equations and outputs read, in first-use order."""
    seen, out = set(), []
    for v in itertools.chain((x for e in eqns for x in e.inputs), outputs):
        if v.eqn is None and not v.is_const and v.id not in seen:
            seen.add(v.id)
            out.append(v)
    return out


def _atoms(x) -> set:
    if isinstance(x, Dim):
        return x.atoms()
    if isinstance(x, tuple):
        out = set()
        for e in x:
            out |= _atoms(e)
        return out
    return set()


def _constraints_of(eqns, symbols, extra=()) -> list:
    """The run-time checks of these equations: those recorded when each was built, restricted to ``symbols``."""
    out, seen = [], set()
    cands = [c for e in eqns for c in _CONSTRAINTS.get(e.out.id, ())]
    default = ops._default_builder
    if default is not None:  # expressions built by plain tracers outside any Builder
        cands += default.constraints
    for c in itertools.chain(cands, extra):
        atoms = _atoms(c.a) | _atoms(c.b)
        if not atoms or not atoms <= symbols:
            continue
        k = repr(c)
        if k not in seen:
            seen.add(k)
            out.append(c)
    return out


def _symbols_of(inputs) -> dict:
    syms = {}
    for i, v in enumerate(inputs):
        for ax, d in enumerate(v.shape):
            if isinstance(d, Dim):
                (s,) = d.atoms()
                syms.setdefault(s, (i, ax))  # unified axes share a symbol: read it from its first input
    return syms


def _pure_symbol(d):
    """The name when ``d`` is exactly one symbol (``x0``), else None."""
    if isinstance(d, Dim) and len(d.terms) == 1:
        (mono, c), = d.terms
        if c == 1 and len(mono) == 1 and isinstance(mono[0], str):
            return mono[0]
    return None


def unify_equal_axes(constraints, env, position) -> dict:
    """Symbol -> representative symbol, for symbols that 'eq' constraints say must be equal.

    Declared axes do not broadcast (Theano's rule, checked before the call), so such symbols are one length:
    the compiled graph reads it once, fuses over it, and has no run-time check left for it.
    """
    parent: dict = {}

    def find(s):
        while parent.get(s, s) != s:
            s = parent[s]
        return s
    for c in constraints:
        if c.kind is not ConstraintKind.EQ:
            continue
        sa, sb = _pure_symbol(subst_dim(c.a, env)), _pure_symbol(subst_dim(c.b, env))
        if sa is None or sb is None or sa not in position or sb not in position:
            continue
        ra, rb = find(sa), find(sb)
        if ra != rb:
            first, second = sorted((ra, rb), key=lambda s: position[s])
            parent[second] = first
    return {s: find(s) for s in parent if find(s) != s}


def subst_dim(d, env: dict):
    """``d`` with the symbols in ``env`` replaced by lengths (ints or Dims)."""
    if not isinstance(d, Dim):
        return d
    total = 0
    for mono, c in d.terms:
        term = c
        for a in mono:
            if isinstance(a, str):
                f = env.get(a, None)
                f = Dim.symbol(a) if f is None else f
            else:
                op, x, y = a
                x, y = subst_dim(x, env), subst_dim(y, env)
                f = {"fdiv": T.dim_floordiv, "max": T.dim_max, "min": T.dim_min}[op](x, y)
            term = term * f if isinstance(term, Dim) or not isinstance(f, Dim) else f * term
        total = total + term if isinstance(total, Dim) or not isinstance(term, Dim) else term + total
    return total


def _subst_any(x, env):
    if isinstance(x, Dim):
        return subst_dim(x, env)
    if isinstance(x, tuple):
        return tuple(_subst_any(e, env) for e in x)
    return x


def replay(outputs, value_map: dict, dim_env: dict, constraints=()):
    """Rebuild the equations computing ``outputs`` over substituted leaves (``value_map``: Value id -> Value) and
    lengths (``dim_env``: symbol -> length). Returns (new outputs, constraints of the new graph)."""
    vm = dict(value_map)
    with ops.Builder() as b:
        for e in toposort(outputs):
            ins = [vm.get(v.id, v) for v in e.inputs]
            if all(a is v for a, v in zip(ins, e.inputs)) and not _atoms(e.params) & dim_env.keys():
                vm[e.out.id] = e.out
                continue
            params = {k: _subst_any(p, dim_env) for k, p in e.params}
            vm[e.out.id] = ops.bind(e.prim, *ins, **params)
    cons = [c.map_lengths(lambda x: _subst_any(x, dim_env)) for c in constraints] + list(b.constraints)
    return [vm.get(v.id, v) for v in outputs], cons


def _may_alias(v: Value, input_ids) -> bool:
    """Whether the executable may return ``v`` as (a view of) one of its input arrays."""
    from ..ir.primitives import PRIMS
    while True:
        if v.id in input_ids:
            return True
        e = v.eqn
        if e is None or PRIMS[e.prim].kind != "view":
            return False
        v = e.inputs[0]


def _compile(graph, device="cpu"):
    from ..codegen.runtime import compile_graph
    from ..passes.pipeline import optimize
    opt = optimize(graph)
    exe = compile_graph(opt, device=device)
    return opt, exe


def _value_of(x, what) -> Value:
    if isinstance(x, Tracer):
        return x._tj_value
    if isinstance(x, Value):
        return x
    try:
        return symbolic_apply(ops.as_value, x)._tj_value
    except TypeError:
        raise TypeError(f"{what} must be a symbolic expression, got an object of type {type(x).__name__}") from None


def _pairs(x, what) -> list:
    if x is None:
        return []
    if isinstance(x, dict):
        return list(x.items())
    try:
        pairs = list(x)
    except TypeError:
        raise TypeError(f"{what} must be a list of (variable, expression) pairs or a dict") from None
    for p in pairs:
        if not isinstance(p, (tuple, list)) or len(p) != 2:
            raise TypeError(f"{what} must be a list of (variable, expression) pairs or a dict, got an item {p!r}")
    return [tuple(p) for p in pairs]


# ------------------------------------------------------------------------------------------------ function
class Function:
    """A compiled Theano-style function: ``f(*values)`` runs the outputs and applies the updates.

    The executable is compiled once per signature (which symbolic lengths are 1 at run time); other lengths and
    new values of shared variables never recompile.
    """

    def __init__(self, inputs, outputs=None, updates=None, givens=None, allow_input_downcast=None,
                 on_unused_input="raise", name=None, device="cpu"):
        from ..api import _check_device
        self.name = name
        self.device = _check_device(device)
        self._update_targets, self._shared, self.outputs = [], [], []
        if on_unused_input not in ("raise", "warn", "ignore", None):
            raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', got {on_unused_input!r}")
        if not isinstance(inputs, (list, tuple)):
            raise TypeError("the inputs of a function must be a list of symbolic variables, even when there is "
                            "only one: function([x], ...)")
        ins = self._check_inputs(inputs)
        self.inputs = list(inputs)
        self._single = outputs is not None and not isinstance(outputs, (list, tuple))
        outs = [] if outputs is None else [outputs] if self._single else list(outputs)
        self.outputs = outs
        out_vals = [_value_of(o, f"output {i}") for i, o in enumerate(outs)]
        upd = self._check_updates(_pairs(updates, "updates"))
        upd_vals = [v for _, v in upd]
        all_vals = out_vals + upd_vals
        extra_cons = []
        if givens is not None:
            all_vals, extra_cons = self._apply_givens(_pairs(givens, "givens"), all_vals)
        eqns = toposort(all_vals)
        self._shared = self._cut(ins, eqns, all_vals, on_unused_input)
        g_inputs = ins + [s._tj_value for s in self._shared]
        symbols = _symbols_of(g_inputs)
        cons = _constraints_of(eqns, set(symbols), extra_cons)
        self.traced = Graph(inputs=g_inputs, outputs=all_vals, eqns=eqns, constraints=cons, symbols=symbols)
        self._nout = len(out_vals)
        self._update_targets = [s for s, _ in upd]
        self._convs = [_make_converter(v, f"input {self._input_label(i, v)}", allow_input_downcast)
                       for i, v in enumerate(self.inputs)]
        self._nin = len(self._convs)
        self._sym_axes = {i: [ax for ax, d in enumerate(v.shape) if isinstance(d, Dim)]
                          for i, v in enumerate(g_inputs)}
        self._sym_inputs = tuple(i for i, axes in self._sym_axes.items() if axes)
        self._execs: dict = {}
        self._exe = self._build(())
        # the call path is generated per function; a one-off subclass makes it the __call__ itself (no extra frame)
        self.__class__ = type("Function", (Function,), {"__call__": self._make_fast(), "__module__": __name__})

    # -------------------------------------------------------------------------------------------- checks
    @staticmethod
    def _input_label(i, v):
        return f"{v.name!r} ({v.type_name})" if v.name else f"{i} (an unnamed {v.type_name})"

    def _check_inputs(self, inputs) -> list:
        seen = {}
        for i, x in enumerate(inputs):
            if isinstance(x, SharedVariable):
                raise TypeError(f"input {i} is the shared variable {x.label()}: a shared variable is an implicit "
                                f"input of every function that uses it; leave it out of inputs (or replace it "
                                f"with givens=)")
            if not isinstance(x, Variable):
                raise TypeError(f"input {i} must be a symbolic variable (e.g. tensor.dmatrix('x')), got an object "
                                f"of type {type(x).__name__}")
            if not x.is_input:
                raise TypeError(f"input {i} is {x.label()}, not a symbolic input variable; inputs are variables "
                                f"made with tensor.dscalar(), tensor.dmatrix('x'), ... (substitute expressions "
                                f"with givens=)")
            j = seen.get(x._tj_value.id)
            if j is not None:
                raise ValueError(f"the variable {x.label()} is used twice in inputs, at positions {j} and {i}")
            seen[x._tj_value.id] = i
        return [x._tj_value for x in inputs]

    def _check_updates(self, pairs) -> list:
        out, seen = [], set()
        for target, expr in pairs:
            if not isinstance(target, SharedVariable):
                raise TypeError(f"update targets must be shared variables (tj.shared(...)), got "
                                f"{target.label() if isinstance(target, Variable) else type(target).__name__}")
            if target._tj_value.id in seen:
                raise ValueError(f"the shared variable {target.label()} is updated twice")
            seen.add(target._tj_value.id)
            v = _value_of(expr, f"the update of {target.label()}")
            tv = target._tj_value
            if v.type.weak and v.dtype != tv.dtype and T.result_dtype(tv.type, v.type)[0] == tv.dtype:
                v = symbolic_apply(ops.convert, v, tv.dtype)._tj_value
            if v.dtype != tv.dtype:
                raise TypeError(f"the update of shared variable {target.label()} has dtype {v.dtype}, but the "
                                f"variable is {tv.dtype}; cast the expression (tensor.cast(expr, '{tv.dtype}'))")
            if v.ndim != tv.ndim:
                raise TypeError(f"the update of shared variable {target.label()} has {v.ndim} dimension(s) "
                                f"(shape {T.shape_str(v.shape)}), but the variable has {tv.ndim} "
                                f"(shape {T.shape_str(tv.shape)})")
            out.append((target, v))
        return out

    def _apply_givens(self, pairs, values):
        vmap, env = {}, {}
        for target, rep in pairs:
            if not isinstance(target, Variable) or not target.is_input:
                raise TypeError(f"givens: the variable to replace must be a symbolic input or shared variable, got "
                                f"{target.label() if isinstance(target, Variable) else type(target).__name__}")
            tv = target._tj_value
            rv = _value_of(rep, f"the replacement of {target.label()} in givens")
            if rv.type.weak and rv.dtype != tv.dtype:
                rv = symbolic_apply(ops.convert, rv, tv.dtype)._tj_value
            if rv.dtype != tv.dtype or rv.ndim != tv.ndim:
                raise TypeError(f"givens: the replacement of {target.label()} is {rv.dtype}{T.shape_str(rv.shape)}"
                                f", but the variable is {tv.dtype}{T.shape_str(tv.shape)}: dtype and rank must "
                                f"match")
            vmap[tv.id] = rv
            for d, r in zip(tv.shape, rv.shape):
                if isinstance(d, Dim):
                    (s,) = d.atoms()
                    env[s] = r
        eqns = toposort(values)
        old = _constraints_of(eqns, set(_symbols_of(_roots(eqns, values))))
        with _BUILDER:
            return replay(values, vmap, env, old)

    def _cut(self, ins, eqns, values, on_unused_input) -> list:
        """Check every leaf is an input or shared; return the shared variables read, in first-use order."""
        input_ids = {v.id for v in ins}
        used, shared_vars = set(), []
        for v in _roots(eqns, values):
            if v.id in input_ids:
                used.add(v.id)
                continue
            sv = shared_of(v)
            if sv is None:
                raise MissingInputError(
                    f"the outputs depend on the variable {Variable(v).label()}, which is neither an input of the "
                    f"function nor a shared variable; add it to the inputs (or give its value with givens=)")
            shared_vars.append(sv)
        if on_unused_input in ("raise", "warn", None):
            for i, v in enumerate(ins):
                if v.id not in used:
                    msg = (f"input {self._input_label(i, self.inputs[i])} is not used by any output or update "
                           f"(pass on_unused_input='ignore' to allow it)")
                    if on_unused_input == "warn":
                        warnings.warn(msg, stacklevel=4)
                    else:
                        raise UnusedInputError(msg)
        return shared_vars

    # -------------------------------------------------------------------------------------------- compiling
    def _build(self, key):
        """Compile the executable for one signature: ``key`` lists the (input, axis) pairs whose length is 1."""
        graph = self.traced
        inv = {v: k for k, v in graph.symbols.items()}
        env = {inv[(i, ax)]: 1 for i, ax in key}
        renamed = unify_equal_axes(graph.constraints, env, graph.symbols)
        env.update({s: Dim.symbol(r) for s, r in renamed.items()})
        checks = tuple((graph.symbols[s], graph.symbols[r]) for s, r in renamed.items())
        if env:
            vmap = {}
            new_inputs = []
            for v in graph.inputs:
                shape = tuple(subst_dim(d, env) for d in v.shape)
                nv = v if shape == v.shape else Value(TensorType(v.dtype, shape), name=v.name)
                vmap[v.id] = nv
                new_inputs.append(nv)
            outs, cons = replay(graph.outputs, vmap, env, graph.constraints)
            symbols = _symbols_of(new_inputs)
            cons = [c for c in cons if _atoms(c.a) | _atoms(c.b) <= set(symbols) and not
                    (c.kind is ConstraintKind.EQ and c.a == c.b)]
            graph = Graph(inputs=new_inputs, outputs=outs, eqns=toposort(outs), constraints=cons, symbols=symbols)
        opt, exe = _compile(graph, self.device)
        in_ids = {v.id for v in opt.inputs}
        if not key:
            self.graph = opt  # the optimized graph of the common signature (debugprint, _repr_html_)
        alias_out = tuple(j for j in range(self._nout) if self._update_targets and _may_alias(opt.outputs[j], in_ids))
        alias_upd = tuple(k for k in range(len(self._update_targets))
                          if _may_alias(opt.outputs[self._nout + k], in_ids))
        entry = (exe, alias_out, alias_upd, checks)
        self._execs[key] = entry
        return entry

    def _special(self, arrays):
        """The entry for a call where some symbolic length is 1 (compiled once per such pattern)."""
        key = tuple((i, ax) for i in self._sym_inputs for ax in self._sym_axes[i] if arrays[i].shape[ax] == 1)
        if not key:
            return self._exe
        self._check_no_broadcast(arrays, key)
        entry = self._execs.get(key)
        return entry if entry is not None else self._build(key)

    def _check_no_broadcast(self, arrays, key):
        """Symbolic lengths that must agree do not broadcast (Theano's rule): length 1 against 3 is an error."""
        g = self.traced
        env = {s: arrays[i].shape[ax] for s, (i, ax) in g.symbols.items()}
        for c in g.constraints:
            a, b = c.a, c.b
            if c.kind is not ConstraintKind.EQ or not isinstance(a, Dim) or not isinstance(b, Dim):
                continue
            va, vb = T.eval_dim(a, env), T.eval_dim(b, env)
            if va != vb:
                names = {s: self._axis_label(i, ax) for s, (i, ax) in g.symbols.items()}
                who = " and ".join(f"{d} = {vd} ({names[next(iter(d.atoms()))]})" if len(d.atoms()) == 1
                                   else f"{d} = {vd}" for d, vd in ((a, va), (b, vb)))
                raise ValueError(f"input dimension mismatch: the lengths {who} must be equal; the axes of "
                                 f"symbolic variables do not broadcast")

    def _axis_label(self, i, ax):
        if i < self._nin:
            v = self.inputs[i]
            return f"axis {ax} of input {self._input_label(i, v)}"
        return f"axis {ax} of shared variable {self._shared[i - self._nin].label()}"

    # -------------------------------------------------------------------------------------------- calling
    def __call__(self, *args, **kwargs):  # each instance's class replaces this by its generated call path
        raise RuntimeError("this function was not compiled completely")

    def _call_general(self, arrays):
        """A call whose arrays have some symbolic length equal to 1 (a specialized executable)."""
        entry = self._special(arrays)
        outs = entry[0].run(arrays)
        if self._update_targets:
            self._write_updates(outs, entry)
        return outs[0] if self._single else outs[:self._nout]

    def _make_fast(self):
        """Generate the call path: convert arguments, run the executable, write updates, with no loops or
        generic machinery per call (the tutorial's training step costs ~1 µs here beyond the executable)."""
        n, ns = self._nin, {}
        args = [f"a{i}" for i in range(n)]
        ns.update(_bind=self._bind_args, _general=self._call_general, _run=self._exe[0].run, _copyto=np.copyto,
                  _replace=_replace_storage)
        ns["_filter"] = filter_traceback
        lines = ["def fast(*args, **kwargs):",
                 f"    if kwargs or len(args) != {n}:",
                 "        args = _bind(args, kwargs)"]
        if n:
            lines.append(f"    {', '.join(args)}{',' if n == 1 else ''} = args")
        for i, c in enumerate(self._convs):
            ns[f"_c{i}"] = c
            lines.append(f"    a{i} = _c{i}(a{i})")
        for k, sv in enumerate(self._shared):
            ns[f"_s{k}"] = sv
            lines.append(f"    a{n + k} = _s{k}._storage")
        arrays = "[" + ", ".join(f"a{i}" for i in range(n + len(self._shared))) + "]"
        if self._sym_inputs:
            cond = " or ".join(f"1 in a{i}.shape" for i in self._sym_inputs)
            lines += [f"    if {cond}:", f"        return _general({arrays})"]
        _, alias_out, alias_upd, checks = self._exe
        if checks:  # axes unified at compile time must have equal lengths
            ns["_mismatch"] = self._check_no_broadcast
            cond = " or ".join(f"a{i}.shape[{ax}] != a{j}.shape[{bx}]" for (i, ax), (j, bx) in checks)
            lines += [f"    if {cond}:", f"        _mismatch({arrays}, ())"]
        lines.append(f"    outs = _run({arrays})")
        for j in alias_out:
            lines.append(f"    outs[{j}] = outs[{j}].copy()")
        m = self._nout
        for k, t in enumerate(self._update_targets):
            ns[f"_u{k}"] = t
            lines.append(f"    n{k} = outs[{m + k}]" + (".copy()" if k in alias_upd else ""))
        for k in range(len(self._update_targets)):
            lines += [f"    st = _u{k}._storage",
                      f"    if n{k}.shape == st.shape:",
                      f"        st[...] = n{k}",  # in place; cheaper than np.copyto's dispatch
                      "    else:",
                      f"        _replace(_u{k}, n{k})"]
        lines.append("    return outs[0]" if self._single else f"    return outs[:{m}]")
        head = ["def __call__(self, *args, **kwargs):",
                "    __tracebackhide__ = True  # IPython and pytest hide this frame",
                "    try:"]
        tail = ["    except Exception as e:",
                "        raise e.with_traceback(_filter(e.__traceback__))"]
        src = "\n".join(head + ["    " + ln for ln in lines[1:]] + tail)
        exec(compile(src, __file__ + ":<generated call>", "exec"), ns)  # under the package: filtered
        self.call_source = src
        return ns["__call__"]

    def _write_updates(self, outs, entry):
        """All updates were computed from the old values; now write them (in place when the shape is unchanged)."""
        _, alias_out, alias_upd, _ = entry
        n = self._nout
        for j in alias_out:
            outs[j] = outs[j].copy()
        news = outs[n:]
        for k in alias_upd:
            news[k] = news[k].copy()
        for target, new in zip(self._update_targets, news):
            st = target._storage
            if new.shape == st.shape:
                np.copyto(st, new)
            else:
                _replace_storage(target, new)

    def _bind_args(self, args, kwargs):
        names = [v.name for v in self.inputs]
        if len(args) > self._nin:
            raise TypeError(f"{self._what()} takes {self._nin} argument(s) ({self._arg_names()}), got {len(args)}")
        vals = list(args) + [_MISSING] * (self._nin - len(args))
        for k, val in kwargs.items():
            if k not in names:
                raise TypeError(f"{self._what()} got an unexpected keyword argument {k!r}; its inputs are "
                                f"({self._arg_names()})")
            i = names.index(k)
            if vals[i] is not _MISSING:
                raise TypeError(f"{self._what()} got multiple values for input {k!r}")
            vals[i] = val
        missing = [self._input_label(i, self.inputs[i]) for i, v in enumerate(vals) if v is _MISSING]
        if missing:
            raise TypeError(f"{self._what()} takes {self._nin} argument(s) ({self._arg_names()}), got "
                            f"{len(args) + len(kwargs)}: missing a value for input {', '.join(missing)}")
        return vals

    def _what(self):
        return f"function {self.name!r}" if self.name else "the compiled function"

    def _arg_names(self):
        return ", ".join(v.name or f"<unnamed {v.type_name}>" for v in self.inputs)

    # -------------------------------------------------------------------------------------------- introspection
    @property
    def num_compiled(self) -> int:
        """How many executables this function holds (one per pattern of length-1 symbolic axes seen)."""
        return len(self._execs)

    def __repr__(self):
        outs = ", ".join(_short(pp(o), 40) for o in self.outputs)
        ups = f", {len(self._update_targets)} update(s)" if self._update_targets else ""
        return f"<tracejit.function ({self._arg_names()}) -> ({outs}){ups}>"

    def _repr_html_(self):
        from ..ir.printing import graph_html
        return graph_html(self.graph)


_MISSING = object()


def _replace_storage(target, new):
    """An update that changes the shape: a new array (a copy, so no output the caller holds is aliased)."""
    target._storage = np.array(new, dtype=target._storage.dtype, order="C")


def function(inputs, outputs=None, updates=None, givens=None, allow_input_downcast=None, on_unused_input="raise",
             name=None, mode=None, device="cpu"):
    """Compile ``outputs`` as a function of ``inputs`` (Theano's ``theano.function``).

    ``outputs``: a variable (the call returns one array) or a list (the call returns a list). ``updates``: pairs
    ``(shared_variable, expression)``, all computed from the old values and then written. ``givens``: pairs
    ``(variable, replacement)`` substituted in the graph. Shared variables reached are read at every call.
    """
    __tracebackhide__ = True
    try:
        return Function(inputs, outputs, updates, givens, allow_input_downcast, on_unused_input, name, device)
    except Exception as e:
        raise e.with_traceback(filter_traceback(e.__traceback__))


# ------------------------------------------------------------------------------------------------ pp, debugprint
_INFIX = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "floor_divide": "//", "remainder": "%",
          "power": "**", "matmul": "@", "less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">=",
          "equal": "==", "not_equal": "!=", "bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^"}
_PREFIX_OPS = {"negative": "-", "invert": "~"}


def _leaf_text(v: Value) -> str:
    if v.is_const:
        c = v.const
        if c.ndim == 0:
            return repr(c.item())
        if c.size <= 10:
            return np.array2string(c, separator=", ")
        return f"<constant {c.dtype.name}{T.shape_str(c.shape)}>"
    if v.name:
        return v.name
    sv = shared_of(v)
    return f"<{'shared ' if sv is not None else ''}{type_name(v.dtype, v.ndim)}>"


def _eqn_text(e, args) -> str:
    p = e.p
    if e.prim in _INFIX:
        return f"({args[0]} {_INFIX[e.prim]} {args[1]})"
    if e.prim in _PREFIX_OPS:
        return f"{_PREFIX_OPS[e.prim]}{args[0]}"
    if e.prim == "convert":
        return f"{p['dtype'].name}({args[0]})"
    if "axes" in p and len(e.inputs) == 1:
        axes = p["axes"]
        if len(axes) == e.inputs[0].ndim:
            return f"{e.prim}({args[0]})"
        return f"{e.prim}({args[0]}, axis={axes[0] if len(axes) == 1 else axes})"
    if e.prim == "transpose" and tuple(p["perm"]) == tuple(reversed(range(len(p["perm"])))):
        return f"{args[0]}.T"
    from ..ir.printing import _param_str
    params = [_param_str(k, x) for k, x in e.params]
    return f"{e.prim}({', '.join(list(args) + params)})"


def pp(var) -> str:
    """Readable infix text of an expression: ``pp(x + y - x)`` -> ``((x + y) - x)``."""
    if isinstance(var, Function):
        return "\n".join(pp(o) for o in var.outputs)
    if isinstance(var, (list, tuple)):
        return "[" + ", ".join(pp(x) for x in var) + "]"
    root = _value_of(var, "pp's argument")
    memo: dict = {}
    stack = [root]
    while stack:  # iterative post-order: deep graphs do not hit the recursion limit
        v = stack[-1]
        if v.id in memo:
            stack.pop()
            continue
        if v.eqn is None:
            memo[v.id] = _leaf_text(v)
            stack.pop()
            continue
        todo = [x for x in v.eqn.inputs if x.id not in memo]
        if todo:
            stack.extend(reversed(todo))
            continue
        memo[v.id] = _eqn_text(v.eqn, [memo[x.id] for x in v.eqn.inputs])
        stack.pop()
    return memo[root.id]


def debugprint(obj, file=None):
    """Print the graph of a variable (or list of them) or of a compiled function: one equation a line, with
    dtypes and shapes. ``file='str'`` returns the text instead of printing it."""
    from ..ir.printing import graph_text, value_graph
    if isinstance(obj, Function):
        text = graph_text(obj.graph)
        names = [t.name or f"<shared {t.type_name}>" for t in obj._update_targets]
        if names:
            outs = ", ".join(f"{n} <- output {obj._nout + k}" for k, n in enumerate(names))
            text += f"\n  updates: {outs}"
    elif isinstance(obj, Graph):
        text = graph_text(obj)
    else:
        objs = obj if isinstance(obj, (list, tuple)) else [obj]
        text = graph_text(value_graph([_value_of(o, "debugprint's argument") for o in objs]))
    if file == "str":
        return text
    print(text, file=sys.stdout if file is None else file)
    return None


# ------------------------------------------------------------------------------------------------ jit support
def add_shared_inputs(graph: Graph) -> Graph:
    """For ``jit``: shared variables a traced function reads become extra inputs at the end, read at every call."""
    known = {v.id for v in graph.inputs}
    extra = [v for v in _roots(graph.eqns, graph.outputs) if v.id not in known]
    if not extra:
        return graph
    for v in extra:
        if shared_of(v) is None:
            raise TypeError(f"the traced function uses the symbolic variable {Variable(v).label()}, which is not "
                            f"one of its arguments; a jitted function can read shared variables (tj.shared), "
                            f"not other symbolic variables")
    n = len(graph.inputs)
    symbols = dict(graph.symbols)
    for k, v in enumerate(extra):
        for ax, d in enumerate(v.shape):
            if isinstance(d, Dim):
                (s,) = d.atoms()
                symbols[s] = (n + k, ax)
    return Graph(inputs=list(graph.inputs) + extra, outputs=list(graph.outputs), eqns=list(graph.eqns),
                 constraints=list(graph.constraints), symbols=symbols)


def shared_inputs_of(graph: Graph) -> tuple:
    """The shared variables among a graph's inputs (their current arrays are passed at each call)."""
    out = []
    for v in graph.inputs:
        sv = shared_of(v)
        if sv is not None:
            out.append(sv)
    return tuple(out)


symbols_of, constraints_of, roots = _symbols_of, _constraints_of, _roots  # for tensor.grad

__all__ = ["Variable", "SharedVariable", "Function", "function", "shared", "pp", "debugprint", "variable",
           "constant", "MissingInputError", "UnusedInputError", "symbolic_apply"]
