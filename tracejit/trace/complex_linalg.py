"""np.linalg on complex traced matrices: solve, inv, det, slogdet, eig and eigvals call LAPACK's complex routines
(through numpy.linalg, as the real ones) on the complex array rebuilt from its two parts, and hand back the parts
of each result (the ``complex_linalg`` library primitive; every result of one call comes from one LAPACK run).

A complex matrix is also the way to the complex spectrum of a real one: eig of a real matrix fixes a real result
dtype when it traces, but a complex matrix's eigenvalues are complex whatever they are, as numpy's.
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from .complex_array import check_complex_dtype, make, part_dtype, promote
from .complex_functions import COMPLEX_IMPLS, operand, parts_in
from .numpy_results import EigResult, SlogdetResult

LinAlgError = np.linalg.LinAlgError


def _parts(z, what, dt=None):
    """(re, im, dtype) of a complex (or real) stack of matrices in LAPACK's dtypes (complex64 or complex128)."""
    o = operand(z)
    dt = np.dtype(dt) if dt is not None else np.result_type(o.dtype, np.complex64) if o.dtype.kind in "fc" \
        else np.dtype(np.complex128)
    re, im = parts_in(o, part_dtype(check_complex_dtype(dt, f"np.linalg.{what}'s result")))
    re = ops.as_value(re._tj_value if hasattr(re, "_tj_value") else re)
    im = ops.broadcast_to(ops.constant(0, re.dtype), re.shape) if im is None else \
        ops.as_value(im._tj_value if hasattr(im, "_tj_value") else im)
    return re, im, dt


def _square(re, what):
    if re.ndim < 2:
        raise LinAlgError(f"{re.ndim}-dimensional array given. Array must be at least two-dimensional")
    m, n = re.shape[-2:]
    if isinstance(m, int) and isinstance(n, int):
        if m != n:
            raise LinAlgError("Last 2 dimensions of the array must be square")
    elif m != n:
        ops.add_check(ops.ufunc("not_equal", ops.dimsize(m), ops.dimsize(n)), LinAlgError,
                      "Last 2 dimensions of the array must be square")


def _call(routine, parts, count, dt):
    """The ``count`` complex results of one routine call, as traced complex arrays of dtype ``dt``."""
    from .tracer import wrap
    outs = [wrap(ops.bind("complex_linalg", *parts, routine=routine, output=k)) for k in range(2 * count)]
    return [make(outs[2 * k], outs[2 * k + 1], dt) for k in range(count)]


def _unary(routine, count=1):
    def f(a):
        re, im, dt = _parts(a, routine)
        _square(re, routine)
        res = _call(routine, (re, im), count, dt)
        return res[0] if count == 1 else res
    return f


COMPLEX_IMPLS["inv"] = _unary("inv")
COMPLEX_IMPLS["det"] = _unary("det")
COMPLEX_IMPLS["eigvals"] = _unary("eigvals")


def _eig(a):
    return EigResult(*_unary("eig", 2)(a))


def _slogdet(a):
    re, im, dt = _parts(a, "slogdet")
    _square(re, "slogdet")
    sign, logdet = _call("slogdet", (re, im), 2, dt)
    return SlogdetResult(sign, logdet.real)


def _solve(a, b):
    """numpy 2's rule as for real matrices: ``b`` is a vector only when it is 1-D."""
    dt, _ = promote(operand(a), operand(b))
    dt = np.result_type(dt, np.complex64)
    ar, ai, dt = _parts(a, "solve", dt)
    br, bi, _ = _parts(b, "solve", dt)
    _square(ar, "solve")
    vector = br.ndim == 1
    if vector:
        br, bi = (ops.reshape(p, (p.shape[0], 1)) for p in (br, bi))
    batch = T.broadcast_shapes(ar.shape[:-2], br.shape[:-2], constraints=ops.current().constraints)
    n = ar.shape[-1]
    if br.shape[-2] != n:
        ops.current().constraints.append(Constraint.same(
            br.shape[-2], n, "solve: Input operand 1 has a mismatch in its core dimension 0 (size {a} is different "
            "from {b})"))
    ar, ai = (ops.broadcast_to(p, batch + tuple(p.shape[-2:])) for p in (ar, ai))
    br, bi = (ops.broadcast_to(p, batch + (n, p.shape[-1])) for p in (br, bi))
    (x,) = _call("solve", (ar, ai, br, bi), 1, dt)
    return np.reshape(x, batch + (n,)) if vector else x


COMPLEX_IMPLS["eig"] = _eig
COMPLEX_IMPLS["slogdet"] = _slogdet
COMPLEX_IMPLS["solve"] = _solve
