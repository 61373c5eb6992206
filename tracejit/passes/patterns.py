"""The rewrite driver every local-rewrite pass (simplify, fold, CSE, stabilize) uses (their patterns are written
with ``passes/matching.py``). ``rewrite(graph, rules)`` rebuilds the graph bottom-up
inside a fresh ``ops.Builder`` (hash-consing merges equal equations as they are rebuilt), offers every new value
to the rules registered for its primitive, and repeats until no rule fires, so each pass is idempotent.

Values are immutable, so a value every rule declined stays declined: it is remembered (``Context.settled``, shared
by the passes of one pipeline run through ``memo``) and not offered again. A rewrite rebuilds everything above it
as copies over new inputs; a copy keeps what the rules decided for the original when nothing within the rules'
``reach`` (declared with ``@on``) was rewritten. The sweep that would only confirm a fixed point is replaced by a
scan that offers the rules just the values not yet settled, without rebuilding; so is a whole pass over a graph
another pass left at its fixed point, when its rules all decline.

A rule's result must have the type of the value it replaces: ``conform`` inserts a ``broadcast_to`` where the
result is smaller but broadcasts to the old shape, re-makes a constant with the old weak flag, and otherwise
rejects the rewrite, so no rule can change a dtype or a shape.
"""
from __future__ import annotations

import hashlib
import weakref
from typing import NamedTuple

import numpy as np

from ..ir import ops
from ..ir.graph import Equation, Graph, Value, const_key, toposort
from ..ir.primitives import PRIMS

MAX_ROUNDS = 12  # a pass stops after this many rebuilds even if rules still fire (guards against ping-pong)
MAX_FIRES_PER_VALUE = 8
MAX_NESTING = 3  # rules applied to what rules build, this many levels deep


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

    def __init__(self, strict_ieee=False, stats=None, settled=None):
        self.strict_ieee = strict_ieee
        self.stats = stats if stats is not None else {}
        self.changes = 0
        self.big_consts: dict = {}
        self.uses: dict = {}  # value id -> consumers in the graph being rebuilt (values made by rules: 1)
        self.uses_of = None  # the graph ``uses`` counts, until a sweep starts changing them
        self.scratches: list = []  # one reusable scratch builder per rule nesting depth (see _first_rewrite)
        # value id -> ids ``shared`` said yes to while every rule declined the value (see _is_settled)
        self.settled = settled if settled is not None else {}
        self.consulted: list = []
        self.rules = None  # prim -> the rules offered its values
        self.tables: list = []  # (rule lists, settled) of every table in the memo: copies carry all of them

    def shared(self, v) -> bool:
        """Does some other equation (or a graph output) also read v?

        A rule may use a yes only to decline (a node others still need is not saved by rewriting it): the settled
        memo re-offers a value only when one of the yeses it was declined with has turned into a no."""
        if self.uses.get(v.id, 1) > 1:
            self.consulted.append(v.id)
            return True
        return False

    def fired(self, name):
        self.stats[name] = self.stats.get(name, 0) + 1
        self.changes += 1

    def shared_constant(self, arr, weak=False):
        """A constant Value for ``arr``; large ones with equal contents share one Value (and one buffer)."""
        if arr.size <= 64:
            return ops.constant(arr, weak=weak)
        key = (arr.dtype.str, arr.shape, weak, _digest(arr))
        hit = self.big_consts.get(key)
        if hit is None:
            hit = self.big_consts[key] = ops.constant(arr, weak=weak)
        return hit


# graph a rewrite returned (at a fixed point, so no two equal equations or constants) -> its use counts; like all
# graphs, those are never changed once made
_CLEAN = weakref.WeakKeyDictionary()


def rewrite(graph: Graph, rules: dict, strict_ieee=False, stats=None, memo=None) -> Graph:
    """Rebuild ``graph`` applying ``rules`` (prim name, or "*" for any, -> list of rule(v, ctx)) to a fixed point.

    ``memo``: a dict kept across the passes of one pipeline run, so values settled in one pass are not offered
    the same rules again in the next."""
    memo = {} if memo is None else memo
    key = (id(rules), strict_ieee)  # the table is kept in the memo with its settled values: its id stays unique
    if key not in memo:
        memo[key] = (_RuleLists(rules), {})
    rules, settled = memo[key]
    ctx = Context(strict_ieee, stats, settled)
    ctx.rules, ctx.tables = rules, list(memo.values())
    if graph in _CLEAN and _all_decline(graph, rules, ctx):
        return _copy(graph)
    for _ in range(MAX_ROUNDS):
        before = ctx.changes
        graph, constants_distinct = _rewrite_once(graph, rules, ctx)
        if ctx.changes == before or (constants_distinct and _all_decline(graph, rules, ctx)):
            _CLEAN[graph] = ctx.uses  # a sweep would change nothing
            break
    return graph


