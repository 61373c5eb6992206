"""The regularized incomplete gamma and beta functions on traced values (scipy.special's ``gammainc``,
``gammaincc``, ``betainc``), the base of scipy.stats' distribution functions for t, gamma, beta, chi2, f, poisson,
binom and nbinom.

Evaluated from their definitions, decomposed into primitives (so they fuse and run on every backend):
- P(a, x) by its power series x^a e^-x / Gamma(a+1) * sum_n x^n / ((a+1)...(a+n)) where x < a + 1, and Q(a, x) by
  Legendre's continued fraction elsewhere; the other one of the pair is 1 minus it.
- I_x(a, b) by its continued fraction x^a (1-x)^b / (a B(a, b)) * 1/(1 + d1/(1 + d2/(1 + ...))) where
  x < (a + 1)/(a + b + 2), through the symmetry I_x(a, b) = 1 - I_(1-x)(b, a) elsewhere.
Both iterate in a ``while_loop`` until every element has converged (relative change below the dtype's epsilon) or
a cap is reached: the number of terms grows like sqrt(a), so a, b up to ~1e4 converge within the cap.

Derivatives are exact ``custom_jvp`` rules: w.r.t. x the density, w.r.t. the parameters a, b the derivative of the
series / continued fraction, carried through the same iteration as forward-mode dual numbers (JAX provides the
a-derivative of gammainc and refuses those of betainc; tracejit provides both).
"""
from __future__ import annotations

import math

import numpy as np

from .control_flow import while_loop
from .custom import custom_jvp
from . import scipy_special as sps

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class _Dual:
    """A value and its partial derivatives w.r.t. a few parameters (forward mode inside a loop body)."""
    __slots__ = ("v", "d")
    __array_ufunc__ = None  # numpy arrays on the left defer to the Dual's reflected operators

    def __init__(self, v, d=()):
        self.v, self.d = v, tuple(d)

    def _parts(self, o):
        return (o.v, o.d) if isinstance(o, _Dual) else (o, (0.0,) * len(self.d))

    def __add__(self, o):
        v, d = self._parts(o)
        return _Dual(self.v + v, [p + q for p, q in zip(self.d, d)])
    __radd__ = __add__

    def __neg__(self):
        return _Dual(-self.v, [-p for p in self.d])

    def __sub__(self, o):
        return self + (-o)

    def __rsub__(self, o):
        return (-self) + o

    def __mul__(self, o):
        v, d = self._parts(o)
        return _Dual(self.v * v, [p * v + self.v * q for p, q in zip(self.d, d)])
    __rmul__ = __mul__

    def __truediv__(self, o):
        v, d = self._parts(o)
        r = self.v / v
        return _Dual(r, [(p - r * q) / v for p, q in zip(self.d, d)])

    def __rtruediv__(self, o):
        return _Dual(o, [0.0 * p for p in self.d]) / self

    def flat(self):
        return (self.v, *self.d)


def _unflat(t, k):
    return _Dual(t[0], t[1:1 + k]), t[1 + k:]


def _eps_cap(dtype):
    return (2.0 ** -52, 4000) if np.dtype(dtype) == np.float64 else (2.0 ** -23, 1000)


def _converged(new, old, eps):
    """Relative change below eps for the value and for each partial (measured against |value| + |partial|)."""
    ok = np.abs(new.v - old.v) <= eps * np.abs(new.v)
    for p, q in zip(new.d, old.d):
        ok = ok & (np.abs(p - q) <= eps * (np.abs(p) + np.abs(new.v)))
    return ok


def _iterate(step, state, k, active, n0, dtype):
    """Run ``state = step(n, state)`` (state: a tuple of Duals with ``k`` partials, its first the running result)
    with n = n0, n0 + 1, ... until every active element has converged. An element that has converged keeps its
    state from then on: the rescaled recurrences carry rounding noise of a few ulps, which a test for a change
    below one ulp could miss forever."""
    eps, cap = _eps_cap(dtype)
    m = len(state)

    def unpack(flat):
        duals = []
        for _ in range(m):
            d, flat = _unflat(flat, k)
            duals.append(d)
        return tuple(duals)

    def running(c):
        return (c[0] < cap + n0) & ~np.all(c[1])

    def body(c):
        n, done, flat = c
        old = unpack(flat)
        new = step(n, old)
        done_now = done | _converged(new[0], old[0], 2.0 * eps)
        new_flat = tuple(x for d in new for x in d.flat())
        return n + 1.0, done_now, tuple(np.where(done, o, v) for o, v in zip(flat, new_flat))
    init = (np.asarray(float(n0), dtype), ~active, tuple(x for d in state for x in d.flat()))
    out = while_loop(running, body, init)
    return _unflat(out[2], k)[0]


