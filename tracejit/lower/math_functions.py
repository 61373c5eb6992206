"""The table of math functions, one row each: its C libm name, its CUDA libdevice name, its name in the CPU's
vector math library when it has one, numpy's reference, its cost and the ulp bound the backends meet. The rules
of scalar.py call these by name (``ScalarOps.math``); a backend maps a row to its own call.

This module imports nothing from ``backends``/``trace`` (tests/test_layers.py checks).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# cost of a math call per element: an instruction or two; a scalar libm call (small code, not vectorized); a
# polynomial of the vector math library (most of the optimizer's time, and compute-bound loops)
CHEAP, LIBCALL, EXPENSIVE = 1, 5, 20


@dataclass(frozen=True)
class MathFn:
    """One math function. ``libm``: C name of the float64 version (float32 adds "f"); ``cuda``: libdevice name
    of the float64 version (float32 adds "f"); ``vec``: vecmath's name, None when it has none; ``ref``: numpy's
    (or scipy.special's, "special.x") function for reference implementations such as the CUDA simulator."""
    name: str
    nargs: int
    libm: str | None
    cuda: str | None
    vec: str | None
    ref: str
    cost: int = EXPENSIVE
    ulp: int = 4
    int_arg: bool = False  # the second argument is a C int (int32), as ldexp's exponent


def _fn(name, nargs, libm, cuda, vec, ref, cost=EXPENSIVE, ulp=4, int_arg=False):
    return MathFn(name, nargs, libm, cuda, vec, ref, cost, ulp, int_arg)


# name                  nargs libm       libdevice   vecmath      reference              cost     ulp
ROWS = [
    _fn("fabs",             1, "fabs",      "fabs",     None,        "fabs",               CHEAP,   0),
    _fn("sqrt",             1, "sqrt",      "sqrt",     None,        "sqrt",               CHEAP,   0),
    _fn("floor",            1, "floor",     "floor",    None,        "floor",              CHEAP,   0),
    _fn("ceil",             1, "ceil",      "ceil",     None,        "ceil",               CHEAP,   0),
    _fn("trunc",            1, "trunc",     "trunc",    None,        "trunc",              CHEAP,   0),
    _fn("rint",             1, "rint",      "rint",     None,        "rint",               CHEAP,   0),
    _fn("copysign",         2, "copysign",  "copysign", None,        "copysign",           CHEAP,   0),
    _fn("fmax",             2, "fmax",      "fmax",     None,        "fmax",               CHEAP,   0),
    _fn("fmin",             2, "fmin",      "fmin",     None,        "fmin",               CHEAP,   0),
    _fn("fmod",             2, "fmod",      "fmod",     None,        "fmod",               CHEAP,   0),
    _fn("nextafter",        2, "nextafter", "nextafter", None,       "nextafter",          CHEAP,   0),
    _fn("ldexp",            2, "ldexp",     "ldexp",    None,        "ldexp",              CHEAP,   0, True),
    _fn("exp",              1, "exp",       "exp",      "exp",       "exp"),
    _fn("exp2",             1, "exp2",      "exp2",     "exp2",      "exp2"),
    _fn("expm1",            1, "expm1",     "expm1",    "expm1",     "expm1"),
    _fn("log",              1, "log",       "log",      "log",       "log"),
    _fn("log2",             1, "log2",      "log2",     "log2",      "log2"),
    _fn("log10",            1, "log10",     "log10",    "log10",     "log10"),
    _fn("log1p",            1, "log1p",     "log1p",    "log1p",     "log1p"),
    _fn("sin",              1, "sin",       "sin",      "sin",       "sin"),
    _fn("cos",              1, "cos",       "cos",      "cos",       "cos"),
    _fn("tan",              1, "tan",       "tan",      "tan",       "tan"),
    _fn("arcsin",           1, "asin",      "asin",     "arcsin",    "arcsin"),
    _fn("arccos",           1, "acos",      "acos",     "arccos",    "arccos"),
    _fn("arctan",           1, "atan",      "atan",     "arctan",    "arctan"),
    _fn("arctan2",          2, "atan2",     "atan2",    "arctan2",   "arctan2"),
    _fn("sinh",             1, "sinh",      "sinh",     "sinh",      "sinh"),
    _fn("cosh",             1, "cosh",      "cosh",     "cosh",      "cosh"),
    _fn("tanh",             1, "tanh",      "tanh",     "tanh",      "tanh"),
    _fn("arcsinh",          1, "asinh",     "asinh",    "arcsinh",   "arcsinh"),
    _fn("arccosh",          1, "acosh",     "acosh",    "arccosh",   "arccosh"),
    _fn("arctanh",          1, "atanh",     "atanh",    "arctanh",   "arctanh"),
    _fn("cbrt",             1, "cbrt",      "cbrt",     "cbrt",      "cbrt"),
    _fn("power",            2, "pow",       "pow",      "power",     "power"),
    _fn("hypot",            2, "hypot",     "hypot",    "hypot",     "hypot"),
    # only the vector library has it; other backends lower the primitive logaddexp by its rule below
    _fn("logaddexp",        2, None,        None,       "logaddexp", "logaddexp"),
    # C99 special functions: libm / libdevice only (large ulp bounds: libms differ from scipy here)
    _fn("erf",              1, "erf",       "erf",      None,        "special.erf",        LIBCALL, 16),
    _fn("erfc",             1, "erfc",      "erfc",     None,        "special.erfc",       LIBCALL, 512),
    _fn("lgamma",           1, "lgamma",    "lgamma",   None,        "special.gammaln",    LIBCALL, 2 ** 20),
    _fn("tgamma",           1, "tgamma",    "tgamma",   None,        "special.gamma",      LIBCALL, 64),
]
MATH: dict[str, MathFn] = {r.name: r for r in ROWS}
VEC_FUNCTIONS = frozenset(r.vec for r in ROWS if r.vec)
BINARY_MATH = frozenset(r.name for r in ROWS if r.nargs == 2)


def reference(name: str) -> Callable:
    """numpy's (or scipy.special's) function for math row ``name``."""
    ref = MATH[name].ref
    if ref.startswith("special."):
        import scipy.special  # ~0.2 s: only the special functions need it
        return getattr(scipy.special, ref[len("special."):])
    return getattr(np, ref)
