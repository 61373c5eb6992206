"""The CPU's scalar operations: lower/scalar.py's abstract operations as llvmlite IRBuilder calls, plus the
native forms LLVM has for some rows (``llvm.maximum``, the vector library's ``logaddexp``). What a primitive
means is the table's business; this module only says how LLVM spells each operation. The loop vectorizer
widens the scalar code it writes.
"""
from __future__ import annotations

import llvmlite.ir as ir
import numpy as np

from ...ir import types as T
from ...lower import scalar as S

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
F32, F64 = ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()


def lltype(dt: np.dtype):
    dt = np.dtype(dt)
    if dt == T.BOOL:
        return I1
    if dt.kind == "f":
        return F64 if dt.itemsize == 8 else F32
    return I64 if dt.itemsize == 8 else I32


def memtype(dt: np.dtype):
    return I8 if np.dtype(dt) == T.BOOL else lltype(dt)


def is_float(dt):
    return np.dtype(dt).kind == "f"


def constant(dt, value):
    ty = lltype(dt)
    if dt == T.BOOL:
        return ir.Constant(I1, int(bool(value)))
    if is_float(dt):
        return ir.Constant(ty, float(value))
    return ir.Constant(ty, int(value))


# ------------------------------------------------------------------------------------------------ math
def vecmath_module():
    """The vector math library, imported on first use (building its tables takes ~10 ms)."""
    from . import vecmath
    return vecmath


# the math rows LLVM has an intrinsic for (native forms: the optimizer folds and vectorizes them)
INTRINSICS = {"sqrt": "llvm.sqrt", "floor": "llvm.floor", "ceil": "llvm.ceil", "trunc": "llvm.trunc",
               "rint": "llvm.rint", "fabs": "llvm.fabs", "copysign": "llvm.copysign", "fmax": "llvm.maxnum",
               "fmin": "llvm.minnum", "exp": "llvm.exp", "exp2": "llvm.exp2", "log": "llvm.log",
               "log2": "llvm.log2", "log10": "llvm.log10", "sin": "llvm.sin", "cos": "llvm.cos"}
LIBM = {r.name: r.libm for r in S.MATH.values() if r.libm}
# vecmath.FUNCTIONS and vecmath.symbol's names, known here without importing vecmath (its tables take tens of
# ms to build, and the quick tier does not link it); tests/test_compile_time.py checks that they agree
VEC_FUNCTIONS = S.VEC_FUNCTIONS
BINARY_MATH = S.BINARY_MATH


def vec_symbol(name, suffix):
    if name not in VEC_FUNCTIONS:
        raise KeyError(f"vecmath has no function {name!r}")
    return f"tj_{name}_{suffix}"


class MathFunctions:
    """Per-module cache of declared math functions: vector library first, then LLVM intrinsics, then libm."""

    def __init__(self, module, vector=True):
        self.m = module
        self.decls = {}
        self.vec_used = set()
        # False: scalar libm calls in the IR itself. Both tiers build with True (one IR for both) and differ in the
        # bodies they link for the vector library's symbols (see module.math_ir)
        self.vector = vector

    def call(self, b, name, ty, *args):
        key = (name, str(ty))
        fn = self.decls.get(key)
        if fn is None:
            suffix = "f64" if ty == F64 else "f32"
            if self.vector and name in VEC_FUNCTIONS or name not in INTRINSICS and name not in LIBM:
                sym = vec_symbol(name, suffix)
                self.vec_used.add((name, np.dtype(np.float64 if ty == F64 else np.float32)))
            elif name in INTRINSICS:
                sym = f"{INTRINSICS[name]}.{suffix}"
            else:
                sym = LIBM[name] + ("" if ty == F64 else "f")
            row = S.MATH.get(name)
            params = [ty, I32] if row is not None and row.int_arg else [ty] * len(args)
            fn = self.m.globals.get(sym) or ir.Function(self.m, ir.FunctionType(ty, params), sym)
            self.decls[key] = fn
        return b.call(fn, list(args))

    def intrinsic(self, b, name, ty, *args):
        sym = f"{name}.{'f64' if ty == F64 else 'f32'}"
        fn = self.m.globals.get(sym) or ir.Function(self.m, ir.FunctionType(ty, [ty] * len(args)), sym)
        return b.call(fn, list(args))


# ------------------------------------------------------------------------------------------------ native forms
def _native_minmax(intrinsic):
    def f(o, dt, x, y):
        if not is_float(dt):
            return NotImplemented
        return o.math_lib.intrinsic(o.b, intrinsic, lltype(dt), x, y)  # nan-propagating, one instruction
    return f


def _native_logaddexp(o, dt, x, y):
    if "logaddexp" not in VEC_FUNCTIONS:
        return NotImplemented
    return o.math_lib.call(o.b, "logaddexp", lltype(dt), x, y)


OVERRIDES = {"maximum": _native_minmax("llvm.maximum"), "minimum": _native_minmax("llvm.minimum"),
             "logaddexp": _native_logaddexp}


