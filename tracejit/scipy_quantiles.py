"""``ppf`` and ``isf`` of scipy.stats distributions on traced values: closed forms where they exist (norm, cauchy,
laplace, logistic, expon, uniform), per-element root finding on the regularized incomplete gamma and beta functions
for t, gamma, chi2, beta and f, and the smallest count whose cdf reaches q (as scipy defines a discrete quantile)
for poisson, binom, nbinom and bernoulli.

Continuous roots: a safeguarded Newton iteration in a ``while_loop`` (every element steps together until each has
converged), on log F(x) - log q in the lower tail and on log p - log S(x) in the upper one (so q near 1 loses
nothing to 1 - q), from a Wilson-Hilferty or tail guess; a step that leaves the bracket or stalls bisects instead,
geometrically while the bracket spans orders of magnitude. Each problem is posed on the side whose tail probability
is <= 1/2, and t and f through the beta function's variable in which their tail is small.

Derivatives follow the implicit function theorem, d ppf = (dq - dF/dtheta . dtheta) / pdf(ppf): the root is
computed without gradient and the result carries ``c - stop_gradient(c)`` with c = -(F(x*) - q) / pdf(x*), zero
in value, whose derivative is exactly that (scipy and JAX define no more; discrete quantiles are piecewise
constant, their gradient zero).
"""
from __future__ import annotations

import math

import numpy as np

from .control_flow import while_loop
from . import scipy_special as sps
from .scipy_incomplete import _bcast, _betainc_parts, _gamma_pair

_EPS = 2.0 ** -52
_TINY = float(np.finfo(np.float64).tiny)  # the low end of (0, x] brackets: ~60 geometric halvings reach it
_HUGE = 1e300
_SLACK = 2.0 ** -40  # relative: above the incomplete gamma / beta functions' error for large parameters (~1e-13)
_MAX_STEPS = 400  # safeguarded Newton converges in ~5-20 steps; bisection alone needs ~2100 over [1e-300, 1e300]


# ------------------------------------------------------------------------------------------------ root finding
def _root(residual, x0, lo, hi, active):
    """Per element, the x in (lo, hi) where ``residual(x) -> (r, dr/dx)`` (increasing in x) crosses zero."""
    def running(c):
        return (c[0] < _MAX_STEPS) & ~np.all(c[1])

    def body(c):
        n, done, x, lo, hi, last = c
        r, dr = residual(x)
        below = r < 0
        lo_n, hi_n = np.where(below, x, lo), np.where(below, hi, x)
        newton = x - r / dr
        fast = (newton >= lo_n) & (newton <= hi_n) & (2.0 * np.abs(newton - x) <= last)  # nan compares False
        wide = (lo_n > 0) & (hi_n > 4.0 * lo_n)
        mid = np.where(wide, np.sqrt(lo_n) * np.sqrt(hi_n), 0.5 * (lo_n + hi_n))
        nx = np.where(r == 0, x, np.where(fast, newton, mid))
        step = np.abs(nx - x)
        ok = (step <= 4.0 * _EPS * np.abs(nx)) | (r == 0) | (hi_n - lo_n <= 4.0 * _EPS * np.abs(hi_n))
        keep = lambda old, new: np.where(done, old, new)  # noqa: E731
        return n + 1.0, done | ok, keep(x, nx), keep(lo, lo_n), keep(hi, hi_n), keep(last, step)
    start = np.where((x0 > lo) & (x0 < hi), x0, np.where(lo > 0, np.sqrt(lo) * np.sqrt(hi), 0.5 * (lo + hi)))
    out = while_loop(running, body, (np.asarray(0.0), ~active, start, lo, hi, hi - lo))
    return out[2]


def _log_ratio(f, target):
    return np.log(f) - np.log(target)


def _gamma_root(a, t, upper, active):
    """x with P(a, x) = t (lower side) or Q(a, x) = t (upper side)."""
    log_norm = sps._lgamma(a)

    def residual(x):
        p, q, _ = _gamma_pair(a, x, 0)
        dens = np.exp((a - 1.0) * np.log(x) - x - log_norm)
        side = np.where(upper, q, p)
        return np.where(upper, -_log_ratio(q, t), _log_ratio(p, t)), dens / side
    z = np.where(upper, -sps.ndtri(t), sps.ndtri(t))
    base = 1.0 - 1.0 / (9.0 * a) + z / (3.0 * np.sqrt(a))
    tail = np.exp((np.log(t) + sps._lgamma(a + 1.0)) / a)  # P(a, x) ~ x^a / Gamma(a + 1) for small x
    guess = np.where(base > 0, a * base * base * base, tail)
    reach = np.sqrt(np.minimum((1.0 - t) / t, _HUGE))  # Cantelli: P(X - a >= sqrt(a) s) <= 1 / (1 + s^2)
    hi = np.minimum(2.0 * (a + np.sqrt(a) * reach) + 1.0, _HUGE)
    return _root(residual, guess, _TINY + 0.0 * a, hi, active)