class _RuleLists(dict):
    """prim -> the rules to offer its values: those for any primitive ("*") first, then its own."""

    def __init__(self, rules):
        self.source = rules  # kept alive, so that its id (the memo's key) is not reused
        self.any = list(rules.get("*", []))
        super().__init__({p: self.any + list(fs) for p, fs in rules.items() if p != "*"})
        self.reaches: dict = {}

    def __missing__(self, prim):
        return self.any

    def deepest(self) -> int:
        """The most levels any bounded rule reads (the depth to which rewrites are tracked)."""
        reaches = {getattr(rule, "reach", None) for fs in [self.any, *self.values()] for rule in fs}
        return max([r for r in reaches if isinstance(r, int)] + [w.depth for w in reaches if isinstance(w, Walk)],
                   default=0)

    def all_walks(self) -> set:
        """The walks the rules follow down the graph."""
        reaches = {getattr(rule, "reach", None) for fs in [self.any, *self.values()] for rule in fs}
        return {r for r in reaches if isinstance(r, Walk)}

    def reach(self, prim):
        """(levels, walks) that the rules of ``prim`` read below a value together; None when unbounded."""
        if prim not in self.reaches:
            reaches = [getattr(rule, "reach", None) for rule in self[prim]]
            if any(r is None for r in reaches):
                self.reaches[prim] = None
            else:
                levels = max([r for r in reaches if isinstance(r, int)], default=0)
                self.reaches[prim] = (levels, tuple({r for r in reaches if isinstance(r, Walk)}))
        return self.reaches[prim]


def _copy(graph):
    out = Graph(list(graph.inputs), list(graph.outputs), list(graph.eqns), list(graph.constraints),
                dict(graph.symbols))
    _CLEAN[out] = _CLEAN[graph]
    return out


def _use_counts(graph) -> dict:
    uses: dict = {}
    for e in graph.eqns:
        for x in e.inputs:
            uses[x.id] = uses.get(x.id, 0) + 1
    for v in graph.outputs:
        uses[v.id] = uses.get(v.id, 0) + 1
    return uses


def _all_decline(graph, rules, ctx) -> bool:
    """Does every rule decline every value of ``graph``? Then a sweep over it, whose equations and constants are
    already distinct, would change nothing. Settled values are not asked again; the others are asked in a
    throwaway builder, where a rule that only rebuilds v counts as firing."""
    ctx.uses = _CLEAN.get(graph) or _use_counts(graph)
    ctx.uses_of = graph  # the next sweep, if any, starts from these counts
    with ops.Builder():
        for e in graph.eqns:
            v = e.out
            if rules[e.prim] and not _is_settled(v, ctx) and not _declines(v, rules[e.prim], ctx):
                return False
    return True


def _constants_distinct(graph, consts, ctx) -> bool:
    """Are the constants of ``graph``, which a sweep made with ``consts`` as its table of constants, all different?
    Small ones are by construction (every constant is looked up by its contents), large ones are hashed (only
    when their dtype and shape collide)."""
    if not ctx.big_consts and all(v.const.size <= 64 for v in consts.values()):
        return True
    big: dict = {}
    for c in graph.constants():
        if c.const.size > 64:
            big.setdefault((c.dtype.str, c.shape, c.type.weak), []).append(c.const)
    return all(len({_digest(a) for a in arrs}) == len(arrs) for arrs in big.values() if len(arrs) > 1)


def _digest(arr) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(arr).tobytes(), digest_size=16).digest()


def _is_settled(v, ctx) -> bool:
    """Did every rule decline v, with each value they found shared then still shared now?"""
    deps = ctx.settled.get(v.id)
    return deps is not None and (not deps or all(ctx.uses.get(d, 1) > 1 for d in deps))


def _declines(v, rules, ctx) -> bool:
    """Does every rule decline v? (a dry run: nothing fires; a yes is remembered in ``ctx.settled``)"""
    ctx.consulted = []
    for rule in rules:
        if _candidate(rule, v, ctx) is not None:
            return False
    ctx.settled[v.id] = tuple(ctx.consulted)
    return True


