"""scipy.stats ppf and isf on traced values (issue 12): against scipy over parameter grids (values where scipy is
accurate, round trips through scipy's cdf / sf deep in the tails where scipy's own inverse loses digits), scipy's
edge values at q = 0 and 1, nan outside [0, 1] and for invalid parameters, loc / scale and the ``q=`` keyword;
discrete quantiles exactly; gradients by the implicit function theorem against 1/pdf, central differences and JAX."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st

import tracejit as tj
from tracejit.errors import UnsupportedError

Q = np.array([1e-10, 1e-4, 0.05, 0.3, 0.5, 0.7, 0.95, 1 - 1e-4, 1 - 1e-10])
EDGES = np.array([0.0, 1.0, -0.5, 1.5, np.nan])
# name -> parameter sets (scipy's shape arguments), from small shapes (heavy tails, mass near 0) to large ones
CONTINUOUS = {"t": [(0.7,), (3.5,), (40.0,), (1e4,)], "gamma": [(0.05,), (1.0,), (2.5,), (300.0,)],
              "chi2": [(0.5,), (4.0,), (100.0,)], "beta": [(0.3, 0.4), (2.0, 0.5), (5.0, 20.0), (200.0, 300.0)],
              "f": [(1.0, 1.0), (3.0, 7.0), (50.0, 2.5), (200.0, 300.0)]}
INVALID = {"t": (-1.0,), "gamma": (0.0,), "chi2": (-2.0,), "beta": (1.0, -1.0), "f": (0.0, 3.0)}


def _grid(qs, param_sets):
    """Every q with every parameter set, flattened: one compile covers the grid."""
    q = np.tile(qs, len(param_sets))
    params = [np.repeat([p[i] for p in param_sets], len(qs)) for i in range(len(param_sets[0]))]
    return q, params


def _both(dist, **kw):
    return tj.jit(lambda q, *p: (dist.ppf(q, *p, **kw), dist.isf(q, *p, **kw)))


@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_continuous_quantiles_match_scipy(name):
    dist = getattr(st, name)
    q, params = _grid(np.concatenate([Q, EDGES]), CONTINUOUS[name] + [INVALID[name]])
    ppf, isf = _both(dist)(q, *params)
    with np.errstate(all="ignore"):
        want_ppf, want_isf = dist.ppf(q, *params), dist.isf(q, *params)
    mid = (q >= 1e-4) & (q <= 1 - 1e-4)  # where scipy's inverse is accurate (its isf is ppf(1 - q) for some)
    np.testing.assert_allclose(ppf[mid], want_ppf[mid], rtol=1e-9)
    np.testing.assert_allclose(isf[mid], want_isf[mid], rtol=1e-9)
    rest = ~(q > 0) | ~(q < 1)  # 0, 1, outside, nan; and every q of the invalid parameter set
    rest |= np.isnan(want_ppf) & np.isnan(want_isf)
    np.testing.assert_array_equal(ppf[rest], want_ppf[rest])
    np.testing.assert_array_equal(isf[rest], want_isf[rest])
    # round trips: the tail probability back to 1e-12 relative, where the root's float can resolve it (x near 1
    # for beta: 1 - x keeps only absolute precision)
    inside = (q > 0) & (q < 1) & ~rest & (q <= 0.5)
    for x, back in ((ppf, dist.cdf), (isf, dist.sf)):
        with np.errstate(all="ignore"):  # scipy's pdf of the invalid parameter set
            ok = inside & (np.spacing(np.abs(x)) * dist.pdf(x, *params) < 1e-13 * q)
        np.testing.assert_allclose(back(x[ok], *[p[ok] for p in params]), q[ok], rtol=1e-12)


def test_closed_forms_with_loc_scale_and_keywords():
    names = ("norm", "cauchy", "laplace", "logistic", "expon", "uniform")
    q = np.concatenate([Q, EDGES])
    got = tj.jit(lambda v: [(getattr(st, n).ppf(v, loc=1.5, scale=2.0), getattr(st, n).isf(q=v, scale=3.0))
                            for n in names])(q)
    for n, (ppf, isf) in zip(names, got):
        d = getattr(st, n)
        np.testing.assert_allclose(ppf, d.ppf(q, loc=1.5, scale=2.0), rtol=1e-13, atol=1e-300, err_msg=n)
        np.testing.assert_allclose(isf, d.isf(q, scale=3.0), rtol=1e-13, atol=1e-300, err_msg=n)


def test_loc_scale_and_keywords_on_root_finders():
    q = np.array([0.2, 0.9, 0.0, 1.0])
    got = tj.jit(lambda v: (st.gamma.ppf(v, a=2.0, loc=1.0, scale=3.0), st.t(4.0, loc=-1.0).isf(v),
                            st.beta.isf(q=v, a=2.0, b=3.0, scale=-1.0), st.poisson.ppf(v, 3.0, loc=2)))(q)
    with np.errstate(all="ignore"):
        want = (st.gamma.ppf(q, a=2.0, loc=1.0, scale=3.0), st.t(4.0, loc=-1.0).isf(q),
                st.beta.isf(q=q, a=2.0, b=3.0, scale=-1.0), st.poisson.ppf(q, 3.0, loc=2))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)


DISCRETE = {"poisson": [(0.0,), (0.5,), (4.2,), (80.0,)],
            "binom": [(0.0, 0.3), (1.0, 0.5), (12.0, 0.3), (12.0, 0.0), (12.0, 1.0), (60.0, 0.01), (2.5, 0.3)],
            "nbinom": [(3.0, 0.4), (0.5, 0.9), (10.0, 1.0), (2.5, 0.02)], "bernoulli": [(0.3,), (0.0,), (1.0,)]}


@pytest.mark.parametrize("name", ["poisson", "binom"] + [pytest.param(n, marks=pytest.mark.slow)
                                                          for n in ("nbinom", "bernoulli")])  # one search each
def test_discrete_quantiles_are_scipys_counts(name):
    dist = getattr(st, name)
    rng = np.random.default_rng(len(name))
    q, params = _grid(np.concatenate([rng.random(12), [1e-12, 1 - 1e-12], EDGES]), DISCRETE[name])
    k = dist.ppf(np.where((q > 0) & (q < 1), q, 0.5), *params)
    at_jumps = np.concatenate([dist.cdf(k, *params), dist.sf(k, *params)])
    both = _both(dist)
    with np.errstate(all="ignore"):
        for g, w in zip(both(q, *params), (dist.ppf(q, *params), dist.isf(q, *params))):
            np.testing.assert_array_equal(g, w)
        # q on a jump gives that count back: ppf(cdf(k)) = isf(sf(k)) = k, as the definition says (scipy's
        # generic isf misses some by one: it does not invert its own sf exactly)
        ppf, isf = both(at_jumps, *[np.tile(p, 2) for p in params])
    n = len(q)
    inner = (at_jumps > 0) & (at_jumps < 1)  # a jump to 1 (or an sf of 0) is q = 1 (0): the support's top
    np.testing.assert_array_equal(ppf[:n][inner[:n]], k[inner[:n]])
    np.testing.assert_array_equal(isf[n:][inner[n:]], k[inner[n:]])


@pytest.mark.slow
def test_discrete_large_parameters_on_random_q():
    q = np.random.default_rng(5).random(30)
    got = tj.jit(lambda v: (st.poisson.ppf(v, 1e4), st.binom.isf(v, 1000, 0.01), st.nbinom.ppf(v, 2.5, 0.001)))(q)
    want = (st.poisson.ppf(q, 1e4), st.binom.isf(q, 1000, 0.01), st.nbinom.ppf(q, 2.5, 0.001))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def _central(f, args, i, h=1e-6):
    up, down = list(args), list(args)
    up[i], down[i] = args[i] * (1 + h), args[i] * (1 - h)
    return (f(*up) - f(*down)) / (2 * h * args[i])


@pytest.mark.parametrize("name,params", [("t", (3.5,)), ("gamma", (2.5,)), ("beta", (2.0, 0.5)),
                                         pytest.param("f", (3.0, 7.0), marks=pytest.mark.slow)])
def test_gradients_by_the_implicit_function_theorem(name, params):
    dist = getattr(st, name)
    q = np.array([1e-6, 0.05, 0.3, 0.5, 0.8, 0.99])
    ps = [np.full(q.shape, p) for p in params]
    for method, sign in (("ppf", 1.0), ("isf", -1.0)):
        f = getattr(dist, method)
        g = tj.grad(lambda v, *p: np.sum(f(v, *p)), argnums=tuple(range(1 + len(ps))))(q, *ps)
        x = tj.jit(lambda v: f(v, *params))(q)  # (scipy's isf near beta's 1 is coarser)
        np.testing.assert_allclose(g[0], sign / dist.pdf(x, *params), rtol=1e-10)
        for i in range(len(ps)):
            want = _central(lambda *a: f(q, *a), list(params), i)
            np.testing.assert_allclose(g[1 + i], want, rtol=2e-5, atol=1e-9, err_msg=f"{method} d/d{i}")


def test_gradients_against_jax_and_discrete_gradients_are_zero():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    q = np.array([0.01, 0.4, 0.9])
    got = tj.grad(lambda v: np.sum(st.norm.ppf(v, 1.0, 2.0) * st.norm.isf(v)))(q)
    jst = jax.scipy.stats
    want = jax.grad(lambda v: (jst.norm.ppf(v, 1.0, 2.0) * -jst.norm.ppf(v)).sum())(q)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    g = tj.grad(lambda v, mu: np.sum(st.poisson.ppf(v, mu)), argnums=(0, 1))(q, np.full(3, 4.0))
    np.testing.assert_array_equal(np.concatenate(g), np.zeros(6))


def test_a_distribution_without_quantiles_is_refused():
    with pytest.raises(UnsupportedError, match="scipy.stats.lognorm.ppf"):
        tj.jit(lambda v: st.lognorm.ppf(v, 0.5))(np.array([0.5]))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONTINUOUS))
def test_deep_tails_round_trip(name):
    dist = getattr(st, name)
    tails = np.array([1e-100, 1e-60, 1e-30, 1e-15])  # (deeper, some roots leave float64's range)
    q, params = _grid(tails, CONTINUOUS[name])
    ppf, isf = _both(dist)(q, *params)
    for x, back in ((ppf, dist.cdf), (isf, dist.sf)):
        with np.errstate(all="ignore"):  # where float64 can resolve the tail (not 1 - 1e-40 for beta)
            ok = np.isfinite(x) & (np.spacing(np.abs(x)) * back.__self__.pdf(x, *params) < 1e-13 * q)
        np.testing.assert_allclose(back(x[ok], *[p[ok] for p in params]), q[ok], rtol=1e-9, err_msg=str(x[ok]))