# ------------------------------------------------------------------------------------------------ operations
_COMPARISONS = {"equal": "==", "not_equal": "!=", "less": "<", "less_equal": "<=", "greater": ">",
                "greater_equal": ">="}


class CpuScalarOps(S.ScalarOps):
    """lower/scalar.py's abstract operations over one IRBuilder (``em.b``) and math cache (``em.math``)."""

    def __init__(self, em):
        self.em = em
        self.b = em.b
        self.math_lib = em.math

    def emit(self, eqn, args):
        """The LLVM value of elementwise equation ``eqn`` on ``args``."""
        in_dts = [v.dtype for v in eqn.inputs] or [eqn.out.dtype]
        return S.lower(self, eqn.prim, in_dts, eqn.out.dtype, args, OVERRIDES)

    def convert(self, x, src, dst):
        """numpy's astype (the table's rule)."""
        return S.convert(self, x, src, dst)

    # -------------------------------------------------------------------------------- the abstract operations
    def const(self, dt, value):
        return constant(np.dtype(dt), value)

    def add(self, dt, x, y):
        return self.b.fadd(x, y) if is_float(dt) else self.b.add(x, y)

    def sub(self, dt, x, y):
        return self.b.fsub(x, y) if is_float(dt) else self.b.sub(x, y)

    def mul(self, dt, x, y):
        return self.b.fmul(x, y) if is_float(dt) else self.b.mul(x, y)

    def div(self, dt, x, y):
        return self.b.fdiv(x, y)

    def neg(self, dt, x):
        return self.b.fneg(x) if is_float(dt) else self.b.neg(x)

    def idiv(self, dt, x, y):
        b = self.b
        q, r = b.sdiv(x, y), b.srem(x, y)
        adj = b.and_(b.icmp_signed("!=", r, ir.Constant(x.type, 0)), b.icmp_signed("<", b.xor(x, y), ir.Constant(x.type, 0)))
        return b.sub(q, b.zext(adj, x.type))

    def imod(self, dt, x, y):
        b = self.b
        zero = ir.Constant(x.type, 0)
        r = b.srem(x, y)
        fix = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("<", b.xor(r, y), zero))
        return b.select(fix, b.add(r, y), r)

    def cmp(self, dt, op, x, y):
        if is_float(dt):
            return self.b.fcmp_unordered(op, x, y) if op == "!=" else self.b.fcmp_ordered(op, x, y)
        if np.dtype(dt) == T.BOOL:
            return self.b.icmp_unsigned(op, x, y)
        return self.b.icmp_signed(op, x, y)

    def select(self, dt, c, x, y):
        return self.b.select(c, x, y)

    def and_(self, dt, x, y):
        return self.b.and_(x, y)

    def or_(self, dt, x, y):
        return self.b.or_(x, y)

    def xor(self, dt, x, y):
        return self.b.xor(x, y)

    def not_(self, dt, x):
        return self.b.not_(x)

    def shl(self, dt, x, y):
        return self.b.shl(x, y)

    def shr(self, dt, x, y):
        return self.b.ashr(x, y)

    def isnan(self, dt, x):
        return self.b.fcmp_unordered("uno", x, x)

    def math(self, name, dt, *xs):
        if name == "fmod":
            return self.b.frem(*xs)
        return self.math_lib.call(self.b, name, lltype(dt), *xs)

    def cast(self, x, src, dst):
        b = self.b
        src, dst = np.dtype(src), np.dtype(dst)
        if src == dst:
            return x
        if dst == T.BOOL:
            if is_float(src):
                return b.fcmp_unordered("une", x, ir.Constant(lltype(src), 0.0))
            return b.icmp_unsigned("!=", x, ir.Constant(lltype(src), 0))
        if src == T.BOOL:
            return b.uitofp(x, lltype(dst)) if is_float(dst) else b.zext(x, lltype(dst))
        if is_float(src) and is_float(dst):
            return b.fpext(x, F64) if dst.itemsize > src.itemsize else b.fptrunc(x, F32)
        if not is_float(src) and not is_float(dst):
            return b.sext(x, lltype(dst)) if dst.itemsize > src.itemsize else b.trunc(x, lltype(dst))
        return b.sitofp(x, lltype(dst)) if is_float(dst) else b.fptosi(x, lltype(dst))

    # -------------------------------------------------------------------------------- for reductions and scatter
    def compare(self, dt, op, x, y):
        return self.cmp(dt, op, x, y)

    def truth(self, dt, x):
        return self.convert(x, dt, T.BOOL)

    def minmax(self, dt, x, y, is_max):
        return S.lower(self, "maximum" if is_max else "minimum", [dt, dt], dt, [x, y], OVERRIDES)

    def op_add(self, dt, x, y):
        return S.lower(self, "add", [dt, dt], dt, [x, y], OVERRIDES)

    def op_multiply(self, dt, x, y):
        return S.lower(self, "multiply", [dt, dt], dt, [x, y], OVERRIDES)
