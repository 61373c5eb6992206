"""Products hoisted out of scans: a carry that only sums a per-step product becomes one product after the loop,
and the part of a step's product that reads only the step's x becomes one product before it.

A reverse scan (backprop through time) accumulates a weight's gradient as a carry, ``acc + p_t.T @ q_t``: one
small matrix product and one read-modify-write of the whole weight gradient per step. The sum over t of
``p_t.T @ q_t`` is ``P.T @ Q`` with P and Q the p_t and q_t stacked over the steps and batch rows: the loop
writes p_t and q_t as stacked outputs instead, and one large product after the loop (which BLAS runs on every
core) replaces the carry. ``acc + q_t.sum(axis=0)`` (a bias gradient) becomes one sum over the stacked q_t. XLA
and JAX keep both inside the loop. The result is equal up to the order of the float additions.

The carry must be read by nothing but its own update (``acc`` is neither an output nor used elsewhere in the
body), and p_t, q_t must vary with the step (a product of loop-invariant values is left alone).

An RNN step multiplies ``concatenate([x_t, h]) @ w``: the x_t half does not depend on the carries, so
``x_t @ w[:k]`` for every step is one product ``xs @ w[:k]`` before the loop (as cuDNN's RNNs do), and the step
keeps ``h @ w[k:]`` plus that product's row t. The same multiply-adds, but half of them in one large product
that runs on every core, and the step's product reads half of w.
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..ir.graph import Graph, Value, rebuild
from ..ir.regions import Region, bind_all, close_graph, group_key, out_types
from ..ir.types import TensorType


def hoist_accumulations(graph: Graph, stats=None, **_) -> Graph:
    firsts: dict = {}
    for e in graph.eqns:
        if e.prim == "scan":
            firsts.setdefault(group_key(e), e)
    plans = {k: p for k, p in ((k, _plan(e)) for k, e in firsts.items()) if p}
    lifts = {k: m for k, m in ((k, _input_product(e)) for k, e in firsts.items()) if m and k not in plans}
    if stats is not None:
        stats["hoisted"] = sum(len(p) for p in plans.values()) + len(lifts)
    if not plans and not lifts:
        return graph
    env: dict = {}
    groups: dict = {}
    with ops.Builder():
        for e in graph.eqns:
            ins = [env.get(x.id, x) for x in e.inputs]
            key = group_key(e) if e.prim == "scan" else None
            if key in plans or key in lifts:
                if key not in groups:
                    groups[key] = (_rewrite(firsts[key], ins, plans[key]) if key in plans else
                                   _lift(firsts[key], ins, lifts[key]))
                env[e.out.id] = groups[key][e.p["result"]]
            elif any(a is not b for a, b in zip(ins, e.inputs)):
                env[e.out.id] = ops.bind(e.prim, *ins, **e.p)
    return rebuild(graph, outputs=[env.get(o.id, o) for o in graph.outputs])


# ------------------------------------------------------------------------------------------------ matching
def _plan(e) -> dict:
    """carry index -> ("matmul", p, q) or ("sum", q): the carries of scan ``e`` that can leave the loop."""
    p = e.p
    g, nk, nc = p["body"].graph, p["num_consts"], p["num_carry"]
    if p["body"].witness:
        return {}
    users = g.users()
    varying = _varying(g, nk)
    outputs = [o.id for o in g.outputs]
    found = {}
    for k in range(nc):
        acc, new = g.inputs[nk + k], g.outputs[k]
        if new.eqn is None or new.eqn.prim != "add" or outputs.count(new.id) != 1 or new.id in users:
            continue
        if acc.id in outputs or [u.out.id for u in users.get(acc.id, [])] != [new.id]:
            continue
        a, b = new.eqn.inputs
        term = b if a is acc else a if b is acc else None
        if term is None or term is acc or new.dtype != acc.dtype:
            continue
        match = _summed_term(_unbroadcast(term), varying)
        if match is not None:
            found[k] = match
    return found


def _varying(g, nk) -> set:
    """Ids of the body values that depend on a carry or an x (everything but loop invariants)."""
    out = {v.id for v in g.inputs[nk:]}
    for e in g.eqns:
        if any(x.id in out for x in e.inputs):
            out.add(e.out.id)
    return out


def _unbroadcast(v):
    while v.eqn is not None and v.eqn.prim == "broadcast_to" and v.eqn.inputs[0].ndim == v.ndim:
        v = v.eqn.inputs[0]
    return v


def _summed_term(v, varying):
    """("matmul", p, q) for ``p.T @ q`` (p, q 2-d, both varying), ("sum", q) for ``q.sum(axis=0)``."""
    e = v.eqn
    if e is None or not T.is_float(v.dtype):
        return None
    if e.prim == "matmul" and v.ndim == 2:
        pt, q = e.inputs
        if pt.eqn is None or pt.eqn.prim != "transpose" or pt.ndim != 2 or q.ndim != 2:
            return None
        p = pt.eqn.inputs[0]
        if p.id in varying and q.id in varying and p.dtype == q.dtype == v.dtype:
            return ("matmul", p, q)
    if e.prim == "sum" and e.p["axes"] == (0,) and e.inputs[0].ndim == 2 and e.inputs[0].id in varying:
        if e.inputs[0].dtype == v.dtype:
            return ("sum", e.inputs[0])
    if e.prim == "concatenate":  # the term padded with zeros (the gradient of a slice of the weight)
        data = [k for k, x in enumerate(e.inputs) if not _is_zeros(x)]
        inner = _summed_term(_unbroadcast(e.inputs[data[0]]), varying) if len(data) == 1 else None
        if inner is not None:
            return ("pad", e.p["axis"], tuple(x.shape for x in e.inputs), data[0], inner)
    return None


def _is_zeros(v) -> bool:
    c = v.eqn.inputs[0] if v.eqn is not None and v.eqn.prim == "broadcast_to" else v
    return c.is_const and not c.const.any()


def _stacked_values(m) -> list:
    """The body values whose stacked rows a planned term needs."""
    return _stacked_values(m[4]) if m[0] == "pad" else list(m[1:])


# ------------------------------------------------------------------------------------------------ rewriting
def _rewrite(e, ins, plan) -> list:
    """The scan's results (one Value per old result index), the planned carries computed after the loop."""
    p = e.p
    body, nk, nc = p["body"], p["num_consts"], p["num_carry"]
    g = body.graph
    keep = [k for k in range(nc) if k not in plan]
    stacked = []  # body values the loop writes as extra stacked outputs, each once
    for m in plan.values():
        for v in _stacked_values(m):
            if all(v is not s for s in stacked):
                stacked.append(v)
    ny = len(g.outputs) - nc
    inputs = list(g.inputs[:nk]) + [g.inputs[nk + k] for k in keep] + list(g.inputs[nk + nc:])
    outputs = [g.outputs[k] for k in keep] + list(g.outputs[nc:]) + stacked
    new_graph, witness = close_graph(inputs, outputs)
    new_ins = list(ins[:nk]) + [ins[nk + k] for k in keep] + list(ins[nk + nc:])
    res = bind_all("scan", new_ins, body=Region(new_graph, witness), num_consts=nk, num_carry=len(keep),
                   length=p["length"], reverse=p["reverse"])
    rows = {id(v): res[len(keep) + ny + j] for j, v in enumerate(stacked)}
    old_types = out_types("scan", p)
    out = [None] * (nc + ny)
    for j, k in enumerate(keep):
        out[k] = res[j]
    for j in range(ny):
        out[nc + j] = res[len(keep) + j]
    for k, m in plan.items():
        init = ins[nk + k]
        total = _after_loop(m, rows)
        out[k] = ops.ufunc("add", init, ops.broadcast_to(total, init.shape))
        assert out[k].type.dtype == old_types[k].dtype
    return out


