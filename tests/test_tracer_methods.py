"""ndarray methods and in-place numpy functions on tracers, against numpy (found missing by running real kernels:
``img.flatten().cumsum()``, ``np.fill_diagonal(inv_r3, 0)`` in an n-body step)."""
import numpy as np
import pytest

import tracejit as tj

x = np.random.default_rng(0).random((4, 5))


def _filled(shape, val, wrap=False):
    def f(_):
        y = np.zeros(shape)
        np.fill_diagonal(y, val, wrap=wrap)
        return y
    return f


METHODS = {
    "cumsum": lambda x: x.cumsum(axis=1), "cumprod": lambda x: x.cumprod(), "diagonal": lambda x: x.diagonal(1),
    "repeat": lambda x: x.repeat(2, axis=0), "round": lambda x: x.round(2), "take": lambda x: x.take([0, 2], axis=1),
    "trace": lambda x: x.trace(), "np.ptp": lambda x: np.ptp(x, axis=1), "conj/real/imag": lambda x: x.conj() + x.real + x.imag,
    "itemsize/nbytes": lambda x: x * x.itemsize + x.nbytes, "searchsorted": lambda x: np.sort(x[0]).searchsorted(0.5),
    "compress": lambda x: x.compress([True, False, True, True], axis=0),
    "fill_diagonal": lambda x: (lambda y: (np.fill_diagonal(y, -1.0), y)[1])(x.copy()),
    "fill_diagonal tall": _filled((7, 3), 7.0), "fill_diagonal wrap": _filled((7, 3), 7.0, wrap=True),
    "fill_diagonal wide": _filled((3, 7), 7.0), "fill_diagonal 3-d": _filled((3, 3, 3), 2.0),
}


@pytest.mark.parametrize("name", list(METHODS))
def test_method_matches_numpy(name):
    f = METHODS[name]
    np.testing.assert_allclose(tj.jit(f)(x), f(x))


def test_nbody_step_with_fill_diagonal_and_its_gradient():
    def energy(pos, mass):
        dx = pos[None, :, 0] - pos[:, None, 0]
        dy = pos[None, :, 1] - pos[:, None, 1]
        inv = (dx ** 2 + dy ** 2 + 1e-3) ** -0.5
        np.fill_diagonal(inv, 0.0)
        return -0.5 * (mass[:, None] * mass[None, :] * inv).sum()
    rng = np.random.default_rng(1)
    pos, mass = rng.random((6, 2)), rng.random(6)
    np.testing.assert_allclose(tj.jit(energy)(pos, mass), energy(pos, mass))
    g = tj.grad(energy)(pos, mass)
    eps, num = 1e-6, np.zeros_like(pos)
    for i in np.ndindex(pos.shape):
        d = np.zeros_like(pos)
        d[i] = eps
        num[i] = (energy(pos + d, mass) - energy(pos - d, mass)) / (2 * eps)
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


def test_fill_diagonal_errors():
    with pytest.raises(ValueError, match="at least 2-d"):
        tj.jit(lambda v: (np.fill_diagonal(v, 0.0), v)[1])(np.ones(3))
    with pytest.raises(ValueError, match="equal length"):
        tj.jit(lambda v: (np.fill_diagonal(v, 0.0), v)[1])(np.ones((2, 3, 3)))
    with pytest.raises(tj.errors.UnsupportedError, match="a scalar"):
        tj.jit(lambda v: (np.fill_diagonal(v, np.arange(3.0)), v)[1])(np.ones((3, 3)))
