"""tracejit: a tracing JIT compiler for numerical Python built on LLVM."""
from .api import Jitted, Lowered, jit, make_ir
from .errors import ConcretizationError
from . import numpy, nn

__version__ = "0.1.0"

__all__ = ["jit", "make_ir", "Jitted", "Lowered", "ConcretizationError", "numpy", "nn"]
