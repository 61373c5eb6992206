"""Lowering of one Plan Kernel into its step function: the loop nest over the kernel's domain, the ops of each
phase evaluated through the scalar table, reductions, and the stores of the values the plan keeps."""
from __future__ import annotations

import llvmlite.ir as ir

from ...ir import types as T
from ...ir.primitives import PRIMS
from ...lower.dims import GATHERED, gather_source_axes
from ...lower.plan import (Access, DimLength, InBuffer, Kernel, ScalarConst, contiguous_strides, memory_access)
from .emitter import FLAT, StepEmitter
from .reductions import REDUCTION_INIT, SUM_BLOCK, Reduction
from .scalar import I64, CpuScalarOps, constant, lltype
from .streaming import StreamedStores, streamable


def collapsible(plan, k: Kernel, canon):
    """An elementwise kernel whose every access is C-contiguous over the whole domain runs as one flat loop."""
    if k.red_axes or len(k.domain) <= 1 or any(o.eqn.prim in ("gather", "iota") for o in k.ops):
        return False
    full = contiguous_strides(k.domain)
    accs = [acc for _, acc in k.stores]
    for o in k.ops:
        for x in o.eqn.inputs:
            s = plan.sources.get(x.id)
            if isinstance(s, InBuffer) and not produced_in(k, x):
                accs.append(s.access)
    for acc in accs:
        if len(acc.shape) == 0 or all(isinstance(s, int) and s == 0 for s in acc.strides):
            continue
        if len(acc.shape) != len(k.domain):
            return False
        for d, dd, s, f in zip(acc.shape, k.domain, acc.strides, full):
            if not canon.eq(d, dd) or not (d == 1 or canon.eq(s, f)):
                return False
    return True


def produced_in(k, x):
    return any(o.eqn.out is x for o in k.ops)


def is_reduction(o) -> bool:
    return PRIMS[o.eqn.prim].kind == "reduce"


def flat_length(domain):
    """The length of a collapsed domain: the product of its dims."""
    n = domain[0]
    for d in domain[1:]:
        n = n * d
    return n


def outer_extent(k: Kernel, flat: bool):
    """The dim split across threads (None: this kernel runs on one thread)."""
    if k.chunks:
        return k.chunks
    if flat:
        return flat_length(k.domain)
    outer = [a for a in range(len(k.domain)) if a not in k.red_axes]
    return k.domain[outer[0]] if outer else None


def lower_kernel(em: StepEmitter, plan, k: Kernel, canon):
    """Emit kernel ``k`` into ``em``'s step function; true when its domain ran as one flat loop."""
    return KernelLowering(em, plan, k, canon).lower()


