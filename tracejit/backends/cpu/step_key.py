"""The structure of one plan step, computed before any IR is built: two steps of a program with equal keys
lower to the same step body, so the body is emitted once and the other call sites reuse it.

Building llvmlite IR in Python is most of a cold compile (a 20-layer MLP gradient repeats its 9 distinct bodies
108 times). The key says everything the lowering reads: loop nest, ops and their params, dtypes, shapes, where
each operand lives (buffer, constant, length) and which buffers share memory; buffers (by memory slot) and
length symbols are numbered in order of first appearance, since both are arguments of the body. A step holding
anything the key does not know how to describe gets no key and is emitted as before (StepEmitter's text dedup).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir.types import Dim
from ...lower.plan import (Access, CopyStep, DimLength, Fused, FusedAndStored, InBuffer, Kernel, MatmulStep,
                           ScalarConst, ScatterAddStep)


# Steps with at most this many elements known at compile time are optimized lightly (see ``is_light``)
LIGHT_MAX_ELEMENTS = 1024


def is_light(step) -> bool:
    """Whether the optimized tier should skip O3's loop vectorizer and unroller for ``step``: its loops run over
    at most LIGHT_MAX_ELEMENTS elements known at compile time, or it has no loop over data (a float matmul is
    one BLAS call). Their compile costs more than they save on such steps; a step over symbolic lengths may run
    on any size, so it keeps O3."""
    if isinstance(step, MatmulStep):
        return len(step.out.shape) == 2 and np.dtype(step.dtype).kind in "fc"
    shape = step.domain if isinstance(step, Kernel) else step.src.shape if isinstance(step, CopyStep) else \
        step.g.shape if isinstance(step, ScatterAddStep) else None
    if shape is None or not all(isinstance(d, (int, np.integer)) for d in shape):
        return False
    return int(np.prod(shape, dtype=np.int64)) <= LIGHT_MAX_ELEMENTS


class _Unkeyable(Exception):
    """The step holds something the key cannot describe structurally."""


@dataclass(frozen=True)
class StepStructure:
    """A step's key, and the program's memory slot and length symbol behind each number the key uses."""
    key: tuple
    slots: tuple    # number -> memory slot
    symbols: tuple  # number -> symbol name


def step_structure(step, plan, roots, flat=False):
    """The StepStructure of ``step`` (``roots``: buffer id -> memory slot; ``flat``: the kernel runs as one
    collapsed loop, which the lowering decides from the program's length equalities), or None."""
    try:
        return _Keyer(plan, roots).step(step, flat)
    except _Unkeyable:
        return None


class _Keyer:
    def __init__(self, plan, roots):
        self.plan, self.roots = plan, roots
        self.slot_num, self.symbol_num, self.value_num = {}, {}, {}
        self.dim_key = {}  # Dim -> its key in this step (a step names the same few lengths over and over)

    def step(self, step, flat):
        if isinstance(step, Kernel):
            key = self.kernel(step, flat)
        elif isinstance(step, CopyStep):
            key = ("copy", self.access(step.src), self.access(step.dst))
        elif isinstance(step, MatmulStep):
            key = ("matmul", self.access(step.a), self.access(step.b), self.access(step.out), np.dtype(step.dtype),
                   self.scalar(step.alpha), self.scalar(step.beta))
        elif isinstance(step, ScatterAddStep):
            key = ("scatter_add", self.access(step.g), self.access(step.idx), self.access(step.out), step.axis,
                   self.flag())
        else:
            raise _Unkeyable
        return StepStructure(key, tuple(self.slot_num), tuple(self.symbol_num))

    def kernel(self, k: Kernel, flat):
        head = ("kernel", self.dims(k.domain), tuple(k.red_axes), k.column, k.chunks, k.epilogue, flat,
                self.flag())
        ops = tuple((o.phase, o.level, o.axes, o.in_axes, o.eqn.prim, self.param(o.eqn.params),
                     tuple(self.value(x) for x in o.eqn.inputs), self.value(o.eqn.out)) for o in k.ops)
        stores = tuple((self.value(v), self.access(acc)) for v, acc in k.stores)
        scalars = tuple((self.value_num.get(vid, ("?", vid)), self.source(src)) for vid, src in k.scalars.items())
        if any(isinstance(n, tuple) for n, _ in scalars):  # a stored scalar the ops never name: key it by itself
            raise _Unkeyable
        accs = tuple((self.value_num[vid], self.buffer(bid)) for vid, bid in k.column_accs.items())
        parts = tuple((self.value_num[vid], self.buffer(bid)) for vid, bid in k.partials.items())
        return head, ops, stores, scalars, accs, parts

    # the numbered things: buffers (by the memory slot they live in), symbols, values -------------------------
    def buffer(self, bid):
        slot = self.roots.get(bid, bid)
        n = self.slot_num.setdefault(slot, len(self.slot_num))
        return n, self.plan.buffers[bid].dtype

    def flag(self):
        return None if self.plan.flag is None else self.buffer(self.plan.flag)

    def value(self, v):
        n = self.value_num.get(v.id)
        if n is not None:
            return n
        n = self.value_num[v.id] = len(self.value_num)
        return n, v.dtype, self.dims(v.shape), v.type.weak, self.source(self.plan.sources.get(v.id))

    def source(self, src):
        if src is None:
            return None
        if isinstance(src, InBuffer):
            return "in", self.access(src.access)
        if isinstance(src, FusedAndStored):
            return "fused_stored", self.access(src.access)
        if isinstance(src, Fused):
            return "fused"
        if isinstance(src, ScalarConst):
            return "scalar", np.dtype(src.dtype), self.scalar(src.value)
        if isinstance(src, DimLength):
            return "length", self.dim(src.dim)
        raise _Unkeyable

    def access(self, acc: Access):
        return self.buffer(acc.buf), self.dims(acc.shape), self.dims(acc.strides), self.dim(acc.offset)

    # lengths ----------------------------------------------------------------------------------------------
    def dims(self, ds):
        return tuple(self.dim(d) for d in ds)

    def dim(self, d):
        if type(d) is int:
            return d
        if isinstance(d, Dim):
            key = self.dim_key.get(d)
            if key is None:
                # in the Dim's own term order: the lowering emits the terms in that order
                key = self.dim_key[d] = ("dim",) + tuple((tuple(self.atom(a) for a in mono), c)
                                                         for mono, c in d.terms)
            return key
        if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
            return int(d)
        raise _Unkeyable

    def atom(self, a):
        if isinstance(a, str):
            return self.symbol_num.setdefault(a, len(self.symbol_num))
        if isinstance(a, tuple) and a and isinstance(a[0], str):
            return (a[0],) + tuple(self.dim(x) for x in a[1:])
        raise _Unkeyable

    # params and constants -----------------------------------------------------------------------------------
    def scalar(self, x):
        """A constant by type and exact value (``0.0 == -0.0`` and ``1 == 1.0 == True`` must stay apart)."""
        if isinstance(x, (bool, int, float, complex, str, np.generic)) or x is None:
            return type(x).__name__, repr(x)
        raise _Unkeyable

    def param(self, p):
        if isinstance(p, tuple):
            return tuple(self.param(x) for x in p)
        if isinstance(p, Dim):
            return self.dim(p)
        if isinstance(p, np.dtype):
            return "dtype", p.str
        if isinstance(p, type) and issubclass(p, np.generic):
            return "dtype", np.dtype(p).str
        return self.scalar(p)
