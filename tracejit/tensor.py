"""``import tracejit.tensor as T``: Theano's ``tensor`` module, which lives in ``tracejit.theano.tensor``.

Its submodules are registered too, so ``from tracejit.tensor.nnet import sigmoid`` and
``from tracejit.tensor.shared_randomstreams import RandomStreams`` work as Theano's imports do.
"""
import sys as _sys

from .theano.tensor import *  # noqa: F401,F403
from .theano.tensor import __all__  # noqa: F401
from .theano import conv, nnet, shared_randomstreams, signal  # noqa: F401
from .theano.tensor import extra_ops  # noqa: F401

for _name, _module in (("nnet", nnet), ("nnet.conv", conv), ("shared_randomstreams", shared_randomstreams),
                       ("signal", signal), ("signal.pool", signal.pool), ("signal.downsample", signal.downsample),
                       ("extra_ops", extra_ops)):
    _sys.modules[f"{__name__}.{_name}"] = _module
