"""The reverse scan of an RNN's gradient: stored products instead of recomputed ones, and the weight gradient's
accumulation hoisted out of the loop as one product (passes/loop_hoist.py, passes/autodiff_regions.py)."""
import numpy as np
import pytest

import tracejit as tj
from tracejit.ir.graph import Graph
from tracejit.passes.loop_hoist import hoist_accumulations

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


def _lstm_loss(npx, scan, hidden):
    def sigmoid(v):
        return 1 / (1 + npx.exp(-v))

    def loss(p, xs):
        def cell(carry, x):
            h, c = carry
            z = npx.concatenate([x, h], axis=1) @ p["w"] + p["b"]
            i, f, g, o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
            c = sigmoid(f) * c + sigmoid(i) * npx.tanh(g)
            h = sigmoid(o) * npx.tanh(c)
            return (h, c), h
        zero = npx.zeros((xs.shape[1], hidden), xs.dtype)
        _, hs = scan(cell, (zero, zero), xs)
        return (hs * hs).mean()
    return loss


def _lstm_inputs(dtype, steps=7, batch=3, d=5, hidden=4, seed=0):
    rng = np.random.default_rng(seed)
    p = {"w": (rng.standard_normal((d + hidden, 4 * hidden)) * 0.5).astype(dtype),
         "b": (rng.standard_normal(4 * hidden) * 0.1).astype(dtype)}
    return p, rng.standard_normal((steps, batch, d)).astype(dtype)


def _scans(graph):
    seen, out = set(), []
    for e in graph.eqns:
        if e.prim == "scan" and e.p["body"].key not in seen:
            seen.add(e.p["body"].key)
            out.append(e)
    return out


def _count(graph, prim):
    return sum(e.prim == prim for e in graph.eqns)


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 2e-4)])
def test_lstm_gradient_matches_jax(dtype, rtol):
    p, xs = _lstm_inputs(dtype)
    got = tj.jit(tj.grad(_lstm_loss(np, tj.scan, 4)))(p, xs)
    want = jax.grad(_lstm_loss(jnp, jax.lax.scan, 4))(p, xs)
    for k in ("w", "b"):
        assert got[k].dtype == dtype
        np.testing.assert_allclose(got[k], np.asarray(want[k]), rtol=rtol, atol=rtol * 1e-2)


def test_reverse_scan_reads_stored_products_and_hoists_weight_gradient():
    p, xs = _lstm_inputs(np.float64)
    g = tj.jit(tj.grad(_lstm_loss(np, tj.scan, 4))).lower(p, xs).optimized
    fwd, bwd = sorted(_scans(g), key=lambda e: e.p["reverse"])
    assert not fwd.p["reverse"] and bwd.p["reverse"]
    assert _count(fwd.p["body"].graph, "matmul") == 1
    # the forward's product is stored, not recomputed: the reverse step keeps only the carry's cotangent product
    assert _count(bwd.p["body"].graph, "matmul") == 1
    # dW and db left the loop: only the carries' cotangents (dh, dc) are carried, the products run after it
    assert bwd.p["num_carry"] == 2
    # outside: xs @ w[x rows] before the loop, the stacked [x_t, h_t].T @ dz_t after it
    assert _count(g, "matmul") == 2
    assert any(e.prim == "sum" and e.p["axes"] == (0, 1) for e in g.eqns)


def _tanh_rnn_loss(w, xs, checkpointed):
    def cell(h, w):
        return np.tanh(h @ w)
    cell = tj.checkpoint(cell) if checkpointed else cell

    def step(h, x):
        h = cell(h + x, w)
        return h, h
    return tj.scan(step, np.ones((2, 3)), xs)[1].sum()


def test_checkpointed_body_recomputes_its_products():
    rng = np.random.default_rng(0)
    w, xs = rng.standard_normal((3, 3)), rng.standard_normal((5, 2, 3))
    grad = tj.jit(tj.grad(_tanh_rnn_loss), static_argnums=2)
    counts = {}
    for ck in (False, True):
        fwd, bwd = sorted(_scans(grad.lower(w, xs, ck).optimized), key=lambda e: e.p["reverse"])
        counts[ck] = _count(bwd.p["body"].graph, "matmul")
    assert counts == {False: 1, True: 2}  # checkpoint asks for the recomputation: h @ w runs again
    want = jax.grad(lambda w: jax.lax.scan(lambda h, x: (jnp.tanh((h + x) @ w),) * 2, jnp.ones((2, 3)), xs)[1].sum())
    for ck in (False, True):
        np.testing.assert_allclose(grad(w, xs, ck), want(w), rtol=1e-12)


