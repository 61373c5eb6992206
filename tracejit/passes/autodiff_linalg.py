"""VJP rules of the library primitives (sort, LAPACK, FFT), written with IR primitives so that a gradient is an
ordinary graph (optimized, and differentiated again). Registered into ``autodiff.RULES`` by importing this module.

Conventions (as JAX's):
  * ``eigh`` and ``cholesky`` read one triangle of a symmetric input; their gradients are the symmetrized ones
    (the derivative along symmetric perturbations), as ``jax.grad`` of ``jnp.linalg.eigh``/``cholesky``.
  * ``eigh``'s and ``eig``'s eigenvector gradients assume distinct eigenvalues (they divide by their differences);
    ``eig``'s are those of real eigenvalues (complex ones stop the forward call).
  * ``svd``: singular values always; singular vectors for full_matrices=False or a square matrix, with distinct
    nonzero singular values.
  * ``qr``: mode 'reduced' of a matrix with at least as many rows as columns.
  * The FFT family is linear: the gradient is the adjoint transform (the inverse direction with the dual norm),
    cropped or zero-padded back to the input's length.
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value
from .ad_builders import _concat, _slice, _swap_last, _zeros, full
from .autodiff import NON_DIFFERENTIABLE, RULES, rule
from ..ir.ops import iota as arange


# integer and bool results
NON_DIFFERENTIABLE.update({"argsort", "argpartition", "argsort_rows", "nonzero", "trip_count"})


def _mm(a, b):
    return ops.bind("matmul", a, b)


def _u(name, *xs):
    return ops.ufunc(name, *xs)


def _c(v, dt):
    return ops.constant(np.asarray(v, dtype=dt))


def _eye_mask(n) -> Value:
    """bool (n, n): True on the diagonal."""
    i = arange(n)
    return _u("equal", ops.reshape(i, (n, 1)), ops.reshape(i, (1, n)))


def _lower_mask(n) -> Value:
    i = arange(n)
    return _u("greater_equal", ops.reshape(i, (n, 1)), ops.reshape(i, (1, n)))


def _sym(x: Value) -> Value:
    return _u("multiply", _u("add", x, _swap_last(x)), _c(0.5, x.dtype))


# ------------------------------------------------------------------------------------------------ sort
def _take_along_last(x: Value, idx: Value) -> Value:
    """``np.take_along_axis(x, idx, -1)`` for equal shapes, through one flat gather."""
    *batch, n = x.shape
    rows = T.prod(batch)
    flat = ops.reshape(x, (rows * n,))
    offs = ops.reshape(_u("multiply", arange(rows), ops.dimsize(n)), (rows, 1))
    pos = _u("add", ops.reshape(idx, (rows, n)), offs)
    return ops.reshape(ops.bind("gather", flat, pos, axis=0), tuple(x.shape))


def _move_last(v: Value, ax: int, back=False) -> Value:
    if ax == v.ndim - 1:
        return v
    perm = list(range(v.ndim))
    if back:
        perm = list(range(v.ndim - 1))
        perm.insert(ax, v.ndim - 1)
    else:
        perm = [i for i in perm if i != ax] + [ax]
    return ops.transpose(v, tuple(perm))


@rule("python_op")
def _python_op(e, g, need):
    """A user's op differentiates itself (theano.Op.grad)."""
    return e.p["op"].vjp(e, g, need)


@rule("debug_print")
def _debug_print(e, g, need):
    """An identity: the cotangent passes through (nothing is printed on the way back)."""
    return [g]


@rule("sort")
def _sort(e, g, need):
    """Each sorted position sends its cotangent back where its element came from: g[inverse permutation]."""
    x = e.inputs[0]
    ax = e.p["axis"]
    perm = ops.bind("argsort", x, axis=ax, kind="stable")
    inverse = ops.bind("argsort", perm, axis=ax, kind="stable")
    gl = _move_last(full(g, e.out.shape), ax)
    return [_move_last(_take_along_last(gl, _move_last(inverse, ax)), ax, back=True)]


@rule("cumsum")
def _cumsum(e, g, need):
    """Each element feeds every later running sum: the cotangent's running sum taken from the end."""
    gf = full(g, e.out.shape)
    ax, n = gf.ndim - 1, gf.shape[-1]
    back = _slice(ops.bind("cumsum", _slice(gf, ax, n - 1, -1, n)), ax, n - 1, -1, n)
    return [back]


