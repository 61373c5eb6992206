"""The SSA IR: a Graph of Equations over Values.

Every Value is produced by exactly one Equation, is a graph input, or is a constant. Equations are hash-consed
by the Builder as they are created (an equal equation returns the existing Value), which gives CSE for free.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from . import types as T
from .types import TensorType

_ids = itertools.count()


class Value:
    """One SSA value. ``eqn`` is the producing Equation (None for inputs and constants)."""

    __slots__ = ("type", "eqn", "const", "name", "id", "__weakref__")

    def __init__(self, type: TensorType, eqn=None, const=None, name=None):
        self.type = type
        self.eqn = eqn
        self.const = const
        self.name = name
        self.id = next(_ids)

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def shape(self):
        return self.type.shape

    @property
    def ndim(self):
        return len(self.type.shape)

    @property
    def is_const(self):
        return self.const is not None

    def __repr__(self):
        return f"Value(%{self.id}: {self.type})"


@dataclass(eq=False, slots=True)
class Equation:
    prim: str
    inputs: tuple
    params: tuple  # sorted (key, value) pairs, hashable
    out: Value = None
    # the Values whose library calls bind the data-dependent lengths this equation mentions: held so the weak
    # registry that toposort consults (types.UNBACKED_SOURCES) keeps them while this equation lives
    length_deps: tuple = ()

    @property
    def p(self) -> dict:
        return dict(self.params)


def freeze_params(params: dict) -> tuple:
    def fz(v):
        if isinstance(v, list):
            return tuple(fz(x) for x in v)
        if isinstance(v, np.dtype):
            return v
        return v
    return tuple(sorted((k, fz(v)) for k, v in params.items()))


def const_key(arr: np.ndarray):
    """A hashable key identifying a constant's contents (small ones by value, large ones by identity)."""
    if arr.size <= 64:
        return ("c", arr.dtype.str, arr.shape, arr.tobytes())
    return ("cid", id(arr))


@dataclass(eq=False)
class Graph:
    """A closed program: inputs, outputs, equations in topological order, shape constraints to check."""
    inputs: list
    outputs: list
    eqns: list = field(default_factory=list)
    constraints: list = field(default_factory=list)  # Constraints (ir/constraints.py) checked at run time
    symbols: dict = field(default_factory=dict)  # symbol name -> (input index, axis)

    @property
    def ops(self) -> list:
        return [e.prim for e in self.eqns]

    def __str__(self):
        from .printing import graph_text
        return graph_text(self)

    def __repr__(self):
        return self.__str__()

    def _repr_html_(self):
        from .printing import graph_html
        return graph_html(self)

    def constants(self):
        seen, out = set(), []
        for e in self.eqns:
            for v in e.inputs:
                if v.is_const and v.id not in seen:
                    seen.add(v.id)
                    out.append(v)
        for v in self.outputs:
            if v.is_const and v.id not in seen:
                seen.add(v.id)
                out.append(v)
        return out

    def users(self) -> dict:
        """Value id -> list of equations that read it."""
        out: dict = {}
        for e in self.eqns:
            for v in e.inputs:
                out.setdefault(v.id, []).append(e)
        return out


def toposort(outputs, follow_lengths=True, bound=()) -> list:
    """Equations needed for ``outputs``, in a topological order (dead code dropped): depth first, each equation
    after its inputs' in input order. ``follow_lengths=False``: the calls binding data-dependent lengths are not
    pulled in (a graph cut out of a bigger one reads those lengths from witness inputs instead); ``bound``: the
    symbols the graph's own inputs bind (a loop body's), whose outer binding calls are not pulled in either."""
    order, seen, opened = [], set(), set()
    stack = [v.eqn for v in reversed(outputs) if v.eqn is not None]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        if e in opened:  # its inputs are done (in a DAG nothing above e on the stack can lead back to e)
            seen.add(e)
            order.append(e)
            continue
        opened.add(e)
        stack.append(e)
        for x in reversed(e.inputs):
            if x.eqn is not None and x.eqn not in seen:
                stack.append(x.eqn)
        if follow_lengths and T.UNBACKED_SOURCES:
            stack.extend(d for d in length_sources(e, bound) if d not in seen)
    return order


def _dims_in(v):
    if isinstance(v, T.Dim):
        yield v
    elif isinstance(v, tuple):
        for x in v:
            yield from _dims_in(x)


def length_sources(e, bound=()) -> list:
    """The equations that bind the data-dependent lengths ``e`` mentions (in its parameters or its result's shape)
    without reading the arrays that carry them: ``e`` must run after them."""
    syms = set()
    for d in _dims_in(tuple(e.out.shape) + tuple(p for _, p in e.params)):
        syms |= T.unbacked_symbols(d)
    out = []
    for s in syms:
        if s in bound:
            continue
        src = T.UNBACKED_SOURCES.get(s)
        if src is not None and src.eqn is not e and src.eqn is not None:
            out.append(src.eqn)
    return out


def rebuild(graph: Graph, outputs=None, inputs=None) -> Graph:
    """A new Graph over the same inputs with the equations reachable from ``outputs`` (dead code elimination)."""
    outs = list(graph.outputs if outputs is None else outputs)
    return Graph(inputs=list(graph.inputs if inputs is None else inputs), outputs=outs,
                 eqns=toposort(outs, bound=graph.symbols if inputs is None else ()),
                 constraints=list(graph.constraints), symbols=dict(graph.symbols))
