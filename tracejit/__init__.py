"""tracejit: a tracing JIT compiler for numerical Python built on LLVM."""
from .api import Jitted, Lowered, jit, make_ir
from .errors import ConcretizationError
from .transforms import grad, value_and_grad, vjp
from .vectorize import vmap
from .forward import hessian, hvp, jacfwd, jacrev, jvp, linearize
from .control_flow import cond, fori_loop, switch, while_loop
from .custom import checkpoint, custom_jvp, custom_vjp, remat
from .theano import debugprint, function, pp, shared
from .backends.cuda.check import devices
from .compile import clear_caches
from . import numpy, nn, tensor, theano
from .theano.scan import dispatch as scan  # JAX's scan; Theano's when called with Theano's keywords
from .theano import gradient, scan_module, Op, Apply  # noqa: F401  (theano.gradient, theano.Op, ...: tracejit imported as theano)
from .numpy import stop_gradient
from . import scipy_hooks as _scipy_hooks  # scipy.special / scipy.stats on tracers (see that module)
from .ir import printing as _printing  # noqa: F401
from .passes import pipeline as _pipeline  # noqa: F401  (the compiler proper, loaded with the package so that
from .backends.cpu import tiers as _cpu_tiers  # noqa: F401           a first call, e.g. served by the disk
#                                                            cache, pays no imports)

_scipy_hooks.install()
__version__ = "0.1.0"

__all__ = ["fori_loop", "while_loop", "scan", "cond", "switch", "jit", "make_ir", "grad", "value_and_grad", "vjp", "vmap", "jvp", "linearize", "hvp", "jacfwd", "jacrev",
           "hessian", "custom_vjp", "custom_jvp", "checkpoint", "remat", "stop_gradient", "function", "shared", "pp",
           "debugprint", "devices", "clear_caches", "Jitted", "Lowered", "ConcretizationError", "numpy", "nn",
           "tensor"]