@rule("complex_matmul")
def _complex_matmul(e, g, need):
    """C = A B with A = ar + i ai, B = br + i bi: the cotangent of Re C (output 0: ar br - ai bi) or Im C
    (output 1: ar bi + ai br) sent to each real part through real products with the other operand's parts."""
    ar, ai, br, bi = e.inputs
    g = full(g, e.out.shape)
    def neg(v):
        return _u("negative", v)
    if e.p["output"] == 0:
        return [_mm(g, _swap_last(br)), neg(_mm(g, _swap_last(bi))), _mm(_swap_last(ar), g),
                neg(_mm(_swap_last(ai), g))]
    return [_mm(g, _swap_last(bi)), _mm(g, _swap_last(br)), _mm(_swap_last(ai), g), _mm(_swap_last(ar), g)]


@rule("complex_linalg")
def _complex_linalg(e, g, need):
    raise TypeError(f"np.linalg.{e.p['routine']} of a complex matrix has no gradient in tracejit yet (gradients of "
                    f"complex functions are not supported); differentiate a formulation on real matrices")


@rule("partition")
def _partition(e, g, need):
    """As sort's: each position sends its cotangent back to the element numpy's argpartition puts there."""
    x = e.inputs[0]
    ax = x.ndim + e.p["axis"] if e.p["axis"] < 0 else e.p["axis"]
    perm = ops.bind("argpartition", x, kth=e.p["kth"], axis=e.p["axis"])
    inverse = ops.bind("argsort", perm, axis=ax, kind="stable")
    gl = _move_last(full(g, e.out.shape), ax)
    return [_move_last(_take_along_last(gl, _move_last(inverse, ax)), ax, back=True)]


# ------------------------------------------------------------------------------------------------ LAPACK
@rule("linalg_inv")
def _inv(e, g, need):
    y = e.out
    yt = _swap_last(y)
    return [_u("negative", _mm(_mm(yt, full(g, y.shape)), yt))]


@rule("linalg_solve")
def _solve(e, g, need):
    a, b = e.inputs
    gb = ops.bind("linalg_solve", _swap_last(a), full(g, e.out.shape))
    ga = _u("negative", _mm(gb, _swap_last(e.out))) if need[0] else None
    return [ga, gb]


@rule("slogdet")
def _slogdet(e, g, need):
    if e.p["output"] == 0:  # the sign is piecewise constant
        return [None]
    a = e.inputs[0]
    gi = ops.reshape(full(g, e.out.shape), tuple(e.out.shape) + (1, 1))
    return [_u("multiply", gi, _swap_last(ops.bind("linalg_inv", a)))]


@rule("cholesky")
def _cholesky(e, g, need):
    """A = L L^T: Abar = sym(L^-T phi(L^T Lbar) L^-1), phi the lower triangle with the diagonal halved."""
    low = e.out
    n = low.shape[-1]
    p = _mm(_swap_last(low), full(g, low.shape))
    half = _u("where", _eye_mask(n), _c(0.5, low.dtype), _c(1.0, low.dtype))
    phi = _u("where", _lower_mask(n), _u("multiply", p, half), _c(0, low.dtype))
    li = ops.bind("linalg_inv", low)
    return [_sym(_mm(_mm(_swap_last(li), phi), li))]


@rule("eigh")
def _eigh(e, g, need):
    a = e.inputs[0]
    w = ops.bind("eigh", a, UPLO=e.p["UPLO"], output=0)
    v = ops.bind("eigh", a, UPLO=e.p["UPLO"], output=1)
    if e.p["output"] == 0:  # V diag(wbar) V^T
        inner = _u("multiply", v, ops.reshape(full(g, w.shape), tuple(w.shape[:-1]) + (1, w.shape[-1])))
        return [_sym(_mm(inner, _swap_last(v)))]
    n = w.shape[-1]
    diff = _u("subtract", ops.reshape(w, tuple(w.shape[:-1]) + (1, n)), ops.reshape(w, tuple(w.shape) + (1,)))
    safe = _u("where", _eye_mask(n), _c(1, w.dtype), diff)
    f = _u("where", _eye_mask(n), _c(0, w.dtype), _u("divide", _c(1, w.dtype), safe))
    inner = _u("multiply", f, _mm(_swap_last(v), full(g, v.shape)))
    return [_sym(_mm(_mm(v, inner), _swap_last(v)))]


