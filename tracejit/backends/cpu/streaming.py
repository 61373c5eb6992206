"""Streaming (non-temporal) stores for big memory-bound kernels.

A plain store to memory not in cache first reads the line it writes (read for ownership), so a kernel that
writes 3 arrays and reads 2 moves 8 arrays' worth of bytes; non-temporal stores skip that read. They also bypass
the caches, which only pays when the outputs are far larger than the last-level cache, hence the run-time
threshold. LLVM's loop vectorizer refuses non-temporal scalar stores it cannot widen to aligned vector stores,
so the loop computes a block into scratch memory on the stack (vectorized as usual, stays in L1) and a second
loop copies the block out with explicit vector stores (LLVM splits them into 8-byte non-temporal stores where
the target is not aligned).
"""
from __future__ import annotations

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np

from ...lower import scalar as scalar_table
from ...lower.plan import Kernel
from .emitter import VOID, StepEmitter
from .scalar import I32, I64, memtype, to_memory

# Elements per block. Small blocks keep reads and streaming writes in flight together (long read-only then
# write-only phases are slower).
STREAM_BLOCK = 64
STREAM_MIN_BYTES = 16 << 20  # bytes a kernel writes before its stores bypass the cache (L3 here: 32 MiB)
STREAM_MAX_MATH = 2  # math functions per element above which a kernel is compute-bound: no streamed copy


def streamable(k: Kernel, flat) -> bool:
    """A one-loop elementwise kernel whose every store is unit stride along that loop, and memory-bound: with
    more than STREAM_MAX_MATH math functions (chain20's sin, cos, tanh, log1p, exp) streaming gains nothing at run
    time and the second copy of the loop nearly doubles the optimized tier's compile time."""
    if k.red_axes or k.chunks or k.column or k.nphases != 1 or not k.stores or (not flat and len(k.domain) != 1):
        return False
    if sum(scalar_table.is_expensive(o.eqn.prim) for o in k.ops) > STREAM_MAX_MATH:
        return False
    for v, acc in k.stores:
        if v.id in k.scalars or all(d == 1 for d in acc.shape):
            return False
        if not flat and not (len(acc.shape) == 1 and isinstance(acc.strides[0], int) and acc.strides[0] == 1):
            return False
    return True


class StreamedStores:
    """The stores of a one-loop kernel that writes more than STREAM_MIN_BYTES: computed a block at a time into
    stack scratch, copied out with non-temporal stores. The kernel branches at run time between this loop and
    the plain one (a store through a pointer chosen at run time kept LLVM from vectorizing math-heavy loops), so
    only the optimized tier emits it: the quick first tier keeps its compile time."""

    def __init__(self, em: StepEmitter, plan, k: Kernel, total):
        self.em, self.plan = em, plan
        b = em.b
        self.accs = [acc for _, acc in k.stores]
        self.scratch = {}
        for acc in self.accs:
            mt = memtype(plan.buffers[acc.buf].dtype)
            self.scratch[id(acc)] = em.in_entry(lambda mt=mt: aligned_alloca(b, mt, STREAM_BLOCK))
        nbytes = sum(np.dtype(plan.buffers[acc.buf].dtype).itemsize for acc in self.accs)
        self.big = em.in_entry(lambda: b.icmp_signed(">=", b.mul(em.dim(total), ir.Constant(I64, nbytes)),
                                                      ir.Constant(I64, STREAM_MIN_BYTES)))
        self.base = None
        self.active = False
        self.nt_md = em.m.add_metadata([ir.Constant(I32, 1)])

    def store(self, acc, i, v):
        dt = self.plan.buffers[acc.buf].dtype
        v = to_memory(self.em.b, dt, v)
        b = self.em.b
        b.store(v, b.gep(self.scratch[id(acc)], [b.sub(i, self.base)], source_etype=memtype(dt), inbounds=True))

    def loop(self, lo, hi, leaf, axes_of, name):
        """``leaf(i)`` for i in [lo, hi): streamed when the kernel is big, else the plain loop."""
        em, b = self.em, self.em.b
        with b.if_else(self.big) as (then, otherwise):
            with then:
                self.active = True
                self._blocks(lo, hi, leaf, axes_of)
                self.active = False
            with otherwise:
                em.loop(lo, hi, leaf, name=name)

    def _blocks(self, lo, hi, leaf, axes_of):
        em, b = self.em, self.em.b
        nblk = b.sdiv(b.add(b.sub(hi, lo), ir.Constant(I64, STREAM_BLOCK - 1)), ir.Constant(I64, STREAM_BLOCK))

        def block(jb):
            blo = b.add(lo, b.mul(jb, ir.Constant(I64, STREAM_BLOCK)), flags=("nsw",))
            bhi = b.add(blo, ir.Constant(I64, STREAM_BLOCK))
            bhi = b.select(b.icmp_signed("<", bhi, hi), bhi, hi)
            self.base = blo
            em.loop(blo, bhi, leaf, name="s")
            for acc in self.accs:
                self._copy_out(acc, em.address(acc, {0: blo}, axes_of(acc)), b.sub(bhi, blo))
        em.loop(ir.Constant(I64, 0), nblk, block, name="sb")
        store_fence(em.m, b)

    def _copy_out(self, acc, dst, cnt):
        em, b = self.em, self.em.b
        mt = memtype(self.plan.buffers[acc.buf].dtype)
        size = np.dtype(self.plan.buffers[acc.buf].dtype).itemsize
        w = 64 // size
        vty = ir.VectorType(mt, w)
        src = self.scratch[id(acc)]
        nvec = b.sdiv(cnt, ir.Constant(I64, w))

        def vec(j):
            off = b.mul(j, ir.Constant(I64, w))
            v = b.load(b.gep(src, [off], source_etype=mt), typ=vty, align=64)
            b.store(v, b.gep(dst, [off], source_etype=mt), align=size).set_metadata("nontemporal", self.nt_md)
        em.loop(ir.Constant(I64, 0), nvec, vec, name="cv")

        def tail(j):
            b.store(b.load(b.gep(src, [j], source_etype=mt), typ=mt), b.gep(dst, [j], source_etype=mt))
        em.loop(b.mul(nvec, ir.Constant(I64, w)), cnt, tail, name="ct")


def aligned_alloca(b, ty, n):
    a = b.alloca(ty, size=ir.Constant(I64, n))
    a.align = 64
    return a


def store_fence(module, b):
    """Non-temporal stores are weakly ordered: fence them before another thread may read the outputs."""
    if llvm.get_process_triple().startswith(("x86_64", "i686", "i386")):
        fn = module.globals.get("llvm.x86.sse.sfence") or ir.Function(module, ir.FunctionType(VOID, []),
                                                                      "llvm.x86.sse.sfence")
        b.call(fn, [])
    else:
        b.fence("seq_cst")
