"""Custom derivative rules (issue 12): tj.custom_vjp and tj.custom_jvp with JAX's semantics, honoured (the rule is
called, counted, never replaced by differentiating the body) inside grad, jit, vmap, jvp and loops."""
from __future__ import annotations

import functools

import numpy as np
import pytest

import tracejit as tj

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


def make_clipped(calls):
    """sin(x) * y whose x-gradient is clipped to [-0.1, 0.1]: a rule no differentiation of the body gives."""
    @tj.custom_vjp
    def f(x, y):
        return np.sin(x) * y

    def fwd(x, y):
        calls["fwd"] += 1
        return np.sin(x) * y, (np.cos(x), np.sin(x), y)

    def bwd(res, g):
        calls["bwd"] += 1
        c, s, y = res
        return np.clip(g * c * y, -0.1, 0.1), g * s
    f.defvjp(fwd, bwd)
    return f


@jax.custom_vjp
def jax_clipped(x, y):
    return jnp.sin(x) * y


jax_clipped.defvjp(lambda x, y: (jnp.sin(x) * y, (jnp.cos(x), jnp.sin(x), y)),
                   lambda r, g: (jnp.clip(g * r[0] * r[2], -0.1, 0.1), g * r[1]))

X = np.linspace(-1, 1, 5)
Y = np.array([2.0, -1.0, 0.5, 3.0, 1.5])


def test_custom_vjp_is_honoured_eagerly_and_under_jit():
    calls = {"fwd": 0, "bwd": 0}
    f = make_clipped(calls)
    loss = lambda x, y: np.sum(f(x, y) ** 2)  # noqa: E731
    want = jax.grad(lambda x, y: jnp.sum(jax_clipped(x, y) ** 2), argnums=(0, 1))(X, Y)
    for g in (tj.grad(loss, argnums=(0, 1)), tj.jit(tj.grad(loss, argnums=(0, 1)))):
        got = g(X, Y)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    assert calls == {"fwd": 2, "bwd": 2}  # once per trace; the jitted call is served from its cache after that
    tj.jit(tj.grad(loss, argnums=(0, 1)))(X, Y)
    assert calls["bwd"] == 3


def test_custom_vjp_primal_is_the_function_and_costs_nothing_undifferentiated():
    calls = {"fwd": 0, "bwd": 0}
    f = make_clipped(calls)
    np.testing.assert_allclose(f(X, Y), np.sin(X) * Y)
    np.testing.assert_allclose(tj.jit(f)(X, Y), np.sin(X) * Y)
    ir = tj.make_ir(f)(X, Y)
    assert "custom_vjp_call" not in ir.ops and "cos" not in ir.ops  # the mark and the unused residual are gone
    np.testing.assert_allclose(tj.jit(f, passes=())(X, Y), np.sin(X) * Y)  # kept as an identity
    assert calls["bwd"] == 0


def test_custom_vjp_under_vmap_in_both_orders():
    calls = {"fwd": 0, "bwd": 0}
    f = make_clipped(calls)
    want = jax.vmap(jax.grad(lambda x, y: jax_clipped(x, y) ** 2))(X, Y)
    np.testing.assert_allclose(tj.vmap(tj.grad(lambda x, y: f(x, y) ** 2))(X, Y), want, rtol=1e-12)
    np.testing.assert_allclose(tj.jit(tj.vmap(tj.grad(lambda x, y: f(x, y) ** 2)))(X, Y), want, rtol=1e-12)
    want2 = jax.grad(lambda x, y: jnp.sum(jax.vmap(jax_clipped)(x, y) ** 2))(X, Y)
    np.testing.assert_allclose(tj.grad(lambda x, y: np.sum(tj.vmap(f)(x, y) ** 2))(X, Y), want2, rtol=1e-12)
    # the batched rule sums a cotangent for an argument every example shares
    want3 = jax.grad(lambda y: jnp.sum(jax.vmap(jax_clipped, in_axes=(0, None))(X, y) ** 2))(Y[0])
    got3 = tj.grad(lambda y: np.sum(tj.vmap(f, in_axes=(0, None))(X, y) ** 2))(Y[0])
    np.testing.assert_allclose(got3, want3, rtol=1e-12)


def test_custom_vjp_with_pytrees_nondiff_argnums_and_none_cotangents():
    calls = []

    @functools.partial(tj.custom_vjp, nondiff_argnums=(0,))
    def scaled(scale, p):
        return {"out": p["w"] * scale + p["b"]}

    def fwd(scale, p):
        return scaled(scale, p), p["w"]

    def bwd(scale, w, g):
        calls.append(scale)
        return ({"w": g["out"] * scale * 10, "b": None},)
    scaled.defvjp(fwd, bwd)
    p = {"w": np.ones(3), "b": np.zeros(3)}
    gw = tj.grad(lambda p: np.sum(scaled(2.0, p)["out"]))(p)
    np.testing.assert_allclose(gw["w"], 20.0)
    np.testing.assert_allclose(gw["b"], 0.0)
    assert calls == [2.0]


