"""fori_loop, while_loop, scan, cond, switch: results against unrolled Python and numpy, gradients against finite
differences and JAX, the IR they make, and every error path."""
import time

import numpy as np
import pytest

import tracejit as tj
from tracejit.errors import ConcretizationError
from finite_differences import numeric_grad

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy
rng = np.random.default_rng(0)


def _rnn(h, xs, w):
    def step(h, x):
        h = np.tanh(h * w + x)
        return h, (h * h).sum()
    return tj.scan(step, h, xs)


def _rnn_unrolled(h, xs, w):
    ys = []
    for x in xs:
        h = np.tanh(h * w + x)
        ys.append((h * h).sum())
    return h, np.array(ys)


# ------------------------------------------------------------------------------------------------ results
def test_fori_loop_matches_unrolled_and_stays_one_equation():
    f = lambda x: tj.fori_loop(0, 50, lambda i, c: c * 0.9 + x / (i + 1), x)
    x = rng.random(7)
    want = x.copy()
    for i in range(50):
        want = want * 0.9 + x / (i + 1)
    np.testing.assert_allclose(tj.jit(f)(x), want, rtol=1e-12)
    np.testing.assert_allclose(f(x), want, rtol=1e-12)  # eager
    ir = tj.make_ir(f)(x)
    assert ir.ops.count("scan") == 1 and len(ir.eqns) < 5
    assert "scan[body=" in str(ir) and "lambda" in str(ir).split("scan[body=")[1]


def test_scan_pytrees_and_reverse():
    def f(c, xs):
        def step(c, x):
            a, b = c["a"], c["b"]
            return {"a": a + x[0], "b": b * 2}, (a * x[1], [b])
        return tj.scan(step, c, xs, reverse=True)
    c = {"a": np.zeros(3), "b": np.float64(1.0)}
    xs = (rng.random((4, 3)), rng.random((4, 3)))
    got = tj.jit(f)(c, xs)
    want = jax.lax.scan(lambda c, x: ({"a": c["a"] + x[0], "b": c["b"] * 2}, (c["a"] * x[1], [c["b"]])),
                        {"a": jnp.zeros(3), "b": 1.0}, xs, reverse=True)
    np.testing.assert_allclose(got[0]["a"], want[0]["a"])
    np.testing.assert_allclose(got[0]["b"], want[0]["b"])
    np.testing.assert_allclose(got[1][0], want[1][0])
    np.testing.assert_allclose(got[1][1][0], want[1][1][0])
    eager = f(c, xs)
    np.testing.assert_allclose(eager[1][0], want[1][0])


def test_scan_rnn_symbolic_lengths_and_length_only():
    h, xs, w = rng.random(5), rng.random((6, 5)), rng.random(5)
    got = tj.jit(_rnn)(h, xs, w)
    want = _rnn_unrolled(h, xs, w)
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])
    got = tj.jit(_rnn)(h[:3], xs[:2, :3], w[:3])  # same compiled code, other lengths
    np.testing.assert_allclose(got[1], _rnn_unrolled(h[:3], xs[:2, :3], w[:3])[1])
    c, ys = tj.jit(lambda c: tj.scan(lambda c, _: (c + 1, c * 2), c, length=4))(np.int64(1))
    assert c == 5 and ys.tolist() == [2, 4, 6, 8]
    c, ys = tj.jit(lambda c, xs: tj.scan(lambda c, x: (c + x, c), c, xs))(0.0, np.zeros(0))
    assert c == 0 and ys.shape == (0,)


def test_trip_counts_from_traced_lengths():
    f = tj.jit(lambda x: tj.scan(lambda c, _: (c * 2, c), x[0], length=x.shape[0]))
    assert f(np.ones(4))[1].tolist() == [1, 2, 4, 8] and f(np.ones(6))[0] == 64
    g = tj.jit(lambda x: tj.fori_loop(0, x.shape[0], lambda i, c: c + i, 0.0))
    assert g(np.ones(5)) == 10 and g(np.ones(7)) == 21
    h = tj.jit(tj.grad(lambda x: tj.fori_loop(1, x.shape[0], lambda i, c: c * x[0], x[0])))
    assert h(np.full(4, 2.0)).tolist() == [32.0, 0.0, 0.0, 0.0]  # a length is a static trip count for grad


