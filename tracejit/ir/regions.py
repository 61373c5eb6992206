"""Regions: loop and branch bodies held by an equation's params (``scan``, ``while_loop``, ``cond``).

A region is a closed Graph: every value the body reads from outside is one of its inputs (the tracer
closure-converts, as JAX does), so a region can be optimized, compiled and differentiated on its own.

An equation has one output, so a loop with k results is k *sibling* equations: the same primitive, inputs and
params except ``result`` (which output this one is). Backends and the interpreter run a group of siblings once
(``group_key``); dead code elimination drops the siblings nobody reads.

Conventions (inputs of the equation -> inputs of the bodies):
  scan        [consts, init carries, xs]; body (consts, carries, x slices) -> (carries, ys); ys stacked on axis 0
  while_loop  [cond consts, body consts, init]; cond (cond consts, carries) -> bool; body (body consts, carries)
              -> carries
  cond        [index, consts of branch 0, consts of branch 1, ..., operands]; branch k (its consts, operands)
              -> outputs; ``index`` is clamped into range, as lax.switch does
"""
from __future__ import annotations

import hashlib

import numpy as np

from . import types as T
from .graph import Graph, Value, toposort
from .types import Dim, TensorType

REGION_PRIMS = ("scan", "while_loop", "cond")


class Region:
    """A closed body graph, compared and hashed by structure (so equal bodies hash-cons and cache alike).
    ``witness``: symbols of lengths the body uses that no input axis spells out; the body's last inputs are one
    bool vector per such symbol, whose length is that symbol (the executor passes a stand-in of that length)."""

    __slots__ = ("graph", "witness", "key", "_hash")

    def __init__(self, graph: Graph, witness=()):
        self.graph = graph
        self.witness = tuple(witness)
        self.key = fingerprint(graph)
        self._hash = hash(self.key)

    def __eq__(self, other):
        return isinstance(other, Region) and other.key == self.key

    def __hash__(self):
        return self._hash

    @property
    def num_inputs(self) -> int:
        """Inputs the equation supplies (the witnesses are added by whoever runs the body)."""
        return len(self.graph.inputs) - len(self.witness)

    def __str__(self):
        from .printing import graph_text
        return "\n" + "\n".join("        " + line for line in graph_text(self.graph).splitlines())

    __repr__ = __str__


