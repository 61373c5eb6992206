"""Reverse-mode autodiff (issue 4): every VJP rule against finite differences (and JAX when installed), random
differentiable graphs, higher order, pytrees, jit composition, the tutorial's examples, and every error path."""
from __future__ import annotations

import io
import contextlib
import importlib.util
import pathlib

import numpy as np
import pytest
import scipy.special
from hypothesis import given, strategies as st

import tracejit as tj
from finite_differences import numeric_grad
from tracejit.ir import ops
from tracejit.ir.graph import Value
from tracejit.ir.interpret import evaluate
from tracejit.ir.graph import Graph, rebuild
from tracejit.ir.types import TensorType
from tracejit.passes.autodiff import RULES, NON_DIFFERENTIABLE, backward
from tracejit.ir.primitives import PRIMS

ROOT = pathlib.Path(__file__).resolve().parents[1]
rng = np.random.default_rng(42)


def test_stop_gradient():
    x = rng.random(5)
    assert tj.stop_gradient(x) is not None and np.array_equal(tj.stop_gradient(x), x)
    tree = tj.stop_gradient({"a": x, "b": [1.0]})
    assert np.array_equal(tree["a"], x) and tree["b"][0] == 1.0
    f = lambda x: np.sum(x ** 2 * tj.stop_gradient(x))  # noqa: E731  d/dx = 2 x * x (the stopped factor is constant)
    np.testing.assert_allclose(tj.grad(f)(x), 2 * x * x)
    np.testing.assert_allclose(tj.jit(tj.grad(f))(x), 2 * x * x)
    np.testing.assert_allclose(tj.jit(f)(x), np.sum(x ** 3))
    g = lambda x: np.sum(tj.grad(f)(x))  # noqa: E731  grad f = 2 x * stop(x): the factor stays stopped (as in JAX)
    np.testing.assert_allclose(tj.grad(g)(x), 2 * x)
    assert "stop_gradient" not in tj.make_ir(tj.grad(f))(x).ops


@pytest.mark.parametrize("fun", [lambda x: tj.nn.log_softmax(x, axis=1), lambda x: tj.nn.softmax(x, axis=1),
                                 lambda x: tj.nn.logsumexp(x, axis=1)])
def test_softmax_family_gradients_skip_the_max(fun):
    """Their value does not depend on the max they subtract, so the gradient graph never differentiates it (no
    tie-splitting mask, no extra kernels) and still matches finite differences."""
    x = rng.standard_normal((4, 6))
    w = rng.standard_normal(fun(x).shape)
    loss = lambda x: np.sum(fun(x) * w)  # noqa: E731
    ops_ = tj.make_ir(tj.grad(loss))(x).ops
    assert "equal" not in ops_ and ops_.count("max") == 1
    np.testing.assert_allclose(tj.jit(tj.grad(loss))(x), numeric_grad(loss, x), rtol=1e-6, atol=1e-8)


def check_grad(f, *args, argnum=0, rtol=1e-5, atol=1e-6):
    got = tj.grad(f, argnums=argnum)(*args)
    args = list(args)

    def fi(xi):
        a = list(args)
        a[argnum] = xi
        return f(*a)
    want = numeric_grad(fi, args[argnum])
    assert isinstance(got, np.ndarray) and got.shape == np.shape(args[argnum])
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
    return got


# ------------------------------------------------------------------------------------------------ the tutorial
def test_tutorial_dlogistic_is_sigmoid_times_one_minus_sigmoid():
    def s(x):
        return np.sum(1 / (1 + np.exp(-x)))
    x = np.array([[0., 1.], [-1., -2.]])
    sig = scipy.special.expit(x)
    out = tj.jit(tj.grad(s))(x)
    np.testing.assert_allclose(out, sig * (1 - sig), rtol=1e-14)
    np.testing.assert_allclose(tj.grad(s)(x), sig * (1 - sig), rtol=1e-14)
    np.testing.assert_allclose(out, [[0.25, 0.19661193], [0.19661193, 0.10499359]], rtol=1e-7)


