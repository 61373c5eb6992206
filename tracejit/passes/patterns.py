"""A small pattern helper and the rewrite driver every local-rewrite pass (simplify, fold, CSE, stabilize) uses.

Patterns read like the comment they implement: ``x = arg(v, "negative")`` is "v is -x"; ``a, b = args(v, "add")``;
``scalar(v)`` is the value of a one-element constant. ``rewrite(graph, rules)`` rebuilds the graph bottom-up
inside a fresh ``ops.Builder`` (hash-consing merges equal equations as they are rebuilt), offers every new value
to the rules registered for its primitive, and repeats until no rule fires, so each pass is idempotent.

A rule's result must have the type of the value it replaces: ``conform`` inserts a ``broadcast_to`` where the
result is smaller but broadcasts to the old shape, re-makes a constant with the old weak flag, and otherwise
rejects the rewrite, so no rule can change a dtype or a shape.
"""
from __future__ import annotations

import hashlib

import numpy as np

from ..ir import ops
from ..ir.graph import Equation, Graph, Value, const_key, toposort
from ..ir.primitives import PRIMS

MAX_ROUNDS = 12  # a pass stops after this many rebuilds even if rules still fire (guards against ping-pong)
MAX_FIRES_PER_VALUE = 8
MAX_NESTING = 3  # rules applied to what rules build, this many levels deep


# ------------------------------------------------------------------------------------------------ matching
def eqn_of(v, prim):
    """The equation producing ``v`` if its primitive is ``prim`` (a name or a set of names), else None.

    ``v`` may be None (a sub-pattern that did not match), so patterns chain: ``arg(arg(v, "exp"), "log")``."""
    e = v.eqn if v is not None else None
    if e is None:
        return None
    if e.prim == prim if isinstance(prim, str) else e.prim in prim:
        return e
    return None


def args(v, prim):
    """The inputs of ``v = prim(...)``, or None when v is something else."""
    e = eqn_of(v, prim)
    return e.inputs if e is not None else None


def arg(v, prim):
    """The single input x of ``v = prim(x)``, or None."""
    e = eqn_of(v, prim)
    return e.inputs[0] if e is not None else None


def param(v, name):
    return v.eqn.p[name]


def scalar(v):
    """The Python value of a constant whose elements are all equal (a scalar of any shape), else None.

    Rules may treat it as a 0-d scalar: ``conform`` broadcasts their result back to the shape it had."""
    if not v.is_const:
        return None
    c = v.const
    if c.size == 1:
        return c.reshape(()).item()
    if 1 < c.size <= 64 and c.dtype.kind != "f" and (c == c.flat[0]).all():
        return c.flat[0].item()
    if 1 < c.size <= 64 and c.dtype.kind == "f" and (c.view(np.dtype(f"u{c.itemsize}")) ==
                                                   c.view(np.dtype(f"u{c.itemsize}")).flat[0]).all():
        return c.flat[0].item()  # bitwise equal, so -0.0 and 0.0 or two nans are not mixed up
    return None


def is_scalar(v, value) -> bool:
    s = scalar(v)
    return s is not None and s == value


def operands_with_scalar(v, prim, value):
    """For a commutative ``v = prim(a, b)``: the operand other than a constant equal to ``value``, else None."""
    ab = args(v, prim)
    if ab is None:
        return None
    a, b = ab
    if is_scalar(a, value):
        return b
    if is_scalar(b, value):
        return a
    return None


def is_float(v) -> bool:
    return v.dtype.kind == "f"


def is_num(v) -> bool:
    """int or float: the dtypes where add/multiply are the ring operations (bool add is logical or)."""
    return v.dtype.kind in "iuf"


def neg(x, flip_differences=False):
    """-x, without building --y; with ``flip_differences``, -(a - b) as b - a (not for strict IEEE: signed zero)."""
    inner = arg(x, "negative")
    if inner is not None:
        return inner
    ab = args(x, "subtract") if flip_differences else None
    if ab is not None:
        return ops.ufunc("subtract", ab[1], ab[0])
    return ops.ufunc("negative", x)


def const_like(value, like):
    """A 0-d constant of ``like``'s dtype and weakness (``conform`` broadcasts it to like's shape where needed)."""
    return ops.constant(np.asarray(value).astype(like.dtype), weak=like.type.weak)


