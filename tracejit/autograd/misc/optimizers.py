"""autograd's optimizers: ``sgd``, ``rmsprop``, ``adam``. ``grad(x, i)`` is the gradient at iteration i; ``x0`` may
be any pytree of arrays (flattened for the update, unflattened for ``grad`` and ``callback``)."""
from __future__ import annotations

import numpy as np

from .flatten import flatten


def _on_vectors(step):
    def optimizer(grad, x0, callback=None, *args, **kwargs):
        x, unflatten = flatten(x0)

        def flat_grad(v, i):
            return flatten(grad(unflatten(v), i))[0]
        flat_cb = None if callback is None else (lambda v, i, g: callback(unflatten(v), i, unflatten(g)))
        return unflatten(step(flat_grad, x, flat_cb, *args, **kwargs))
    optimizer.__name__, optimizer.__doc__ = step.__name__, step.__doc__
    return optimizer


@_on_vectors
def sgd(grad, x, callback=None, num_iters=200, step_size=0.1, mass=0.9):
    """Stochastic gradient descent with momentum."""
    velocity = np.zeros(len(x))
    for i in range(num_iters):
        g = grad(x, i)
        if callback:
            callback(x, i, g)
        velocity = mass * velocity - (1.0 - mass) * g
        x = x + step_size * velocity
    return x


@_on_vectors
def rmsprop(grad, x, callback=None, num_iters=100, step_size=0.1, gamma=0.9, eps=10**-8):
    """Root mean squared propagation."""
    avg_sq_grad = np.ones(len(x))
    for i in range(num_iters):
        g = grad(x, i)
        if callback:
            callback(x, i, g)
        avg_sq_grad = avg_sq_grad * gamma + g**2 * (1 - gamma)
        x = x - step_size * g / (np.sqrt(avg_sq_grad) + eps)
    return x


@_on_vectors
def adam(grad, x, callback=None, num_iters=100, step_size=0.001, b1=0.9, b2=0.999, eps=10**-8):
    """Adam (Kingma and Ba, 2014), with bias-corrected moment estimates."""
    m, v = np.zeros(len(x)), np.zeros(len(x))
    for i in range(num_iters):
        g = grad(x, i)
        if callback:
            callback(x, i, g)
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * (g**2) + b2 * v
        mhat = m / (1 - b1**(i + 1))
        vhat = v / (1 - b2**(i + 1))
        x = x - step_size * mhat / (np.sqrt(vhat) + eps)
    return x
