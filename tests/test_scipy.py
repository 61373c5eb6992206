"""scipy.special and scipy.stats called on traced values as users call them (issue 12): values against scipy (eager,
jit, float32/float64, broadcasting, edges and tails), gradients against JAX (x64) and central differences, vmap,
non-traced calls left untouched, and clear errors for what tracejit does not support."""
from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from scipy.special import logsumexp  # bound before the test runs: the hook changes the function object itself

import tracejit as tj
from tracejit import scipy_special as tsp
from tracejit.errors import UnsupportedError

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp, jsp, jst = jax.numpy, jax.scipy.special, jax.scipy.stats


def rel_err(got, want):
    """Max relative error over finite results (absolute below 1e-290: subnormal results carry few digits)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want)), (got[np.isnan(got) != np.isnan(want)],
                                                           want[np.isnan(got) != np.isnan(want)])
    fin = np.isfinite(want)
    assert np.array_equal(got[~fin & ~np.isnan(want)], want[~fin & ~np.isnan(want)])  # same infinities
    return float(np.max(np.abs(got[fin] - want[fin]) / np.maximum(np.abs(want[fin]), 1e-290), initial=0.0))


# ------------------------------------------------------------------------------------------------ decompositions
# Evaluated on plain arrays (the same code that traces), over wide ranges: cheap, and where the accuracy lives.
X = np.concatenate([np.linspace(-40, 10, 2001), -np.logspace(1, 4, 50), np.logspace(-300, 1.5, 50),
                    [0.0, -0.0, np.inf, -np.inf, np.nan]])
P = np.concatenate([np.linspace(0, 1, 2001), np.logspace(-320, -1, 100), 1 - np.logspace(-16, -1, 40),
                    [-0.1, 1.1, np.nan, 0.5 + 1e-12]])
Y = np.concatenate([2 * P[:-1] - 1, -np.logspace(-310, -1, 30), [0.0]])
POS = np.concatenate([np.logspace(-300, 300, 200), np.linspace(0.01, 30, 1000)])
REAL = np.concatenate([POS, -np.linspace(0.013, 30.013, 400), [0.0, -0.0, -1.0, -7.0, np.inf, np.nan]])
BESSEL = np.concatenate([np.linspace(-800, 800, 4001), np.logspace(-300, 2.8, 100), [0.0, np.inf, np.nan]])
CASES = [("ndtr", X, 1e-12), ("log_ndtr", X, 1e-12), ("ndtri", P, 1e-14), ("erfinv", Y, 1e-14),
         ("erfcinv", Y + 1, 1e-14), ("i0", BESSEL, 1e-14), ("i1", BESSEL, 1e-14), ("logit", P, 1e-14),
         ("digamma", POS, 1e-13)]


@pytest.mark.parametrize("name,x,rtol", CASES, ids=[c[0] for c in CASES])
def test_decomposition_matches_scipy_float64(name, x, rtol):
    with np.errstate(all="ignore"):
        assert rel_err(getattr(tsp, name)(x), getattr(sp, name)(x)) < rtol


def test_digamma_polygamma_on_the_real_line():
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # away from the roots of psi (ill-conditioned there), relative; everywhere, absolute
        r = REAL[(np.abs(REAL) < 40) & np.isfinite(sp.digamma(REAL))]
        assert np.max(np.abs(tsp.digamma(r) - sp.digamma(r)) / (1 + np.abs(sp.digamma(r)))) < 1e-13
        away = np.abs(sp.digamma(REAL)) > 0.05
        assert rel_err(tsp.digamma(REAL[away]), sp.digamma(REAL[away])) < 1e-13
        for n in (1, 2, 3, 6):
            x = REAL[np.abs(REAL) < 1e60]  # beyond, scipy's tiny results are subnormal
            assert rel_err(tsp.polygamma(n, x), sp.polygamma(n, x)) < 1e-13, n
        assert rel_err(tsp.polygamma(np.array([0, 1, 2]), 1.5), sp.polygamma(np.array([0, 1, 2]), 1.5)) < 1e-13


def test_betaln_beta_against_high_precision():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    rng = np.random.default_rng(0)
    a, b = np.exp(rng.uniform(-5, 12, 400)), np.exp(rng.uniform(-5, 12, 400))
    ref = np.array([float(mp.log(mp.beta(mp.mpf(u), mp.mpf(v)))) for u, v in zip(a, b)])
    far = np.abs(ref) > 1e-3  # betaln crosses zero: relative accuracy is meaningless there
    assert rel_err(tsp.betaln(a, b)[far], ref[far]) < 1e-13  # scipy's own betaln errs by 1e-7 on this set
    small = (a < 30) & (b < 30)
    assert rel_err(tsp.beta(a[small], b[small]), sp.beta(a[small], b[small])) < 1e-13
    an, bn = np.array([-1.5, -2.5, 3.5, -0.3]), np.array([2.0, 4.25, -1.7, 0.8])  # negative non-integers: signs
    assert rel_err(tsp.beta(an, bn), sp.beta(an, bn)) < 1e-13
    assert rel_err(tsp.betaln(an, bn), sp.betaln(an, bn)) < 1e-13


def test_tails_and_edges():
    assert np.isfinite(tsp.log_ndtr(-1e4)) and rel_err(tsp.log_ndtr(np.array([-1e4, -40.0, -20.5])),
                                                       sp.log_ndtr(np.array([-1e4, -40.0, -20.5]))) < 1e-14
    assert rel_err(tsp.ndtri(np.array([1e-300, 5e-324, 1 - 1e-16])), sp.ndtri(np.array([1e-300, 5e-324, 1 - 1e-16]))) < 1e-14
    assert rel_err(tsp.erfinv(np.array([1e-300, -1e-20, 1e-8])), np.array([1e-300, -1e-20, 1e-8]) * np.sqrt(np.pi) / 2) < 1e-15
    np.testing.assert_array_equal(tsp.xlogy(np.array([0.0, 0.0, 0.0]), np.array([0.0, -1.0, np.nan])),
                                  sp.xlogy(np.array([0.0, 0.0, 0.0]), np.array([0.0, -1.0, np.nan])))


# ------------------------------------------------------------------------------------------------ traced, jit
UNARY = {"erf": X, "erfc": X, "gammaln": REAL, "gamma": np.linspace(-5.5, 170, 300), "digamma": POS,
         "psi": np.linspace(0.5, 40, 50), "ndtr": X, "log_ndtr": X, "ndtri": P, "erfinv": Y, "erfcinv": Y + 1,
         "i0": BESSEL, "i1": BESSEL, "logit": P, "expit": X}


def test_all_unary_ufuncs_under_jit_float64_and_float32():
    """One jitted program per dtype computing every unary function (scipy.special ufuncs reach the tracer through
    __array_ufunc__)."""
    names = list(UNARY)
    n = 300
    xs64 = [np.resize(UNARY[k], n) for k in names]
    f = tj.jit(lambda *xs: [getattr(sp, k)(x) for k, x in zip(names, xs)])
    with np.errstate(all="ignore"):
        for k, got, x in zip(names, f(*xs64), xs64):
            assert got.dtype == np.float64
            # erfc at large arguments is conditioned ~2z^2: libm's and cephes' differ by up to 1e-12 in the far tail
            tol = 1e-12 if k in ("gammaln", "digamma", "ndtr", "log_ndtr", "erfc") else 1e-13
            want = getattr(sp, k)(x)
            if k in ("gammaln", "digamma"):
                keep = np.abs(want) > 1e-2
                got, want = got[keep], want[keep]
            assert rel_err(got, want) < tol, k
        xs32 = [np.clip(x, -30, 30).astype(np.float32) for x in xs64]
        for k, got, x in zip(names, f(*xs32), xs32):
            want = getattr(sp, k)(x)
            assert got.dtype == want.dtype == np.float32, k
            ok = np.isfinite(want) & (np.abs(want) > 1e-30) & (np.abs(want) > (1e-1 if k in ("gammaln", "digamma") else 0))
            np.testing.assert_allclose(got[ok], want[ok], rtol=5e-5, err_msg=k)


def test_binary_ufuncs_broadcast_and_python_scalars():
    a = np.array([[0.0], [1.5], [3.0]])
    b = np.array([0.5, 2.0, 7.0, 0.0])
    f = tj.jit(lambda a, b: (sp.xlogy(a, b), sp.xlog1py(a, b - 1), sp.betaln(a + 1, b + 1), sp.beta(a + 1, b + 1),
                             sp.xlogy(2, b), sp.xlogy(a.astype(np.float32), np.float32(3.0))))
    got = f(a, b)
    want = (sp.xlogy(a, b), sp.xlog1py(a, b - 1), sp.betaln(a + 1, b + 1), sp.beta(a + 1, b + 1), sp.xlogy(2, b),
            sp.xlogy(a.astype(np.float32), np.float32(3.0)))
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-13 if w.dtype == np.float64 else 1e-6)
    assert tj.jit(sp.gammaln)(np.arange(1, 6)).dtype == np.float64  # integers compute in float64, as scipy


def test_python_functions_under_jit():
    x = np.array([[1.0, -2.0, 3.0], [0.5, 700.0, -np.inf]])
    bw = np.array([[1.0, -1.0, 2.0], [0.0, 1.0, 3.0]])
    f = tj.jit(lambda x, bw: (logsumexp(x), logsumexp(x, axis=1), logsumexp(x, axis=0, keepdims=True),
                              logsumexp(x, b=bw, axis=1), logsumexp(x, b=bw, axis=1, return_sign=True),
                              logsumexp(x, b=-1.0, return_sign=True), sp.softmax(x, axis=1), sp.softmax(x[:, :2]),
                              sp.log_softmax(x, axis=0), sp.polygamma(1, np.abs(x[0])), sp.polygamma(0, x[0])))
    got = f(x, bw)
    with np.errstate(all="ignore"):
        want = (logsumexp(x), logsumexp(x, axis=1), logsumexp(x, axis=0, keepdims=True), logsumexp(x, b=bw, axis=1),
                logsumexp(x, b=bw, axis=1, return_sign=True), logsumexp(x, b=-1.0, return_sign=True),
                sp.softmax(x, axis=1), sp.softmax(x[:, :2]), sp.log_softmax(x, axis=0),
                sp.polygamma(1, np.abs(x[0])), sp.polygamma(0, x[0]))
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(g, w, rtol=1e-13)
        assert np.shape(g) == np.shape(w)
    x32 = x.astype(np.float32)
    assert tj.jit(lambda v: logsumexp(v, axis=1))(x32).dtype == np.float32
    assert tj.jit(lambda v: sp.polygamma(1, v))(np.float32([1.5])).dtype == np.float64  # as scipy


# ------------------------------------------------------------------------------------------------ gradients
GRAD_POINTS = {
    "erf": (sp.erf, jsp.erf, np.array([-2.0, -0.3, 0.0, 1.2, 4.0])),
    "gammaln": (sp.gammaln, jsp.gammaln, np.array([0.1, 0.5, 1.0, 3.7, 40.0])),
    "gamma": (sp.gamma, jsp.gamma, np.array([0.3, 1.5, 4.2, 9.0])),
    "digamma": (sp.digamma, jsp.digamma, np.array([0.1, 1.0, 2.5, 12.0, 100.0])),
    "ndtr": (sp.ndtr, jsp.ndtr, np.array([-8.0, -1.0, 0.0, 2.0])),
    "log_ndtr": (sp.log_ndtr, jsp.log_ndtr, np.array([-15.0, -3.0, 0.0, 4.0])),  # JAX errs by 1e-9 below
    "ndtri": (sp.ndtri, jsp.ndtri, np.array([1e-10, 0.01, 0.3, 0.5, 0.9])),
    "erfinv": (sp.erfinv, jsp.erfinv, np.array([-0.99, -0.2, 0.0, 0.6, 0.999])),
    "i0": (sp.i0, jsp.i0, np.array([-3.0, 0.01, 0.5, 15.0, 25.0])),  # JAX says i0'(0) = 1, not I1(0) = 0
    "i1": (sp.i1, jsp.i1, np.array([-3.0, 0.0, 0.5, 15.0, 25.0])),
    "logit": (sp.logit, jsp.logit, np.array([0.01, 0.3, 0.5, 0.9])),
    "expit": (sp.expit, jsp.expit, np.array([-5.0, 0.0, 3.0])),
}


def test_unary_gradients_against_jax_eager_and_jitted():
    names = list(GRAD_POINTS)

    def loss(*xs):
        return sum(np.sum(GRAD_POINTS[k][0](x) * (i + 1)) for i, (k, x) in enumerate(zip(names, xs)))

    def jloss(*xs):
        return sum(jnp.sum(GRAD_POINTS[k][1](x) * (i + 1)) for i, (k, x) in enumerate(zip(names, xs)))
    xs = [GRAD_POINTS[k][2] for k in names]
    argnums = tuple(range(len(names)))
    want = jax.jit(jax.grad(jloss, argnums=argnums))(*xs)  # jitted: JAX's op-by-op first calls take ~20 s
    for got in (tj.grad(loss, argnums=argnums)(*xs), tj.jit(tj.grad(loss, argnums=argnums))(*xs)):
        for k, g, w in zip(names, got, want):
            np.testing.assert_allclose(g, w, rtol=1e-11, err_msg=k)


def test_binary_and_python_function_gradients_against_jax():
    a, b = np.array([0.0, 0.5, 2.0, 30.0]), np.array([0.7, 2.0, 1e-3, 5e3])
    c = np.array([[1.0, -2.0, 3.0], [0.5, 2.0, -1.0]])
    w = np.array([[1.0, 0.5, 2.0], [1.0, 1.0, 3.0]])

    def loss(a, b, c, w):
        return (np.sum(sp.xlogy(a, b)) + np.sum(sp.xlog1py(a, b)) + np.sum(sp.betaln(a + 1, b)) + np.sum(sp.beta(a + 1, b + 1))
                + np.sum(logsumexp(c, b=w, axis=1)) + np.sum(sp.softmax(c, axis=0) * w) + np.sum(sp.log_softmax(c) * w)
                + np.sum(sp.polygamma(2, b)))

    def jloss(a, b, c, w):
        return (jnp.sum(jsp.xlogy(a, b)) + jnp.sum(jsp.xlog1py(a, b)) + jnp.sum(jsp.betaln(a + 1, b)) + jnp.sum(jsp.beta(a + 1, b + 1))
                + jnp.sum(jsp.logsumexp(c, b=w, axis=1)) + jnp.sum(jax.nn.softmax(c, axis=0) * w)
                + jnp.sum(jax.nn.log_softmax(c, axis=None) * w) + jnp.sum(jsp.polygamma(2, b)))
    want = jax.jit(jax.grad(jloss, argnums=(0, 1, 2, 3)))(a, b, c, w)
    got = tj.jit(tj.grad(loss, argnums=(0, 1, 2, 3)))(a, b, c, w)
    for g, wv in zip(got, want):
        np.testing.assert_allclose(g, wv, rtol=1e-10)


def test_gradients_in_the_tails_and_second_derivatives():
    """The custom rules keep gradients exact where differentiating the decomposition would not: log_ndtr at -1e4
    (d/dx ~ -x), ndtri near 0, and second derivatives through lgamma -> digamma -> polygamma."""
    g = tj.grad(lambda x: np.sum(sp.log_ndtr(x)))(np.array([-1e4, -30.0, -25.0]))
    # phi(x)/Phi(x) to 50 digits (mpmath); JAX's gradient errs by 1e-9 relative here
    np.testing.assert_allclose(g, [10000.000099999998, 30.033259667433677, 25.039873012057563], rtol=1e-14)
    h = tj.grad(lambda x: np.sum(tj.grad(lambda y: np.sum(sp.gammaln(y)))(x)))(np.array([0.5, 3.0, 50.0]))
    np.testing.assert_allclose(h, sp.polygamma(1, [0.5, 3.0, 50.0]), rtol=1e-13)
    x0, eps = np.array([1e-200, 1e-5, 0.2]), 1e-7
    gd = tj.grad(lambda p: np.sum(sp.ndtri(p)))(x0)
    np.testing.assert_allclose(gd, 1 / st.norm.pdf(sp.ndtri(x0)), rtol=1e-12)
    # central differences on a smooth composite
    f = lambda v: np.sum(sp.i1(v) * sp.erfc(v) + sp.digamma(v + 2) * sp.log_ndtr(-v))  # noqa: E731
    v = np.array([0.3, 1.7, 4.0])
    fd = [(f(v + eps * e) - f(v - eps * e)) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(tj.grad(f)(v), fd, rtol=1e-7)


def test_vmap_of_a_gradient():
    x = np.linspace(-3, 3, 6)
    got = tj.vmap(tj.grad(lambda v: sp.log_ndtr(v) + sp.erf(v) * sp.i0(v)))(x)
    want = jax.jit(jax.vmap(jax.grad(lambda v: jsp.log_ndtr(v) + jsp.erf(v) * jsp.i0(v))))(x)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ------------------------------------------------------------------------------------------------ scipy.stats
X5 = np.array([-2.5, -0.3, 0.0, 0.4, 1.0, 3.0])
STATS = [  # (scipy distribution, jax distribution, x, shape parameters, methods)
    ("norm", X5, (), ("logpdf", "pdf", "cdf", "logcdf")),
    ("t", X5, (np.array([[1.0], [4.5]]),), ("logpdf", "pdf")),
    ("gamma", np.abs(X5), (np.array([[0.5], [3.0]]),), ("logpdf", "pdf")),
    ("beta", np.array([0.0, 0.1, 0.5, 0.9, 1.0, 1.5]), (2.0, np.array([[0.7], [3.0]])), ("logpdf", "pdf")),
    ("cauchy", X5 * 30, (), ("logpdf", "pdf", "cdf", "logcdf")),
    ("laplace", X5 * 10, (), ("logpdf", "pdf", "cdf", "logcdf")),
    ("logistic", X5 * 10, (), ("logpdf", "pdf", "cdf", "logcdf")),
    ("expon", X5, (), ("logpdf", "pdf", "cdf", "logcdf")),
    ("uniform", X5, (), ("logpdf", "pdf", "cdf", "logcdf")),
    ("poisson", np.array([-1.0, 0.0, 1.0, 2.5, 3.0, 40.0]), (np.array([[0.5], [7.0]]),), ("logpmf", "pmf")),
    ("bernoulli", np.array([-1.0, 0.0, 0.5, 1.0, 2.0]), (np.array([[0.0], [0.3], [1.0]]),),
     ("logpmf", "pmf", "cdf", "logcdf")),
    ("binom", np.array([-1.0, 0.0, 1.0, 2.5, 5.0, 6.0]), (5.0, np.array([[0.2], [0.9]])), ("logpmf", "pmf")),
]


@pytest.mark.parametrize("name,x,shapes,methods", STATS, ids=[s[0] for s in STATS])
def test_stats_values_under_jit(name, x, shapes, methods):
    dist = getattr(st, name)
    discrete = name in ("poisson", "bernoulli", "binom")
    loc = np.array([0.0, 0.5]) if name != "bernoulli" else 0.0
    scale = 2.0

    def f(x, loc, *shapes):
        out = []
        for m in methods:
            if discrete:
                out.append(getattr(dist, m)(x, *shapes, loc))
            else:
                out += [getattr(dist, m)(x, *shapes, loc, scale), getattr(dist, m)(x, *shapes, loc=loc, scale=scale)]
        return out
    xx = x[:, None] if np.ndim(loc) else x  # broadcast against loc and the shapes: (k, 1, 1), (6, 1), (2,)
    shapes = tuple(np.reshape(s, (-1, 1, 1)) if np.ndim(s) and np.ndim(loc) else s for s in shapes)
    got = tj.jit(f)(xx, loc, *shapes)
    with np.errstate(all="ignore"):
        want = f(xx, loc, *shapes)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-300)


def test_stats_frozen_keyword_and_float32_forms():
    x = X5.astype(np.float32)
    f = tj.jit(lambda x, m: (st.norm(m, 2.0).logpdf(x), st.norm(loc=m).cdf(x), st.t(3.0, loc=m).logpdf(x),
                             st.poisson(4.0).logpmf(np.floor(np.abs(x)))))
    got = f(x, np.float32(0.5))
    want = (st.norm(0.5, 2.0).logpdf(x), st.norm(loc=0.5).cdf(x), st.t(3.0, loc=0.5).logpdf(x),
            st.poisson(4.0).logpmf(np.floor(np.abs(x))))
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=2e-6)
    with np.errstate(all="ignore"):  # invalid parameters give nan, as scipy
        np.testing.assert_array_equal(tj.jit(lambda s: st.norm.logpdf(1.0, 0.0, s))(np.array([-1.0, 0.0])),
                                      st.norm.logpdf(1.0, 0.0, np.array([-1.0, 0.0])))


def test_multivariate_values_and_gradients():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 3))
    cov = a @ a.T + 3 * np.eye(3)
    x, mean, diag = rng.normal(size=(4, 3)), rng.normal(size=3), np.array([0.5, 2.0, 1.5])
    alpha = np.array([0.5, 2.0, 3.0])
    xd = rng.dirichlet(alpha, size=4).T  # components along the first axis, as scipy
    f = tj.jit(lambda x, m, d, xd, al: (st.multivariate_normal.logpdf(x, m, cov), st.multivariate_normal.pdf(x[0], m, cov),
                                        st.multivariate_normal(mean, cov).logpdf(x), st.multivariate_normal.logpdf(x, m, d),
                                        st.dirichlet.logpdf(xd, al), st.dirichlet(alpha).pdf(xd[:, :2])))
    got = f(x, mean, diag, xd, alpha)
    want = (st.multivariate_normal.logpdf(x, mean, cov), st.multivariate_normal.pdf(x[0], mean, cov),
            st.multivariate_normal(mean, cov).logpdf(x), st.multivariate_normal.logpdf(x, mean, diag),
            st.dirichlet.logpdf(xd, alpha), st.dirichlet(alpha).pdf(xd[:, :2]))
    for g, w in zip(got, want):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=1e-12)
    gt = tj.grad(lambda m, d, al: np.sum(st.multivariate_normal.logpdf(x, m, cov)) + np.sum(st.multivariate_normal.logpdf(x, m, d))
                 + np.sum(st.dirichlet.logpdf(xd, al)), argnums=(0, 1, 2))(mean, diag, alpha)
    gj = jax.jit(jax.grad(lambda m, d, al: jnp.sum(jst.multivariate_normal.logpdf(x, m, cov))
                  + jnp.sum(jst.multivariate_normal.logpdf(x, m, jnp.diag(d))) + jnp.sum(jst.dirichlet.logpdf(xd, al)),
                  argnums=(0, 1, 2)))(mean, diag, alpha)
    for g, w in zip(gt, gj):
        np.testing.assert_allclose(g, w, rtol=1e-11)


def test_stats_gradients_against_jax():
    x, loc, scale = np.array([-1.5, 0.2, 2.0]), 0.3, 1.7
    pos = np.array([0.2, 1.0, 3.0])
    k = np.array([0.0, 1.0, 3.0])

    def loss(loc, scale, df, a, b, mu, p):
        return (np.sum(st.norm.logpdf(x, loc, scale)) + np.sum(st.norm.logcdf(x, loc, scale)) + np.sum(st.norm.cdf(x, loc))
                + np.sum(st.t.logpdf(x, df, loc, scale)) + np.sum(st.gamma.logpdf(pos, a, scale=scale))
                + np.sum(st.beta.logpdf(pos / 4, a, b)) + np.sum(st.cauchy.logpdf(x, loc, scale))
                + np.sum(st.laplace.logpdf(x, loc, scale)) + np.sum(st.logistic.logpdf(x, loc, scale))
                + np.sum(st.expon.logpdf(pos, scale=scale)) + np.sum(st.poisson.logpmf(k, mu))
                + np.sum(st.bernoulli.logpmf(np.minimum(k, 1), p)) + np.sum(st.binom.logpmf(k, 4, p)))

    def jloss(loc, scale, df, a, b, mu, p):
        return (jnp.sum(jst.norm.logpdf(x, loc, scale)) + jnp.sum(jst.norm.logcdf(x, loc, scale)) + jnp.sum(jst.norm.cdf(x, loc))
                + jnp.sum(jst.t.logpdf(x, df, loc, scale)) + jnp.sum(jst.gamma.logpdf(pos, a, scale=scale))
                + jnp.sum(jst.beta.logpdf(pos / 4, a, b)) + jnp.sum(jst.cauchy.logpdf(x, loc, scale))
                + jnp.sum(jst.laplace.logpdf(x, loc, scale)) + jnp.sum(jst.logistic.logpdf(x, loc, scale))
                + jnp.sum(jst.expon.logpdf(pos, scale=scale)) + jnp.sum(jst.poisson.logpmf(k, mu))
                + jnp.sum(jst.bernoulli.logpmf(jnp.minimum(k, 1), p)) + jnp.sum(jst.binom.logpmf(k, 4, p)))
    args = (loc, scale, 3.5, 2.5, 1.5, 2.2, 0.35)
    want = jax.jit(jax.grad(jloss, argnums=tuple(range(7))))(*args)
    got = tj.grad(loss, argnums=tuple(range(7)))(*args)
    np.testing.assert_allclose(np.array(got, dtype=float), np.array(want, dtype=float), rtol=1e-11)


# ------------------------------------------------------------------------------------------------ hooks
def test_non_traced_calls_are_untouched():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    r = logsumexp(x)
    assert type(r) is np.float32 and r == np.float32(sp.logsumexp.__tracejit_original__(x))
    assert logsumexp([1, 2], b=[1, -1], return_sign=True) == sp.logsumexp.__tracejit_original__([1, 2], b=[1, -1], return_sign=True)
    assert str(__import__("inspect").signature(sp.logsumexp)) == "(a, axis=None, b=None, keepdims=False, return_sign=False)"
    assert type(st.norm.logpdf(0.5)) is np.float64 and st.norm.logpdf(0.5) == st.norm.logpdf.__tracejit_original__(st.norm, 0.5)
    assert sp.polygamma(1, 2.0) == sp.polygamma.__tracejit_original__(1, 2.0)
    np.testing.assert_array_equal(st.multivariate_normal.logpdf(np.zeros((2, 2)), cov=np.eye(2)),
                                  np.full(2, -np.log(2 * np.pi)))


def test_hooks_installed_whatever_the_import_order():
    """scipy imported after tracejit (the meta-path hook); this module covers scipy imported first (names bound
    early)."""
    code = ("import numpy as np\n{first}\n{second}\nimport scipy.special as sp\n"
            "f = tj.jit(lambda v: (logsumexp(v), st.norm.logpdf(v, 1.0), sp.softmax(v)))\n"
            "a, b, c = f(np.arange(3.0))\nassert abs(a - sp.logsumexp(np.arange(3.0))) < 1e-12, a\nprint('ok')\n")
    early = "from scipy.special import logsumexp\nimport scipy.stats as st"
    for first, second in (("import tracejit as tj", early),):
        r = subprocess.run([sys.executable, "-c", code.format(first=first, second=second)], capture_output=True,
                           text=True, timeout=120, env={**os.environ})
        assert r.stdout.strip() == "ok", r.stderr[-2000:]


def test_errors_name_the_function_and_the_way_out():
    x, not_pd = np.array([0.5, 1.0]), -np.eye(2)
    for fn, what in ((lambda v: st.lognorm.ppf(v, 3.0), "scipy.stats.lognorm.ppf"),  # t, gamma: supported now
                     (lambda v: st.lognorm.logpdf(v, 0.5), "scipy.stats.lognorm.logpdf"),
                     (lambda v: st.multivariate_normal.logpdf(v, cov=not_pd), "covariance"),
                     (lambda v: st.multivariate_normal.cdf(v), "multivariate_normal.cdf")):
        with pytest.raises(UnsupportedError, match=what):
            tj.jit(fn)(x)
    with pytest.raises(UnsupportedError, match="order n is traced"):
        tj.jit(lambda n, v: sp.polygamma(n, v))(np.int64(1), x)
    with pytest.raises(UnsupportedError, match="cov must be a"):
        tj.jit(lambda v, c: st.multivariate_normal.logpdf(v, cov=c))(x, np.ones((1, 2, 2)))
