"""``theano.tensor.signal.downsample`` (Theano before 0.9)."""
from ..conv import max_pool_2d  # noqa: F401

__all__ = ["max_pool_2d"]
