"""Issue 14's last numpy forms on tracers: np.put_along_axis writing in place (numpy's call, into the caller's
array), np.bincount without minlength (a run-time length), np.lexsort, numpy 2's named-tuple results (linalg and
the unique family) inside jit and grad, and (issue 12) constant folding leaving a raising primitive to run."""
from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import UnsupportedError

R = np.random.default_rng(1412)
X = R.normal(size=(5, 4))
SQ = R.normal(size=(4, 4)) + 4 * np.eye(4)
SPD = SQ @ SQ.T


# ------------------------------------------------------------------------------------------------ put_along_axis
OUTSIDE = np.zeros((2, 2))  # an array the traced function did not make


def _put_rows(x, i, v):
    np.put_along_axis(x, i, v, axis=1)


@pytest.mark.parametrize("idx,vals", [
    (np.array([[0], [3], [1], [1], [2]]), -1.0),
    (np.array([[0, 0, 2], [3, -1, 3], [1, 1, 1], [0, 2, 0], [-4, 2, 3]]), np.arange(15.0).reshape(5, 3)),  # repeats
    (np.array([[2, 1]]), np.array([[7.0, 8.0]])),  # broadcast over rows, as numpy's fancy index
])
def test_put_along_axis_writes_the_callers_array(idx, vals):
    got, want = X.copy(), X.copy()
    assert tj.jit(_put_rows)(got, idx, vals) is None
    _put_rows(want, idx, vals)
    np.testing.assert_array_equal(got, want)  # numpy's last write wins for a repeated index


def test_put_along_axis_inside_a_function_and_through_views():
    def f(x):
        y = x * 2.0
        top = y[:2]  # a view: it sees the write, as in numpy
        out = np.put_along_axis(y, np.argsort(x, axis=0)[:1], 0.0, axis=0)
        np.put_along_axis(y, np.array([3, 0, 3]), np.array([1.0, 2.0, 3.0]), axis=None)
        return y, top + 0.0, out is None
    got, want = tj.jit(f)(X.copy()), f(X.copy())
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("f,exc,words", [
    (lambda x: np.put_along_axis(x, np.array([0]), 1.0, 1), ValueError, "same number of dimensions"),
    (lambda x: np.put_along_axis(x, np.array([[0.5]]), 1.0, 1), IndexError, "integer array"),
    (lambda x: np.put_along_axis(x, np.array([[0]]), 1.0, None), ValueError, "single dimension"),
    (lambda x: np.put_along_axis(x, np.array([[0]]), 1.0, 2), np.exceptions.AxisError, "out of bounds"),
    (lambda x: np.put_along_axis(OUTSIDE, np.zeros((2, 1), int), x[:2, :1], 1), UnsupportedError,
     "outside the traced function"),
])
def test_put_along_axis_errors(f, exc, words):
    with pytest.raises(exc, match=words):
        tj.jit(f)(X.copy())
    if exc is not UnsupportedError:
        with pytest.raises(exc):  # numpy agrees on the type
            f(X.copy())


def test_put_along_axis_out_of_bounds_at_run_time():
    with pytest.raises(IndexError, match="out of bounds"):
        tj.jit(_put_rows)(X.copy(), np.array([[4]]), 1.0)


# ------------------------------------------------------------------------------------------------ bincount
@pytest.mark.parametrize("x", [np.array([0, 1, 1, 3, 7]), np.array([], np.int64), np.array([0]),
                               np.array([5, 5], np.uint8), np.array([True, False, True]),
                               R.integers(0, 40, size=300).astype(np.int32)])