class KernelLowering:
    """The state of lowering one kernel: which op produces each value, which values are stored where, and the
    loop structure (flat, chunked, outer loops around reduced loops, or a column reduction)."""

    def __init__(self, em: StepEmitter, plan, k: Kernel, canon):
        self.em, self.plan, self.k = em, plan, k
        self.ops = CpuScalarOps(em)
        self.b = em.b
        self.b.position_at_end(em.body_block)
        self.domain = tuple(k.domain)
        self.flat = collapsible(plan, k, canon)
        self.streamed = None  # the StreamedStores of a big memory-bound kernel (optimized tier only)
        self.producers = {o.eqn.out.id: o for o in k.ops}
        self.stored = {}
        for v, acc in k.stores:
            self.stored.setdefault(v.id, []).append(acc)
        self.red = tuple(k.red_axes)
        self.outer = tuple(a for a in range(len(self.domain)) if a not in self.red)
        self.flag_ptr = em.buf(plan.flag) if plan.flag is not None else None
        if self.flat:
            self.flat_n = em.dim(flat_length(self.domain))

    def lower(self):
        em, b, k = self.em, self.b, self.k
        if k.column:
            ColumnLowering(self).lower()
        elif k.chunks:
            hi = b.select(b.icmp_signed("<", em.stop, ir.Constant(I64, 0)), ir.Constant(I64, k.chunks), em.stop)
            em.loop(em.start, hi, lambda c: self.outer_loops(list(self.outer), {"chunk": c}, False), name="chunk")
        else:
            if em.math.vector and streamable(k, self.flat):
                if em.defer_streaming:
                    em.streams_later = True
                else:
                    self.streamed = StreamedStores(em, self.plan, k, T.prod(self.domain))
            self.outer_loops([0] if self.flat else list(self.outer), {}, True)
        b.ret_void()
        em.finish()
        return self.flat

    # values ---------------------------------------------------------------------------------------------------
    def eval_op(self, o, idx, values, phase, level):
        e = o.eqn
        if e.prim == "reshape":
            if e.inputs[0].id in values:
                return values[e.inputs[0].id]
            return self.operand(e.inputs[0], o.axes, idx, values, phase, level, q=None)
        if e.prim == "gather":  # addresses its operands itself: they need not have the result's rank
            return self.gather(e, o, idx, values, phase, level)
        if e.prim == "iota":  # the loop index of its axis (never in a flat kernel: see collapsible)
            return idx[o.axes[0]] if o.axes[0] is not None else ir.Constant(I64, 0)
        q = e.out.ndim
        args = [self.operand(x, o.axes, idx, values, phase, level, q) for x in e.inputs]
        return self.ops.emit(e, args)

    def operand(self, x, cons_axes, idx, values, phase, level, q):
        """Value ``x`` as read by an op with axis map ``cons_axes`` and rank ``q``: computed in this iteration,
        stored by an earlier phase, a constant, a length, or loaded from its buffer."""
        if x.id in values:
            return values[x.id]
        src = self.plan.sources.get(x.id)
        p = self.producers.get(x.id)
        if p is not None and x.id in self.stored and (p.phase < phase and p.level == "inner"):
            acc = self.stored[x.id][0]
            return self.em.load(acc, idx, self.access_axes(acc, x, cons_axes, q))
        if p is not None:
            raise AssertionError(f"value {x} used before it is computed in its kernel")
        if isinstance(src, ScalarConst):
            return constant(src.dtype, src.value)
        if isinstance(src, DimLength):
            return self.em.dim(src.dim)
        acc = memory_access(src)
        return self.em.load(acc, idx, self.access_axes(acc, x, cons_axes, q))

    def access_axes(self, acc, x, cons_axes, q):
        """Domain axis of each dim of ``x`` (FLAT in a collapsed kernel), right-aligned against rank ``q``."""
        if self.flat:
            return FLAT
        if q is None:
            q = len(cons_axes)
        off = q - x.ndim
        return tuple(None if x.shape[j] == 1 else cons_axes[j + off] for j in range(x.ndim))

    def gather(self, e, o, idx, values, phase, level):
        x, ind = e.inputs
        ax = e.p["axis"]
        xacc = self.plan.sources[x.id].access
        # the index may be a constant, a length or a stored value: read it as any operand over its own axes
        iv = self.operand(ind, tuple(o.axes[ax:ax + ind.ndim]), idx, values, phase, level, ind.ndim)
        iv = self.em.checked_index(iv, self.em.dim(x.shape[ax]), self.flag_ptr)
        # address: x dims before ax map to out dims before ax; after ax to out dims after the index dims
        local = dict(idx)
        local[GATHERED] = iv
        return self.em.load(xacc, local, gather_source_axes(x.shape, ax, o.axes, ind.ndim))

    def store_value(self, o, idx, v):
        """Store the value of op ``o`` wherever the plan keeps it."""
        for acc in self.stored.get(o.eqn.out.id, ()):
            if self.streamed is not None and self.streamed.active:
                self.streamed.store(acc, idx[0], v)
            else:
                self.em.store(acc, idx, self.access_axes(acc, o.eqn.out, o.axes, None), v)

    def compute(self, o, idx, values, phase, level):
        v = self.eval_op(o, idx, values, phase, level)
        values[o.eqn.out.id] = v
        self.store_value(o, idx, v)

    # the body of one outer iteration --------------------------------------------------------------------------
    def run_body(self, idx):
        values = {}
        for phase in range(self.k.nphases):
            self.run_phase(phase, idx, values)
        # a kernel made only of stores of scalars / dims (e.g. a constant output)
        for v, acc in self.k.stores:
            if v.id in self.k.scalars:
                src = self.k.scalars[v.id]
                val = constant(src.dtype, src.value) if isinstance(src, ScalarConst) else self.em.dim(src.dim)
                self.em.store(acc, idx, tuple(None for _ in acc.shape), val)

    def run_phase(self, phase, idx, values):
        """One phase: its inner ops and reductions over the reduced axes, then the ops on their results."""
        em, b, k = self.em, self.b, self.k
        inner_ops = [o for o in k.ops if o.phase == phase and o.level == "inner"]
        reds = [o for o in k.ops if o.phase == phase and is_reduction(o)]
        tail_ops = [o for o in k.ops if o.phase == phase and o.level == "tail" and not is_reduction(o)]
        accs = [Reduction(em, self.ops, o) for o in reds]
        for a in accs:
            a.init()
        counter = em.in_entry(lambda: b.alloca(I64)) if reds else None
        if counter is not None:
            b.store(ir.Constant(I64, 0), counter)

        def inner_body(iidx, ivalues):
            self.inner_iteration(phase, inner_ops, accs, counter, iidx, ivalues)
        if self.red:
            blocked = any(a.blocked for a in accs)
            self.reduced_loops(list(self.red), dict(idx), values, inner_body, blocked, accs)
        else:
            for a in accs:
                a.init_block()
            inner_body(idx, values)
            for a in accs:
                a.flush_block()
        if k.chunks:  # a split full reduction: this chunk's raw accumulators, combined by the next step
            for a in accs:
                part = Access(k.partials[a.kop.eqn.out.id], (k.chunks,), (1,), 0)
                em.store(part, {"chunk": idx["chunk"]}, ("chunk",), b.load(a.acc, typ=lltype(a.acc_dt)))
            return
        for a in accs:
            v = a.result()
            values[a.kop.eqn.out.id] = v
            self.store_value(a.kop, idx, v)
        for o in tail_ops:
            self.compute(o, idx, values, phase, "tail")

    def inner_iteration(self, phase, inner_ops, accs, counter, idx, values):
        """One iteration of the reduced loops: the inner ops, then every accumulator takes its element."""
        b = self.b
        for o in inner_ops:
            self.compute(o, idx, values, phase, "inner")
        if accs:
            c = b.load(counter, typ=I64)
        for a in accs:
            x = a.kop.eqn.inputs[0]
            v = self.operand(x, a.kop.in_axes, idx, values, phase, "inner", x.ndim)
            a.update(v, c)
        if accs:
            b.store(b.add(c, ir.Constant(I64, 1)), counter)

    # loops ----------------------------------------------------------------------------------------------------
    def axis_range(self, a, idx):
        """[lo, hi) of reduced axis a: all of it, or this chunk's share in a split full reduction."""
        em, b, k = self.em, self.b, self.k
        n = em.dim(self.domain[a])
        if k.chunks and a == k.red_axes[0]:
            per = b.sdiv(b.add(n, ir.Constant(I64, k.chunks - 1)), ir.Constant(I64, k.chunks))
            lo = b.mul(idx["chunk"], per)
            lo = b.select(b.icmp_signed("<", lo, n), lo, n)
            hi = b.add(lo, per)
            return lo, b.select(b.icmp_signed("<", hi, n), hi, n)
        return ir.Constant(I64, 0), n

    def reduced_loops(self, axes_left, idx, values, body, blocked, accs):
        """Loops over the reduced axes (the last one in SUM_BLOCK blocks for a float sum) around ``body``."""
        em = self.em
        a = axes_left[0]
        lo0, n = self.axis_range(a, idx)

        def leaf(i):
            d = dict(idx)
            d[a] = i
            body(d, dict(values))
        if len(axes_left) == 1 and blocked:
            self.blocked_loop(a, lo0, n, leaf, accs)
        elif len(axes_left) == 1:
            em.loop(lo0, n, leaf, name=f"r{a}")
        else:
            def mid(i):
                d = dict(idx)
                d[a] = i
                self.reduced_loops(axes_left[1:], d, values, body, blocked, accs)
            em.loop(lo0, n, mid, name=f"r{a}")

    def blocked_loop(self, a, lo0, n, leaf, accs):
        em, b = self.em, self.b
        nblk = b.sdiv(b.add(b.sub(n, lo0), ir.Constant(I64, SUM_BLOCK - 1)), ir.Constant(I64, SUM_BLOCK))

        def blk_body(jb):
            for r in accs:
                r.init_block()
            lo = b.add(lo0, b.mul(jb, ir.Constant(I64, SUM_BLOCK)))
            hi = b.add(lo, ir.Constant(I64, SUM_BLOCK))
            hi = b.select(b.icmp_signed("<", hi, n), hi, n)
            em.loop(lo, hi, leaf, name=f"r{a}")
            for r in accs:
                r.flush_block()
        em.loop(ir.Constant(I64, 0), nblk, blk_body, name=f"rb{a}")

    def outer_loops(self, axes_left, idx, first):
        """Loops over the kept axes; the first one runs [start, stop) of the step's ABI (threads split it)."""
        if not axes_left:
            self.run_body(idx)
            return
        em, b = self.em, self.b
        a = axes_left[0]
        n = self.flat_n if self.flat else em.dim(self.domain[a])
        if first:
            lo = em.start
            hi = b.select(b.icmp_signed("<", em.stop, ir.Constant(I64, 0)), n, em.stop)
        else:
            lo, hi = ir.Constant(I64, 0), n

        def body(i):
            d = dict(idx)
            d[a] = i
            self.outer_loops(axes_left[1:], d, False)
        if first and self.streamed is not None:
            self.streamed.loop(lo, hi, body, lambda acc: FLAT if self.flat else (0,), f"o{a}")
        else:
            em.loop(lo, hi, body, name=f"o{a}")


