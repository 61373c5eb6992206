"""The incomplete gamma and beta functions on traced values and the distribution functions built on them (issue
12): values against scipy on grids with their edges (eager, jit, float32), gradients against JAX (x64) and central
differences, scipy.stats cdf/sf/logcdf/logsf with loc/scale, multivariate_normal with a traced covariance, and a
censored survival model's likelihood, jitted and differentiated."""
from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st

import tracejit as tj
from tracejit import scipy_incomplete as tin
from tracejit.errors import UnsupportedError

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp, jsp, jst = jax.numpy, jax.scipy.special, jax.scipy.stats

RNG = np.random.default_rng(12)


def rel_err(got, want, tiny=1e-290):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want)), (got, want)
    fin = np.isfinite(want)
    assert np.array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])
    return float(np.max(np.abs(got[fin] - want[fin]) / np.maximum(np.abs(want[fin]), tiny), initial=0.0))


def _gamma_grid(n=600):
    a = np.exp(RNG.uniform(np.log(0.05), np.log(500.0), n))
    x = a * np.exp(RNG.uniform(-3, 3, n))
    x[:40] = a[:40] + 1.0  # the series / continued-fraction transition
    x[40:60] = np.round(a[40:60])
    a[60:80] = np.round(a[60:80]) + 1.0  # integer a, as poisson uses it
    edge_a = np.array([0, 0, 1, 1, np.inf, -1, 1, 2, 0.5, np.nan, 3])
    edge_x = np.array([0, 1, 0, np.inf, 1, 1, -1, 1e-300, 1e4, 1, np.nan])
    return np.concatenate([a, edge_a]), np.concatenate([x, edge_x])


def test_gammainc_gammaincc_against_scipy_eager_and_jitted():
    a, x = _gamma_grid()
    for f, ref in ((tin.gammainc, sp.gammainc), (tin.gammaincc, sp.gammaincc)):
        with np.errstate(all="ignore"):
            assert rel_err(f(a, x), ref(a, x)) < 3e-12
    got_p, got_q = tj.jit(lambda u, v: (sp.gammainc(u, v), sp.gammaincc(u, v)))(a, x)
    small = a < 100  # the prefactor's two logarithms of size a cost log10(a) digits beyond
    assert rel_err(got_p[small], sp.gammainc(a, x)[small]) < 5e-13
    assert rel_err(got_q[small], sp.gammaincc(a, x)[small]) < 5e-13
    assert rel_err(got_p, sp.gammainc(a, x)) < 3e-12


def test_betainc_against_scipy_with_edges():
    n = 600
    a, b = np.exp(RNG.uniform(np.log(0.5), np.log(500.0), (2, n)))
    x = RNG.uniform(0, 1, n)
    x[:40] = (a[:40] + 1) / (a[:40] + b[:40] + 2)  # the symmetry's switch point
    got = tj.jit(lambda u, v, w: sp.betainc(u, v, w))(a, b, x)
    assert rel_err(got, sp.betainc(a, b, x)) < 1e-12
    small = np.exp(RNG.uniform(np.log(0.01), np.log(0.5), (2, n)))  # 1 - I loses digits where I is small
    got = tin.betainc(small[0], small[1], x)
    np.testing.assert_allclose(got, sp.betainc(small[0], small[1], x), rtol=1e-9, atol=1e-14)
    ea = np.array([0, 1, 1, 1, 1, 0, 1, 2.0, 2.0])
    eb = np.array([1, 0, 1, 1, 1, 0, -1, 3.0, 3.0])
    ex = np.array([0.5, 0.5, 0, 1, 1.5, 0.5, 0.5, -0.1, np.nan])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(tin.betainc(ea, eb, ex), sp.betainc(ea, eb, ex))


