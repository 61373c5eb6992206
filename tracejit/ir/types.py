"""dtypes, symbolic dimensions, tensor types, broadcasting and numpy 2 promotion (NEP 50 weak scalars).

A dimension is either a Python ``int`` (known at trace time: size-1 dims, and lengths fixed by constants) or a
``Dim``: a polynomial over symbols (one symbol per non-1 input dimension) with opaque atoms for ``max``, ``min``
and floor division, so ``x[1:]`` and ``x[:-1]`` get structurally equal lengths and reshape(-1) can be derived.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from ..errors import ConcretizationError
from .constraints import Constraint

BOOL = np.dtype(np.bool_)
INT8, INT16, INT32, INT64 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
UINT8, UINT16, UINT32, UINT64 = (np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))
FLOAT16, FLOAT32, FLOAT64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
SUPPORTED_DTYPES = (BOOL, INT32, INT64, FLOAT32, FLOAT64, INT8, INT16, UINT8, UINT16, UINT32, UINT64, FLOAT16)
SUPPORTED_NAMES = "bool, int8/16/32/64, uint8/16/32/64, float16/32/64"
_KIND_ORDER = {"b": 0, "i": 1, "u": 1, "f": 2}


def check_dtype(dtype, what="argument") -> np.dtype:
    """Return ``dtype`` as a supported numpy dtype or raise a TypeError naming ``what``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{what} has dtype {dtype!r}, which tracejit does not support; "
                        f"use one of {SUPPORTED_NAMES}") from None
    if dt in SUPPORTED_DTYPES:
        return dt
    raise TypeError(f"{what} has dtype {dt}, which tracejit does not support; "
                    f"use one of {SUPPORTED_NAMES} (e.g. .astype(np.float64))")


def is_float(dt) -> bool:
    return np.dtype(dt).kind == "f"


def is_int(dt) -> bool:
    return np.dtype(dt).kind in "iu"


# --------------------------------------------------------------------------------------------- symbolic dims

Atom = Union[str, tuple]


def _atom_key(a):
    return (0, a) if isinstance(a, str) else (1, repr(a))


# Set by tracejit.trace.guards while a specializing trace runs: hook(dim, op, other) gives the concrete int/bool
# that Python needs (recording a guard), or None to keep the default (structural == / ConcretizationError).
CONCRETE_HOOK = None
# Set by tracejit.trace.tracer when it loads: Value -> the user-facing traced array (the IR knows no tracers)
WRAP = None