def _beta_root(a, b, t, active):
    """u with I_u(a, b) = t, and 1 - u."""
    log_norm = sps.betaln(a, b)

    def residual(u):
        v = 1.0 - u
        i, _ = _betainc_parts(a, b, u, v, 0)
        dens = np.exp((a - 1.0) * np.log(u) + (b - 1.0) * np.log(v) - log_norm)
        return _log_ratio(i, t), dens / i
    tail = np.exp((np.log(t) + np.log(a) + log_norm) / a)  # I_u(a, b) ~ u^a / (a B(a, b)) for small u
    guess = np.minimum(tail, a / (a + b))
    u = _root(residual, guess, _TINY + 0.0 * t, 1.0 + 0.0 * t, active)
    return u, 1.0 - u


# ------------------------------------------------------------------------------------------------ per distribution
def _gamma_std(upper, t, active, a):
    return _gamma_root(a, t, upper, active)


def _chi2_std(upper, t, active, df):
    return 2.0 * _gamma_root(0.5 * df, t, upper, active)


def _beta_std(upper, t, active, a, b):
    u, v = _beta_root(np.where(upper, b, a), np.where(upper, a, b), t, active)
    return np.where(upper, v, u)  # the upper side solved for 1 - x with the parameters swapped


def _f_std(upper, t, active, dfn, dfd):
    """cdf = I_u(dfn/2, dfd/2) and sf = I_w(dfd/2, dfn/2) with u = dfn x / (dfn x + dfd), w = 1 - u."""
    hn, hd = 0.5 * dfn, 0.5 * dfd
    s, r = _beta_root(np.where(upper, hd, hn), np.where(upper, hn, hd), t, active)
    u, w = np.where(upper, r, s), np.where(upper, s, r)
    return dfd * u / (dfn * w)


def _t_std(upper, t, active, df):
    """P(|T| > |z|) = I_x(df/2, 1/2) with x = df / (df + z^2): solved in x where that two-sided tail 2t is below
    1/2, else in 1 - x through I_(1-x)(1/2, df/2) = 1 - 2t (q near 1/2: z near 0 keeps its precision)."""
    two = 2.0 * t
    small = two < 0.5
    s, r = _beta_root(np.where(small, 0.5 * df, 0.5), np.where(small, 0.5, 0.5 * df),
                      np.where(small, two, np.where(two < 1.0, 1.0 - two, 0.5)), active & (two < 1.0))
    x, y = np.where(small, s, r), np.where(small, r, s)
    mag = np.where(two < 1.0, np.sqrt(df * y / x), 0.0)
    return np.where(upper, mag, -mag)


# name -> (standard quantile solver, support of the standard distribution)
ROOTS = {"gamma": (_gamma_std, (0.0, np.inf)), "chi2": (_chi2_std, (0.0, np.inf)), "beta": (_beta_std, (0.0, 1.0)),
         "f": (_f_std, (0.0, np.inf)), "t": (_t_std, (-np.inf, np.inf))}


def _cauchy_isf(p):
    """cot(pi p), through the smaller of p and 1 - p (tan(pi (1/2 - p)) loses p's digits in the tails)."""
    return np.where(p < 0.5, 1.0 / np.tan(math.pi * p), np.where(p == 0.5, 0.0, -1.0 / np.tan(math.pi * (1.0 - p))))


def _expon_isf(p):
    return -np.log(p)


# name -> (ppf, isf) of the standard distribution, closed forms (differentiable as they stand)
CLOSED = {
    "norm": (sps.ndtri, lambda p: -sps.ndtri(p)),
    "cauchy": (lambda q: -_cauchy_isf(q), _cauchy_isf),
    "laplace": (lambda q: np.where(q < 0.5, np.log(2.0 * q), -np.log(2.0 - 2.0 * q)),
                lambda p: np.where(p < 0.5, -np.log(2.0 * p), np.log(2.0 - 2.0 * p))),
    "logistic": (lambda q: np.log(q) - np.log1p(-q), lambda p: np.log1p(-p) - np.log(p)),
    "expon": (lambda q: -np.log1p(-q), _expon_isf),
    "uniform": (lambda q: q, lambda p: 1.0 - p),
}
CLOSED_SUPPORT = {"norm": (-np.inf, np.inf), "cauchy": (-np.inf, np.inf), "laplace": (-np.inf, np.inf),
                  "logistic": (-np.inf, np.inf), "expon": (0.0, np.inf), "uniform": (0.0, 1.0)}