def fingerprint(graph: Graph) -> str:
    """Text of the body plus what the text abbreviates (constants' bytes): the structural identity."""
    from .printing import graph_text
    h = hashlib.sha256(graph_text(graph).encode())
    for v in graph.constants():
        c = v.const
        h.update(f"{c.dtype.str}{c.shape}{v.type.weak}".encode())
        h.update(c.tobytes())
    h.update(repr(sorted(graph.symbols.items())).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------ closing bodies
def _symbols_of(d, out: set):
    if isinstance(d, Dim):
        for mono, _ in d.terms:
            for a in mono:
                if isinstance(a, str):
                    out.add(a)
                else:
                    for x in a[1:]:
                        _symbols_of(x, out)
    elif isinstance(d, tuple):
        for x in d:
            _symbols_of(x, out)




def close_graph(inputs, outputs) -> tuple[Graph, tuple]:
    """(Graph over ``inputs`` computing ``outputs``, witness symbols): the symbols of every length the graph uses
    are read off an input axis, or off an added witness input."""
    inputs = list(inputs)
    eqns = toposort(outputs, follow_lengths=False)  # lengths bound outside come in through witness inputs
    symbols: dict = {}
    for i, v in enumerate(inputs):
        for ax, d in enumerate(v.shape):
            s = T.symbol_name(d)
            if s is not None and s not in symbols:
                symbols[s] = (i, ax)
    used: set = set()
    for v in list(inputs) + list(outputs) + [e.out for e in eqns]:
        _symbols_of(v.shape, used)
    for e in eqns:
        for _, p in e.params:
            _symbols_of(p, used)
    witness = tuple(sorted(used - set(symbols)))
    for s in witness:
        symbols[s] = (len(inputs), 0)
        inputs.append(Value(TensorType(T.BOOL, (Dim.symbol(s),)), name=f"len_{s}"))
    return Graph(inputs=inputs, outputs=list(outputs), eqns=eqns, constraints=implied_constraints(eqns),
                 symbols=symbols), witness


def implied_constraints(eqns) -> list:
    """The length equalities the body's own broadcasts imply (``(32, 256) + (k1, n)`` needs k1 == 32): kept with
    the closed body, so its run checks them and the planner may fuse work over lengths known equal."""
    from .primitives import PRIMS
    out: list = []
    for e in eqns:
        if len(e.inputs) > 1 and PRIMS[e.prim].kind == "elementwise":
            found: list = []
            try:
                T.broadcast_shapes(*[x.shape for x in e.inputs], constraints=found)
            except Exception:  # noqa: BLE001 - the equation was built, so its shapes broadcast; nothing to add
                continue
            out.extend(c for c in found if c not in out)
    return out


def extract(eqns, inputs, outputs) -> tuple[Graph, tuple]:
    """``eqns`` (in topological order) as a closed graph over fresh copies of ``inputs``: (Graph, witness)."""
    from . import ops
    with ops.Builder():
        fresh = [Value(v.type, name=v.name) for v in inputs]
        return close_graph(fresh, replay(eqns, dict(zip((v.id for v in inputs), fresh)), outputs))


def replay(eqns, env, outputs) -> list:
    """Re-bind ``eqns`` (in topological order) in the current Builder, each input read from ``env`` (value id ->
    Value; any other input as it is): the Values standing for ``outputs``."""
    from . import ops
    for e in eqns:
        env[e.out.id] = ops.bind(e.prim, *[env.get(x.id, x) for x in e.inputs], **e.p)
    return [env.get(o.id, o) for o in outputs]


def captured_values(eqns, outputs, inside_ids) -> list:
    """The values of an enclosing trace that ``eqns`` or ``outputs`` read: neither made by ``eqns`` nor in
    ``inside_ids`` (a body's or a call's own inputs), nor constants; in order of first use."""
    inside = {e.out.id for e in eqns} | set(inside_ids)
    found: dict = {}
    for x in [x for e in eqns for x in e.inputs] + list(outputs):
        if x.id not in inside and not x.is_const:
            found.setdefault(x.id, x)
    return list(found.values())


def equations_since(outs, start) -> list:
    """Equations made since ``start`` that ``outs`` need, in topological order (stops at older values)."""
    order, seen = [], set()
    stack = [(v.eqn, False) for v in reversed(outs) if v.eqn is not None and v.id >= start]
    while stack:
        e, done = stack.pop()
        if done:
            order.append(e)
            continue
        if id(e) in seen:
            continue
        seen.add(id(e))
        stack.append((e, True))
        for x in reversed(e.inputs):
            if x.eqn is not None and x.id >= start and id(x.eqn) not in seen:
                stack.append((x.eqn, False))
    return order


def witness_arrays(region: Region, env: dict) -> list:
    """Stand-ins for a body's witness inputs, given the symbol values ``env``."""
    return [np.zeros(env[s], np.bool_) for s in region.witness]


def inline(graph: Graph, args) -> list:
    """Re-bind ``graph``'s equations on ``args`` (Values, one per input) in the current Builder; its outputs."""
    return replay(graph.eqns, {v.id: a for v, a in zip(graph.inputs, args)}, graph.outputs)


# ------------------------------------------------------------------------------------------------ types
def out_types(prim: str, params: dict) -> list:
    """The TensorTypes of every result of a region equation."""
    if prim == "scan":
        g, nc = params["body"].graph, params["num_carry"]
        outs = g.outputs
        return [o.type for o in outs[:nc]] + [TensorType(o.dtype, (params["length"],) + o.shape)
                                               for o in outs[nc:]]
    if prim == "while_loop":
        g = params["body"].graph
        return [o.type for o in g.outputs]
    if prim == "cond":
        return [o.type for o in params["branches"][0].graph.outputs]
    raise NotImplementedError(prim)


def type_of(prim: str, params: dict) -> TensorType:
    return out_types(prim, params)[params["result"]]


def group_key(eqn):
    """Equations with equal keys are results of one region run."""
    return (eqn.prim, tuple(v.id for v in eqn.inputs), tuple((k, p) for k, p in eqn.params if k != "result"))


def bind_all(prim: str, inputs, **params) -> list:
    """Every result of a region equation, as sibling Values."""
    from . import ops
    n = len(out_types(prim, dict(params, result=0)))
    return [ops.bind(prim, *inputs, result=k, **params) for k in range(n)]


# ------------------------------------------------------------------------------------------------ reference
def run_group(prim: str, params: dict, args, run_body, env=None) -> list:
    """Every result of one region run. ``run_body(region, arrays) -> list of arrays`` runs a body (the
    interpreter evaluates it; a backend calls its compiled code); ``params`` have their lengths resolved."""
    if prim == "scan":
        return _run_scan(params, args, run_body, env or {})
    if prim == "while_loop":
        cond, body = params["cond"], params["body"]
        nc, nb = params["cond_nconsts"], params["body_nconsts"]
        cconsts, bconsts, carry = args[:nc], args[nc:nc + nb], list(args[nc + nb:])
        while bool(run_body(cond, cconsts + carry)[0]):
            carry = run_body(body, bconsts + carry)
        return carry
    if prim == "cond":
        branches, counts = params["branches"], params["const_counts"]
        k = int(np.clip(int(args[0]), 0, len(branches) - 1))
        start = 1 + sum(counts[:k])
        operands = list(args[1 + sum(counts):])
        return run_body(branches[k], list(args[start:start + counts[k]]) + operands)
    raise NotImplementedError(prim)


def _run_scan(params, args, run_body, env):
    """The stacked outputs are allocated once and each step's y is written into its row."""
    body, nk, nc, length = params["body"], params["num_consts"], params["num_carry"], params["length"]
    consts, carry, xs = list(args[:nk]), list(args[nk:nk + nc]), list(args[nk + nc:])
    ys = [np.empty((length,) + tuple(T.eval_dim(d, env) for d in o.shape), o.dtype)
          for o in body.graph.outputs[nc:]]
    order = range(length - 1, -1, -1) if params["reverse"] else range(length)
    for i in order:
        out = run_body(body, consts + carry + [x[i, ...] for x in xs])  # x[i, ...]: an array, also 0-d
        carry = list(out[:nc])
        for buf, y in zip(ys, out[nc:]):
            buf[i] = y
    return carry + ys


def evaluate_body(region: Region, arrays, env) -> list:
    """A body run by the numpy reference interpreter (its witnesses from the outer symbol values ``env``)."""
    from .interpret import evaluate
    return evaluate(region.graph, list(arrays) + witness_arrays(region, env), check=False)
