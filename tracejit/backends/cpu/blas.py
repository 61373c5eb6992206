"""matmul through an optimized BLAS: the OpenBLAS numpy ships when it is there, else scipy's.

numpy's wheels bundle an ILP64 OpenBLAS (64-bit integer arguments, symbols ``scipy_sgemm_64_``) that numpy's own
matmul already uses. Calling the same library keeps one BLAS thread pool in the process (two OpenBLAS pools
spin against each other on a small machine) and runs at numpy's speed (numpy's bundled build was 5-7% faster on
the MLP's gemms than scipy's here). Without it (other platforms, numpy built against another BLAS) the routines
come from ``scipy.linalg.cython_blas`` (LP64). ``TRACEJIT_BLAS=scipy`` or ``=numpy`` forces the choice.

The addresses are registered as external symbols (``tj_dgemm``, ``tj_sgemm``, ...), so the IR names a symbol
rather than an address and compiled code stays cacheable on disk; ``fingerprint()`` names the provider and its
integer width, which change the IR, for the disk cache's key.
"""
from __future__ import annotations

import ctypes
import glob
import os
from typing import NamedTuple

import llvmlite.ir as ir
import numpy as np

ROUTINES = ("dgemm", "sgemm", "dgemv", "sgemv")
_PROVIDER = None


class Provider(NamedTuple):
    """Where the BLAS routines come from: a name, the width of their integer arguments, routine -> address."""
    name: str
    int_bits: int
    addresses: dict


def _capsule_address(capsule):
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
    get_ptr.restype = ctypes.c_void_p
    get_ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get_ptr(capsule, get_name(capsule))


def _numpy_openblas_path():
    """The ILP64 OpenBLAS bundled in numpy's wheel (``numpy.libs/`` on Linux, ``numpy/.dylibs/`` on macOS)."""
    here = os.path.dirname(np.__file__)
    for folder in (os.path.join(os.path.dirname(here), "numpy.libs"), os.path.join(here, ".dylibs")):
        for path in sorted(glob.glob(os.path.join(folder, "libscipy_openblas64_*"))):
            return path
    return None


def _numpy_provider():
    path = _numpy_openblas_path()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)  # already loaded by numpy: the same handle, no second copy
        addresses = {n: ctypes.cast(getattr(lib, f"scipy_{n}_64_"), ctypes.c_void_p).value for n in ROUTINES}
    except (OSError, AttributeError):
        return None
    return Provider(f"numpy's OpenBLAS ({os.path.basename(path)})", 64, addresses)


def _scipy_provider():
    from scipy.linalg import cython_blas
    capi = cython_blas.__pyx_capi__
    return Provider("scipy.linalg.cython_blas", 32, {n: _capsule_address(capi[n]) for n in ROUTINES})


def _choice():
    want = os.environ.get("TRACEJIT_BLAS", "").strip().lower()
    if want not in ("", "numpy", "scipy"):
        raise ValueError(f"TRACEJIT_BLAS={want!r}: use 'numpy' (numpy's bundled OpenBLAS) or 'scipy'")
    return want


def provider() -> Provider:
    """The BLAS kernels call, chosen once per process."""
    global _PROVIDER
    if _PROVIDER is None:
        want = _choice()
        found = _numpy_provider() if want in ("", "numpy") else None
        if found is None and want == "numpy":
            raise RuntimeError("TRACEJIT_BLAS=numpy, but numpy's bundled OpenBLAS was not found "
                               "(numpy built against another BLAS?): unset it to use scipy's")
        _PROVIDER = found or _scipy_provider()
    return _PROVIDER


def fingerprint() -> str:
    """Which BLAS ABI compiled code calls (for the disk cache's key); imports scipy only if kernels would call it."""
    if _PROVIDER is None and (_choice() == "scipy" or _numpy_openblas_path() is None):
        return "scipy.linalg.cython_blas/i32"
    p = provider()
    return f"{p.name}/i{p.int_bits}"


def symbols() -> dict:
    """External symbol name -> address for the BLAS routines kernels call."""
    return {f"tj_{n}": a for n, a in provider().addresses.items()}


def _int_type():
    return ir.IntType(provider().int_bits)


def _narrow(b, v, INT):
    """An i64 length as the BLAS's integer type (i64 passes through)."""
    return v if INT.width == 64 else b.trunc(v, INT)


