"""The default pass order, and a log of what each pass did (for ``Lowered.explain`` and notebooks)."""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import Graph, rebuild


def dce(graph: Graph, **_) -> Graph:
    """Drop equations no output needs."""
    return rebuild(graph)


# name -> pass function; each takes (graph, strict_ieee=...) and returns a new Graph
PASSES: dict = {"dce": dce}
DEFAULT_ORDER = ["dce"]


@dataclass
class PassRecord:
    name: str
    before: int
    after: int
    graph: Graph
    changes: dict


def optimize_with_log(graph: Graph, strict_ieee=False, passes=None):
    order = DEFAULT_ORDER if passes is None else list(passes)
    log = []
    for name in order:
        if name not in PASSES:
            raise ValueError(f"unknown pass {name!r}; available passes: {', '.join(PASSES)}")
        before = len(graph.eqns)
        stats: dict = {}
        graph = PASSES[name](graph, strict_ieee=strict_ieee, stats=stats)
        log.append(PassRecord(name, before, len(graph.eqns), graph, stats))
    return graph, log


def optimize(graph: Graph, strict_ieee=False, passes=None) -> Graph:
    return optimize_with_log(graph, strict_ieee, passes)[0]
