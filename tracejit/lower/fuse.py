"""Which work shares a loop nest: the optimized graph becomes a Plan (lower/plan.py) of kernels and steps.

The planner walks the equations in order and keeps one kernel open. Elementwise work and reductions join it
when their iteration space fits (``try_add``), else they open a new kernel; views become strided Accesses;
matmul, concatenate and scatter_add are steps of their own. Values crossing kernels, or crossing phases at
inner level, are materialized in buffers. Nothing here knows a backend.
"""
from __future__ import annotations

import numpy as np

from ..ir import types as T
from ..ir.graph import Equation, Graph, Value
from ..ir.primitives import IDENTITY_MARKS, PRIMS
from ..ir.types import TensorType
from .dims import DimCanon, broadcast_access, is_contiguous, view_access
from .plan import (Access, Buffer, BufferKind, CopyStep, DimLength, Fused, FusedAndStored, InBuffer, Kernel, KOp,
                   Level, MatmulStep, Plan, ScalarConst, ScatterAddStep, contiguous_access)
from .scalar import is_expensive

COLUMN_REDUCTIONS = ("sum", "prod", "max", "min", "any", "all")
SPLIT_CHUNKS = 16  # pieces of a split full reduction on the CPU (threads take whole pieces); a GPU asks for more


def plan(graph: Graph, split_chunks: int = SPLIT_CHUNKS) -> Plan:
    """Fuse ``graph`` into kernels and steps over buffers. ``split_chunks``: the pieces a full reduction is cut
    into, enough to occupy the backend's processors (a few CPU threads, or every multiprocessor of a GPU)."""
    return _Planner(graph, split_chunks).run()


def _column_shape(domain, red_axes, prim) -> bool:
    """Reduced axes all before the kept ones, the last axis kept: loop reduced axes outside, kept inside."""
    kept = [a for a in range(len(domain)) if a not in red_axes]
    return bool(red_axes) and bool(kept) and prim in COLUMN_REDUCTIONS and max(red_axes) < min(kept)


def _accumulator_dtype(prim, dt) -> np.dtype:
    """float32 sums and products accumulate in float64 where the accumulator is a buffer (column, split); float16
    reductions in float32 (backends/cpu/reductions.py: as numpy's, rounded once)."""
    if dt == T.FLOAT16:
        return T.FLOAT32
    return np.dtype(np.float64) if (prim in ("sum", "prod") and dt == T.FLOAT32) else np.dtype(dt)


def _is_reduction(o: KOp) -> bool:
    return PRIMS[o.eqn.prim].kind == "reduce"


def _scalars_first(graph: Graph) -> list:
    """The equations in planning order: cheap 0-d elementwise work on 0-d values first (in its own order), then
    the rest. Met after an open array kernel, such a scalar closed it (it does not span the kernel's domain), and
    the array work after it opened a second kernel over the same domain: a loop body's ``x * a + 1e-4 * i``
    compiled as two kernels and ran two passes over x."""
    early, rest, ready = [], [], {v.id for v in graph.inputs if v.ndim == 0}
    for e in graph.eqns:
        if (PRIMS[e.prim].kind == "elementwise" and e.out.ndim == 0 and not is_expensive(e.prim)
                and all(x.ndim == 0 and (x.is_const or x.id in ready) for x in e.inputs)):
            early.append(e)
            ready.add(e.out.id)
        else:
            rest.append(e)
    return early + rest


