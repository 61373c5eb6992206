"""The default pass order, run to a fixed point, and a log of what each pass did (``Lowered.explain``).

``passes=[...]`` (``jit``, ``make_ir``) runs a chosen subset, by pass name or stage name
(``canonicalize`` = simplify, fold, cse; ``stabilize``; ``cleanup`` = dce), in the order given.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph, rebuild
from .cse import cse
from .regions import optimize_regions
from .fold import fold
from .loop_hoist import hoist_accumulations
from .narrow import narrow
from .simplify import simplify
from .stabilize import stabilize


def dce(graph: Graph, **_) -> Graph:
    """Drop equations no output needs."""
    return rebuild(graph)


# name -> pass function; each takes (graph, strict_ieee=..., stats=dict, memo=dict) and returns a new Graph
PASSES: dict = {"simplify": simplify, "fold": fold, "cse": cse, "stabilize": stabilize, "dce": dce,
                "regions": optimize_regions, "hoist": hoist_accumulations,
                "narrow": narrow}
STAGES: dict = {"canonicalize": ["simplify", "fold", "cse"], "cleanup": ["dce"]}
DEFAULT_ORDER = ["simplify", "fold", "cse", "stabilize", "simplify", "narrow", "cse", "dce", "regions", "hoist"]
# every rewrite pass rebuilds through the hash-cons table and drops dead code, so its output needs no cse or dce
IMPLIED_CLEAN = {"regions": {"dce"}, "hoist": {"cse", "dce"}, "narrow": {"cse", "dce"}, "simplify": {"cse", "dce"}, "stabilize": {"cse", "dce"}, "fold": {"cse", "dce"}, "cse": {"dce"}}
MAX_ROUNDS = 6  # the order is repeated until a round changes nothing (normally 1-2 rounds)


@dataclass
class PassRecord:
    name: str
    before: int
    after: int
    graph: Graph
    changes: dict  # rule name -> times it fired


def expand(order) -> list:
    """Pass names in order, each stage name replaced by its passes (an unknown name is a ValueError)."""
    out = []
    for name in order:
        if name in PASSES:
            out.append(name)
        elif name in STAGES:
            out.extend(STAGES[name])
        else:
            raise ValueError(f"unknown pass {name!r}; available passes: {', '.join(PASSES)}; "
                             f"stages: {', '.join(STAGES)}")
    return out


def optimize_with_log(graph: Graph, strict_ieee=False, passes=None):
    """(optimized graph, [PassRecord]): the order is rerun until no pass has anything left to change; a pass
    that already ran clean on the current graph is skipped."""
    order = expand(DEFAULT_ORDER if passes is None else list(passes))
    log = []
    clean: set = set()  # passes that have seen the current graph and had nothing to change
    memo: dict = {}  # what the rewrite passes remember between runs (values their rules already declined)
    for _ in range(MAX_ROUNDS):
        for name in order:
            if name in clean:
                continue
            before = len(graph.eqns)
            stats: dict = {}
            graph = PASSES[name](graph, strict_ieee=strict_ieee, stats=stats, memo=memo)
            log.append(PassRecord(name, before, len(graph.eqns), graph, stats))
            if any(stats.values()):
                clean = {name}  # each pass runs to its own fixed point, so it is clean on its own output
            else:
                clean.add(name)
            clean |= IMPLIED_CLEAN.get(name, set())
        if clean.issuperset(order):
            break
    return graph, log


def optimize(graph: Graph, strict_ieee=False, passes=None) -> Graph:
    return optimize_with_log(graph, strict_ieee, passes)[0]


def strip_identity_marks(graph: Graph) -> Graph:
    """The graph with every identity mark (a checkpoint's barrier, a rule's mark) replaced by its first input,
    for a backend that schedules on its own and so gains nothing from them."""
    from ..ir import ops
    from ..ir.primitives import IDENTITY_MARKS
    if not any(e.prim in IDENTITY_MARKS for e in graph.eqns):
        return graph
    memo: dict = {}
    with ops.Builder():
        for e in graph.eqns:
            if e.prim in IDENTITY_MARKS:
                memo[e.out.id] = memo.get(e.inputs[0].id, e.inputs[0])
            elif any(v.id in memo for v in e.inputs):
                memo[e.out.id] = ops.bind(e.prim, *[memo.get(v.id, v) for v in e.inputs], **e.p)
    return rebuild(graph, outputs=[memo.get(o.id, o) for o in graph.outputs])
