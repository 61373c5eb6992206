"""Data-dependent lengths (issue 13): ``x[mask]``, np.nonzero, flatnonzero, argwhere, one-argument where, unique,
compress, extract. Their length is an unbacked Dim (bound by the ``nonzero`` call when the program runs): one
compile serves every count, guards never specialize on it, gradients flow to the selected elements."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracejit as tj
from tracejit.api import make_ir
from tracejit.errors import ConcretizationError
from tracejit.ir import types as T

R = np.random.default_rng(3)


def _equal(g, w):
    """Exact for ints and bools; floats within a few ulps (compiled sums add in another order than numpy's)."""
    w = np.asarray(w)
    if w.dtype.kind == "f":
        np.testing.assert_allclose(g, w, rtol=4 * np.finfo(w.dtype).eps, atol=0)
    else:
        np.testing.assert_array_equal(g, w)
    assert np.asarray(g).dtype == w.dtype


def same(f, *args):
    got, want = tj.jit(f)(*args), f(*args)
    if isinstance(want, tuple):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _equal(g, w)
    else:
        _equal(got, want)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.sampled_from(["float64", "float32", "int64", "bool"]),
       st.floats(-1.5, 1.5))
def test_selections_match_numpy(shape, dtype, t):
    x = (R.normal(size=shape) * 2).astype(dtype)
    m = R.normal(size=shape) > t
    same(lambda a, k: a[k], x, m)
    same(lambda a: a[a > 0] if dtype != "bool" else a[a], x)
    same(np.nonzero, x)
    same(np.flatnonzero, x)
    same(np.argwhere, x)
    same(lambda k: np.where(k), m)
    same(lambda a, k: np.extract(k, a), x, m)
    same(lambda a, k: np.compress(k.ravel()[: a.shape[0]], a, axis=0), x, m)
    same(lambda a, k: a[k[(slice(None),) + (0,) * (k.ndim - 1)]], x, m)  # a mask over the leading axis


def test_one_compile_serves_every_count():
    f = tj.jit(lambda x: x[x > 0.5].sum() / (x > 0.5).sum())
    for n in (3, 40, 41):
        for t in (-10, 0.5, 10):
            x = R.normal(size=n) + t
            with np.errstate(invalid="ignore"):
                np.testing.assert_allclose(f(x), x[x > 0.5].sum() / (x > 0.5).sum())
    assert f.cache_info().misses == 1


def test_empty_selection_and_mean():
    f = tj.jit(lambda x: (x[x > 0].mean(), x[x > 0].size, x[x > 100]))
    x = R.normal(size=9)
    want = (x[x > 0].mean(), x[x > 0].size, x[x > 100])
    got = f(x)
    np.testing.assert_allclose(got[0], want[0])
    assert got[1] == want[1] and got[2].shape == (0,)
    with np.errstate(invalid="ignore"):
        assert np.isnan(f(-np.abs(x))[0])


def test_unbacked_dim_in_the_ir():
    g = make_ir(lambda x: x[x > 0] * 2)(R.normal(size=6))
    (length,) = g.outputs[0].shape
    assert isinstance(length, T.Dim) and T.unbacked_symbols(length) == length.atoms()
    assert not (length.atoms() & set(g.symbols))  # not an input length
    assert [e.prim for e in g.eqns if e.prim == "nonzero"] == ["nonzero"]


def test_python_cannot_use_a_data_dependent_length_as_an_int():
    with pytest.raises(ConcretizationError, match="data-dependent"):
        tj.jit(lambda x: np.zeros(len(x[x > 0])))(np.ones(4))
    with pytest.raises(ConcretizationError, match="data-dependent"):
        tj.jit(lambda x: x[: int(np.flatnonzero(x).shape[0])])(np.ones(4))


def test_mask_write_back_stays_a_where():
    def f(d, L):
        d[d > L / 2] -= L
        return d
    g = make_ir(f)(np.ones(5), 2.0)
    assert "nonzero" not in g.ops
    x = R.normal(size=(4, 3)) * 3
    np.testing.assert_allclose(tj.jit(f)(x.copy(), 2.0), f(x.copy(), 2.0))


def test_selection_mixed_with_arrays():
    x = R.normal(size=(5, 4))
    same(lambda a: a[a > 0] + a[a > 0][::-1], x)
    same(lambda a: np.maximum(a[a > 0], a[a > 0].mean()), x)
    same(lambda a: (a[a[:, 0] > 0] @ a.T).sum(axis=0), x)
    same(lambda a: a[a[:, 0] > 0][:, 1:3].sum(axis=0), x)
    same(lambda a: np.sort(a[a < 0.3])[::-1], x)


@pytest.mark.parametrize("dtype", ["int64", "float64", "float32", "bool"])
def test_unique_matches_numpy(dtype):
    x = R.integers(0, 6, size=(4, 7)).astype(dtype)
    same(np.unique, x)
    same(lambda a: np.unique(a, return_index=True, return_inverse=True, return_counts=True), x)
    same(lambda a: np.unique(a.ravel(), return_inverse=True), x)


def test_unique_of_empty_and_single_arrays():
    f = tj.jit(lambda a: np.unique(a, return_index=True, return_inverse=True, return_counts=True))
    for x in (np.zeros(0), np.zeros(1), np.array([5, 5]), np.zeros(6)):
        for g, w in zip(f(x), np.unique(x, return_index=True, return_inverse=True, return_counts=True)):
            np.testing.assert_array_equal(g, w)
            assert g.dtype == w.dtype


