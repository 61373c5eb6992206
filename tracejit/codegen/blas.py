"""matmul through the optimized BLAS that scipy ships (``scipy.linalg.cython_blas``).

The gemm addresses come from scipy's PyCapsules and are registered as external symbols (``tj_dgemm``,
``tj_sgemm``), so the IR names a symbol rather than an address and compiled code stays cacheable on disk.
"""
from __future__ import annotations

import ctypes

import llvmlite.ir as ir
import numpy as np

_SYMBOLS = None


def _capsule_address(capsule):
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
    get_ptr.restype = ctypes.c_void_p
    get_ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get_ptr(capsule, get_name(capsule))


def symbols() -> dict:
    """External symbol name -> address for the BLAS routines kernels call."""
    global _SYMBOLS
    if _SYMBOLS is None:
        from scipy.linalg import cython_blas
        capi = cython_blas.__pyx_capi__
        _SYMBOLS = {"tj_dgemm": _capsule_address(capi["dgemm"]), "tj_sgemm": _capsule_address(capi["sgemm"])}
    return _SYMBOLS


def emit_gemm(em, dt, pa, A, pb, B, pc, M, N, K):
    """Row-major C (MxN) = A (MxK) @ B (KxN) as column-major C^T = B^T A^T in one Fortran gemm call."""
    from .llvm import F32, F64, I8, I32, I64, PTR, lltype
    b = em.b
    fty = lltype(dt)
    name = "tj_dgemm" if np.dtype(dt) == np.float64 else "tj_sgemm"
    fn = em.m.globals.get(name) or ir.Function(em.m, ir.FunctionType(ir.VoidType(), [PTR] * 13), name)

    def layout(acc, rows_dim, cols_dim):
        """(trans, ld) for a row-major-indexed operand: unit stride along its columns -> 'N'."""
        s_r, s_c = acc.strides[-2], acc.strides[-1]
        if acc.shape[-1] == 1 or (isinstance(s_c, int) and s_c == 1):
            ld = em.dim(s_r) if not (isinstance(s_r, int) and s_r == 0) else ir.Constant(I64, 0)
            rows = em.dim(cols_dim)  # column-major rows of the stored matrix
            return "N", ld, rows
        ld = em.dim(s_c) if not (isinstance(s_c, int) and s_c == 0) else ir.Constant(I64, 0)
        return "T", ld, em.dim(rows_dim)

    ta, lda, ra = layout(A, M, K)
    tb, ldb, rb = layout(B, K, N)

    def fix_ld(ld, rows):
        one = ir.Constant(I64, 1)
        ld = b.select(b.icmp_signed(">", ld, rows), ld, rows)
        return b.trunc(b.select(b.icmp_signed(">", ld, one), ld, one), I32)

    def slot(ty, val):
        p = em._in_entry(lambda: b.alloca(ty))
        b.store(val, p)
        return p
    m_ = slot(I32, b.trunc(em.dim(N), I32))
    n_ = slot(I32, b.trunc(em.dim(M), I32))
    k_ = slot(I32, b.trunc(em.dim(K), I32))
    ldb_ = slot(I32, fix_ld(ldb, rb))
    lda_ = slot(I32, fix_ld(lda, ra))
    ldc_ = slot(I32, fix_ld(em.dim(N), ir.Constant(I64, 1)))
    alpha = slot(fty, ir.Constant(fty, 1.0))
    beta = slot(fty, ir.Constant(fty, 0.0))
    tb_ = slot(I8, ir.Constant(I8, ord(tb)))
    ta_ = slot(I8, ir.Constant(I8, ord(ta)))
    with b.if_then(b.and_(b.icmp_signed(">", em.dim(M), ir.Constant(I64, 0)),
                          b.icmp_signed(">", em.dim(N), ir.Constant(I64, 0)))):
        b.call(fn, [tb_, ta_, m_, n_, k_, alpha, pb, ldb_, pa, lda_, beta, pc, ldc_])
    _ = (F32, F64)
