"""np.linalg on traced values: LAPACK's routines (through numpy.linalg) are library primitives (inv, solve,
cholesky, eigh, eig, svd, qr, slogdet), and the rest is built on them: det from slogdet, lstsq, pinv and matrix_rank
from the SVD, the spectral and nuclear norms from singular values, matrix_power from matmul. Stacks of matrices
broadcast as numpy's do; a singular or non-positive-definite matrix raises numpy's LinAlgError when the call runs.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from ..ir.graph import Value
from .numpy_api import IMPLS, impl, power_by_squaring
from .numpy_more import _u, iota
from .numpy_results import EighResult, EigResult, QRResult, SlogdetResult, SVDResult

LinAlgError = np.linalg.LinAlgError


def _as_float(a: Value) -> Value:
    """LAPACK computes in float32 or float64: other dtypes are converted as numpy.linalg does (to float64)."""
    return a if a.dtype.kind == "f" else ops.convert(a, T.FLOAT64)


def _stack(a, what) -> Value:
    a = _as_float(ops.as_value(a))
    if a.ndim < 2:
        raise LinAlgError(f"{a.ndim}-dimensional array given. Array must be at least two-dimensional")
    return a


def _square(a, what) -> Value:
    a = _stack(a, what)
    m, n = a.shape[-2:]
    if isinstance(m, int) and isinstance(n, int):
        if m != n:
            raise LinAlgError("Last 2 dimensions of the array must be square")
    elif m != n:  # numpy's exception type (a shape constraint would raise a plain ValueError)
        ops.add_check(_u("not_equal", ops.dimsize(m), ops.dimsize(n)), LinAlgError,
                      "Last 2 dimensions of the array must be square")
    return a


def _mT(x: Value) -> Value:
    """The matrix transpose of a stack (numpy's ``.mT``)."""
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return ops.transpose(x, perm)


def _matmul(a, b):
    return IMPLS["matmul"](a, b)


@impl("inv")
def inv(a):
    return ops.bind("linalg_inv", _square(a, "inv"))


@impl("solve")
def solve(a, b):
    """numpy 2's rule: ``b`` is a vector only when it is 1-D; otherwise a stack of (M, K) matrices."""
    a, b = _square(a, "solve"), _as_float(ops.as_value(b))
    dt = np.result_type(a.dtype, b.dtype)
    a, b = ops.convert(a, dt) if a.dtype != dt else a, ops.convert(b, dt) if b.dtype != dt else b
    vector = b.ndim == 1
    if vector:
        b = ops.reshape(b, (b.shape[0], 1))
    batch = T.broadcast_shapes(a.shape[:-2], b.shape[:-2], constraints=ops.current().constraints)
    n = a.shape[-1]
    if b.shape[-2] != n:
        ops.current().constraints.append(Constraint.same(
            b.shape[-2], n, "solve: Input operand 1 has a mismatch in its core dimension 0 (size {a} is different "
            "from {b})"))
    a = ops.broadcast_to(a, batch + tuple(a.shape[-2:]))
    b = ops.broadcast_to(b, batch + (n, b.shape[-1]))
    x = ops.bind("linalg_solve", a, b)
    return ops.reshape(x, batch + (n,)) if vector else x


@impl("cholesky")
def cholesky(a, /, *, upper=False):
    low = ops.bind("cholesky", _square(a, "cholesky"))
    return _mT(low) if upper else low


@impl("slogdet")
def slogdet(a):
    a = _square(a, "slogdet")
    return SlogdetResult(ops.bind("slogdet", a, output=0), ops.bind("slogdet", a, output=1))


@impl("det")
def det(a):
    """sign * exp(log|det|): one LU factorization (LAPACK getrf), as numpy's det."""
    sign, logdet = slogdet(a)
    return _u("multiply", sign, _u("exp", logdet))


def _uplo(UPLO):
    if UPLO not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    return UPLO


@impl("eigh")
def eigh(a, UPLO="L"):
    a = _square(a, "eigh")
    uplo = _uplo(UPLO)
    return EighResult(ops.bind("eigh", a, UPLO=uplo, output=0), ops.bind("eigh", a, UPLO=uplo, output=1))


@impl("eigvalsh")
def eigvalsh(a, UPLO="L"):
    return ops.bind("eigh", _square(a, "eigvalsh"), UPLO=_uplo(UPLO), output=0)


@impl("eig")
def eig(a):
    """numpy.linalg.eig of a real matrix whose eigenvalues are real: real eigenvalues and unit eigenvectors, as
    numpy returns them. A matrix with complex eigenvalues raises UnsupportedError when the call runs: numpy's
    result dtype depends on the values (complex exactly when some eigenvalue is), and a trace fixes its dtypes
    before any value is known."""
    a = _square(a, "eig")
    return EigResult(ops.bind("eig", a, vectors=True, output=0), ops.bind("eig", a, vectors=True, output=1))


@impl("eigvals")
def eigvals(a):
    """numpy.linalg.eigvals (LAPACK without eigenvectors), real eigenvalues only as ``eig``."""
    return ops.bind("eig", _square(a, "eigvals"), vectors=False, output=0)


@impl("svd")
def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    a = _stack(a, "svd")
    full = bool(full_matrices) and compute_uv
    if not compute_uv:
        return ops.bind("svd", a, full_matrices=False, output=1)
    return SVDResult(*(ops.bind("svd", a, full_matrices=full, output=k) for k in range(3)))


@impl("qr")
def qr(a, mode="reduced"):
    if mode not in ("reduced", "complete", "r"):
        if mode in ("raw", "full", "economic"):
            raise UnsupportedError(f"np.linalg.qr(mode={mode!r}) is not supported by tracejit; use 'reduced'")
        raise ValueError(f"Unrecognized mode '{mode}'")
    a = _stack(a, "qr")
    lapack_mode = "complete" if mode == "complete" else "reduced"
    r = ops.bind("qr", a, mode=lapack_mode, output=1)
    return r if mode == "r" else QRResult(ops.bind("qr", a, mode=lapack_mode, output=0), r)


def _eps(dt) -> float:
    return float(np.finfo(dt).eps)


def _expand(v: Value, k=1) -> Value:
    return ops.reshape(v, tuple(v.shape) + (1,) * k)


@impl("pinv")
def pinv(a, rcond=None, hermitian=False, *, rtol=None):
    """V diag(1/s) U^T over the singular values above ``rcond * max(s)`` (numpy's cutoff)."""
    a = _stack(a, "pinv")
    if rcond is None:
        rcond = 1e-15 if rtol is None else rtol
    u, s, vh = svd(a, full_matrices=False)
    cutoff = _u("multiply", ops.as_value(rcond), ops.reduce("max", s, s.ndim - 1, keepdims=True))
    s_inv = _u("where", _u("greater", s, cutoff), _u("divide", 1, s), ops.constant(0, s.dtype))
    return _matmul(_mT(vh), _u("multiply", _expand(s_inv), _mT(u)))


@impl("matrix_rank")
def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    A = _as_float(ops.as_value(A))
    if A.ndim < 2:
        return ops.convert(ops.reduce("any", _u("not_equal", A, 0)), T.INT64)
    s = svd(A, compute_uv=False)
    if tol is None:
        m, n = A.shape[-2:]
        big = ops.convert(ops.dimsize(T.dim_max(m, n)), s.dtype)
        scale = _u("multiply", big, _eps(s.dtype)) if rtol is None else ops.as_value(rtol)
        tol = _u("multiply", ops.reduce("max", s, s.ndim - 1, keepdims=True), scale)
    else:
        tol = _expand(ops.as_value(tol)) if ops.as_value(tol).ndim else ops.as_value(tol)
    return ops.reduce("sum", ops.convert(_u("greater", s, tol), T.INT64), s.ndim - 1)


@impl("lstsq")
def lstsq(a, b, rcond=None):
    """(x, residuals, rank, s) of numpy.linalg.lstsq through the SVD. ``residuals`` has numpy's shape for a
    full-rank tall ``a`` (known while tracing when its lengths are); numpy returns it empty when the rank
    turns out lower, which a traced program cannot know: there it holds the sum of squared residuals anyway."""
    a, b = _stack(a, "lstsq"), _as_float(ops.as_value(b))
    if a.ndim != 2:
        raise LinAlgError(f"{a.ndim}-dimensional array given. Array must be two-dimensional")
    vector = b.ndim == 1
    b2 = ops.reshape(b, (b.shape[0], 1)) if vector else b
    m, n = a.shape
    if rcond is None:
        rcond = _eps(a.dtype) * T.dim_max(m, n) if isinstance(T.dim_max(m, n), int) else None
    u, s, vh = svd(a, full_matrices=False)
    rc = ops.as_value(rcond) if rcond is not None else _u(
        "multiply", ops.convert(ops.dimsize(T.dim_max(m, n)), s.dtype), _eps(s.dtype))
    keep = _u("greater", s, _u("multiply", rc, ops.reduce("max", s, 0, keepdims=True)))
    s_inv = _u("where", keep, _u("divide", 1, s), ops.constant(0, s.dtype))
    x = _matmul(_mT(vh), _u("multiply", _expand(s_inv), _matmul(_mT(u), b2)))
    rank = ops.convert(ops.reduce("sum", ops.convert(keep, T.INT64), 0), T.INT32)  # numpy's rank is an int32
    tall = isinstance(m, int) and isinstance(n, int) and m > n or (not isinstance(m - n, int) and m != n)
    if tall:
        r = _u("subtract", _matmul(a, x), b2)
        resid = ops.reduce("sum", _u("square", r), 0)
    else:
        resid = ops.constant(np.zeros(0, x.dtype))
    if vector:
        x = ops.reshape(x, (n,))
    return x, resid, rank, s


def singular_value_norm(x: Value, ord, axes, keepdims) -> Value:
    """``np.linalg.norm(x, ord, axis=axes)`` for ord 2, -2 and 'nuc' (the matrix axes moved last)."""
    rest = tuple(i for i in range(x.ndim) if i not in axes)
    xt = ops.transpose(_as_float(x), rest + tuple(axes))
    s = svd(xt, compute_uv=False)
    red = {2: "max", -2: "min", "nuc": "sum"}[ord]
    out = ops.reduce(red, s, s.ndim - 1)
    if keepdims:
        shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        out = ops.reshape(out, shape)
    return out


@impl("matrix_power")
def matrix_power(a, n):
    """Repeated squaring with matmul; a negative power inverts first (numpy's order)."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError("exponent must be an integer")
    a = ops.as_value(a)
    if a.ndim < 2:
        raise LinAlgError(f"{a.ndim}-dimensional array given. Array must be at least two-dimensional")
    if n == 0:
        eye = _u("equal", _expand(iota(a.shape[-1])), iota(a.shape[-1]))
        return ops.broadcast_to(ops.convert(eye, a.dtype), tuple(a.shape))
    if n < 0:
        a, n = inv(a), -int(n)
    return power_by_squaring(a, int(n), _matmul)


__all__ = ["inv", "solve", "cholesky", "slogdet", "det", "eigh", "eigvalsh", "eig", "eigvals", "svd", "qr", "pinv",
           "matrix_rank", "lstsq", "singular_value_norm", "matrix_power"]

from . import complex_linalg  # noqa: E402,F401  (the complex matrices' forms, registered into COMPLEX_IMPLS)