def test_tutorial_training_loop_converges_as_printed():
    spec = importlib.util.spec_from_file_location("train_tutorial", ROOT / "examples" / "train_tutorial.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ys = mod.main(10)
    lines = buf.getvalue().split()
    assert lines[:3] == ["0.9", "8.54", "13.124"]
    assert lines[3:5] == ["15.8744", "17.52464"]
    np.testing.assert_allclose(ys, 20 - 19.1 * 0.6 ** np.arange(10), rtol=1e-12)
    assert mod.train_step.cache_info().misses == 1


def _logistic_data(n=400, d=5, seed=1):
    r = np.random.default_rng(seed)
    X = r.standard_normal((n, d))
    w_true = r.standard_normal(d) * 2
    y = (X @ w_true + 0.5 * r.standard_normal(n) > 0).astype(np.float64)
    return X, y


def test_logistic_regression_matches_numpy_gradient_descent():
    X, y = _logistic_data()
    steps, lr = 150, 0.5

    def loss(w, b, X, y):
        z = X @ w + b
        return np.mean(np.logaddexp(0.0, z) - y * z)

    step = tj.jit(tj.value_and_grad(loss, argnums=(0, 1)))
    w, b = np.zeros(X.shape[1]), 0.0
    wr, br = np.zeros(X.shape[1]), 0.0
    for _ in range(steps):
        val, (gw, gb) = step(w, b, X, y)
        w, b = w - lr * gw, b - lr * gb
        p = scipy.special.expit(X @ wr + br)  # hand-written numpy reference
        wr, br = wr - lr * X.T @ (p - y) / len(y), br - lr * np.mean(p - y)
    np.testing.assert_allclose(w, wr, rtol=1e-9, atol=1e-12)
    acc = np.mean(((X @ w + b) > 0) == y)
    acc_ref = np.mean(((X @ wr + br) > 0) == y)
    assert acc == acc_ref and acc > 0.8
    assert step.cache_info().misses == 2  # b is a Python float on the first call, a 0-d array afterwards


# ------------------------------------------------------------------------------------------------ rules, one by one
UNARY = {
    "negative": (np.negative, None), "absolute": (np.abs, None), "square": (np.square, None),
    "sqrt": (np.sqrt, "pos"), "cbrt": (np.cbrt, "pos"), "reciprocal": (np.reciprocal, "pos"), "exp": (np.exp, None),
    "exp2": (np.exp2, None), "expm1": (np.expm1, None), "log": (np.log, "pos"), "log2": (np.log2, "pos"),
    "log10": (np.log10, "pos"), "log1p": (np.log1p, "pos"), "sin": (np.sin, None), "cos": (np.cos, None),
    "tan": (np.tan, "unit"), "arcsin": (np.arcsin, "unit"), "arccos": (np.arccos, "unit"),
    "arctan": (np.arctan, None), "sinh": (np.sinh, None), "cosh": (np.cosh, None), "tanh": (np.tanh, None),
    "arcsinh": (np.arcsinh, None), "arccosh": (np.arccosh, "gt1"), "arctanh": (np.arctanh, "unit"),
    "sigmoid": (tj.nn.sigmoid, None), "softplus": (tj.nn.softplus, None),
}
_REF = {"sigmoid": scipy.special.expit, "softplus": lambda x: np.logaddexp(0, x)}


def _domain(kind, shape):
    x = rng.uniform(-2, 2, shape)
    if kind == "pos":
        return np.abs(x) + 0.3
    if kind == "unit":
        return x * 0.4
    if kind == "gt1":
        return np.abs(x) + 1.2
    return x


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_rules_against_finite_differences(name):
    f, dom = UNARY[name]
    ref = _REF.get(name, f)
    x = _domain(dom, (3, 4))
    w = rng.standard_normal((3, 4))
    got = tj.grad(lambda x: np.sum(w * f(x)))(x)
    np.testing.assert_allclose(got, numeric_grad(lambda x: np.sum(w * ref(x)), x), rtol=1e-5, atol=1e-7)


BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide, "power": np.power,
    "arctan2": np.arctan2, "hypot": np.hypot, "logaddexp": np.logaddexp, "maximum": np.maximum,
    "minimum": np.minimum, "fmax": np.fmax, "fmin": np.fmin, "remainder": np.remainder,
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (4,)), ((), (2, 3)), ((2, 1, 3), (4, 1))])
def test_binary_rules_with_broadcasting(name, shapes):
    f = BINARY[name]
    a = rng.uniform(0.5, 2.0, shapes[0])
    b = rng.uniform(0.5, 2.0, shapes[1]) * rng.choice([-1, 1], shapes[1])
    if name in ("power", "remainder"):
        b = np.abs(b) + 0.1
    out_shape = np.broadcast_shapes(np.shape(a), np.shape(b))
    w = rng.standard_normal(out_shape)

    def fn(a, b):
        return np.sum(w * f(a, b))
    for argnum in (0, 1):
        got = check_grad(fn, a, b, argnum=argnum)
        assert got.shape == np.shape((a, b)[argnum])


def test_every_float_primitive_has_a_rule():
    missing = [n for n in PRIMS if n not in RULES and n not in NON_DIFFERENTIABLE]
    assert missing == []


def test_maximum_minimum_ties_split_equally():
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([1.0, 5.0, 0.0])
    gx, gy = tj.grad(lambda x, y: np.sum(np.maximum(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [0.5, 0, 1])
    np.testing.assert_array_equal(gy, [0.5, 1, 0])
    gx, gy = tj.grad(lambda x, y: np.sum(np.minimum(x, y)), argnums=(0, 1))(x, y)
    np.testing.assert_array_equal(gx, [0.5, 1, 0])
    np.testing.assert_array_equal(gy, [0.5, 0, 1])
    # relu and clip are maximum/minimum against constants
    np.testing.assert_array_equal(tj.grad(lambda x: np.sum(tj.nn.relu(x)))(np.array([-1.0, 0.0, 2.0])),
                                  [0, 0.5, 1])
    np.testing.assert_array_equal(tj.grad(lambda x: np.sum(np.clip(x, -1, 1)))(np.array([-2.0, 0.3, 2.0])),
                                  [0, 1, 0])


def test_fmax_ignores_nan_operand():
    x = np.array([1.0, np.nan, 3.0])
    y = np.array([np.nan, 2.0, 1.0])
    gx = tj.grad(lambda x, y: np.sum(np.fmax(x, y)))(x, y)
    gy = tj.grad(lambda x, y: np.sum(np.fmax(x, y)), argnums=1)(x, y)
    np.testing.assert_array_equal(gx, [1, 0, 1])
    np.testing.assert_array_equal(gy, [0, 1, 0])


def test_max_min_reductions_split_ties_among_the_maxima():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]])
    np.testing.assert_allclose(tj.grad(lambda x: np.max(x))(x), [[0, 0.5, 0.5], [0, 0, 0]])
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(np.max(x, axis=1)))(x), [[0, 0.5, 0.5], [1, 0, 0]])
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(np.min(x, axis=0) * np.array([1., 2., 3.])))(x),
                               [[1, 0, 0], [0, 2, 3]])
    check_grad(lambda x: np.sum(np.max(x, axis=0) ** 2), rng.standard_normal((4, 3)))


