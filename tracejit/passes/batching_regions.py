"""Batching (vmap) rules of the region primitives: the bodies are batched, the loop stays one loop.

Every carry of a batched loop is batched (a per-example carry would have to stay per-example through every step,
which a body reading a batched value breaks). Each sibling's rule builds the same batched loop; hash-consing
makes the siblings share it. A batched ``while_loop`` runs while any example's predicate holds and leaves finished
examples' carries as they are; a ``cond`` on a batched index computes every branch and selects, as ``jax.vmap``.
"""
from __future__ import annotations

from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value
from ..ir.regions import Region, close_graph, inline, out_types


def _batch_len(args, dims):
    for a, d in zip(args, dims):
        if d is not None:
            return a.shape[d]
    raise AssertionError("no batched input")


def _front(v, d, n):
    """``v`` with its batch axis first (broadcast when it has none)."""
    from .batching import move
    if d is None:
        return ops.broadcast_to(ops.reshape(v, (1,) + tuple(v.shape)), (n,) + tuple(v.shape))
    return move(v, d, 0)


def batched_call(region: Region, args, dims, n) -> list:
    """``region``'s outputs on ``args`` (batched at ``dims``, 0 or None), each batched at axis 0."""
    from .batching import batch
    g = region.graph
    holders = [Value(T.TensorType(a.dtype, tuple(a.shape[1:]))) if d is not None else a for a, d in zip(args, dims)]
    outs = inline(g, holders + list(g.inputs[region.num_inputs:]))
    res = batch(outs, {h.id: (a, 0) for h, a, d in zip(holders, args, dims) if d is not None})
    return [_front(v, d, n) for v, d in res]


def _region_of(inputs, outputs) -> Region:
    graph, witness = close_graph(inputs, outputs)
    return Region(graph, witness)


def _input(v, batched, n):
    return Value(T.TensorType(v.dtype, ((n,) if batched else ()) + tuple(v.shape)))


def _scan(eqn, args, dims):
    from .batching import move
    p = eqn.p
    body, nk, nc = p["body"], p["num_consts"], p["num_carry"]
    n = _batch_len(args, dims)
    g = body.graph
    ins, in_dims, outer = [], [], []
    for k, (a, d, v) in enumerate(zip(args, dims, g.inputs[:body.num_inputs])):
        batched = d is not None or nk <= k < nk + nc
        ins.append(_input(v, batched, n))
        in_dims.append(0 if batched else None)
        if nk <= k < nk + nc:
            outer.append(_front(a, d, n))
        elif d is None:
            outer.append(a)
        else:
            outer.append(move(a, d, 0 if k < nk else 1))  # xs: the batch axis after the scanned one
    with ops.Builder():
        outs = batched_call(body, ins, in_dims, n)
        region = _region_of(ins, outs)
    out = ops.bind("scan", *outer, **dict(p, body=region))
    return out, (0 if p["result"] < nc else 1)


def _while(eqn, args, dims):
    p = eqn.p
    cond, body, ncc, nbc = p["cond"], p["body"], p["cond_nconsts"], p["body_nconsts"]
    n = _batch_len(args, dims)
    cdims = [0 if d is not None else None for d in dims[:ncc]]
    bdims = [0 if d is not None else None for d in dims[ncc:ncc + nbc]]
    cc = [_input(a, d is not None, n) for a, d in zip(cond.graph.inputs, cdims)]
    carries = [_input(v, True, n) for v in body.graph.outputs]
    with ops.Builder():
        pred = batched_call(cond, cc + carries, cdims + [0] * len(carries), n)[0]
        cond_region = _region_of(cc + carries, [ops.reduce("any", pred)])
    cc2 = [_input(a, d is not None, n) for a, d in zip(cond.graph.inputs, cdims)]
    bc = [_input(a, d is not None, n) for a, d in zip(body.graph.inputs, bdims)]
    carries2 = [_input(v, True, n) for v in body.graph.outputs]
    with ops.Builder():
        go = batched_call(cond, cc2 + carries2, cdims + [0] * len(carries2), n)[0]
        new = batched_call(body, bc + carries2, bdims + [0] * len(carries2), n)
        kept = [ops.ufunc("where", ops.reshape(go, (n,) + (1,) * (c.ndim - 1)), x, c) for x, c in zip(new, carries2)]
        body_region = _region_of(cc2 + bc + carries2, kept)
    cconsts = [ops_front(a, d) for a, d in zip(args[:ncc], dims[:ncc])]
    bconsts = [ops_front(a, d) for a, d in zip(args[ncc:ncc + nbc], dims[ncc:ncc + nbc])]
    init = [_front(a, d, n) for a, d in zip(args[ncc + nbc:], dims[ncc + nbc:])]
    out = ops.bind("while_loop", *(cconsts + cconsts + bconsts + init), cond=cond_region, body=body_region,
                   cond_nconsts=ncc, body_nconsts=ncc + nbc, result=p["result"])
    return out, 0


def ops_front(a, d):
    from .batching import move
    return a if d is None else move(a, d, 0)


def _cond(eqn, args, dims):
    p = eqn.p
    branches, counts = p["branches"], p["const_counts"]
    n = _batch_len(args, dims)
    rest = [ops_front(a, d) for a, d in zip(args[1:], dims[1:])]
    rdims = [0 if d is not None else None for d in dims[1:]]
    nconst = sum(counts)
    consts, operands = rest[:nconst], rest[nconst:]
    cdims, odims = rdims[:nconst], rdims[nconst:]
    if dims[0] is not None:  # a batched index: every branch, then a select per example
        index = ops_front(args[0], dims[0])
        index = ops.ufunc("minimum", ops.ufunc("maximum", index, 0), len(branches) - 1)
        start, result = 0, None
        for k, (b, c) in enumerate(zip(branches, counts)):
            outs = batched_call(b, consts[start:start + c] + operands, cdims[start:start + c] + odims, n)
            v = outs[p["result"]]
            pick = ops.reshape(ops.ufunc("equal", index, k), (n,) + (1,) * (v.ndim - 1))
            result = v if result is None else ops.ufunc("where", pick, v, result)
            start += c
        return result, 0
    new, start = [], 0
    for b, c in zip(branches, counts):
        ins = [_input(a, d is not None, n) for a, d in zip(b.graph.inputs[:b.num_inputs],
                                                           cdims[start:start + c] + odims)]
        with ops.Builder():
            outs = batched_call(b, ins, cdims[start:start + c] + odims, n)
            new.append(_region_of(ins, outs))
        start += c
    out = ops.bind("cond", args[0], *rest, branches=tuple(new), const_counts=counts, result=p["result"])
    return out, 0


RULES = {"scan": _scan, "while_loop": _while, "cond": _cond}
__all__ = ["RULES", "batched_call", "out_types"]