def test_unique_nans_are_one_value():
    x = np.array([2.0, np.nan, 1.0, np.nan, 2.0, -np.inf])
    same(lambda a: np.unique(a, return_counts=True), x)
    same(lambda a: np.unique(a, return_counts=True, equal_nan=False), x)


def test_mask_read_gradient_flows_to_the_selected_elements():
    x = R.normal(size=(3, 4))
    np.testing.assert_allclose(tj.grad(lambda a: (a[a > 0] ** 2).sum())(x), 2 * x * (x > 0))
    np.testing.assert_allclose(tj.jit(tj.grad(lambda a: a[a > 0].mean()))(x), (x > 0) / (x > 0).sum())
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    idx = np.flatnonzero(x.ravel() > 0)
    want = jax.grad(lambda a: (jax.numpy.sin(a.ravel()[idx]) * 3).sum())(x)
    np.testing.assert_allclose(tj.grad(lambda a: (np.sin(a[a > 0]) * 3).sum())(x), want)


# ------------------------------------------------------------------------------------------------ real kernels
def test_label_counts():
    def counts(labels):
        values, n = np.unique(labels, return_counts=True)
        return values, n, n / labels.size
    for size in (10, 200):
        labels = R.integers(0, 7, size=size)
        got, want = tj.jit(counts)(labels), counts(labels)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b)


def test_k_nearest_neighbours():
    def knn(train, labels, query, k=3):
        d = ((query[:, None, :] - train[None, :, :]) ** 2).sum(-1)
        nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
        votes = labels[nearest]
        return votes.mean(axis=1) > 0.5, np.take_along_axis(d, nearest, axis=1)
    train, query = R.normal(size=(30, 2)), R.normal(size=(8, 2))
    labels = (train[:, 0] > 0).astype(np.float64)
    for a, b in zip(tj.jit(knn)(train, labels, query), knn(train, labels, query)):
        np.testing.assert_allclose(a, b)


def test_least_squares_fit():
    def fit(t, y):
        design = np.stack([np.ones_like(t), t, t ** 2], axis=1)
        coef, resid, rank, s = np.linalg.lstsq(design, y, rcond=None)
        return coef, design @ coef, resid
    t = np.linspace(0, 1, 25)
    y = 1 - 2 * t + 3 * t ** 2 + R.normal(size=25) * 0.01
    for a, b in zip(tj.jit(fit)(t, y), fit(t, y)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_spectral_low_pass_filter():
    def low_pass(signal, keep):
        spectrum = np.fft.rfft(signal)
        freqs = np.arange(spectrum.shape[0])
        spectrum[freqs > keep] = 0
        return np.fft.irfft(spectrum, n=signal.shape[0])
    t = np.linspace(0, 1, 128, endpoint=False)
    signal = np.sin(2 * np.pi * 3 * t) + 0.3 * np.sin(2 * np.pi * 40 * t)
    np.testing.assert_allclose(tj.jit(low_pass)(signal, 10), low_pass(signal, 10), atol=1e-12)
    np.testing.assert_allclose(tj.jit(low_pass)(signal, 10), np.sin(2 * np.pi * 3 * t), atol=1e-12)


def test_robust_statistics():
    def stats(x):
        med = np.median(x, axis=0)
        mad = np.median(np.abs(x - med), axis=0)
        inliers = x[np.abs(x - med).max(axis=1) < 3 * mad.max()]
        return med, mad, np.percentile(x, [5, 95], axis=0), inliers.mean(axis=0)
    x = R.normal(size=(50, 3))
    x[::7] *= 20
    for a, b in zip(tj.jit(stats)(x), stats(x)):
        np.testing.assert_allclose(a, b)


def test_mask_assignment_with_an_array_of_values():
    def sort_positives(x):
        m = x > 0
        x[m] = np.sort(x[m])
        return x

    def set_rows(x, v):
        x[x[:, 0] > 0] = v
        return x
    x = R.normal(size=9)
    np.testing.assert_array_equal(tj.jit(sort_positives)(x.copy()), sort_positives(x.copy()))
    y = R.normal(size=(6, 3))
    k = int((y[:, 0] > 0).sum())
    for v in (np.arange(3.0), np.ones((k, 3)), np.ones((1, 3)) * 7):
        np.testing.assert_array_equal(tj.jit(set_rows)(y.copy(), v), set_rows(y.copy(), v))
    with pytest.raises(ValueError, match="boolean array indexing assignment"):
        tj.jit(set_rows)(y.copy(), np.ones((k + 1, 3)))
    z = -np.abs(y)  # nothing selected, no values: numpy allows it
    np.testing.assert_array_equal(tj.jit(set_rows)(z.copy(), np.ones((0, 3))), set_rows(z.copy(), np.ones((0, 3))))


def test_selection_written_elsewhere():
    def f(x, y):
        z = np.zeros_like(x)
        z[y > 0] = x[x > 0][:1]  # another mask: the selected values in order (here one, broadcast)
        w = np.zeros(3)
        w[:] = x[x > 10].sum()  # a plain index
        return z, w
    x, y = R.normal(size=6), R.normal(size=6)
    x[0] = 1.0
    for a, b in zip(tj.jit(f)(x, y), f(x, y)):
        np.testing.assert_array_equal(a, b)
