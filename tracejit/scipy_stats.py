"""scipy.stats densities and distribution functions on traced values, built on tracejit.scipy_special and
tracejit.scipy_incomplete (the incomplete gamma and beta functions behind the cdfs of t, gamma, chi2, beta, f,
poisson, binom and nbinom).

Each supported distribution is a row: its shape-parameter names and, per method, a function of the standardized
value ``z = (x - loc) / scale`` (continuous) or ``k - loc`` (discrete) and the shapes. ``call`` binds scipy's
calling conventions (shapes positionally or by name, then ``loc``, ``scale``), applies the location-scale family,
and returns nan for an invalid parameter as scipy does; logcdf, sf and logsf not in a row are derived from its
cdf / sf (or, for symmetric distributions, from cdf(-z)). A method tracejit cannot compute on traced values
(``rvs``, another distribution) raises UnsupportedError naming it, never a wrong value; ``ppf`` and ``isf`` are in
tracejit/scipy_quantiles.py. How scipy's own entry points reach this module: tracejit/scipy_hooks.py.
"""
from __future__ import annotations

import math

import numpy as np

from .errors import UnsupportedError
from .trace.tracer import Tracer
from . import scipy_quantiles as sq
from . import scipy_special as sps
from .scipy_incomplete import betainc_xy, gammainc, gammaincc
from .scipy_special import betaln, log_ndtr, ndtr, xlog1py, xlogy

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_LOG2 = math.log(2.0)


def _lg(x):
    return sps._lgamma(x)


def _where_in(lo_ok, hi_ok, inside, outside):
    return np.where(lo_ok & hi_ok, inside, outside)


def _log1mexp(a):
    """log(1 - exp(-a)) for a > 0, accurate for small and large a (log(-expm1(-a)) / log1p(-exp(-a)))."""
    small = a < _LOG2
    return np.where(small, np.log(-np.expm1(-np.where(small, a, 1.0))), np.log1p(-np.exp(-np.where(small, 1.0, a))))


# ------------------------------------------------------------------------------------------------ continuous
def _norm_logpdf(z):
    return -0.5 * z * z - _LOG_SQRT_2PI


def _t_logpdf(z, df):
    return (_lg(0.5 * (df + 1.0)) - _lg(0.5 * df) - 0.5 * np.log(df * math.pi)
            - 0.5 * (df + 1.0) * np.log1p(z * z / df))


def _gamma_logpdf(z, a):
    pos = z >= 0
    return np.where(pos, xlogy(a - 1.0, np.where(pos, z, 1.0)) - z - _lg(a), -np.inf)


def _beta_logpdf(z, a, b):
    inside = (z >= 0) & (z <= 1)
    zs = np.where(inside, z, 0.5)
    return np.where(inside, xlogy(a - 1.0, zs) + xlog1py(b - 1.0, -zs) - betaln(a, b), -np.inf)


def _t_tail(z, df):
    """P(T > |z|) = I_x(df/2, 1/2)/2 with x = df/(df + z^2); 1 - x = z^2/(df + z^2) is passed as computed, so a
    small |z| keeps its precision."""
    zz = z * z
    return 0.5 * betainc_xy(0.5 * df, 0.5, df / (df + zz), zz / (df + zz))


def _t_slope_at_zero(z, df):
    """0 in value; at z == 0 exactly, derivative pdf(0): the tail's derivative through z^2 vanishes there."""
    return np.where(z == 0, (z - sps._stop(z)) * np.exp(_t_logpdf(0.0 * z, df)), 0.0)


def _t_cdf(z, df):
    tail = _t_tail(z, df)
    return np.where(z < 0, tail, 1.0 - tail) + _t_slope_at_zero(z, df)


def _t_sf(z, df):
    tail = _t_tail(z, df)
    return np.where(z < 0, 1.0 - tail, tail) - _t_slope_at_zero(z, df)


def _beta_cdf(z, a, b):
    zc = np.clip(z, 0.0, 1.0)
    return betainc_xy(a, b, zc, 1.0 - zc)


def _beta_sf(z, a, b):
    zc = np.clip(z, 0.0, 1.0)
    return betainc_xy(b, a, 1.0 - zc, zc)


