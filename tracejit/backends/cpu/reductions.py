"""Accumulators of the reductions inside a kernel (sum, prod, max, min, any, all, argmax, argmin)."""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

from ...ir import types as T
from .emitter import StepEmitter
from .scalar import I64, CpuScalarOps, constant, is_float, lltype

# A float sum adds SUM_BLOCK elements into a block accumulator, then the block into the total: rounding error
# grows with the block length instead of the whole length, and the inner loop still vectorizes.
SUM_BLOCK = 1024

REDUCTION_INIT = {
    "sum": lambda dt: 0, "prod": lambda dt: 1, "any": lambda dt: False, "all": lambda dt: True,
    "max": lambda dt: -np.inf if is_float(dt) else (False if dt == T.BOOL else np.iinfo(dt).min),
    "min": lambda dt: np.inf if is_float(dt) else (True if dt == T.BOOL else np.iinfo(dt).max),
    "argmax": lambda dt: -np.inf if is_float(dt) else (False if dt == T.BOOL else np.iinfo(dt).min),
    "argmin": lambda dt: np.inf if is_float(dt) else (True if dt == T.BOOL else np.iinfo(dt).max),
}


class Reduction:
    """Accumulator state of one reduction inside a kernel phase."""

    def __init__(self, em: StepEmitter, ops: CpuScalarOps, kop):
        self.em, self.ops, self.kop = em, ops, kop
        e = kop.eqn
        self.prim = e.prim
        self.in_dt = e.inputs[0].dtype
        self.out_dt = e.out.dtype
        # float32 sums accumulate in float64 (as accurate as numpy's pairwise summation, and still vectorized);
        # float16 ones in float32 as numpy's, rounded once at the end; max/min of float16 compare exactly in float32
        self.acc_dt = self.out_dt
        if self.prim in ("sum", "prod") and self.out_dt == T.FLOAT32:
            self.acc_dt = T.FLOAT64
        if self.out_dt == T.FLOAT16:
            self.acc_dt = T.FLOAT32
        if self.prim in ("argmax", "argmin"):
            self.acc_dt = T.FLOAT32 if self.in_dt == T.FLOAT16 else self.in_dt
        self.blocked = self.prim == "sum" and is_float(self.acc_dt)
        b = em.b
        ty = lltype(self.acc_dt)

        def allocas():
            acc = b.alloca(ty)
            blk = b.alloca(ty) if self.blocked else None
            idx = b.alloca(I64) if self.prim in ("argmax", "argmin") else None
            return acc, blk, idx
        self.acc, self.blk, self.idx = em.in_entry(allocas)

    def init(self):
        b = self.em.b
        b.store(constant(self.acc_dt, REDUCTION_INIT[self.prim](self.acc_dt)), self.acc)
        if self.idx is not None:
            b.store(ir.Constant(I64, 0), self.idx)

    def init_block(self):
        if self.blocked:
            self.em.b.store(constant(self.acc_dt, 0.0), self.blk)

    def flush_block(self):
        if self.blocked:
            b = self.em.b
            ty = lltype(self.acc_dt)
            b.store(b.fadd(b.load(self.acc, typ=ty), b.load(self.blk, typ=ty)), self.acc)

    def update(self, v, counter):
        b, ops = self.em.b, self.ops
        ty = lltype(self.acc_dt)
        p = self.prim
        if p in ("argmax", "argmin"):
            best = b.load(self.acc, typ=ty)
            dt = self.acc_dt
            if is_float(dt):
                better = b.fcmp_ordered(">" if p == "argmax" else "<", v, best)
                better = b.or_(better, b.and_(ops.isnan(dt, v), b.not_(ops.isnan(dt, best))))
            else:
                better = ops.compare(dt, ">" if p == "argmax" else "<", v, best)
            b.store(b.select(better, v, best), self.acc)
            b.store(b.select(better, counter, b.load(self.idx, typ=I64)), self.idx)
            return
        target = self.blk if self.blocked else self.acc
        b.store(self.combine(b.load(target, typ=ty), v), target)

    def combine(self, cur, v):
        """cur (of the accumulator dtype) combined with one input element v."""
        b, ops = self.em.b, self.ops
        p = self.prim
        v = ops.convert(v, self.in_dt, self.acc_dt) if p not in ("any", "all") else ops.truth(self.in_dt, v)
        if p == "sum":
            new = b.fadd(cur, v, flags=("reassoc",)) if is_float(self.acc_dt) else ops.op_add(self.acc_dt, cur, v)
        elif p == "prod":
            new = b.fmul(cur, v, flags=("reassoc",)) if is_float(self.acc_dt) else ops.op_multiply(self.acc_dt, cur, v)
        elif p == "max":
            new = ops.minmax(self.acc_dt, cur, v, True)
        elif p == "min":
            new = ops.minmax(self.acc_dt, cur, v, False)
        elif p == "any":
            new = b.or_(cur, v)
        else:
            new = b.and_(cur, v)
        return new

    def result(self):
        b = self.em.b
        if self.prim in ("argmax", "argmin"):
            return b.load(self.idx, typ=I64)
        v = b.load(self.acc, typ=lltype(self.acc_dt))
        return self.ops.convert(v, self.acc_dt, self.out_dt)

