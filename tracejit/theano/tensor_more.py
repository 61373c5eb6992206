"""More of Theano's ``tensor`` names that real Theano programs use: writes into subtensors (``set_subtensor``,
``inc_subtensor``), broadcast-pattern and shape helpers, ``TensorType``, ``max_and_argmax``, ``stacklists``,
``extra_ops`` and the special functions (``erf``, ``gammaln``, ...), each built from numpy on tracers.
"""
from __future__ import annotations

import types

import numpy as np
from scipy import special as _sp

from ..trace.symbolic import Variable, symbolic_apply, variable
from ..trace.tracer import Tracer, wrap
from .config import config


# ------------------------------------------------------------------------------------------------ subtensors
def _subtensor_of(x, what):
    info = getattr(x, "_subtensor", None) if isinstance(x, Variable) else None
    if info is None:
        got = x.label() if isinstance(x, Variable) else type(x).__name__
        raise TypeError(f"{what}: the first argument must be an indexed variable such as x[1:, 0] or x[idx] "
                        f"(the part of x to write), got {got}")
    return info


def _is_row_gather(key):
    """An integer index array on axis 0 alone (x[idx]): repeated rows accumulate, as Theano's
    AdvancedIncSubtensor1 does."""
    k = key[0] if isinstance(key, tuple) and len(key) == 1 else key
    if isinstance(k, list):
        k = np.asarray(k)
    return isinstance(k, (Tracer, np.ndarray)) and k.ndim >= 1 and np.dtype(k.dtype).kind in "iu"


def _write(base, key, y, increment):
    out = wrap(base._tj_value)  # a tracer of its own: the write must not rebind the user's variable
    if increment and _is_row_gather(key):
        np.add.at(out, key[0] if isinstance(key, tuple) else key, y)
    elif increment:
        out[key] = out[key] + y
    else:
        out[key] = y
    return out


def set_subtensor(x, y, inplace=False, tolerate_inplace_aliasing=False):
    """The whole array ``x`` is an index of, with that part replaced by ``y``: ``set_subtensor(a[1:, 0], 0)``."""
    base, key = _subtensor_of(x, "set_subtensor")
    return symbolic_apply(_write, base, key, y, False)


def inc_subtensor(x, y, inplace=False, set_instead_of_inc=False, tolerate_inplace_aliasing=False):
    """The whole array ``x`` is an index of, with ``y`` added to that part; rows indexed twice by an integer
    vector (``a[idx]``) get both increments, as in Theano."""
    base, key = _subtensor_of(x, "inc_subtensor")
    return symbolic_apply(_write, base, key, y, not set_instead_of_inc)


# ------------------------------------------------------------------------------------------------ shapes
def alloc(value, *shape):
    """An array of ``shape`` (lengths may be symbolic: ``x.shape[1]``) filled with ``value``, in its dtype."""
    from .tensor import zeros
    dtype = np.asarray(value).dtype if not isinstance(value, Tracer) else value.dtype
    return zeros(shape, dtype=dtype) + value


def specify_shape(x, shape):
    """``x``, promised to have ``shape`` (checked against the lengths known now)."""
    shape = tuple(shape)
    if len(shape) != x.ndim:
        raise ValueError(f"specify_shape: {shape} has {len(shape)} entries, but the variable has {x.ndim} dimensions")
    for ax, (d, s) in enumerate(zip(x.shape, shape)):
        if isinstance(d, int) and isinstance(s, int) and d != s:
            raise ValueError(f"specify_shape: axis {ax} has length {d}, not {s}")
    return x


def shape_padaxis(x, axis):
    """A new axis of length 1 at ``axis``."""
    return symbolic_apply(np.expand_dims, x, axis)


def shape_padleft(x, n_ones=1):
    return symbolic_apply(lambda t: t.reshape((1,) * n_ones + tuple(t.shape)), x)


def shape_padright(x, n_ones=1):
    return symbolic_apply(lambda t: t.reshape(tuple(t.shape) + (1,) * n_ones), x)


def addbroadcast(x, *axes):
    """``x`` with ``axes`` of length 1 (checked when the function runs: a reshape to length 1)."""
    for a in axes:
        if not -x.ndim <= a < x.ndim:
            raise ValueError(f"addbroadcast: axis {a} is out of range for a {x.ndim}-d variable")
    axes = {a % x.ndim for a in axes}
    return symbolic_apply(lambda t: t.reshape(tuple(1 if i in axes else d for i, d in enumerate(t.shape))), x)