def _rewrite_once(graph, rules, ctx):
    old_uses = ctx.uses if ctx.uses_of is graph else _use_counts(graph)
    ctx.uses, ctx.uses_of = dict(old_uses), None
    # with no value settled yet (a first sweep) there is nothing a copy could keep
    dirt = _Dirt(ctx.tables) if any(settled for _, settled in ctx.tables) else None
    with ops.Builder() as b:
        env = {v.id: v for v in graph.inputs}

        def get(v):
            r = env.get(v.id)
            if r is None:  # a constant: equal constants become one Value (first one seen is kept)
                r = _canonical_constant(v, b, ctx)
                env[v.id] = r
                if r is not v and dirt is not None:
                    dirt.rewritten(v)
            return r

        for e in graph.eqns:
            ins = tuple([env.get(x.id) or get(x) for x in e.inputs])
            new, copied = _rebind(e, ins, b, ctx)
            if copied and dirt is not None:  # something below was rewritten (the same inputs: nothing to note)
                dirt.copied(e, new, env)
            out = _apply_rules(new, rules, ctx)
            if dirt is not None and (out is not new or (new is not e.out and not copied)):
                dirt.rewritten(e.out)
            if out is not e.out:
                ctx.uses[out.id] = ctx.uses.get(out.id, 0) + old_uses.get(e.out.id, 0)
            env[e.out.id] = out
        outs = [get(v) for v in graph.outputs]
        constraints = list(dict.fromkeys(list(graph.constraints) + b.constraints))
    new_graph = Graph(list(graph.inputs), outs, toposort(outs, bound=graph.symbols), constraints, dict(graph.symbols))
    return new_graph, _constants_distinct(new_graph, b.consts, ctx)


def _canonical_constant(v, b, ctx):
    arr = v.const
    weak = v.type.weak
    if arr.size <= 64:
        key = const_key(arr) + (weak,)
    else:
        key = ("big", arr.dtype.str, arr.shape, weak, _digest(arr))
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
    """(value, copied): the equation ``e`` over the rebuilt inputs ``ins``: the old Value when nothing changed
    (and no equal equation exists yet), an existing equal one (CSE), or a new one, ``copied`` when that new one
    is e over the new inputs with e's type."""
    same = ins == e.inputs  # Values compare by identity
    if not same and [x.type for x in ins] != [x.type for x in e.inputs]:
        return ops.bind(e.prim, *ins, **dict(e.params)), False
    # inputs of the same types give the same output type: skip the type rules (the common case, by conform)
    ids = tuple([v.id for v in ins])
    if e.prim in _COMMUTATIVE:
        ids = tuple(sorted(ids))
    key = (e.prim, ids, e.params)
    hit = b.table.get(key)
    if hit is None:
        out = e.out
        if not same:
            eqn = Equation(e.prim, ins, e.params)
            out = eqn.out = Value(e.out.type, eqn)
        b.table[key] = out
        return out, not same
    if same and hit is not e.out:
        ctx.fired("merge_equal")
    return hit, False


_COMMUTATIVE = frozenset(name for name, prim in PRIMS.items() if prim.commutative)
_FAR = 1 << 30


class _Dirt:
    """Where a sweep rewrote the graph, so that a copy far from every rewrite keeps the settledness of its original
    (in every table of the memo: the next pass need not offer it its rules either).

    Keyed by the old value: ``dist`` is the distance down to the nearest rewritten value (0: rewritten itself;
    kept up to the deepest reach of a table); ``reached[walk]`` holds the values of the walk's primitives whose
    walk reaches one."""

    def __init__(self, tables):
        self.tables = tables
        self.dist: dict = {}
        self.reached = {w: set() for lists, _ in tables for w in lists.all_walks()}
        self.depth = max([lists.deepest() for lists, _ in tables], default=0)
        self.carriers: dict = {}

    def rewritten(self, v):
        self.dist[v.id] = 0
        for reached in self.reached.values():
            reached.add(v.id)

    def copied(self, e, new, env):
        """``new`` is e over rebuilt inputs: note its distance to the rewrites below (``rewritten`` corrects it
        if a rule rewrites it after all), and settle it in every table where ``e.out`` is settled and nothing
        within the reach of the table's rules was rewritten (the values found shared are carried to their copies)."""
        dist = self.dist
        d = _FAR
        for x in e.inputs:
            dx = dist.get(x.id, _FAR)
            if dx < d:
                d = dx
        d += 1
        if d <= self.depth:
            dist[e.out.id] = d
        for w, reached in self.reached.items():
            if e.prim in w.prims and not self._walk_clean(e, w, reached):
                reached.add(e.out.id)
        carriers = self.carriers.get(e.prim)
        if carriers is None:
            carriers = self._carriers(e.prim)
        for settled, levels, walks in carriers:
            deps = settled.get(e.out.id)
            if deps is None or d <= levels or any(e.out.id in self.reached[w] for w in walks):
                continue
            if deps:
                mapped = [env.get(x) for x in deps]
                if None in mapped:
                    continue
                deps = tuple([v.id for v in mapped])
            settled[new.id] = deps

    def _walk_clean(self, e, w, reached) -> bool:
        for x in e.inputs:
            if x.eqn is not None and x.eqn.prim in w.prims:
                if x.id in reached:
                    return False
            elif self.dist.get(x.id, _FAR) <= w.depth:
                return False
        return True

    def _carriers(self, prim) -> list:
        """(settled, levels, walks) of the tables whose rules for ``prim`` have a bounded reach."""
        self.carriers[prim] = []
        for lists, settled in self.tables:
            reach = lists.reach(prim)
            if lists[prim] and reach is not None and all(prim in w.prims for w in reach[1]):
                self.carriers[prim].append((settled, *reach))
        return self.carriers[prim]


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

    def clear(self):
        """Forget what a declined rule built (most build nothing, and then this costs nothing)."""
        if self.table or self.consts or self.constraints:
            self.table.clear()
            self.consts.clear()
            self.constraints.clear()


