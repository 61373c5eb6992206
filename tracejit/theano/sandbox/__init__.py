"""``theano.sandbox``: the parts Theano programs import from it (``rng_mrg.MRG_RandomStreams``)."""
from . import rng_mrg  # noqa: F401
