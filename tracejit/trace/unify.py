"""Input lengths that the run-time checks force equal become one symbol in the traced graph.

``x + y`` on inputs of lengths ``n`` and ``m`` records the broadcasting check ``n == m`` (an input symbol is never 1:
the signature makes size-1 axes static, so the two lengths cannot broadcast and must be equal). Every call that
gets past the check has ``m == n``, so the program may as well read ``n`` wherever it said ``m``: after this
rewrite, later passes see one length (``x + y - x`` is ``y`` itself, not ``broadcast_to(y, (n,))``), fusion works
over one loop extent, and the compiled code keeps exactly one comparison for the pair.

The check itself stays: the graph keeps its original constraints and every input symbol (the driver still reads
``m`` from the second input to compare it with ``n``), so a mismatch raises numpy's ValueError, worded with the
original shapes, before any kernel runs. Nothing is specialized on a length: a new length does not recompile.
"""
from __future__ import annotations

from ..ir import ops
from ..ir import types as T
from ..ir.constraints import ConstraintKind, merge_symbols
from ..ir.graph import Graph, Value, toposort
from ..ir.regions import REGION_PRIMS
from ..ir.types import Dim, TensorType

_FORCING = (ConstraintKind.EQ, ConstraintKind.SAME)




def equal_symbols(graph) -> dict:
    """Input symbol -> the symbol it is unified with (the one read from the earliest input axis), for input
    symbols that an EQ (broadcasting) or SAME (exact) check requires equal."""
    return merge_symbols(((T.symbol_name(c.a), T.symbol_name(c.b)) for c in graph.constraints
                          if c.kind in _FORCING), graph.symbols)


def _subst(x, env):
    if isinstance(x, Dim):
        return _subst_dim(x, env)
    if isinstance(x, tuple):
        return tuple(_subst(e, env) for e in x)
    return x


def _subst_dim(d, env):
    """``d`` with symbols renamed by ``env`` (symbol -> symbol)."""
    if not any(a in env for a in d.atoms()):
        return d
    total = 0
    for mono, c in d.terms:
        term = c
        for a in mono:
            if isinstance(a, str):
                f = Dim.symbol(env.get(a, a))
            else:
                op, x, y = a
                f = {"fdiv": T.dim_floordiv, "max": T.dim_max, "min": T.dim_min}[op](_subst(x, env), _subst(y, env))
            term = term * f if isinstance(term, Dim) or not isinstance(f, Dim) else f * term
        total = total + term if isinstance(total, Dim) or not isinstance(term, Dim) else term + total
    return total


def _atoms(x) -> set:
    if isinstance(x, Dim):
        return x.atoms()
    if isinstance(x, tuple):
        out = set()
        for e in x:
            out |= _atoms(e)
        return out
    return set()


def _plain(p) -> bool:
    """A parameter the rename can see through: no region body or other object that might hold lengths."""
    if isinstance(p, tuple):
        return all(_plain(e) for e in p)
    return p is None or isinstance(p, (Dim, int, float, bool, str, complex)) or type(p).__module__ == "numpy"


def unify_equal_lengths(graph: Graph) -> Graph:
    """``graph`` with each input symbol that a check forces equal to an earlier one renamed to it (see the module
    docstring); the graph itself when there is nothing to unify or it holds what the rename cannot see through
    (loop or branch bodies, data-dependent lengths)."""
    env = equal_symbols(graph)
    if not env:
        return graph
    eqns = toposort(graph.outputs)
    for e in eqns:
        if e.prim in REGION_PRIMS or any(not _plain(p) for _, p in e.params):
            return graph
        if any(T.unbacked_symbols(d) for d in e.out.shape if isinstance(d, Dim)):
            return graph
    vm: dict = {}
    inputs = []
    for v in graph.inputs:
        shape = tuple(_subst(d, env) for d in v.shape)
        nv = v if shape == v.shape else Value(TensorType(v.dtype, shape, v.type.weak), name=v.name)
        vm[v.id] = nv
        inputs.append(nv)
    renamed = set(env)
    with ops.Builder() as b:
        for e in eqns:
            ins = [vm.get(v.id, v) for v in e.inputs]
            if all(a is v for a, v in zip(ins, e.inputs)) and not _atoms(tuple(p for _, p in e.params)) & renamed:
                vm[e.out.id] = e.out
                continue
            vm[e.out.id] = ops.bind(e.prim, *ins, **{k: _subst(p, env) for k, p in e.params})
    outputs = [vm.get(v.id, v) for v in graph.outputs]
    # the original checks stay (they read every input symbol and word errors with the caller's shapes); the
    # replay's own checks are those with the rename applied, kept unless the rename made them trivially true
    constraints, seen = [], set()
    for c in list(graph.constraints) + list(b.constraints):
        if c.kind in _FORCING and c.a == c.b:
            continue
        k = repr(c)
        if k not in seen:
            seen.add(k)
            constraints.append(c)
    return Graph(inputs=inputs, outputs=outputs, eqns=toposort(outputs), constraints=constraints,
                 symbols=dict(graph.symbols))
