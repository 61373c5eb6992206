"""Theano's `scan` and `ifelse` with Theano's own conventions, on the programs of Theano's loop tutorial.

Each program is written as a Theano user writes it (``import tracejit as theano``, ``tracejit.tensor as T``) and
checked against the same computation in numpy.
"""
import numpy as np
import pytest

import tracejit as theano
import tracejit.tensor as T
from tracejit.ifelse import ifelse


def test_power_by_repeated_multiplication():
    k = T.iscalar("k")
    A = T.vector("A")
    result, updates = theano.scan(fn=lambda prior_result, A: prior_result * A, outputs_info=T.ones_like(A),
                                  non_sequences=A, n_steps=k)
    final_result = result[-1]
    power = theano.function(inputs=[A, k], outputs=final_result, updates=updates)
    a = np.arange(10, dtype=np.float64)
    np.testing.assert_allclose(power(a, 2), a ** 2)
    np.testing.assert_allclose(power(a, 5), a ** 5)


def test_all_steps_of_the_power_loop():
    k = T.iscalar("k")
    A = T.vector("A")
    result, _ = theano.scan(fn=lambda prior, A: prior * A, outputs_info=T.ones_like(A), non_sequences=A, n_steps=k)
    f = theano.function([A, k], result)
    a = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(f(a, 4), np.stack([a ** i for i in range(1, 5)]))


def test_polynomial_from_its_coefficients():
    coefficients = T.vector("coefficients")
    x = T.scalar("x")
    max_coefficients_supported = 10000
    components, updates = theano.scan(fn=lambda coefficient, power, free_variable:
                                      coefficient * (free_variable ** power),
                                      outputs_info=None,
                                      sequences=[coefficients, T.arange(max_coefficients_supported)],
                                      non_sequences=x)
    polynomial = components.sum()
    calculate_polynomial = theano.function(inputs=[coefficients, x], outputs=polynomial)
    test_coefficients = np.asarray([1, 0, 2], dtype=np.float64)
    assert calculate_polynomial(test_coefficients, 3) == pytest.approx(19.0)


def test_elementwise_tanh_over_rows():
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    results, updates = theano.scan(lambda v: T.tanh(T.dot(v, W) + b_sym), sequences=X)
    compute_elementwise = theano.function(inputs=[X, W, b_sym], outputs=results)
    x = np.eye(2)
    w = np.ones((2, 2))
    b = np.ones(2)
    b[1] = 2
    np.testing.assert_allclose(compute_elementwise(x, w, b), np.tanh(x.dot(w) + b))


def test_recurrence_with_two_taps():
    """x(t) = x(t-2).dot(U) + x(t-1).dot(V) + tanh(x(t-1).dot(W) + b), the scan tutorial's taps example."""
    X = T.matrix("X")
    W, V, U = T.matrix("W"), T.matrix("V"), T.matrix("U")
    b_sym = T.vector("b_sym")
    n_sym = T.iscalar("n_sym")
    results, updates = theano.scan(lambda x_tm2, x_tm1: T.dot(x_tm2, U) + T.dot(x_tm1, V) + T.tanh(T.dot(x_tm1, W)
                                                                                                  + b_sym),
                                   n_steps=n_sym, outputs_info=[dict(initial=X, taps=[-2, -1])])
    f = theano.function([X, U, V, W, b_sym, n_sym], results)
    rng = np.random.default_rng(0)
    x = np.zeros((2, 2))
    x[1, 1] = 1
    w, v, u = (0.5 * np.ones((2, 2)) for _ in range(3))
    b = np.ones(2)
    expect = np.zeros((10, 2))
    expect[0] = x[0].dot(u) + x[1].dot(v) + np.tanh(x[1].dot(w) + b)
    expect[1] = x[1].dot(u) + expect[0].dot(v) + np.tanh(expect[0].dot(w) + b)
    for i in range(2, 10):
        expect[i] = expect[i - 2].dot(u) + expect[i - 1].dot(v) + np.tanh(expect[i - 1].dot(w) + b)
    np.testing.assert_allclose(f(x, u, v, w, b, 10), expect, rtol=1e-12)
    del rng