def _f_logpdf(z, dfn, dfd):
    pos = z > 0
    zs = np.where(pos, z, 1.0)
    hn, hd = 0.5 * dfn, 0.5 * dfd
    val = (xlogy(hn, dfn / dfd) + xlogy(hn - 1.0, zs) - (hn + hd) * np.log1p(dfn * zs / dfd) - betaln(hn, hd))
    return np.where(pos, val, -np.inf)


def _f_parts(z, dfn, dfd):
    zc = np.maximum(z, 0.0)
    return 0.5 * dfn, 0.5 * dfd, dfn * zc / (dfn * zc + dfd), dfd / (dfn * zc + dfd)


def _f_cdf(z, dfn, dfd):
    hn, hd, u, w = _f_parts(z, dfn, dfd)
    return betainc_xy(hn, hd, u, w)


def _f_sf(z, dfn, dfd):
    hn, hd, u, w = _f_parts(z, dfn, dfd)
    return betainc_xy(hd, hn, w, u)


def _cauchy_cdf(z):
    return np.arctan2(1.0, -z) / math.pi  # 1/2 + atan(z)/pi without cancelling in the left tail


def _laplace_logcdf(z):
    neg = z < 0
    return np.where(neg, np.where(neg, z, 0.0) - _LOG2, np.log1p(-0.5 * np.exp(-np.where(neg, 0.0, z))))


def _logistic_logpdf(z):
    a = np.abs(z)
    return -a - 2.0 * np.log1p(np.exp(-a))


def _expon_logcdf(z):
    pos = z > 0
    return np.where(pos, _log1mexp(np.where(pos, z, 1.0)), -np.inf)


def _uniform_logpdf(z):
    return np.where((z >= 0) & (z <= 1), 0.0 * z, -np.inf)


# ------------------------------------------------------------------------------------------------ discrete
def _is_count(k, upper=None):
    ok = (k >= 0) & (k == np.floor(k))
    return ok if upper is None else ok & (k <= upper)


def _poisson_logpmf(k, mu):
    ok = _is_count(k)
    ks = np.where(ok, k, 0.0)
    return np.where(ok, xlogy(ks, mu) - mu - _lg(ks + 1.0), -np.inf)


def _bernoulli_logpmf(k, p):
    ok = _is_count(k, 1.0)
    ks = np.where(ok, k, 0.0)
    return np.where(ok, xlogy(ks, p) + xlog1py(1.0 - ks, -p), -np.inf)


def _bernoulli_cdf(k, p):
    return np.where(k < 0, 0.0 * p, np.where(k < 1, 1.0 - p, 1.0 + 0.0 * p))


def _count_below(k, upper=None):
    """floor(k) + 1 (the number of counts <= k), kept at 1 where k < 0 (and below upper) so that an unselected
    branch stays finite."""
    kf = np.floor(k)
    ok = k >= 0 if upper is None else (k >= 0) & (kf < upper)
    return ok, np.where(ok, kf + 1.0, 1.0)


def _poisson_cdf(k, mu):
    ok, m = _count_below(k)
    return np.where(ok, gammaincc(m, mu), 0.0 * mu)


def _poisson_sf(k, mu):
    ok, m = _count_below(k)
    return np.where(ok, gammainc(m, mu), 1.0 + 0.0 * mu)


def _binom_tails(k, n, p):
    """(P(K <= k), P(K > k)) for 0 <= k < n: I_(1-p)(n - k, k + 1) and I_p(k + 1, n - k)."""
    ok, m = _count_below(k, n)
    rest = np.where(ok, n - m + 1.0, 1.0)
    return ok, betainc_xy(rest, m, 1.0 - p, p), betainc_xy(m, rest, p, 1.0 - p)


def _binom_cdf(k, n, p):
    ok, cdf, _ = _binom_tails(k, n, p)
    return np.where(ok, cdf, np.where(k < 0, 0.0, 1.0) + 0.0 * p)


def _binom_sf(k, n, p):
    ok, _, sf = _binom_tails(k, n, p)
    return np.where(ok, sf, np.where(k < 0, 1.0, 0.0) + 0.0 * p)