def unbroadcast(x, *axes):
    """``x`` itself: lengths here are never fixed to 1 by a broadcast pattern."""
    return x


def patternbroadcast(x, broadcastable):
    """``x`` with the axes marked True of length 1."""
    if len(broadcastable) != x.ndim:
        raise ValueError(f"patternbroadcast: {broadcastable} has {len(broadcastable)} entries, but the variable "
                         f"has {x.ndim} dimensions")
    return addbroadcast(x, *[i for i, b in enumerate(broadcastable) if b])


class TensorType:
    """Theano's ``TensorType(dtype, broadcastable)``; calling it makes a symbolic variable of that type."""

    def __init__(self, dtype, broadcastable, name=None, shape=None):
        self.dtype = config.floatX if dtype == "floatX" else str(np.dtype(dtype))
        self.broadcastable = tuple(bool(b) for b in broadcastable)
        self.ndim, self.name = len(self.broadcastable), name

    def __call__(self, name=None):
        return variable(self.dtype, self.ndim, name, ones=tuple(i for i, b in enumerate(self.broadcastable) if b))

    def __repr__(self):
        return f"TensorType({self.dtype}, {self.broadcastable})"


# ------------------------------------------------------------------------------------------------ reductions, stacking
def max_and_argmax(x, axis=None, keepdims=False):
    """[max, argmax] along ``axis`` (None: the flattened array)."""
    return [symbolic_apply(np.max, x, axis=axis, keepdims=keepdims),
            symbolic_apply(np.argmax, x, axis=axis, keepdims=keepdims)]


def stacklists(arg):
    """A nested list of scalars (or arrays) stacked into one array of the list's shape."""
    if isinstance(arg, (list, tuple)):
        return symbolic_apply(lambda *xs: np.stack(xs), *[stacklists(a) for a in arg])
    return arg


# ------------------------------------------------------------------------------------------------ special functions
# (the ones tracejit's scipy.special support computes; Theano's erfcx and Bessel j* are not among them yet)
_SPECIAL = {"erf": _sp.erf, "erfc": _sp.erfc, "erfinv": _sp.erfinv, "erfcinv": _sp.erfcinv,
            "gamma": _sp.gamma, "gammaln": _sp.gammaln, "psi": _sp.psi, "digamma": _sp.digamma,
            "tri_gamma": lambda x: _sp.polygamma(1, x), "i0": _sp.i0, "i1": _sp.i1,
            "gammainc": _sp.gammainc, "gammaincc": _sp.gammaincc,
            "log1mexp": lambda x: np.log(-np.expm1(x)), "xlogx": lambda x: _sp.xlogy(x, x)}


def _special(name, f):
    def apply(*args):
        return symbolic_apply(f, *args)
    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = f"scipy.special's {name} over symbolic variables."
    return apply


SPECIAL_FUNCTIONS = {name: _special(name, f) for name, f in _SPECIAL.items()}


def _to_one_hot(y, nb_class, dtype=None):
    return symbolic_apply(lambda t: (t[:, None] == np.arange(nb_class)).astype(dtype or config.floatX), y)


# Theano's tensor.extra_ops: to_one_hot, plus numpy's functions of the same names (tensor.py adds those: they are
# its own numpy-named functions)
EXTRA_OPS_NUMPY_NAMES = ("cumsum", "cumprod", "diff", "repeat", "bincount", "squeeze", "fill_diagonal", "unique",
                         "searchsorted", "ravel_multi_index", "unravel_index")
extra_ops = types.ModuleType("tracejit.theano.tensor.extra_ops",
                             "Theano's tensor.extra_ops: numpy's functions of the same names over symbolic variables.")
extra_ops.to_one_hot = _to_one_hot


__all__ = ["alloc", "set_subtensor", "inc_subtensor", "specify_shape", "shape_padaxis", "shape_padleft", "shape_padright",
           "addbroadcast", "unbroadcast", "patternbroadcast", "TensorType", "max_and_argmax", "stacklists",
           "extra_ops", "SPECIAL_FUNCTIONS"]
