"""Group the optimized graph into kernels: loop nests of fused elementwise work and reductions.

A Kernel iterates over a domain R (a shape). Its reduced axes A (possibly none) are the inner loops, the other
axes O the outer ones (the first O axis is split across threads). Inside one outer iteration the kernel runs
*phases*: phase p is an inner loop computing elementwise values and accumulating reductions, then a *tail* of
elementwise work on the reduction results. A row softmax is one kernel: max (phase 0), exp + sum (phase 1),
divide (phase 2). Values crossing kernels, or crossing phases at inner level, are materialized in buffers.

Views (reshape/transpose/broadcast_to/slice) of materialized values cost nothing: they become strided
``Access``es. matmul, concatenate and scatter_add are their own steps.

The result is a ``Plan`` (buffers + ordered steps) that backends lower; this module knows nothing of LLVM.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir import types as T
from ..ir.graph import Equation, Graph, Value
from ..ir.primitives import IDENTITY_MARKS, PRIMS
from ..ir.types import Dim, TensorType


# ------------------------------------------------------------------------------------------------ data
@dataclass
class Buffer:
    id: int
    kind: str  # input | output | temp | const | flag
    dtype: np.dtype
    shape: tuple
    input_index: int | None = None
    const: np.ndarray | None = None
    output_indices: list = field(default_factory=list)


@dataclass(frozen=True)
class Access:
    """A strided view of a buffer: element (i0, i1, ...) lives at offset + sum(i_k * strides[k])."""
    buf: int
    shape: tuple
    strides: tuple
    offset: object = 0


def contiguous_strides(shape):
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(0 if d == 1 else acc)
        acc = acc * d if not (isinstance(acc, int) and acc == 1) else d
    return tuple(reversed(strides))


@dataclass
class KOp:
    """One equation inside a kernel, with its placement."""
    eqn: object
    phase: int
    level: str  # inner | tail
    axes: tuple  # domain axis of each output dim (None for size-1 dims)
    in_axes: tuple = None  # reductions: domain axis of each input dim


@dataclass
class Kernel:
    domain: tuple
    red_axes: tuple = ()
    ops: list = field(default_factory=list)
    stores: list = field(default_factory=list)  # (value, Access) in the value's phase/level
    closed: bool = False
    scalars: dict = field(default_factory=dict)  # value id -> ('scalar', v, dt) | ('dim', d) stored by this kernel
    # column mode: the reduced axes lead and the kept ones trail (``x.sum(axis=0)``); the loops then run reduced
    # axes outside and kept axes inside, over contiguous memory, accumulating into one buffer per reduction
    column: bool = False
    column_accs: dict = field(default_factory=dict)  # reduction output value id -> accumulator buffer id
    # split full reduction: the first reduced axis is cut into ``chunks`` pieces (threads take chunks); each
    # reduction leaves one raw accumulator per chunk in ``partials`` and the next step combines them
    chunks: int = 0
    partials: dict = field(default_factory=dict)  # reduction output value id -> partials buffer id
    epilogue: bool = False  # combines a split reduction's partials: part of the kernel before it

    @property
    def outer_axes(self):
        return tuple(a for a in range(len(self.domain)) if a not in self.red_axes)

    @property
    def nphases(self):
        return 1 + max((o.phase for o in self.ops), default=0)

    @property
    def eqns(self):
        return [o.eqn for o in self.ops]


@dataclass
class CopyStep:
    """dst = src, elementwise over src.shape (materializes a view)."""
    src: Access
    dst: Access


@dataclass
class MatmulStep:
    """out = alpha * (a @ b) + beta * out: beta is 1 when the matmul is folded into an update ``D - c * (a @ b)``
    (a CopyStep writes D into out first), which saves BLAS zeroing out and a kernel pass over the product."""
    a: Access
    b: Access
    out: Access
    dtype: np.dtype
    eqn: object = None
    alpha: float = 1.0
    beta: float = 0.0


@dataclass
class ScatterAddStep:
    g: Access
    idx: Access
    out: Access
    axis: int
    eqn: object = None


@dataclass
class Plan:
    graph: Graph
    buffers: list
    steps: list
    outputs: list  # per graph output: ('buf', buffer id) | ('const', array) | ('input', index)
    sources: dict  # value id -> ('buf', Access) | ('scalar', python value, dtype) | ('dim', expr)
    flag: int | None = None  # buffer id of the index-error flag

    @property
    def kernel_groups(self):
        groups = []
        for s in self.steps:
            eqns = s.eqns if isinstance(s, Kernel) else [s.eqn] if getattr(s, "eqn", None) else []
            if getattr(s, "epilogue", False) and groups:
                groups[-1] = groups[-1] + [e for e in eqns if e not in groups[-1]]
            else:
                groups.append(eqns)
        return groups

    @property
    def num_kernels(self):
        """Loop nests over the data one call runs (a split reduction's 16-element epilogue is part of its kernel)."""
        return sum(1 for s in self.steps if not getattr(s, "epilogue", False))


# ------------------------------------------------------------------------------------------------ canonical dims
class DimCanon:
    """Symbols that run-time checks force equal are compared as one (``n1 == m`` after broadcasting)."""

    def __init__(self, constraints):
        self.parent = {}  # symbol -> a symbol it equals
        self.alias = {}   # other expression (``max(0, min(1, k1))`` of a slice) -> an expression it equals
        eqs = [(a, b) for kind, a, b, _ in constraints if kind == "eq" and isinstance(a, Dim) and isinstance(b, Dim)]
        for a, b in eqs:
            sa, sb = _single_symbol(a), _single_symbol(b)
            if sa and sb:
                ra, rb = self.find(sa), self.find(sb)
                if ra != rb:
                    lo, hi = sorted((ra, rb))
                    self.parent[hi] = lo
        for a, b in eqs:
            ra, rb = self.dim(a), self.dim(b)
            if ra != rb:
                lo, hi = sorted((ra, rb), key=repr)
                self.alias[hi] = lo

    def find(self, s):
        while s in self.parent:
            s = self.parent[s]
        return s

    def dim(self, d):
        if not isinstance(d, Dim) or not (self.parent or self.alias):
            return d
        terms = {}
        for mono, c in d.terms:
            m = tuple(sorted((self.find(a) if isinstance(a, str) else a for a in mono), key=repr))
            terms[m] = terms.get(m, 0) + c
        d = Dim.make(terms)
        while isinstance(d, Dim) and d in self.alias:
            d = self.alias[d]
        return d

    def shape(self, s):
        return tuple(self.dim(d) for d in s)

    def eq(self, a, b):
        return self.dim(a) == self.dim(b)

    def shape_eq(self, a, b):
        return len(a) == len(b) and all(self.eq(x, y) for x, y in zip(a, b))


def _single_symbol(d):
    if len(d.terms) == 1:
        mono, c = d.terms[0]
        if c == 1 and len(mono) == 1 and isinstance(mono[0], str):
            return mono[0]
    return None


# ------------------------------------------------------------------------------------------------ views
def view_access(eqn, acc: Access, canon: DimCanon):
    """The Access of a view equation applied to ``acc``, or None when it needs a copy first."""
    p = eqn.p
    if eqn.prim == "transpose":
        perm = p["perm"]
        return Access(acc.buf, tuple(acc.shape[i] for i in perm), tuple(acc.strides[i] for i in perm), acc.offset)
    if eqn.prim == "broadcast_to":
        return broadcast_access(acc, p["shape"])
    if eqn.prim == "slice":
        off = acc.offset
        strides = []
        for st, step, s in zip(p["starts"], p["steps"], acc.strides):
            if not (isinstance(st, int) and st == 0):
                off = off + st * s if not isinstance(s, int) or s != 0 else off
            strides.append(s * step if not (isinstance(s, int) and s == 0) else 0)
        return Access(acc.buf, tuple(p["shape"]), tuple(strides), off)
    if eqn.prim == "reshape":
        new = tuple(p["shape"])
        old_nz = [(d, s) for d, s in zip(acc.shape, acc.strides) if d != 1]
        new_nz = [d for d in new if d != 1]
        if [canon.dim(d) for d, _ in old_nz] == [canon.dim(d) for d in new_nz]:
            it = iter(s for _, s in old_nz)
            return Access(acc.buf, new, tuple(0 if d == 1 else next(it) for d in new), acc.offset)
        if _is_contiguous(acc, canon):
            return Access(acc.buf, new, contiguous_strides(new), acc.offset)
        return None
    raise NotImplementedError(eqn.prim)


def broadcast_access(acc: Access, shape) -> Access:
    """``acc`` read as ``shape`` (numpy broadcasting): stride 0 along the dims it is repeated over."""
    pad = len(shape) - len(acc.shape)
    strides = [0] * pad + [0 if (d == 1 and t != 1) else s for d, s, t in zip(acc.shape, acc.strides, shape[pad:])]
    return Access(acc.buf, tuple(shape), tuple(strides), acc.offset)


def _is_contiguous(acc: Access, canon: DimCanon):
    expect = contiguous_strides(acc.shape)
    return all(d == 1 or canon.eq(s, e) for d, s, e in zip(acc.shape, acc.strides, expect))


# ------------------------------------------------------------------------------------------------ planning
class _Planner:
    def __init__(self, graph: Graph):
        self.g = graph
        self.canon = DimCanon(graph.constraints)
        self.buffers: list[Buffer] = []
        self.steps: list = []
        self.src: dict = {}  # value id -> ('buf', Access) | ('fused', Kernel, KOp) | ('scalar', v, dt) | ('dim', d)
        self.cur: Kernel | None = None
        self.flag = None
        self.scalar_bufs: dict = {}
        self.out_ids = {v.id for v in graph.outputs}
        self.users = graph.users()
        self.absorbed: set = set()  # equations folded into an earlier step (a matmul's update epilogue)

    # buffers ----------------------------------------------------------------------------------
    def new_buffer(self, kind, dtype, shape, **kw) -> Buffer:
        b = Buffer(len(self.buffers), kind, np.dtype(dtype), tuple(shape), **kw)
        self.buffers.append(b)
        return b

    def fresh_access(self, v: Value, kind="temp") -> Access:
        b = self.new_buffer(kind, v.dtype, v.shape)
        return Access(b.id, tuple(v.shape), contiguous_strides(v.shape), 0)

    def access_of(self, v: Value) -> Access:
        """A buffer Access holding v, materializing it if it is computed inside a kernel."""
        s = self.src[v.id]
        if s[0] == "buf":
            return s[1]
        if s[0] == "stored":  # already written to a buffer by its kernel (read back in a later phase)
            if s[1] is self.cur:
                self.close()
            return s[3]
        if s[0] in ("scalar", "dim"):
            # a 0-d buffer holding the scalar, for views (broadcast_to) that need memory; the scalar itself
            # stays an immediate for every kernel, including ones placed earlier
            acc = self.scalar_bufs.get(v.id)
            if acc is None:
                acc = self.scalar_bufs[v.id] = self.fresh_access(v)
                k = Kernel(domain=(), closed=True)
                # first of all steps (it reads nothing), never the open kernel: work fused into that kernel
                # would read the buffer before the kernel's closing store writes it
                self.steps.insert(0, k)
                k.stores.append((v, acc))
                k.scalars[v.id] = s
            return acc
        _, kernel, kop = s
        acc = self.fresh_access(v)
        kernel.stores.append((v, acc))
        self.src[v.id] = ("buf", acc)
        if kernel is self.cur:
            self.close()
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

    # main -------------------------------------------------------------------------------------
    def run(self) -> Plan:
        g = self.g
        for i, v in enumerate(g.inputs):
            b = self.new_buffer("input", v.dtype, v.shape, input_index=i)
            self.src[v.id] = ("buf", Access(b.id, tuple(v.shape), contiguous_strides(v.shape), 0))
        for e in g.eqns:
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
        for k in self.steps:
            if isinstance(k, Kernel) and k.column:
                kept = tuple(d for a, d in enumerate(k.domain) if a not in k.red_axes)
                for o in k.ops:
                    if PRIMS[o.eqn.prim].kind == "reduce":
                        dt = o.eqn.out.dtype
                        acc_dt = np.float64 if (o.eqn.prim in ("sum", "prod") and dt == T.FLOAT32) else dt
                        k.column_accs[o.eqn.out.id] = self.new_buffer("temp", acc_dt, kept).id
        return Plan(g, self.buffers, self.steps, outputs, self.src, self.flag)

    def add_const(self, v: Value):
        if v.ndim == 0:
            self.src[v.id] = ("scalar", v.const.item(), v.dtype)
        else:
            b = self.new_buffer("const", v.dtype, v.shape, const=np.ascontiguousarray(v.const))
            self.src[v.id] = ("buf", Access(b.id, tuple(v.shape), contiguous_strides(v.shape), 0))

    def place(self, e):
        kind = PRIMS[e.prim].kind
        if e.prim == "dimsize":
            self.src[e.out.id] = ("dim", e.p["dim"])
            return
        if e.prim in IDENTITY_MARKS:  # identities: a remat barrier, or a rule's mark simplify did not drop
            x = e.inputs[0]
            s = self.src.get(x.id)
            # a value in memory is shared as it is; one still inside a kernel is stored first (the kernel's ops
            # compute x, not the mark, so the mark cannot stand for a fused value)
            self.src[e.out.id] = s if s is not None and s[0] in ("buf", "scalar", "dim") else ("buf", self.access_of(x))
            return
        if kind == "view":
            x = e.inputs[0]
            s = self.src[x.id]
            if s[0] == "fused" and s[1] is self.cur and self.try_fuse_view(e, s[2]):
                return
            if s[0] in ("scalar", "dim") and e.prim in ("reshape", "broadcast_to") and self.cur is not None \
                    and self.try_fuse_view(e, None):
                return
            acc = self.access_of(x)
            new = view_access(e, acc, self.canon)
            if new is None:  # reshape of a non-contiguous view: copy it first
                tmp = self.fresh_access(x)
                self.add_step(CopyStep(acc, tmp))
                new = view_access(e, tmp, self.canon)
            self.src[e.out.id] = ("buf", new)
            return
        if kind in ("elementwise", "reduce"):
            if self.cur is not None and self.try_add(e):
                return
            self.new_kernel_for(e)
            return
        if e.prim == "gather":
            x, idx = (self.access_of(v) for v in e.inputs)
            if self.flag is None:
                self.flag = self.new_buffer("flag", np.int64, (1,)).id
            k = Kernel(domain=tuple(e.out.shape))
            self.add_kernel(k)
            kop = KOp(e, 0, "inner", self.full_axes(e.out.shape, k))
            k.ops.append(kop)
            self.src[e.out.id] = ("fused", k, kop)
            return
        if e.prim == "matmul":
            a, b = (self.blas_operand(v) for v in e.inputs)
            update = self.matmul_update(e)
            if update is not None:
                d, alpha, final, absorbed = update
                out = self.fresh_access(final.out)
                self.add_step(CopyStep(broadcast_access(self.access_of(d), out.shape), out))
                self.add_step(MatmulStep(a, b, out, e.out.dtype, e, alpha=alpha, beta=1.0))
                self.src[final.out.id] = ("buf", out)
                self.absorbed |= {id(x) for x in absorbed}
                return
            out = self.fresh_access(e.out)
            self.add_step(MatmulStep(a, b, out, e.out.dtype, e))
            self.src[e.out.id] = ("buf", out)
            return
        if e.prim == "concatenate":
            out = self.fresh_access(e.out)
            ax = e.p["axis"]
            off = 0
            for v in e.inputs:
                acc = self.access_of(v)
                dst = Access(out.buf, tuple(v.shape), out.strides, off * out.strides[ax] if off != 0 else 0)
                self.add_step(CopyStep(acc, dst))
                off = off + v.shape[ax]
            self.src[e.out.id] = ("buf", out)
            return
        if e.prim == "scatter_add":
            g, idx = (self.access_of(v) for v in e.inputs)
            if self.flag is None:
                self.flag = self.new_buffer("flag", np.int64, (1,)).id
            out = self.fresh_access(e.out)
            self.add_step(ScatterAddStep(g, idx, out, e.p["axis"], e))
            self.src[e.out.id] = ("buf", out)
            return
        raise NotImplementedError(f"no lowering for primitive {e.prim}")

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

    def split_full_reductions(self):
        """A reduction to a scalar (no outer axis to give threads) becomes chunked partial reductions plus a
        small kernel that combines the partials and runs what followed the reduction."""
        steps = []
        for k in self.steps:
            steps.append(k)
            if not isinstance(k, Kernel) or k.column or not k.red_axes or k.nphases != 1:
                continue
            if any(k.domain[a] != 1 for a in k.outer_axes):
                continue
            reds = [o for o in k.ops if PRIMS[o.eqn.prim].kind == "reduce"]
            if not reds or any(o.eqn.prim not in COLUMN_REDUCTIONS for o in reds):
                continue
            if isinstance(k.domain[k.red_axes[0]], int) and k.domain[k.red_axes[0]] < 4 * SPLIT_CHUNKS:
                continue
            k.chunks = SPLIT_CHUNKS
            k2 = Kernel(domain=(SPLIT_CHUNKS,), red_axes=(0,), epilogue=True)
            moved = {o.eqn.out.id for o in k.ops if o.level == "tail"}
            for o in reds:
                dt = o.eqn.out.dtype
                acc_dt = np.dtype(np.float64) if (o.eqn.prim in ("sum", "prod") and dt == T.FLOAT32) else dt
                pb = self.new_buffer("temp", acc_dt, (SPLIT_CHUNKS,))
                k.partials[o.eqn.out.id] = pb.id
                part = Value(TensorType(acc_dt, (SPLIT_CHUNKS,)))
                self.src[part.id] = ("buf", Access(pb.id, (SPLIT_CHUNKS,), (1,), 0))
                eqn = Equation(o.eqn.prim, (part,), (("axes", (0,)),), o.eqn.out)
                k2.ops.append(KOp(eqn, 0, "tail", o.axes, (0,)))
            k2.ops += [o for o in k.ops if o.level == "tail" and PRIMS[o.eqn.prim].kind != "reduce"]
            k.ops = [o for o in k.ops if o.level != "tail" or PRIMS[o.eqn.prim].kind == "reduce"]
            k2.stores = [(v, a) for v, a in k.stores if v.id in moved]
            k.stores = [(v, a) for v, a in k.stores if v.id not in moved]
            steps.append(k2)
        self.steps = steps

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

    # kernels ----------------------------------------------------------------------------------
    def full_axes(self, shape, k: Kernel):
        r = len(k.domain)
        q = len(shape)
        return tuple(None if d == 1 else r - q + j for j, d in enumerate(shape))

    def new_kernel_for(self, e):
        if PRIMS[e.prim].kind == "reduce":
            x = e.inputs[0]
            self.operand(x, None)
            red = tuple(a for a in e.p["axes"] if x.shape[a] != 1)  # size-1 axes need no loop
            k = Kernel(domain=tuple(x.shape), red_axes=red, column=_column_shape(x.shape, red, e.prim))
            self.add_kernel(k)
            in_axes = tuple(None if d == 1 else j for j, d in enumerate(x.shape))
            kop = KOp(e, 0, "tail", tuple(a for j, a in enumerate(in_axes) if j not in e.p["axes"]), in_axes)
            k.ops.append(kop)
            self.src[e.out.id] = ("fused", k, kop)
            return
        for x in e.inputs:
            self.operand(x, None)
        k = Kernel(domain=tuple(e.out.shape))
        self.add_kernel(k)
        kop = KOp(e, 0, "inner", self.full_axes(e.out.shape, k))
        k.ops.append(kop)
        self.src[e.out.id] = ("fused", k, kop)

    def operand(self, x: Value, k: Kernel | None):
        """Make x usable by kernel k: fused in k stays, anything else becomes a buffer (or scalar)."""
        s = self.src[x.id]
        if s[0] in ("fused", "stored") and s[1] is not k:
            self.access_of(x)

    def try_fuse_view(self, e, kop):
        """reshape that only adds/removes size-1 dims, or broadcast_to, of a value computed in this kernel."""
        k = self.cur
        x = e.inputs[0]
        if e.prim == "reshape":
            new = tuple(e.p["shape"])
            old_nz = [d for d in x.shape if d != 1]
            new_nz = [d for d in new if d != 1]
            if [self.canon.dim(d) for d in old_nz] != [self.canon.dim(d) for d in new_nz]:
                return False
            if kop is None:
                axes = tuple(None for _ in new)
                phase, level = 0, "tail"
            else:
                it = iter(a for a, d in zip(kop.axes, x.shape) if d != 1)
                axes = tuple(None if d == 1 else next(it) for d in new)
                phase, level = kop.phase, kop.level
            nk = KOp(e, phase, level, axes)
            k.ops.append(nk)
            self.src[e.out.id] = ("fused", k, nk)
            return True
        return False

    def try_add(self, e) -> bool:
        k = self.cur
        canon = self.canon
        kind = PRIMS[e.prim].kind
        r = len(k.domain)
        infos = []
        for x in e.inputs:
            s = self.src[x.id]
            infos.append(s[2] if (s[0] in ("fused", "stored") and s[1] is k) else None)
        if kind == "elementwise":
            shape = e.out.shape
            q = len(shape)
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
                        return False
                if not canon.eq(k.domain[ax], d):
                    return False
                axes.append(ax)
            axes = tuple(axes)
            if len(set(a for a in axes if a is not None)) != sum(1 for a in axes if a is not None):
                return False
            covered = set(a for a in axes if a is not None)
            inner = bool(covered & set(k.red_axes)) or not k.red_axes
            if not k.red_axes and covered != set(a for a in range(r) if k.domain[a] != 1):
                return False  # a smaller value inside a bigger elementwise loop would be recomputed
            if k.red_axes and not inner and not covered <= set(k.outer_axes):
                return False
            if k.red_axes and inner and covered != set(a for a in range(r) if k.domain[a] != 1):
                return False
            # operands' axis maps must agree with broadcasting into this output
            for x, info in zip(e.inputs, infos):
                if info is None:
                    continue
                for jj, a in enumerate(info.axes):
                    j = jj + (q - x.ndim)
                    if x.shape[jj] != 1 and axes[j] != a:
                        return False
            phase = 0
            for x, info in zip(e.inputs, infos):
                if info is None:
                    continue
                if info.level == "tail" and inner:  # a reduction's result feeds the next phase's loop
                    phase = max(phase, info.phase + 1)
                else:
                    phase = max(phase, info.phase)
            level = "inner" if inner else "tail"
            if k.column and phase > 0:
                return False  # a column kernel has one pass: a later inner phase starts a new kernel
            for x, info in zip(e.inputs, infos):
                if info is not None and info.level == "inner" and info.phase < phase and level == "inner":
                    self.store_in_kernel(x, k)  # stored once, never recomputed (cheap or expensive)
            for x, info in zip(e.inputs, infos):
                if info is None:
                    self.operand(x, k)
            if self.cur is not k:
                return False
            kop = KOp(e, phase, level, axes)
            k.ops.append(kop)
            self.src[e.out.id] = ("fused", k, kop)
            return True
        # reduction
        x = e.inputs[0]
        info = infos[0]
        raxes = tuple(e.p["axes"])
        if info is None:  # a buffer read over this kernel's whole domain can be reduced here too
            src = self.src[x.id]
            if src[0] != "buf" or not canon.shape_eq(x.shape, k.domain):
                return False
            info = KOp(None, 0, "inner", tuple(None if d == 1 else j for j, d in enumerate(x.shape)))
            if k.red_axes:
                info.phase = 0
        if info.level != "inner":
            return False
        dom_axes = [info.axes[a] for a in raxes if x.shape[a] != 1]  # size-1 axes reduce to themselves
        if not dom_axes or any(a is None for a in dom_axes):
            return False
        if not k.red_axes:
            column = _column_shape(k.domain, tuple(sorted(dom_axes)), e.prim)
            if r == 0 or ((r - 1) not in dom_axes and not column):
                return False  # reductions over leading axes of other shapes stay out of fast elementwise loops
            if any(o.level != "inner" for o in k.ops):
                return False
            k.red_axes = tuple(sorted(dom_axes))
            k.column = column
        elif k.column and e.prim not in COLUMN_REDUCTIONS:
            return False
        elif tuple(sorted(dom_axes)) != tuple(k.red_axes):
            return False
        out_axes = tuple(a for j, a in enumerate(info.axes) if j not in raxes)
        kop = KOp(e, info.phase, "tail", out_axes, info.axes)
        k.ops.append(kop)
        self.src[e.out.id] = ("fused", k, kop)
        return True

    def store_in_kernel(self, x: Value, k: Kernel):
        """A value computed at inner level in an earlier phase and read in a later one: store, then reload."""
        s = self.src[x.id]
        if s[0] != "fused":
            return
        acc = self.fresh_access(x)
        k.stores.append((x, acc))
        self.src[x.id] = ("stored", k, s[2], acc)

    def finish_outputs(self):
        outs = []
        seen = {}
        for i, v in enumerate(self.g.outputs):
            if v.id in seen:
                outs.append(seen[v.id])
                continue
            s = self.src[v.id]
            if s[0] == "fused" or s[0] == "stored":
                k = s[1]
                acc = s[3] if s[0] == "stored" else None
                if acc is not None:
                    self.buffers[acc.buf].kind = "output"
                    b = self.buffers[acc.buf]
                else:
                    b = self.new_buffer("output", v.dtype, v.shape)
                    k.stores.append((v, Access(b.id, tuple(v.shape), contiguous_strides(v.shape), 0)))
                    self.src[v.id] = ("buf", Access(b.id, tuple(v.shape), contiguous_strides(v.shape), 0))
                b.output_indices.append(i)
                outs.append(("buf", b.id))
            elif s[0] == "buf":
                acc = s[1]
                b = self.buffers[acc.buf]
                fresh = b.kind == "temp" and acc.offset == 0 and _is_contiguous(acc, self.canon) \
                    and not b.output_indices and self.canon.dim(T.prod(acc.shape)) == self.canon.dim(T.prod(b.shape))
                if fresh:  # a whole fresh buffer seen through a reshape: hand it out with the output's shape
                    b.kind = "output"
                    b.shape = tuple(acc.shape)
                    b.output_indices.append(i)
                    outs.append(("buf", b.id))
                else:
                    nb = self.new_buffer("output", v.dtype, v.shape)
                    self.add_step(CopyStep(acc, Access(nb.id, tuple(v.shape), contiguous_strides(v.shape), 0)))
                    nb.output_indices.append(i)
                    outs.append(("buf", nb.id))
            else:  # scalar constant or dim
                nb = self.new_buffer("output", v.dtype, v.shape)
                k = Kernel(domain=())
                self.add_kernel(k)
                k.stores.append((v, Access(nb.id, (), (), 0)))
                k.scalars[v.id] = s
                nb.output_indices.append(i)
                outs.append(("buf", nb.id))
            seen[v.id] = outs[-1]
        return outs


COLUMN_REDUCTIONS = ("sum", "prod", "max", "min", "any", "all")
SPLIT_CHUNKS = 16  # pieces of a split full reduction (threads take whole pieces)


def _column_shape(domain, red_axes, prim) -> bool:
    """Reduced axes all before the kept ones, the last axis kept: loop reduced axes outside, kept inside."""
    kept = [a for a in range(len(domain)) if a not in red_axes]
    return bool(red_axes) and bool(kept) and prim in COLUMN_REDUCTIONS and max(red_axes) < min(kept)


def plan(graph: Graph) -> Plan:
    """Fuse ``graph`` into kernels and steps over buffers."""
    return _Planner(graph).run()