def test_float32_keeps_its_dtype_and_accuracy():
    a, x = _gamma_grid(200)
    a, x = a[:200].astype(np.float32), x[:200].astype(np.float32)
    p = tj.jit(lambda u, v: sp.gammainc(u, v))(a, x)
    assert p.dtype == np.float32
    assert tj.jit(lambda u: sp.gammainc(u, np.float32(2.0)) + sp.betainc(u, 2.0, 0.3))(a[:5]).dtype == np.float32
    want = sp.gammainc(a.astype(np.float64), x.astype(np.float64))
    np.testing.assert_allclose(p, want, rtol=2e-5, atol=1e-6)
    b = np.exp(RNG.uniform(0, 3, 200)).astype(np.float32)
    z = RNG.uniform(0, 1, 200).astype(np.float32)
    i = tj.jit(lambda u, v, w: sp.betainc(u, v, w))(a / 10 + 0.5, b, z)
    assert i.dtype == np.float32
    np.testing.assert_allclose(i, sp.betainc(*(np.float64(t) for t in (a / 10 + 0.5, b, z))), rtol=2e-5, atol=1e-6)


def _central(f, args, k, h=1e-6):
    up, dn = list(args), list(args)
    up[k], dn[k] = args[k] + h, args[k] - h
    return (f(*up) - f(*dn)) / (2 * h)


def test_gradients_against_jax_and_central_differences():
    a = np.array([0.3, 0.7, 2.5, 7.0, 30.0, 4.0])
    x = np.array([0.2, 3.5, 6.9, 8.0, 25.0, 1e-3])
    w = np.arange(1.0, 7.0)
    g = tj.jit(tj.grad(lambda u, v: np.sum(sp.gammainc(u, v) * w), argnums=(0, 1)))(a, x)
    jg = jax.jit(jax.grad(lambda u, v: jnp.sum(jsp.gammainc(u, v) * w), argnums=(0, 1)))(a, x)
    for got, want in zip(g, jg):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-11)
    gc = tj.grad(lambda u, v: np.sum(sp.gammaincc(u, v) * w), argnums=(0, 1))(a, x)
    for got, want in zip(gc, g):
        np.testing.assert_allclose(got, -want, rtol=1e-12)
    b = np.array([1.5, 0.7, 3.0, 40.0, 2.0, 0.9])
    z = np.array([0.1, 0.5, 0.3, 0.6, 0.97, 0.02])
    g = tj.grad(lambda u, v, t: np.sum(sp.betainc(u, v, t) * w), argnums=(0, 1, 2))(a, b, z)
    np.testing.assert_allclose(g[2], jax.grad(lambda t: jnp.sum(jsp.betainc(a, b, t) * w))(z), rtol=1e-11)
    for k in (0, 1):  # JAX refuses d/da, d/db of betainc; tracejit's are checked against central differences
        np.testing.assert_allclose(g[k], _central(sp.betainc, (a, b, z), k) * w, rtol=1e-6, atol=1e-9)


DISTS = {  # name -> (points, shape parameters), drawn across the parameters' ranges
    "t": lambda n: (RNG.normal(0, 3, n), (np.exp(RNG.uniform(-1, 4, n)),)),
    "gamma": lambda n: (np.exp(RNG.uniform(-3, 3, n)), (np.exp(RNG.uniform(-2, 4, n)),)),
    "chi2": lambda n: (np.exp(RNG.uniform(-3, 4, n)), (np.exp(RNG.uniform(-1, 4, n)),)),
    "beta": lambda n: (RNG.uniform(-0.1, 1.1, n), tuple(np.exp(RNG.uniform(-1, 4, (2, n))))),
    "f": lambda n: (np.exp(RNG.uniform(-3, 3, n)), tuple(np.exp(RNG.uniform(-1, 4, (2, n))))),
    "poisson": lambda n: (RNG.integers(-1, 60, n) + 0.5 * (RNG.random(n) < 0.2), (np.exp(RNG.uniform(-2, 4, n)),)),
    "binom": lambda n: (RNG.integers(-1, 60, n) * 1.0, (RNG.integers(0, 50, n) * 1.0, RNG.uniform(0, 1, n))),
    "nbinom": lambda n: (RNG.integers(-1, 60, n) * 1.0, (np.exp(RNG.uniform(-1, 3, n)), RNG.uniform(0.05, 1, n))),
}


