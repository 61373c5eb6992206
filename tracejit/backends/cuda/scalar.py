"""The CUDA backend's scalar operations: lower/scalar.py's abstract operations written as Python source over typed
numba scalars (one SSA name per operation), and the math helpers a generated kernel calls (libdevice on a GPU,
numpy under the simulator). What a primitive means is the table's business; this module only spells it.
"""
from __future__ import annotations

import math

import numpy as np

from ...ir import types as T
from ...lower import scalar as S

_SUFFIX = {T.BOOL: "b", T.INT8: "i8", T.INT16: "i16", T.INT32: "i32", T.INT64: "i64", T.UINT8: "u8", T.UINT16: "u16",
           T.UINT32: "u32", T.UINT64: "u64", T.FLOAT16: "f16", T.FLOAT32: "f32", T.FLOAT64: "f64"}


def literal(value, dt) -> str:
    """Source of a constant of dtype ``dt``."""
    dt = np.dtype(dt)
    v = np.asarray(value).astype(dt)[()]
    if dt == T.BOOL:
        return "True" if v else "False"
    if dt.kind in "iu":
        return f"_cast_{_SUFFIX[dt]}({int(v)})"
    f = float(v)
    s = "_NAN" if f != f else ("_INF" if f == math.inf else ("(-_INF)" if f == -math.inf else repr(f)))
    return f"_cast_{_SUFFIX[dt]}({s})"


def cast_expr(expr, dt) -> str:
    """Source of ``expr`` as dtype ``dt`` (numba widens int32 arithmetic to int64: results are cast back)."""
    dt = np.dtype(dt)
    if dt == T.BOOL:
        return f"(({expr}) != 0)"
    return f"_cast_{_SUFFIX[dt]}({expr})"


def _quiet(f):
    def g(*a):
        with np.errstate(all="ignore"):
            return f(*a)
    return g


def _on_arrays(name):
    """numpy's function for a math row, called on 1-element arrays: numpy's scalar path differs from its array
    loops (power(-inf, 0.5) is nan for scalars, inf for arrays and in C)."""
    def f(*xs):
        return S.reference(name)(*(np.reshape(x, 1) for x in xs))[0]
    return f


def math_namespace(simulator: bool) -> dict:
    """``_<row>_f64`` / ``_<row>_f32`` for every math row CUDA has: libdevice's functions on a GPU, the table's
    numpy reference under the simulator."""
    ns = {}
    if not simulator:
        from numba.cuda import libdevice
    for row in S.MATH.values():
        if row.cuda is None:
            continue
        if simulator:
            ns[f"_{row.name}_f64"] = ns[f"_{row.name}_f32"] = _quiet(_on_arrays(row.name))
        else:
            ns[f"_{row.name}_f64"] = getattr(libdevice, row.cuda)
            ns[f"_{row.name}_f32"] = getattr(libdevice, row.cuda + "f")
    return ns


def _int_power_loop(o, dt, x, y):
    """Integer power as a loop over the exponent's bits (the table's rule unrolls it: 63 selects)."""
    if np.dtype(dt).kind not in "iu":
        return NotImplemented
    r, base, ex = o.tmp(), o.tmp(), o.tmp()
    c = f"_cast_{_SUFFIX[np.dtype(dt)]}"
    o.lines += [f"{r} = {c}(1)", f"{base} = {c}({x})", f"{ex} = _cast_i64({y})",
                f"while {ex} > 0:", f"    if {ex} & 1:", f"        {r} = {c}({r} * {base})",
                f"    {base} = {c}({base} * {base})", f"    {ex} = {ex} >> 1"]
    return r


OVERRIDES = {"power": _int_power_loop}


class CudaScalarOps(S.ScalarOps):
    """Elementwise equations -> Python statements over typed scalars (``lines``), one name per operation."""

    def __init__(self):
        self.lines: list = []
        self._n = 0

    def tmp(self):
        self._n += 1
        return f"_t{self._n}"

    def _let(self, expr):
        t = self.tmp()
        self.lines.append(f"{t} = {expr}")
        return t

    def emit(self, e, names: dict, out_name: str):
        """Append statements computing equation ``e`` into ``out_name``; ``names`` maps value ids to expressions."""
        args = [names[v.id] for v in e.inputs]
        in_dts = [v.dtype for v in e.inputs] or [e.out.dtype]
        val = S.lower(self, e.prim, in_dts, e.out.dtype, args, OVERRIDES)
        self.lines.append(f"{out_name} = {cast_expr(val, e.out.dtype)}")

    def convert(self, x, src, dst) -> str:
        """numpy's astype (the table's rule)."""
        return S.convert(self, x, src, dst)

    # -------------------------------------------------------------------------------- the abstract operations
    def _arith(self, dt, expr):
        return self._let(expr if np.dtype(dt).kind == "f" else cast_expr(expr, dt))

    def const(self, dt, value):
        return literal(value, dt)

    def add(self, dt, x, y):
        return self._arith(dt, f"{x} + {y}")

    def sub(self, dt, x, y):
        return self._arith(dt, f"{x} - {y}")

    def mul(self, dt, x, y):
        return self._arith(dt, f"{x} * {y}")

    def div(self, dt, x, y):
        return self._let(f"{x} / {y}")

    def neg(self, dt, x):
        return self._arith(dt, f"-{x}")

    def idiv(self, dt, x, y):
        return self._arith(dt, f"{x} // {y}")  # Python's floor division, as numba compiles it

    def imod(self, dt, x, y):
        return self._arith(dt, f"{x} % {y}")

    def cmp(self, dt, op, x, y):
        return self._let(f"{x} {op} {y}")

    def select(self, dt, c, x, y):
        return self._let(f"{x} if {c} else {y}")

    def and_(self, dt, x, y):
        return self._arith(dt, f"{x} & {y}") if np.dtype(dt) != T.BOOL else self._let(f"{x} and {y}")

    def or_(self, dt, x, y):
        return self._arith(dt, f"{x} | {y}") if np.dtype(dt) != T.BOOL else self._let(f"{x} or {y}")

    def xor(self, dt, x, y):
        return self._arith(dt, f"{x} ^ {y}") if np.dtype(dt) != T.BOOL else self._let(f"{x} != {y}")

    def not_(self, dt, x):
        return self._arith(dt, f"~{x}") if np.dtype(dt) != T.BOOL else self._let(f"not {x}")

    def shl(self, dt, x, y):
        return self._arith(dt, f"{x} << {y}")

    def shr(self, dt, x, y):
        return self._arith(dt, f"{x} >> {y}")

    def isnan(self, dt, x):
        return self._let(f"{x} != {x}")

    def math(self, name, dt, *xs):
        return self._let(f"_{name}_{_SUFFIX[np.dtype(dt)]}({', '.join(xs)})")

    def while_(self, dt, state, cond, step, max_steps):
        """A real loop: numba compiles 93 unrolled Euclid steps (int64 gcd) in minutes, the loop at once."""
        names = [self._let(s) for s in state]
        start = len(self.lines)
        test = cond(names)
        test_lines = self.lines[start:]
        del self.lines[start:]
        new = step(names)
        body = self.lines[start:] + [f"{', '.join(names)} = {', '.join(new)}"] + test_lines  # all at once
        del self.lines[start:]
        self.lines += test_lines + [f"while {test}:"] + ["    " + line for line in body]
        return names

    def cast(self, x, src, dst):
        src, dst = np.dtype(src), np.dtype(dst)
        if src == dst:
            return x
        if src == T.BOOL:
            return self._let(f"{literal(1, dst)} if {x} else {literal(0, dst)}")
        return self._let(cast_expr(x, dst))
