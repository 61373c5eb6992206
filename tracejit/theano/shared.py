"""Theano's shared variables: symbolic variables with a value that lives between calls.

A shared variable is an implicit input of every ``function`` and every ``jit``-compiled function that reads it:
its current array is passed at each call, never baked into the code, so ``set_value`` needs no recompile.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import Graph, Value
from ..ir.types import Dim, TensorType
from ..trace.symbolic import Variable, compute_dtype, fresh_symbol, roots
from ..trace.tracer import Tracer
from .arguments import convert_array

_SHARED: dict = {}  # Value id -> SharedVariable; strong, since expressions hold only the Value


class SharedVariable(Variable):
    """A symbolic variable with a value that lives between calls: an implicit input of every function using it
    (read at each call, never baked in), and a target of ``updates``."""

    __slots__ = ("_storage", "default_update")

    def __init__(self, value: Value, storage: np.ndarray):
        super().__init__(value)
        self._storage = storage
        self.default_update = None  # an expression every function reading this variable writes back (Theano's)

    def get_value(self, borrow=False, return_internal_type=False):
        """A copy of the current value (``borrow=True``: the internal array itself)."""
        return self._storage if borrow else self._storage.copy()

    def set_value(self, value, borrow=False):
        """Replace the value; same dtype (lossless casts allowed) and rank, any lengths."""
        arr = convert_array(value, self.dtype, self.dtype, self.ndim, self.label(), downcast=False)
        for ax, d in enumerate(self._tj_value.shape):
            if isinstance(d, int) and arr.shape[ax] != d:
                raise ValueError(f"shared variable {self.label()} was created with length {d} on axis {ax}, which "
                                 f"is fixed in its type; got a value of shape {arr.shape}")
        if not (borrow and arr is value and arr.flags.c_contiguous and arr.flags.writeable):
            arr = np.array(arr, order="C", copy=True)
        self._storage = arr

    @property
    def value(self):
        return self.get_value()

    @value.setter
    def value(self, v):
        self.set_value(v)


def shared(value, name=None, strict=False, allow_downcast=None, borrow=False) -> SharedVariable:
    """A shared variable holding ``value`` (copied unless ``borrow=True``). Lengths other than 1 are symbolic, so
    ``set_value`` may change them without recompiling."""
    if isinstance(value, Tracer):
        raise TypeError("tj.shared() needs a concrete value (a number or an array), got a symbolic variable")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"a shared variable's name must be a string, got {type(name).__name__}")
    try:
        arr = np.asarray(value)
    except Exception as e:
        raise TypeError(f"tj.shared({name!r}): cannot convert a {type(value).__name__} to an array: {e}") from None
    if arr.dtype == object:
        raise TypeError(f"tj.shared({name!r}): cannot convert a {type(value).__name__} to a numeric array")
    comp = compute_dtype(arr.dtype, f"shared variable {name!r}" if name else "a shared variable")
    if not (borrow and arr is value and arr.dtype == comp and arr.flags.c_contiguous and arr.flags.writeable):
        arr = np.array(arr, dtype=comp, order="C", copy=True)
    shape = tuple(1 if d == 1 else Dim.symbol(fresh_symbol(name, ax)) for ax, d in enumerate(arr.shape))
    v = Value(TensorType(comp, shape), name=name)
    sv = SharedVariable(v, arr)
    _SHARED[v.id] = sv
    return sv


def shared_of(v: Value):
    """The SharedVariable whose input Value is ``v``, or None."""
    return _SHARED.get(v.id)


# ------------------------------------------------------------------------------------------------ under jit
def add_shared_inputs(graph: Graph) -> Graph:
    """For ``jit``: shared variables a traced function reads become extra inputs at the end, read at every call."""
    known = {v.id for v in graph.inputs}
    extra = [v for v in roots(graph.eqns, graph.outputs) if v.id not in known]
    if not extra:
        return graph
    for v in extra:
        if shared_of(v) is None:
            raise TypeError(f"the traced function uses the symbolic variable {Variable(v).label()}, which is not "
                            f"one of its arguments; a jitted function can read shared variables (tj.shared), "
                            f"not other symbolic variables")
    n = len(graph.inputs)
    symbols = dict(graph.symbols)
    for k, v in enumerate(extra):
        for ax, d in enumerate(v.shape):
            if isinstance(d, Dim):
                (s,) = d.atoms()
                symbols[s] = (n + k, ax)
    return Graph(inputs=list(graph.inputs) + extra, outputs=list(graph.outputs), eqns=list(graph.eqns),
                 constraints=list(graph.constraints), symbols=symbols)


def shared_inputs_of(graph: Graph) -> tuple:
    """The shared variables among a graph's inputs (their current arrays are passed at each call)."""
    out = []
    for v in graph.inputs:
        sv = shared_of(v)
        if sv is not None:
            out.append(sv)
    return tuple(out)


__all__ = ["SharedVariable", "shared", "shared_of", "add_shared_inputs", "shared_inputs_of"]
