"""The CPU's scalar operations: lower/scalar.py's abstract operations as llvmlite IRBuilder calls, plus the
native forms LLVM has for some rows (``llvm.maximum``, the vector library's ``logaddexp``). What a primitive
means is the table's business; this module only says how LLVM spells each operation. The loop vectorizer
widens the scalar code it writes.
"""
from __future__ import annotations

import functools

import llvmlite.ir as ir
import numpy as np

from ...ir import types as T
from ...lower import scalar as S

I1, I8, I16, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
F16, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()


def lltype(dt: np.dtype):
    """The register type of ``dt``: float16 values live in float registers (numpy computes them in float32 and
    rounds each result), stored as ``half``."""
    dt = np.dtype(dt)
    if dt == T.BOOL:
        return I1
    if dt.kind == "f":
        return F64 if dt.itemsize == 8 else F32
    return ir.IntType(dt.itemsize * 8)


def memtype(dt: np.dtype):
    dt = np.dtype(dt)
    return I8 if dt == T.BOOL else F16 if dt == T.FLOAT16 else lltype(dt)


def from_memory(b, dt, v):
    """A value loaded as ``memtype(dt)`` in its register form."""
    if dt == T.BOOL:
        return b.trunc(v, I1)
    if dt == T.FLOAT16:
        check_half_support()
        return b.fpext(v, F32)  # exact
    return v


def to_memory(b, dt, v):
    """A register value in its memory form (a float16 value is already rounded: the truncation is exact)."""
    if dt == T.BOOL:
        return b.zext(v, I8)
    if dt == T.FLOAT16:
        check_half_support()
        return b.fptrunc(v, F16)
    return v


def is_float(dt):
    return np.dtype(dt).kind == "f"


def is_unsigned(dt):
    return np.dtype(dt).kind == "u"


def constant(dt, value):
    dt = np.dtype(dt)
    ty = lltype(dt)
    if dt == T.BOOL:
        return ir.Constant(I1, int(bool(value)))
    if dt == T.FLOAT16:
        return ir.Constant(ty, float(np.float16(value)))
    if is_float(dt):
        return ir.Constant(ty, float(value))
    bits = dt.itemsize * 8
    v = int(value) % (1 << bits)  # two's complement: LLVM spells uint64's top half as negative i64
    return ir.Constant(ty, v - (1 << bits) if v >> (bits - 1) else v)


def check_half_support():
    """float16 loads and stores are single instructions with F16C; without it LLVM calls compiler-rt helpers
    that the JIT cannot resolve (a crash), so refuse instead."""
    if "+f16c" not in llvm_features():
        raise TypeError("float16 arrays need a CPU with the F16C instructions (x86-64 since 2012), which this "
                        "machine lacks; convert to float32 first (x.astype(np.float32))")


@functools.lru_cache(maxsize=1)
def llvm_features():
    import llvmlite.binding as llvm
    return llvm.get_host_cpu_features().flatten()


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
        if is_unsigned(dt):
            return b.udiv(x, y)
        q, r = b.sdiv(x, y), b.srem(x, y)
        adj = b.and_(b.icmp_signed("!=", r, ir.Constant(x.type, 0)), b.icmp_signed("<", b.xor(x, y), ir.Constant(x.type, 0)))
        return b.sub(q, b.zext(adj, x.type))

    def imod(self, dt, x, y):
        b = self.b
        if is_unsigned(dt):
            return b.urem(x, y)
        zero = ir.Constant(x.type, 0)
        r = b.srem(x, y)
        fix = b.and_(b.icmp_signed("!=", r, zero), b.icmp_signed("<", b.xor(r, y), zero))
        return b.select(fix, b.add(r, y), r)

    def cmp(self, dt, op, x, y):
        if is_float(dt):
            return self.b.fcmp_unordered(op, x, y) if op == "!=" else self.b.fcmp_ordered(op, x, y)
        if np.dtype(dt) == T.BOOL or is_unsigned(dt):
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
        return self.b.lshr(x, y) if is_unsigned(dt) else self.b.ashr(x, y)

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
        if dst == T.FLOAT16:
            return self._round_to_half(self.cast(x, src, T.FLOAT32) if src != T.FLOAT64 else x)
        if src == T.FLOAT16:
            src = T.FLOAT32  # its register form
        if src == T.BOOL:
            return b.uitofp(x, lltype(dst)) if is_float(dst) else b.zext(x, lltype(dst))
        if is_float(src) and is_float(dst):
            if src == dst:
                return x
            return b.fpext(x, F64) if dst.itemsize > src.itemsize else b.fptrunc(x, F32)
        if not is_float(src) and not is_float(dst):
            if dst.itemsize == src.itemsize:
                return x
            if dst.itemsize < src.itemsize:
                return b.trunc(x, lltype(dst))
            return b.zext(x, lltype(dst)) if is_unsigned(src) else b.sext(x, lltype(dst))
        if is_float(dst):
            return b.uitofp(x, lltype(dst)) if is_unsigned(src) else b.sitofp(x, lltype(dst))
        return b.fptoui(x, lltype(dst)) if is_unsigned(dst) else b.fptosi(x, lltype(dst))

    def _round_to_half(self, x):
        """A float32 or float64 rounded once to float16, in its float32 register form. float64 first rounds to
        float32 *to odd* (the truncation, with the last bit set when inexact): rounding that to 11 bits gives the
        correctly rounded result, where rounding twice to nearest could not. No ``half`` instruction here: LLVM
        folds fptrunc chains into double -> half, a compiler-rt call the JIT cannot resolve."""
        b = self.b
        if x.type == F64:
            f = b.fptrunc(x, F32)
            inexact = b.fcmp_ordered("one", b.fpext(f, F64), x)
            bits = b.bitcast(f, I32)
            odd = b.trunc(bits, I1)
            grow = b.fcmp_ordered("<", self._fabs(b.fpext(f, F64), F64), self._fabs(x, F64))  # |f| < |x|: away
            step = b.select(grow, ir.Constant(I32, 1), ir.Constant(I32, -1))
            fixed = b.bitcast(b.add(bits, step), F32)
            x = b.select(b.and_(inexact, b.not_(odd)), fixed, f)
        return self._round_float_to_half(x)

    def _round_float_to_half(self, x):
        """float32 -> the nearest float16 value (ties to even), as a float32: the mantissa cut to 10 bits in
        integer arithmetic for normal halves, the nearest multiple of 2**-24 below 2**-14 (adding and removing
        0.5 rounds there), infinity from 65520 up, nan kept."""
        b = self.b
        c = lambda v: ir.Constant(I32, v)  # noqa: E731
        bits = b.bitcast(x, I32)
        sign, mag = b.and_(bits, c(-0x80000000)), b.and_(bits, c(0x7FFFFFFF))
        normal = b.and_(b.add(mag, b.add(c(0xFFF), b.and_(b.lshr(mag, c(13)), c(1)))), c(~0x1FFF))
        absx = b.bitcast(mag, F32)
        half = ir.Constant(F32, 0.5)
        tiny = b.bitcast(b.fsub(b.fadd(absx, half), half), I32)
        r = b.select(b.icmp_unsigned("<", mag, c(0x38800000)), tiny, normal)
        r = b.select(b.icmp_unsigned(">=", mag, c(0x477FF000)), c(0x7F800000), r)
        r = b.select(b.icmp_unsigned(">", mag, c(0x7F800000)), mag, r)
        return b.bitcast(b.or_(r, sign), F32)

    def _fabs(self, x, ty):
        return self.math_lib.intrinsic(self.b, "llvm.fabs", ty, x)

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