def _bcast(*xs):
    """The arguments broadcast against each other (where(True, .) keeps values: inf and nan stay as they are)."""
    out = []
    for i, x in enumerate(xs):
        y = x
        for j, o in enumerate(xs):
            if j != i:
                y = np.where(True, y, o)
        out.append(y)
    return out


def _float_dtype(*xs):
    """float32 when every array argument is float32 (Python scalars are weak, as in numpy 2), else float64: it
    sets the convergence tolerance, which must match the precision the iteration runs in."""
    dts = [np.dtype(x.dtype) for x in xs if hasattr(x, "dtype")]
    return np.float32 if dts and all(d == np.float32 for d in dts) else np.float64


# ------------------------------------------------------------------------------------------------ gamma
def _log_gamma_prefix(a, x):
    """log(x^a e^-x / Gamma(a)); for a >= 10 as a (log1p(t) - t) + log(a)/2 - log sqrt(2 pi) - stirling(a) with
    t = x/a - 1, which does not cancel two huge logarithms near x = a."""
    big = a >= 10.0
    ab = np.where(big, a, 10.0)
    t = (x - ab) / ab
    near = ab * (np.log1p(np.maximum(t, -1.0)) - t) + 0.5 * np.log(ab) - _LOG_SQRT_2PI - sps._stirling_correction(ab)
    far = sps.xlogy(a, x) - x - sps._lgamma(np.where(big, 1.0, a))
    return np.where(big, near, far)


def _gamma_series(a, x, active, k, dtype):
    """sum_n x^n / ((a+1)...(a+n)) as a Dual in a (k = 1) or a value (k = 0)."""
    ad = _Dual(a, [1.0 + 0.0 * a] * k)
    one = _Dual(1.0 + 0.0 * a, [0.0 * a] * k)

    def step(n, st):
        s, c = st
        c = c * x / (ad + n)
        return s + c, c
    return _iterate(step, (one, one), k, active, 1, dtype)


def _gamma_fraction(a, x, active, k, dtype):
    """1/(x+1-a - 1(1-a)/(x+3-a - 2(2-a)/(x+5-a - ...))) by Wallis' recurrences, renormalized every step."""
    ad = _Dual(a, [1.0 + 0.0 * a] * k)
    zero = _Dual(0.0 * a, [0.0 * a] * k)
    one = 1.0 + zero
    b1 = (-ad) + (x + 1.0)
    # state: f, A_{n-1}, A_n, B_{n-1}, B_n with f_1 = 1/b1
    start = (1.0 / b1, zero, one, one, b1)

    def step(n, st):
        _, a0, a1, b0, b1_ = st
        an, bn = (ad - n) * n, (-ad) + (x + 2.0 * n + 1.0)
        a2, b2 = bn * a1 + an * a0, bn * b1_ + an * b0
        s = 1.0 / b2.v
        a2, b2, a1s, b1s = a2 * s, b2 * s, a1 * s, b1_ * s
        return a2 / b2, a1s, a2, b1s, b2
    return _iterate(step, start, k, active, 1, dtype)