def test_custom_vjp_in_second_order_and_in_a_loop():
    calls = {"fwd": 0, "bwd": 0}
    f = make_clipped(calls)

    def loss(x):
        for _ in range(3):  # a Python loop: one rule call per iteration
            x = f(x, Y) * 0.5 + x
        return np.sum(x)
    want = jax.grad(lambda x: _jax_loop(x))(X)
    np.testing.assert_allclose(tj.jit(tj.grad(loss))(X), want, rtol=1e-12)
    assert calls["bwd"] == 3


def _jax_loop(x):
    for _ in range(3):
        x = jax_clipped(x, Y) * 0.5 + x
    return jnp.sum(x)


def test_custom_jvp_reverse_and_forward_mode():
    count = {"rule": 0}

    @tj.custom_jvp
    def log1pexp(x):
        return np.log1p(np.exp(x))

    @log1pexp.defjvp
    def rule(primals, tangents):
        (x,), (t,) = primals, tangents
        count["rule"] += 1
        return log1pexp(x), t * (1 - 1 / (1 + np.exp(x)))
    x = np.array([-3.0, 0.0, 800.0])  # exp(800) overflows: only the rule gives 1 there
    sig = 1 / (1 + np.exp(-np.array([-3.0, 0.0])))
    for g in (tj.grad(lambda x: np.sum(log1pexp(x))), tj.jit(tj.grad(lambda x: np.sum(log1pexp(x))))):
        got = g(x)
        np.testing.assert_allclose(got, [sig[0], sig[1], 1.0], rtol=1e-12)
    _, t = tj.jvp(log1pexp, (x,), (np.array([1.0, 2.0, 3.0]),))
    np.testing.assert_allclose(t, [sig[0], 2 * sig[1], 3.0], rtol=1e-12)
    np.testing.assert_allclose(tj.vmap(tj.grad(log1pexp))(x), [sig[0], sig[1], 1.0], rtol=1e-12)
    assert count["rule"] >= 4


def test_custom_jvp_with_nondiff_argnums():
    @functools.partial(tj.custom_jvp, nondiff_argnums=(1,))
    def power(x, k):
        return x ** k

    @power.defjvp
    def rule(k, primals, tangents):
        (x,), (t,) = primals, tangents
        return power(x, k), 100.0 * t  # deliberately not k * x**(k-1): proves the rule is used
    np.testing.assert_allclose(tj.grad(lambda x: np.sum(power(x, 3)))(np.ones(2)), [100.0, 100.0])


def test_custom_rule_errors():
    f = tj.custom_vjp(lambda x: x * 2)
    with pytest.raises(AttributeError, match="no VJP defined"):
        f(np.ones(2))
    f.defvjp(lambda x: (x * 2, None), lambda r, g: (g, g))
    with pytest.raises(TypeError, match="one cotangent per differentiable argument \\(1\\), got a tuple of length 2"):
        tj.grad(lambda x: np.sum(f(x)))(np.ones(2))
    f.defvjp(lambda x: (x * 2, None), lambda r, g: (np.ones(3),))
    with pytest.raises(ValueError, match=r"cotangent of shape \(3,\) was returned for an argument of shape \(2,\)"):
        tj.grad(lambda x: np.sum(f(x)))(np.ones(2))
    f.defvjp(lambda x: (x * 2, None), lambda r, g: g)
    with pytest.raises(TypeError, match="must return a tuple"):
        tj.grad(lambda x: np.sum(f(x)))(np.ones(2))
    with pytest.raises(TypeError, match="fwd and bwd must be callables"):
        f.defvjp(lambda x: x, 3)
    g = tj.custom_vjp(lambda x: x)
    g.defvjp(lambda x: x, lambda r, c: (c,))
    with pytest.raises(TypeError, match="must return a pair"):
        tj.grad(lambda x: np.sum(g(x)))(np.ones(2))
    h = tj.custom_jvp(lambda x: x)
    with pytest.raises(AttributeError, match="no JVP defined"):
        tj.grad(lambda x: np.sum(h(x)))(np.ones(2))
    with pytest.raises(TypeError, match="expected a callable"):
        tj.custom_vjp(3)


