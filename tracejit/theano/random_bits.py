"""Counter-based random numbers written as numpy code, so they run on tracers and on arrays alike.

A draw is a pure function of a stream's state ``[key, counter]`` and the element's flat index: element ``i`` is a
mix (splitmix64's finalizer) of ``seed + (i + 1) * golden``, where ``seed`` mixes the key and the counter. There is
no sequential generator to carry, so a draw is elementwise IR like any other: it fuses with what consumes it (a
dropout mask is one kernel with the product it masks), works for symbolic shapes, and gives the same numbers on
every backend. Advancing the counter gives the next, independent draw.
"""
from __future__ import annotations

import numpy as np

from ..ir.types import Dim
from ..trace.tracer import wrap
from ..ir.ops import iota

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = (np.uint64(k) for k in (30, 27, 31, 11))
_SECOND = np.uint64(0xD1B54A32D192ED03)  # offsets the seed of a draw's second variate (Box-Muller's angle)


_wrapping = np.errstate(over="ignore")  # uint64 arithmetic wraps by design (numpy warns on scalars)


@_wrapping
def mix(z):
    """splitmix64's finalizer: a bijection on uint64 whose output bits each depend on every input bit."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@_wrapping
def state_seed(state):
    """The 64-bit seed of a draw from a stream state ``[key, counter]`` (uint64)."""
    return mix(mix(state[0]) ^ (state[1] * _GOLDEN + _GOLDEN))


def advance(state):
    """The state of the stream's next draw."""
    return state + np.array([0, 1], dtype=np.uint64)


def new_key(seed: int, stream: int) -> np.uint64:
    """The key of stream number ``stream`` of a generator seeded with ``seed`` (host side)."""
    with np.errstate(over="ignore"):
        return mix(np.uint64(seed % 2**64) * _GOLDEN + np.uint64(stream) + np.uint64(1))


def _flat_index(shape):
    n = 1
    for d in shape:
        n = n * d
    if isinstance(n, Dim):  # a symbolic length (a product of lengths, never negative): numpy would ask its int
        return wrap(iota(n)).astype(np.uint64).reshape(shape)
    return np.arange(n, dtype=np.uint64).reshape(shape)


@_wrapping
def bits(seed, shape):
    """uint64 random bits of ``shape`` from a draw's seed."""
    return mix(seed + (_flat_index(shape) + np.uint64(1)) * _GOLDEN)


def unit_uniform(seed, shape, dtype):
    """Uniform in [0, 1) with 53 random bits (24 for float32), as numpy's generators make them."""
    z = bits(seed, shape)
    if np.dtype(dtype) == np.float32:
        return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)
    return (z >> _S11).astype(np.float64) * (2.0 ** -53)


def uniform(state, shape, low, high, dtype):
    u = unit_uniform(state_seed(state), shape, dtype)
    return (low + (high - low) * u).astype(dtype)


def normal(state, shape, avg, std, dtype):
    """Box-Muller: two uniforms per element, from the draw's seed and an offset of it."""
    seed = state_seed(state)
    u1 = 1.0 - unit_uniform(seed, shape, np.float64)  # in (0, 1]: log is finite
    u2 = unit_uniform(mix(seed ^ _SECOND), shape, np.float64)
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos((2.0 * np.pi) * u2)
    return (avg + std * z).astype(dtype)


def binomial(state, shape, n, p, dtype):
    """Sum of ``n`` Bernoulli(p) trials; each trial is its own uniform (n is a small Python int)."""
    seed = state_seed(state)
    total = None
    for k in range(n):
        trial = (unit_uniform(mix(seed ^ np.uint64(k)) if k else seed, shape, np.float64) < p)
        total = trial.astype(dtype) if total is None else total + trial.astype(dtype)
    return total


def integers(state, shape, low, high, dtype):
    """Uniform integers in [low, high] (both ends included, as Theano's random_integers)."""
    u = unit_uniform(state_seed(state), shape, np.float64)
    return (low + np.floor(u * (high - low + 1))).astype(dtype)


def categorical_one_hot(state, pvals, dtype):
    """One draw per row of ``pvals`` (rows sum to 1), as a one-hot row: Theano's multinomial with n=1."""
    u = unit_uniform(state_seed(state), pvals.shape[:-1], np.float64)[..., None]
    upper = np.cumsum(pvals, axis=-1)
    lower = upper - pvals
    # rounding may leave the total just under 1: the categories ending at the total take the rest of [0, 1)
    upper = np.where(upper >= upper[..., -1][..., None], 2.0, upper)
    return ((u >= lower) & (u < upper)).astype(dtype)


def permutation(state, n):
    """A random permutation of range(n): the order of n uniforms."""
    return np.argsort(unit_uniform(state_seed(state), (n,), np.float64), kind="stable")