class _Planner:
    def __init__(self, graph: Graph, split_chunks: int = SPLIT_CHUNKS):
        self.g = graph
        self.split_chunks = split_chunks
        self.canon = DimCanon(graph.constraints)
        self.buffers: list[Buffer] = []
        self.steps: list = []
        self.src: dict = {}  # value id -> Source (lower/plan.py)
        self.cur: Kernel | None = None
        self.flag = None
        self.scalar_bufs: dict = {}
        self.out_ids = {v.id for v in graph.outputs}
        self.users = graph.users()
        self.absorbed: set = set()  # equations folded into an earlier step (a matmul's update epilogue)

    # buffers ----------------------------------------------------------------------------------
    def new_buffer(self, kind: BufferKind, dtype, shape, **kw) -> Buffer:
        b = Buffer(len(self.buffers), kind, np.dtype(dtype), tuple(shape), **kw)
        self.buffers.append(b)
        return b

    def fresh_access(self, v: Value, kind=BufferKind.TEMP) -> Access:
        return contiguous_access(self.new_buffer(kind, v.dtype, v.shape).id, v.shape)

    def flag_buffer(self) -> int:
        if self.flag is None:
            self.flag = self.new_buffer(BufferKind.FLAG, np.int64, (1,)).id
        return self.flag

    def access_of(self, v: Value) -> Access:
        """A buffer Access holding v, materializing it if it is computed inside a kernel."""
        s = self.src[v.id]
        if isinstance(s, InBuffer):
            return s.access
        if isinstance(s, FusedAndStored):  # already written to a buffer by its kernel (read back in a later phase)
            if s.kernel is self.cur:
                self.close()
            return s.access
        if isinstance(s, (ScalarConst, DimLength)):
            return self.scalar_buffer(v, s)
        acc = self.fresh_access(v)
        s.kernel.stores.append((v, acc))
        self.src[v.id] = InBuffer(acc)
        if s.kernel is self.cur:
            self.close()
        return acc

    def scalar_buffer(self, v: Value, s) -> Access:
        """A 0-d buffer holding a scalar, for views (broadcast_to) that need memory; the scalar itself stays an
        immediate for every kernel, including ones placed earlier."""
        acc = self.scalar_bufs.get(v.id)
        if acc is None:
            acc = self.scalar_bufs[v.id] = self.fresh_access(v)
            k = Kernel(domain=(), closed=True)
            # first of all steps (it reads nothing), never the open kernel: work fused into that kernel would
            # read the buffer before the kernel's closing store writes it
            self.steps.insert(0, k)
            k.stores.append((v, acc))
            k.scalars[v.id] = s
        return acc

    def add_kernel(self, k: Kernel):
        self.close()
        self.steps.append(k)
        self.cur = k

    def close(self):
        if self.cur is not None:
            self.cur.closed = True
        self.cur = None

    def add_step(self, step):
        self.close()
        self.steps.append(step)

    def fuse(self, e: Equation, k: Kernel, kop: KOp):
        k.ops.append(kop)
        self.src[e.out.id] = Fused(k, kop)

    # main -------------------------------------------------------------------------------------
    def run(self) -> Plan:
        g = self.g
        for i, v in enumerate(g.inputs):
            b = self.new_buffer(BufferKind.INPUT, v.dtype, v.shape, input_index=i)
            self.src[v.id] = InBuffer(contiguous_access(b.id, v.shape))
        for e in _scalars_first(g):
            if id(e) in self.absorbed:
                continue
            for x in e.inputs:
                if x.is_const and x.id not in self.src:
                    self.add_const(x)
            self.place(e)
        for v in g.outputs:
            if v.is_const and v.id not in self.src:
                self.add_const(v)
        outputs = self.finish_outputs()
        self.split_full_reductions()
        self.add_column_accumulators()
        return Plan(g, self.buffers, self.steps, outputs, self.src, self.flag)

    def add_const(self, v: Value):
        if v.ndim == 0:
            self.src[v.id] = ScalarConst(v.const.item(), v.dtype)
        else:
            b = self.new_buffer(BufferKind.CONST, v.dtype, v.shape, const=np.ascontiguousarray(v.const))
            self.src[v.id] = InBuffer(contiguous_access(b.id, v.shape))

    def add_column_accumulators(self):
        """A column kernel accumulates each reduction in a buffer over the kept axes."""
        for k in self.steps:
            if isinstance(k, Kernel) and k.column:
                kept = tuple(d for a, d in enumerate(k.domain) if a not in k.red_axes)
                for o in k.ops:
                    if _is_reduction(o):
                        dt = _accumulator_dtype(o.eqn.prim, o.eqn.out.dtype)
                        k.column_accs[o.eqn.out.id] = self.new_buffer(BufferKind.TEMP, dt, kept).id

    def place(self, e: Equation):
        kind = PRIMS[e.prim].kind
        if e.prim == "dimsize":
            self.src[e.out.id] = DimLength(e.p["dim"])
        elif e.prim in IDENTITY_MARKS:  # identities: a remat barrier, or a rule's mark simplify did not drop
            s = self.src.get(e.inputs[0].id)
            # a value in memory is shared as it is; one still inside a kernel is stored first (the kernel's ops
            # compute x, not the mark, so the mark cannot stand for a fused value)
            in_memory = isinstance(s, (InBuffer, ScalarConst, DimLength))
            self.src[e.out.id] = s if in_memory else InBuffer(self.access_of(e.inputs[0]))
        elif kind == "view":
            self.place_view(e)
        elif kind in ("elementwise", "reduce"):
            if self.cur is None or not (self.try_add(e) or (self.widen_scalar_kernel(e) and self.try_add(e))):
                self.new_kernel_for(e)
        elif e.prim == "iota":  # elementwise over its own shape, reading nothing: joins the open kernel if it fits
            if self.cur is None or not self.try_add_elementwise(e, self.cur, []):
                self.new_kernel_for(e)
        elif e.prim == "gather":
            for v in e.inputs:
                self.access_of(v)
            self.flag_buffer()
            k = Kernel(domain=tuple(e.out.shape))
            self.add_kernel(k)
            self.fuse(e, k, KOp(e, 0, Level.INNER, self.full_axes(e.out.shape, k)))
        elif e.prim == "matmul":
            self.place_matmul(e)
        elif e.prim == "concatenate":
            out = self.fresh_access(e.out)
            ax, off = e.p["axis"], 0
            for v in e.inputs:
                dst = Access(out.buf, tuple(v.shape), out.strides, off * out.strides[ax] if off != 0 else 0)
                self.add_step(CopyStep(self.access_of(v), dst))
                off = off + v.shape[ax]
            self.src[e.out.id] = InBuffer(out)
        elif e.prim == "scatter_add":
            g, idx = (self.access_of(v) for v in e.inputs)
            self.flag_buffer()
            out = self.fresh_access(e.out)
            self.add_step(ScatterAddStep(g, idx, out, e.p["axis"], e))
            self.src[e.out.id] = InBuffer(out)
        else:
            raise NotImplementedError(f"no lowering for primitive {e.prim}")

    def place_view(self, e: Equation):
        x = e.inputs[0]
        s = self.src[x.id]
        if isinstance(s, Fused) and s.kernel is self.cur and self.try_fuse_view(e, s.kop):
            return
        if isinstance(s, (ScalarConst, DimLength)) and e.prim in ("reshape", "broadcast_to") \
                and self.cur is not None and self.try_fuse_view(e, None):
            return
        acc = self.access_of(x)
        new = view_access(e, acc, self.canon)
        if new is None:  # reshape of a non-contiguous view: copy it first
            tmp = self.fresh_access(x)
            self.add_step(CopyStep(acc, tmp))
            new = view_access(e, tmp, self.canon)
        self.src[e.out.id] = InBuffer(new)

    def place_matmul(self, e: Equation):
        a, b = (self.blas_operand(v) for v in e.inputs)
        update = self.matmul_update(e)
        if update is not None:
            d, alpha, final, absorbed = update
            out = self.fresh_access(final.out)
            self.add_step(CopyStep(broadcast_access(self.access_of(d), out.shape), out))
            self.add_step(MatmulStep(a, b, out, e.out.dtype, e, alpha=alpha, beta=1.0))
            self.src[final.out.id] = InBuffer(out)
            self.absorbed |= {id(x) for x in absorbed}
            return
        out = self.fresh_access(e.out)
        self.add_step(MatmulStep(a, b, out, e.out.dtype, e))
        self.src[e.out.id] = InBuffer(out)

    def only_user(self, v: Value):
        us = self.users.get(v.id, ())
        return us[0] if len(us) == 1 and v.id not in self.out_ids else None

    def matmul_update(self, e):
        """(D, alpha, last equation, equations absorbed) when the product's only use is ``D + alpha * (a @ b)``
        (written ``D - c * M``, ``D + M``, ``M * c + D``, ...) with D of the product's dtype and shape or
        broadcasting to it, already computed, and c a scalar constant: SGD's weight update, a residual
        connection, a layer's bias (``x @ W + b``: the bias rows are copied into the output, BLAS adds onto them)."""
        m, dt = e.out, e.out.dtype
        if not T.is_float(dt) or m.ndim < 2:
            return None
        u, absorbed, alpha = self.only_user(m), [], 1.0
        if u is not None and u.prim in ("broadcast_to", "reshape") and self.canon.shape_eq(u.out.shape, m.shape):
            absorbed.append(u)
            m, u = u.out, self.only_user(u.out)
        if u is not None and u.prim == "multiply":
            c = u.inputs[1] if u.inputs[0] is m else u.inputs[0]
            if not (c.is_const and c.ndim == 0 and u.out.dtype == dt):
                return None
            alpha = float(c.const)
            absorbed.append(u)
            m, u = u.out, self.only_user(u.out)
        if u is None or u.prim not in ("add", "subtract") or u.out.dtype != dt:
            return None
        if u.prim == "subtract" and u.inputs[1] is not m:
            return None  # M - D would need beta = -1
        d = u.inputs[1] if u.inputs[0] is m else u.inputs[0]
        if d is m or d.dtype != dt or d.id not in self.src or not self.canon.shape_eq(m.shape, u.out.shape) \
                or not self.broadcasts_to(d.shape, u.out.shape):
            return None
        return d, (-alpha if u.prim == "subtract" else alpha), u, absorbed + [u]

    def broadcasts_to(self, shape, target):
        """``shape`` reaches ``target`` by numpy broadcasting alone (a bias row added to a product)."""
        pad = len(target) - len(shape)
        return pad >= 0 and all((isinstance(d, int) and d == 1) or self.canon.eq(d, t)
                                for d, t in zip(shape, target[pad:]))

    def blas_operand(self, v: Value) -> Access:
        acc = self.access_of(v)
        # BLAS needs unit stride along one of the two matrix dims and a regular other stride
        nd = len(acc.shape)
        s_r, s_c = acc.strides[nd - 2], acc.strides[nd - 1]
        ok = (s_c == 1 or acc.shape[nd - 1] == 1) or (s_r == 1 or acc.shape[nd - 2] == 1)
        if not ok or any(isinstance(s, int) and s == 0 for s, d in zip(acc.strides[-2:], acc.shape[-2:]) if d != 1):
            tmp = self.fresh_access(v)
            self.add_step(CopyStep(acc, tmp))
            return tmp
        return acc

    def split_full_reductions(self):
        """A reduction to a scalar (no outer axis to give threads) becomes chunked partial reductions plus a
        small kernel that combines the partials and runs what followed the reduction."""
        steps = []
        for k in self.steps:
            steps.append(k)
            if self.splittable(k):
                steps.append(self.split(k))
        self.steps = steps

    def splittable(self, k) -> bool:
        if not isinstance(k, Kernel) or k.column or not k.red_axes or k.nphases != 1:
            return False
        if any(k.domain[a] != 1 for a in k.outer_axes):
            return False
        reds = [o for o in k.ops if _is_reduction(o)]
        if not reds or any(o.eqn.prim not in COLUMN_REDUCTIONS for o in reds):
            return False
        n = k.domain[k.red_axes[0]]
        return not (isinstance(n, int) and n < 4 * self.split_chunks)

    def split(self, k: Kernel) -> Kernel:
        """Cut ``k``'s first reduced axis in chunks; the returned epilogue kernel combines the partials."""
        k.chunks = chunks = self.split_chunks
        k2 = Kernel(domain=(chunks,), red_axes=(0,), epilogue=True)
        moved = {o.eqn.out.id for o in k.ops if o.level is Level.TAIL}
        for o in k.ops:
            if not _is_reduction(o):
                continue
            acc_dt = _accumulator_dtype(o.eqn.prim, o.eqn.out.dtype)
            pb = self.new_buffer(BufferKind.TEMP, acc_dt, (chunks,))
            k.partials[o.eqn.out.id] = pb.id
            part = Value(TensorType(acc_dt, (chunks,)))
            self.src[part.id] = InBuffer(Access(pb.id, (chunks,), (1,), 0))
            eqn = Equation(o.eqn.prim, (part,), (("axes", (0,)),), o.eqn.out)
            k2.ops.append(KOp(eqn, 0, Level.TAIL, o.axes, (0,)))
        k2.ops += [o for o in k.ops if o.level is Level.TAIL and not _is_reduction(o)]
        k.ops = [o for o in k.ops if o.level is not Level.TAIL or _is_reduction(o)]
        k2.stores = [(v, a) for v, a in k.stores if v.id in moved]
        k.stores = [(v, a) for v, a in k.stores if v.id not in moved]
        return k2

    # kernels ----------------------------------------------------------------------------------
    def full_axes(self, shape, k: Kernel):
        r, q = len(k.domain), len(shape)
        return tuple(None if d == 1 else r - q + j for j, d in enumerate(shape))

    def new_kernel_for(self, e):
        if PRIMS[e.prim].kind == "reduce":
            x = e.inputs[0]
            self.operand(x, None)
            red = tuple(a for a in e.p["axes"] if x.shape[a] != 1)  # size-1 axes need no loop
            k = Kernel(domain=tuple(x.shape), red_axes=red, column=_column_shape(x.shape, red, e.prim))
            self.add_kernel(k)
            in_axes = tuple(None if d == 1 else j for j, d in enumerate(x.shape))
            out_axes = tuple(a for j, a in enumerate(in_axes) if j not in e.p["axes"])
            self.fuse(e, k, KOp(e, 0, Level.TAIL, out_axes, in_axes))
            return
        for x in e.inputs:
            self.operand(x, None)
        k = Kernel(domain=tuple(e.out.shape))
        self.add_kernel(k)
        self.fuse(e, k, KOp(e, 0, Level.INNER, self.full_axes(e.out.shape, k)))

    def widen_scalar_kernel(self, e) -> bool:
        """Give the open 0-d kernel e's iteration space when it only computes cheap scalars that e alone reads
        (``a * np.float32(s) + 1``: the scalar's conversion is recomputed per element, which LLVM hoists, instead
        of costing a kernel and a buffer of its own). Nothing it computes is stored, so an empty loop loses
        nothing."""
        k = self.cur
        if k.domain or k.stores or k.scalars or not e.out.ndim or PRIMS[e.prim].kind != "elementwise":
            return False
        for o in k.ops:
            if PRIMS[o.eqn.prim].kind != "elementwise" or is_expensive(o.eqn.prim) or o.eqn.out.id in self.out_ids:
                return False
            mine = {id(x.eqn) for x in k.ops}
            if any(u is not e and id(u) not in mine for u in self.users.get(o.eqn.out.id, ())):
                return False  # read by a later equation: it would need the value in memory
        k.domain = tuple(e.out.shape)
        return True

    def operand(self, x: Value, k: Kernel | None):
        """Make x usable by kernel k: fused in k stays, anything else becomes a buffer (or scalar)."""
        s = self.src[x.id]
        if isinstance(s, (Fused, FusedAndStored)) and s.kernel is not k:
            self.access_of(x)

    def try_fuse_view(self, e, kop):
        """reshape that only adds/removes size-1 dims of a value computed in this kernel (or of a scalar)."""
        x = e.inputs[0]
        if e.prim != "reshape":
            return False
        new = tuple(e.p["shape"])
        old_nz = [d for d in x.shape if d != 1]
        new_nz = [d for d in new if d != 1]
        if [self.canon.dim(d) for d in old_nz] != [self.canon.dim(d) for d in new_nz]:
            return False
        if kop is None:
            axes = tuple(None for _ in new)
            phase, level = 0, Level.TAIL
        else:
            it = iter(a for a, d in zip(kop.axes, x.shape) if d != 1)
            axes = tuple(None if d == 1 else next(it) for d in new)
            phase, level = kop.phase, kop.level
        self.fuse(e, self.cur, KOp(e, phase, level, axes))
        return True

    def try_add(self, e) -> bool:
        """Put e into the open kernel when its iteration space fits; False leaves the plan unchanged (or with
        operands stored, the kernel closed)."""
        k = self.cur
        infos = []  # the KOp computing each input in this kernel, or None
        for x in e.inputs:
            s = self.src[x.id]
            infos.append(s.kop if isinstance(s, (Fused, FusedAndStored)) and s.kernel is k else None)
        if PRIMS[e.prim].kind == "elementwise":
            return self.try_add_elementwise(e, k, infos)
        return self.try_add_reduction(e, k, infos[0])

    def elementwise_axes(self, e, k: Kernel, infos):
        """The domain axis of each output dim of elementwise ``e`` in kernel k, or None when it does not fit."""
        shape = e.out.shape
        q, r = len(shape), len(k.domain)
        axes = []
        for j, d in enumerate(shape):
            if d == 1:
                axes.append(None)
                continue
            ax = None
            for x, info in zip(e.inputs, infos):
                jj = j - (q - x.ndim)
                if info is not None and jj >= 0 and x.shape[jj] != 1:
                    ax = info.axes[jj]
                    break
            if ax is None:
                ax = r - q + j
                if ax < 0:
                    return None
            if not self.canon.eq(k.domain[ax], d):
                return None
            axes.append(ax)
        used = [a for a in axes if a is not None]
        if len(set(used)) != len(used):
            return None
        # operands' axis maps must agree with broadcasting into this output
        for x, info in zip(e.inputs, infos):
            if info is None:
                continue
            for jj, a in enumerate(info.axes):
                if x.shape[jj] != 1 and axes[jj + (q - x.ndim)] != a:
                    return None
        return tuple(axes)

    def try_add_elementwise(self, e, k: Kernel, infos) -> bool:
        axes = self.elementwise_axes(e, k, infos)
        if axes is None:
            return False
        covered = set(a for a in axes if a is not None)
        full = set(a for a in range(len(k.domain)) if k.domain[a] != 1)
        inner = bool(covered & set(k.red_axes)) or not k.red_axes
        if not k.red_axes and covered != full:
            return False  # a smaller value inside a bigger elementwise loop would be recomputed
        if k.red_axes and not inner and not covered <= set(k.outer_axes):
            return False
        if k.red_axes and inner and covered != full:
            return False
        phase = 0
        for info in infos:
            if info is not None:  # a reduction's result read in a loop feeds the next phase's loop
                phase = max(phase, info.phase + 1 if (info.level is Level.TAIL and inner) else info.phase)
        level = Level.INNER if inner else Level.TAIL
        if k.column and phase > 0:
            return False  # a column kernel has one pass: a later inner phase starts a new kernel
        for x, info in zip(e.inputs, infos):
            if info is not None and info.level is Level.INNER and info.phase < phase and level is Level.INNER:
                self.store_in_kernel(x, k)  # stored once, never recomputed (cheap or expensive)
        for x, info in zip(e.inputs, infos):
            if info is None:
                self.operand(x, k)
        if self.cur is not k:
            return False
        self.fuse(e, k, KOp(e, phase, level, axes))
        return True

    def try_add_reduction(self, e, k: Kernel, info) -> bool:
        x = e.inputs[0]
        raxes = tuple(e.p["axes"])
        if info is None:  # a buffer read over this kernel's whole domain can be reduced here too
            if not isinstance(self.src[x.id], InBuffer) or not self.canon.shape_eq(x.shape, k.domain):
                return False
            info = KOp(None, 0, Level.INNER, tuple(None if d == 1 else j for j, d in enumerate(x.shape)))
        if info.level is not Level.INNER:
            return False
        dom_axes = [info.axes[a] for a in raxes if x.shape[a] != 1]  # size-1 axes reduce to themselves
        if not dom_axes or any(a is None for a in dom_axes):
            return False
        r = len(k.domain)
        if not k.red_axes:
            column = _column_shape(k.domain, tuple(sorted(dom_axes)), e.prim)
            if r == 0 or ((r - 1) not in dom_axes and not column):
                return False  # reductions over leading axes of other shapes stay out of fast elementwise loops
            if any(o.level is not Level.INNER for o in k.ops):
                return False
            k.red_axes = tuple(sorted(dom_axes))
            k.column = column
        elif k.column and e.prim not in COLUMN_REDUCTIONS:
            return False
        elif tuple(sorted(dom_axes)) != tuple(k.red_axes):
            return False
        out_axes = tuple(a for j, a in enumerate(info.axes) if j not in raxes)
        self.fuse(e, k, KOp(e, info.phase, Level.TAIL, out_axes, info.axes))
        return True

    def store_in_kernel(self, x: Value, k: Kernel):
        """A value computed at inner level in an earlier phase and read in a later one: store, then reload."""
        s = self.src[x.id]
        if not isinstance(s, Fused):
            return
        acc = self.fresh_access(x)
        k.stores.append((x, acc))
        self.src[x.id] = FusedAndStored(k, s.kop, acc)

    # outputs ----------------------------------------------------------------------------------
    def finish_outputs(self) -> list:
        """The buffer id of each graph output (a value returned twice is one buffer, listed twice)."""
        seen = {}
        for i, v in enumerate(self.g.outputs):
            if v.id not in seen:
                b = self.output_buffer_of(v)
                b.output_indices.append(i)
                seen[v.id] = b.id
        return [seen[v.id] for v in self.g.outputs]

    def output_buffer_of(self, v: Value) -> Buffer:
        """The buffer to return ``v`` in: its own when it is a whole fresh one, else a new output buffer."""
        s = self.src[v.id]
        if isinstance(s, FusedAndStored):
            b = self.buffers[s.access.buf]
            b.kind = BufferKind.OUTPUT
            return b
        if isinstance(s, Fused):
            b = self.new_buffer(BufferKind.OUTPUT, v.dtype, v.shape)
            s.kernel.stores.append((v, contiguous_access(b.id, v.shape)))
            self.src[v.id] = InBuffer(contiguous_access(b.id, v.shape))
            return b
        if isinstance(s, InBuffer):
            acc = s.access
            b = self.buffers[acc.buf]
            fresh = b.kind is BufferKind.TEMP and acc.offset == 0 and is_contiguous(acc, self.canon) \
                and not b.output_indices and self.canon.dim(T.prod(acc.shape)) == self.canon.dim(T.prod(b.shape))
            if fresh:  # a whole fresh buffer seen through a reshape: hand it out with the output's shape
                b.kind = BufferKind.OUTPUT
                b.shape = tuple(acc.shape)
                return b
            nb = self.new_buffer(BufferKind.OUTPUT, v.dtype, v.shape)
            self.add_step(CopyStep(acc, contiguous_access(nb.id, v.shape)))
            return nb
        # a scalar constant or a length
        nb = self.new_buffer(BufferKind.OUTPUT, v.dtype, v.shape)
        k = Kernel(domain=())
        self.add_kernel(k)
        k.stores.append((v, Access(nb.id, (), (), 0)))
        k.scalars[v.id] = s
        return nb
