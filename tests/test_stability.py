"""The stability rewrites: each fires (checked on the optimized graph's ops), gives the exact value at extreme
inputs (+-1000, +-1e-20) in float32 and float64 where the written form overflows or rounds away, and stays put
where the pattern does not really match (a different constant, integers)."""
import numpy as np
import pytest
import scipy.special as sp

import tracejit as tj

DTYPES = [np.float32, np.float64]
EXTREMES = np.array([-1000.0, -30.0, -1e-20, 0.0, 1e-20, 1.0, 30.0, 1000.0])


def run(f, x, **kw):
    return tj.jit(f, **kw)(x)


def ops_of(f, x, **kw):
    return tj.make_ir(f, **kw)(x).ops


def close(got, want, dtype):
    assert got.dtype == dtype
    rtol = 2e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got, want.astype(dtype), rtol=rtol, atol=0)


# exact references: float64 (or longdouble) evaluations of the stable closed forms
def softplus_ref(x):
    return np.logaddexp(0.0, x.astype(np.float64))


def log_sigmoid_ref(x):
    return sp.log_expit(x.astype(np.float64))


CASES = [
    ("log1p", lambda x: np.log(1 + x), lambda x: np.log1p(x.astype(np.float64)), "log1p",
     np.array([-1e-20, 1e-20, 1e-10, 0.5, 1000.0])),
    ("log1p reversed", lambda x: np.log(x + 1), lambda x: np.log1p(x.astype(np.float64)), "log1p",
     np.array([-1e-20, 1e-20, 1e-10, 0.5])),
    ("log(1 - x)", lambda x: np.log(1 - x), lambda x: np.log1p(-x.astype(np.float64)), "log1p",
     np.array([-1e-20, 1e-20, 1e-10, 0.5])),
    ("expm1", lambda x: np.exp(x) - 1, lambda x: np.expm1(x.astype(np.float64)), "expm1",
     np.array([-1000.0, -1e-20, 1e-20, 1e-10, 1.0, 30.0])),
    ("softplus", lambda x: np.log(1 + np.exp(x)), softplus_ref, "softplus", EXTREMES),
    ("softplus of log1p", lambda x: np.log1p(np.exp(x)), softplus_ref, "softplus", EXTREMES),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), lambda x: sp.expit(x.astype(np.float64)), "sigmoid", EXTREMES),
    ("sigmoid ratio", lambda x: np.exp(x) / (1 + np.exp(x)), lambda x: sp.expit(x.astype(np.float64)), "sigmoid",
     EXTREMES),
    ("log sigmoid", lambda x: np.log(1 / (1 + np.exp(-x))), log_sigmoid_ref, "softplus", EXTREMES),
    ("log sigmoid (primitive)", lambda x: np.log(tj.nn.sigmoid(x)), log_sigmoid_ref, "softplus", EXTREMES),
    ("log(1 - sigmoid)", lambda x: np.log(1 - 1 / (1 + np.exp(-x))), lambda x: log_sigmoid_ref(-x), "softplus",
     EXTREMES),
    ("sqrt(x**2)", lambda x: np.sqrt(x ** 2), lambda x: np.abs(x.astype(np.float64)), "absolute",
     np.array([-1e30, -1e-20, 1e-20, 3.0, 1e30])),
    ("sqrt(square(x))", lambda x: np.sqrt(np.square(x)), lambda x: np.abs(x.astype(np.float64)), "absolute",
     np.array([-1e30, -1e-20, 1e-20, 3.0, 1e30])),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,f,ref,prim,xs", CASES, ids=[c[0] for c in CASES])