def test_prod_with_zeros():
    f = lambda x: np.prod(x)  # noqa: E731
    np.testing.assert_allclose(tj.grad(f)(np.array([2.0, 3.0, 4.0])), [12, 8, 6])
    np.testing.assert_allclose(tj.grad(f)(np.array([2.0, 0.0, 4.0])), [0, 8, 0])
    np.testing.assert_allclose(tj.grad(f)(np.array([0.0, 0.0, 4.0])), [0, 0, 0])
    x = np.array([[1.0, 0.0, 3.0], [2.0, 5.0, -1.0]])
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(np.prod(x, axis=1)))(x), [[0, 3, 0], [-5, -2, 10]])
    check_grad(lambda x: np.sum(np.prod(x, axis=0) * np.array([1., -2., 3.])), rng.uniform(0.5, 2, (3, 3)))


def test_power_at_zero_base():
    g = tj.grad(lambda x: np.sum(x ** 2))(np.array([0.0, 1.5]))
    np.testing.assert_allclose(g, [0, 3])
    gy = tj.grad(lambda y: np.sum(np.array([0.0, 2.0]) ** y))(np.array([2.0, 3.0]))
    np.testing.assert_allclose(gy, [0, 8 * np.log(2)])
    assert np.all(np.isfinite(gy))


def test_absolute_subgradient_is_sign():
    np.testing.assert_array_equal(tj.grad(lambda x: np.sum(np.abs(x)))(np.array([-2.0, 0.0, 3.0])), [-1, 0, 1])


def test_where_routes_gradient():
    x = np.array([-1.0, 2.0, -3.0])
    g = tj.grad(lambda x: np.sum(np.where(x > 0, x ** 2, 3 * x)))(x)
    np.testing.assert_allclose(g, [3, 4, 3])


def test_reductions_and_composites():
    x = rng.standard_normal((4, 5))
    for f in [lambda x: np.mean(x ** 2), lambda x: np.var(x), lambda x: np.std(x, axis=0).sum(),
              lambda x: np.sum(np.mean(x, axis=1, keepdims=True) * x), lambda x: np.var(x, axis=1, ddof=1).sum(),
              lambda x: np.sum(tj.nn.logsumexp(x, axis=1)), lambda x: np.sum(tj.nn.softmax(x) * np.arange(5.)),
              lambda x: np.sum(tj.nn.log_softmax(x, axis=0) ** 2), lambda x: tj.nn.logsumexp(x)]:
        check_grad(f, x)


def test_views_and_shapes():
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal((4, 3))
    fs = [lambda x: np.sum(x.T * w), lambda x: np.sum(x.reshape(2, 6) ** 2 * np.arange(6.)),
          lambda x: np.sum(np.broadcast_to(x[:, None, :], (3, 2, 4)) * np.arange(4.)),
          lambda x: np.sum(np.expand_dims(x, 0).squeeze(0) ** 3), lambda x: np.sum(np.ravel(x) * np.arange(12.)),
          lambda x: np.sum(np.stack([x, 2 * x], axis=1) ** 2), lambda x: np.sum(np.swapaxes(x, 0, 1) @ x),
          lambda x: np.sum(np.moveaxis(x[None], 0, 2) * x[..., None])]
    for f in fs:
        check_grad(f, x)


@pytest.mark.parametrize("index", [
    (slice(1, None),), (slice(None, -1),), (slice(None, None, 2),), (slice(None, None, -1),),
    (slice(None, None, -2),), (slice(3, 0, -2),), (slice(1, 3), slice(None, None, 3)), (1,), (-1, slice(1, None)),
    (slice(None), 2), (Ellipsis, slice(None, None, -3)), (slice(5, 1, -1), slice(0, 4, 3)),
])
def test_slicing_with_steps(index):
    x = rng.standard_normal((6, 7))
    check_grad(lambda x: np.sum(np.sin(x[index]) * 1.5), x)


def test_slicing_keeps_lengths_symbolic():
    f = tj.jit(tj.grad(lambda x: np.sum(x[1::2] ** 2) + np.sum(x[::-3]) + np.sum(x[:-1] * x[1:])))
    for n in (5, 8, 11, 12):
        x = rng.standard_normal(n)
        want = numeric_grad(lambda x: np.sum(x[1::2] ** 2) + np.sum(x[::-3]) + np.sum(x[:-1] * x[1:]), x)
        np.testing.assert_allclose(f(x), want, rtol=1e-6, atol=1e-7)
    assert f.cache_info().misses == 1


def test_broadcasting_summed_out_without_recompiling():
    f = tj.jit(tj.grad(lambda b, x: np.sum(np.tanh(x + b))))
    for n in (3, 6, 9):
        x = rng.standard_normal((n, 4))
        b = rng.standard_normal(4)
        np.testing.assert_allclose(f(b, x), np.sum(1 - np.tanh(x + b) ** 2, axis=0), rtol=1e-12)
    assert f.cache_info().misses == 1


def test_concatenate():
    x = rng.standard_normal((2, 3))
    y = rng.standard_normal((4, 3))
    f = lambda x, y: np.sum(np.concatenate([x, y ** 2, x * 3], axis=0) * np.arange(3.))  # noqa: E731
    check_grad(f, x, y, argnum=0)
    check_grad(f, x, y, argnum=1)


def test_gather_accumulates_repeated_indices():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    idx = np.array([0, 2, 2, 2, 3])
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(x[idx] ** 2))(x), [2, 0, 18, 8])
    X = rng.standard_normal((5, 3))
    rows = np.array([[0, 4], [4, 4]])
    check_grad(lambda X: np.sum(np.sin(X[rows])), X)
    check_grad(lambda X: np.sum(np.sin(X[:, np.array([2, 0, 2])]) * np.arange(3.)), X)


