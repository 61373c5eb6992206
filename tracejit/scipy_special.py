"""scipy.special on traced values: the functions, their exact derivatives, and their numpy-protocol names.

scipy.special's ufuncs reach a tracer through ``__array_ufunc__`` under their ufunc names (``gammaln``, ``psi``,
``ndtr``...), which ``register()`` adds to tracejit's numpy table. ``erf``, ``erfc``, ``gammaln`` and ``gamma`` are
primitives (C libm / CUDA libdevice do the work). Everything else is decomposed here into primitives, so every
backend gets it and it fuses with its neighbours, and the functions whose decomposition is a series, an iteration or
a choice between branches carry their exact derivative as a ``custom_jvp`` rule (the derivative of an
approximation is not the derivative of the function, and an unselected branch's nan would leak into it).

Every function here also runs on plain numpy arrays (the custom_jvp functions call their body), which is how the
tests check the decompositions cheaply. Series coefficients are derived below from the definitions (Bernoulli
numbers, Maclaurin and asymptotic expansions), not copied from any library.
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np

from .custom import custom_jvp
from .errors import UnsupportedError
from .ir import ops
from .trace.tracer import Tracer, unwrap, wrap

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_SQRT_PI_2 = math.sqrt(math.pi) / 2


def _erf(x):
    """erf of a tracer (the primitive) or of an array (scipy's ufunc): both spelled as the scipy call."""
    import scipy.special
    return scipy.special.erf(x)


def _erfc(x):
    import scipy.special
    return scipy.special.erfc(x)


def _lgamma(x):
    import scipy.special
    return scipy.special.gammaln(x)


def _tgamma(x):
    import scipy.special
    return scipy.special.gamma(x)


def _float(x):
    """As scipy's ufunc loops: integer and bool inputs compute in float64; floats and Python scalars stay."""
    if isinstance(x, (Tracer, np.ndarray, np.generic)) and np.dtype(x.dtype).kind in "biu":
        return x.astype(np.float64)
    if isinstance(x, (bool, int)) and not isinstance(x, Tracer):
        return float(x)
    return x


def _dtype(x):
    return np.dtype(getattr(x, "dtype", np.float64))


def _safe(cond, x, fill):
    """``x`` where ``cond``, else a harmless ``fill``: keeps an unselected branch finite so that its derivative
    (multiplied by the zero cotangent ``where`` sends it) is not nan."""
    return np.where(cond, x, fill)


# ------------------------------------------------------------------------------------------------ normal cdf
def ndtr(x):
    """Phi(x) = erfc(-x/sqrt 2)/2: accurate in both tails (erfc keeps the relative accuracy of small results)."""
    x = _float(x)
    return 0.5 * _erfc(-x / _SQRT2)


def _tail_start(x):
    """Where log_ndtr switches to its asymptotic series: well before erfc underflows in the dtype."""
    return -10.0 if _dtype(x) == np.float32 else -20.0


def _horner_odd_factorial(r, terms):
    """sum_{n=1..terms} (-1)^n (2n-1)!! r^n by Horner (coefficient ratio -(2n-1) between neighbours)."""
    acc = 0.0
    for n in range(terms, 0, -1):
        acc = -(2 * n - 1) * r * (1.0 + acc)
    return acc


@custom_jvp
def log_ndtr(x):
    """log Phi(x): log1p(-Phi(-x)) on the right (Phi near 1), log of erfc in the middle, and below the tail start
    -x^2/2 - log(-x) - log sqrt(2 pi) + log S(x), finite and accurate to x = -1e4 and beyond."""
    x = _float(x)
    t = _tail_start(x)
    tail = x < t
    xt = _safe(tail, x, t)
    asym = -0.5 * xt * xt - np.log(-xt) - _LOG_SQRT_2PI + np.log1p(_horner_odd_factorial(1.0 / (xt * xt), 12))
    xm = _safe(tail | (x > 0), -1.0, x)
    mid = np.log(0.5 * _erfc(-xm / _SQRT2))
    right = np.log1p(-0.5 * _erfc(_safe(x > 0, x, 1.0) / _SQRT2))
    return np.where(tail, asym, np.where(x > 0.0, right, mid))


@log_ndtr.defjvp
def _log_ndtr_jvp(primals, tangents):
    """d/dx log Phi = phi/Phi: exp(log phi - log Phi), or -x/S(x) in the asymptotic tail (no cancellation of two
    huge logs there)."""
    (x,), (dx,) = primals, tangents
    x = _float(x)
    y = log_ndtr(x)
    t = _tail_start(x)
    tail = x < t
    xt = _safe(tail, x, t)
    ratio_tail = -xt / (1.0 + _horner_odd_factorial(1.0 / (xt * xt), 12))
    ratio = np.exp(-0.5 * x * x - _LOG_SQRT_2PI - y)
    return y, dx * np.where(tail, ratio_tail, ratio)


# ------------------------------------------------------------------------------------------------ inverses
def _ndtri_lower(p):
    """Phi^-1(p) for 0 < p <= 1/4 by Newton's method on g(x) = log Phi(x) - log p. log Phi is concave, so from the
    first step on the iterates approach the root from below; from the asymptotic first guess
    x0 = -sqrt(L - log(2 pi L)), L = -2 log p, four steps reach float64 rounding for every p down to 5e-324."""
    lp = np.log(p)
    big_l = -2.0 * lp
    x = -np.sqrt(np.maximum(big_l - np.log(2 * math.pi * big_l), 0.25 * big_l))
    for _ in range(4):
        lc = log_ndtr.fun(x)
        x = x - (lc - lp) * np.exp(lc + 0.5 * x * x + _LOG_SQRT_2PI)
    return x


def _erfinv_central(y):
    """erf^-1(y) for |y| <= 1/2: the first four Maclaurin terms of erfinv as a guess, then two Newton steps on erf
    (erf keeps relative accuracy near 0, so a tiny y does not cancel)."""
    s = y * y
    z = _SQRT_PI_2 * y * (1.0 + s * (math.pi / 12 + s * (7 * math.pi ** 2 / 480 + s * 127 * math.pi ** 3 / 40320)))
    for _ in range(2):
        z = z - (_erf(z) - y) * _SQRT_PI_2 * np.exp(z * z)
    return z


def _ndtri_body(p):
    """Phi^-1 on [0, 1]: the centre through erfinv of 2p - 1 (exact there), the tails through the lower-tail Newton
    on p or on 1 - p (exact for p >= 1/2)."""
    central = np.abs(p - 0.5) <= 0.25
    pc = _safe(central, p, 0.5)
    mid = _SQRT2 * _erfinv_central(2.0 * pc - 1.0)
    q = np.where(p < 0.5, p, 1.0 - p)
    qs = _safe((q > 0) & ~central, q, 0.25)
    lower = _ndtri_lower(qs)
    tail = np.where(p < 0.5, lower, -lower)
    out = np.where(central, mid, tail)
    out = np.where(p == 0, -np.inf, np.where(p == 1, np.inf, out))
    return np.where((p < 0) | (p > 1) | (p != p), np.nan, out)


@custom_jvp
def ndtri(p):
    """Inverse of the standard normal cdf (scipy.special.ndtri); derivative 1/phi(ndtri(p))."""
    return _ndtri_body(_float(p))


@ndtri.defjvp
def _ndtri_jvp(primals, tangents):
    (p,), (dp,) = primals, tangents
    x = ndtri(p)
    return x, dp * np.exp(0.5 * x * x + _LOG_SQRT_2PI)


@custom_jvp
def erfinv(y):
    """erf^-1(y): the central Newton for |y| <= 1/2, else -ndtri((1 - |y|)/2)/sqrt 2 (1 - |y| exact there)."""
    y = _float(y)
    a = np.abs(y)
    central = a <= 0.5
    mid = _erfinv_central(_safe(central, y, 0.0))
    tail = -_ndtri_body(_safe(central, 0.25, 0.5 * (1.0 - a))) / _SQRT2
    return np.where(central, mid, np.where(y < 0, -tail, tail))


@erfinv.defjvp
def _erfinv_jvp(primals, tangents):
    (y,), (dy,) = primals, tangents
    z = erfinv(y)
    return z, dy * _SQRT_PI_2 * np.exp(z * z)


@custom_jvp
def erfcinv(y):
    """erfc^-1(y) = -ndtri(y/2)/sqrt 2 (y/2 exact, so small y keeps its precision)."""
    return -_ndtri_body(0.5 * _float(y)) / _SQRT2


@erfcinv.defjvp
def _erfcinv_jvp(primals, tangents):
    (y,), (dy,) = primals, tangents
    z = erfcinv(y)
    return z, -dy * _SQRT_PI_2 * np.exp(z * z)


# ------------------------------------------------------------------------------------------------ digamma family
@lru_cache(maxsize=None)
def _bernoulli(m: int) -> Fraction:
    """B_m (B_1 = -1/2) from sum_{k<=m} C(m+1, k) B_k = 0 for m >= 1: the definition, exactly."""
    b = [Fraction(1)]
    for n in range(1, m + 1):
        b.append(-sum(math.comb(n + 1, k) * b[k] for k in range(n)) / (n + 1))
    return b[m]


@lru_cache(maxsize=None)
def _psi_plan(n: int):
    """(shift N, asymptotic coefficients) for psi^(n): the recurrence moves x to x + N >= N, where the asymptotic
    series psi^(n)(y) ~ (-1)^(n+1) [(n-1)!/y^n + n!/(2 y^(n+1)) + sum_k B_2k (2k+n-1)!/(2k)! / y^(2k+n)]
    (log y - 1/(2y) - sum_k B_2k/(2k y^2k) for n = 0) has a first omitted term below 1e-17 of the leading one."""
    for shift in range(10, 200, 2):
        coefs = []
        lead = 1.0 if n == 0 else math.factorial(n - 1) / shift ** n
        for k in range(1, 30):
            c = float(_bernoulli(2 * k)) * (math.factorial(2 * k + n - 1) / math.factorial(2 * k) if n else 1 / (2 * k))
            term = abs(c) / shift ** (2 * k + n)
            if term < 1e-17 * lead:
                return shift, tuple(coefs)
            coefs.append(c)
    raise UnsupportedError(f"scipy.special.polygamma: order n={n} is too large for tracejit (n <= 60 is supported)")


def _psi_asymptotic(n, y):
    shift, coefs = _psi_plan(n)
    r = 1.0 / (y * y)
    acc = 0.0
    for c in reversed(coefs):  # sum_k c_k r^k
        acc = (acc + c) * r
    if n == 0:
        return np.log(y) - 0.5 / y - acc
    sign = (-1) ** (n + 1)
    yn = y ** n
    return sign * ((math.factorial(n - 1) + math.factorial(n) * 0.5 / y + acc) / yn)


def _psi_positive(n, x):
    """psi^(n)(x) for x > 0: psi^(n)(x) = psi^(n)(x + N) - (-1)^n n! sum_{k<N} (x + k)^-(n+1) below the shift."""
    shift, _ = _psi_plan(n)
    small = x < shift
    xs = _safe(small, x, 1.0)
    acc = 0.0
    for k in range(shift - 1, -1, -1):
        acc = acc + (1.0 / (xs + k)) ** (n + 1)
    y = np.where(small, x + shift, x)
    return _psi_asymptotic(n, y) - np.where(small, (-1) ** n * math.factorial(n) * acc, 0.0)


@lru_cache(maxsize=None)
def _cot_derivative(n: int) -> tuple:
    """Coefficients (low to high) of P_n with d^n/dx^n cot(pi x) = pi^n P_n(cot(pi x)): P_0 = c and
    P_{k+1} = -(1 + c^2) P_k'(c), from cot' = -(1 + cot^2)."""
    p = [0, 1]
    for _ in range(n):
        d = [i * p[i] for i in range(1, len(p))] or [0]
        q = [0] * (len(d) + 2)
        for i, c in enumerate(d):
            q[i] -= c
            q[i + 2] -= c
        p = q
    return tuple(p)


def _polygamma_static(n, x):
    """psi^(n)(x) on the real line: psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi^(n+1) P_n(cot(pi x)) below 1/2 (the
    reflection formula differentiated n times); poles at 0, -1, -2, ... as scipy."""
    x = _float(x)
    neg = x < 0.5
    xp = np.where(neg, 1.0 - x, x)
    pos = _psi_positive(n, xp)
    r = x - np.rint(x)  # cot(pi x) has period 1; r is exact
    rs = _safe(neg & (r != 0), r, 0.25)
    c = 1.0 / np.tan(math.pi * rs)
    poly = 0.0
    for coef in reversed(_cot_derivative(n)):
        poly = poly * c + float(coef)
    refl = (-1) ** n * pos - math.pi ** (n + 1) * poly
    out = np.where(neg, refl, pos)
    pole = (x <= 0) & (x == np.floor(x))
    if n == 0:  # digamma: -1/x at a signed zero, nan at the negative integers (scipy's choice)
        at_pole = np.where(x == 0, -1.0 / _safe(x == 0, x, 1.0), np.nan)
    else:
        at_pole = (-1) ** (n + 1) * np.inf
    return np.where(pole, at_pole, out)


@custom_jvp
def digamma(x):
    """psi(x) = d/dx log Gamma(x) (scipy.special.psi / digamma); derivative polygamma(1, x)."""
    return _polygamma_static(0, x)


@digamma.defjvp
def _digamma_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return digamma(x), dx * _polygamma_n(1, x)


def _polygamma_n_fun(n, x):
    return _polygamma_static(n, x)


_polygamma_n = custom_jvp(_polygamma_n_fun, nondiff_argnums=(0,))


@_polygamma_n.defjvp
def _polygamma_n_jvp(n, primals, tangents):
    (x,), (dx,) = primals, tangents
    return _polygamma_n(n, x), dx * _polygamma_n(n + 1, x)


def polygamma(n, x):
    """scipy.special.polygamma(n, x) for a static (concrete) integer order n >= 0; an array of orders is split into
    its distinct values."""
    x = _float(x)
    x = x.astype(np.float64) if _dtype(x) != np.float64 else x  # scipy's polygamma returns float64 (its n is)
    if isinstance(n, Tracer):
        raise UnsupportedError("scipy.special.polygamma(n, x): the order n is traced; tracejit needs it concrete "
                               "(pass it as a Python int, or mark it static with tj.jit(..., static_argnums=...))")
    orders = np.asarray(n)
    if orders.dtype.kind not in "iub" and not np.all(orders == np.floor(orders)):
        raise UnsupportedError(f"scipy.special.polygamma: the order must be a non-negative integer, got {n!r}")
    if orders.ndim == 0:
        k = int(orders)
        if k < 0:
            return np.nan * _float(x)
        return digamma(x) if k == 0 else _polygamma_n(k, x)
    out = None
    for k in np.unique(orders):
        v = polygamma(int(k), x)
        out = v if out is None else np.where(orders == k, v, out)
    return out


def digamma_value(v):
    """digamma of an IR Value (the derivative rule of the lgamma primitive uses it)."""
    return unwrap(digamma(wrap(v)))


# ------------------------------------------------------------------------------------------------ gamma family
def _gamma_sign(x):
    """The sign of Gamma(x): +1 for x > 0, (-1)^ceil(-x) between the poles of the negative axis."""
    return np.where((x > 0) | (np.floor(x) % 2 == 0), 1.0, -1.0)


def _stirling_correction(x):
    """log Gamma(x) - [(x - 1/2) log x - x + log sqrt(2 pi)] = sum_k B_2k / (2k (2k-1) x^(2k-1)), eight terms:
    below float64 rounding for x >= 8."""
    r = 1.0 / (x * x)
    acc = 0.0
    for k in range(8, 0, -1):
        acc = acc * r + float(_bernoulli(2 * k)) / (2 * k * (2 * k - 1))
    return acc / x


def betaln(a, b):
    """log|B(a, b)|. For max(a, b) >= 8 (both positive) log Gamma(a) - log Gamma(a + b) is taken from Stirling's
    series in a form without the cancellation of two huge logs: -(a - 1/2) log1p(b/a) - b log(a + b) + b +
    corr(a) - corr(a + b); else the three lgamma primitives directly."""
    a, b = _float(a), _float(b)
    big, small = np.maximum(a, b), np.minimum(a, b)
    stirling = (big >= 8) & (small > 0)
    bs, ss = _safe(stirling, big, 8.0), _safe(stirling, small, 1.0)
    far = (_lgamma(ss) - (bs - 0.5) * np.log1p(ss / bs) - ss * np.log(bs + ss) + ss
           + _stirling_correction(bs) - _stirling_correction(bs + ss))
    near = _lgamma(a) + _lgamma(b) - _lgamma(a + b)
    return np.where(stirling, far, near)


def beta(a, b):
    """B(a, b) = Gamma(a) Gamma(b) / Gamma(a + b) while all three are moderate, else sign * exp(betaln)."""
    a, b = _float(a), _float(b)
    moderate = (np.abs(a) < 30) & (np.abs(b) < 30) & (np.abs(a + b) < 30)
    am, bm = _safe(moderate, a, 1.0), _safe(moderate, b, 1.0)
    direct = _tgamma(am) * _tgamma(bm) / _tgamma(am + bm)
    sign = _gamma_sign(a) * _gamma_sign(b) * _gamma_sign(a + b)
    return np.where(moderate, direct, sign * np.exp(betaln(a, b)))


# ------------------------------------------------------------------------------------------------ log helpers
def _xlog(f, x, y):
    """x * f(y), 0 where x == 0 unless y is nan (scipy's convention, so 0 * log(0) terms vanish)."""
    x, y = _float(x), _float(y)
    zero = (x == 0) & (y == y)
    return np.where(zero, 0.0 * x, x * f(_safe(zero, 1.0, y)))


@custom_jvp
def xlogy(x, y):
    """x log(y) (scipy.special.xlogy); derivatives log(y) and x/y (0 where x == 0)."""
    return _xlog(np.log, x, y)


@xlogy.defjvp
def _xlogy_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    x, y = _float(x), _float(y)
    ys = _safe(x == 0, 1.0, y)
    return xlogy(x, y), dx * np.log(y) + dy * np.where(x == 0, 0.0, x / ys)


@custom_jvp
def xlog1py(x, y):
    """x log1p(y) (scipy.special.xlog1py); derivatives log1p(y) and x/(1 + y) (0 where x == 0)."""
    return _xlog(np.log1p, x, y)


@xlog1py.defjvp
def _xlog1py_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    x, y = _float(x), _float(y)
    ys = _safe(x == 0, 0.0, y)
    return xlog1py(x, y), dx * np.log1p(y) + dy * np.where(x == 0, 0.0, x / (1.0 + ys))


@custom_jvp
def logit(p):
    """log(p / (1 - p)): 2 atanh(2p - 1) for 1/4 <= p <= 3/4 (2p - 1 exact: no cancellation near 1/2), else the
    quotient; derivative 1/(p (1 - p))."""
    p = _float(p)
    central = np.abs(p - 0.5) <= 0.25
    pc = _safe(central, p, 0.5)
    po = _safe(central, 0.1, p)
    return np.where(central, 2.0 * np.arctanh(2.0 * pc - 1.0), np.log(po / (1.0 - po)))


@logit.defjvp
def _logit_jvp(primals, tangents):
    (p,), (dp,) = primals, tangents
    p = _float(p)
    return logit(p), dp / (p * (1.0 - p))


# ------------------------------------------------------------------------------------------------ reductions
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    return tuple(sorted(a % ndim for a in ((axis,) if np.ndim(axis) == 0 else axis)))


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """scipy.special.logsumexp: log sum b exp(a) over ``axis`` (all axes by default), shifted by the (constant for
    differentiation) max of the terms that count; entries with b == 0 are left out as scipy does. Without
    ``return_sign`` a negative sum gives nan; with it, (log|sum|, sign)."""
    a = _float(a if isinstance(a, Tracer) else np.asarray(a))
    if b is not None:
        b = _float(b if isinstance(b, Tracer) else np.asarray(b))
        a = np.where(b == 0, -np.inf, a)  # broadcast against b, as scipy; zero-weight terms do not count
    axes = _axes(axis, np.ndim(a))
    m = np.max(a, axis=axes, keepdims=True)
    m = _stop(np.where(np.isfinite(m), m, 0.0))
    e = np.exp(a - m)
    s = np.sum(e if b is None else b * e, axis=axes, keepdims=True)
    if return_sign:
        sgn = np.sign(s)
        out = np.log(np.abs(s)) + m
    else:
        out = np.log(s) + m
    if not keepdims:
        out = np.squeeze(out, axis=axes)
        sgn = np.squeeze(sgn, axis=axes) if return_sign else None
    return (out, sgn) if return_sign else out


def _stop(x):
    if isinstance(x, Tracer):
        from .trace.tracer import call_numpy
        return call_numpy("stop_gradient", [x], {})
    return x


def softmax(x, axis=None):
    """scipy.special.softmax: exp(x - logsumexp(x)) over ``axis`` (all axes by default)."""
    x = _float(x)
    axes = _axes(axis, np.ndim(x))
    m = _stop(np.max(x, axis=axes, keepdims=True))
    e = np.exp(x - m)
    return e / np.sum(e, axis=axes, keepdims=True)


def log_softmax(x, axis=None):
    """scipy.special.log_softmax: x - logsumexp(x) over ``axis`` (all axes by default)."""
    x = _float(x)
    axes = _axes(axis, np.ndim(x))
    sh = x - _stop(np.max(x, axis=axes, keepdims=True))
    return sh - np.log(np.sum(np.exp(sh), axis=axes, keepdims=True))


# ------------------------------------------------------------------------------------------------ dispatch
from .scipy_bessel import i0, i1  # noqa: E402  (it builds on this module's helpers)

# scipy.special ufunc name (as __array_ufunc__ reports it) -> (implementation over tracers, number of inputs)
UFUNCS = {
    "erf": (_erf, 1), "erfc": (_erfc, 1), "gammaln": (_lgamma, 1), "gamma": (_tgamma, 1),
    "psi": (digamma, 1), "digamma": (digamma, 1), "ndtr": (ndtr, 1), "log_ndtr": (log_ndtr, 1),
    "ndtri": (ndtri, 1), "erfinv": (erfinv, 1), "erfcinv": (erfcinv, 1), "xlogy": (xlogy, 2),
    "xlog1py": (xlog1py, 2), "betaln": (betaln, 2), "beta": (beta, 2), "logit": (logit, 1), "i0": (i0, 1),
    "i1": (i1, 1),
}
_PRIMITIVES = {"erf": "erf", "erfc": "erfc", "gammaln": "lgamma", "gamma": "tgamma"}


def _impl(name, fun, nin):
    """A numpy-table entry: Values in, Value out; ufunc options tracejit cannot honour are refused by name."""
    def f(*xs, out=None, where=True, dtype=None, **kw):
        if out is not None or where is not True or dtype is not None or kw or len(xs) != nin:
            raise UnsupportedError(f"scipy.special.{name} on traced values takes {nin} array argument(s) and no "
                                   f"out=/where=/dtype= (tracejit computes in the inputs' dtype as scipy does)")
        if name in _PRIMITIVES:
            return ops.ufunc(_PRIMITIVES[name], *xs)
        args = [wrap(x) if not isinstance(x, (int, float, bool)) else x for x in xs]
        return unwrap(fun(*args))
    f.__name__ = name
    f.takes_scalars = True
    return f


def register():
    """Add the scipy.special ufunc names to tracejit's numpy table (names numpy already has, e.g. i0, keep
    numpy's meaning where it differs only in dtype: np.i0 agrees with scipy's values)."""
    from .trace import numpy_api as npi
    for name, (fun, nin) in UFUNCS.items():
        npi.IMPLS.setdefault(name, _impl(name, fun, nin))