def _nbinom_logpmf(k, n, p):
    ok = _is_count(k)
    ks = np.where(ok, k, 0.0)
    return np.where(ok, _lg(ks + n) - _lg(ks + 1.0) - _lg(n) + xlogy(n, p) + xlog1py(ks, -p), -np.inf)


def _nbinom_cdf(k, n, p):
    ok, m = _count_below(k)
    return np.where(ok, betainc_xy(n, m, p, 1.0 - p), 0.0 * p)


def _nbinom_sf(k, n, p):
    ok, m = _count_below(k)
    return np.where(ok, betainc_xy(m, n, 1.0 - p, p), 1.0 + 0.0 * p)


def _binom_logpmf(k, n, p):
    ok = _is_count(k, n)
    ks = np.where(ok, k, 0.0)
    comb = _lg(n + 1.0) - _lg(ks + 1.0) - _lg(n - ks + 1.0)
    return np.where(ok, comb + xlogy(ks, p) + xlog1py(n - ks, -p), -np.inf)


# name -> (shape names, {method: function of (z, *shapes)}, parameter check of the shapes (True where valid))
CONTINUOUS = {
    "norm": ((), {"logpdf": _norm_logpdf, "cdf": ndtr, "logcdf": log_ndtr}, None),
    "t": (("df",), {"logpdf": _t_logpdf, "cdf": _t_cdf, "sf": _t_sf}, lambda df: df > 0),
    "gamma": (("a",), {"logpdf": _gamma_logpdf, "cdf": lambda z, a: gammainc(a, np.maximum(z, 0.0)),
                       "sf": lambda z, a: gammaincc(a, np.maximum(z, 0.0))}, lambda a: a > 0),
    "chi2": (("df",), {"logpdf": lambda z, df: _gamma_logpdf(0.5 * z, 0.5 * df) - _LOG2,
                       "cdf": lambda z, df: gammainc(0.5 * df, np.maximum(0.5 * z, 0.0)),
                       "sf": lambda z, df: gammaincc(0.5 * df, np.maximum(0.5 * z, 0.0))}, lambda df: df > 0),
    "beta": (("a", "b"), {"logpdf": _beta_logpdf, "cdf": _beta_cdf, "sf": _beta_sf},
             lambda a, b: (a > 0) & (b > 0)),
    "f": (("dfn", "dfd"), {"logpdf": _f_logpdf, "cdf": _f_cdf, "sf": _f_sf},
          lambda dfn, dfd: (dfn > 0) & (dfd > 0)),
    "cauchy": ((), {"logpdf": lambda z: -math.log(math.pi) - np.log1p(z * z), "cdf": _cauchy_cdf,
                    "logcdf": lambda z: np.log(_cauchy_cdf(z))}, None),
    "laplace": ((), {"logpdf": lambda z: -_LOG2 - np.abs(z), "logcdf": _laplace_logcdf,
                     "cdf": lambda z: np.exp(_laplace_logcdf(z))}, None),
    "logistic": ((), {"logpdf": _logistic_logpdf, "cdf": lambda z: _logistic_cdf(z),
                      "logcdf": lambda z: -np.logaddexp(0.0, -z)}, None),
    "expon": ((), {"logpdf": lambda z: np.where(z >= 0, -z, -np.inf), "logcdf": _expon_logcdf,
                   "cdf": lambda z: np.where(z > 0, -np.expm1(-np.where(z > 0, z, 0.0)), 0.0 * z)}, None),
    "uniform": ((), {"logpdf": _uniform_logpdf, "cdf": lambda z: np.clip(z, 0.0, 1.0),
                     "logcdf": lambda z: np.log(np.clip(z, 0.0, 1.0))}, None),
}
DISCRETE = {
    "poisson": (("mu",), {"logpmf": _poisson_logpmf, "cdf": _poisson_cdf, "sf": _poisson_sf}, lambda mu: mu >= 0),
    "bernoulli": (("p",), {"logpmf": _bernoulli_logpmf, "cdf": _bernoulli_cdf,
                           "logcdf": lambda k, p: np.log(_bernoulli_cdf(k, p))}, lambda p: (p >= 0) & (p <= 1)),
    "binom": (("n", "p"), {"logpmf": _binom_logpmf, "cdf": _binom_cdf, "sf": _binom_sf},
              lambda n, p: (n >= 0) & (n == np.floor(n)) & (p >= 0) & (p <= 1)),
    "nbinom": (("n", "p"), {"logpmf": _nbinom_logpmf, "cdf": _nbinom_cdf, "sf": _nbinom_sf},
               lambda n, p: (n > 0) & (p > 0) & (p <= 1)),
}