def test_scatter_add_vjp_is_a_gather_via_second_order():
    idx = np.array([0, 2, 2, 1])

    def inner(x):
        return np.sum(x[idx] ** 3)
    x = np.array([0.5, -1.0, 2.0])
    hess_diag_sum = tj.grad(lambda x: np.sum(tj.grad(inner)(x) * np.array([1.0, 2.0, 3.0])))(x)
    # d/dx_j sum_i c_i * 3 * count_i x_i^2 = c_j * 6 * count_j * x_j
    np.testing.assert_allclose(hess_diag_sum, np.array([1, 2, 3]) * 6 * np.array([1, 1, 2]) * x)


def test_matmul_batched_dot_einsum_tensordot():
    A = rng.standard_normal((2, 3, 4))
    B = rng.standard_normal((2, 4, 5))
    v = rng.standard_normal(4)
    check_grad(lambda A, B: np.sum(np.sin(A @ B)), A, B, argnum=0)
    check_grad(lambda A, B: np.sum(np.sin(A @ B)), A, B, argnum=1)
    check_grad(lambda A: np.sum((A @ v) ** 2), A)
    check_grad(lambda v: np.sum(np.cos(A @ v)), v)
    check_grad(lambda v: np.dot(v, v) + np.sum(np.dot(A, v)), v)
    check_grad(lambda B: np.sum(np.einsum("bij,bjk->ik", A, B) ** 2), B)
    check_grad(lambda A, B: np.sum(np.tensordot(A, B, axes=([0, 2], [0, 1])) ** 2), A, B)
    check_grad(lambda A: np.sum(A[0] @ B[1]), A)  # 2-d against a different batch slice


def test_float32_gradients_stay_float32_and_converts_are_differentiated():
    x = rng.standard_normal(5).astype(np.float32)
    g = tj.grad(lambda x: np.sum(x * x))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * x, rtol=1e-6)
    g = tj.grad(lambda x: np.sum(x.astype(np.float64) ** 3))(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 3 * x.astype(np.float64) ** 2, rtol=1e-6)
    g = tj.grad(lambda x: np.sum(x.astype(np.float32) ** 2))(x.astype(np.float64))
    assert g.dtype == np.float64


def test_integer_intermediates_carry_no_gradient():
    x = np.array([0.4, 1.7, -2.2])
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(x * x.astype(np.int64)))(x), [0, 1, -2])
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(x * np.floor(x)))(x), np.floor(x))
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(x * (x > 0)))(x), [1, 1, 0])
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(x * np.argmax(x)))(x), [1, 1, 1])
    np.testing.assert_allclose(tj.grad(lambda x, n: np.sum(x ** 2) * n)(x, 3), 6 * x)


def test_value_used_many_times_accumulates():
    x = rng.standard_normal(6)
    f = lambda x: np.sum(x * x + np.sin(x) * x + x / (2 + x * x) + x)  # noqa: E731
    check_grad(f, x)


def test_dead_branches_cost_nothing():
    def f(x, y):
        unused = np.exp(y) * np.sin(x)  # noqa: F841
        return np.sum(x * 2.0)
    g = tj.make_ir(tj.grad(f))(np.ones(3), np.ones(3))
    assert "exp" not in g.ops and "sin" not in g.ops
    np.testing.assert_allclose(tj.grad(f)(np.ones(3), np.ones(3)), [2, 2, 2])
    gy = tj.grad(f, argnums=1)(np.ones(3), np.ones(3))
    np.testing.assert_array_equal(gy, np.zeros(3))


# ------------------------------------------------------------------------------------------------ random graphs
SMOOTH_UNARY = {
    "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "sigmoid": scipy.special.expit,
    "softplus": lambda x: np.logaddexp(0.0, x), "square": np.square, "exp_tanh": lambda x: np.exp(np.tanh(x)),
    "log1p_sq": lambda x: np.log1p(x * x), "sqrt1p": lambda x: np.sqrt(1 + x * x), "arctan": np.arctan,
    "cube": lambda x: x ** 3, "neg": np.negative,
}
SMOOTH_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": lambda a, b: a / (1.5 + b * b),
    "atan2": lambda a, b: np.arctan2(a, 2 + b * b), "lae": np.logaddexp, "hyp": lambda a, b: np.hypot(a, 1 + b),
    "pow": lambda a, b: (1.2 + a * a) ** np.tanh(b),
}
SHAPES = [(3, 4), (4,), (3, 1), (1, 4), ()]


def _jax_fns():
    return {
        "sin": "sin", "cos": "cos", "tanh": "tanh", "square": "square", "arctan": "arctan", "neg": "negative",
    }


@st.composite
def random_program(draw):
    """A straight-line program over two inputs whose shapes broadcast to (3, 4): a list of (op, args) steps."""
    shapes = [draw(st.sampled_from(SHAPES)), draw(st.sampled_from(SHAPES))]
    n_steps = draw(st.integers(1, 7))
    steps = []
    n_vals = 2
    for _ in range(n_steps):
        kind = draw(st.sampled_from(["u", "u", "b", "b", "r", "v"]))
        i = draw(st.integers(0, n_vals - 1))
        if kind == "u":
            steps.append(("u", draw(st.sampled_from(sorted(SMOOTH_UNARY))), i))
        elif kind == "b":
            steps.append(("b", draw(st.sampled_from(sorted(SMOOTH_BINARY))), i, draw(st.integers(0, n_vals - 1))))
        elif kind == "r":
            steps.append(("r", draw(st.sampled_from(["sum", "mean", "max"])), i))
        else:
            steps.append(("v", draw(st.sampled_from(["rev", "T2", "bcast"])), i))
        n_vals += 1
    return shapes, steps