def test_sequence_taps_and_go_backwards():
    x = T.vector("x")
    out, _ = theano.scan(lambda a, b: a - b, sequences=dict(input=x, taps=[-1, 0]))
    back, _ = theano.scan(lambda a: 2 * a, sequences=x, go_backwards=True)
    f = theano.function([x], [out, back])
    v = np.array([1.0, 4.0, 9.0, 16.0])
    d, r = f(v)
    np.testing.assert_allclose(d, v[:-1] - v[1:])
    np.testing.assert_allclose(r, 2 * v[::-1])


def test_norms_and_trace_through_scan():
    X = T.matrix("X")
    norms, _ = theano.scan(lambda x_i: T.sqrt((x_i ** 2).sum()), sequences=[X])
    fl = theano.function([X], norms)
    floatX = "float64"
    tr, _ = theano.scan(lambda i, j, t_f: T.cast(X[i, j] + t_f, floatX),
                        sequences=[T.arange(X.shape[0]), T.arange(X.shape[1])],
                        outputs_info=np.asarray(0.0, dtype=floatX))
    ft = theano.function([X], tr[-1])
    x = np.diag(np.arange(1, 6, dtype=np.float64))
    np.testing.assert_allclose(fl(x), np.sqrt((x ** 2).sum(1)))
    assert ft(x) == pytest.approx(np.trace(x))


def test_jacobian_and_hessian_through_scan():
    x = T.dvector("x")
    y = x ** 2
    J, updates = theano.scan(lambda i, y, x: T.grad(y[i], x), sequences=T.arange(y.shape[0]), non_sequences=[y, x])
    f = theano.function([x], J, updates=updates)
    np.testing.assert_allclose(f([4, 4]), [[8, 0], [0, 8]])

    cost = (x ** 3).sum()
    gy = T.grad(cost, x)
    H, updates = theano.scan(lambda i, gy, x: T.grad(gy[i], x), sequences=T.arange(gy.shape[0]),
                             non_sequences=[gy, x])
    h = theano.function([x], H, updates=updates)
    np.testing.assert_allclose(h([4, 4]), [[24, 0], [0, 24]])


def test_shared_variable_updated_inside_scan():
    k = theano.shared(0)
    n_sym = T.iscalar("n_sym")
    results, updates = theano.scan(lambda: {k: (k + 1)}, n_steps=n_sym)
    accumulator = theano.function([n_sym], [], updates=updates)
    accumulator(5)
    assert k.get_value() == 5


