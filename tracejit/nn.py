"""Neural-network functions over tracers and arrays: sigmoid, softplus, relu, softmax, log_softmax, logsumexp."""
from __future__ import annotations

from .numpy import _make

sigmoid = _make("sigmoid")
softplus = _make("softplus")
relu = _make("relu")
softmax = _make("softmax")
log_softmax = _make("log_softmax")
logsumexp = _make("logsumexp")

__all__ = ["sigmoid", "softplus", "relu", "softmax", "log_softmax", "logsumexp"]