@pytest.mark.parametrize("name", sorted(DISTS))
def test_distribution_functions_against_scipy(name):
    dist = getattr(st, name)
    x, params = DISTS[name](60)
    dens = "logpmf" if name in ("poisson", "binom", "nbinom") else "logpdf"
    methods = ("cdf", "sf", "logcdf", "logsf", dens)
    got = tj.jit(lambda v, *p: tuple(getattr(dist, m)(v, *p) for m in methods))(x, *params)
    cdf, sf = dist.cdf(x, *params), dist.sf(x, *params)
    with np.errstate(divide="ignore"):  # log of the one of cdf / sf below 1/2, log1p of minus the other above
        logcdf = np.where(cdf < 0.5, np.log(cdf), np.log1p(-sf))
        logsf = np.where(sf < 0.5, np.log(sf), np.log1p(-cdf))
    for m, g, want in zip(methods, got, (cdf, sf, logcdf, logsf, getattr(dist, dens)(x, *params))):
        assert rel_err(g, want) < 1e-11, (name, m)


def test_loc_scale_keywords_and_invalid_parameters():
    x = np.array([0.5, 2.0, 9.0, -1.0])
    got = tj.jit(lambda v: (st.gamma.cdf(v, 2.0, loc=1.0, scale=3.0), st.t.sf(v, df=4.0, scale=2.0),
                            st.poisson.cdf(v, 3.0, loc=1), st.beta(2.0, 3.0, scale=10.0).cdf(v),
                            st.chi2.logsf(v, -1.0), st.binom.cdf(v, 8, 1.5)))(x)
    want = (st.gamma.cdf(x, 2.0, loc=1.0, scale=3.0), st.t.sf(x, df=4.0, scale=2.0), st.poisson.cdf(x, 3.0, loc=1),
            st.beta(2.0, 3.0, scale=10.0).cdf(x), st.chi2.logsf(x, -1.0), st.binom.cdf(x, 8, 1.5))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-300)
    with pytest.raises(UnsupportedError, match="scipy.stats.lognorm.ppf"):  # gamma.ppf was here: now supported
        tj.jit(lambda v: st.lognorm.ppf(v, 2.0))(x)


def test_cdf_gradients_against_closed_forms():
    x = np.array([-2.0, -0.3, 0.4, 3.0])
    df = np.array([1.5, 3.0, 10.0, 30.0])
    g = tj.jit(tj.grad(lambda v, d: np.sum(st.t.logcdf(v, d)), argnums=(0, 1)))(x, df)
    np.testing.assert_allclose(g[0], np.exp(st.t.logpdf(x, df) - st.t.logcdf(x, df)), rtol=1e-12)
    np.testing.assert_allclose(g[1], _central(st.t.logcdf, (x, df), 1), rtol=1e-6)
    at0 = np.array([0.0, 1.0])  # the tail is a function of z^2: its chain rule alone gives 0 at z == 0
    np.testing.assert_allclose(tj.grad(lambda v: np.sum(st.t.cdf(v, 3.0)))(at0), st.t.pdf(at0, 3.0), rtol=1e-12)
    k, mu = np.array([0.0, 2.0, 5.0, 11.0]), np.array([0.5, 3.0, 4.0, 20.0])
    g = tj.grad(lambda m: np.sum(st.poisson.logcdf(k, m)))(mu)  # d/dmu log Q(k + 1, mu) = -pmf / cdf
    np.testing.assert_allclose(g, -st.poisson.pmf(k, mu) / st.poisson.cdf(k, mu), rtol=1e-12)
    a, s, v = np.array([0.5, 2.0, 9.0, 3.0]), 1.7, x + 2.5
    g = tj.grad(lambda q, u: np.sum(st.gamma.cdf(v, q, scale=u)), argnums=(0, 1))(a, s)
    np.testing.assert_allclose(g[0], _central(lambda q, u: st.gamma.cdf(v, q, scale=u), (a, s), 0), rtol=1e-7)
    np.testing.assert_allclose(g[1], -np.sum(v / s * st.gamma.pdf(v, a, scale=s)), rtol=1e-12)


