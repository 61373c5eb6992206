"""Matrix-vector products over one matrix are lowered as one pass over it (lower/matvec.py).

The IR tests check what the rewrite produces (two matvecs over X become reductions in one kernel; a lone matvec
keeps BLAS); the differential tests check the results against numpy and against the unrewritten plan.
"""
from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit.lower import plan_graph
from tracejit.lower.fuse import plan as plan_unshared
from tracejit.lower.matvec import share_matrix_reads, shared_matvecs
from tracejit.lower.plan import Kernel, MatmulStep

rng = np.random.default_rng(12)


def optimized(f, *args):
    return tj.jit(f).lower(*args).optimized


def steps_of(graph):
    return plan_graph(graph)[0].steps


def test_two_products_with_one_matrix_become_one_kernel():
    X, w, v = rng.standard_normal((50, 7)), rng.standard_normal(7), rng.standard_normal(7)
    g = optimized(lambda X, w, v: np.tanh(X @ w) * (X @ v), X, w, v)
    assert g.ops.count("matmul") == 2
    shared = share_matrix_reads(g)
    assert "matmul" not in shared.ops and shared.ops.count("sum") == 2
    steps = steps_of(g)
    assert len(steps) == 1 and isinstance(steps[0], Kernel)  # X read once, tanh and the product in its tail
    assert len(plan_unshared(g).steps) > 1


def test_two_products_with_the_transpose_become_one_column_kernel():
    X, a, b = rng.standard_normal((40, 6)), rng.standard_normal(40), rng.standard_normal(40)
    g = optimized(lambda X, a, b: (X.T @ a, X.T @ b), X, a, b)
    assert [mv.along for mv in shared_matvecs(g).values()] == ["columns", "columns"]
    steps = steps_of(g)
    assert len(steps) == 1 and isinstance(steps[0], Kernel) and steps[0].column


@pytest.mark.parametrize("f, along", [(lambda X, r, w: (r @ X, X.T @ (2 * r)), "columns"),   # row @ X is X.T @ col
                                      (lambda X, r, w: (w @ X.T, X @ (w + 1)), "rows")])     # row @ X.T is X @ col
def test_row_vector_products_join_the_group(f, along):
    X, r, w = rng.standard_normal((40, 6)), rng.standard_normal(40), rng.standard_normal(6)
    g = optimized(f, X, r, w)
    assert [mv.along for mv in shared_matvecs(g).values()] == [along, along]
    steps = steps_of(g)  # the elementwise work on a vector first, then one kernel over X for both products
    assert [isinstance(s, Kernel) and bool(s.red_axes) for s in steps] == [False, True]
    assert len(plan_unshared(g).steps) == 3
    _check(f, X, r, w)


@pytest.mark.parametrize("f, members", [(lambda X, w, v: (X @ w, X @ (X @ w), X @ v), 3),   # a member reads another
                                        (lambda X, w, v: (X @ v, np.tanh(X @ w) @ X.T, X @ np.exp(v)), 4)])
def test_products_depending_on_each_other(f, members):
    X, w, v = rng.standard_normal((7, 7)), rng.standard_normal(7), rng.standard_normal(7)
    assert len(shared_matvecs(optimized(f, X, w, v))) == members
    _check(f, X, w, v)


def test_a_product_of_products_reads_the_rewritten_value():
    """X.T @ (X @ w) with X @ w and X @ v shared: the outer product reads the reduction, not a leftover matmul."""
    X, w, v = rng.standard_normal((40, 6)), rng.standard_normal(6), rng.standard_normal(6)
    f = lambda X, w, v: (X @ w, X @ v, (X @ w) @ X[:, :5])  # noqa: E731
    shared = share_matrix_reads(optimized(f, X, w, v))
    assert shared.ops.count("matmul") == 1
    _check(f, X, w, v)


@pytest.mark.parametrize("f", [lambda X, w, r: X @ w,                    # one product: BLAS stays
                               lambda X, w, r: (X @ w, X.T @ r),          # one each way: no read to share
                               lambda X, w, r: (X @ w, (X + 1) @ w)])     # two matrices
def test_unshared_products_keep_blas(f):
    X, w, r = rng.standard_normal((30, 5)), rng.standard_normal(5), rng.standard_normal(30)
    g = optimized(f, X, w, r)
    assert not shared_matvecs(g)
    assert share_matrix_reads(g) is g
    assert any(isinstance(s, MatmulStep) for s in steps_of(g))


