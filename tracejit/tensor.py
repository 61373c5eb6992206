"""``import tracejit.tensor as T``: Theano's ``tensor`` module, which lives in ``tracejit.theano.tensor``."""
from .theano.tensor import *  # noqa: F401,F403
from .theano.tensor import __all__  # noqa: F401