def test_multivariate_normal_with_traced_covariance():
    d = 4
    m = RNG.normal(size=(d, d))
    cov, mean, pts = m @ m.T + np.eye(d), RNG.normal(size=d), RNG.normal(size=(9, d))
    mvn = st.multivariate_normal
    f = tj.jit(lambda v, mu, c: (mvn.logpdf(v, mu, c), mvn.pdf(v[0], mu, c), mvn.logpdf(v, cov=c),
                                 mvn.logpdf(v[0, :1], 1.0, c[:1, :1])))
    got = f(pts, mean, cov)
    want = (st.multivariate_normal.logpdf(pts, mean, cov), st.multivariate_normal.pdf(pts[0], mean, cov),
            st.multivariate_normal.logpdf(pts, cov=cov), st.multivariate_normal.logpdf(pts[0, :1], 1.0, cov[:1, :1]))
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-12)
    g = tj.jit(tj.grad(lambda v, mu, c: np.sum(st.multivariate_normal.logpdf(v, mu, c)), argnums=(0, 1, 2)))(
        pts, mean, cov)
    # closed forms (JAX's convention for the covariance: the symmetric gradient), cheaper than JAX's compile
    inv = np.linalg.inv(cov)
    dev = (pts - mean) @ inv
    want = (-dev, dev.sum(axis=0), 0.5 * (dev.T @ dev - len(pts) * inv))
    for got_g, want_g in zip(g, want):
        np.testing.assert_allclose(got_g, want_g, rtol=1e-10, atol=1e-13)


def test_frozen_multivariate_normal_with_traced_mean_and_covariance():
    d = 3
    m = RNG.normal(size=(d, d))
    cov, mean, pts = m @ m.T + np.eye(d), RNG.normal(size=d), RNG.normal(size=(5, d))

    def densities(mu, c, v):
        frozen = st.multivariate_normal(mu, c)
        return frozen.logpdf(v), frozen.pdf(v[0]), st.multivariate_normal(mean=mu, cov=2.0).logpdf(v)
    got, want = tj.jit(densities)(mean, cov, pts), densities(mean, cov, pts)
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-12)
    loss = lambda mu, c: np.sum(st.multivariate_normal(mu, c).logpdf(pts))  # noqa: E731
    g = tj.grad(loss, argnums=(0, 1))(mean, cov)
    inv = np.linalg.inv(cov)
    dev = (pts - mean) @ inv
    for got_g, want_g in zip(g, (dev.sum(axis=0), 0.5 * (dev.T @ dev - len(pts) * inv))):  # JAX's symmetric form
        np.testing.assert_allclose(got_g, want_g, rtol=1e-10, atol=1e-13)
    with pytest.raises(UnsupportedError, match="multivariate_normal.*entropy"):
        tj.jit(lambda mu: st.multivariate_normal(mu, cov).entropy())(mean)


def test_censored_gamma_survival_model():
    """A Weibull-free survival model: gamma event times, right-censored at a follow-up time; the censored points
    contribute log S(t) (gamma.logsf). Jitted log-likelihood and its gradient against scipy + central differences."""
    shape, scale = 2.3, 1.8
    t = RNG.gamma(shape, scale, 200)
    follow = RNG.uniform(1.0, 8.0, 200)
    seen = t <= follow
    obs = np.minimum(t, follow)

    def loglik(theta, times, observed):
        a, s = np.exp(theta[0]), np.exp(theta[1])
        events = st.gamma.logpdf(times, a, scale=s)
        censored = st.gamma.logsf(times, a, scale=s)
        return np.sum(np.where(observed, events, censored))

    def loglik_scipy(theta):
        a, s = np.exp(theta)
        return (np.sum(st.gamma.logpdf(obs[seen], a, scale=s)) + np.sum(st.gamma.logsf(obs[~seen], a, scale=s)))
    theta = np.array([0.5, 0.3])
    val, g = tj.jit(tj.value_and_grad(loglik))(theta, obs, seen)
    np.testing.assert_allclose(val, loglik_scipy(theta), rtol=1e-12)
    fd = [(loglik_scipy(theta + h) - loglik_scipy(theta - h)) / 2e-6 for h in np.eye(2) * 1e-6]
    np.testing.assert_allclose(g, fd, rtol=1e-6)



def test_survival_example_fits():
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "survival_gamma.py")
    spec = importlib.util.spec_from_file_location("survival_gamma", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    times, observed = ex.simulate(np.random.default_rng(1), n=150)
    theta, value = ex.fit(times, observed, steps=60)
    np.testing.assert_allclose(value, ex.log_posterior_scipy(theta, times, observed), rtol=1e-12)
    assert abs(np.exp(theta[0]) - 2.3) < 0.8 and abs(np.exp(theta[1]) - 1.8) < 0.8