def test_grad_through_scan_backprop_through_time():
    W = T.dmatrix("W")
    X = T.dmatrix("X")
    h0 = T.dvector("h0")
    hs, _ = theano.scan(lambda x_t, h_tm1, W: T.tanh(T.dot(W, h_tm1) + x_t), sequences=X, outputs_info=h0,
                        non_sequences=W)
    cost = (hs ** 2).sum()
    gW = T.grad(cost, W)
    f = theano.function([W, X, h0], [cost, gW])
    rng = np.random.default_rng(1)
    w, xs, h = 0.3 * rng.standard_normal((3, 3)), rng.standard_normal((5, 3)), rng.standard_normal(3)

    def ref(w):
        hh, c = h, 0.0
        for x_t in xs:
            hh = np.tanh(w @ hh + x_t)
            c += (hh ** 2).sum()
        return c
    c, g = f(w, xs, h)
    assert c == pytest.approx(ref(w))
    eps = 1e-6
    num = np.zeros_like(w)
    for i in range(3):
        for j in range(3):
            d = np.zeros_like(w)
            d[i, j] = eps
            num[i, j] = (ref(w + d) - ref(w - d)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_ifelse_is_lazy_and_switch_is_not():
    a, b = T.scalars("a", "b")
    x, y = T.matrices("x", "y")
    z_switch = T.switch(T.lt(a, b), T.mean(x), T.mean(y))
    z_lazy = ifelse(T.lt(a, b), T.mean(x), T.mean(y))
    f_switch = theano.function([a, b, x, y], z_switch)
    f_lazy = theano.function([a, b, x, y], z_lazy)
    xv, yv = np.ones((10, 10)), np.zeros((10, 10))
    assert f_switch(1, 2, xv, yv) == 1.0 and f_lazy(1, 2, xv, yv) == 1.0
    assert f_switch(2, 1, xv, yv) == 0.0 and f_lazy(2, 1, xv, yv) == 0.0
    # lazy: the branch not taken is not computed; the program holds a branch equation
    text = theano.pp(z_lazy) if hasattr(theano, "pp") else ""
    assert "cond" in str(theano.make_ir(lambda p, q, u, v: ifelse(p < q, u.mean(), v.mean()))(1.0, 2.0, xv, yv)) \
        or "cond" in text


def test_grad_through_ifelse():
    a = T.dscalar("a")
    x = T.dvector("x")
    out = ifelse(T.gt(a, 0), (x ** 2).sum(), (3 * x).sum())
    g = theano.function([a, x], T.grad(out, x))
    v = np.array([1.0, 2.0])
    np.testing.assert_allclose(g(1.0, v), 2 * v)
    np.testing.assert_allclose(g(-1.0, v), [3.0, 3.0])


def test_scan_errors_name_the_argument():
    x = T.vector("x")
    with pytest.raises(ValueError, match="n_steps"):
        theano.scan(lambda p: p * 2, outputs_info=x)  # no sequences and no n_steps: nothing says how long
    with pytest.raises(ValueError, match="taps"):
        theano.scan(lambda p: p, outputs_info=[dict(initial=x, taps=[1])], n_steps=3)


# ------------------------------------------------------------------------------------------------ beyond the tutorial
def test_ifelse_runs_only_the_taken_branch():
    """The untaken branch's work would raise (inverting a singular matrix): it never runs, and the compiled
    program holds each branch's work inside the cond's regions, none of it outside."""
    a, b = T.scalars("a", "b")
    x, y = T.matrices("x", "y")
    z = ifelse(T.lt(a, b), T.mean(x), np.linalg.inv(y).sum())
    f = theano.function([a, b, x, y], z)
    singular = np.zeros((3, 3))
    assert f(1.0, 2.0, np.ones((3, 3)), singular) == 1.0
    with pytest.raises(np.linalg.LinAlgError):
        f(2.0, 1.0, np.ones((3, 3)), singular)
    assert f(2.0, 1.0, np.ones((3, 3)), 2 * np.eye(3)) == pytest.approx(1.5)
    top = [e.prim for e in f.graph.eqns]
    assert "cond" in top and "sum" not in top and "linalg_inv" not in top


def test_ifelse_keeps_shared_work_outside_and_takes_lists():
    a = T.dscalar("a")
    x = T.dvector("x")
    s = T.exp(x)  # both branches need it: computed once, before the branch
    hi, lo = ifelse(T.gt(a, 0), [s.sum(), s.max()], [s.min(), 0.0])
    f = theano.function([a, x], [hi, lo])
    v = np.array([0.0, 1.0])
    np.testing.assert_allclose(f(1.0, v), [np.exp(v).sum(), np.exp(v).max()])
    np.testing.assert_allclose(f(-1.0, v), [1.0, 0.0])
    assert "exp" in [e.prim for e in f.graph.eqns]
    with pytest.raises(TypeError, match="then_branch"):
        ifelse(T.gt(a, 0), x, T.dmatrix("m"))
    with pytest.raises(ValueError, match="same number"):
        ifelse(T.gt(a, 0), [x, x], [x])


def test_ifelse_under_jit():
    from tracejit.theano.ifelse import ifelse as ie

    @theano.jit
    def f(p, u, v):
        return ie(p > 0, (u * 2).sum(), (v ** 2).sum())
    u, v = np.ones(4), np.full(4, 3.0)
    assert f(1.0, u, v) == 8.0 and f(-1.0, u, v) == 36.0
    g = theano.grad(lambda p, u: ie(p > 0, (u ** 3).sum(), u.sum()), argnums=1)
    np.testing.assert_allclose(g(1.0, u + 1), 3 * (u + 1) ** 2)


def test_symbolic_n_steps_zero_and_negative():
    k = T.iscalar("k")
    A = T.dvector("A")
    result, _ = theano.scan(lambda prior, A: prior * A, outputs_info=T.ones_like(A), non_sequences=A, n_steps=k)
    f = theano.function([A, k], result)
    assert f(np.ones(3), 0).shape == (0, 3)
    with pytest.raises(ValueError, match="n_steps"):
        f(np.ones(3), -1)


def test_several_outputs_none_entries_and_updates_together():
    """Two outputs, one fed back and one only stacked, plus a shared counter updated inside the step."""
    x = T.dvector("x")
    count = theano.shared(np.int64(0), name="count")

    def step(x_t, total):
        return [total + x_t, x_t * 2], {count: count + 1}
    (totals, doubled), updates = theano.scan(step, sequences=x, outputs_info=[np.float64(0.0), None])
    f = theano.function([x], [totals, doubled], updates=updates)
    v = np.array([1.0, 2.0, 3.0])
    t, d = f(v)
    np.testing.assert_allclose(t, np.cumsum(v))
    np.testing.assert_allclose(d, 2 * v)
    assert count.get_value() == 3
    f(v)
    assert count.get_value() == 6


def test_sequences_of_different_lengths_and_n_steps_int():
    a, b = T.dvector("a"), T.dvector("b")
    out, _ = theano.scan(lambda x, y: x * y, sequences=[a, b])
    f = theano.function([a, b], out)
    np.testing.assert_allclose(f(np.arange(5.0), np.arange(3.0)), np.arange(3.0) ** 2)  # the shorter wins
    three, _ = theano.scan(lambda x: x + 1, sequences=a, n_steps=3)
    np.testing.assert_allclose(theano.function([a], three)(np.arange(5.0)), [1.0, 2.0, 3.0])
    lag, _ = theano.scan(lambda p, c, n: p + c + n, sequences=dict(input=a, taps=[-1, 0, 1]))
    np.testing.assert_allclose(theano.function([a], lag)(np.arange(5.0)), [3.0, 6.0, 9.0])


def test_symbolic_n_steps_with_a_sequence_and_return_list():
    a = T.dvector("a")
    k = T.iscalar("k")
    out, _ = theano.scan(lambda x, acc: acc + x, sequences=a, outputs_info=np.float64(0.0), n_steps=k,
                         return_list=True)
    assert isinstance(out, list) and len(out) == 1
    f = theano.function([a, k], out[0])
    np.testing.assert_allclose(f(np.arange(6.0), 4), np.cumsum(np.arange(4.0)))


def test_tracejit_scan_keeps_jax_signature():
    import tracejit as tj
    carry, ys = tj.scan(lambda c, x: (c + x, c * x), 0.0, np.arange(4.0))
    assert carry == 6.0
    np.testing.assert_allclose(ys, [0.0, 0.0, 2.0, 9.0])
    carry, _ = tj.scan(lambda c, x: (c + 1, None), init=0, length=5)
    assert carry == 5
    x = T.dvector("x")
    out, upd = tj.scan(fn=lambda v: v * 3, sequences=x)
    assert upd == {} and np.allclose(theano.function([x], out)(np.ones(2)), 3.0)


def test_more_errors_name_the_argument():
    x = T.dvector("x")
    with pytest.raises(TypeError, match="fn"):
        theano.scan(3, sequences=x)
    with pytest.raises(ValueError, match="sequences\\[0\\]"):
        theano.scan(lambda v: v, sequences=[T.dscalar("s")])
    with pytest.raises(ValueError, match="sequences\\[0\\]"):
        theano.scan(lambda v: v, sequences=[dict(taps=[0])])
    with pytest.raises(TypeError, match="n_steps"):
        theano.scan(lambda p: p, outputs_info=x, n_steps=T.dvector("k"))
    with pytest.raises(ValueError, match="outputs_info"):
        theano.scan(lambda v: [v, v], sequences=x, outputs_info=[None])
    with pytest.raises(ValueError, match="truncate_gradient"):
        theano.scan(lambda v: v, sequences=x, truncate_gradient=0)
    with pytest.raises(TypeError, match="truncate_gradient"):
        theano.scan(lambda v: v, sequences=x, truncate_gradient=2.5)
    with pytest.raises(ValueError, match="n_steps"):
        theano.scan(lambda p: p, outputs_info=x, n_steps=-2)


def test_ifelse_inside_a_scan_step_and_its_gradient():
    x = T.dvector("x")
    out, _ = theano.scan(lambda v, acc: ifelse(T.gt(v, 0), acc + v, acc * 0.5), sequences=x,
                         outputs_info=np.float64(1.0))
    f = theano.function([x], [out, T.grad(out[-1], x)])
    o, g = f(np.array([1.0, -1.0, 2.0]))
    np.testing.assert_allclose(o, [2.0, 1.0, 3.0])
    np.testing.assert_allclose(g, [0.5, 0.0, 1.0])


def test_until_ends_the_loop_after_the_first_true_condition():
    """The Theano documentation's "conditional ending of scan": powers of 2 until one exceeds max_value."""
    max_value = T.scalar()
    values, _ = theano.scan(lambda p, m: [p * 2, theano.scan_module.until(p * 2 > m)],
                            outputs_info=T.constant(1.), non_sequences=max_value, n_steps=1024)
    f = theano.function([max_value], values)
    np.testing.assert_array_equal(f(45), [2., 4., 8., 16., 32., 64.])
    np.testing.assert_array_equal(f(0.5), [2.])
    with np.errstate(over="ignore"):  # never true: n_steps bounds it
        np.testing.assert_array_equal(f(np.inf), 2.0 ** np.arange(1, 1025))
    with pytest.raises(NotImplementedError, match="while_loop"):
        T.grad(values.sum(), max_value)


def test_until_with_a_sequence_an_update_and_a_symbolic_length():
    from tracejit.theano.scan_module import until
    x = T.vector()
    acc = theano.shared(np.float64(0.0))
    ys, ups = theano.scan(lambda xi: (xi * 10, {acc: acc + xi}, until(xi > 2.5)), sequences=x)
    g = theano.function([x], ys, updates=ups)
    np.testing.assert_array_equal(g(np.array([1., 2., 3., 4.])), [10., 20., 30.])
    assert acc.get_value() == 6.0  # the update holds the steps that ran
    np.testing.assert_array_equal(g(np.array([0.5, 1.0])), [5., 10.])
    assert acc.get_value() == 7.5
    np.testing.assert_array_equal(g(np.zeros(0)), np.zeros(0))
    with pytest.raises(ValueError, match="scalar condition"):
        theano.scan(lambda xi: (xi * 2, until(xi > 0)), sequences=T.matrix())


def _truncated_bptt(x, w, h0, k):
    """Hand-written truncated backpropagation through time of sum(h_t), h_t = tanh(W h_{t-1} + x_t): only the
    last k steps are walked back; the earlier ones get nothing, h0 only when the walk reaches it (Theano's rule)."""
    hs = [h0]
    for t in range(len(x)):
        hs.append(np.tanh(w @ hs[-1] + x[t]))
    dw, dx, dh = np.zeros_like(w), np.zeros_like(x), np.zeros_like(h0)
    for t in range(len(x) - 1, max(len(x) - k, 0) - 1, -1):
        da = (dh + 1.0) * (1 - hs[t + 1] ** 2)
        dw += np.outer(da, hs[t])
        dx[t] = da
        dh = w.T @ da
    return sum(h.sum() for h in hs[1:]), dx, dw, (dh if k >= len(x) else np.zeros_like(h0))


@pytest.mark.parametrize("k, symbolic_steps", [(3, False), (1, False), (7, False), (50, False), (3, True)])
def test_truncate_gradient_matches_hand_written_truncated_bptt(k, symbolic_steps):
    rng = np.random.default_rng(k)
    n = 7
    X, W, h0, steps = T.matrix("X"), T.matrix("W"), T.vector("h0"), T.iscalar("steps")
    out, _ = theano.scan(lambda x, h, W: T.tanh(T.dot(W, h) + x), sequences=X, outputs_info=h0, non_sequences=W,
                         n_steps=steps if symbolic_steps else None, truncate_gradient=k)
    cost = out.sum()
    f = theano.function([X, W, h0] + ([steps] if symbolic_steps else []), [cost] + T.grad(cost, [X, W, h0]))
    x, w, h = rng.normal(size=(n, 3)), rng.normal(size=(3, 3)) * 0.5, rng.normal(size=3)
    got = f(x, w, h, n) if symbolic_steps else f(x, w, h)
    for g, ref in zip(got, _truncated_bptt(x, w, h, k)):
        np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-12)
    if k >= n:  # nothing cut: the full gradient, as without truncate_gradient
        full, _ = theano.scan(lambda x, h, W: T.tanh(T.dot(W, h) + x), sequences=X, outputs_info=h0,
                              non_sequences=W)
        f_full = theano.function([X, W, h0], T.grad(full.sum(), [X, W, h0]))
        for g, ref in zip(got[1:], f_full(x, w, h)):
            np.testing.assert_allclose(g, ref, rtol=1e-12)