def test_bincount_length_from_the_data(x):
    f = tj.jit(np.bincount)
    got, want = f(x), np.bincount(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    w = R.normal(size=x.shape[0])
    np.testing.assert_allclose(tj.jit(lambda a, b: np.bincount(a, weights=b))(x, w), np.bincount(x, w), rtol=1e-12)


def test_bincount_data_length_composes_and_differentiates():
    f = tj.jit(lambda x: (np.bincount(2 * x), np.bincount(x).sum(), np.bincount(x, minlength=9)))
    x = np.array([1, 2, 3, 3])
    for g, w in zip(f(x), (np.bincount(2 * x), 4, np.bincount(x, minlength=9))):
        np.testing.assert_array_equal(g, w)
    w = np.array([0.5, 1.0, 2.0, 3.0])
    grad = tj.grad(lambda w, x: np.sum(np.bincount(x, weights=w) ** 2))(w, x)
    np.testing.assert_allclose(grad, 2 * np.bincount(x, w)[x], rtol=1e-12)  # d/dw_i: 2 * (its bin's total)


def test_bincount_negative_is_numpys_error():
    with pytest.raises(ValueError, match="no negative elements"):
        tj.jit(np.bincount)(np.array([1, -2, 3]))
    with pytest.raises(ValueError, match="no negative elements"):
        np.bincount(np.array([1, -2, 3]))


# ------------------------------------------------------------------------------------------------ lexsort
@pytest.mark.parametrize("seed", range(4))
def test_lexsort_matches_numpy(seed):
    r = np.random.default_rng(seed)
    n = int(r.integers(1, 30))
    a, b = r.integers(0, 3, n), r.integers(0, 3, n).astype(np.float64)
    b[r.random(n) < 0.2] = np.nan  # numpy sorts nan last within a key
    c = r.integers(-2, 2, n).astype(np.int8)
    # (numpy dispatches np.lexsort to tracers for a tuple of keys; a list goes through tracejit.numpy)
    f = tj.jit(lambda a, b, c: (np.lexsort((a, b)), tj.numpy.lexsort([c, a, b]), np.lexsort((b,))))
    for g, w in zip(f(a, b, c), (np.lexsort((a, b)), np.lexsort([c, a, b]), np.lexsort((b,)))):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def test_lexsort_array_of_keys_and_axes():
    k = R.integers(0, 3, size=(3, 4, 5))
    for axis in (-1, 0, 1):
        np.testing.assert_array_equal(tj.jit(lambda k: np.lexsort(k, axis=axis))(k), np.lexsort(k, axis=axis))
    pairs = R.integers(0, 4, size=(6, 2))  # sort rows by the first column, then the second (the usual idiom)
    np.testing.assert_array_equal(tj.jit(lambda p: np.lexsort((p[:, 1], p[:, 0])))(pairs),
                                  np.lexsort((pairs[:, 1], pairs[:, 0])))


@pytest.mark.parametrize("f,exc,words", [
    (lambda x: np.lexsort(()), TypeError, "len > 0"),
    (lambda x: np.lexsort((x, x[:3])), ValueError, "same shape"),
    (lambda x: np.lexsort((x, x), axis=1), np.exceptions.AxisError, "out of bounds"),
])
def test_lexsort_errors(f, exc, words):
    v = np.arange(5.0)
    with pytest.raises(exc, match=words):
        tj.jit(f)(v)
    with pytest.raises(exc):
        f(v)


# ------------------------------------------------------------------------------------------------ named results
def _linalg_results(a):
    return (np.linalg.eigh(a), np.linalg.eig(a), np.linalg.slogdet(a), np.linalg.svd(a), np.linalg.qr(a))


def test_linalg_results_are_numpys_named_tuples():
    got, want = tj.jit(_linalg_results)(SPD), _linalg_results(SPD)
    for g, w in zip(got, want):
        assert type(g) is type(w), (type(g), type(w))
        for field in w._fields:
            np.testing.assert_allclose(np.abs(getattr(g, field)), np.abs(getattr(w, field)), rtol=1e-9, atol=1e-12)


def test_named_fields_inside_jit_and_grad_match_jax():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    jax.config.update("jax_enable_x64", True)

    def loss(m, la):
        e = la.eigh(m)
        w, _ = la.eigh(m)  # unpacking still works
        q = la.qr(m)
        return (la.slogdet(m).logabsdet + (e.eigenvalues ** 2).sum() - w.sum() + la.svd(m).S.sum()
                + (q.R * q.R).sum())
    np.testing.assert_allclose(tj.jit(lambda m: loss(m, np.linalg))(SPD), loss(SPD, np.linalg), rtol=1e-10)
    np.testing.assert_allclose(tj.grad(lambda m: loss(m, np.linalg))(SPD), jax.grad(lambda m: loss(m, jnp.linalg))(SPD),
                               rtol=1e-8, atol=1e-10)


def test_unique_family_named_results():
    x = np.array([[3.0, 1.0, np.nan], [1.0, np.nan, 2.0]])
    for name in ("unique_all", "unique_counts", "unique_inverse"):
        got, want = tj.jit(getattr(np, name))(x), getattr(np, name)(x)
        assert type(got) is type(want)
        for field in want._fields:  # equal_nan=False: each nan its own value, as numpy
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
    np.testing.assert_array_equal(tj.jit(np.unique_values)(x), np.sort(np.unique_values(x)))


# ------------------------------------------------------------------------------------------------ constant folding
NOT_PD = np.array([[1.0, 2.0], [2.0, 1.0]])


def test_cholesky_of_a_non_positive_definite_constant_is_left_to_run():
    from tracejit.ir import ops
    from tracejit.ir.graph import Graph, Value, toposort
    from tracejit.ir.interpret import evaluate
    from tracejit.ir.types import TensorType
    from tracejit.passes.pipeline import optimize
    from tracejit.passes.fold import fold

    def graph(matrix):
        x = Value(TensorType(np.dtype(np.float64), (2, 2)))
        with ops.Builder():
            out = ops.ufunc("add", ops.bind("cholesky", ops.constant(matrix)), x)
        return Graph([x], [out], toposort([out]))
    kept = fold(graph(NOT_PD), stats={})  # no LinAlgError while compiling
    assert "cholesky" in kept.ops
    optimized = optimize(graph(NOT_PD))
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):  # what running it gives: numpy's
        evaluate(optimized, [np.zeros((2, 2))])
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        np.linalg.cholesky(NOT_PD)
    folded = fold(graph(SPD[:2, :2]), stats={})  # a factorizable constant still folds
    assert "cholesky" not in folded.ops
    np.testing.assert_allclose(evaluate(folded, [np.zeros((2, 2))])[0], np.linalg.cholesky(SPD[:2, :2]), rtol=1e-14)


def test_cholesky_of_a_traced_non_positive_definite_matrix_raises_at_the_call():
    f = tj.jit(lambda x: np.linalg.cholesky(x))
    f.lower(NOT_PD).compile()  # compiling raises nothing
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        f(NOT_PD)