class Dim:
    """A symbolic length: ``sum(coef * prod(atoms))``. Immutable and hashable; compare structurally."""

    __slots__ = ("terms", "_hash")

    def __init__(self, terms: dict):
        self.terms = tuple(sorted(((m, c) for m, c in terms.items() if c != 0),
                                  key=lambda mc: [_atom_key(a) for a in mc[0]]))
        self._hash = hash(self.terms)

    # construction -------------------------------------------------------------------------------
    @staticmethod
    def symbol(name: str) -> "Dim":
        return Dim({(name,): 1})

    @staticmethod
    def make(terms: dict) -> DimLike:
        d = Dim(terms)
        if not d.terms:
            return 0
        if len(d.terms) == 1 and d.terms[0][0] == ():
            return d.terms[0][1]
        return d

    @staticmethod
    def opaque(op: str, *args) -> DimLike:
        return Dim.make({(((op,) + tuple(args)),): 1})

    # arithmetic ---------------------------------------------------------------------------------
    def _as_terms(self):
        return dict(self.terms)

    def traced(self):
        """This length as a traced int64 value (for arithmetic with floats and arrays: ``x.sum() / n``)."""
        from . import ops
        return WRAP(ops.dimsize(self))

    def __truediv__(self, other):
        return self.traced() / other

    def __rtruediv__(self, other):
        return other / self.traced()

    def __pow__(self, other):
        return self.traced() ** other

    def __add__(self, other):
        if not isinstance(other, (int, Dim)) or isinstance(other, bool):
            return self.traced() + other
        t = _terms(self)
        for m, c in _terms(other).items():
            t[m] = t.get(m, 0) + c
        return Dim.make(t)

    __radd__ = __add__

    def __neg__(self):
        return Dim.make({m: -c for m, c in self.terms})

    def __sub__(self, other):
        if not isinstance(other, (int, Dim)) or isinstance(other, bool):
            return self.traced() - other
        return self + (-_terms_dim(other))

    def __rsub__(self, other):
        if not isinstance(other, (int, Dim)) or isinstance(other, bool):
            return other - self.traced()
        return (-self) + other

    def __mul__(self, other):
        if not isinstance(other, (int, Dim)) or isinstance(other, bool):
            return self.traced() * other
        t: dict = {}
        for m1, c1 in _terms(self).items():
            for m2, c2 in _terms(other).items():
                m = tuple(sorted(m1 + m2, key=_atom_key))
                t[m] = t.get(m, 0) + c1 * c2
        return Dim.make(t)

    __rmul__ = __mul__

    def __floordiv__(self, other):
        return dim_floordiv(self, other)

    def __rfloordiv__(self, other):
        return dim_floordiv(other, self)

    def __eq__(self, other):
        if isinstance(other, Dim):
            return self.terms == other.terms
        if CONCRETE_HOOK is not None and isinstance(other, int):  # the user's `n == 3` while tracing
            r = CONCRETE_HOOK(self, "==", other)
            if r is not None:
                return r
        return False

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return self._hash

    # misuse as a concrete integer ---------------------------------------------------------------
    def _concrete(self, what, op=None, other=None):
        if CONCRETE_HOOK is not None:  # a specializing trace: the actual length, with a guard
            r = CONCRETE_HOOK(self, op or what, other)
            if r is not None:
                return r
        raise ConcretizationError(
            f"{what} of the symbolic length {self} : lengths other than 1 are traced (read at run time), so "
            f"Python cannot use them as integers here. Use the symbolic value in array expressions "
            f"(x.reshape(x.shape[0], -1), np.where, ...) or mark the argument static (static_argnums).")

    def __index__(self):
        return self._concrete("int()/index use", "int")

    def __int__(self):
        return self._concrete("int()", "int")

    def __bool__(self):
        return self._concrete("bool()", "bool")

    def _cmp(op):
        def f(self, other):
            if not isinstance(other, (int, Dim)):
                return NotImplemented
            return self._concrete("comparison", op, other)
        return f

    __lt__, __le__, __gt__, __ge__ = _cmp("<"), _cmp("<="), _cmp(">"), _cmp(">=")
    del _cmp

    def __repr__(self):
        parts = []
        for mono, c in self.terms:
            names = "*".join(_atom_str(a) for a in mono)
            if not names:
                parts.append(str(c))
            elif c == 1:
                parts.append(names)
            elif c == -1:
                parts.append("-" + names)
            else:
                parts.append(f"{c}*{names}")
        s = " + ".join(parts).replace("+ -", "- ")
        return s

    def atoms(self):
        out = set()
        for mono, _ in self.terms:
            for a in mono:
                if isinstance(a, str):
                    out.add(a)
                else:
                    for x in a[1:]:
                        if isinstance(x, Dim):
                            out |= x.atoms()
        return out


DimLike = Union[int, Dim]

# --------------------------------------------------------------------------------------------- unbacked dims
# A data-dependent length (x[mask], np.nonzero, np.unique): a fresh symbol bound by no input. The library
# primitive that produces it binds it at run time from the shape of the array it returns (torch calls such
# symbols "unbacked"). Its name has a "#", which no input symbol can have, so the two kinds never mix.
UNBACKED_MARK = "u#"
_unbacked_ids = __import__("itertools").count()


def unbacked_dim() -> Dim:
    """A fresh data-dependent length."""
    return Dim.symbol(f"{UNBACKED_MARK}{next(_unbacked_ids)}")


# symbol -> the Value whose computation binds it (registered by ops.bind): an equation that only mentions the
# length (np.ones_like(x[mask]), its size as a number) depends on that computation without reading its result
UNBACKED_SOURCES = __import__("weakref").WeakValueDictionary()


def is_unbacked_symbol(name) -> bool:
    return isinstance(name, str) and name.startswith(UNBACKED_MARK)


def unbacked_symbols(d) -> set:
    """The data-dependent symbols a length depends on (empty for ints and input lengths)."""
    if not isinstance(d, Dim):
        return set()
    return {a for a in d.atoms() if is_unbacked_symbol(a)}



def _atom_str(a):
    if isinstance(a, str):
        return a
    op, *args = a
    if op == "fdiv":
        return f"({args[0]} // {args[1]})"
    return f"{op}({', '.join(map(str, args))})"


def _terms(x) -> dict:
    if isinstance(x, Dim):
        return dict(x.terms)
    if isinstance(x, (int, np.integer)):
        return {(): int(x)} if x else {}
    raise TypeError(f"not a dimension: {x!r}")


def _terms_dim(x):
    return Dim(_terms(x)) if not isinstance(x, Dim) else x


def dim_floordiv(a: DimLike, b: DimLike) -> DimLike:
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    if b == 1:
        return a
    ta, tb = _terms(a), _terms(b)
    if len(tb) == 1:
        (mb, cb), = tb.items()
        out = {}
        for m, c in ta.items():
            rest = list(m)
            ok = c % cb == 0
            for atom in mb:
                if ok and atom in rest:
                    rest.remove(atom)
                else:
                    ok = False
            if not ok:
                break
            out[tuple(rest)] = c // cb
        else:
            return Dim.make(out)
    return Dim.opaque("fdiv", a, b)


