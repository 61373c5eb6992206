"""``theano.tensor.signal.pool``."""
from ..conv import max_pool_2d, pool_2d  # noqa: F401

__all__ = ["pool_2d", "max_pool_2d"]