def _gamma_pair(a, x, k):
    """(P, Q) and, for k = 1, (dP/da,) of the regularized incomplete gamma functions."""
    dtype = _float_dtype(a, x)
    a, x = _bcast(sps._float(a), sps._float(x))
    bad = (a < 0) | (x < 0) | (a != a) | (x != x) | ((a == 0) & (x == 0))
    edge = bad | (x == 0) | (a == 0) | np.isinf(x) | np.isinf(a)
    use_series = (x < a + 1.0) & ~edge
    use_frac = ~use_series & ~edge
    a_s = np.where(use_series, a, 1.0)
    x_s = np.where(use_series, x, 0.0)
    a_f = np.where(use_frac, a, 1.0)
    x_f = np.where(use_frac, x, 3.0)
    series = _gamma_series(a_s, x_s, use_series, k, dtype)
    frac = _gamma_fraction(a_f, x_f, use_frac, k, dtype)
    pre_s = np.exp(_log_gamma_prefix(a_s, x_s)) / a_s
    pre_f = np.exp(_log_gamma_prefix(a_f, x_f))
    p_series, q_frac = pre_s * series.v, pre_f * frac.v
    edge_p = np.where(bad, np.nan, np.where((x == 0) | np.isinf(a), 0.0, 1.0)).astype(dtype)
    p = np.where(edge, edge_p, np.where(use_series, p_series, 1.0 - q_frac))
    q = np.where(edge, np.where(bad, np.nan, 1.0 - edge_p), np.where(use_series, 1.0 - p_series, q_frac))
    if not k:
        return p, q, ()
    lx_s, lx_f = np.log(np.where(x_s > 0, x_s, 1.0)), np.log(x_f)
    dp_series = p_series * (lx_s - sps.digamma(a_s + 1.0)) + pre_s * series.d[0]
    dq_frac = q_frac * (lx_f - sps.digamma(a_f)) + pre_f * frac.d[0]
    dp = np.where(edge, np.where(bad, np.nan, 0.0).astype(dtype), np.where(use_series, dp_series, -dq_frac))
    return p, q, (dp,)


def _gamma_density(a, x):
    """dP/dx = x^(a-1) e^-x / Gamma(a)."""
    a, x = sps._float(a), sps._float(x)
    ok = x > 0
    xs = np.where(ok, x, 1.0)
    return np.where(ok, np.exp(sps.xlogy(a - 1.0, xs) - xs - sps._lgamma(a)), np.where(a == 1.0, 1.0, 0.0) * (x == 0))


@custom_jvp
def gammainc(a, x):
    """Regularized lower incomplete gamma P(a, x) (scipy.special.gammainc)."""
    return _gamma_pair(a, x, 0)[0]


@gammainc.defjvp
def _gammainc_jvp(primals, tangents):
    (a, x), (da, dx) = primals, tangents
    p, _, (dpa,) = _gamma_pair(a, x, 1)
    return p, dpa * da + _gamma_density(a, x) * dx


@custom_jvp
def gammaincc(a, x):
    """Regularized upper incomplete gamma Q(a, x) = 1 - P(a, x) (scipy.special.gammaincc), accurate where small."""
    return _gamma_pair(a, x, 0)[1]


@gammaincc.defjvp
def _gammaincc_jvp(primals, tangents):
    (a, x), (da, dx) = primals, tangents
    _, q, (dpa,) = _gamma_pair(a, x, 1)
    return q, -(dpa * da + _gamma_density(a, x) * dx)


# ------------------------------------------------------------------------------------------------ beta
def _beta_fraction(p, q, u, active, k, dtype):
    """1/(1 + d1/(1 + d2/(1 + ...))) with d_(2m+1) = -(p+m)(p+q+m)u / ((p+2m)(p+2m+1)) and
    d_(2m) = m(q-m)u / ((p+2m-1)(p+2m)), as a Dual in (p, q) for k = 2."""
    zero = 0.0 * p
    pd = _Dual(p, [1.0 + zero, zero][:k])
    qd = _Dual(q, [zero, 1.0 + zero][:k])
    z = _Dual(zero, [zero] * k)
    one = 1.0 + z
    start = (one, z, one, one, one)  # f, A_0, A_1 (= 1), B_0, B_1 (= 1), before the first d

    def step(n, st):
        _, a0, a1, b0, b1 = st
        m = np.floor(0.5 * n)
        odd = (n - 2.0 * m) > 0.5
        d_odd = -(pd + m) * (pd + qd + m) * u / ((pd + 2.0 * m) * (pd + 2.0 * m + 1.0))
        d_even = (qd - m) * m * u / ((pd + 2.0 * m - 1.0) * (pd + 2.0 * m))
        dn = _Dual(np.where(odd, d_odd.v, d_even.v), [np.where(odd, s, t) for s, t in zip(d_odd.d, d_even.d)])
        a2, b2 = a1 + dn * a0, b1 + dn * b0
        s = 1.0 / b2.v
        a2, b2, a1s, b1s = a2 * s, b2 * s, a1 * s, b1 * s
        return a2 / b2, a1s, a2, b1s, b2
    return _iterate(step, start, k, active, 1, dtype)


