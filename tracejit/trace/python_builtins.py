"""Python's builtins on traced values (issue 14): ``divmod`` and ``round`` as numpy computes them, and the error
for ``max(a, b)`` / ``min(a, b)``, which compare their arguments: a comparison of traced values has no truth value
while tracing, so the error names numpy's elementwise functions at the user's line."""
from __future__ import annotations

import linecache
import re

from ..errors import ConcretizationError
from ..ir import ops
from ..ir import types as T
from .numpy_api import IMPLS, impl


@impl("divmod")
def divmod_(x1, x2, out=None, **kw):
    """numpy.divmod (and Python's divmod on arrays): (x1 // x2, x1 % x2), numpy's floor_divide and remainder."""
    if out is not None or kw:
        raise TypeError("np.divmod: tracejit takes no out= or ufunc keywords here; use np.floor_divide and "
                        "np.remainder")
    return IMPLS["floor_divide"](x1, x2), IMPLS["remainder"](x1, x2)


divmod_.takes_scalars = True


def python_round(x, ndigits=None):
    """``round(x)`` on a traced 0-d value as on a numpy scalar: to the nearest even integer (an int64, where numpy
    gives a Python int) or, with ``ndigits``, ``np.round(x, ndigits)``. numpy arrays have no ``__round__``."""
    v = x._tj_value
    if v.ndim:
        raise TypeError("type numpy.ndarray doesn't define __round__ method (as numpy); use np.round(x, decimals)")
    if ndigits is None:
        r = IMPLS["round"](v)
        return r if r.dtype.kind in "iub" else ops.convert(r, T.INT64)
    return IMPLS["round"](v, ndigits)


_MIN_MAX = re.compile(r"^\s*(max|min)\s*\(")


def _calling_builtin(frame):
    """'max' or 'min' when ``frame`` is executing a call to Python's max/min, else None: the source of the call
    expression at the frame's current instruction (its line, where the positions are unknown)."""
    if frame is None:
        return None
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    positions = list(frame.f_code.co_positions())
    k = frame.f_lasti // 2
    if 0 <= k < len(positions):
        lineno, end_lineno, col, end_col = positions[k]
        if lineno == end_lineno == frame.f_lineno and col is not None and end_col is not None:
            m = _MIN_MAX.match(line[col:end_col])
            return m.group(1) if m else None
    m = re.search(r"\b(max|min)\s*\(", line)
    return m.group(1) if m else None


def builtin_comparison_error(err: ConcretizationError, frame) -> ConcretizationError:
    """The error for ``bool(traced)``: naming np.maximum / np.minimum when Python's max / min asked for it."""
    which = _calling_builtin(frame)
    if which is None:
        return err
    ufunc = "np.maximum" if which == "max" else "np.minimum"
    return ConcretizationError(
        f"Python's {which}(a, b) compares its arguments, and a comparison of traced values has no truth value "
        f"while tracejit traces the function: use {ufunc}(a, b) (elementwise, as numpy), or np.{which}(x) / "
        f"x.{which}() for the {which}imum over an array")


__all__ = ["divmod_", "python_round", "builtin_comparison_error"]