def _after_loop(m, rows):
    """The sum over the steps of the planned term, from the stacked values (steps x batch rows x columns)."""
    def flat(v):  # (steps, b, n) -> (steps * b, n)
        s = rows[id(v)]
        return ops.reshape(s, (T.prod(s.shape[:2]),) + tuple(s.shape[2:]))
    if m[0] == "matmul":
        return ops.bind("matmul", ops.transpose(flat(m[1])), flat(m[2]))
    if m[0] == "pad":
        _, axis, shapes, k, inner = m
        total = _after_loop(inner, rows)
        zero = ops.constant(np.zeros((), total.dtype))
        pieces = [ops.broadcast_to(total, s) if j == k else ops.broadcast_to(zero, s) for j, s in enumerate(shapes)]
        return ops.bind("concatenate", *pieces, axis=axis)
    return ops.bind("sum", rows[id(m[1])], axes=(0, 1))


# ------------------------------------------------------------------------------------------------ input products
def _input_product(e):
    """(the product's value, x's input position, x first?) for ``concatenate([x_t, c]) @ w`` (or ``[c, x_t]``)
    in scan ``e``'s body, x_t a slice of an xs (2-d), w loop-invariant, c anything else; or None."""
    p = e.p
    g, nk, nc = p["body"].graph, p["num_consts"], p["num_carry"]
    if p["body"].witness:
        return None
    xs_pos = {v.id: j for j, v in enumerate(g.inputs[nk + nc:p["body"].num_inputs])}
    for eq in g.eqns:
        if eq.prim != "matmul" or eq.out.ndim != 2 or not T.is_float(eq.out.dtype):
            continue
        cat, w = eq.inputs
        if not any(w is v for v in g.inputs[:nk]) or cat.eqn is None or cat.eqn.prim != "concatenate" or len(
                cat.eqn.inputs) != 2:
            continue
        if cat.eqn.p["axis"] not in (1, -1) or w.dtype != cat.dtype:
            continue
        a, c = cat.eqn.inputs
        for x, first in ((a, True), (c, False)):
            if x.id in xs_pos and x.ndim == 2:
                return eq.out, xs_pos[x.id], first
    return None