def run_program(program, a, b, xp=np, unary=SMOOTH_UNARY, binary=SMOOTH_BINARY):
    _, steps = program
    vals = [a, b]
    for s in steps:
        x = vals[s[2]]
        if s[0] == "u":
            y = unary[s[1]](x)
        elif s[0] == "b":
            y = binary[s[1]](x, vals[s[3]])
        elif s[0] == "r":  # reduce the last axis, keep it as length 1 so shapes stay broadcastable
            y = getattr(xp, s[1])(x, axis=-1, keepdims=True) if np.ndim(x) else x
        else:
            if s[1] == "rev":
                y = x[..., ::-1] if np.ndim(x) else x
            elif s[1] == "T2":  # transpose there and back (exercises the transpose rule)
                y = (x.T * 1.5).T
            else:
                y = xp.broadcast_to(x, (3, 4)) * 1.0
        vals.append(y)
    w = np.linspace(-1, 1, 12).reshape(3, 4)
    return xp.sum(vals[-1] * w) + 0.1 * xp.sum(vals[0]) * xp.sum(xp.sin(vals[1]))


@given(random_program(), st.integers(0, 2 ** 31 - 1))
def test_random_graphs_against_finite_differences(program, seed):
    r = np.random.default_rng(seed)
    shapes, _ = program
    a = r.uniform(-1.5, 1.5, shapes[0])
    b = r.uniform(-1.5, 1.5, shapes[1])
    ga, gb = tj.grad(lambda a, b: run_program(program, a, b), argnums=(0, 1))(a, b)
    na = numeric_grad(lambda a: run_program(program, a, b), a)
    nb = numeric_grad(lambda b: run_program(program, a, b), b)
    assert ga.shape == np.shape(a) and gb.shape == np.shape(b)
    scale = 1 + max(np.max(np.abs(na), initial=0), np.max(np.abs(nb), initial=0))
    np.testing.assert_allclose(ga, na, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(gb, nb, rtol=1e-5, atol=1e-6 * scale)


@pytest.fixture(scope="module")
def jax_x64():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


@given(random_program(), st.integers(0, 2 ** 31 - 1))
def test_random_graphs_against_jax(jax_x64, program, seed):
    import jax.numpy as jnp
    import jax.nn
    r = np.random.default_rng(seed)
    shapes, _ = program
    a = r.uniform(-1.5, 1.5, shapes[0])
    b = r.uniform(-1.5, 1.5, shapes[1])
    ju = {**{k: getattr(jnp, v) for k, v in _jax_fns().items()}, "sigmoid": jax.nn.sigmoid,
          "softplus": jax.nn.softplus, "exp_tanh": lambda x: jnp.exp(jnp.tanh(x)),
          "log1p_sq": lambda x: jnp.log1p(x * x), "sqrt1p": lambda x: jnp.sqrt(1 + x * x), "cube": lambda x: x ** 3}
    jb = {"add": jnp.add, "sub": jnp.subtract, "mul": jnp.multiply, "div": lambda a, b: a / (1.5 + b * b),
          "atan2": lambda a, b: jnp.arctan2(a, 2 + b * b), "lae": jnp.logaddexp,
          "hyp": lambda a, b: jnp.hypot(a, 1 + b), "pow": lambda a, b: (1.2 + a * a) ** jnp.tanh(b)}
    ja, jb_ = jax_x64.grad(lambda a, b: run_program(program, a, b, jnp, ju, jb), argnums=(0, 1))(a, b)
    ga, gb = tj.grad(lambda a, b: run_program(program, a, b), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, np.asarray(ja), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, np.asarray(jb_), rtol=1e-10, atol=1e-12)


def test_selected_rules_against_jax(jax_x64):
    import jax.numpy as jnp
    x = rng.uniform(0.2, 0.9, (3, 4))
    y = rng.uniform(0.2, 0.9, (4,))
    idx = np.array([1, 1, 0, 3])
    pairs = [
        (lambda x, y: np.sum(np.prod(x, axis=0) * y), lambda x, y: jnp.sum(jnp.prod(x, axis=0) * y)),
        (lambda x, y: np.sum(np.arcsin(x) + np.arccos(x * y) + np.arctanh(x)),
         lambda x, y: jnp.sum(jnp.arcsin(x) + jnp.arccos(x * y) + jnp.arctanh(x))),
        (lambda x, y: np.sum(x[:, idx] ** 2 * y), lambda x, y: jnp.sum(x[:, idx] ** 2 * y)),
        (lambda x, y: np.sum(np.cbrt(x) * np.exp2(y) + np.log10(x) * np.log2(y)),
         lambda x, y: jnp.sum(jnp.cbrt(x) * jnp.exp2(y) + jnp.log10(x) * jnp.log2(y))),
        (lambda x, y: np.std(x @ y) + np.var(x, axis=0) @ y, lambda x, y: jnp.std(x @ y) + jnp.var(x, axis=0) @ y),
    ]
    for f, jf in pairs:
        for argnum in (0, 1):
            got = tj.grad(f, argnums=argnum)(x, y)
            want = jax_x64.grad(jf, argnums=argnum)(x, y)
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------ higher order
SCALAR_FNS = [
    lambda x: np.sin(x) * x, lambda x: np.exp(-x * x), lambda x: tj.nn.sigmoid(x) * x, lambda x: np.tanh(x) ** 3,
    lambda x: x ** 3 - 2 * x, lambda x: np.log1p(x * x), lambda x: np.arctan2(x, 1 + x * x),
    lambda x: 1 / (1 + np.exp(-x)), lambda x: tj.nn.softplus(x) * np.cos(x), lambda x: np.sqrt(1 + x ** 4),
]


@pytest.mark.parametrize("k", range(len(SCALAR_FNS)))
@pytest.mark.parametrize("x0", [-1.3, 0.4, 2.1])
def test_second_derivative_against_finite_differences_of_the_first(k, x0):
    f = SCALAR_FNS[k]
    d1 = tj.grad(f)
    d2 = tj.grad(tj.grad(f))
    h = 1e-5
    want = (float(d1(x0 + h)) - float(d1(x0 - h))) / (2 * h)
    np.testing.assert_allclose(float(d2(x0)), want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(float(tj.jit(d2)(np.float64(x0))), float(d2(x0)), rtol=1e-13)


def test_third_and_fourth_derivatives():
    f = lambda x: np.sin(x) * np.exp(x)  # noqa: E731
    x0 = 0.7
    d3 = tj.grad(tj.grad(tj.grad(f)))
    d4 = tj.jit(tj.grad(d3))
    # (sin x e^x)''' = 2 e^x (cos x - sin x), '''' = -4 e^x sin x
    np.testing.assert_allclose(d3(x0), 2 * np.exp(x0) * (np.cos(x0) - np.sin(x0)), rtol=1e-12)
    np.testing.assert_allclose(d4(x0), -4 * np.exp(x0) * np.sin(x0), rtol=1e-12)


def test_grad_of_grad_of_array_function():
    A = rng.standard_normal((4, 4))
    f = lambda x: np.sum(np.tanh(A @ x) ** 2)  # noqa: E731
    x = rng.standard_normal(4)
    v = rng.standard_normal(4)
    hvp = tj.grad(lambda x: np.dot(tj.grad(f)(x), v))(x)
    want = numeric_grad(lambda x: np.dot(tj.grad(f)(x), v), x, h=1e-5)
    np.testing.assert_allclose(hvp, want, rtol=1e-6, atol=1e-8)


def test_nested_grads_do_not_confuse_perturbations():
    # d/dx [ x * (d/dy x*y)(y=x) ] = d/dx x^2 = 2x  (the inner derivative holds x fixed)
    f = lambda x: x * tj.grad(lambda y: x * y)(x)  # noqa: E731
    np.testing.assert_allclose(tj.grad(f)(3.0), 6.0)
    np.testing.assert_allclose(tj.jit(tj.grad(f))(3.0), 6.0)

    def g(x):  # inner grad w.r.t. the same value the closure depends on
        z = x * x
        return tj.grad(lambda t: t * z)(x)
    np.testing.assert_allclose(g(2.0), 4.0)
    np.testing.assert_allclose(tj.grad(g)(2.0), 4.0)


# ------------------------------------------------------------------------------------------------ API contract
def test_pytree_arguments_and_argnums_tuple():
    params = {"w": rng.standard_normal((3, 2)), "b": np.zeros(2), "extra": [np.ones(2), 2.0]}
    X = rng.standard_normal((5, 3))

    def loss(p, X):
        return np.sum((X @ p["w"] + p["b"]) ** 2) + np.sum(p["extra"][0] * p["extra"][1])
    g = tj.grad(loss)(params, X)
    assert set(g) == {"w", "b", "extra"} and isinstance(g["extra"], list)
    z = X @ params["w"] + params["b"]
    np.testing.assert_allclose(g["w"], 2 * X.T @ z)
    np.testing.assert_allclose(g["b"], 2 * z.sum(0))
    np.testing.assert_allclose(g["extra"][0], [2, 2])
    np.testing.assert_allclose(g["extra"][1], 2.0)
    gp, gX = tj.grad(loss, argnums=(0, 1))(params, X)
    np.testing.assert_allclose(gX, 2 * z @ params["w"].T)
    np.testing.assert_allclose(gp["w"], g["w"])
    (gX2,) = tj.grad(loss, argnums=(1,))(params, X)
    np.testing.assert_allclose(gX2, gX)
    np.testing.assert_allclose(tj.grad(loss, argnums=-1)(params, X), gX)
    gj = tj.jit(tj.grad(loss))(params, X)
    np.testing.assert_allclose(gj["w"], g["w"])


def test_value_and_grad_and_has_aux():
    x = rng.standard_normal(4)
    v, g = tj.value_and_grad(lambda x: np.sum(x ** 2))(x)
    np.testing.assert_allclose(v, np.sum(x ** 2))
    np.testing.assert_allclose(g, 2 * x)
    g, aux = tj.grad(lambda x: (np.sum(x ** 2), {"m": x.mean(), "n": 3}), has_aux=True)(x)
    np.testing.assert_allclose(g, 2 * x)
    np.testing.assert_allclose(aux["m"], x.mean())
    (v, aux), g = tj.jit(tj.value_and_grad(lambda x: (np.sum(x ** 3), x * 2), has_aux=True))(x)
    np.testing.assert_allclose(v, np.sum(x ** 3))
    np.testing.assert_allclose(aux, 2 * x)
    np.testing.assert_allclose(g, 3 * x ** 2)


def test_value_is_computed_once():
    ir = tj.make_ir(tj.value_and_grad(lambda x: np.sum(np.exp(x))), optimize=False)(np.ones(3))
    assert ir.ops.count("exp") == 1
    assert len(ir.outputs) == 2


def test_grad_inside_and_around_jit():
    f = tj.jit(lambda x: np.sum(np.sin(x) * x))
    x = rng.standard_normal(5)
    want = np.cos(x) * x + np.sin(x)
    np.testing.assert_allclose(tj.grad(f)(x), want)

    @tj.jit
    def step(x):
        return x - 0.1 * tj.grad(lambda x: np.sum(np.sin(x) * x))(x)
    np.testing.assert_allclose(step(x), x - 0.1 * want)
    inner = tj.jit(lambda x: np.sin(x) * x)  # a jitted function called inside the differentiated one inlines
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(inner(x)))(x), want)
    np.testing.assert_allclose(tj.jit(tj.grad(lambda x: np.sum(inner(x))))(x), want)