# ------------------------------------------------------------------------------------------------ conform
def _broadcasts_to(small, big) -> bool:
    """Can ``small`` broadcast to ``big``? Two different symbolic lengths can: the rewritten expression already
    broadcast them together, which recorded a run-time constraint that they are equal."""
    if len(small) > len(big):
        return False
    return all(s == 1 or s == b or (b != 1 and not (isinstance(s, int) and isinstance(b, int)))
               for s, b in zip(small[::-1], big[::-1]))


def conform(new, old):
    """``new`` made to have exactly ``old``'s type, or None when that is not possible without changing meaning."""
    if new is old:
        return new
    if new.dtype != old.dtype:
        if not new.is_const:
            return None
        new = ops.constant(new.const.astype(old.dtype), weak=new.type.weak)
    if new.shape != old.shape:
        if not _broadcasts_to(new.shape, old.shape):
            return None
        if new.type.weak != old.type.weak and new.is_const:
            new = ops.constant(new.const, weak=False)
        new = ops.broadcast_to(new, old.shape)
    if new.type.weak != old.type.weak:
        if not new.is_const:
            return None
        new = ops.constant(new.const, weak=old.type.weak)
    return new if new.type == old.type else None


# ------------------------------------------------------------------------------------------------ driver
class Context:
    """What a rule may read (``strict_ieee``) and how it reports (``stats``: rule name -> times fired)."""

    def __init__(self, strict_ieee=False, stats=None):
        self.strict_ieee = strict_ieee
        self.stats = stats if stats is not None else {}
        self.changes = 0
        self.big_consts: dict = {}
        self.uses: dict = {}  # value id -> consumers in the graph being rebuilt (values made by rules: 1)
        self.scratches: list = []  # one reusable scratch builder per rule nesting depth (see _try_rule)

    def shared(self, v) -> bool:
        """Does some other equation (or a graph output) also read v?"""
        return self.uses.get(v.id, 1) > 1

    def fired(self, name):
        self.stats[name] = self.stats.get(name, 0) + 1
        self.changes += 1

    def shared_constant(self, arr, weak=False):
        """A constant Value for ``arr``; large ones with equal contents share one Value (and one buffer)."""
        if arr.size <= 64:
            return ops.constant(arr, weak=weak)
        key = (arr.dtype.str, arr.shape, weak, hashlib.blake2b(np.ascontiguousarray(arr).tobytes(),
                                                                digest_size=16).digest())
        hit = self.big_consts.get(key)
        if hit is None:
            hit = self.big_consts[key] = ops.constant(arr, weak=weak)
        return hit


def rewrite(graph: Graph, rules: dict, strict_ieee=False, stats=None) -> Graph:
    """Rebuild ``graph`` applying ``rules`` (prim name, or "*" for any, -> list of rule(v, ctx)) to a fixed point."""
    ctx = Context(strict_ieee, stats)
    for _ in range(MAX_ROUNDS):
        before = ctx.changes
        graph = _rewrite_once(graph, rules, ctx)
        if ctx.changes == before:
            break
    return graph


def _rewrite_once(graph, rules, ctx):
    any_rules = rules.get("*", [])
    old_uses: dict = {}
    for e in graph.eqns:
        for x in e.inputs:
            old_uses[x.id] = old_uses.get(x.id, 0) + 1
    for v in graph.outputs:
        old_uses[v.id] = old_uses.get(v.id, 0) + 1
    ctx.uses = dict(old_uses)
    with ops.Builder() as b:
        env = {v.id: v for v in graph.inputs}

        def get(v):
            r = env.get(v.id)
            if r is None:  # a constant: equal constants become one Value (first one seen is kept)
                r = _canonical_constant(v, b, ctx)
                env[v.id] = r
            return r

        for e in graph.eqns:
            ins = tuple(get(x) for x in e.inputs)
            new = _rebind(e, ins, b, ctx)
            new = _apply_rules(new, rules, any_rules, ctx)
            if new is not e.out:
                ctx.uses[new.id] = ctx.uses.get(new.id, 0) + old_uses.get(e.out.id, 0)
            env[e.out.id] = new
        outs = [get(v) for v in graph.outputs]
        constraints = list(dict.fromkeys(list(graph.constraints) + b.constraints))
    return Graph(list(graph.inputs), outs, toposort(outs), constraints, dict(graph.symbols))


def _canonical_constant(v, b, ctx):
    arr = v.const
    weak = v.type.weak
    if arr.size <= 64:
        key = const_key(arr) + (weak,)
    else:
        key = ("big", arr.dtype.str, arr.shape, weak,
               hashlib.blake2b(np.ascontiguousarray(arr).tobytes(), digest_size=16).digest())
    hit = b.consts.get(key)
    if hit is None:
        b.consts[key] = v
        if arr.size > 64:
            b.consts[const_key(arr) + (weak,)] = v
            ctx.big_consts[(arr.dtype.str, arr.shape, weak, key[-1])] = v
        return v
    if hit is not v:
        ctx.fired("merge_constants")
    return hit