def emit_gemv(em, dt, pa, A, pb, B, pc, C, M, N, K, alpha=1.0, beta=0.0):
    """A matrix-vector product (N == 1 or M == 1) through gemv, which BLAS runs several times faster than gemm."""
    from .scalar import I8, I64, PTR, lltype
    b = em.b
    fty = lltype(dt)
    INT = _int_type()
    name = "tj_dgemv" if np.dtype(dt) == np.float64 else "tj_sgemv"
    fn = em.m.globals.get(name) or ir.Function(em.m, ir.FunctionType(ir.VoidType(), [PTR] * 11), name)
    if N == 1:  # y (M) = A (MxK) x (K)
        mat, pm, pv = A, pa, pb
        rows, cols = M, K
        vstride, ystride = B.strides[-2] if K != 1 else 1, C.strides[-2] if M != 1 else 1
    else:  # y (N) = B^T (NxK) x (K): x is A's only row
        mat = type(B)(B.buf, B.shape[:-2] + (B.shape[-1], B.shape[-2]), B.strides[:-2] + (B.strides[-1], B.strides[-2]),
                      B.offset)
        pm, pv = pb, pa
        rows, cols = N, K
        vstride, ystride = A.strides[-1] if K != 1 else 1, C.strides[-1] if N != 1 else 1
    s_r, s_c = mat.strides[-2], mat.strides[-1]
    one64 = ir.Constant(I64, 1)

    def dim(d):
        return em.dim(d) if not (isinstance(d, int) and d == 0) else ir.Constant(I64, 0)

    if mat.shape[-1] == 1 or (isinstance(s_c, int) and s_c == 1):  # row-major: the Fortran matrix is mat^T
        trans, fm, fn_, ld = "T", em.dim(cols), em.dim(rows), dim(s_r)
        ld_min = em.dim(cols)
    else:  # column-major
        trans, fm, fn_, ld = "N", em.dim(rows), em.dim(cols), dim(s_c)
        ld_min = em.dim(rows)

    def slot(ty, val):
        p = em.in_entry(lambda: b.alloca(ty))
        b.store(val, p)
        return p

    def pos(v):
        v = em.dim(v) if not isinstance(v, ir.Value) else v
        return _narrow(b, b.select(b.icmp_signed(">", v, one64), v, one64), INT)
    ld = b.select(b.icmp_signed(">", ld, ld_min), ld, ld_min)
    args = [slot(I8, ir.Constant(I8, ord(trans))), slot(INT, _narrow(b, fm, INT)), slot(INT, _narrow(b, fn_, INT)),
            slot(fty, ir.Constant(fty, alpha)), pm, slot(INT, pos(ld)), pv, slot(INT, pos(vstride)),
            slot(fty, ir.Constant(fty, beta)), pc, slot(INT, pos(ystride))]
    zero_out = b.icmp_signed("==", em.dim(K), ir.Constant(I64, 0))
    with b.if_else(zero_out) as (then, otherwise):
        with then:  # an empty contraction: BLAS may leave y untouched, numpy gives zeros
            em.loop(ir.Constant(I64, 0), em.dim(rows),
                    lambda i: b.store(ir.Constant(fty, 0.0),
                                      b.gep(pc, [b.mul(i, em.dim(ystride) if not isinstance(ystride, int)
                                                       else ir.Constant(I64, ystride))], source_etype=fty)),
                    name="z")
        with otherwise:
            with b.if_then(b.icmp_signed(">", em.dim(rows), ir.Constant(I64, 0))):
                b.call(fn, args)


def emit_gemm(em, dt, pa, A, pb, B, pc, M, N, K, alpha=1.0, beta=0.0):
    """Row-major C (MxN) = A (MxK) @ B (KxN) as column-major C^T = B^T A^T in one Fortran gemm call."""
    from .scalar import I8, I64, PTR, lltype
    b = em.b
    fty = lltype(dt)
    INT = _int_type()
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
        return _narrow(b, b.select(b.icmp_signed(">", ld, one), ld, one), INT)

    def slot(ty, val):
        p = em.in_entry(lambda: b.alloca(ty))
        b.store(val, p)
        return p
    m_ = slot(INT, _narrow(b, em.dim(N), INT))
    n_ = slot(INT, _narrow(b, em.dim(M), INT))
    k_ = slot(INT, _narrow(b, em.dim(K), INT))
    ldb_ = slot(INT, fix_ld(ldb, rb))
    lda_ = slot(INT, fix_ld(lda, ra))
    ldc_ = slot(INT, fix_ld(em.dim(N), ir.Constant(I64, 1)))
    alpha = slot(fty, ir.Constant(fty, alpha))
    beta = slot(fty, ir.Constant(fty, beta))
    tb_ = slot(I8, ir.Constant(I8, ord(tb)))
    ta_ = slot(I8, ir.Constant(I8, ord(ta)))
    with b.if_then(b.and_(b.icmp_signed(">", em.dim(M), ir.Constant(I64, 0)),
                          b.icmp_signed(">", em.dim(N), ir.Constant(I64, 0)))):
        b.call(fn, [tb_, ta_, m_, n_, k_, alpha, pb, ldb_, pa, lda_, beta, pc, ldc_])
