"""Buffer reuse: temporaries whose lifetimes do not overlap share one allocation.

A temp is live from the first step that writes it to the last step that reads it. Temps of equal dtype and
(symbolic) shape reuse a dead one, so a chain of kernels needs at most a couple of intermediate buffers, and
``memory_plan()`` reports peak bytes of intermediates as a function of the symbolic dims.
"""
from __future__ import annotations

import collections
import heapq
from dataclasses import dataclass, field

import numpy as np

from ..ir import types as T
from .dims import DimCanon
from .plan import BufferKind, CopyStep, Kernel, Level, MatmulStep, Plan, ScatterAddStep, memory_access


@dataclass
class MemoryPlan:
    slot_of: dict = field(default_factory=dict)  # temp buffer id -> buffer id whose allocation it uses
    lifetimes: dict = field(default_factory=dict)  # buffer id -> (first step, last step)
    in_arguments: dict = field(default_factory=dict)  # input index -> output buffer in its memory (inplace.py)

    def report(self, plan: Plan, example_args=None):
        """Bytes of intermediate buffers: symbolic, and for the example arguments' lengths when given."""
        temp = BufferKind.TEMP
        roots = sorted({r for r in (self.slot_of.get(b.id, b.id) for b in plan.buffers if b.kind is temp)
                        if plan.buffers[r].kind is temp})
        sym = 0
        for r in roots:
            b = plan.buffers[r]
            sym = sym + T.prod(b.shape) * b.dtype.itemsize
        out = {"intermediate_buffers": len(roots), "temporaries": sum(1 for b in plan.buffers if b.kind is temp),
               "intermediate_bytes": sym}
        if example_args is not None:
            env = {s: np.asarray(example_args[i]).shape[ax] for s, (i, ax) in plan.graph.symbols.items()}
            out["intermediate_bytes_now"] = T.eval_dim(sym, env) if not isinstance(sym, int) else sym
            outs = 0
            for b in plan.buffers:
                if b.kind is BufferKind.OUTPUT:
                    outs += T.eval_dim(T.prod(b.shape), env) * b.dtype.itemsize
            out["output_bytes_now"] = outs
        return out


def _accesses(step):
    """(buffers read, buffers written) by a step."""
    if isinstance(step, Kernel):
        reads = set(step.column_accs.values())
        written = {acc.buf for _, acc in step.stores} | set(step.column_accs.values()) | set(step.partials.values())
        return reads, written
    if isinstance(step, CopyStep):
        return {step.src.buf}, {step.dst.buf}
    if isinstance(step, MatmulStep):
        return {step.a.buf, step.b.buf} | ({step.out.buf} if step.beta else set()), {step.out.buf}
    if isinstance(step, ScatterAddStep):
        return {step.g.buf, step.idx.buf}, {step.out.buf}
    return set(), set()


def _kernel_reads(plan: Plan, k: Kernel):
    out = set()
    produced = {o.eqn.out.id for o in k.ops}
    for o in k.ops:
        for x in o.eqn.inputs:
            acc = memory_access(plan.sources.get(x.id))
            if acc is not None and x.id not in produced:
                out.add(acc.buf)
            if x.id in produced:
                for v, acc in k.stores:
                    if v.id == x.id:
                        out.add(acc.buf)
    return out


GATHERED = "gathered"  # a read at data-dependent elements (a gather's source), never the element being written


def _kernel_buffer_uses(plan: Plan, k: Kernel):
    """(reads, writes) of a kernel: buffer id -> list of (phase, level, Access)."""
    producers = {o.eqn.out.id: o for o in k.ops}
    stored = {}
    for v, acc in k.stores:
        stored.setdefault(v.id, []).append(acc)
    reads, writes = {}, {}
    reductions = ("sum", "prod", "max", "min", "any", "all", "argmax", "argmin")
    # ``order``: position in the loop body; reductions read their input after every elementwise store of
    # their phase, so they count as later than all of them
    for n, o in enumerate(k.ops):
        is_red = o.eqn.prim in reductions
        base = Level.INNER if (o.level is Level.INNER or is_red) else Level.TAIL
        order = len(k.ops) + n if is_red else n
        for xi, x in enumerate(o.eqn.inputs):
            # a gather reads its source at data-dependent elements: never only the element written at this point
            level = GATHERED if (o.eqn.prim == "gather" and xi == 0) else base
            p = producers.get(x.id)
            if p is not None:
                if x.id in stored and p.level is Level.INNER and p.phase < o.phase:
                    for acc in stored[x.id]:
                        reads.setdefault(acc.buf, []).append((o.phase, level, acc, order))
                continue
            acc = memory_access(plan.sources.get(x.id))
            if acc is not None:
                reads.setdefault(acc.buf, []).append((o.phase, level, acc, order))
    position = {o.eqn.out.id: n for n, o in enumerate(k.ops)}
    for v, acc in k.stores:
        p = producers.get(v.id)
        writes.setdefault(acc.buf, []).append((p.phase if p else 0, p.level if p else Level.TAIL, acc,
                                               position.get(v.id, len(k.ops))))
    return reads, writes