def test_while_loop_and_traced_trip_counts():
    def collatz(n):
        return tj.while_loop(lambda c: c[0] != 1, lambda c: (np.where(c[0] % 2 == 0, c[0] // 2, 3 * c[0] + 1),
                                                             c[1] + 1), (n, 0))[1]
    assert tj.jit(collatz)(np.int64(27)) == 111
    assert collatz(27) == 111  # eager
    f = tj.jit(lambda lo, hi, x: tj.fori_loop(lo, hi, lambda i, c: c + i, x))
    assert f(np.int64(2), np.int64(7), np.zeros(2)).tolist() == [20.0, 20.0]
    assert f(np.int64(5), np.int64(3), np.ones(2)).tolist() == [1.0, 1.0]
    assert "while_loop" in tj.make_ir(lambda hi, x: tj.fori_loop(0, hi, lambda i, c: c + i, x))(
        np.int64(3), np.zeros(2)).ops


def test_cond_and_switch_run_one_branch():
    f = tj.jit(lambda p, x: tj.cond(p > 0, lambda x: x * 2, lambda x: np.sin(x), x))
    x = rng.random(4)
    np.testing.assert_allclose(f(1.0, x), x * 2)
    np.testing.assert_allclose(f(-1.0, x), np.sin(x))
    g = tj.jit(lambda i, x: tj.switch(i, [lambda x: x + 1, lambda x: x * 10, lambda x: -x], x))
    assert [g(np.int64(k), np.float64(2.0)).item() for k in (-3, 0, 1, 2, 9)] == [3.0, 3.0, 20.0, -2.0, -2.0]
    assert tj.switch(1, [lambda: 1, lambda: 2]) == 2 and tj.cond(False, lambda: 1, lambda: 2) == 2
    # a branch that would never end is not run when not taken
    never = lambda x: tj.while_loop(lambda c: c < 1.0, lambda c: c * x.sum(), np.float64(0.5))
    h = tj.jit(lambda p, x: tj.cond(p, never, lambda x: x.sum(), x))
    assert h(False, np.zeros(3)) == 0.0
    # a Python scalar branch result adapts to the other branch's dtype
    k = tj.jit(lambda p, x: tj.cond(p, lambda: x.sum(), lambda: 0.0))
    assert k(np.bool_(False), np.ones(3, np.float32)).dtype == np.float32


def test_nested_loops_and_captured_values():
    def f(a, x):
        def outer(i, c):
            return tj.fori_loop(0, 3, lambda j, d: d * a + i * j, c)
        return tj.fori_loop(0, 4, outer, x)
    a, x = np.float64(0.5), rng.random(3)
    want = x.copy()
    for i in range(4):
        for j in range(3):
            want = want * a + i * j
    np.testing.assert_allclose(tj.jit(f)(a, x), want)
    np.testing.assert_allclose(f(a, x), want)


def test_loop_body_calling_grad():
    def f(x):  # gradient descent on sum((x - 3)^2)
        return tj.fori_loop(0, 20, lambda i, x: x - 0.1 * tj.grad(lambda y: ((y - 3) ** 2).sum())(x), x)
    x = rng.random(3)
    want = x.copy()
    for _ in range(20):
        want = want - 0.1 * 2 * (want - 3)
    np.testing.assert_allclose(tj.jit(f)(x), want)


def test_on_theano_style_symbolic_variables():
    x = tj.tensor.vector("x")
    h, ys = tj.scan(lambda c, xi: (c + xi, c * xi), np.float64(0.0), x)
    fn = tj.function([x], [h, ys])
    hv, yv = fn(np.array([1.0, 2.0, 3.0]))
    assert hv == 6.0 and yv.tolist() == [0.0, 2.0, 9.0]


def test_optimizer_runs_inside_bodies():
    ir = tj.make_ir(lambda x: tj.scan(lambda c, xi: (c + np.log(1 + xi), np.exp(xi)), x[0], x)[0])(rng.random(4))
    text = str(ir)
    assert "log1p" in text and "exp" not in text  # stability rewrite inside; the unread stacked output pruned
    ir = tj.make_ir(lambda x: tj.fori_loop(0, 10, lambda i, c: c * 2, x))(np.ones(3))
    assert ir.eqns[0].p["num_carry"] == 1  # the unused loop index is no longer carried


def test_cache_key_includes_bodies():
    from tracejit.backends.cache import graph_key
    x = rng.random(3)
    a = tj.make_ir(lambda x: tj.fori_loop(0, 3, lambda i, c: c * 2, x))(x)
    b = tj.make_ir(lambda x: tj.fori_loop(0, 3, lambda i, c: c * 3, x))(x)
    assert graph_key(a) != graph_key(b)


def test_interpreter_runs_regions():
    from tracejit.ir.interpret import evaluate
    h, xs, w = rng.random(3), rng.random((4, 3)), rng.random(3)
    ir = tj.make_ir(_rnn)(h, xs, w)
    got = evaluate(ir, [h, xs, w])
    np.testing.assert_allclose(got[1], _rnn_unrolled(h, xs, w)[1])


def test_compile_time_does_not_grow_with_trip_count():
    def compile_seconds(n, a):  # `a` differs per call, so no compiled body is reused from a cache
        f = tj.jit(lambda x: tj.fori_loop(0, n, lambda i, c: c * a + 0.001 * np.sin(c + i * 1e-3), x))
        t0 = time.perf_counter()
        f.compile(np.ones(4))
        return time.perf_counter() - t0, f
    compile_seconds(3, 0.5)
    t_small, _ = compile_seconds(10, 0.998)
    t_big, f = compile_seconds(10000, 0.999)
    assert t_big < 2 * t_small + 0.2
    x = np.ones(4)
    want = x.copy()
    for i in range(10000):
        want = want * 0.999 + 0.001 * np.sin(want + i * 1e-3)
    np.testing.assert_allclose(f(x), want, rtol=1e-10)


# ------------------------------------------------------------------------------------------------ gradients
def test_grad_scan_vs_jax_and_finite_differences():
    h, xs, w = rng.random(4), rng.random((5, 4)), rng.random(4)

    def loss(w, xs, h):
        h, ys = _rnn(h, xs, w)
        return ys.sum() + (h ** 3).sum()

    def jloss(w, xs, h):
        def step(h, x):
            h = jnp.tanh(h * w + x)
            return h, (h * h).sum()
        h, ys = jax.lax.scan(step, h, xs)
        return ys.sum() + (h ** 3).sum()
    got = tj.jit(tj.grad(loss, argnums=(0, 1, 2)))(w, xs, h)
    want = jax.grad(jloss, argnums=(0, 1, 2))(w, xs, h)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10)
    np.testing.assert_allclose(got[0], numeric_grad(lambda w: loss(w, xs, h), w), rtol=1e-6)


