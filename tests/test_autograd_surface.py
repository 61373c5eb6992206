"""autograd's surface (tracejit.autograd) and ``python -m tracejit.autograd`` running an autograd script unchanged."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

import tracejit.autograd as ag
from tracejit.autograd.misc.flatten import flatten
from tracejit.autograd.misc.optimizers import adam


def test_grads_and_helpers_match_closed_forms():
    x = np.linspace(-2, 2, 5)
    tanh = lambda x: (1.0 - np.exp(-2 * x)) / (1.0 + np.exp(-2 * x))
    np.testing.assert_allclose(ag.elementwise_grad(tanh)(x), 1 - np.tanh(x) ** 2, rtol=1e-10)
    np.testing.assert_allclose(ag.elementwise_grad(ag.elementwise_grad(tanh))(x),
                               -2 * np.tanh(x) * (1 - np.tanh(x) ** 2), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ag.grad(lambda a, b: np.sum(a * b), 1)(x, x + 1), x)
    np.testing.assert_allclose(ag.hessian(lambda v: np.sum(v ** 3))(np.array([1.0, 2.0])), np.diag([6.0, 12.0]))
    np.testing.assert_allclose(ag.jacobian(np.sin)(x), np.diag(np.cos(x)), atol=1e-15)
    vjp, ans = ag.make_vjp(lambda v: v ** 2)(x)
    np.testing.assert_allclose(vjp(np.ones(5)), 2 * x)
    np.testing.assert_allclose(ag.hessian_tensor_product(lambda v: np.sum(v ** 3))(x, np.ones(5)), 6 * x)


def test_primitive_defvjp_flatten_and_adam():
    @ag.primitive
    def lse(v):
        m = np.max(v)
        return m + np.log(np.sum(np.exp(v - m)))
    ag.defvjp(lse, lambda ans, v: lambda g: 2 * g * np.exp(v - ans))  # (twice the true rule: the user's is used)
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(ag.grad(lse)(v), 2 * np.exp(v) / np.exp(v).sum())
    params = {"w": [np.ones((2, 3)), np.zeros(3)], "s": 1.5}
    vec, unflatten = flatten(params)
    assert vec.shape == (10,)
    back = unflatten(vec * 2)
    np.testing.assert_array_equal(back["w"][0], 2 * np.ones((2, 3)))
    target = np.arange(10.0)
    obj = lambda p, i: np.sum((flatten(p)[0] - target) ** 2)
    out = adam(ag.grad(obj), params, step_size=0.5, num_iters=200)
    np.testing.assert_allclose(flatten(out)[0], target, atol=1e-2)


def test_an_autograd_script_runs_unchanged(tmp_path):
    script = tmp_path / "logistic.py"
    script.write_text(textwrap.dedent("""
        import autograd.numpy as np
        from autograd import grad
        from autograd.scipy.special import logsumexp
        def sigmoid(x): return 0.5 * (np.tanh(x / 2.) + 1)
        inputs = np.array([[0.52, 1.12, 0.77], [0.88, -1.08, 0.15], [0.52, 0.06, -1.30], [0.74, -2.49, 1.39]])
        targets = np.array([True, True, False, True])
        def training_loss(weights):
            preds = sigmoid(np.dot(inputs, weights))
            return -np.sum(np.log(preds * targets + (1 - preds) * (1 - targets)))
        weights = np.array([0.0, 0.0, 0.0])
        for i in range(100):
            weights -= grad(training_loss)(weights) * 0.01
        print("Trained loss: %.6f" % training_loss(weights))
        print("lse", float(grad(lambda v: logsumexp(v))(np.zeros(2))[0]))
    """))
    out = subprocess.run([sys.executable, "-m", "tracejit.autograd", str(script)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Trained loss: 1.067271" in out.stdout and "lse 0.5" in out.stdout