def _hand_accumulation(read_acc_elsewhere):
    """A scan accumulating p_t.T @ q_t and q_t.sum(0), written by hand (not by grad)."""
    def f(w, xs):
        def step(carry, x):
            h, acc, bias = carry
            q = np.tanh(h @ w + x)
            new_acc = acc + h.T @ q
            h = q if not read_acc_elsewhere else q + 0.01 * new_acc[0]
            return (h, new_acc, bias + q.sum(axis=0)), h[0]
        h0 = np.ones((xs.shape[1], w.shape[0]))
        (h, acc, bias), ys = tj.scan(step, (h0, np.zeros(w.shape), np.zeros(w.shape[1])), xs)
        return acc, bias, ys
    return f


def _hand_reference(w, xs, read_acc_elsewhere):
    h, acc, bias, ys = np.ones((xs.shape[1], w.shape[0])), np.zeros(w.shape), np.zeros(w.shape[1]), []
    for x in xs:
        q = np.tanh(h @ w + x)
        acc = acc + h.T @ q
        h = q if not read_acc_elsewhere else q + 0.01 * acc[0]
        bias = bias + q.sum(axis=0)
        ys.append(h[0])
    return acc, bias, np.array(ys)


@pytest.mark.parametrize("read_acc_elsewhere", [False, True])
def test_hand_written_accumulation(read_acc_elsewhere):
    rng = np.random.default_rng(1)
    w, xs = rng.standard_normal((6, 6)) * 0.3, rng.standard_normal((9, 4, 6))
    f = _hand_accumulation(read_acc_elsewhere)
    g = tj.jit(f).lower(w, xs).optimized
    (scan,) = _scans(g)
    # a carry read by the step itself stays a carry; a pure accumulation leaves the loop
    assert scan.p["num_carry"] == (2 if read_acc_elsewhere else 1)
    assert _count(g, "matmul") == (0 if read_acc_elsewhere else 1)
    for a, b in zip(tj.jit(f)(w, xs), _hand_reference(w, xs, read_acc_elsewhere)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_pass_leaves_graphs_without_scans_alone():
    g = tj.make_ir(lambda x: np.sin(x) @ x.T)(np.ones((3, 3)))
    assert hoist_accumulations(g) is g
    assert isinstance(g, Graph)


def test_slice_of_product_multiplies_only_what_is_read():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 7))

    def f(a, b):
        return (a @ b)[1:4, 2:6]
    g = tj.make_ir(f)(a, b)
    (mm,) = [e for e in g.eqns if e.prim == "matmul"]
    # the product is as small as the slice: its operands are the rows and columns read
    assert [x.eqn.prim for x in mm.inputs] == ["slice", "slice"] and not any(e.prim == "slice" and
                                                                             e.inputs[0] is mm.out for e in g.eqns)
    np.testing.assert_allclose(tj.jit(f)(a, b), (a @ b)[1:4, 2:6], rtol=1e-13)

    def shared(a, b):
        m = a @ b
        return m[:, 2:], m.sum()
    g = tj.make_ir(shared)(a, b)
    (mm,) = [e for e in g.eqns if e.prim == "matmul"]  # read whole elsewhere: one product, sliced after
    assert mm.inputs[0].eqn is None and mm.inputs[1].eqn is None
    for x, y in zip(tj.jit(shared)(a, b), ((a @ b)[:, 2:], (a @ b).sum())):
        np.testing.assert_allclose(x, y, rtol=1e-13)


@pytest.mark.parametrize("x_first", [True, False])
def test_input_half_of_step_product_runs_before_the_loop(x_first):
    rng = np.random.default_rng(3)
    w, xs = rng.standard_normal((7, 4)) * 0.4, rng.standard_normal((6, 2, 3))

    def f(w, xs):
        def step(h, x):
            h = np.tanh(np.concatenate([x, h] if x_first else [h, x], axis=1) @ w)
            return h, h
        return tj.scan(step, np.zeros((2, 4)), xs)

    g = tj.jit(f).lower(w, xs).optimized
    (scan,) = _scans(g)
    body = scan.p["body"].graph
    (inner,) = [e for e in body.eqns if e.prim == "matmul"]
    h_in = body.inputs[scan.p["num_consts"]]
    assert inner.inputs[0] is h_in  # the step multiplies only the carry
    assert _count(body, "concatenate") == 0
    (before,) = [e for e in g.eqns if e.prim == "matmul"]  # x_t @ w[x rows] for every step, one product
    h, hs = np.zeros((2, 4)), []
    for x in xs:
        h = np.tanh(np.concatenate([x, h] if x_first else [h, x], axis=1) @ w)
        hs.append(h)
    got = tj.jit(f)(w, xs)
    np.testing.assert_allclose(got[0], h, rtol=1e-13)
    np.testing.assert_allclose(got[1], np.array(hs), rtol=1e-13)
    jg = jax.grad(lambda w: jax.lax.scan(lambda h, x: (jnp.tanh(jnp.concatenate(
        [x, h] if x_first else [h, x], axis=1) @ w),) * 2, jnp.zeros((2, 4)), xs)[1].sum())
    np.testing.assert_allclose(tj.jit(tj.grad(lambda w, xs: f(w, xs)[1].sum()))(w, xs), jg(w), rtol=1e-10, atol=1e-13)


