"""theano.gradient (jacobian, hessian, zero_grad), consider_constant, integer-label cross-entropy, dimshuffle and
Theano's flatten(ndim), as the Theano tutorial and its users write them."""
import numpy as np
import pytest

import tracejit as theano
import tracejit.tensor as T


def test_jacobian_and_hessian_macros():
    x = T.dvector("x")
    y = x ** 2
    np.testing.assert_allclose(theano.function([x], theano.gradient.jacobian(y, x))([4, 4]), [[8, 0], [0, 8]])
    cost = (x ** 3).sum()
    np.testing.assert_allclose(theano.function([x], theano.gradient.hessian(cost, x))([1, 2]), [[6, 0], [0, 12]])
    w = T.dvector("w")
    jx, jw = theano.gradient.jacobian(x * w, [x, w])
    f = theano.function([x, w], [jx, jw])
    gx, gw = f([1.0, 2.0], [3.0, 4.0])
    np.testing.assert_allclose(gx, np.diag([3.0, 4.0]))
    np.testing.assert_allclose(gw, np.diag([1.0, 2.0]))
    with pytest.raises(TypeError, match="vector"):
        theano.gradient.jacobian(T.dmatrix() * 2, x)


def test_zero_grad_and_consider_constant_pass_no_gradient():
    x = T.dvector("x")
    xv = np.array([1.0, 2.0])
    g1 = T.grad((theano.gradient.zero_grad(x) * x).sum(), x)
    g2 = T.grad((theano.gradient.disconnected_grad(x) * x).sum(), x)
    y = x * 3
    g3 = T.grad((y * x).sum(), x, consider_constant=[y])
    f = theano.function([x], [g1, g2, g3])
    for g, want in zip(f(xv), [xv, xv, 3 * xv]):
        np.testing.assert_allclose(g, want)


def test_categorical_crossentropy_with_integer_labels():
    p = T.dmatrix("p")
    labels = T.ivector("labels")
    loss = T.nnet.categorical_crossentropy(T.nnet.softmax(p), labels).mean()
    g = T.grad(loss, p)
    f = theano.function([p, labels], [loss, g])
    logits = np.random.default_rng(0).standard_normal((5, 3))
    y = np.array([0, 2, 1, 1, 0], np.int32)
    e = np.exp(logits - logits.max(1, keepdims=True))
    sm = e / e.sum(1, keepdims=True)
    want = -np.log(sm[np.arange(5), y]).mean()
    got_loss, got_g = f(logits, y)
    np.testing.assert_allclose(got_loss, want)
    np.testing.assert_allclose(got_g, (sm - np.eye(3)[y]) / 5, atol=1e-12)


def test_dimshuffle_and_flatten_ndim():
    m = T.dmatrix("m")
    a = np.arange(6.0).reshape(2, 3)
    f = theano.function([m], [m.dimshuffle(1, 0), m.dimshuffle("x", 0, 1), m.dimshuffle(1, "x", 0), m.flatten(),
                              m.flatten(2)])
    outs = f(a)
    for got, want in zip(outs, [a.T, a[None], a.T[:, None, :], a.ravel(), a]):
        np.testing.assert_array_equal(got, want)
    r = T.row("r")
    np.testing.assert_array_equal(theano.function([r], r.dimshuffle(1))(np.ones((1, 4))), np.ones(4))
    with pytest.raises(ValueError, match="not of length 1"):
        m.dimshuffle(1)
    with pytest.raises(ValueError, match="at most once"):
        m.dimshuffle(0, 0)