def test_python_scalar_argument():
    np.testing.assert_allclose(tj.grad(lambda x: x ** 3)(2.0), 12.0)
    np.testing.assert_allclose(tj.grad(lambda x, y: x * y, argnums=1)(2.0, 5.0), 2.0)


def test_vjp():
    x = rng.standard_normal((3, 2))
    A = rng.standard_normal((4, 3))
    out, pullback = tj.vjp(lambda x: np.tanh(A @ x), x)
    np.testing.assert_allclose(out, np.tanh(A @ x))
    ct = rng.standard_normal((4, 2))
    (gx,) = pullback(ct)
    np.testing.assert_allclose(gx, A.T @ (ct * (1 - np.tanh(A @ x) ** 2)))
    out, pullback = tj.vjp(lambda a, b: (a * b, a + b), np.ones(2), np.full(2, 3.0))
    ga, gb = pullback((np.array([1.0, 2.0]), np.array([10.0, 10.0])))
    np.testing.assert_allclose(ga, [13, 16])
    np.testing.assert_allclose(gb, [11, 12])


def test_backward_directly_on_values():
    with ops.Builder():
        x = Value(TensorType(np.dtype(np.float64), (3,)))
        y = Value(TensorType(np.dtype(np.float64), (3,)))
        u = ops.ufunc("exp", x)
        cost = ops.reduce("sum", ops.ufunc("multiply", u, u))
        gx, gy, gu = backward([cost], [ops.constant(1.0)], [x, y, u])
        g = rebuild(Graph([x, y], [gx, gy, gu]))
    xv = np.array([0.1, 0.2, -0.3])
    gxv, gyv, guv = evaluate(g, [xv, np.ones(3)])
    np.testing.assert_allclose(gxv, 2 * np.exp(2 * xv))
    np.testing.assert_array_equal(gyv, np.zeros(3))
    np.testing.assert_allclose(guv, 2 * np.exp(xv))