@rule("eig")
def _eig(e, g, need):
    """A = V diag(w) V^-1 with real w (distinct for the eigenvector part), V's columns of unit norm:
    Abar = V^-T (diag(wbar) + F o (V^T Vbar - V^T V diag(diag(V^T Vbar)))) V^T, F_ij = 1 / (w_j - w_i) off the
    diagonal: the transpose of JAX's eig JVP (dV = V (F o V^-1 dA V), then projected to keep each norm)."""
    a = e.inputs[0]
    w = ops.bind("eig", a, vectors=True, output=0)
    v = ops.bind("eig", a, vectors=True, output=1)
    vt = _swap_last(v)
    if e.p["output"] == 0:
        inner = _diag(full(g, w.shape))
    else:
        n = w.shape[-1]
        vt_gv = _mm(vt, full(g, v.shape))
        m = _u("subtract", vt_gv, _u("multiply", _mm(vt, v), _row_of_diagonal(vt_gv)))
        diff = _u("subtract", ops.reshape(w, tuple(w.shape[:-1]) + (1, n)), ops.reshape(w, tuple(w.shape) + (1,)))
        safe = _u("where", _eye_mask(n), _c(1, w.dtype), diff)
        f = _u("where", _eye_mask(n), _c(0, w.dtype), _u("divide", _c(1, w.dtype), safe))
        inner = _u("multiply", f, m)
    return [ops.bind("linalg_solve", vt, _mm(inner, vt))]


def _row_of_diagonal(m: Value) -> Value:
    """(..., n, n) -> (..., 1, n): the diagonal of each matrix as a row (it scales the columns of a product)."""
    n = m.shape[-1]
    return ops.reduce("sum", _u("where", _eye_mask(n), m, _c(0, m.dtype)), m.ndim - 2, keepdims=True)


def _diag(v: Value) -> Value:
    """(..., k) -> (..., k, k) diagonal matrices."""
    k = v.shape[-1]
    return _u("where", _eye_mask(k), ops.reshape(v, tuple(v.shape[:-1]) + (1, k)), _c(0, v.dtype))


def _svd_vectors_ct(a, u, s, vh, gu, gv):
    """Abar from the cotangents of U and of V = Vh^T (either may be None) of the reduced SVD, distinct nonzero
    singular values: the transpose of JAX's SVD JVP (F_ij = 1 / (s_j^2 - s_i^2) off the diagonal)."""
    v = _swap_last(vh)
    k = s.shape[-1]
    srow = ops.reshape(s, tuple(s.shape[:-1]) + (1, k))
    diffs = _u("multiply", _u("add", srow, _swap_last(srow)), _u("subtract", srow, _swap_last(srow)))
    f = _u("where", _eye_mask(k), _c(0, s.dtype), _u("divide", _c(1, s.dtype),
                                                     _u("where", _eye_mask(k), _c(1, s.dtype), diffs)))
    s_inv = _u("where", _u("equal", srow, 0), _c(0, s.dtype), _u("divide", _c(1, s.dtype), srow))
    pbar, extra = None, None
    m, n = a.shape[-2:]
    if gu is not None:
        g = _u("multiply", f, _mm(_swap_last(u), gu))
        pbar = _u("multiply", _u("add", g, _swap_last(g)), srow)  # (G + G^T) diag(s)
        if m != n:  # the part of Ubar outside U's span (a tall A)
            extra = _mm(_u("multiply", _u("subtract", gu, _mm(u, _mm(_swap_last(u), gu))), s_inv), vh)
    if gv is not None:
        g = _u("multiply", f, _mm(_swap_last(v), gv))
        term = _u("multiply", _swap_last(srow), _u("add", g, _swap_last(g)))  # diag(s) (G + G^T)
        pbar = term if pbar is None else _u("add", pbar, term)
        if m != n:  # the part of Vbar outside V's span (a wide A)
            ev = _mm(u, _swap_last(_u("multiply", _u("subtract", gv, _mm(v, _mm(vh, gv))), s_inv)))
            extra = ev if extra is None else _u("add", extra, ev)
    out = _mm(_mm(u, pbar), vh)
    return out if extra is None else _u("add", out, extra)


@rule("svd")
def _svd(e, g, need):
    """Singular values: U diag(sbar) V^T. Singular vectors (reduced SVD, or square A): see _svd_vectors_ct."""
    a = e.inputs[0]
    u = ops.bind("svd", a, full_matrices=False, output=0)
    s = ops.bind("svd", a, full_matrices=False, output=1)
    vh = ops.bind("svd", a, full_matrices=False, output=2)
    gv = full(g, e.out.shape)
    if e.p["output"] == 1:
        return [_mm(_mm(u, _diag(gv)), vh)]
    m, n = a.shape[-2:]
    if e.p["full_matrices"] and m != n:
        raise NotImplementedError("tracejit differentiates the singular vectors of np.linalg.svd only with "
                                  "full_matrices=False (the extra vectors of a full SVD are not unique), as JAX")
    if e.p["output"] == 0:
        return [_svd_vectors_ct(a, u, s, vh, gv, None)]
    return [_svd_vectors_ct(a, u, s, vh, None, _swap_last(gv))]


