"""The pass pipeline inside loop and branch bodies, and pruning of a scan's stacked outputs nobody reads.

Each body is optimized once (``memo`` remembers it by its structure), with the same pass order as the outer
graph; the region equations are then rebound with the optimized bodies.
"""
from __future__ import annotations

from ..ir import ops
from ..ir.graph import Graph, rebuild
from ..ir.regions import REGION_PRIMS, Region, close_graph, group_key


# body key -> optimized body (an optimized body maps to itself, so a second run changes nothing)
_OPTIMIZED: dict = {}


def optimize_regions(graph: Graph, strict_ieee=False, stats=None, memo=None, **_) -> Graph:
    if not any(e.prim in REGION_PRIMS for e in graph.eqns):
        return graph
    cache = _OPTIMIZED.setdefault(bool(strict_ieee), {})
    if len(cache) > 512:
        cache.clear()
    merged = _extended_scans(graph)
    used = _used_results(graph, merged)
    env: dict = {}
    changed = len(merged)
    with ops.Builder():
        for e in graph.eqns:
            ins = [env.get(x.id, x) for x in e.inputs]
            if e.prim not in REGION_PRIMS:
                env[e.out.id] = ops.bind(e.prim, *ins, **e.p) if any(a is not b for a, b in
                                                                      zip(ins, e.inputs)) else e.out
                continue
            src = merged.get(e.out.id, e)
            params = {k: _optimized(p, cache, strict_ieee) for k, p in src.p.items()}
            params, ins, result = _prune_scan(src, params, ins, used[group_key(src)])
            if params != e.p:
                changed += 1
            env[e.out.id] = ops.bind(e.prim, *ins, **dict(params, result=result))
    if stats is not None:
        stats["regions"] = changed
    if not changed:
        return graph
    return rebuild(graph, outputs=[env.get(o.id, o) for o in graph.outputs])


def _optimized(p, cache, strict_ieee):
    if isinstance(p, tuple):
        return tuple(_optimized(x, cache, strict_ieee) for x in p)
    if not isinstance(p, Region):
        return p
    hit = cache.get(p.key)
    if hit is None:
        from .pipeline import optimize
        g = optimize(p.graph, strict_ieee=strict_ieee)
        hit = Region(g, p.witness)
        cache[p.key] = cache[hit.key] = hit
    return hit


def _used_results(graph, merged) -> dict:
    out: dict = {}
    for e in graph.eqns:
        if e.prim in REGION_PRIMS:
            e = merged.get(e.out.id, e)
            out.setdefault(group_key(e), set()).add(e.p["result"])
    return out


def _extended_scans(graph) -> dict:
    """Scans over the same inputs where one body computes everything the other does and more (the backward
    pass's forward loop stores the carries as extra outputs): out id of a result of the smaller -> an equation
    standing for the same result of the larger, so the loop runs once. Bodies share Values until they are
    optimized, so "the same output" is identity here (this runs before the bodies are optimized)."""
    firsts: dict = {}
    for e in graph.eqns:
        if e.prim == "scan":
            firsts.setdefault(group_key(e), e)
    buckets: dict = {}
    for e in firsts.values():
        p = e.p
        buckets.setdefault((tuple(x.id for x in e.inputs), p["num_consts"], p["num_carry"], p["length"],
                            p["reverse"]), []).append(e)
    target: dict = {}  # group key of the smaller -> (larger's first equation, result index map)
    for group in buckets.values():
        for a in group:
            for b in group:
                m = _contained(a, b) if a is not b and group_key(b) not in target else None
                if m is not None and group_key(a) not in target:
                    target[group_key(a)] = (b, m)
    out: dict = {}
    for e in graph.eqns:
        hit = target.get(group_key(e)) if e.prim == "scan" else None
        if hit is not None:
            b, m = hit
            out[e.out.id] = _Stand(b, m[e.p["result"]])
    return out


def _contained(a, b):
    """Result index map a -> b when b's body has a's inputs and every output of a's in the same role."""
    ga, gb, nc = a.p["body"].graph, b.p["body"].graph, a.p["num_carry"]
    if len(ga.inputs) != len(gb.inputs) or any(x is not y for x, y in zip(ga.inputs, gb.inputs)):
        return None
    if any(x is not y for x, y in zip(ga.outputs[:nc], gb.outputs[:nc])):
        return None
    m = list(range(nc))
    for o in ga.outputs[nc:]:
        pos = next((i for i in range(nc, len(gb.outputs)) if gb.outputs[i] is o), None)
        if pos is None:
            return None
        m.append(pos)
    return m


class _Stand:
    """An equation of the larger scan standing for a result of the smaller one (prim, inputs, params)."""

    def __init__(self, eqn, result):
        self.prim, self.inputs, self.out = eqn.prim, eqn.inputs, eqn.out
        self.params = tuple((k, result if k == "result" else v) for k, v in eqn.params)

    @property
    def p(self):
        return dict(self.params)


def _prune_scan(e, params, ins, used):
    """A scan stops computing what nobody reads: stacked outputs no equation reads, and carries no equation
    reads whose value feeds only their own next value (a fori_loop's unused index). Results are renumbered."""
    result = e.p["result"]
    if e.prim != "scan":
        return params, ins, result
    body, nk, nc = params["body"], params["num_consts"], params["num_carry"]
    g = body.graph
    inputs, outs = list(g.inputs[:body.num_inputs]), list(g.outputs)
    keep_y = [k for k in range(len(outs) - nc) if nc + k in used]
    deps = _input_deps(g)
    keep_c, dropped = list(range(nc)), True
    while dropped:
        dropped = False
        for k in list(keep_c):
            cid = inputs[nk + k].id
            if k in used or any(cid in deps[j] for j in keep_c if j != k) or any(
                    cid in deps[nc + y] for y in keep_y):
                continue
            keep_c.remove(k)
            dropped = True
    if len(keep_c) == nc and len(keep_y) == len(outs) - nc:
        return params, ins, result
    new_graph, witness = close_graph(inputs[:nk] + [inputs[nk + k] for k in keep_c] + inputs[nk + nc:],
                                     [outs[k] for k in keep_c] + [outs[nc + k] for k in keep_y])
    ins = list(ins[:nk]) + [ins[nk + k] for k in keep_c] + list(ins[nk + nc:])
    result = keep_c.index(result) if result < nc else len(keep_c) + keep_y.index(result - nc)
    return dict(params, body=Region(new_graph, witness), num_carry=len(keep_c)), ins, result


def _input_deps(g) -> list:
    """For each output of ``g``, the ids of the inputs it depends on."""
    deps = {v.id: {v.id} for v in g.inputs}
    for e in g.eqns:
        deps[e.out.id] = set().union(*[deps.get(x.id, ()) for x in e.inputs])
    return [deps.get(o.id, set()) for o in g.outputs]