def test_stable_form(name, f, ref, prim, xs, dtype):
    x = xs.astype(dtype)
    assert prim in ops_of(f, x)
    close(run(f, x), ref(x), dtype)
    close(run(f, x, strict_ieee=True), ref(x), dtype)  # stability is not an IEEE-corner rewrite


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_one_plus_exp_1000_is_1000(dtype):
    out = run(lambda x: np.log(1 + np.exp(x)), np.array([1000.0, -1000.0], dtype))
    assert out[0] == 1000.0 and out[1] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp(dtype):
    x = np.array([[1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -1e-20]], dtype)
    f = lambda x: np.log(np.sum(np.exp(x), axis=1))  # noqa: E731
    assert "max" in ops_of(f, x)
    close(run(f, x), sp.logsumexp(x.astype(np.float64), axis=1), dtype)
    g = lambda x: np.log(np.sum(np.exp(x), axis=-1, keepdims=True))  # noqa: E731
    close(run(g, x), sp.logsumexp(x.astype(np.float64), axis=-1, keepdims=True), dtype)
    h = lambda x: np.log(np.sum(np.exp(x)))  # noqa: E731
    close(run(h, x), np.asarray(sp.logsumexp(x.astype(np.float64))), dtype)
    inf = np.array([-np.inf, -np.inf], dtype)  # all -inf: the shift is 0, the result -inf, as written
    assert run(h, inf) == -np.inf
    # already shifted (the form tracejit.nn.logsumexp writes): nothing more to do
    once = ops_of(lambda x: tj.nn.logsumexp(x, axis=1), x)
    assert once.count("max") == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax(dtype):
    x = np.array([[1000.0, 0.0, -1000.0], [1e-20, -1e-20, 0.0]], dtype)

    def log_softmax_written(x):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return np.log(e / np.sum(e, axis=-1, keepdims=True))
    got_ops = ops_of(log_softmax_written, x)
    assert "divide" not in got_ops and got_ops.count("exp") == 1
    close(run(log_softmax_written, x), sp.log_softmax(x.astype(np.float64), axis=-1), dtype)
    naive = lambda x: np.log(np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True))  # noqa: E731
    close(run(naive, x), sp.log_softmax(x.astype(np.float64), axis=-1), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_cross_entropy_from_logits(dtype):
    z = EXTREMES.astype(dtype)
    t = np.array([0.0, 1.0, 0.5, 1.0, 0.0, 0.3, 1.0, 0.0], dtype)

    def bce(z, t):
        s = 1 / (1 + np.exp(-z))
        return -(t * np.log(s) + (1 - t) * np.log(1 - s))
    graph = tj.make_ir(bce)(z, t)
    assert "softplus" in graph.ops and "log" not in graph.ops and "sigmoid" not in graph.ops
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    want = t64 * np.logaddexp(0, -z64) + (1 - t64) * np.logaddexp(0, z64)
    got = tj.jit(bce)(z, t)
    assert got.dtype == dtype and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-13, atol=1e-30)


NOT_STABILIZED = [
    ("log(2 + x)", lambda x: np.log(2 + x), "log1p"),
    ("exp(x) - 2", lambda x: np.exp(x) - 2, "expm1"),
    ("2 / (1 + exp(-x))", lambda x: 2 / (1 + np.exp(-x)), "sigmoid"),
    ("log(2 + exp(x))", lambda x: np.log(2 + np.exp(x)), "softplus"),
    ("sqrt(x**3)", lambda x: np.sqrt(x ** 3), "absolute"),
    ("log(sum(x))", lambda x: np.log(np.sum(x)), "max"),
]


@pytest.mark.parametrize("name,f,prim", NOT_STABILIZED, ids=[c[0] for c in NOT_STABILIZED])
def test_no_stable_form_where_the_pattern_differs(name, f, prim):
    x = np.array([0.5, 1.0, 2.0])
    assert prim not in ops_of(f, x)
    np.testing.assert_allclose(run(f, x), f(x), rtol=1e-13)


def test_integer_inputs_keep_their_conversions():
    i = np.array([0, 1, 5], np.int64)
    f = lambda i: np.log(1 + i)  # noqa: E731  the sum is integer: log1p would need the conversion moved
    assert "log1p" not in ops_of(f, i)
    np.testing.assert_allclose(run(f, i), f(i), rtol=1e-15)


def test_broadcast_constant_keeps_the_shape():
    ones = np.ones((3, 1))
    f = lambda x: np.log(ones + x)  # noqa: E731
    x = np.array([1e-20, 0.5])
    out = run(f, x)
    assert "log1p" in ops_of(f, x) and out.shape == (3, 2)
    np.testing.assert_allclose(out, np.broadcast_to(np.log1p(x), (3, 2)), rtol=1e-15)