def _betainc_parts(a, b, x, y, k):
    """I_x(a, b) with y = 1 - x given separately (the caller may know it more accurately), and for k = 2 its
    partials (dI/da, dI/db)."""
    dtype = _float_dtype(a, b, x)
    a, b, x, y = _bcast(sps._float(a), sps._float(b), sps._float(x), sps._float(y))
    bad = ((a < 0) | (b < 0) | ((a == 0) & (b == 0)) | (x < 0) | (x > 1) | (a != a) | (b != b) | (x != x))
    edge = bad | (x == 0) | (y == 0) | (a == 0) | (b == 0)
    direct = x * (a + b + 2.0) < a + 1.0
    p = np.where(edge, 1.0, np.where(direct, a, b))
    q = np.where(edge, 1.0, np.where(direct, b, a))
    u = np.where(edge, 0.5, np.where(direct, x, y))
    w = np.where(edge, 0.5, np.where(direct, y, x))
    frac = _beta_fraction(p, q, u, ~edge, k, dtype)
    pre = np.exp(p * np.log(u) + q * np.log(w) - np.log(p) - sps.betaln(p, q))
    v = pre * frac.v
    edge_val = np.where(bad, np.nan, np.where((x == 0) | (b == 0), 0.0, 1.0)).astype(dtype)
    out = np.where(edge, edge_val, np.where(direct, v, 1.0 - v))
    if not k:
        return out, ()
    psum = sps.digamma(p + q)
    dv_p = v * (np.log(u) - 1.0 / p - sps.digamma(p) + psum) + pre * frac.d[0]
    dv_q = v * (np.log(w) - sps.digamma(q) + psum) + pre * frac.d[1]
    zero = np.where(bad, np.nan, 0.0).astype(dtype)
    da = np.where(edge, zero, np.where(direct, dv_p, -dv_q))
    db = np.where(edge, zero, np.where(direct, dv_q, -dv_p))
    return out, (da, db)


def _beta_density(a, b, x, y):
    inside = (x > 0) & (y > 0)
    xs, ys = np.where(inside, x, 0.5), np.where(inside, y, 0.5)
    return np.where(inside, np.exp(sps.xlogy(a - 1.0, xs) + sps.xlogy(b - 1.0, ys) - sps.betaln(a, b)), 0.0)


@custom_jvp
def betainc_xy(a, b, x, y):
    """I_x(a, b) where y = 1 - x is passed too (for t, f and binom, whose 1 - x is known without cancellation).
    The derivative in x reads (dx - dy)/2, right whichever of x, y the caller derived from the other."""
    return _betainc_parts(a, b, x, y, 0)[0]


@betainc_xy.defjvp
def _betainc_xy_jvp(primals, tangents):
    (a, b, x, y), (da, db, dx, dy) = primals, tangents
    out, (pa, pb) = _betainc_parts(a, b, x, y, 2)
    return out, pa * da + pb * db + _beta_density(sps._float(a), sps._float(b), x, y) * (0.5 * (dx - dy))


def betainc(a, b, x):
    """Regularized incomplete beta I_x(a, b) (scipy.special.betainc)."""
    x = sps._float(x)
    return betainc_xy(a, b, x, 1.0 - x)


# scipy.special ufunc name -> (implementation, number of inputs); registered as scipy_special.UFUNCS are
UFUNCS = {"gammainc": (gammainc, 2), "gammaincc": (gammaincc, 2), "betainc": (betainc, 3)}


def register():
    from .trace import numpy_api as npi
    for name, (fun, nin) in UFUNCS.items():
        npi.IMPLS.setdefault(name, sps._impl(name, fun, nin))
