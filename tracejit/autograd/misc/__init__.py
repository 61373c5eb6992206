"""autograd.misc: ``flatten`` (a pytree of arrays as one vector and back) and ``optimizers``."""
from .flatten import flatten  # noqa: F401
from . import optimizers  # noqa: F401