def test_grad_fori_loop_cond_switch():
    def f(x):
        return tj.fori_loop(0, 5, lambda i, c: np.sin(c) * x + i, x).sum()
    jf = lambda x: jax.lax.fori_loop(0, 5, lambda i, c: jnp.sin(c) * x + i, x).sum()
    x = rng.random(3)
    np.testing.assert_allclose(tj.jit(tj.grad(f))(x), jax.grad(jf)(x), rtol=1e-10)
    np.testing.assert_allclose(tj.grad(f)(x), jax.grad(jf)(x), rtol=1e-10)

    def c(p, x):
        return tj.cond(p > 0, lambda x: (x ** 3).sum(), lambda x: np.sin(x).sum(), x)
    g = tj.jit(tj.grad(c, argnums=1))
    np.testing.assert_allclose(g(1.0, x), 3 * x ** 2)
    np.testing.assert_allclose(g(-1.0, x), np.cos(x))

    def s(i, x, y):
        return tj.switch(i, [lambda x: (x * y).sum(), lambda x: (x * x).sum()], x)
    gs = tj.jit(tj.grad(s, argnums=(1, 2)))
    y = rng.random(3)
    np.testing.assert_allclose(gs(np.int64(0), x, y)[0], y)
    np.testing.assert_allclose(gs(np.int64(0), x, y)[1], x)
    np.testing.assert_allclose(gs(np.int64(1), x, y)[0], 2 * x)
    np.testing.assert_allclose(gs(np.int64(1), x, y)[1], 0 * x)


def test_grad_nested_loops_vs_jax():
    def f(a, x):
        return tj.fori_loop(0, 3, lambda i, c: tj.fori_loop(0, 2, lambda j, d: np.tanh(d * a + x), c), x).sum()

    def jf(a, x):
        return jax.lax.fori_loop(0, 3, lambda i, c: jax.lax.fori_loop(0, 2, lambda j, d: jnp.tanh(d * a + x), c),
                                 x).sum()
    a, x = rng.random(2), rng.random(2)
    got = tj.jit(tj.grad(f, argnums=(0, 1)))(a, x)
    want = jax.grad(jf, argnums=(0, 1))(a, x)
    for p, q in zip(got, want):
        np.testing.assert_allclose(p, q, rtol=1e-10)