def _scratch_for(ctx, depth):
    """The scratch builder of this nesting depth, emptied (most rules build nothing: reuse beats allocating)."""
    base = ops.current()
    while len(ctx.scratches) <= depth:
        ctx.scratches.append(None)
    s = ctx.scratches[depth]
    if s is None or s.base is not base:
        s = ctx.scratches[depth] = _Scratch(base)
    else:
        s.clear()
    return s


def _candidate(rule, v, ctx):
    """What ``rule`` rewrites v to, conformed to v's type; None when it declines."""
    r = rule(v, ctx)
    if r is None or r is v:
        return None
    r = conform(r, v)
    return None if r is None or r is v else r


def _first_rewrite(v, rules, ctx, depth):
    """(rule, new value) for the first of v's rules that fires, else None (v is then settled). The rules build
    their candidates in one scratch builder, emptied after each rule that declines."""
    ctx.consulted = []
    with _scratch_for(ctx, depth) as scratch:
        for rule in rules[v.eqn.prim]:
            r = _candidate(rule, v, ctx)
            if r is not None:
                break
            scratch.clear()
        else:
            return None
        if depth < MAX_NESTING:
            r = _normalize_new(r, list(dict.values(scratch.table)), rules, ctx, depth + 1)
    scratch.commit()
    return rule, r


def _normalize_new(r, created, rules, ctx, depth):
    """Offer the equations a rule just built to the rules too (bottom-up), so one rebuild reaches what would
    otherwise take another round: ``-(a - b)`` built by a sum collection becomes ``b - a`` at once."""
    env: dict = {}
    for nv in created:
        e = nv.eqn
        ins = tuple(env.get(x.id, x) for x in e.inputs)
        new = nv if all(a is b for a, b in zip(ins, e.inputs)) else ops.bind(e.prim, *ins, **dict(e.params))
        env[nv.id] = _apply_rules(new, rules, ctx, depth)
    return env.get(r.id, r)


def _apply_rules(v, rules, ctx, depth=0):
    for _ in range(MAX_FIRES_PER_VALUE):
        if v.eqn is None or not rules[v.eqn.prim] or _is_settled(v, ctx):
            return v
        fired = _first_rewrite(v, rules, ctx, depth)
        if fired is None:
            ctx.settled[v.id] = tuple(ctx.consulted)
            return v
        ctx.fired(fired[0].__name__)
        v = fired[1]
    return v


def rule_table(*fns) -> dict:
    """{prim: [rules]} from functions tagged with ``@on("prim", ...)``, in the order given."""
    table: dict = {}
    for f in fns:
        for p in f.prims:
            table.setdefault(p, []).append(f)
    return table


class Walk(NamedTuple):
    """A rule's reach that follows ``prims`` down from the value (a sum walks through add, subtract, ...) and
    reads ``depth`` levels below each value where it stops (0: that value itself)."""
    prims: frozenset
    depth: int


def on(*prims, reach=None):
    """Tag a rule with the primitives whose values it looks at, and its ``reach``: how deep below the value it
    looks (at primitives, parameters, which inputs are the same value, constants) to decide whether it fires:
    ``k`` levels (1: the value's inputs), a ``Walk``, or None for no bound. When nothing within the reach of any
    of a value's rules was rewritten, a copy of the value is not offered the rules again, so a reach declared
    too short loses rewrites (tests/test_passes.py checks every skip against the rules on random programs)."""
    def deco(f):
        f.prims = prims
        f.reach = reach
        return f
    return deco
