"""Reverse-mode rules of the region primitives (``scan``, ``cond``; ``while_loop`` has none, as in JAX).

A loop's results are sibling equations; like a custom rule's marks, the rule runs once per loop, at its first
sibling in the topological order, when the cotangents of all its results are known.

scan: the forward loop is rerun with its input carries stacked as extra outputs (the residuals), then a reverse
scan runs the body's VJP step by step: its carries are the carry cotangent and the accumulated cotangents of the
body's constants, its xs the stored carries, the xs and the ys' cotangents, its ys the xs' cotangents.
cond: a cond over backward branches, each recomputing its forward branch and differentiating it.
"""
from __future__ import annotations

from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value, toposort
from ..ir.regions import REGION_PRIMS, Region, bind_all, close_graph, group_key, inline


class RegionCalls:
    def __init__(self, eqns):
        self.first: dict = {}
        self.pending: dict = {}
        for e in eqns:
            if e.prim in REGION_PRIMS:
                self.first.setdefault(group_key(e), e)

    def visit(self, e, g, active):
        from .autodiff import full
        key = group_key(e)
        got = self.pending.setdefault(key, {})
        if g is not None and e.out.id in active:
            got[e.p["result"]] = full(g, e.out.shape)
        if self.first[key] is not e or not got:
            return []
        need = [v.id in active and T.is_float(v.dtype) for v in e.inputs]
        if not any(need):
            return []
        cts = RULES[e.prim](e, got, need)
        return [(v, c) for v, c, nd in zip(e.inputs, cts, need) if nd and c is not None]


def _float(v) -> bool:
    return T.is_float(v.dtype)


def _ct_or_zeros(ct, t):
    from .autodiff import _zeros, full
    if ct is None:
        return _zeros(t.dtype, t.shape)
    ct = full(ct, t.shape)
    return ct if ct.dtype == t.dtype else ops.convert(ct, t.dtype)


def _scan_vjp(e, got, need):
    p = e.p
    body, nk, nc, n = p["body"], p["num_consts"], p["num_carry"], p["length"]
    g = body.graph
    nin = body.num_inputs
    consts, init, xs = list(e.inputs[:nk]), list(e.inputs[nk:nk + nc]), list(e.inputs[nk + nc:])
    out_types = [o.type for o in g.outputs]
    results = [v for v in _results(e)]
    ny = len(out_types) - nc
    dconst = [k for k in range(nk) if need[k]]
    dcarry = [k for k in range(nc) if _float(init[k])]
    dx = [k for k in range(len(xs)) if need[nk + nc + k]]
    dy = [k for k in range(ny) if _float(results[nc + k])]
    bwd_region, stored = _scan_bwd_body(g, nin, nk, nc, dconst, dcarry, dx, dy, body.witness)
    # forward again, the input carry of every step stacked, and the stored products (residuals)
    res_graph, res_wit = close_graph(g.inputs[:nin], list(g.outputs) + list(g.inputs[nk:nk + nc]) + stored)
    fwd = bind_all("scan", e.inputs, body=Region(res_graph, res_wit), num_consts=nk, num_carry=nc, length=n,
                   reverse=p["reverse"])
    stacked_carries = fwd[nc + ny:nc + ny + nc]
    stacked_products = fwd[nc + ny + nc:]
    acc0 = [_ct_or_zeros(None, consts[k].type) for k in dconst]
    ct_final = [_ct_or_zeros(got.get(k), out_types[k]) for k in dcarry]
    ct_ys = [_ct_or_zeros(got.get(nc + k), results[nc + k].type) for k in dy]
    outs = bind_all("scan", consts + acc0 + ct_final + stacked_carries + xs + ct_ys + stacked_products,
                    body=bwd_region, num_consts=nk, num_carry=len(dconst) + len(dcarry), length=n, reverse=not p["reverse"])
    res = [None] * len(e.inputs)
    for j, k in enumerate(dconst):
        res[k] = outs[j]
    for j, k in enumerate(dcarry):
        res[nk + k] = outs[len(dconst) + j]
    for j, k in enumerate(dx):
        res[nk + nc + k] = outs[len(dconst) + len(dcarry) + j]
    return res


def _results(e):
    """Value types of every result of ``e``'s loop (one per sibling), as stand-in Values."""
    from ..ir.regions import out_types
    return [Value(t) for t in out_types(e.prim, e.p)]


