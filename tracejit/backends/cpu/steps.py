"""The plan steps that are not kernels: copies, matrix products (BLAS for floats) and scatter-adds."""
from __future__ import annotations

import llvmlite.ir as ir

from ...ir import types as T
from ...lower.plan import Access, CopyStep, MatmulStep, ScatterAddStep
from .emitter import StepEmitter
from .scalar import I64, CpuScalarOps, constant, from_memory, is_float, lltype, memtype, to_memory


def lower_copy(em: StepEmitter, plan, step: CopyStep):
    b = em.b
    b.position_at_end(em.body_block)
    shape = step.src.shape
    nd = len(shape)
    axes = tuple(range(nd))

    def rec(j, idx, first):
        if j == nd:
            v = em.load(step.src, idx, tuple(None if d == 1 else a for a, d in zip(axes, shape)))
            em.store(step.dst, idx, tuple(None if d == 1 else a for a, d in zip(axes, step.dst.shape)), v)
            return
        n = em.dim(shape[j])
        if first:
            lo, hi = em.start, b.select(b.icmp_signed("<", em.stop, ir.Constant(I64, 0)), n, em.stop)
        else:
            lo, hi = ir.Constant(I64, 0), n

        def body(i):
            d = dict(idx)
            d[j] = i
            rec(j + 1, d, False)
        em.loop(lo, hi, body, name=f"c{j}")
    rec(0, {}, True)
    b.ret_void()
    em.finish()


def lower_scatter_add(em: StepEmitter, plan, step: ScatterAddStep):
    b = em.b
    b.position_at_end(em.body_block)
    out = step.out
    g = step.g
    ax = step.axis
    idx_nd = len(step.idx.shape)
    dt = plan.buffers[out.buf].dtype
    ops = CpuScalarOps(em)
    flag_ptr = em.buf(plan.flag)
    # zero the output
    total = 1
    for d in out.shape:
        total = total * d
    zero = constant(dt, 0)
    em.loop(ir.Constant(I64, 0), em.dim(total),
            lambda i: em.store(Access(out.buf, (total,), (1,), 0), {0: i}, (0,), zero), name="z")
    nd = len(g.shape)

    def rec(j, idx):
        if j == nd:
            iv = em.load(step.idx, idx, tuple(None if d == 1 else ax + k for k, d in enumerate(step.idx.shape)))
            iv = em.checked_index(iv, em.dim(out.shape[ax]), flag_ptr)
            local = dict(idx)
            local["s"] = iv
            oaxes = []
            for k in range(len(out.shape)):
                if out.shape[k] == 1:
                    oaxes.append(None)
                elif k < ax:
                    oaxes.append(k)
                elif k == ax:
                    oaxes.append("s")
                else:
                    oaxes.append(k - 1 + idx_nd)
            ptr = em.address(out, local, tuple(oaxes))
            gv = em.load(g, idx, tuple(None if d == 1 else k for k, d in enumerate(g.shape)))
            cur = b.load(ptr, typ=memtype(dt))
            cur = from_memory(b, dt, cur)
            b.store(to_memory(b, dt, b.or_(cur, gv) if dt == T.BOOL else ops.op_add(dt, cur, gv)), ptr)
            return
        em.loop(ir.Constant(I64, 0), em.dim(g.shape[j]), lambda i: rec(j + 1, {**idx, j: i}), name=f"s{j}")
    rec(0, {})
    b.ret_void()
    em.finish()


def lower_matmul(em: StepEmitter, plan, step: MatmulStep):
    """C[b] = A[b] @ B[b] through BLAS gemm (floats) or a loop nest (integers)."""
    from . import blas
    b = em.b
    b.position_at_end(em.body_block)
    A, B, C = step.a, step.b, step.out
    dt = step.dtype
    nd = len(C.shape)
    nbatch = nd - 2
    M, N = C.shape[-2], C.shape[-1]
    K = A.shape[-1]

    def batch(j, idx):
        if j == nbatch:
            pa = em.address(Access(A.buf, A.shape[:nbatch], A.strides[:nbatch], A.offset), idx,
                            tuple(None if d == 1 else k for k, d in enumerate(A.shape[:nbatch])))
            pb = em.address(Access(B.buf, B.shape[:nbatch], B.strides[:nbatch], B.offset), idx,
                            tuple(None if d == 1 else k for k, d in enumerate(B.shape[:nbatch])))
            pc = em.address(Access(C.buf, C.shape[:nbatch], C.strides[:nbatch], C.offset), idx,
                            tuple(None if d == 1 else k for k, d in enumerate(C.shape[:nbatch])))
            if is_float(dt) and (N == 1 or M == 1):
                blas.emit_gemv(em, dt, pa, A, pb, B, pc, C, M, N, K, step.alpha, step.beta)
            elif is_float(dt):
                blas.emit_gemm(em, dt, pa, A, pb, B, pc, M, N, K, step.alpha, step.beta)
            else:
                int_matmul(em, dt, pa, A, pb, B, pc, C, M, N, K)
            return
        em.loop(ir.Constant(I64, 0), em.dim(C.shape[j]), lambda i: batch(j + 1, {**idx, j: i}), name=f"b{j}")
    batch(0, {})
    b.ret_void()
    em.finish()


def int_matmul(em, dt, pa, A, pb, B, pc, C, M, N, K):
    b = em.b
    ty = lltype(dt)

    def st(acc, j):
        return em.dim(acc.strides[j]) if acc.shape[j] != 1 else ir.Constant(I64, 0)
    sa0, sa1, sb0, sb1 = st(A, -2), st(A, -1), st(B, -2), st(B, -1)
    sc0, sc1 = st(C, -2), st(C, -1)
    accp = em.in_entry(lambda: b.alloca(ty))

    def row(i):
        def col(j):
            b.store(ir.Constant(ty, 0), accp)

            def kk(k):
                a = b.load(b.gep(pa, [b.add(b.mul(i, sa0), b.mul(k, sa1))], source_etype=ty), typ=ty)
                bb = b.load(b.gep(pb, [b.add(b.mul(k, sb0), b.mul(j, sb1))], source_etype=ty), typ=ty)
                b.store(b.add(b.load(accp, typ=ty), b.mul(a, bb)), accp)
            em.loop(ir.Constant(I64, 0), em.dim(K), kk, name="k")
            b.store(b.load(accp, typ=ty), b.gep(pc, [b.add(b.mul(i, sc0), b.mul(j, sc1))], source_etype=ty))
        em.loop(ir.Constant(I64, 0), em.dim(N), col, name="j")
    em.loop(ir.Constant(I64, 0), em.dim(M), row, name="i")