def test_jvp_through_scan():
    h, xs, w = rng.random(3), rng.random((4, 3)), rng.random(3)
    f = lambda w: _rnn(h, xs, w)[1].sum()
    _, t = tj.jvp(f, (w,), (np.ones(3),))
    np.testing.assert_allclose(t, numeric_grad(f, w).sum(), rtol=1e-6)


# ------------------------------------------------------------------------------------------------ errors
def test_grad_of_while_loop_names_fori_loop_and_scan():
    def f(x):
        return tj.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 2), (0, x))[1].sum()
    with pytest.raises(NotImplementedError, match="fori_loop.*scan"):
        tj.jit(tj.grad(f))(np.ones(2))
    g = lambda n, x: tj.fori_loop(0, n, lambda i, c: c * 2, x).sum()
    with pytest.raises(NotImplementedError, match="while_loop"):
        tj.jit(tj.grad(g, argnums=1))(np.int64(3), np.ones(2))


def test_carry_type_errors_name_the_leaf():
    with pytest.raises(TypeError, match=r"carry output of f\[1\].*float32.*float64"):
        tj.jit(lambda x: tj.scan(lambda c, _: ((c[0], c[1].astype(np.float32)), None), (x, x), length=2))(
            np.ones(2))
    with pytest.raises(TypeError, match=r"output of body_fun.*int64\(\).*float64\(\)|carry"):
        tj.jit(lambda x: tj.while_loop(lambda c: c < 3, lambda c: (c + 1).astype(np.int64), x))(np.float64(0))
    with pytest.raises(TypeError, match="shape|type"):
        tj.jit(lambda x: tj.fori_loop(0, 2, lambda i, c: c.sum(), x))(np.ones(3))
    with pytest.raises(TypeError, match="structure"):
        tj.jit(lambda x: tj.scan(lambda c, _: ((c, c), None), x, length=2))(np.ones(2))
    with pytest.raises(TypeError, match="carry"):
        tj.fori_loop(0, 2, lambda i, c: c.astype(np.float32), np.ones(2))  # eager


def test_branch_and_predicate_errors():
    with pytest.raises(TypeError, match="identical types"):
        tj.jit(lambda p, x: tj.cond(p, lambda: x, lambda: x.astype(np.float32)))(True, np.ones(2))
    with pytest.raises(TypeError, match="same structure"):
        tj.jit(lambda p, x: tj.cond(p, lambda: (x, x), lambda: x))(True, np.ones(2))
    with pytest.raises(TypeError, match="boolean scalar"):
        tj.jit(lambda x: tj.while_loop(lambda c: c, lambda c: c - 1, x))(np.ones(2))
    with pytest.raises(TypeError, match="pred must be a scalar"):
        tj.cond(np.ones(2), lambda: 1, lambda: 2)
    with pytest.raises(TypeError, match="index must be an integer scalar"):
        tj.switch(1.5, [lambda: 1])
    with pytest.raises(TypeError, match="branches"):
        tj.switch(0, [])


def test_argument_errors():
    with pytest.raises(ValueError, match="give xs or length"):
        tj.scan(lambda c, x: (c, x), 0.0)
    with pytest.raises(ValueError, match="same leading length"):
        tj.scan(lambda c, x: (c, x), 0.0, (np.ones(2), np.ones(3)))
    with pytest.raises(ValueError, match="length=3"):
        tj.jit(lambda xs: tj.scan(lambda c, x: (c, x), 0.0, xs, length=3))(np.ones(2))
    with pytest.raises(ValueError, match="unroll"):
        tj.scan(lambda c, x: (c, x), 0.0, np.ones(2), unroll=0)
    with pytest.raises(TypeError, match="upper must be an integer"):
        tj.fori_loop(0, 2.5, lambda i, c: c, 0.0)
    with pytest.raises(TypeError, match="must be callable"):
        tj.while_loop(1, lambda c: c, 0)
    with pytest.raises(TypeError, match="pair"):
        tj.jit(lambda x: tj.scan(lambda c, x: c, x[0], x))(np.ones(2))


def test_python_control_flow_error_points_to_these_functions():
    def f(x):
        if x.sum() > 0:
            return x
        return -x
    with pytest.raises(ConcretizationError, match="tj.cond.*tj.fori_loop.*tj.while_loop.*tj.scan"):
        tj.jit(f)(np.ones(2))


