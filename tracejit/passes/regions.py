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
    used = _used_results(graph)
    env: dict = {}
    changed = 0
    with ops.Builder():
        for e in graph.eqns:
            ins = [env.get(x.id, x) for x in e.inputs]
            if e.prim not in REGION_PRIMS:
                env[e.out.id] = ops.bind(e.prim, *ins, **e.p) if any(a is not b for a, b in
                                                                      zip(ins, e.inputs)) else e.out
                continue
            params = {k: _optimized(p, cache, strict_ieee) for k, p in e.p.items()}
            params, result = _prune_ys(e, params, used[group_key(e)])
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


def _used_results(graph) -> dict:
    out: dict = {}
    for e in graph.eqns:
        if e.prim in REGION_PRIMS:
            out.setdefault(group_key(e), set()).add(e.p["result"])
    return out


def _prune_ys(e, params, used):
    """A scan whose stacked output k no equation reads stops computing it; results are renumbered."""
    result = e.p["result"]
    if e.prim != "scan":
        return params, result
    body, nc = params["body"], params["num_carry"]
    ny = len(body.graph.outputs) - nc
    keep = [k for k in range(ny) if nc + k in used]
    if len(keep) == ny:
        return params, result
    g = body.graph
    outs = g.outputs[:nc] + [g.outputs[nc + k] for k in keep]
    inputs = g.inputs[:len(g.inputs) - len(body.witness)]
    new_graph, witness = close_graph(inputs, outs)
    params = dict(params, body=Region(new_graph, witness))
    if result >= nc:
        result = nc + keep.index(result - nc)
    return params, result
