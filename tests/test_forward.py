"""Forward mode and Jacobians (issue 12): jvp, linearize, hvp, jacfwd, jacrev, hessian, Theano's Rop/Lop, and
tj.grad's pass-through of the arguments it does not differentiate. Against JAX (x64) and central differences."""
from __future__ import annotations

import numpy as np
import pytest

import tracejit as tj
from tracejit import tensor as T

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

r = np.random.default_rng(7)
W = r.standard_normal((4, 5))
A = r.standard_normal((6, 6)) / 3

# (tracejit function, jax function, input shape): smooth functions over broadcasting, reductions, views, matmul
FUNS = [
    (lambda x: np.tanh(x @ W) * np.exp(-x.sum()), lambda x: jnp.tanh(x @ W) * jnp.exp(-x.sum()), (3, 4)),
    (lambda x: np.sin(x)[::-1] * x.T.T + np.mean(x * x), lambda x: jnp.sin(x)[::-1] * x.T.T + jnp.mean(x * x), (6,)),
    (lambda x: np.logaddexp(x, 0.5) / (1 + np.max(x)), lambda x: jnp.logaddexp(x, 0.5) / (1 + jnp.max(x)), (2, 3)),
    (lambda x: (A @ x) ** 2 + np.concatenate([x[3:], x[:3]]), lambda x: (A @ x) ** 2 + jnp.concatenate([x[3:], x[:3]]),
     (6,)),
    (lambda x: np.sum(np.sqrt(1 + x * x)), lambda x: jnp.sum(jnp.sqrt(1 + x * x)), ()),
    (lambda x: np.var(x, axis=0, ddof=1) * np.hypot(x[0], 2.0), lambda x: jnp.var(x, axis=0, ddof=1) *
     jnp.hypot(x[0], 2.0), (3, 2)),
]


@pytest.mark.parametrize("k", range(len(FUNS)))
def test_jvp_against_jax_eager_and_jitted(k):
    f, jf, shape = FUNS[k]
    x, v = r.standard_normal(shape), r.standard_normal(shape)
    jo, jt = jax.jvp(jf, (x,), (v,))
    for run in (lambda x, v: tj.jvp(f, (x,), (v,)), tj.jit(lambda x, v: tj.jvp(f, (x,), (v,)))):
        o, t = run(x, v)
        np.testing.assert_allclose(o, jo, rtol=1e-12)
        np.testing.assert_allclose(t, jt, rtol=1e-10, atol=1e-12)
        assert np.shape(t) == np.shape(jt)


