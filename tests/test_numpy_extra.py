"""gradient, cov, corrcoef, select, piecewise, isin, in1d, apply_along_axis on tracers, against numpy, plus
Python's max() on a traced value naming np.maximum."""
import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import ConcretizationError, UnsupportedError

rng = np.random.default_rng(0)
A, V = rng.random((5, 4)), rng.random(9)

CASES = {
    "gradient 1-d": (lambda v: np.gradient(v), V),
    "gradient spacing, edge_order 2": (lambda v: np.gradient(v, 0.5, edge_order=2), V),
    "gradient 2-d (tuple)": (lambda a: np.gradient(a), A),
    "gradient axis and spacings": (lambda a: np.gradient(a, 2.0, axis=0), A),
    "gradient int input": (lambda v: np.gradient((v * 10).astype(np.int64)), V),
    "cov rows": (lambda a: np.cov(a), A),
    "cov rowvar=False, bias": (lambda a: np.cov(a, rowvar=False, bias=True), A),
    "cov of x and y, ddof": (lambda a: np.cov(a[0], a[1], ddof=0), A),
    "cov 1-d": (lambda v: np.cov(v), V),
    "corrcoef": (lambda a: np.corrcoef(a.T), A),
    "select": (lambda v: np.select([v < 0.3, v < 0.6], [v, v * 2], default=-1.0), V),
    "select int default": (lambda v: np.select([v > 0.5], [v]), V),
    "piecewise": (lambda v: np.piecewise(v, [v < 0.5], [lambda t: t, lambda t: -t]), V),
    "piecewise constants": (lambda v: np.piecewise(v, [v < 0.3, v > 0.7], [0.0, 1.0, lambda t: t * t]), V),
    "isin": (lambda a: np.isin(np.round(a * 4), [1.0, 3.0]), A),
    "isin invert": (lambda a: np.isin(np.round(a * 4), np.array([0.0, 2.0]), invert=True), A),
    "in1d": (lambda a: np.isin(np.round(a * 4).ravel(), [1.0]), A),
    "apply_along_axis scalar": (lambda a: np.apply_along_axis(lambda r: r.max() - r.min(), 1, a), A),
    "apply_along_axis vector, axis 0": (lambda a: np.apply_along_axis(lambda c: c / c.sum(), 0, a), A),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_numpy(name):
    f, x = CASES[name]
    want, got = f(x), tj.jit(f)(x)
    if isinstance(want, (tuple, list)):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert np.asarray(got).dtype == np.asarray(want).dtype


def test_gradient_of_cov_and_np_gradient_against_finite_differences():
    def loss(a):
        return np.sum(np.cov(a) ** 2) + np.sum(np.gradient(a, axis=1) ** 2)
    g = tj.grad(loss)(A)
    eps, num = 1e-6, np.zeros_like(A)
    for i in np.ndindex(A.shape):
        d = np.zeros_like(A)
        d[i] = eps
        num[i] = (loss(A + d) - loss(A - d)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9)


def test_errors_name_what_to_do():
    with pytest.raises(UnsupportedError, match="scalar spacings"):
        tj.jit(lambda v: np.gradient(v, np.arange(9.0)))(V)
    with pytest.raises(ValueError, match="at least"):
        tj.jit(lambda v: np.gradient(v))(np.ones(1))
    with pytest.raises(ValueError, match="same length"):
        tj.jit(lambda v: np.select([v > 0], [v, v]))(V)
    with pytest.raises(UnsupportedError, match="aweights"):
        tj.jit(lambda a: np.cov(a, aweights=np.ones(4)))(A)
    with pytest.raises(ConcretizationError, match=r"np\.maximum"):
        tj.jit(lambda v: v / max(v.sum(), 1.0))(V)
    with pytest.raises(ConcretizationError, match=r"np\.minimum"):
        tj.jit(lambda v: min(v[0], v[1]))(V)
