"""Specialization: where Python itself needs a concrete length or a concrete int/bool argument, the trace uses the
actual argument's value and records a guard on the cache entry.

Lengths stay symbolic (one compile for every length) while the program only computes with them. ``len(x)``,
``range(n)``, ``int(n)``, ``if n > 3:``, ``for _ in range(iters)`` or ``if periodic:`` cannot be symbolic: the trace
reads the value from the arguments of the call being traced, continues with a Python int or bool, and records what
it relied on (``n0 == 1000``, ``n0 > 3 is True``, ``arg1 == 5``). ``api.Jitted`` checks the guards of a signature's
entries at every call and traces again when none holds, as torch.compile does with dynamic shapes.
"""
from __future__ import annotations

import operator
import os
import sys
import threading
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConcretizationError
from ..ir import types as T
from ..ir.types import Dim

_local = threading.local()
_OPS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}
_NEGATE = {"==": "!=", "!=": "==", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_NUMPY = os.path.dirname(np.__file__)


@dataclass(frozen=True)
class Guard:
    """``lhs op rhs`` must hold for an entry to serve a call. ``lhs`` is a symbolic length (a Dim) or
    ``("arg", i)``: the value of the Python int/bool argument leaf ``i``. ``line`` is where the trace specialized."""
    lhs: object
    op: str
    rhs: int
    line: str = field(compare=False, default="")

    def holds(self, leaves, symbols) -> bool:
        return _OPS[self.op](_lhs_value(self.lhs, leaves, symbols), self.rhs)

    def __str__(self):
        lhs = f"arg{self.lhs[1]}" if isinstance(self.lhs, tuple) else str(self.lhs)
        return f"{lhs} {self.op} {self.rhs}" + (f"    # {self.line}" if self.line else "")


def _lhs_value(lhs, leaves, symbols):
    if isinstance(lhs, tuple):
        return leaves[lhs[1]]
    env = {s: np.shape(leaves[i])[ax] for s, (i, ax) in symbols.items()}
    return T.eval_dim(lhs, env)


class Context:
    """The call being traced: its argument leaves, the symbols read off them and the guards recorded so far."""

    def __init__(self, leaves, symbols, inputs, eager=False):
        self.leaves = leaves
        self.symbols = symbols
        self.inputs = {v.id: i for i, v in enumerate(inputs)}
        self.guards: list = []
        # an eager transform (tj.grad outside jit) runs its trace once, on these arguments: any value Python
        # needs (``if loss > 0``, ``float(x)``) is computed from them, as autograd and JAX's eager grad do
        self.eager = eager
        self.known = {v.id: (v, np.asarray(leaves[i])) for i, v in enumerate(inputs)} if eager else {}

    def same_values(self, fresh, actual):
        """A transform's fresh inputs stand for ``actual`` values: they hold the same arrays."""
        for f, a in zip(fresh, actual):
            val = self.value_of(a)
            if val is None:
                return
            self.known[f.id] = (f, val)

    def value_of(self, v):
        """The array of traced value ``v`` on the eager call's arguments, or None when it reads a value that has
        none here (a vmapped example's)."""
        if v.id in self.known:
            return self.known[v.id][1]
        if v.is_const:
            return np.asarray(v.const)
        from ..ir.graph import Graph, toposort
        from ..ir.interpret import evaluate
        eqns = toposort([v])
        made = {e.out.id for e in eqns}
        leaves = {}
        for e in eqns:
            for x in e.inputs:
                if x.id not in made and not x.is_const:
                    if x.id not in self.known:
                        return None
                    leaves[x.id] = self.known[x.id]
        ins = [val for val, _ in leaves.values()]
        symbols = {}
        for j, x in enumerate(ins):
            for ax, d in enumerate(x.shape):
                if isinstance(d, Dim) and len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1:
                    symbols.setdefault(d.terms[0][0][0], (j, ax))
        out = evaluate(Graph(inputs=ins, outputs=[v], eqns=eqns, symbols=symbols),
                       [arr for _, arr in leaves.values()], check=False)[0]
        self.known[v.id] = (v, out)
        return out

    def env(self) -> dict:
        return {s: np.shape(self.leaves[i])[ax] for s, (i, ax) in self.symbols.items()}

    def record(self, lhs, op, rhs):
        g = Guard(lhs, op, int(rhs), user_line())
        if g not in self.guards:
            self.guards.append(g)


class active:
    """``with active(ctx):`` lets Dims and int/bool argument tracers specialize during one trace."""

    def __init__(self, ctx):
        self.ctx = ctx

    def __enter__(self):
        self.prev = getattr(_local, "ctx", None)
        _local.ctx = self.ctx
        return self.ctx

    def __exit__(self, *exc):
        _local.ctx = self.prev


def current():
    return getattr(_local, "ctx", None)


def _user_frame():
    """The innermost frame outside tracejit and numpy (the user's line), or None."""
    f = sys._getframe(2)
    while f is not None:
        fn = f.f_code.co_filename
        if not (fn.startswith(_PKG) or fn.startswith(_NUMPY) or fn.startswith("<")):
            return f
        f = f.f_back
    return None


def user_line() -> str:
    """``file:line`` of the user's line."""
    f = _user_frame()
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}" if f is not None else ""


