"""``theano.sandbox.rng_mrg.MRG_RandomStreams``: the same random streams as ``shared_randomstreams``."""
from ..shared_randomstreams import MRG_RandomStreams  # noqa: F401

__all__ = ["MRG_RandomStreams"]
