"""A compiled function's arguments: converted to C-contiguous arrays of the input's dtype, or a clear error that
names the input (Theano's casting rules: lossless casts, Python floats into float32, ``allow_input_downcast``)."""
from __future__ import annotations

import numpy as np

from ..trace.symbolic import Variable
from ..trace.tracer import Tracer

def _describe_arg(a) -> str:
    if isinstance(a, np.ndarray):
        return f"a {a.dtype} array of shape {a.shape}"
    return f"a Python {type(a).__name__}" if not isinstance(a, np.generic) else f"a numpy {a.dtype} scalar"


def _cast_ok(arr, decl, from_python, downcast) -> bool:
    if np.can_cast(arr.dtype, decl, "safe") or downcast is True:
        return True
    if from_python and downcast is None and arr.dtype.kind == "f" and decl.kind == "f":
        return True  # Python floats may be rounded to a float32 input, as in Theano
    with np.errstate(all="ignore"):
        back = arr.astype(decl)
    return bool(np.array_equal(back, arr, equal_nan=arr.dtype.kind == "f" and decl.kind == "f"))


def convert_array(a, decl, comp, ndim, label, downcast=None) -> np.ndarray:
    """An argument as a C-contiguous array of the compute dtype, checked against the declared dtype and rank."""
    if isinstance(a, Tracer):
        raise TypeError(f"{label} got the symbolic value {a!r}; a compiled function takes concrete values "
                        f"(use givens= in function() to substitute an expression)")
    from_python = not isinstance(a, (np.ndarray, np.generic))
    try:
        arr = np.asarray(a)
    except Exception as e:
        raise TypeError(f"{label} cannot be converted from {_describe_arg(a)}: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{label} expects {np.dtype(decl).name} values, got {_describe_arg(a)} of dtype "
                        f"{arr.dtype} that cannot be converted")
    if arr.ndim != ndim:
        raise TypeError(f"wrong number of dimensions for {label}: expected {ndim}, got {arr.ndim} "
                        f"(a value of shape {arr.shape})")
    decl = np.dtype(decl)
    if arr.dtype != decl:
        if not _cast_ok(arr, decl, from_python, downcast):
            raise TypeError(f"{label} expects {decl.name} values, got {_describe_arg(a)} whose values change "
                            f"when cast to {decl.name}; pass {decl.name} data, or compile with "
                            f"function(..., allow_input_downcast=True) to cast anyway")
        with np.errstate(all="ignore"):
            arr = arr.astype(decl)
    if comp != decl:
        arr = arr.astype(comp)
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


def make_converter(var: Variable, label: str, downcast):
    """A fast argument converter for one input: right-typed arrays and Python floats take a short path."""
    comp = var._tj_value.dtype
    decl = np.dtype(var.dtype)
    nd = var.ndim
    exact = decl == comp
    python_floats = exact and comp.kind == "f" and downcast is not False
    asarray, ndarray = np.asarray, np.ndarray
    scalar_type = comp.type if exact else None

    def convert(a):
        t = type(a)
        if t is ndarray:
            if exact and a.ndim == nd and (a.dtype is comp or a.dtype == comp) and a.flags.c_contiguous:
                return a
        elif t is scalar_type and nd == 0:  # a numpy scalar of exactly the input's dtype
            return asarray(a)
        elif python_floats and (t is float or t is list):
            try:
                arr = asarray(a, comp)
            except (ValueError, TypeError):
                pass
            else:
                if arr.ndim == nd:
                    return arr
        return convert_array(a, decl, comp, nd, label, downcast)
    return convert