def _from_user_code() -> bool:
    """Whether the caller of a Dim method is the user's program (tracejit itself compares Dims structurally)."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename in (__file__, T.__file__):
        f = f.f_back
    return f is not None and not f.f_code.co_filename.startswith(_PKG)


# --------------------------------------------------------------------------------------------- lengths
def _refuse_unbacked(d):
    """A data-dependent length is no input length: nothing to specialize on (a guard could not be checked)."""
    if T.unbacked_symbols(d):
        raise ConcretizationError(
            f"the length {d} of a data-dependent result (x[mask], np.nonzero, np.unique, ...) is known only when "
            f"the compiled call runs, so Python cannot use it as an int here (at {user_line()}); use it in array "
            f"expressions instead (x[mask].sum() / x[mask].size, np.count_nonzero(mask))")


def dim_value(d) -> int:
    """The actual value of symbolic length ``d`` in the traced call, guarded (``d == value``)."""
    ctx = current()
    if isinstance(d, int):
        return d
    _refuse_unbacked(d)
    v = T.eval_dim(d, ctx.env())
    ctx.record(d, "==", v)
    return v


def dim_compare(d, op, other) -> bool:
    """``d op other`` for the traced call, guarded on its outcome (not on the value: ``if n > 3`` serves every
    length above 3 with one entry)."""
    ctx = current()
    diff = d - other if isinstance(other, (int, Dim)) else None
    if diff is None:
        return NotImplemented
    if isinstance(diff, int):
        return _OPS[op](diff, 0)
    _refuse_unbacked(diff)
    if ctx is None:
        raise ConcretizationError(
            f"the comparison {d} {op} {other} needs a concrete length, which this transformation (grad, vmap, ...) "
            f"does not specialize on; wrap the function in tj.jit, or pass the length as a static argument")
    out = _OPS[op](T.eval_dim(diff, ctx.env()), 0)
    ctx.record(diff, op if out else _NEGATE[op], 0)
    return out


def _dim_hook(d, what, other=None):
    """Called by Dim's int/bool/comparison methods while a trace is active (see ``ir.types.CONCRETE_HOOK``)."""
    ctx = current()
    if T.unbacked_symbols(d) and not (what in ("==", "!=") and not _from_user_code()):
        _refuse_unbacked(d)
    if ctx is None:
        return None
    if what in ("==", "!="):
        if not _from_user_code():
            return None
        return dim_compare(d, what, other)
    if what in _OPS:
        return dim_compare(d, what, other)
    if what == "bool":
        return dim_compare(d, "!=", 0)
    return dim_value(d)


def nonnegative(d) -> bool:
    """Whether a slice bound ``d`` (an int or a symbolic length) is >= 0 in the traced call: numpy counts a negative
    bound from the end, so the sign decides the meaning. Provably non-negative forms record no guard."""
    if isinstance(d, int):
        return d >= 0
    if all(c >= 0 for _, c in d.terms):
        return True
    ctx = current()
    if ctx is None:
        raise ConcretizationError(
            f"the slice bound {d} is a symbolic length whose sign decides numpy's meaning (a negative bound counts "
            f"from the end); inside this transformation it cannot be specialized: use a static argument")
    return dim_compare(d, ">=", 0)


