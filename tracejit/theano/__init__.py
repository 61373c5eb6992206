"""Theano's surface over tracejit: ``function``, ``shared``, ``In``, ``Mode``, ``config``, ``pp``, ``debugprint``,
``tensor`` (with ``tensor.nnet``), ``scan``, ``ifelse``, built on symbolic variables (``trace.symbolic``) and ``tracejit.compile``.

``python -m tracejit.theano script.py`` runs a Theano script with ``import theano`` answered by this package.
"""
from .config import Config, Mode, config
from .function import Function, In, MissingInputError, UnusedInputError, function
from .printing import debugprint, pp
from .shared import SharedVariable, shared
from ..trace.symbolic import Variable
from . import nnet, tensor  # noqa: E402  (after function: tensor builds on it)
from . import ifelse  # noqa: E402  (the module, as Theano's: from theano.ifelse import ifelse)
from .scan import scan  # noqa: E402
from . import scan_module  # noqa: E402  (theano.scan_module.until)
from . import gradient  # noqa: E402  (theano.gradient.jacobian, hessian, zero_grad)

__all__ = ["function", "Function", "In", "shared", "SharedVariable", "Variable", "pp", "debugprint", "Mode",
           "config", "Config", "tensor", "nnet", "scan", "scan_module", "gradient", "ifelse", "MissingInputError", "UnusedInputError"]
