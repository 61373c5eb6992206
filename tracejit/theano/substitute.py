"""Graph surgery for ``function``: substituting values (``givens``) and lengths (a symbolic axis that is 1 at run
time, axes that must be equal), by replaying the equations over the new leaves."""
from __future__ import annotations

from ..ir import ops
from ..ir import types as T
from ..ir.constraints import ConstraintKind, merge_symbols
from ..ir.graph import Value, toposort
from ..ir.regions import Region, close_graph
from ..ir.types import Dim
from ..trace.symbolic import atoms



def unify_equal_axes(constraints, env, position) -> dict:
    """Symbol -> representative symbol, for symbols that 'eq' constraints say must be equal.

    Declared axes do not broadcast (Theano's rule, checked before the call), so such symbols are one length:
    the compiled graph reads it once, fuses over it, and has no run-time check left for it.
    """
    return merge_symbols(((T.symbol_name(subst_dim(c.a, env)), T.symbol_name(subst_dim(c.b, env)))
                          for c in constraints if c.kind is ConstraintKind.EQ), position)


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


def subst_any(x, env, shared=None):
    """``x`` (a length, a tuple of them, a body) with the symbols in ``env`` replaced. ``shared``: one dict for
    every body of a replay, so bodies that shared Values still share them (the optimizer merges a scan into the
    backward pass's extended copy of it by that identity)."""
    if isinstance(x, Dim):
        return subst_dim(x, env)
    if isinstance(x, tuple):
        return tuple(subst_any(e, env, shared) for e in x)
    if isinstance(x, Region):
        return subst_region(x, env, {} if shared is None else shared)
    return x


def _atoms(x) -> set:
    """The symbols a parameter mentions, a loop or branch body's included."""
    if isinstance(x, Region):
        return set(x.graph.symbols)
    if isinstance(x, tuple):
        out = set()
        for e in x:
            out |= _atoms(e)
        return out
    return atoms(x)


def subst_region(r: Region, env: dict, vm: dict) -> Region:
    """A loop or branch body with the lengths in ``env`` substituted (its inputs' shapes, its equations'
    parameters); symbols that no input spells out any more become witness inputs again. ``vm``: old Value id ->
    new Value, shared by the bodies of one replay."""
    if not set(r.graph.symbols) & env.keys():
        return r
    g = r.graph
    with ops.Builder():
        fresh = []
        for v in g.inputs[:r.num_inputs]:
            if v.id not in vm:
                vm[v.id] = Value(T.TensorType(v.dtype, subst_any(tuple(v.shape), env)), name=v.name)
            fresh.append(vm[v.id])
        for e in g.eqns:
            if e.out.id not in vm:
                params = {k: subst_any(p, env, vm) for k, p in e.params}
                vm[e.out.id] = ops.bind(e.prim, *[vm.get(x.id, x) for x in e.inputs], **params)
        graph, witness = close_graph(fresh, [vm.get(o.id, o) for o in g.outputs])
    return Region(graph, witness)


def replay(outputs, value_map: dict, dim_env: dict, constraints=()):
    """Rebuild the equations computing ``outputs`` over substituted leaves (``value_map``: Value id -> Value) and
    lengths (``dim_env``: symbol -> length). Returns (new outputs, constraints of the new graph)."""
    vm = dict(value_map)
    bodies: dict = {}  # the Values of every body rebuilt here (see subst_any)
    with ops.Builder() as b:
        for e in toposort(outputs):
            if e.out.id in vm:  # an intermediate value substituted itself (consider_constant's stop_gradient)
                continue
            ins = [vm.get(v.id, v) for v in e.inputs]
            if all(a is v for a, v in zip(ins, e.inputs)) and not _atoms(e.params) & dim_env.keys():
                vm[e.out.id] = e.out
                continue
            params = {k: subst_any(p, dim_env, bodies) for k, p in e.params}
            vm[e.out.id] = ops.bind(e.prim, *ins, **params)
    cons = [c.map_lengths(lambda x: subst_any(x, dim_env)) for c in constraints] + list(b.constraints)
    return [vm.get(v.id, v) for v in outputs], cons


def may_alias(v: Value, input_ids) -> bool:
    """Whether the executable may return ``v`` as (a view of) one of its input arrays."""
    from ..ir.primitives import PRIMS
    while True:
        if v.id in input_ids:
            return True
        e = v.eqn
        if e is None or PRIMS[e.prim].kind != "view":
            return False
        v = e.inputs[0]