def _lift(e, ins, match) -> list:
    """Scan ``e``'s results with ``x_t @ w[rows of x]`` computed for all steps before the loop (a new xs)."""
    product, j, first = match
    p = e.p
    body, nk, nc = p["body"], p["num_consts"], p["num_carry"]
    g = body.graph
    cat, w = product.eqn.inputs
    x, c = cat.eqn.inputs if first else cat.eqn.inputs[::-1]
    outer_xs, outer_w = ins[nk + nc + j], _outer(g, w, ins)
    kx = outer_xs.shape[2]
    rows = ops.bind("slice", outer_w, starts=(0 if first else outer_w.shape[0] - kx, 0), steps=(1, 1),
                    shape=(kx, outer_w.shape[1]))
    flat = ops.reshape(outer_xs, (T.prod(outer_xs.shape[:2]), kx))
    xw = ops.reshape(ops.bind("matmul", flat, rows), tuple(outer_xs.shape[:2]) + (outer_w.shape[1],))
    row = Value(TensorType(xw.dtype, xw.shape[1:]))
    with ops.Builder():
        kc = c.shape[1]
        w_rest = ops.bind("slice", w, starts=(x.shape[1] if first else 0, 0), steps=(1, 1),
                          shape=(kc, w.shape[1]))
        new = ops.ufunc("add", row, ops.bind("matmul", c, w_rest))
        if new.shape != product.shape:
            new = ops.broadcast_to(new, product.shape)
        outs = _replace(g, {product.id: new})
        inputs = list(g.inputs[:body.num_inputs]) + [row]
        new_graph, witness = close_graph(inputs, outs)
    return bind_all("scan", list(ins) + [xw], body=Region(new_graph, witness), num_consts=nk, num_carry=nc,
                    length=p["length"], reverse=p["reverse"])


def _outer(g, w, ins):
    """The outer value of the body's loop-invariant ``w`` (a body input: the matching scan input)."""
    pos = next(i for i, v in enumerate(g.inputs) if v is w)
    return ins[pos]


def _replace(g, env) -> list:
    """``g``'s outputs with values replaced by ``env`` (id -> Value), the equations above them rebound."""
    env = dict(env)
    for eq in g.eqns:
        if eq.out.id in env:
            continue
        new_ins = [env.get(v.id, v) for v in eq.inputs]
        if any(a is not b for a, b in zip(new_ins, eq.inputs)):
            env[eq.out.id] = ops.bind(eq.prim, *new_ins, **eq.p)
    return [env.get(o.id, o) for o in g.outputs]