class ColumnLowering:
    """Reductions over leading axes: init accumulators, then reduced loops outside and kept loops inside (unit
    stride, vectorized), then the tail over the kept axes. Threads split the first kept axis."""

    def __init__(self, kl: KernelLowering):
        self.kl, self.em, self.b, self.k = kl, kl.em, kl.b, kl.k
        k = self.k
        self.red = list(k.red_axes)
        self.kept = [a for a in range(len(k.domain)) if a not in self.red]
        kept_shape = tuple(k.domain[a] for a in self.kept)
        self.acc_access = {vid: Access(bid, kept_shape, contiguous_strides(kept_shape), 0)
                           for vid, bid in k.column_accs.items()}
        self.acc_axes = tuple(None if d == 1 else a for a, d in zip(self.kept, kept_shape))
        self.reds = [o for o in k.ops if is_reduction(o)]
        self.inner_ops = [o for o in k.ops if o.level == "inner"]
        self.tail_ops = [o for o in k.ops if o.level == "tail" and not is_reduction(o)]
        self.state = {o.eqn.out.id: Reduction(self.em, kl.ops, o) for o in self.reds}

    def lower(self):
        self.kept_loops(self.init, {})
        self.red_loops(0, {})
        self.kept_loops(self.finish, {})

    def kept_loops(self, body, idx):
        em, b = self.em, self.b

        def rec(j, idx):
            if j == len(self.kept):
                body(idx)
                return
            a = self.kept[j]
            n = em.dim(self.k.domain[a])
            if j == 0:
                lo, hi = em.start, b.select(b.icmp_signed("<", em.stop, ir.Constant(I64, 0)), n, em.stop)
            else:
                lo, hi = ir.Constant(I64, 0), n

            def inner(i):
                rec(j + 1, {**idx, a: i})
            em.loop(lo, hi, inner, name=f"k{a}")
        rec(0, idx)

    def init(self, idx):
        for o in self.reds:
            r = self.state[o.eqn.out.id]
            self.em.store(self.acc_access[o.eqn.out.id], idx, self.acc_axes,
                          constant(r.acc_dt, REDUCTION_INIT[r.prim](r.acc_dt)))

    def accumulate(self, idx):
        em, kl = self.em, self.kl
        values = {}
        for o in self.inner_ops:
            kl.compute(o, idx, values, 0, "inner")
        for o in self.reds:
            r = self.state[o.eqn.out.id]
            x = o.eqn.inputs[0]
            v = kl.operand(x, o.in_axes, idx, values, 0, "inner", x.ndim)
            acc = self.acc_access[o.eqn.out.id]
            cur = em.load(acc, idx, self.acc_axes)
            em.store(acc, idx, self.acc_axes, r.combine(cur, v))

    def red_loops(self, j, idx):
        if j == len(self.red):
            self.kept_loops(self.accumulate, idx)
            return
        a = self.red[j]
        self.em.loop(ir.Constant(I64, 0), self.em.dim(self.k.domain[a]),
                     lambda i: self.red_loops(j + 1, {**idx, a: i}), name=f"c{a}")

    def finish(self, idx):
        kl = self.kl
        values = {}
        for o in self.reds:
            r = self.state[o.eqn.out.id]
            v = kl.ops.convert(self.em.load(self.acc_access[o.eqn.out.id], idx, self.acc_axes), r.acc_dt, r.out_dt)
            values[o.eqn.out.id] = v
            kl.store_value(o, idx, v)
        for o in self.tail_ops:
            kl.compute(o, idx, values, 0, "tail")