def test_vmap_of_loops_and_branches():
    xs, ws = rng.random((3, 4, 2)), rng.random((3, 2))
    got = tj.vmap(lambda xs, w: _rnn(np.zeros(2), xs, w), in_axes=(0, 0))(xs, ws)
    for b in range(3):
        want = _rnn_unrolled(np.zeros(2), xs[b], ws[b])
        np.testing.assert_allclose(got[0][b], want[0])
        np.testing.assert_allclose(got[1][b], want[1])
    lim = np.array([2.0, 5.0, 100.0])
    got = tj.jit(tj.vmap(lambda m: tj.while_loop(lambda c: c[1] < m, lambda c: (c[0] + 1, c[1] * 2),
                                                  (0, np.float64(1.0)))))(lim)
    assert got[0].tolist() == [1, 3, 7] and got[1].tolist() == [2.0, 8.0, 128.0]
    sel = tj.jit(tj.vmap(lambda p, x: tj.cond(p > 0, lambda x: x * 2, lambda x: -x, x)))
    assert sel(np.array([1.0, -1.0]), np.array([3.0, 3.0])).tolist() == [6.0, -3.0]
    shared = tj.jit(tj.vmap(lambda x, p: tj.cond(p > 0, lambda x: x * 2, lambda x: -x, x), in_axes=(0, None)))
    assert shared(np.array([1.0, 2.0]), -1.0).tolist() == [-1.0, -2.0]


def test_cuda_backend_runs_regions_from_the_host_loop():
    """Under numba's simulator (NUMBA_ENABLE_CUDASIM=1) or on a GPU; skipped without either."""
    from tracejit.backends.cuda import check as cuda_check
    try:
        cuda_check.require_cuda("cuda")
    except Exception:
        pytest.skip("no CUDA device or simulator")
    h, xs, w = rng.random(3), rng.random((4, 3)), rng.random(3)
    got = tj.jit(_rnn, device="cuda")(h, xs, w)
    np.testing.assert_allclose(got[1], _rnn_unrolled(h, xs, w)[1])
    f = tj.jit(lambda p, x: tj.cond(p > 0, lambda x: tj.while_loop(lambda c: c.sum() < 100, lambda c: c * 2, x),
                                    lambda x: -x, x), device="cuda")
    np.testing.assert_allclose(f(1.0, np.ones(2)), [64.0, 64.0])
    np.testing.assert_allclose(f(-1.0, np.ones(2)), [-1.0, -1.0])


# ------------------------------------------------------------------------------------------------ random programs
_OPS = [("add_x", lambda c, x, m: c + x), ("mul", lambda c, x, m: c * 0.9), ("tanh", lambda c, x, m: m.tanh(c)),
        ("sin_x", lambda c, x, m: m.sin(c * x)), ("sq", lambda c, x, m: 0.5 * c * c), ("exp", lambda c, x, m:
                                                                                     m.exp(-c * c) + x)]


def _program(choice, m):
    def step(c, x):
        for k in choice:
            c = _OPS[k][1](c, x, m)
        return c, (c * x).sum()
    return step


def test_random_loop_programs_vs_unrolled_and_jax():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(max_examples=12, deadline=None, derandomize=True)
    @hypothesis.given(st.lists(st.integers(0, len(_OPS) - 1), min_size=1, max_size=4), st.integers(1, 6))
    def check(choice, steps):
        xs, c0 = rng.random((steps, 3)), rng.random(3)

        def loss(c0, xs):
            c, ys = tj.scan(_program(choice, np), c0, xs)
            return (c * c).sum() + ys.sum()

        def jloss(c0, xs):
            c, ys = jax.lax.scan(_program(choice, jnp), c0, xs)
            return (c * c).sum() + ys.sum()
        c, want = c0, 0.0
        for x in xs:
            c, y = _program(choice, np)(c, x)
            want += y
        want += (c * c).sum()
        np.testing.assert_allclose(tj.jit(loss)(c0, xs), want, rtol=1e-12)
        got = tj.jit(tj.grad(loss, argnums=(0, 1)))(c0, xs)
        for a, b in zip(got, jax.grad(jloss, argnums=(0, 1))(c0, xs)):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    check()


def test_examples_run():
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
    import mandelbrot
    import rnn_scan
    cr, ci = mandelbrot.grid(40, 20)
    np.testing.assert_array_equal(mandelbrot.mandelbrot(cr, ci), mandelbrot.mandelbrot_numpy(cr, ci))
    r = np.random.default_rng(1)
    params = rnn_scan.init_params(r, 8)
    xs, targets = rnn_scan.make_batch(r, steps=6, batch=4)
    first, _ = rnn_scan.train_step(params, xs, targets, np.float32(0.1))
    for _ in range(30):
        value, params = rnn_scan.train_step(params, xs, targets, np.float32(0.1))
    assert value < first