def _scan_bwd_body(g, nin, nk, nc, dconst, dcarry, dx, dy, witness):
    """The reverse step: (consts, acc, ct_c, c_i, x_i, ct_y_i, stored_i) -> (acc + dconsts, dcarry, dx_i), and
    the body's values it reads from the forward loop (``stored``: one stacked residual each) instead of
    recomputing them."""
    from .autodiff import backward
    with ops.Builder():
        fresh = [Value(v.type) for v in g.inputs[:nin]]
        consts, carries, xs = fresh[:nk], fresh[nk:nk + nc], fresh[nk + nc:]
        acc = [Value(consts[k].type) for k in dconst]
        ct_c = [Value(g.outputs[k].type) for k in dcarry]
        ct_y = [Value(g.outputs[nc + k].type) for k in dy]
        products = _products_to_store(g, nk)
        inlined = inline(_Outputs(g, list(g.outputs) + products), fresh + _witness_of(g, witness))
        outs, recomputed = inlined[:len(g.outputs)], inlined[len(g.outputs):]
        wrt = [consts[k] for k in dconst] + [carries[k] for k in dcarry] + [xs[k] for k in dx]
        grads = backward([outs[k] for k in dcarry] + [outs[nc + k] for k in dy], ct_c + ct_y, wrt)
        nd, ncar = len(dconst), len(dcarry)
        new_acc = [ops.ufunc("add", a, gc) for a, gc in zip(acc, grads[:nd])]
        results = new_acc + grads[nd:nd + ncar] + grads[nd + ncar:]
        results, stored, read = _read_stored(results, products, recomputed)
        ins = consts + acc + ct_c + carries + xs + ct_y + read
        graph, wit = close_graph(ins, results)
    return Region(graph, wit), stored


class _Outputs:
    """A body graph seen with other outputs (for ``inline``)."""

    def __init__(self, g, outputs):
        self.inputs, self.eqns, self.outputs = g.inputs, g.eqns, outputs


def _products_to_store(g, nk) -> list:
    """The body's matrix products that read a carry or an x: the reverse step reads them from the forward loop
    (a stacked output) instead of multiplying again, as JAX's partial evaluation stores its residuals. Only the
    ones the reverse step reads are kept (``_read_stored``): a ``checkpoint``ed function's rule recomputes its own
    values, so its products are neither read nor stored."""
    varying = {v.id for v in g.inputs[nk:]}
    out = []
    for e in g.eqns:
        if any(x.id in varying for x in e.inputs):
            varying.add(e.out.id)
            if e.prim == "matmul" and _float(e.out):
                out.append(e.out)
    return out


def _read_stored(results, products, recomputed):
    """``results`` with each recomputed product replaced by a fresh input (its stored row), keeping only the
    products the reverse step still reads: (results, the forward body's values to store, their fresh inputs)."""
    needed = {v.id for e in toposort(results, follow_lengths=False) for v in e.inputs} | {r.id for r in results}
    keep = [k for k, r in enumerate(recomputed) if r.id in needed and r.eqn is not None]
    if not keep:
        return results, [], []
    read = [Value(recomputed[k].type) for k in keep]
    env = {recomputed[k].id: r for k, r in zip(keep, read)}
    for e in toposort(results, follow_lengths=False):
        ins = [env.get(x.id, x) for x in e.inputs]
        if e.out.id not in env and any(a is not b for a, b in zip(ins, e.inputs)):
            env[e.out.id] = ops.bind(e.prim, *ins, **e.p)
    return [env.get(r.id, r) for r in results], [products[k] for k in keep], read


def _witness_of(g, witness):
    """The body's own witness inputs (inlined as they are: close_graph gives the new body its own)."""
    return list(g.inputs[len(g.inputs) - len(witness):]) if witness else []


def _cond_vjp(e, got, need):
    p = e.p
    branches, counts = p["branches"], p["const_counts"]
    nconst = sum(counts)
    consts, operands = list(e.inputs[1:1 + nconst]), list(e.inputs[1 + nconst:])
    out_types = [o.type for o in branches[0].graph.outputs]
    douts = [k for k, t in enumerate(out_types) if T.is_float(t.dtype)]
    dins = [k for k in range(nconst + len(operands)) if need[1 + k]]
    cts = [_ct_or_zeros(got.get(k), out_types[k]) for k in douts]
    args = consts + operands + cts
    bwd = []
    start = 0
    for b, cnt in zip(branches, counts):
        bwd.append(_cond_bwd_branch(b, start, cnt, consts, operands, out_types, douts, dins))
        start += cnt
    outs = bind_all("cond", [e.inputs[0]] + args, branches=tuple(bwd), const_counts=(0,) * len(bwd))
    res = [None] * len(e.inputs)
    for j, k in enumerate(dins):
        res[1 + k] = outs[j]
    return res


def _cond_bwd_branch(region, start, count, consts, operands, out_types, douts, dins):
    from .autodiff import _zeros, backward
    g = region.graph
    with ops.Builder():
        cs = [Value(v.type) for v in consts]
        os_ = [Value(v.type) for v in operands]
        ct = [Value(out_types[k]) for k in douts]
        outs = inline(g, cs[start:start + count] + os_ + _witness_of(g, region.witness))
        all_in = cs + os_
        mine = [k for k in dins if start <= k < start + count or k >= len(cs)]
        grads = dict(zip(mine, backward([outs[k] for k in douts], ct, [all_in[k] for k in mine])))
        res = [grads[k] if k in grads else _zeros(all_in[k].dtype, all_in[k].shape) for k in dins]
        graph, wit = close_graph(cs + os_ + ct, res)
    return Region(graph, wit)


def _while_vjp(e, got, need):
    raise NotImplementedError("reverse-mode differentiation of while_loop is not supported: its trip count is only "
                              "known at run time. Use fori_loop with static (Python int) bounds, or scan, which "
                              "store what the backward pass needs (fori_loop with traced bounds is a while_loop)")


RULES = {"scan": _scan_vjp, "cond": _cond_vjp, "while_loop": _while_vjp}