# ------------------------------------------------------------------------------------------------ checkpoint
def _deep_loss(x, ck, Ws):
    def layer(h, W):
        return np.tanh(h @ W) + 0.1 * np.exp(-h * h)
    h = x
    for W in Ws:
        h = tj.checkpoint(layer)(h, W) if ck else layer(h, W)
    return np.sum(h ** 2)


def test_checkpoint_recomputes_in_the_backward_pass_and_saves_memory():
    r = np.random.default_rng(0)
    Ws = [r.standard_normal((16, 16)) / 4 for _ in range(6)]
    x = r.standard_normal((32, 16))
    plain = tj.jit(tj.grad(lambda x: _deep_loss(x, False, Ws)))
    remat = tj.jit(tj.grad(lambda x: _deep_loss(x, True, Ws)))
    want = jax.grad(lambda x: _jax_deep(x, Ws))(x)
    np.testing.assert_allclose(plain(x), want, rtol=1e-10)
    np.testing.assert_allclose(remat(x), want, rtol=1e-10)
    np.testing.assert_allclose(tj.grad(lambda x: _deep_loss(x, True, Ws))(x), want, rtol=1e-10)
    lp, lr = plain.lower(x), remat.lower(x)
    assert lr.optimized.ops.count("tanh") == 2 * lp.optimized.ops.count("tanh") == 12  # recomputed, not merged
    assert lr.memory_plan()["intermediate_bytes_now"] < 0.6 * lp.memory_plan()["intermediate_bytes_now"]
    np.testing.assert_allclose(tj.jit(lambda x: _deep_loss(x, True, Ws))(x), _deep_loss(x, False, Ws), rtol=1e-12)


def _jax_deep(x, Ws):
    h = x
    for W in Ws:
        h = jnp.tanh(h @ W) + 0.1 * jnp.exp(-h * h)
    return jnp.sum(h ** 2)


def test_checkpoint_composes_with_vmap_second_order_and_static_args():
    f = tj.checkpoint(lambda x, k: np.sin(x) ** k, static_argnums=(1,))
    x = np.linspace(-1, 1, 4)
    np.testing.assert_allclose(tj.vmap(tj.grad(lambda x: f(x, 3)))(x), 3 * np.sin(x) ** 2 * np.cos(x), rtol=1e-12)
    d2 = tj.grad(tj.grad(lambda x: f(x, 2)))(0.3)
    np.testing.assert_allclose(d2, 2 * np.cos(0.6), rtol=1e-12)
    with pytest.raises(TypeError, match="expected a callable"):
        tj.checkpoint(None)


def test_checkpoint_of_a_closure_differentiates_what_it_closes_over():
    """A checkpointed layer reading a weight of the enclosing trace (not an argument): the weight's gradient flows
    through the recomputation, jitted or not, also when the layer is a scan body (an LSTM cell)."""
    r = np.random.default_rng(0)
    W, x = r.standard_normal((3, 3)), r.standard_normal((2, 3))
    layer = lambda W, x, ck: (tj.checkpoint(lambda x: np.tanh(x @ W)) if ck else (lambda x: np.tanh(x @ W)))(x)
    loss = lambda W, x, ck: np.sum(layer(W, x, ck) ** 2)
    want = jax.grad(lambda W, x: jnp.sum(jnp.tanh(x @ W) ** 2), argnums=(0, 1))(W, x)
    for g in (tj.grad(lambda W, x: loss(W, x, True), argnums=(0, 1)),
              tj.jit(tj.grad(lambda W, x: loss(W, x, True), argnums=(0, 1)))):
        for got, w in zip(g(W, x), want):
            np.testing.assert_allclose(got, w, rtol=1e-12)

    Wc, xs = r.standard_normal((6, 12)) * 0.3, r.standard_normal((5, 2, 3))

    def lstm(W, xs, ck, np=np, scan=tj.scan):
        def cell(carry, x):
            h, c = carry
            i, f, o, g = np.split(np.concatenate([x, h], axis=1) @ W, 4, axis=1)
            c = 1 / (1 + np.exp(-f)) * c + 1 / (1 + np.exp(-i)) * np.tanh(g)
            h = 1 / (1 + np.exp(-o)) * np.tanh(c)
            return (h, c), h
        _, hs = scan(tj.checkpoint(cell) if ck else cell, (np.zeros((2, 3)), np.zeros((2, 3))), xs)
        return (hs ** 2).sum()
    want = jax.grad(lambda W: lstm(W, xs, False, jnp, jax.lax.scan))(Wc)
    np.testing.assert_allclose(tj.grad(lambda W: lstm(W, xs, True))(Wc), want, rtol=1e-10)
    np.testing.assert_allclose(tj.jit(tj.grad(lambda W: lstm(W, xs, True)))(Wc), want, rtol=1e-10)
