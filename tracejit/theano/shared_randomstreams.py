"""Theano's random streams: ``RandomStreams`` (``theano.tensor.shared_randomstreams``) and ``MRG_RandomStreams``
(``theano.sandbox.rng_mrg``), one class here.

Each draw (``srng.uniform((2, 2))``) owns a stream: a shared variable ``rng`` holding ``[key, counter]`` (uint64)
whose ``default_update`` advances the counter, so every ``function`` that computes the draw gives new numbers at
each call (unless ``no_default_updates=True``), while one call uses one value of it everywhere it appears. The
numbers come from a counter-based generator written as elementwise IR (``random_bits``): they fuse with their
consumers and run on every backend. They are not Theano's numbers (Theano called numpy's generators on the host),
but they have the same distributions.
"""
from __future__ import annotations

import numpy as np

from ..trace.symbolic import Variable, symbolic_apply
from . import random_bits as R
from .config import config
from .shared import SharedVariable, shared


_STATES: set = set()  # the Value ids of stream states (scan gives each step its own state)


def is_stream_state(sv) -> bool:
    return sv._tj_value.id in _STATES


def _dtype(dtype):
    return np.dtype(config.floatX if dtype in (None, "floatX") else dtype)


def _size(size, what):
    """A shape tuple from Theano's size forms: a tuple/list of ints or symbolic lengths, or a shape itself."""
    if size is None:
        return None
    if isinstance(size, (tuple, list)):
        return tuple(size)
    if isinstance(size, (int, np.integer)):
        return (int(size),)
    raise TypeError(f"{what}: size must be a tuple of lengths (ints or symbolic lengths such as x.shape[0]) or "
                    f"x.shape, got {type(size).__name__}")


def _shape_of(size, *params, what):
    """The draw's shape: ``size``, or (without it) the broadcast shape of the distribution's parameters."""
    shape = _size(size, what)
    if shape is not None:
        return shape
    shapes = [np.shape(p) for p in params if isinstance(p, (Variable, np.ndarray))]
    if not shapes:
        return ()
    return np.broadcast_shapes(*shapes) if all(all(isinstance(d, int) for d in s) for s in shapes) else shapes[0]


class RandomStreams:
    """A source of random streams, seeded once (``seed``) and re-seedable (``srng.seed(n)``)."""

    def __init__(self, seed=None):
        self.default_instance_seed = 0 if seed is None else int(seed)
        self.state_updates: list = []  # (rng shared variable, its update), as Theano lists them

    def seed(self, seed=None):
        """Re-seed every stream made so far (and the ones made later)."""
        self.default_instance_seed = self.default_instance_seed if seed is None else int(seed)
        for k, (rng, _) in enumerate(self.state_updates):
            rng.set_value(np.array([R.new_key(self.default_instance_seed, k), 0], dtype=np.uint64))

    def _stream(self):
        k = len(self.state_updates)
        rng = shared(np.array([R.new_key(self.default_instance_seed, k), 0], dtype=np.uint64), name=f"rng{k}")
        _STATES.add(rng._tj_value.id)
        update = symbolic_apply(R.advance, rng)
        rng.default_update = update
        self.state_updates.append((rng, update))
        return rng

    def _draw(self, fn, *args):
        rng = self._stream()
        out = RandomVariable(symbolic_apply(fn, rng, *args)._tj_value)
        out.rng, out.update = rng, (rng, rng.default_update)
        return out

    # -------------------------------------------------------------------------------------------- distributions
    def uniform(self, size=None, low=0.0, high=1.0, ndim=None, dtype=None, nstreams=None, **kwargs):
        """Uniform on [low, high)."""
        shape = _shape_of(size, low, high, what="uniform")
        return self._draw(R.uniform, shape, low, high, _dtype(dtype))

    def normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None, nstreams=None, **kwargs):
        """Normal with mean ``avg`` and standard deviation ``std``."""
        shape = _shape_of(size, avg, std, what="normal")
        return self._draw(R.normal, shape, avg, std, _dtype(dtype))

    def truncated_normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None, nstreams=None):
        """Normal restricted to two standard deviations of the mean (MRG_RandomStreams' definition)."""
        shape = _shape_of(size, avg, std, what="truncated_normal")
        return self._draw(_truncated_normal, shape, avg, std, _dtype(dtype))

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64", nstreams=None, **kwargs):
        """Sum of ``n`` Bernoulli(``p``) trials (``n`` a Python int; n=1 is a dropout mask)."""
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not 0 <= n <= 64:
            raise NotImplementedError(f"binomial: n must be a Python int in [0, 64] (the number of trials, summed "
                                      f"one uniform each), got {n!r}")
        shape = _shape_of(size, p, what="binomial")
        if n == 0:
            return symbolic_apply(lambda s: np.zeros(s, dtype=dtype), shape)
        return self._draw(R.binomial, shape, int(n), p, np.dtype(dtype))

    def random_integers(self, size=None, low=0, high=1, ndim=None, dtype="int64"):
        """Integers uniform in [low, high], both included."""
        shape = _shape_of(size, low, high, what="random_integers")
        return self._draw(R.integers, shape, low, high, np.dtype(dtype))

    def integers(self, size=None, low=0, high=1, ndim=None, dtype="int64"):
        """Integers uniform in [low, high), numpy's convention."""
        shape = _shape_of(size, low, high, what="integers")
        return self._draw(R.integers, shape, low, high - 1, np.dtype(dtype))

    def multinomial(self, size=None, n=1, pvals=None, ndim=None, dtype="int64", nstreams=None, **kwargs):
        """One draw per row of ``pvals`` as a one-hot row (n=1, as MRG_RandomStreams supports)."""
        if pvals is None:
            raise TypeError("multinomial: pvals (a matrix of probabilities, one row per draw) is required")
        if n != 1:
            raise NotImplementedError(f"multinomial: only n=1 (one draw per row) is supported, got n={n!r}")
        return self._draw(R.categorical_one_hot, pvals, np.dtype(dtype))

    def permutation(self, size=None, n=1, ndim=None, dtype="int64"):
        """A random permutation of range(n)."""
        if size not in (None, (), []):
            raise NotImplementedError("permutation: one permutation per draw (size=None); draw several in a loop")
        return self._draw(lambda rng: R.permutation(rng, n).astype(dtype))


class RandomVariable(Variable):
    """A random draw: ``rng`` is its stream's state (a shared variable), ``update`` the pair advancing it."""

    __slots__ = ("rng", "update")


def _truncated_normal(state, shape, avg, std, dtype):
    """Inverse-free truncation: a normal redrawn once where it fell outside 2 sigmas, then clipped (the redraw
    makes a clip at the bound rare: P(|z| > 2)^2 ~ 0.2%)."""
    first = R.normal(state, shape, 0.0, 1.0, np.float64)
    second = R.normal(state + np.array([0, 2**63], dtype=np.uint64), shape, 0.0, 1.0, np.float64)
    z = np.where(np.abs(first) <= 2.0, first, np.clip(second, -2.0, 2.0))
    return (avg + std * z).astype(dtype)


MRG_RandomStreams = RandomStreams

__all__ = ["RandomStreams", "MRG_RandomStreams", "SharedVariable"]