def test_integer_and_matrix_products_are_left_alone():
    Xi, wi = rng.integers(-5, 5, (8, 4)), rng.integers(-5, 5, 4)
    assert not shared_matvecs(optimized(lambda X, w: (X @ w, X @ (w + 1)), Xi, wi))
    X, B = rng.standard_normal((8, 4)), rng.standard_normal((4, 3))
    assert not shared_matvecs(optimized(lambda X, B: (X @ B, X @ (B + 1)), X, B))


def _check(f, *args, rtol=1e-12):
    got = tj.jit(f)(*args)
    want = f(*args)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * (1 + np.abs(w).max(initial=0)))


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (0, 4), (4, 0), (257, 33)])
def test_shared_products_equal_numpy(shape):
    X = rng.standard_normal(shape)
    w, v = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    r, s = rng.standard_normal(shape[0]), rng.standard_normal(shape[0])
    _check(lambda X, w, v: (X @ w, X @ v, (X @ w) * (X @ v)), X, w, v)
    _check(lambda X, r, s: (X.T @ r, r @ X + s @ X), X, r, s)
    _check(lambda X, w, v: X @ w + X @ (2 * v)[:, None].ravel(), X, w, v)


def test_strided_and_float32_matrices():
    X = rng.standard_normal((60, 24))
    w, v = rng.standard_normal(12), rng.standard_normal(12)
    _check(lambda X, w, v: (X[::2, ::2] @ w, X[::2, ::2] @ v), X, w, v)   # a strided view
    Xf = np.asfortranarray(X[:, :12])
    _check(lambda X, w, v: (X @ w, X @ v), Xf, w, v)                      # column-major
    X32, w32, v32 = (a.astype(np.float32) for a in (X[:, :12], w, v))
    _check(lambda X, w, v: (X @ w, X @ v, X.T @ (X @ w)), X32, w32, v32, rtol=2e-5)


def test_hessian_vector_product_reads_x_twice():
    """grad_bench's logreg_hvp: X @ w and X @ v share one pass, the elementwise work joins it, X.T @ r is one more."""
    n, d = 300, 10
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) > 0).astype(np.float64)
    w, v = rng.standard_normal(d) * 0.1, rng.standard_normal(d)

    def loss(w, X, y):
        z = X @ w
        return np.mean(np.logaddexp(0.0, z) - y * z)
    f = tj.jit(lambda w, v, X, y: tj.jvp(lambda w: tj.grad(loss)(w, X, y), (w,), (v,))[1])
    p = 1 / (1 + np.exp(-(X @ w)))
    np.testing.assert_allclose(f(w, v, X, y), X.T @ (p * (1 - p) * (X @ v)) / n, rtol=1e-12, atol=1e-14)
    assert f.lower(w, v, X, y).num_kernels == 2


PROGRAMS = [lambda X, a, b: (X @ a[:X.shape[1]], X @ np.sin(b[:X.shape[1]])),
            lambda X, a, b: np.tanh(X @ a[:X.shape[1]]) - (X @ b[:X.shape[1]]) ** 2,
            lambda X, a, b: (X.T @ a[:X.shape[0]], b[:X.shape[0]] @ X, (2 * a[:X.shape[0]]) @ X),
            lambda X, a, b: X.T @ (np.exp(-(X @ a[:X.shape[1]])) * (X @ b[:X.shape[1]]))]


@pytest.mark.parametrize("shape", [(5, 1), (17, 9), (300, 40)])
@pytest.mark.parametrize("k", range(len(PROGRAMS)))
def test_shared_plan_equals_unshared_plan(k, shape, monkeypatch):
    """The same programs planned with and without the rewrite (and the disk cache off, which keys on the graph)."""
    f = PROGRAMS[k]
    X = rng.standard_normal(shape)
    a, b = rng.standard_normal(300), rng.standard_normal(300)
    want = tj.jit(f)(X, a, b)
    kernels = tj.jit(f).lower(X, a, b).num_kernels
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    monkeypatch.setattr("tracejit.lower.matvec.share_matrix_reads", lambda g: g)
    got = tj.jit(f)(X, a, b)
    if 1 not in shape:  # (a length-1 axis is specialized: such products are elementwise already)
        assert tj.jit(f).lower(X, a, b).num_kernels > kernels
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12 * (1 + np.abs(w).max(initial=0)))