# ------------------------------------------------------------------------------------------------ errors
def test_non_scalar_output_is_a_type_error():
    with pytest.raises(TypeError, match=r"must return a scalar.*shape \(3,\).*float64"):
        tj.grad(lambda x: x * 2)(np.ones(3))
    with pytest.raises(TypeError, match=r"must return a scalar.*int64"):
        tj.grad(lambda x: np.sum(x > 0).astype(np.int64))(np.ones(3))
    with pytest.raises(TypeError, match=r"must return a scalar.*str"):
        tj.grad(lambda x: "hello")(np.ones(3))
    with pytest.raises(TypeError, match="must return a scalar"):
        tj.jit(tj.value_and_grad(lambda x: x))(np.ones((2, 2)))


def test_integer_arguments_are_type_errors():
    with pytest.raises(TypeError, match=r"float arguments.*argument 0 has dtype int64"):
        tj.grad(lambda x: np.sum(x * 1.0))(np.arange(3))
    with pytest.raises(TypeError, match=r"argument 0 has dtype int64 \(a Python int\)"):
        tj.grad(lambda x: x * 1.0)(3)
    with pytest.raises(TypeError, match=r"argument 1 has dtype bool"):
        tj.grad(lambda x, m: np.sum(x * m), argnums=1)(np.ones(2), np.array([True, False]))
    with pytest.raises(TypeError, match=r"argument 0 \(leaf 1\) has dtype int32"):
        tj.grad(lambda p: np.sum(p["a"]))({"a": np.ones(2), "b": np.ones(2, np.int32)})
    with pytest.raises(TypeError, match="primal 0 has dtype int64"):
        tj.vjp(lambda x: x * 1.0, np.arange(3))


def test_bad_argnums():
    with pytest.raises(TypeError, match=r"argnums must be an int or a non-empty tuple of ints, got 'a'"):
        tj.grad(np.sum, argnums="a")
    with pytest.raises(TypeError, match=r"argnums must be an int"):
        tj.value_and_grad(np.sum, argnums=())
    with pytest.raises(TypeError, match=r"argnums must be an int"):
        tj.grad(np.sum, argnums=(0, 1.0))
    with pytest.raises(TypeError, match=r"argnums=2 refers to positional argument 2, but the function was called "
                                        r"with 1 positional argument"):
        tj.grad(lambda x: np.sum(x), argnums=2)(np.ones(2))
    with pytest.raises(TypeError, match=r"argnums=\(0, -3\)"):
        tj.grad(lambda x, y: np.sum(x), argnums=(0, -3))(np.ones(2), np.ones(2))
    with pytest.raises(TypeError, match="expected a callable"):
        tj.grad(3)


def test_has_aux_needs_a_pair():
    with pytest.raises(TypeError, match=r"has_aux=True.*must return a pair"):
        tj.grad(lambda x: np.sum(x), has_aux=True)(np.ones(2))


def test_vjp_cotangent_errors():
    _, pb = tj.vjp(lambda x: x * 2, np.ones(3))
    with pytest.raises(ValueError, match=r"cotangent 0 has shape \(2,\) but the output has shape \(3,\)"):
        pb(np.ones(2))
    with pytest.raises(TypeError, match="structure"):
        pb((np.ones(3), np.ones(3)))


def test_errors_point_at_the_users_line():
    def f(x):
        return x * 2
    with pytest.raises(TypeError) as info:
        tj.grad(f)(np.ones(3))
    pkg = str(pathlib.Path(tj.__file__).parent)
    files = [tb.tb_frame.f_code.co_filename for tb in _walk(info.value.__traceback__)]
    assert files[0] == __file__
    assert sum(fn.startswith(pkg) for fn in files) <= 2  # only the wrapper's own frames, no tracing internals


def _walk(tb):
    while tb is not None:
        yield tb
        tb = tb.tb_next


# ------------------------------------------------------------------------------------------------ optimized form
def _tutorial_logistic(x):
    return np.sum(1 / (1 + np.exp(-x)))