def _logistic_cdf(z):
    import scipy.special
    return scipy.special.expit(z)

_EXP = {"pdf": "logpdf", "pmf": "logpmf"}  # pdf = exp(logpdf)


def _unsupported(name, method, why=""):
    return UnsupportedError(
        f"scipy.stats.{name}.{method} is not supported on traced values by tracejit{why}. Supported on traced "
        f"values: {supported()}. Compute it outside the traced function (pass the result in), or write it with "
        f"numpy and scipy.special functions")


_SYMMETRIC = {"norm", "cauchy", "laplace", "logistic"}  # sf(z) = cdf(-z), logsf(z) = logcdf(-z)


def _method(name, methods, base):
    """The function computing ``base`` (logcdf, sf, logsf derived from cdf / sf / symmetry when not in the row)."""
    if base in methods:
        return methods[base]
    if base in ("sf", "logsf") and name in _SYMMETRIC:
        f = _method(name, methods, base.replace("sf", "cdf"))
        return None if f is None else (lambda z, *p: f(-z, *p))
    if base == "sf" and "cdf" in methods:
        return lambda z, *p: 1.0 - methods["cdf"](z, *p)
    if base in ("logcdf", "logsf") and "cdf" in methods and "sf" in methods:
        return lambda z, *p: _log_of_pair(methods[base[3:]](z, *p), methods["sf" if base == "logcdf" else "cdf"](z, *p))
    if base in ("logcdf", "logsf"):
        f = _method(name, methods, base[3:])
        return None if f is None else (lambda z, *p: np.log(f(z, *p)))
    return None


def _log_of_pair(v, complement):
    """log v, through log1p(-complement) where v is near 1 (log v would keep only v's absolute precision)."""
    return np.where(v < 0.5, np.log(np.where(v < 0.5, v, 0.25)), np.log1p(-np.where(v < 0.5, 0.25, complement)))


def _methods_of(name, methods):
    have = {m for m in ("logpdf", "logpmf", "cdf", "logcdf", "sf", "logsf") if _method(name, methods, m)}
    return have | {k for k, v in _EXP.items() if v in have} | ({"ppf", "isf"} if name in sq.QUANTILE_NAMES else set())


def supported() -> str:
    rows = [f"{n}.{'/'.join(sorted(_methods_of(n, m)))}" for n, (_, m, _) in {**CONTINUOUS, **DISCRETE}.items()]
    return ", ".join(rows) + ", multivariate_normal.logpdf/pdf, dirichlet.logpdf/pdf"


def _bind(name, method, shapes, discrete, args, kwds):
    """scipy's argument conventions: ``(x, *shapes, loc=0, scale=1)``, shapes and loc/scale also by keyword."""
    names = ("x",) + shapes + (("loc",) if discrete else ("loc", "scale"))
    if len(args) > len(names):
        raise TypeError(f"scipy.stats.{name}.{method}() takes at most {len(names)} arguments ({', '.join(names)}), "
                        f"got {len(args)}")
    vals = dict(zip(names, args))
    for k, v in kwds.items():
        if k not in names or k in vals:
            raise TypeError(f"scipy.stats.{name}.{method}() got an unexpected or repeated argument {k!r}")
        vals[k] = v
    missing = [n for n in names[:1 + len(shapes)] if n not in vals]
    if missing:
        raise TypeError(f"scipy.stats.{name}.{method}() missing argument(s): {', '.join(missing)}")
    return [_f64(vals[n]) for n in names[:1 + len(shapes)]], _f64(vals.get("loc", 0.0)), _f64(vals.get("scale", 1.0))