def test_product_of_carries_only_stays_in_the_loop():
    rng = np.random.default_rng(4)
    w, xs = rng.standard_normal((8, 4)) * 0.4, rng.standard_normal((5, 2, 4))

    def f(w, xs):
        def step(c, x):
            h, k = c
            h2 = np.tanh(np.concatenate([h, k], axis=1) @ w) + x
            return (h2, h), h2
        return tj.scan(step, (np.zeros((2, 4)), np.ones((2, 4))), xs)[1]
    g = tj.jit(f).lower(w, xs).optimized
    (scan,) = _scans(g)
    assert _count(scan.p["body"].graph, "concatenate") == 1 and _count(g, "matmul") == 0
    h, k, want = np.zeros((2, 4)), np.ones((2, 4)), []
    for x in xs:
        h, k = np.tanh(np.concatenate([h, k], axis=1) @ w) + x, h
        want.append(h)
    np.testing.assert_allclose(tj.jit(f)(w, xs), np.array(want), rtol=1e-13)


def test_body_fuses_over_lengths_its_broadcasts_equate():
    """The carry is (3, 4) while x_t is (k1, 4): the body's own broadcasts say k1 == 3, so the gates' elementwise
    work fuses into few kernels instead of one per shape spelling."""
    from tracejit.lower.fuse import plan
    from tracejit.lower.plan import Kernel
    p, xs = _lstm_inputs(np.float64, batch=3, hidden=4)
    g = tj.jit(_lstm_loss(np, tj.scan, 4)).lower(p, xs).optimized
    (scan,) = _scans(g)
    body = scan.p["body"].graph
    assert any(c.kind == "eq" for c in body.constraints)
    kernels = [s for s in plan(body).steps if isinstance(s, Kernel)]
    assert len(kernels) <= 4, len(kernels)
    np.testing.assert_allclose(tj.jit(_lstm_loss(np, tj.scan, 4))(p, xs),
                               jax.jit(_lstm_loss(jnp, jax.lax.scan, 4))(p, xs), rtol=1e-12)
    with pytest.raises(ValueError, match="broadcast"):  # the equalities are checked when the loop runs
        tj.jit(lambda xs: tj.scan(lambda h, x: (h + x, h), np.zeros((3, 4)), xs)[1])(np.ones((7, 2, 4)))


def test_theano_scan_lstm_gradient_leaves_the_loop():
    """Through Theano's scan + T.grad the weight gradient arrives padded with zeros (the rows of w that the step's
    product reads): the padded accumulation leaves the loop too."""
    theano, T = tj.theano, tj.tensor
    hidden, batch = 4, 3
    W, b, X = T.dmatrix("w"), T.dvector("b"), T.dtensor3("xs")

    def cell(x, h, c, W, b):
        z = T.dot(T.concatenate([x, h], axis=1), W) + b
        i, f, g, o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = T.nnet.sigmoid(f) * c + T.nnet.sigmoid(i) * T.tanh(g)
        return T.nnet.sigmoid(o) * T.tanh(c), c
    zero = T.zeros((batch, hidden))
    (hs, _), _ = theano.scan(cell, sequences=X, outputs_info=[zero, zero], non_sequences=[W, b])
    fn = theano.function([W, b, X], T.grad((hs * hs).mean(), [W, b]))
    p, xs = _lstm_inputs(np.float64, batch=batch, hidden=hidden)
    got = fn(p["w"], p["b"], xs)
    (bwd,) = [e for e in _scans(fn.graph) if e.p["reverse"]]
    assert bwd.p["num_carry"] == 2 and _count(bwd.p["body"].graph, "matmul") == 1
    want = jax.grad(_lstm_loss(jnp, jax.lax.scan, hidden))(p, xs)
    np.testing.assert_allclose(got[0], want["w"], rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(got[1], want["b"], rtol=1e-10, atol=1e-14)