def test_gradient_of_logistic_has_no_redundant_work():
    x = np.array([[0., 1.], [-1., -2.]])
    g = tj.make_ir(tj.grad(_tutorial_logistic))(x)
    assert g.ops.count("exp") <= 1
    keys = [(e.prim, tuple(v.id for v in e.inputs), e.params) for e in g.eqns]
    assert len(keys) == len(set(keys))
    assert "broadcast_to" not in g.ops  # the seed of sum() stays a scalar
    assert len(g.ops) <= 6


def test_gradient_of_logistic_simplifies_to_one_kernel():
    x = np.array([[0., 1.], [-1., -2.]])
    g = tj.make_ir(tj.grad(_tutorial_logistic))(x)
    assert g.ops.count("exp") + g.ops.count("sigmoid") <= 1
    assert len(g.ops) <= 5
    lowered = tj.jit(tj.grad(_tutorial_logistic)).lower(x)
    assert lowered.num_kernels == 1


# ------------------------------------------------------------------------------------------------ MLP
def _mlp_problem(dtype):
    r = np.random.default_rng(3)
    X = r.standard_normal((8, 6)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[r.integers(0, 3, 8)]
    P = {"W1": (r.standard_normal((6, 5)) * 0.5).astype(dtype), "b1": (r.standard_normal(5) * 0.1).astype(dtype),
         "W2": (r.standard_normal((5, 3)) * 0.5).astype(dtype), "b2": (r.standard_normal(3) * 0.1).astype(dtype)}
    return P, X, Y


def _mlp_loss(P, X, Y):
    h = np.tanh(X @ P["W1"] + P["b1"])
    logits = h @ P["W2"] + P["b2"]
    return -np.mean(np.sum(Y * tj.nn.log_softmax(logits, axis=1), axis=1))


def _mlp_grads_by_hand(P, X, Y):
    h = np.tanh(X @ P["W1"] + P["b1"])
    logits = h @ P["W2"] + P["b2"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    dlogits = (e / e.sum(axis=1, keepdims=True) - Y) / len(X)
    dh = dlogits @ P["W2"].T * (1 - h * h)
    return {"W1": X.T @ dh, "b1": dh.sum(0), "W2": h.T @ dlogits, "b2": dlogits.sum(0)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mlp_gradient_matches_hand_written(dtype):
    P, X, Y = _mlp_problem(dtype)
    g = tj.grad(_mlp_loss)(P, X, Y)
    want = _mlp_grads_by_hand(P, X, Y)
    tol = 1e-12 if dtype == np.float64 else 2e-6
    for k in P:
        assert g[k].dtype == dtype
        np.testing.assert_allclose(g[k], want[k], rtol=tol, atol=tol)


def test_mlp_gradient_compiled():
    P, X, Y = _mlp_problem(np.float64)
    g = tj.jit(tj.grad(_mlp_loss))(P, X, Y)
    want = _mlp_grads_by_hand(P, X, Y)
    for k in P:
        np.testing.assert_allclose(g[k], want[k], rtol=1e-12, atol=1e-12)


def test_eager_grad_reads_lengths_as_jit_does():
    """``a, b, c = np.exp(params)`` (autograd's GP example) unpacks a traced vector: its length is read off the
    call's argument, in a grad outside jit as inside."""
    def nll(params, X, y):
        ls, sf, sn = np.exp(params)
        K = sf * np.exp(-0.5 * (X[:, None] - X[None, :]) ** 2 / ls) + sn * np.eye(len(X))
        return -0.5 * y @ np.linalg.solve(K, y) - 0.5 * np.linalg.slogdet(K)[1]
    X, y, p = np.linspace(0, 1, 6), np.sin(np.arange(6.0)), np.array([-1.0, 0.2, -2.0])
    g = tj.grad(nll)(p, X, y)
    np.testing.assert_allclose(g, tj.jit(tj.grad(nll))(p, X, y), rtol=1e-10)
    h = 1e-6
    fd = [(nll(p + h * e, X, y) - nll(p - h * e, X, y)) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)


def test_eager_grad_runs_python_control_flow_on_values():
    """Outside jit, grad traces once on the call's arguments, so Python may branch and loop on values (autograd's
    and JAX's eager grad allow it); under jit the same function still needs tj.cond / tj.while_loop."""
    def branchy(x):
        return (x ** 2).sum() if np.sin(x).sum() > 0 else (x ** 3).sum()

    def newton_sqrt2(x):
        z = x * 1.0
        while float(np.abs(z ** 2 - 2).max()) > 1e-12:
            z = z - (z ** 2 - 2) / (2 * z)
        return (z * x).sum()

    def rectified(w, xs):
        tot = 0.0
        for x in xs:
            h = w @ x
            if h > 0:
                tot = tot + h
        return tot
    for x in (np.array([1.0, 2.0]), np.array([-1.0, -2.0])):
        want = 2 * x if np.sin(x).sum() > 0 else 3 * x ** 2
        np.testing.assert_allclose(tj.grad(branchy)(x), want)
    np.testing.assert_allclose(tj.grad(newton_sqrt2)(np.array([1.0, 3.0])), np.sqrt(2.0) * np.ones(2), rtol=1e-9)
    xs = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    np.testing.assert_allclose(tj.grad(rectified)(np.array([1.0, -1.0]), xs), [3.0, 1.0])
    np.testing.assert_allclose(tj.hessian(lambda x: np.sin(x).sum() if x.sum() > 0 else 0.0)(np.array([0.5, 0.2])),
                               np.diag(-np.sin([0.5, 0.2])), atol=1e-12)
    with pytest.raises(tj.ConcretizationError):
        tj.jit(tj.grad(branchy))(np.ones(2))