def _in_place_pairs(plan: Plan, lifetimes, canon):
    """(dying temp, buffer written) pairs where the written buffer can take over the temp's memory: inside one
    kernel, every read of the temp and the write use the same element at the same loop point (softmax's
    ``exp(x - max)`` stored in phase 1, read in phase 2 where the output is written)."""
    pairs = []
    for i, step in enumerate(plan.steps):
        if not isinstance(step, Kernel):
            continue
        reads, writes = _kernel_buffer_uses(plan, step)
        taken = set()
        for t, rs in reads.items():
            tb = plan.buffers[t]
            if tb.kind is not BufferKind.TEMP or lifetimes.get(t, (0, -1))[1] != i or t in writes and len(writes[t]) > 1:
                continue
            for o, ws in writes.items():
                ob = plan.buffers[o]
                if o == t or o in taken or ob.kind not in (BufferKind.OUTPUT, BufferKind.TEMP) or lifetimes[o][0] != i:
                    continue
                if ob.dtype != tb.dtype or canon.shape(ob.shape) != canon.shape(tb.shape) or len(ws) != 1:
                    continue
                wphase, wlevel, wacc, worder = ws[0]
                if wlevel is not Level.INNER or not all(ph == wphase and lv is Level.INNER and _same(a, wacc, canon)
                                                 and order <= worder for ph, lv, a, order in rs):
                    continue
                pairs.append((t, o))
                taken.add(o)
                break
    return pairs


def _same(a, b, canon):
    return (canon.shape(a.shape) == canon.shape(b.shape) and canon.shape(a.strides) == canon.shape(b.strides)
            and canon.dim(a.offset) == canon.dim(b.offset))


def plan_memory(plan: Plan) -> MemoryPlan:
    mp = MemoryPlan()
    canon = DimCanon(plan.graph.constraints)
    first, last = {}, {}
    for i, step in enumerate(plan.steps):
        reads, written = _accesses(step)
        if isinstance(step, Kernel):
            reads = _kernel_reads(plan, step) | set(step.column_accs.values())
        for b in written:
            first.setdefault(b, i)
            last[b] = max(last.get(b, i), i)
        for b in reads:
            first.setdefault(b, i)
            last[b] = i
    mp.lifetimes = {b: (first[b], last[b]) for b in first}
    in_place = dict(_in_place_pairs(plan, mp.lifetimes, canon))


    def taker(b):  # follow chains (a temp taken over by a temp that an output takes over)
        while b in in_place:
            b = in_place[b]
        return b
    for t in in_place:  # the taker's memory is live for every lifetime it absorbs
        o = taker(t)
        first[o] = min(first[o], first[t])
        last[o] = max(last[o], last[t])
    # Each temp takes the memory freed first (in the order it was freed) of its dtype and canonical shape. Live
    # memory is a heap by last use, free memory a queue per (dtype, shape): linear in the temps, where scanning
    # both lists for each temp was quadratic (most of planning at 10^3 buffers).
    free: dict = {}  # (dtype, canonical shape) -> roots, in the order they were freed
    active: list = []  # heap of (last step, order of activation, root)
    temps = [b for b in plan.buffers if b.kind is BufferKind.TEMP and b.id in first and b.id not in in_place]
    temps.sort(key=lambda b: first[b.id])
    for n, b in enumerate(temps):
        f, l = first[b.id], last[b.id]
        done = []
        while active and active[0][0] < f:
            done.append(heapq.heappop(active))
        for _, _, r in sorted(done, key=lambda e: e[1]):  # freed in the order they became live
            rb = plan.buffers[r]
            free.setdefault((rb.dtype, canon.shape(rb.shape)), collections.deque()).append(r)
        same = free.get((b.dtype, canon.shape(b.shape)))
        if same:
            chosen = same.popleft()
            mp.slot_of[b.id] = chosen
            heapq.heappush(active, (l, n, chosen))
        else:
            heapq.heappush(active, (l, n, b.id))
    for t in in_place:
        o = taker(t)
        mp.slot_of[t] = mp.slot_of.get(o, o)
    return mp