def continuous(name, method, q, params, loc, scale, fns, valid):
    """scipy's ``rv_continuous.ppf / isf``: loc + scale * the standard quantile; the support's ends at q = 0 and 1,
    nan for q outside [0, 1] or an invalid parameter. ``fns``: the distribution's cdf, sf and logpdf."""
    q, *params = _bcast(q, *params)
    ok = (scale > 0) & (q >= 0) & (q <= 1)
    if valid is not None:
        ok = ok & valid(*params)
    inside = ok & (q > 0) & (q < 1)
    isf = method == "isf"
    qs = np.where(inside, q, 0.25)
    if name in CLOSED:
        std = CLOSED[name][isf](qs)
        support = CLOSED_SUPPORT[name]
    else:
        solver, support = ROOTS[name]
        ps = [np.where(inside, p, 1.0) for p in params]
        # the side whose tail probability t is <= 1/2: ppf's q > 1/2 and isf's q <= 1/2 are upper tails
        upper = (qs <= 0.5) if isf else (qs > 0.5)
        t = np.where(upper, qs, 1.0 - qs) if isf else np.where(upper, 1.0 - qs, qs)
        root = sps._stop(solver(upper, t, inside, *ps))
        std = root + _implicit(fns, root, qs, ps, isf)
    first, last = (support[1], support[0]) if isf else support
    out = np.where(q == 0, first, np.where(q == 1, last, std))
    return np.where(ok, loc + scale * out, np.nan)


def _implicit(fns, x, q, params, isf):
    """Zero in value; its derivative is the root's: F(x(q, theta), theta) = q gives dx = (dq - dF) / pdf."""
    pdf = np.exp(fns["logpdf"](x, *params))
    c = (fns["sf"](x, *params) - q) / pdf if isf else -(fns["cdf"](x, *params) - q) / pdf
    return c - sps._stop(c)


# ------------------------------------------------------------------------------------------------ discrete
def _moments(name, params):
    """(mean, standard deviation) for the Cantelli bound on the quantile."""
    if name == "poisson":
        (mu,) = params
        return mu, np.sqrt(mu)
    if name in ("binom", "bernoulli"):
        n, p = params if name == "binom" else (1.0, params[0])
        return n * p, np.sqrt(n * p * (1.0 - p))
    n, p = params  # nbinom: failures before the n-th success
    return n * (1.0 - p) / p, np.sqrt(n * (1.0 - p)) / p


_DISCRETE_TOP = {"poisson": lambda mu: np.inf + 0.0 * mu, "binom": lambda n, p: n + 0.0 * p,
                 "bernoulli": lambda p: 1.0 + 0.0 * p, "nbinom": lambda n, p: np.inf + 0.0 * n}


def _reaches(fns, ps, q, isf):
    """``k -> cdf(k) >= q`` (ppf) or ``sf(k) <= q`` (isf), as scipy asks, with a slack relative to the smaller
    tail (plus a few ulps of q) so that q taken from scipy's cdf(k) gives k back although the two cdfs may differ
    in their last digits; it is far below the tail itself, so 1 - 1e-12 is still told from 1 - 2e-12."""
    slack = _SLACK * np.minimum(q, 1.0 - q) + 8.0 * _EPS * q
    if isf:
        return lambda k: fns["sf"](k, *ps) <= q + slack
    return lambda k: fns["cdf"](k, *ps) >= q - slack


def discrete(name, method, q, params, loc, fns, valid):
    """scipy's ``rv_discrete.ppf``: the smallest k with cdf(k) >= q (``isf``: with sf(k) <= q); -1 + loc at q = 0
    (isf: q = 1), the support's top at the other end, nan outside [0, 1] or for an invalid parameter. A bisection
    over the counts between -1 and a Cantelli bound, in a ``while_loop``."""
    q, *params = _bcast(q, *params)
    ok = (q >= 0) & (q <= 1) & (valid(*params) if valid is not None else True)
    inside = ok & (q > 0) & (q < 1)
    isf = method == "isf"
    qs = sps._stop(np.where(inside, q, 0.5))
    ps = [sps._stop(np.where(inside, p, 0.5)) for p in params]
    top = sps._stop(_DISCRETE_TOP[name](*params))
    mean, sd = _moments(name, ps)
    tail = qs if isf else 1.0 - qs  # P(X > hi) <= tail puts the quantile at or below hi
    hi = np.floor(mean + sd * np.sqrt(np.minimum((1.0 - tail) / tail, _HUGE))) + 1.0
    hi = np.minimum(hi, np.where(inside, top, 1.0))
    hit = _reaches(fns, ps, qs, isf)

    def running(c):
        return ~np.all(c[0])

    def body(c):
        done, lo, hi = c
        mid = np.floor(0.5 * (lo + hi))
        h = hit(mid)
        lo_n, hi_n = np.where(h, lo, mid), np.where(h, mid, hi)
        return done | (hi_n - lo_n <= 1.0), np.where(done, lo, lo_n), np.where(done, hi, hi_n)
    _, _, k = while_loop(running, body, (~inside | (hi <= 0.0), -1.0 + 0.0 * hi, np.maximum(hi, 0.0)))
    k = sps._stop(k)  # piecewise constant in q and the parameters
    first, last = (top, -1.0) if isf else (-1.0, top)
    out = np.where(q == 0, first, np.where(q == 1, last, k))
    return np.where(ok, out + loc, np.nan)


QUANTILE_NAMES = set(ROOTS) | set(CLOSED) | set(_DISCRETE_TOP)
