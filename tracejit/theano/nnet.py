"""Theano's ``tensor.nnet`` names over symbolic variables: sigmoid, softplus, relu, softmax, cross-entropies."""
from __future__ import annotations

from ..trace.symbolic import symbolic_apply
from ..trace.tracer import call_numpy


def _np(name, *args, **kwargs):
    return symbolic_apply(call_numpy, name, args, kwargs)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed stably."""
    return _np("sigmoid", x)


ultra_fast_sigmoid = sigmoid  # Theano's approximations: here the exact, stable form


def hard_sigmoid(x):
    """clip(0.2 * x + 0.5, 0, 1), Theano's piecewise-linear sigmoid."""
    return _np("clip", 0.2 * x + 0.5, 0.0, 1.0)


def softplus(x):
    """log(1 + exp(x)), computed stably."""
    return _np("softplus", x)


def relu(x, alpha=0):
    """max(x, 0); with ``alpha``, a leaky ReLU: where(x > 0, x, alpha * x)."""
    if alpha == 0:
        return _np("relu", x)
    return _np("where", x > 0, x, alpha * x)


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis`` (rows of a matrix, as in Theano)."""
    return _np("softmax", x, axis=axis)


def logsoftmax(x, axis=-1):
    return _np("log_softmax", x, axis=axis)


log_softmax = logsoftmax


def binary_crossentropy(output, target):
    """-(target * log(output) + (1 - target) * log(1 - output)), elementwise."""
    return -(target * _np("log", output) + (1 - target) * _np("log", 1 - output))


def categorical_crossentropy(coding_dist, true_dist):
    """-sum(true_dist * log(coding_dist), axis=-1) for one-hot or probability targets, or -log(coding_dist[i,
    true_dist[i]]) for integer class labels (one value per row either way)."""
    if true_dist.dtype.kind in "iu" and true_dist.ndim == coding_dist.ndim - 1:
        if coding_dist.ndim != 2:
            raise TypeError(f"categorical_crossentropy: integer labels index the rows of a matrix of "
                            f"probabilities; got {coding_dist.ndim} dimensions")
        from .tensor import arange  # (tensor imports this module)
        rows = arange(coding_dist.shape[0])
        return -_np("log", coding_dist[rows, true_dist])
    return -_np("sum", true_dist * _np("log", coding_dist), axis=-1)


from . import conv  # noqa: E402  (theano.tensor.nnet.conv)
from .conv import conv2d  # noqa: E402

__all__ = ["conv2d", "sigmoid", "ultra_fast_sigmoid", "hard_sigmoid", "softplus", "relu", "softmax", "logsoftmax",
           "log_softmax", "binary_crossentropy", "categorical_crossentropy"]