def dim_max(a: DimLike, b: DimLike) -> DimLike:
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    if a == b:
        return a
    return Dim.opaque("max", *sorted((a, b), key=repr))


def dim_min(a: DimLike, b: DimLike) -> DimLike:
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    if a == b:
        return a
    return Dim.opaque("min", *sorted((a, b), key=repr))


def eval_dim(d: DimLike, env: dict) -> int:
    """The value of ``d`` given the symbol values in ``env``."""
    if isinstance(d, int):
        return d
    total = 0
    for mono, c in d.terms:
        v = c
        for a in mono:
            v *= env[a] if isinstance(a, str) else _eval_atom(a, env)
        total += v
    return total


def _eval_atom(a, env):
    op, x, y = a
    x, y = eval_dim(x, env), eval_dim(y, env)
    if op == "fdiv":
        return x // y if y else 0
    if op == "max":
        return max(x, y)
    if op == "min":
        return min(x, y)
    raise ValueError(op)


def dim_py(d: DimLike, sym_expr) -> str:
    """Python source computing ``d``; ``sym_expr(name)`` gives the source of each symbol."""
    if isinstance(d, int):
        return str(d)
    parts = []
    for mono, c in d.terms:
        factors = [str(c)] if c != 1 or not mono else []
        for a in mono:
            if isinstance(a, str):
                factors.append(sym_expr(a))
            else:
                op, x, y = a
                xs, ys = dim_py(x, sym_expr), dim_py(y, sym_expr)
                factors.append({"fdiv": f"(({xs}) // max(1, {ys}))", "max": f"max({xs}, {ys})",
                                "min": f"min({xs}, {ys})"}[op])
        parts.append("*".join(factors))
    return "(" + " + ".join(parts) + ")"


def is_static(d) -> bool:
    return isinstance(d, int)


def shape_str(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def prod(dims) -> DimLike:
    out: DimLike = 1
    for d in dims:
        out = out * d if isinstance(out, Dim) or not isinstance(d, Dim) else d * out
    return out


# --------------------------------------------------------------------------------------------- tensor types

@dataclass(frozen=True)
class TensorType:
    dtype: np.dtype
    shape: tuple
    weak: bool = False  # a Python scalar: numpy 2 lets the other operand's dtype win within a kind

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        w = "~" if self.weak else ""
        return f"{w}{self.dtype.name}{list(self.shape)}".replace("'", "")


class BroadcastError(ValueError):
    pass


def broadcast_shapes(*shapes, constraints=None, names=None):
    """numpy broadcasting with symbolic dims; symbolic lengths that must agree become run-time constraints.

    ``constraints`` (a list) receives ``Constraint.eq`` records checked when the call runs.
    """
    nd = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(nd):
        dims = [s[len(s) - nd + k] for s in shapes if len(s) - nd + k >= 0]
        d = 1
        for x in dims:
            if x == 1:
                continue
            if d == 1:
                d = x
            elif d != x:
                if isinstance(d, int) and isinstance(x, int):
                    raise BroadcastError(
                        f"operands could not be broadcast together with shapes "
                        f"{' '.join(shape_str(s) for s in shapes)}")
                if constraints is None:
                    raise BroadcastError(
                        f"operands could not be broadcast together with shapes "
                        f"{' '.join(shape_str(s) for s in shapes)} (symbolic lengths {d} and {x} may differ)")
                constraints.append(Constraint.eq(d, x, shapes))
                if isinstance(x, int):
                    d = x
        out.append(d)
    return tuple(out)


def result_dtype(*types: TensorType) -> tuple[np.dtype, bool]:
    """numpy 2 (NEP 50) promotion: weak Python scalars take the strong operand's dtype within their kind."""
    strong = [t.dtype for t in types if not t.weak]
    weak = [t.dtype for t in types if t.weak]
    if not strong:
        return np.result_type(*weak), True
    dt = np.result_type(*strong)
    for w in weak:
        if _KIND_ORDER[w.kind] > _KIND_ORDER[dt.kind]:
            dt = np.result_type(dt, w)  # int array with a Python float -> float64, as numpy does
    return dt, False


def default_float(dt: np.dtype, what="operand") -> np.dtype:
    """The float dtype numpy computes ``sqrt``/``exp``/true-divide of ``dt`` in: the smallest float that holds
    every value (bool/int8/uint8 -> float16, int16/uint16 -> float32, wider ints -> float64)."""
    dt = np.dtype(dt)
    return dt if dt.kind == "f" else np.result_type(dt, FLOAT16)


def symbol_name(d):
    """The name when ``d`` is exactly one symbol (``x0``, not ``2*x0`` or ``x0*x1``), else None."""
    if isinstance(d, Dim) and len(d.terms) == 1:
        (mono, c), = d.terms
        if c == 1 and len(mono) == 1 and isinstance(mono[0], str):
            return mono[0]
    return None
