"""``from tracejit.ifelse import ifelse``: Theano's lazy branch (lives in ``tracejit.theano.ifelse``)."""
from .theano.ifelse import ifelse

__all__ = ["ifelse"]
