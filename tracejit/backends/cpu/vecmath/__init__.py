"""Vectorizable transcendental functions emitted as LLVM IR text.

llvmlite from PyPI has no vector math library: ``llvm.exp.*`` on vectors becomes a scalar libm call per
lane and the loop vectorizer gives up.  This module writes our own branch-free implementations (range
reduction + polynomial, double-double arithmetic where accuracy needs it) as *scalar* LLVM functions built
only from instructions the loop vectorizer can widen (fma, fabs, floor, rint, sqrt, minnum/maxnum, selects,
bitcasts, integer ops, loads from constant tables which become gathers).  The kernel module declares e.g.
``declare double @tj_exp_f64(double)``, links ``module_ir(...)`` in, and after O3 the calls are inlined
into loops and vectorized.

Interface:
    FUNCTIONS                frozenset of supported names
    BINARY                   the two-argument ones
    symbol(name, dtype)      LLVM function name, e.g. ``tj_exp_f64``
    module_ir(pairs)         LLVM IR module text defining ``symbol(name, dtype)`` for each pair

float32 functions are evaluated through the float64 code (fpext, f64 algorithm, fptrunc): the float64
result is accurate to about 1 ulp of float64, so the rounded float32 result is (nearly always) correctly
rounded.  ``logaddexp`` float32 follows numpy's float32 formula so that results agree with numpy.

Accuracy target: within a few ulp of the correctly rounded result over the whole domain, and exactly
numpy's result for special values (inf, nan, signed zeros, subnormals, overflow/underflow).
"""

from __future__ import annotations

import numpy as np

from .builder import SSABuilder, hex_double
from .constants import LOG_INVC, LOG_LH, LOG_LL, PH_TABLE
from .functions import BODIES, F32_BODIES, logaddexp_f32

__all__ = ["FUNCTIONS", "BINARY", "symbol", "module_ir"]

BINARY = frozenset({"arctan2", "power", "hypot", "logaddexp"})

FUNCTIONS = frozenset({
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p",
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "arctan2",
    "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh",
    "cbrt", "power", "hypot", "logaddexp",
})

_SUFFIX = {"float64": "f64", "float32": "f32"}


def _dtype_name(dtype) -> str:
    name = np.dtype(dtype).name
    if name not in _SUFFIX:
        raise TypeError(f"vecmath supports float32 and float64, not {name}")
    return name


def symbol(name: str, dtype) -> str:
    """The LLVM symbol of function ``name`` for ``dtype`` (e.g. ``tj_exp_f64``)."""
    if name not in FUNCTIONS:
        raise KeyError(f"vecmath has no function {name!r}")
    return f"tj_{name}_{_SUFFIX[_dtype_name(dtype)]}"



_TABLES = {
    "tj_vm_log_invc": LOG_INVC,
    "tj_vm_log_lh": LOG_LH,
    "tj_vm_log_ll": LOG_LL,
    "tj_vm_2opi": PH_TABLE,
}

_ATTRS = "alwaysinline nounwind willreturn nofree nosync memory(none)"


def _table_ir(name: str) -> str:
    vals = _TABLES[name]
    body = ", ".join(f"double {hex_double(v)}" for v in vals)
    return f"@{name} = linkonce_odr unnamed_addr constant [{len(vals)} x double] [{body}], align 64"


def _function_ir(name: str, dtname: str, b: SSABuilder) -> str:
    sym = symbol(name, dtname)
    nargs = 2 if name in BINARY else 1
    argnames = ["%x", "%y"][:nargs]
    if dtname == "float64":
        params = ", ".join(f"double {a}" for a in argnames)
        args = argnames
        if name == "arctan2":
            res = BODIES[name](b, *args)
        else:
            res = BODIES[name](b, *args)
        ret = f"  ret double {res}"
        rtype = "double"
    else:
        params = ", ".join(f"float {a}" for a in argnames)
        if name == "logaddexp":
            res = logaddexp_f32(b, *argnames)
        elif name in F32_BODIES:  # float32 results need ~2^-30, not double-double: a plain float64 path
            x64 = b.emit(f"fpext float {argnames[0]} to double")
            res = b.emit(f"fptrunc double {F32_BODIES[name](b, x64)} to float")
        else:
            args = [b.emit(f"fpext float {a} to double") for a in argnames]
            r64 = BODIES[name](b, *args)
            res = b.emit(f"fptrunc double {r64} to float")
        ret = f"  ret float {res}"
        rtype = "float"
    body = "\n".join(b.lines)
    return (f"define linkonce_odr {rtype} @{sym}({params}) #0 {{\nentry:\n{body}\n{ret}\n}}\n")



def module_ir(pairs) -> str:
    """LLVM IR module text defining ``symbol(name, dtype)`` for every ``(name, dtype)`` pair."""
    seen = []
    for name, dtype in pairs:
        key = (name, _dtype_name(dtype))
        if name not in FUNCTIONS:
            raise KeyError(f"vecmath has no function {name!r}")
        if key not in seen:
            seen.append(key)
    funcs, intrinsics, tables = [], set(), set()
    for name, dtname in seen:
        b = SSABuilder()
        funcs.append(_function_ir(name, dtname, b))
        intrinsics |= b.intrinsics
        tables |= b.tables
    parts = ["; tracejit vecmath"]
    parts += [_table_ir(t) for t in sorted(tables)]
    parts += funcs
    parts += sorted(intrinsics)
    parts.append(f"attributes #0 = {{ {_ATTRS} }}")
    return "\n".join(parts) + "\n"