def _f64(v):
    """scipy.stats computes in float64 whatever the inputs' dtype."""
    if isinstance(v, (Tracer, np.ndarray, np.generic)):
        return v if v.dtype == np.float64 else v.astype(np.float64)
    return float(v) if isinstance(v, (bool, int, float)) else np.asarray(v, np.float64)


def call(name, method, args, kwds):
    """``scipy.stats.<name>.<method>(*args, **kwds)`` where some argument is traced."""
    discrete = name in DISCRETE
    table = DISCRETE if discrete else CONTINUOUS
    if name not in table:
        raise _unsupported(name, method)
    shapes, methods, valid = table[name]
    if method in ("ppf", "isf"):
        return _quantile(name, method, discrete, (shapes, methods, valid), args, kwds)
    base = _EXP.get(method, method)
    fun = _method(name, methods, base)
    if fun is None:
        raise _unsupported(name, method)
    (x, *params), loc, scale = _bind(name, method, shapes, discrete, args, kwds)
    z = x - loc if discrete else (x - loc) / scale
    out = fun(z, *params)
    if base in ("logpdf",):
        out = out - np.log(scale)
    if base != method:
        out = np.exp(out)
    ok = True if discrete else scale > 0
    if valid is not None:
        ok = ok & valid(*params)
    return np.where(ok, out, np.nan)


def _quantile(name, method, discrete, row, args, kwds):
    """``ppf`` / ``isf``, whose first argument scipy names ``q``."""
    shapes, methods, valid = row
    if name not in sq.QUANTILE_NAMES:
        raise _unsupported(name, method)
    if "q" in kwds:
        kwds = dict(kwds)
        args = (kwds.pop("q"),) + tuple(args)
    (q, *params), loc, scale = _bind(name, method, shapes, discrete, args, kwds)
    fns = {m: _method(name, methods, m) for m in ("cdf", "sf", "logpdf")}
    if discrete:
        return sq.discrete(name, method, q, params, loc, fns, valid)
    return sq.continuous(name, method, q, params, loc, scale, fns, valid)


# ------------------------------------------------------------------------------------------------ multivariate
def mvn_logpdf(x, mean=None, cov=1, allow_singular=False):
    """multivariate_normal.logpdf with traced x / mean / cov. A concrete 2-D covariance is factored once at trace
    time; a traced one by the traced Cholesky factorization (differentiable), the Mahalanobis terms by a solve
    with the factor and log det from its diagonal. A scalar or 1-D cov is a diagonal one, as scipy reads it."""
    if isinstance(cov, Tracer):
        if cov.ndim < 2:
            return _mvn_diag(x, mean, cov)
        return _mvn_traced_cov(x, mean, _f64(cov))
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim < 2:
        return _mvn_diag(x, mean, cov)
    d = cov.shape[0]
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise UnsupportedError("scipy.stats.multivariate_normal.logpdf: the covariance is not positive definite; "
                               "tracejit supports positive definite covariances only") from None
    inv = np.linalg.inv(chol)
    logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
    dev = _deviation(x, mean, d)
    w = np.matmul(dev, inv.T.astype(np.result_type(dev.dtype, np.float32)))  # rows of L^-1 (x - mean)
    maha = np.sum(w * w, axis=-1)
    return _squeeze(-0.5 * (d * math.log(2 * math.pi) + logdet + maha))


def _mvn_traced_cov(x, mean, cov):
    """L = cholesky(cov); log N = -(d log 2 pi + 2 sum log diag L + |L^-1 (x - mean)|^2)/2. Points of any batch
    shape are solved as the columns of one (d, N) right-hand side. A covariance that is not positive definite
    gives nan (the factorization's), where scipy raises."""
    if cov.ndim != 2:
        raise UnsupportedError(f"scipy.stats.multivariate_normal.logpdf: cov must be a (d, d) matrix, got "
                               f"{cov.ndim} dimensions")
    d = _known(cov.shape[-1])
    chol = np.linalg.cholesky(cov)
    diag = np.diagonal(chol)
    dev = _deviation(x, mean, d)
    batch = tuple(np.shape(dev)[:-1])
    cols = np.reshape(dev, (-1, np.shape(dev)[-1])).T if len(batch) != 1 else dev.T
    if not batch:
        cols = dev[:, None]
    w = np.linalg.solve(chol, cols)
    maha = np.sum(w * w, axis=0)
    maha = maha[0] if not batch else (maha if len(batch) == 1 else np.reshape(maha, batch))
    dims = d if d is not None else np.sum(np.ones_like(diag))
    return _squeeze(-0.5 * (dims * math.log(2 * math.pi) + 2.0 * np.sum(np.log(diag)) + maha))