@rule("qr")
def _qr(e, g, need):
    """Reduced QR of a tall or square A: Abar = (Qbar + Q copyltu(M)) R^-T with M = R Rbar^T - Qbar^T Q, where
    copyltu mirrors the strict lower triangle onto the upper one; each output contributes its own terms."""
    a = e.inputs[0]
    m, n = a.shape[-2:]
    if e.p["mode"] != "reduced" or (isinstance(m - n, int) and m - n < 0):
        raise NotImplementedError("tracejit differentiates np.linalg.qr only in mode='reduced' of a matrix with at "
                                  "least as many rows as columns")
    q = ops.bind("qr", a, mode="reduced", output=0)
    r = ops.bind("qr", a, mode="reduced", output=1)
    gv = full(g, e.out.shape)
    if e.p["output"] == 0:
        mm, b = _u("negative", _mm(_swap_last(gv), q)), gv
    else:
        mm, b = _mm(r, _swap_last(gv)), None
    k = mm.shape[-1]
    strict = _u("where", _lower_mask(k), _u("where", _eye_mask(k), _c(0, mm.dtype), mm), _c(0, mm.dtype))
    diag = _u("where", _eye_mask(k), mm, _c(0, mm.dtype))
    sym = _u("add", _u("add", strict, _swap_last(strict)), diag)
    qs = _mm(q, sym)
    b = qs if b is None else _u("add", b, qs)
    return [_mm(b, _swap_last(ops.bind("linalg_inv", r)))]


# ------------------------------------------------------------------------------------------------ FFT
_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _fit_last(v: Value, m) -> Value:
    """``v`` cropped or zero-padded along its last axis to length ``m`` (undoing a transform's ``n=``)."""
    n = v.shape[-1]
    if n == m:
        return v
    diff = m - n
    if isinstance(diff, int):
        if diff < 0:
            return _slice(v, v.ndim - 1, 0, 1, m)
        return _concat([v, _zeros(v.dtype, tuple(v.shape[:-1]) + (diff,))], v.ndim - 1)
    keep = T.dim_min(n, m)  # lengths known only at run time: crop to min(n, m), then pad to m
    kept = _slice(v, v.ndim - 1, 0, 1, keep)
    return _concat([kept, _zeros(v.dtype, tuple(v.shape[:-1]) + (m - keep,))], v.ndim - 1)


def _cotangent_parts(g: Value, out: Value, output: int):
    """(real, imaginary) of the complex cotangent of one part of a transform's result."""
    g = full(g, out.shape)
    zero = _zeros(g.dtype, g.shape)
    return (g, zero) if output == 0 else (zero, g)


@rule("fft")
def _fft(e, g, need):
    re, _ = e.inputs
    wr, wi = _cotangent_parts(g, e.out, e.p["output"])
    p = dict(n=e.out.shape[-1], inverse=not e.p["inverse"], norm=_DUAL[e.p["norm"]])
    m = re.shape[-1]
    return [_fit_last(ops.bind("fft", wr, wi, output=k, **p), m) for k in range(2)]


def _bin_weights(bins, n, inner, edge) -> Value:
    """Per-bin weights of a real transform of length ``n``: ``edge`` for the DC bin and (n even) the Nyquist bin,
    which appear once in the full spectrum, ``inner`` for the others, which appear twice."""
    j = arange(bins)
    once = _u("logical_or", _u("equal", j, 0), _u("equal", _u("multiply", j, 2), ops.dimsize(n)))
    return _u("where", once, _c(edge, np.float64), _c(inner, np.float64))


@rule("rfft")
def _rfft(e, g, need):
    x = e.inputs[0]
    n = e.p["n"]
    wr, wi = _cotangent_parts(g, e.out, e.p["output"])
    c = ops.convert(_bin_weights(e.out.shape[-1], n, 0.5, 1.0), wr.dtype)
    y = ops.bind("irfft", _u("multiply", wr, c), _u("multiply", wi, c), n=n, norm=_DUAL[e.p["norm"]])
    return [_fit_last(y, x.shape[-1])]


@rule("irfft")
def _irfft(e, g, need):
    re, _ = e.inputs
    n = e.p["n"]
    gf = full(g, e.out.shape)
    p = dict(n=n, norm=_DUAL[e.p["norm"]])
    parts = [ops.bind("rfft", gf, output=k, **p) for k in range(2)]
    c = ops.convert(_bin_weights(parts[0].shape[-1], n, 2.0, 1.0), gf.dtype)
    return [_fit_last(_u("multiply", v, c), re.shape[-1]) for v in parts]


__all__ = ["RULES"]