@pytest.mark.parametrize("k", range(len(FUNS)))
def test_jacobians_against_jax(k):
    f, jf, shape = FUNS[k]
    x = r.standard_normal(shape)
    want_f, want_r = jax.jacfwd(jf)(x), jax.jacrev(jf)(x)
    for jac, want in ((tj.jacfwd(f), want_f), (tj.jacrev(f), want_r), (tj.jit(tj.jacfwd(f)), want_f),
                      (tj.jit(tj.jacrev(f)), want_r)):
        got = jac(x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_jvp_has_no_trace_of_the_auxiliary_cotangent():
    """The transposed pullback computes J v alone: the optimized program is the forward-mode graph (no ones,
    no zeros of the output's shape, no second matmul for the cotangent)."""
    ir = tj.make_ir(lambda x, v: tj.jvp(FUNS[0][0], (x,), (v,))[1])(np.ones((3, 4)), np.ones((3, 4)))
    assert ir.ops.count("matmul") == 2 and "broadcast_to" not in ir.ops[1:]


def test_jvp_with_pytrees_and_several_arguments():
    def f(p, x):
        return {"y": np.tanh(p["w"] * x + p["b"]), "s": np.sum(x ** 2)}

    def jf(p, x):
        return {"y": jnp.tanh(p["w"] * x + p["b"]), "s": jnp.sum(x ** 2)}
    p = {"w": r.standard_normal(3), "b": np.array(0.3)}
    x = r.standard_normal(3)
    tp = {"w": r.standard_normal(3), "b": np.array(-1.0)}
    tx = r.standard_normal(3)
    _, jt = jax.jvp(jf, (p, x), (tp, tx))
    for run in (tj.jvp, lambda *a: tj.jit(lambda p, x, tp, tx: tj.jvp(f, (p, x), (tp, tx)))(*a[1][:2], *a[2])):
        _, t = run(f, (p, x), (tp, tx))
        for key in ("y", "s"):
            np.testing.assert_allclose(t[key], jt[key], rtol=1e-12)


def test_hessian_and_hvp_against_jax():
    def s(x):
        return np.sum(np.tanh(x @ W) ** 2) + np.sum(x ** 3) * np.mean(x)

    def js(x):
        return jnp.sum(jnp.tanh(x @ W) ** 2) + jnp.sum(x ** 3) * jnp.mean(x)
    x, v = r.standard_normal((3, 4)), r.standard_normal((3, 4))
    H = jax.hessian(js)(x)
    np.testing.assert_allclose(tj.hessian(s)(x), H, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tj.jit(tj.hessian(s))(x), H, rtol=1e-10, atol=1e-12)
    hv = jax.jvp(jax.grad(js), (x,), (v,))[1]
    np.testing.assert_allclose(tj.hvp(s, (x,), (v,))[0], hv, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tj.jit(lambda x, v: tj.jvp(tj.grad(s), (x,), (v,))[1])(x, v), hv, rtol=1e-10)


def test_linearize_and_new_lengths_do_not_recompile():
    f = FUNS[1][0]
    x, v = r.standard_normal(6), r.standard_normal(6)
    out, f_jvp = tj.linearize(f, x)
    np.testing.assert_allclose(out, f(x))
    np.testing.assert_allclose(f_jvp(v), jax.jvp(FUNS[1][1], (x,), (v,))[1], rtol=1e-12)
    g = tj.jit(lambda x, v: tj.jvp(lambda x: np.sin(x) * x.sum(), (x,), (v,))[1])
    for n in (5, 9, 17):
        x, v = r.standard_normal(n), r.standard_normal(n)
        np.testing.assert_allclose(g(x, v), np.cos(x) * v * x.sum() + np.sin(x) * v.sum(), rtol=1e-12)
    assert g.cache_info().misses == 1


def test_jacobian_of_a_function_with_two_arguments():
    f = lambda x, y: np.sin(x)[:, None] * y  # noqa: E731
    jf = lambda x, y: jnp.sin(x)[:, None] * y  # noqa: E731
    x, y = r.standard_normal(3), r.standard_normal((3, 2))
    for jac, jjac in ((tj.jacfwd, jax.jacfwd), (tj.jacrev, jax.jacrev)):
        gx, gy = jac(f, argnums=(0, 1))(x, y)
        wx, wy = jjac(jf, argnums=(0, 1))(x, y)
        np.testing.assert_allclose(gx, wx, rtol=1e-12)
        np.testing.assert_allclose(gy, wy, rtol=1e-12)


def test_forward_mode_errors():
    f = FUNS[0][0]
    with pytest.raises(ValueError, match=r"tangent 0 has shape \(3, 5\) but primal 0 has shape \(3, 4\)"):
        tj.jvp(f, (np.ones((3, 4)),), (np.ones((3, 5)),))
    with pytest.raises(TypeError, match="1 primal\\(s\\) but 2 tangent"):
        tj.jvp(f, (np.ones((3, 4)),), (np.ones((3, 4)), np.ones(2)))
    with pytest.raises(TypeError, match="must be tuples"):
        tj.jvp(f, np.ones((3, 4)), np.ones((3, 4)))
    with pytest.raises(TypeError, match="float arguments, but primal 0 has dtype int64"):
        tj.jvp(f, (np.ones((3, 4), np.int64),), (np.ones((3, 4)),))
    with pytest.raises(TypeError, match="argument 0 must be a float array"):
        tj.jacfwd(lambda x: x * 2)(np.arange(3))
    with pytest.raises(TypeError, match="expected a callable"):
        tj.jvp(3, (1.0,), (1.0,))


def test_theano_rop_and_lop():
    Wv, V, x, v = T.dmatrix("W"), T.dmatrix("V"), T.dvector("x"), T.dvector("v")
    y = T.dot(x, Wv)
    f = tj.function([Wv, V, x], T.Rop(y, Wv, V), on_unused_input="ignore")
    np.testing.assert_allclose(f([[1, 1], [1, 1]], [[2, 2], [2, 2]], [0, 1]), [2, 2])  # Theano's tutorial
    g = tj.function([Wv, v, x], T.Lop(y, Wv, v), on_unused_input="ignore")
    np.testing.assert_allclose(g(np.ones((2, 2)), [2, 2], [0, 1]), [[0, 0], [2, 2]])
    z = T.tanh(T.dot(x, Wv)).sum()
    h = tj.function([Wv, V, x], T.Rop(T.grad(z, Wv), Wv, V))
    xs, Ws, Vs = r.standard_normal(3), r.standard_normal((3, 2)), r.standard_normal((3, 2))
    want = jax.jvp(jax.grad(lambda W: jnp.sum(jnp.tanh(xs @ W))), (Ws,), (Vs,))[1]
    np.testing.assert_allclose(h(Ws, Vs, xs), want, rtol=1e-12)


def test_grad_passes_non_differentiated_arguments_through_as_python_values():
    seen = []

    def loss(w, step, batches, scale=1.0):
        seen.append((type(step), type(batches)))
        return scale * np.sum((batches[step] @ w) ** 2) * (step + 1)
    B = [np.ones((2, 3)), np.full((2, 3), 2.0)]
    g = tj.grad(loss)(np.ones(3), 1, B, scale=0.5)
    np.testing.assert_allclose(g, 0.5 * 2 * 2 * 2 * 6.0 * np.ones(3) * 2)
    assert seen[-1] == (int, list)
    val, (gw,) = tj.value_and_grad(loss, argnums=(0,))(np.ones(3), 0, B)
    assert val == 18.0 and np.allclose(gw, 12.0)


@pytest.mark.parametrize("run", ["grad", "jit_grad", "vmap", "jit_vmap", "jvp", "vjp"])
def test_run_time_checks_inside_transformations_still_raise(run):
    """A check recorded while a transformation traced its body privately (a negative integer power known only
    at run time) reaches the program that runs it (it was dropped with the private trace)."""
    base = np.array([2, 3, 4])
    bad, good = np.array([1, -1, 2]), np.array([1, 1, 2])

    def f(x, e):
        return np.sum(x ** 2.0 * (base ** e))
    cases = {
        "grad": lambda e: tj.grad(f)(np.ones(3), e),
        "jit_grad": lambda e: tj.jit(tj.grad(f))(np.ones(3), e),
        "vmap": lambda e: tj.vmap(lambda e: base ** e)(np.stack([good, e])),
        "jit_vmap": lambda e: tj.jit(tj.vmap(lambda e: base ** e))(np.stack([good, e])),
        "jvp": lambda e: tj.jvp(lambda x: x * np.sum(base ** e), (np.ones(3),), (np.ones(3),)),
        "vjp": lambda e: tj.vjp(lambda x: x * np.sum(base ** e), np.ones(3))[1](np.ones(3)),
    }
    cases[run](good)
    with pytest.raises(ValueError, match="Integers to negative integer powers are not allowed"):
        cases[run](bad)