def at_most(a, b) -> bool:
    """``a <= b`` for slice clamping, proven when ``b - a`` is a non-negative constant, else guarded."""
    diff = b - a
    if isinstance(diff, int):
        return diff >= 0
    if all(c >= 0 for _, c in diff.terms):
        return True
    if current() is None or T.unbacked_symbols(diff):  # a data-dependent length: clamp at run time (min)
        return None
    return dim_compare(diff, ">=", 0)


# --------------------------------------------------------------------------------------------- int/bool arguments
def concrete_value(v, what: str):
    """The value of traced scalar ``v`` when it depends only on Python int/bool arguments and lengths (``iters``,
    ``iters * 2``, ``periodic``): evaluated on the traced call's values, each argument guarded on its value. None
    when ``v`` depends on an array's values or no specializing trace is active."""
    ctx = current()
    if ctx is not None and ctx.eager:
        out = ctx.value_of(v)
        return None if out is None else (out if out.ndim else out[()])
    if ctx is None or v.ndim != 0:
        return None
    args, dims = set(), []
    if not _collect(v, ctx, args, dims, set()):
        return None
    env = ctx.env()
    memo: dict = {}
    out = _evaluate(v, ctx, env, memo)
    for i in sorted(args):
        ctx.record(("arg", i), "==", ctx.leaves[i])
    for d in dims:
        ctx.record(d, "==", T.eval_dim(d, env))
    return out


def _collect(v, ctx, args, dims, seen) -> bool:
    if v.id in seen:
        return True
    seen.add(v.id)
    if v.id in ctx.inputs:
        i = ctx.inputs[v.id]
        leaf = ctx.leaves[i]
        if isinstance(leaf, (int, bool, np.integer, np.bool_)):
            args.add(i)
            return True
        return False
    if v.eqn is None:
        return v.is_const
    if v.eqn.prim == "dimsize":
        d = v.eqn.p["dim"]
        if isinstance(d, Dim):
            dims.append(d)
        return True
    return all(_collect(u, ctx, args, dims, seen) for u in v.eqn.inputs)


def _evaluate(v, ctx, env, memo):
    from ..ir.interpret import resolve
    from ..ir.primitives import PRIMS
    if v.id in memo:
        return memo[v.id]
    if v.id in ctx.inputs:
        out = np.asarray(ctx.leaves[ctx.inputs[v.id]], v.dtype)
    elif v.eqn is None:
        out = np.asarray(v.const)
    else:
        ins = [_evaluate(u, ctx, env, memo) for u in v.eqn.inputs]
        out = np.asarray(PRIMS[v.eqn.prim].impl(*ins, **{k: resolve(p, env) for k, p in v.eqn.params}))
    memo[v.id] = out
    return out


# --------------------------------------------------------------------------------------------- dispatch
def compile_check(guards, symbols):
    """A fast predicate over a call's argument leaves: Python source generated once per entry (no dict of
    lengths is built on the call path)."""
    if not guards:
        return None
    src = "def check(a):\n    return " + guard_source(guards, symbols, lambda i: f"a[{i}]") + "\n"
    ns: dict = {}
    exec(src, ns)
    return ns["check"]


def guard_source(guards, symbols, leaf) -> str:
    """A Python expression that is true when every guard holds; ``leaf(i)`` is the source of argument leaf i
    (``symbols`` says which leaf and axis each length symbol is read from)."""
    parts = []
    for g in guards:
        if isinstance(g.lhs, tuple):
            lhs = leaf(g.lhs[1])
        else:
            lhs = T.dim_py(g.lhs, lambda s: f"{leaf(symbols[s][0])}.shape[{symbols[s][1]}]")
        parts.append(f"({lhs} {g.op} {g.rhs})")
    return "(" + " and ".join(parts) + ")" if parts else "True"


def max_specializations() -> int:
    try:
        return max(1, int(os.environ.get("TRACEJIT_MAX_SPECIALIZATIONS", "8")))
    except ValueError:
        return 8


T.CONCRETE_HOOK = _dim_hook  # installed once: it reads this thread's trace context (None: Dim's default)