def _known(n):
    """A length as a Python int when it is one (traced lengths other than 1 are symbolic), else None."""
    return n if isinstance(n, int) else None


def _deviation(x, mean, d):
    """x - mean with points along the last axis; as scipy, a scalar x, or (in dimension 1) a vector, is points of
    dimension 1."""
    x = _f64(x)
    if np.ndim(x) == 0 or (d == 1 and _known(np.shape(x)[-1]) != 1):
        x = x[..., None]
    return x if mean is None else x - _f64(mean)


def _mvn_diag(x, mean, cov):
    """A scalar or 1-D covariance is a diagonal one (scipy's reading): a sum over components, no factorization."""
    var = _f64(cov)
    d = None
    for v in (mean, var):
        if v is not None and np.ndim(v):
            d = _known(np.shape(v)[-1])
    if d is None and mean is None and np.ndim(var) == 0:
        d = _known(np.shape(x)[-1]) if np.ndim(x) else 1
    dev = _deviation(x, mean, d)
    terms = math.log(2 * math.pi) + np.log(var) + dev * dev / var
    return _squeeze(-0.5 * np.sum(terms * np.ones_like(dev), axis=-1))


def _squeeze(v):
    """scipy squeezes every length-1 axis out of a multivariate density (one point gives a scalar)."""
    axes = tuple(i for i, n in enumerate(np.shape(v)) if isinstance(n, int) and n == 1)
    return np.squeeze(v, axis=axes) if axes else v


def mvn_pdf(x, mean=None, cov=1, allow_singular=False):
    return np.exp(mvn_logpdf(x, mean, cov, allow_singular))


def dirichlet_logpdf(x, alpha):
    """dirichlet.logpdf with components along the first axis of x (scipy's layout); K - 1 components get the last
    one appended as 1 - sum."""
    alpha, x = _f64(alpha), _f64(x)
    k, kx = _known(np.shape(alpha)[0]), _known(np.shape(x)[0])
    if k is not None and kx is not None and kx == k - 1:
        x = np.concatenate([x, (1.0 - np.sum(x, axis=0))[None]], axis=0)
    elif k is not None and kx is not None and kx != k:
        raise ValueError(f"scipy.stats.dirichlet.logpdf: x has {kx} components along its first axis, alpha has {k}")
    a = np.reshape(alpha, (-1,) + (1,) * (np.ndim(x) - 1))
    norm = np.sum(_lg(alpha)) - _lg(np.sum(alpha))
    return np.sum(xlogy(a - 1.0, x), axis=0) - norm


def dirichlet_pdf(x, alpha):
    return np.exp(dirichlet_logpdf(x, alpha))


class FrozenMultivariateNormal:
    """``scipy.stats.multivariate_normal(mean, cov)`` where mean or cov is traced: scipy's frozen object would
    factor the covariance with numpy at construction; this one keeps them traced, so its densities are
    differentiable in both (as the non-frozen ``multivariate_normal.logpdf(x, mean, cov)``)."""

    def __init__(self, mean=None, cov=1, allow_singular=False, seed=None, **_):
        self.mean, self.cov, self.allow_singular = mean, cov, allow_singular

    def logpdf(self, x):
        return mvn_logpdf(x, self.mean, self.cov, self.allow_singular)

    def pdf(self, x):
        return mvn_pdf(x, self.mean, self.cov, self.allow_singular)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        raise _unsupported("multivariate_normal", f"(mean, cov).{name}", " with a traced mean or covariance")


MULTIVARIATE = {("multivariate_normal", "logpdf"): mvn_logpdf, ("multivariate_normal", "pdf"): mvn_pdf,
                ("dirichlet", "logpdf"): dirichlet_logpdf, ("dirichlet", "pdf"): dirichlet_pdf}