def _rebind(e, ins, b, ctx):
    """The equation ``e`` over the rebuilt inputs ``ins``: the old Value when nothing changed (and no equal
    equation exists yet), an existing equal one (CSE), or a new one."""
    same = all(x is y for x, y in zip(ins, e.inputs))
    if not same and not all(x.type == y.type for x, y in zip(ins, e.inputs)):
        return ops.bind(e.prim, *ins, **dict(e.params))
    # inputs of the same types give the same output type: skip the type rules (the common case, by conform)
    ids = tuple(v.id for v in ins)
    if PRIMS[e.prim].commutative:
        ids = tuple(sorted(ids))
    key = (e.prim, ids, e.params)
    hit = b.table.get(key)
    if hit is None:
        out = e.out
        if not same:
            eqn = Equation(e.prim, ins, e.params)
            out = eqn.out = Value(e.out.type, eqn)
        b.table[key] = out
        return out
    if same and hit is not e.out:
        ctx.fired("merge_equal")
    return hit


class _Overlay(dict):
    """A hash-cons table that reads through to ``base`` and keeps its own writes until ``commit``."""

    def __init__(self, base):
        super().__init__()
        self.base = base

    def get(self, key, default=None):
        hit = dict.get(self, key)
        return hit if hit is not None else self.base.get(key, default)

    def commit(self):
        self.base.update(self)


class _Scratch(ops.Builder):
    """Where a rule builds its candidate: a rejected candidate leaves no trace in the real tables, so it cannot
    be mistaken later for an equal equation of the graph."""

    def __init__(self, base: ops.Builder):
        super().__init__()
        self.base = base
        self.table = _Overlay(base.table)
        self.consts = _Overlay(base.consts)

    def commit(self):
        self.table.commit()
        self.consts.commit()
        self.base.constraints.extend(self.constraints)


def _scratch_for(ctx, depth):
    """The scratch builder of this nesting depth, emptied (most rules build nothing: reuse beats allocating)."""
    base = ops.current()
    while len(ctx.scratches) <= depth:
        ctx.scratches.append(None)
    s = ctx.scratches[depth]
    if s is None or s.base is not base:
        s = ctx.scratches[depth] = _Scratch(base)
    else:
        s.table.clear()
        s.consts.clear()
        s.constraints.clear()
    return s


def _try_rule(rule, v, ctx, rules, any_rules, depth):
    with _scratch_for(ctx, depth) as scratch:
        r = rule(v, ctx)
        if r is None or r is v:
            return None
        r = conform(r, v)
        if r is None or r is v:
            return None
        if depth < MAX_NESTING:
            r = _normalize_new(r, list(dict.values(scratch.table)), rules, any_rules, ctx, depth + 1)
    scratch.commit()
    return r


def _normalize_new(r, created, rules, any_rules, ctx, depth):
    """Offer the equations a rule just built to the rules too (bottom-up), so one rebuild reaches what would
    otherwise take another round: ``-(a - b)`` built by a sum collection becomes ``b - a`` at once."""
    env: dict = {}
    for nv in created:
        e = nv.eqn
        ins = tuple(env.get(x.id, x) for x in e.inputs)
        new = nv if all(a is b for a, b in zip(ins, e.inputs)) else ops.bind(e.prim, *ins, **dict(e.params))
        env[nv.id] = _apply_rules(new, rules, any_rules, ctx, depth)
    return env.get(r.id, r)


def _apply_rules(v, rules, any_rules, ctx, depth=0):
    for _ in range(MAX_FIRES_PER_VALUE):
        e = v.eqn
        if e is None:
            return v
        for rule in any_rules + rules.get(e.prim, []):
            r = _try_rule(rule, v, ctx, rules, any_rules, depth)
            if r is None:
                continue
            ctx.fired(rule.__name__)
            v = r
            break
        else:
            return v
    return v


def rule_table(*fns) -> dict:
    """{prim: [rules]} from functions tagged with ``@on("prim", ...)``, in the order given."""
    table: dict = {}
    for f in fns:
        for p in f.prims:
            table.setdefault(p, []).append(f)
    return table


def on(*prims):
    """Tag a rule with the primitives whose values it looks at."""
    def deco(f):
        f.prims = prims
        return f
    return deco
