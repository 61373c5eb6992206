"""Theano's surface over tracejit: ``function``, ``shared``, ``In``, ``Mode``, ``config``, ``pp``, ``debugprint``,
``tensor`` (with ``tensor.nnet``), ``scan``, ``ifelse``, built on symbolic variables (``trace.symbolic``) and ``tracejit.compile``.

``python -m tracejit.theano script.py`` runs a Theano script with ``import theano`` answered by this package.
"""
from .config import Config, Mode, config
from .function import Function, In, MissingInputError, UnusedInputError, Out, function
from .printing import debugprint, pp
from .shared import SharedVariable, shared
from ..trace.symbolic import Variable
from . import nnet, tensor  # noqa: E402  (after function: tensor builds on it)
from . import ifelse  # noqa: E402  (the module, as Theano's: from theano.ifelse import ifelse)
from .scan import scan  # noqa: E402
from . import scan_module  # noqa: E402  (theano.scan_module.until)
from . import gradient  # noqa: E402  (theano.gradient.jacobian, hessian, zero_grad)
from . import sandbox  # noqa: E402  (theano.sandbox.rng_mrg)
from .op import Apply, Op, as_op  # noqa: E402  (extending Theano: ops with perform())


def _namespace(name, doc, **names):
    import types
    module = types.ModuleType(name, doc)
    module.__dict__.update(names)
    return module


# theano.compile: where Theano's own modules define function, In, Out, shared and Mode
compile = _namespace("tracejit.theano.compile", "Theano's compile package: function, In, Out, shared, Mode.",
                     function=function, In=In, Out=Out, shared=shared, Mode=Mode, SharedVariable=SharedVariable,
                     ops=_namespace("tracejit.theano.compile.ops", "theano.compile.ops", as_op=as_op),
                     io=_namespace("tracejit.theano.compile.io", "theano.compile.io", In=In, Out=Out),
                     sharedvalue=_namespace("tracejit.theano.compile.sharedvalue", "theano.compile.sharedvalue",
                                            shared=shared, SharedVariable=SharedVariable))

gof = _namespace("tracejit.theano.gof", "theano.gof: Op and Apply", Op=Op, Apply=Apply)

__all__ = ["Op", "Apply", "as_op", "gof", "function", "Function", "In", "Out", "compile", "sandbox", "shared", "SharedVariable", "Variable", "pp", "debugprint", "Mode",
           "config", "Config", "tensor", "nnet", "scan", "scan_module", "gradient", "ifelse", "MissingInputError", "UnusedInputError"]
