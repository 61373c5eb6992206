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

import math
import struct
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np

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


# --------------------------------------------------------------------------------------------------------
# High precision constants (computed at import from exact integer / decimal arithmetic)
# --------------------------------------------------------------------------------------------------------

getcontext().prec = 80


def _pi_fixed(bits: int) -> int:
    """floor(pi * 2**bits) (within a few units) by Machin's formula in integer arithmetic."""
    guard = 64
    one = 1 << (bits + guard)

    def arctan_inv(x: int) -> int:
        total = term = one // x
        x2 = x * x
        k = 1
        sign = -1
        while term:
            term //= x2
            total += sign * (term // (2 * k + 1))
            sign = -sign
            k += 1
        return total

    pi = 16 * arctan_inv(5) - 4 * arctan_inv(239)
    return pi >> guard


_PI_BITS = 1400
_PI_INT = _pi_fixed(_PI_BITS + 8)            # pi * 2**(_PI_BITS+8)
_PI_DEC = Decimal(_PI_INT) / (Decimal(2) ** (_PI_BITS + 8))
_LN2_DEC = Decimal(2).ln()
_LN10_DEC = Decimal(10).ln()


def _f(d) -> float:
    return float(d)


def _dd(d: Decimal):
    hi = float(d)
    lo = float(d - Decimal(hi))
    return hi, lo


def _trunc_bits(v: float, zero_bits: int) -> float:
    b = struct.unpack("<Q", struct.pack("<d", v))[0]
    b &= ~((1 << zero_bits) - 1)
    return struct.unpack("<d", struct.pack("<Q", b))[0]


LOG2E = float(1 / _LN2_DEC)
LN2 = float(_LN2_DEC)
LN2HI = _trunc_bits(float(_LN2_DEC), 11)        # 42 significant bits: k*LN2HI exact for |k| < 2**11
LN2LO = float(_LN2_DEC - Decimal(LN2HI))
IL2H, IL2L = _dd(1 / _LN2_DEC)
IL10H, IL10L = _dd(1 / _LN10_DEC)
PIO2H, PIO2L = _dd(_PI_DEC / 2)
PIH, PIL = _dd(_PI_DEC)
PIO4H, PIO4L = _dd(_PI_DEC / 4)
PIO6H, PIO6L = _dd(_PI_DEC / 6)
PIO3H, PIO3L = _dd(_PI_DEC / 3)
SQRT3 = float(Decimal(3).sqrt())
INVSQRT3 = float(1 / Decimal(3).sqrt())
TAN_PI12 = float(2 - Decimal(3).sqrt())
TAN_5PI12 = float(2 + Decimal(3).sqrt())
SQRT2 = float(Decimal(2).sqrt())

# Taylor coefficients
_EXPM1_Q = [float(Fraction(1, math.factorial(k))) for k in range(2, 14)]           # 1/2! .. 1/13!
_EXP2_C = [float(_LN2_DEC ** k / math.factorial(k)) for k in range(1, 14)]           # ln2^k/k!
_EXP2_C1H, _EXP2_C1L = _dd(_LN2_DEC)
_LOG1P_P = [float(Fraction((-1) ** (k + 1), k)) for k in range(3, 12)]               # r^3/3 - r^4/4 ...
_SIN_S = [float(Fraction((-1) ** k, math.factorial(2 * k + 1))) for k in range(1, 11)]   # -1/3! ...
_COS_C = [float(Fraction((-1) ** k, math.factorial(2 * k))) for k in range(2, 11)]        # 1/4! ...
_ATAN_P = [float(Fraction((-1) ** k, 2 * k + 1)) for k in range(1, 17)]             # -1/3, 1/5 ...
_SINH_S = [float(Fraction(1, math.factorial(2 * k + 1))) for k in range(1, 11)]    # 1/3!, 1/5! ...
_COSH_C = [float(Fraction(1, math.factorial(2 * k))) for k in range(2, 12)]        # 1/4!, 1/6! ...


def _log_table():
    """129 entries: for z ~ 1 + j/180, j in [-53, 75]: invc (10-bit), -log(invc) as double-double."""
    invc, lh, ll = [], [], []
    for j in range(-53, 76):
        c = 1 + j / 180
        if j == 0:
            ic = 1.0
        else:
            ic = 1 / c
            e = math.frexp(ic)[1]
            ic = round(ic * 2 ** (10 - e)) / 2 ** (10 - e)      # 10 significant bits
        lg = -Decimal(ic).ln() if j else Decimal(0)
        h, l = _dd(lg)
        invc.append(ic)
        lh.append(h)
        ll.append(l)
    return invc, lh, ll


def _two_over_pi_table():
    """Payne-Hanek table: for each row ex in [0, 1023] four doubles T0..T3 holding consecutive 53-bit
    chunks of the bits of 2/pi (bits j in [ex-53+53i, ex-1+53i]) scaled by 2**ex, so that for
    x = m * 2**ex (m in [1, 2)) x*(2/pi) mod 4 == sum_i m*T_i mod 4 (chunks before j = ex-53 contribute
    multiples of 4)."""
    nbits = 1400
    # floor(2/pi * 2**nbits):  2**(nbits+1) / pi
    B = (1 << (nbits + 1 + _PI_BITS + 8)) // _PI_INT
    rows = []
    for ex in range(0, 1024):
        for i in range(4):
            a = ex - 53 + 53 * i          # first bit index (weight 2**-a)
            last = a + 52
            if last < 1:
                C = 0
            else:
                C = (B >> (nbits - last)) & ((1 << 53) - 1)
            rows.append(float(C) * 2.0 ** (1 - 53 * i))
    return rows


_LOG_INVC, _LOG_LH, _LOG_LL = _log_table()
_PH_TABLE = _two_over_pi_table()


def _cbrt_init_poly():
    # least-squares polynomial for cbrt on [1, 8) (initial guess before Halley/Newton steps)
    ys = np.cos(np.linspace(0, np.pi, 400)) * 3.5 + 4.5
    coef = np.polynomial.polynomial.polyfit(ys, np.cbrt(ys), 5)
    return [float(c) for c in coef]


_CBRT_P = _cbrt_init_poly()


# --------------------------------------------------------------------------------------------------------
# A tiny SSA text builder
# --------------------------------------------------------------------------------------------------------

def _hex(v: float) -> str:
    return "0x%016X" % struct.unpack("<Q", struct.pack("<d", float(v)))[0]


INF = float("inf")
NAN = float("nan")


class _B:
    def __init__(self):
        self.lines: list[str] = []
        self.n = 0
        self.intrinsics: set[str] = set()
        self.tables: set[str] = set()

    # plumbing
    def _t(self) -> str:
        self.n += 1
        return f"%t{self.n}"

    def emit(self, rhs: str) -> str:
        t = self._t()
        self.lines.append(f"  {t} = {rhs}")
        return t

    @staticmethod
    def d(a) -> str:
        if isinstance(a, str):
            return a
        return _hex(a)

    def _intr(self, name: str, ret: str, args: list[tuple[str, str]]) -> str:
        self.intrinsics.add(f"declare {ret} @{name}({', '.join(t for t, _ in args)})")
        return self.emit(f"call {ret} @{name}({', '.join(f'{t} {v}' for t, v in args)})")

    # double arithmetic
    def add(self, a, b): return self.emit(f"fadd double {self.d(a)}, {self.d(b)}")
    def sub(self, a, b): return self.emit(f"fsub double {self.d(a)}, {self.d(b)}")
    def mul(self, a, b): return self.emit(f"fmul double {self.d(a)}, {self.d(b)}")
    def div(self, a, b): return self.emit(f"fdiv double {self.d(a)}, {self.d(b)}")
    def neg(self, a): return self.emit(f"fneg double {self.d(a)}")

    def fma(self, a, b, c):
        return self._intr("llvm.fma.f64", "double", [("double", self.d(a)), ("double", self.d(b)),
                                                    ("double", self.d(c))])

    def _u(self, name, a):
        return self._intr(f"llvm.{name}.f64", "double", [("double", self.d(a))])

    def fabs(self, a): return self._u("fabs", a)
    def floor(self, a): return self._u("floor", a)
    def rint(self, a): return self._u("rint", a)
    def sqrt(self, a): return self._u("sqrt", a)

    def _bin(self, name, a, b):
        return self._intr(f"llvm.{name}.f64", "double", [("double", self.d(a)), ("double", self.d(b))])

    def copysign(self, a, b): return self._bin("copysign", a, b)
    def minnum(self, a, b): return self._bin("minnum", a, b)
    def maxnum(self, a, b): return self._bin("maxnum", a, b)

    def clamp(self, a, lo, hi):
        return self.minnum(self.maxnum(a, lo), hi)

    def fcmp(self, pred, a, b): return self.emit(f"fcmp {pred} double {self.d(a)}, {self.d(b)}")
    def isnan(self, a): return self.fcmp("uno", a, a)

    def sel(self, c, a, b, ty="double"):
        if ty == "double":
            a, b = self.d(a), self.d(b)
        return self.emit(f"select i1 {c}, {ty} {a}, {ty} {b}")

    def and1(self, a, b): return self.emit(f"and i1 {a}, {b}")
    def or1(self, a, b): return self.emit(f"or i1 {a}, {b}")
    def xor1(self, a, b): return self.emit(f"xor i1 {a}, {b}")
    def not1(self, a): return self.emit(f"xor i1 {a}, true")

    # integers (i64)
    def iop(self, op, a, b): return self.emit(f"{op} i64 {a}, {b}")
    def icmp(self, pred, a, b): return self.emit(f"icmp {pred} i64 {a}, {b}")
    def smax(self, a, b): return self._intr("llvm.smax.i64", "i64", [("i64", str(a)), ("i64", str(b))])
    def smin(self, a, b): return self._intr("llvm.smin.i64", "i64", [("i64", str(a)), ("i64", str(b))])
    def bits(self, a): return self.emit(f"bitcast double {self.d(a)} to i64")
    def dbl(self, i): return self.emit(f"bitcast i64 {i} to double")
    def fptosi(self, a): return self.emit(f"fptosi double {self.d(a)} to i64")
    def sitofp(self, i): return self.emit(f"sitofp i64 {i} to double")
    def zext(self, c): return self.emit(f"zext i1 {c} to i64")

    def load(self, table: str, idx) -> str:
        self.tables.add(table)
        p = self.emit(f"getelementptr inbounds double, ptr @{table}, i64 {idx}")
        return self.emit(f"load double, ptr {p}, align 8")

    # composite helpers --------------------------------------------------------------------------------
    def horner(self, x, coeffs):
        """coeffs[0] + x*(coeffs[1] + x*(...))"""
        acc = self.d(coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = self.fma(acc, x, c)
        return acc

    def two_sum(self, a, b):
        s = self.add(a, b)
        bb = self.sub(s, a)
        err = self.add(self.sub(a, self.sub(s, bb)), self.sub(b, bb))
        return s, err

    def fast_two_sum(self, a, b):
        """|a| >= |b| (or a == 0)"""
        s = self.add(a, b)
        err = self.sub(b, self.sub(s, a))
        return s, err

    def two_prod(self, a, b):
        p = self.mul(a, b)
        return p, self.fma(a, b, self.neg(p))

    def pow2i(self, k):
        """2**k as double for integer (i64) k in [-1022, 1023]."""
        return self.dbl(self.iop("shl", self.iop("add", k, 1023), 52))

    def signbit(self, a):
        return self.icmp("slt", self.bits(a), 0)


# --------------------------------------------------------------------------------------------------------
# Algorithm cores (emit inline code, operate on double SSA values)
# --------------------------------------------------------------------------------------------------------

def _exp_reduce(b: _B, x, extra_lo=None):
    """x finite, |x| <= ~1300.  Returns n (double), r_hi, r_lo with x + extra_lo = n*ln2 + r_hi + r_lo."""
    n = b.rint(b.mul(x, LOG2E))
    r1 = b.fma(b.neg(n), LN2HI, x)           # exact
    t = b.mul(n, LN2LO)
    rh = b.sub(r1, t)
    rl = b.sub(b.sub(r1, rh), t)
    if extra_lo is not None:
        rl = b.add(rl, extra_lo)
    return n, rh, rl


def _expm1_parts(b: _B, rh, rl):
    """exp(rh + rl) - 1 == rh + t (unevaluated) for |rh| <= ~0.35, |rl| tiny."""
    r2 = b.mul(rh, rh)
    q = b.horner(rh, _EXPM1_Q)
    p = b.mul(r2, q)
    em0 = b.add(rh, p)
    return b.add(p, b.fma(rl, em0, rl))


def _expm1_poly(b: _B, rh, rl):
    """exp(rh + rl) - 1 for |rh| <= ~0.35, |rl| tiny."""
    return b.add(rh, _expm1_parts(b, rh, rl))


def _exp_finish(b: _B, eh, et, n, offset=0):
    """(1 + eh + et) * 2**(n + offset) with one rounding of the sum and correct over/underflow."""
    hi, e = b.fast_two_sum(1.0, eh)
    p = b.add(hi, b.add(e, et))
    ni = b.fptosi(n)
    if offset:
        ni = b.iop("add", ni, offset)
    n1 = b.iop("ashr", ni, 1)
    n2 = b.iop("sub", ni, n1)
    return b.mul(b.mul(p, b.pow2i(n1)), b.pow2i(n2))


def _scale_split(b: _B, p_em, n, offset=0):
    """(1 + em) * 2**(n + offset) with correct overflow/underflow, |n| <= ~1800."""
    ni = b.fptosi(n)
    if offset:
        ni = b.iop("add", ni, offset)
    n1 = b.iop("ashr", ni, 1)
    n2 = b.iop("sub", ni, n1)
    s1 = b.pow2i(n1)
    s2 = b.pow2i(n2)
    return b.mul(b.fma(p_em, s1, s1), s2)


def _exp_core(b: _B, x, lo=None, offset=0):
    """exp(x [+ lo]) * 2**offset for any non-nan x (clamped internally)."""
    xc = b.clamp(x, -1300.0, 1300.0)
    if lo is not None:
        lo = b.sel(b.fcmp("oeq", x, xc), lo, 0.0)
    n, rh, rl = _exp_reduce(b, xc, lo)
    return _exp_finish(b, rh, _expm1_parts(b, rh, rl), n, offset)


def _log_core(b: _B, x, koff=None):
    """log(x) (+ koff*ln2) as an unevaluated double-double (hi, lo) for finite x > 0 (subnormals ok).
    Callers must sanitize x (replace invalid values by 1.0)."""
    sub = b.fcmp("olt", x, 2.2250738585072014e-308)
    xs = b.sel(sub, b.mul(x, 2.0 ** 54), x)
    bi = b.bits(xs)
    e = b.iop("sub", b.iop("lshr", bi, 52), 1023)
    e = b.iop("sub", e, b.emit(f"select i1 {sub}, i64 54, i64 0"))
    mb = b.iop("or", b.iop("and", bi, 0x000FFFFFFFFFFFFF), 0x3FF0000000000000)
    z = b.dbl(mb)
    big = b.fcmp("oge", z, SQRT2)
    z = b.sel(big, b.mul(z, 0.5), z)
    e = b.iop("add", e, b.zext(big))
    k = b.sitofp(e)
    if koff is not None:
        k = b.add(k, koff)
    j = b.fptosi(b.rint(b.fma(z, 180.0, -180.0)))
    idx = b.smin(b.smax(b.iop("add", j, 53), 0), 128)
    invc = b.load("tj_vm_log_invc", idx)
    lch = b.load("tj_vm_log_lh", idx)
    lcl = b.load("tj_vm_log_ll", idx)
    ph, pl = b.two_prod(z, invc)
    rh = b.sub(ph, 1.0)                       # exact (Sterbenz)
    rl = pl
    hr = b.mul(rh, 0.5)
    h2 = b.mul(hr, rh)
    h2l = b.fma(hr, rh, b.neg(h2))
    ah, al = b.two_sum(b.mul(k, LN2HI), lch)
    s1, e1 = b.two_sum(ah, rh)
    s2, e2 = b.two_sum(s1, b.neg(h2))
    rr = b.mul(rh, rh)
    tail = b.mul(b.mul(rr, rh), b.horner(rh, _LOG1P_P))
    lo = b.add(al, e1)
    lo = b.add(lo, e2)
    lo = b.sub(lo, h2l)
    lo = b.fma(k, LN2LO, lo)
    lo = b.add(lo, lcl)
    lo = b.add(lo, rl)
    lo = b.fma(b.neg(rh), rl, lo)
    lo = b.add(lo, tail)
    return s2, lo


def _log1p_dd(b: _B, y):
    """log(1 + y) as (hi, lo) for y > -1 finite (sanitized by caller)."""
    u, ue = b.two_sum(1.0, y)
    hi, lo = _log_core(b, u)
    lo = b.add(lo, b.div(ue, u))
    return hi, lo


def _atan_core(b: _B, n, d):
    """atan(n/d) as (hi, lo) for finite n, d >= 0, not both zero."""
    c1 = b.fcmp("ogt", n, b.mul(d, TAN_PI12))
    c2 = b.fcmp("ogt", n, d)
    c3 = b.fcmp("ogt", n, b.mul(d, TAN_5PI12))
    ps = b.sel(c3, 0.0, 1.0)
    q = b.sel(c3, 1.0, b.sel(c2, SQRT3, b.sel(c1, INVSQRT3, 0.0)))
    ah = b.sel(c3, PIO2H, b.sel(c2, PIO3H, b.sel(c1, PIO6H, 0.0)))
    al = b.sel(c3, PIO2L, b.sel(c2, PIO3L, b.sel(c1, PIO6L, 0.0)))
    num = b.fma(b.neg(d), q, b.mul(n, ps))
    den = b.fma(n, q, b.mul(d, ps))
    u = b.div(num, den)
    z = b.mul(u, u)
    p = b.horner(z, _ATAN_P)
    atn = b.fma(b.mul(u, z), p, u)
    return ah, b.add(al, atn)


def _pi_minus(b: _B, hi, lo):
    s, e = b.two_sum(PIH, b.neg(hi))
    return b.add(s, b.add(e, b.sub(PIL, lo)))


def _trig_reduce(b: _B, ax):
    """Payne-Hanek reduction of finite ax >= 0: returns (rh, rl, quadrant i64 in 0..3) with
    ax = quadrant*pi/2 + rh + rl (mod 2pi), |rh| <= ~pi/4."""
    bi = b.bits(ax)
    be = b.iop("lshr", bi, 52)
    row = b.smin(b.smax(b.iop("sub", be, 1023), 0), 1023)
    mn = b.dbl(b.iop("or", b.iop("and", bi, 0x000FFFFFFFFFFFFF), 0x3FF0000000000000))
    m = b.sel(b.icmp("sge", be, 1023), mn, ax)
    base = b.iop("shl", row, 2)
    T = [b.load("tj_vm_2opi", base if i == 0 else b.iop("add", base, i)) for i in range(4)]
    p0h, p0l = b.two_prod(m, T[0])
    p1h, p1l = b.two_prod(m, T[1])
    p2h, p2l = b.two_prod(m, T[2])
    p3h = b.mul(m, T[3])

    def mod4(v):
        return b.fma(b.rint(b.mul(v, 0.25)), -4.0, v)

    a = mod4(p0h)
    c = mod4(p0l)
    d = mod4(p1h)
    s, e1 = b.two_sum(a, c)
    s = mod4(s)
    s, e2 = b.two_sum(s, d)
    s = mod4(s)
    low = b.add(p2l, p3h)
    low = b.add(low, b.add(e1, e2))
    t, et = b.two_sum(p1l, p2h)
    low = b.add(b.add(low, et), t)
    q = b.rint(s)
    f0 = b.sub(s, q)
    fh, fl = b.two_sum(f0, low)
    rh = b.mul(fh, PIO2H)
    rl = b.add(b.fma(fh, PIO2H, b.neg(rh)), b.fma(fh, PIO2L, b.mul(fl, PIO2H)))
    rh2, rl2 = b.fast_two_sum(rh, rl)
    qi = b.iop("and", b.fptosi(q), 3)
    return rh2, rl2, qi


def _sincos_poly(b: _B, rh, rl):
    """sin and cos of rh + rl (|rh| <= ~pi/4) each as (hi, lo)."""
    z = b.mul(rh, rh)
    zl = b.fma(rh, rh, b.neg(z))
    # sin
    sp = b.horner(z, _SIN_S)
    slo = b.fma(b.mul(rh, z), sp, rl)
    sh, sl = b.fast_two_sum(rh, slo)
    # cos
    hz = b.mul(z, 0.5)
    w = b.sub(1.0, hz)
    cp = b.horner(z, _COS_C)
    clo = b.sub(b.sub(1.0, w), hz)
    tail = b.fma(b.mul(z, z), cp, b.fma(b.neg(rh), rl, b.mul(zl, -0.5)))
    clo = b.add(clo, tail)
    ch, cl = b.fast_two_sum(w, clo)
    return (sh, sl), (ch, cl)


# --------------------------------------------------------------------------------------------------------
# Public functions (float64 bodies).  Each takes the builder and argument names, returns result name.
# --------------------------------------------------------------------------------------------------------

def _f_exp(b, x):
    r = _exp_core(b, x)
    return b.sel(b.isnan(x), x, r)


def _f_exp2(b, x):
    xc = b.clamp(x, -1200.0, 1200.0)
    n = b.rint(xc)
    r = b.sub(xc, n)
    q = b.horner(r, _EXP2_C[1:])
    inner = b.fma(r, q, _EXP2_C1L)
    ph, pl = b.two_prod(r, _EXP2_C1H)
    res = _exp_finish(b, ph, b.fma(r, inner, pl), n)
    return b.sel(b.isnan(x), x, res)


def _f_expm1(b, x):
    xc = b.clamp(x, -45.0, 712.0)
    n, rh, rl = _exp_reduce(b, xc)
    et = _expm1_parts(b, rh, rl)
    ni = b.fptosi(n)
    h = b.icmp("sgt", ni, 1000)
    n1 = b.iop("sub", ni, b.emit(f"select i1 {h}, i64 8, i64 0"))
    s1 = b.pow2i(n1)
    cst = b.sel(h, 0.0, 1.0)
    s2 = b.sel(h, 256.0, 1.0)
    sA, sE = b.two_sum(b.sub(s1, cst), b.mul(s1, rh))
    res = b.mul(b.add(sA, b.fma(s1, et, sE)), s2)
    tiny = b.fcmp("olt", b.fabs(x), 2.0 ** -54)
    res = b.sel(tiny, x, res)
    return b.sel(b.isnan(x), x, res)


def _log_specials(b, x, res, zero_at=0.0):
    """x == zero_at -> -inf, x < zero_at -> nan, x == inf -> inf, nan -> nan."""
    res = b.sel(b.fcmp("oeq", x, INF), INF, res)
    res = b.sel(b.fcmp("olt", x, zero_at), NAN, res)
    res = b.sel(b.fcmp("oeq", x, zero_at), -INF, res)
    return b.sel(b.isnan(x), x, res)


def _sanitize_pos(b, x):
    ok = b.and1(b.fcmp("ogt", x, 0.0), b.fcmp("olt", x, INF))
    return b.sel(ok, x, 1.0)


def _f_log(b, x):
    hi, lo = _log_core(b, _sanitize_pos(b, x))
    return _log_specials(b, x, b.add(hi, lo))


def _dd_mul_const(b, hi, lo, ch, cl):
    ph, pl = b.two_prod(hi, ch)
    pl = b.add(pl, b.fma(hi, cl, b.mul(lo, ch)))
    return b.add(ph, pl)


def _f_log2(b, x):
    hi, lo = _log_core(b, _sanitize_pos(b, x))
    return _log_specials(b, x, _dd_mul_const(b, hi, lo, IL2H, IL2L))


def _f_log10(b, x):
    hi, lo = _log_core(b, _sanitize_pos(b, x))
    return _log_specials(b, x, _dd_mul_const(b, hi, lo, IL10H, IL10L))


def _f_log1p(b, x):
    ok = b.and1(b.fcmp("ogt", x, -1.0), b.fcmp("olt", x, INF))
    y = b.sel(ok, x, 0.0)
    hi, lo = _log1p_dd(b, y)
    res = _log_specials(b, x, b.add(hi, lo), zero_at=-1.0)
    tiny = b.fcmp("olt", b.fabs(x), 2.0 ** -54)
    return b.sel(tiny, x, res)


def _f_sinh(b, x):
    a = b.fabs(x)
    ac = b.minnum(a, 800.0)
    # small: Taylor
    z = b.mul(a, a)
    small = b.fma(b.mul(a, z), b.horner(z, _SINH_S), a)
    # mid (1 <= a <= 22): e/2 as double-double, minus 1/(2e)
    n, rh, rl = _exp_reduce(b, ac)
    em = _expm1_poly(b, rh, rl)
    ni = b.fptosi(n)
    nm = b.smin(b.iop("sub", ni, 1), 60)
    s = b.pow2i(nm)
    th, tl = b.fast_two_sum(s, b.mul(s, em))
    inv = b.div(0.25, th)
    mid_s = b.add(th, b.sub(tl, inv))
    mid_c = b.add(th, b.add(tl, inv))
    large = _scale_split(b, em, n, offset=-1)
    is_small = b.fcmp("olt", a, 1.0)
    is_large = b.fcmp("ogt", a, 22.0)
    return a, small, mid_s, mid_c, large, is_small, is_large


def _f_sinh_pub(b, x):
    a, small, mid_s, mid_c, large, is_small, is_large = _f_sinh(b, x)
    res = b.sel(is_small, small, b.sel(is_large, large, mid_s))
    res = b.copysign(res, x)
    return b.sel(b.isnan(x), x, res)


def _f_cosh(b, x):
    a, _small, mid_s, mid_c, large, is_small, is_large = _f_sinh(b, x)
    z = b.mul(a, a)
    small = b.add(1.0, b.fma(b.mul(z, z), b.horner(z, _COSH_C), b.mul(z, 0.5)))
    res = b.sel(is_small, small, b.sel(is_large, large, mid_c))
    return b.sel(b.isnan(x), x, res)


def _f_tanh(b, x):
    a = b.fabs(x)
    a2 = b.mul(b.minnum(a, 20.0), 2.0)
    n, rh, rl = _exp_reduce(b, a2)
    em = _expm1_poly(b, rh, rl)
    ni = b.fptosi(n)
    s = b.pow2i(ni)
    e2 = b.fma(s, em, b.sub(s, 1.0))          # expm1(2a)
    dh, dl = b.two_sum(e2, 2.0)
    qt = b.div(e2, dh)
    corr = b.div(b.fma(b.neg(qt), dl, b.fma(b.neg(qt), dh, e2)), dh)
    res = b.add(qt, corr)
    tiny = b.fcmp("olt", a, 2.0 ** -28)
    res = b.sel(tiny, a, res)
    res = b.copysign(res, x)
    return b.sel(b.isnan(x), x, res)


def _trig_common(b, x):
    ax = b.fabs(x)
    ok = b.fcmp("olt", ax, INF)
    axs = b.sel(ok, ax, 0.0)
    rh, rl, qi = _trig_reduce(b, axs)
    (sh, sl), (ch, cl) = _sincos_poly(b, rh, rl)
    return ax, ok, qi, (sh, sl), (ch, cl)


def _f_sin(b, x):
    ax, ok, qi, (sh, sl), (ch, cl) = _trig_common(b, x)
    odd = b.icmp("ne", b.iop("and", qi, 1), 0)
    neg = b.icmp("ne", b.iop("and", qi, 2), 0)
    v = b.sel(odd, b.add(ch, cl), b.add(sh, sl))
    v = b.sel(b.xor1(neg, b.signbit(x)), b.neg(v), v)
    v = b.sel(b.fcmp("olt", ax, 2.0 ** -27), x, v)
    return b.sel(ok, v, b.sub(x, x))


def _f_cos(b, x):
    ax, ok, qi, (sh, sl), (ch, cl) = _trig_common(b, x)
    odd = b.icmp("ne", b.iop("and", qi, 1), 0)
    q12 = b.icmp("ne", b.iop("and", b.iop("add", qi, 1), 2), 0)     # quadrants 1, 2 negative
    v = b.sel(odd, b.add(sh, sl), b.add(ch, cl))
    v = b.sel(q12, b.neg(v), v)
    return b.sel(ok, v, b.sub(x, x))


def _f_tan(b, x):
    ax, ok, qi, (sh, sl), (ch, cl) = _trig_common(b, x)
    odd = b.icmp("ne", b.iop("and", qi, 1), 0)
    nh = b.sel(odd, ch, sh)
    nl = b.sel(odd, cl, sl)
    dh = b.sel(odd, b.neg(sh), ch)
    dl = b.sel(odd, b.neg(sl), cl)
    q0 = b.div(nh, dh)
    r = b.fma(b.neg(q0), dh, nh)
    r = b.add(r, b.fma(b.neg(q0), dl, nl))
    v = b.add(q0, b.div(r, dh))
    v = b.sel(b.signbit(x), b.neg(v), v)
    v = b.sel(b.fcmp("olt", ax, 2.0 ** -27), x, v)
    return b.sel(ok, v, b.sub(x, x))


def _f_arctan(b, x):
    n = b.minnum(b.fabs(x), 1e300)
    hi, lo = _atan_core(b, n, 1.0)
    res = b.copysign(b.add(hi, lo), x)
    return b.sel(b.isnan(x), x, res)


def _f_arctan2(b, y, x):
    ax = b.fabs(x)
    ay = b.fabs(y)
    fin = b.and1(b.fcmp("olt", ax, INF), b.fcmp("olt", ay, INF))
    mx = b.maxnum(ax, ay)
    be = b.iop("lshr", b.bits(mx), 52)
    sc = b.pow2i(b.smin(b.smax(b.iop("sub", 1023, be), -1000), 1000))
    nz = b.fcmp("one", ay, 0.0)
    ok = b.and1(fin, nz)
    n = b.sel(ok, b.mul(ay, sc), 1.0)
    d = b.sel(ok, b.mul(ax, sc), 1.0)
    hi, lo = _atan_core(b, n, d)
    # tiny ratio: atan(t) == t, computed unscaled so that an underflowing result is rounded once
    tinyr = b.fcmp("olt", ay, b.mul(ax, 2.0 ** -30))
    hi = b.sel(tinyr, b.div(ay, ax), hi)
    lo = b.sel(tinyr, 0.0, lo)
    # special bases
    yinf = b.fcmp("oeq", ay, INF)
    xinf = b.fcmp("oeq", ax, INF)
    both = b.and1(yinf, xinf)
    hi = b.sel(both, PIO4H, b.sel(yinf, PIO2H, b.sel(xinf, 0.0, hi)))
    lo = b.sel(both, PIO4L, b.sel(yinf, PIO2L, b.sel(xinf, 0.0, lo)))
    zero_y = b.fcmp("oeq", ay, 0.0)
    hi = b.sel(zero_y, 0.0, hi)
    lo = b.sel(zero_y, 0.0, lo)
    res = b.sel(b.signbit(x), _pi_minus(b, hi, lo), b.add(hi, lo))
    res = b.copysign(res, y)
    return b.sel(b.or1(b.isnan(x), b.isnan(y)), b.add(x, y), res)


def _unit_circle(b, x):
    """(|x| <= 1, |x| clamped into the domain, sqrt(1 - x^2)) for arcsin/arccos, which are atan2 of these."""
    ax = b.fabs(x)
    ok = b.fcmp("ole", ax, 1.0)
    axs = b.sel(ok, ax, 0.0)
    return ok, axs, b.sqrt(b.fma(b.neg(axs), axs, 1.0))


def _domain_checked(b, x, ok, res):
    return b.sel(b.isnan(x), x, b.sel(ok, res, NAN))


def _f_arcsin(b, x):
    ok, axs, root = _unit_circle(b, x)
    hi, lo = _atan_core(b, axs, root)
    return _domain_checked(b, x, ok, b.copysign(b.add(hi, lo), x))


def _f_arccos(b, x):
    ok, axs, root = _unit_circle(b, x)
    hi, lo = _atan_core(b, root, axs)
    return _domain_checked(b, x, ok, b.sel(b.fcmp("olt", x, 0.0), _pi_minus(b, hi, lo), b.add(hi, lo)))


def _log_of(b, arg, ue=None, koff=None):
    hi, lo = _log_core(b, arg, koff)
    if ue is not None:
        lo = b.add(lo, b.div(ue, arg))
    return b.add(hi, lo)


def _f_arcsinh(b, x):
    a = b.fabs(x)
    ac = b.sel(b.fcmp("olt", a, INF), a, 1.0)   # inf/nan handled by selects
    a2 = b.mul(ac, ac)
    sq = b.sqrt(b.add(a2, 1.0))
    y = b.add(ac, b.div(a2, b.add(sq, 1.0)))   # log1p argument (a < 2)
    u, ue = b.two_sum(1.0, y)
    zmid = b.fma(ac, 2.0, b.div(1.0, b.add(sq, ac)))
    r_small = b.fcmp("olt", ac, 2.0)
    r_large = b.fcmp("ogt", ac, 2.0 ** 28)
    arg = b.sel(r_small, u, b.sel(r_large, ac, zmid))
    ue = b.sel(r_small, ue, 0.0)
    koff = b.sel(r_large, 1.0, 0.0)
    arg = b.sel(b.isnan(arg), 1.0, arg)
    res = _log_of(b, arg, ue, koff)
    res = b.sel(b.fcmp("olt", a, 2.0 ** -28), a, res)
    res = b.sel(b.fcmp("oeq", a, INF), INF, res)
    res = b.copysign(res, x)
    return b.sel(b.isnan(x), x, res)


def _f_arccosh(b, x):
    ok = b.and1(b.fcmp("oge", x, 1.0), b.fcmp("olt", x, INF))
    xs = b.sel(ok, x, 1.0)
    t = b.sub(xs, 1.0)
    y = b.add(t, b.sqrt(b.fma(t, t, b.mul(t, 2.0))))
    u, ue = b.two_sum(1.0, y)
    xm = b.minnum(xs, 2.0 ** 40)
    zmid = b.sub(b.mul(xs, 2.0), b.div(1.0, b.add(xm, b.sqrt(b.fma(xm, xm, -1.0)))))
    r_small = b.fcmp("olt", xs, 2.0)
    r_large = b.fcmp("ogt", xs, 2.0 ** 28)
    arg = b.sel(r_small, u, b.sel(r_large, xs, zmid))
    ue = b.sel(r_small, ue, 0.0)
    koff = b.sel(r_large, 1.0, 0.0)
    res = _log_of(b, arg, ue, koff)
    res = b.sel(b.fcmp("oeq", x, INF), INF, res)
    res = b.sel(b.fcmp("olt", x, 1.0), NAN, res)
    return b.sel(b.isnan(x), x, res)


def _f_arctanh(b, x):
    a = b.fabs(x)
    ok = b.fcmp("olt", a, 1.0)
    as_ = b.sel(ok, a, 0.0)
    om = b.sub(1.0, as_)
    y_big = b.div(b.mul(as_, 2.0), om)
    t2 = b.mul(as_, 2.0)
    y_small = b.fma(t2, b.div(as_, om), t2)
    y = b.sel(b.fcmp("olt", as_, 0.5), y_small, y_big)
    hi, lo = _log1p_dd(b, y)
    res = b.mul(b.add(hi, lo), 0.5)
    res = b.sel(b.fcmp("olt", a, 2.0 ** -28), a, res)
    res = b.sel(b.fcmp("oeq", a, 1.0), INF, res)
    res = b.sel(b.fcmp("ogt", a, 1.0), NAN, res)
    res = b.copysign(res, x)
    return b.sel(b.isnan(x), x, res)


def _f_cbrt(b, x):
    a = b.fabs(x)
    ok = b.and1(b.fcmp("ogt", a, 0.0), b.fcmp("olt", a, INF))
    a = b.sel(ok, a, 1.0)
    sub = b.fcmp("olt", a, 2.2250738585072014e-308)
    a = b.sel(sub, b.mul(a, 2.0 ** 54), a)
    bi = b.bits(a)
    e = b.iop("sub", b.iop("lshr", bi, 52), 1023)
    e = b.iop("sub", e, b.emit(f"select i1 {sub}, i64 54, i64 0"))
    m = b.dbl(b.iop("or", b.iop("and", bi, 0x000FFFFFFFFFFFFF), 0x3FF0000000000000))
    ed = b.sitofp(e)
    q = b.floor(b.fma(ed, 1.0 / 3.0, 1e-6))
    r = b.fma(q, -3.0, ed)
    y = b.mul(m, b.sel(b.fcmp("oeq", r, 0.0), 1.0, b.sel(b.fcmp("oeq", r, 1.0), 2.0, 4.0)))
    t = b.horner(y, _CBRT_P)
    for _ in range(2):   # Halley
        t3 = b.mul(b.mul(t, t), t)
        t = b.mul(t, b.div(b.fma(y, 2.0, t3), b.fma(t3, 2.0, y)))
    # final Newton step with an accurate residual
    t2, t2l = b.two_prod(t, t)
    t3, t3l = b.two_prod(t2, t)
    t3l = b.fma(t2l, t, t3l)
    res = b.add(b.sub(t3, y), t3l)
    t = b.sub(t, b.div(res, b.mul(t2, 3.0)))
    v = b.mul(t, b.pow2i(b.fptosi(q)))
    v = b.copysign(v, x)
    return b.sel(ok, v, b.add(x, x))


def _f_hypot(b, x, y):
    a = b.fabs(x)
    c = b.fabs(y)
    mx = b.maxnum(a, c)
    mn = b.minnum(a, c)
    sc = b.sel(b.fcmp("ogt", mx, 2.0 ** 500), 2.0 ** -600,
               b.sel(b.fcmp("olt", mx, 2.0 ** -500), 2.0 ** 600, 1.0))
    inv = b.sel(b.fcmp("ogt", mx, 2.0 ** 500), 2.0 ** 600,
                b.sel(b.fcmp("olt", mx, 2.0 ** -500), 2.0 ** -600, 1.0))
    ms = b.mul(mx, sc)
    ns = b.mul(mn, sc)
    h = b.mul(b.sqrt(b.fma(ms, ms, b.mul(ns, ns))), inv)
    h = b.sel(b.or1(b.isnan(x), b.isnan(y)), b.add(x, y), h)
    anyinf = b.or1(b.fcmp("oeq", a, INF), b.fcmp("oeq", c, INF))
    return b.sel(anyinf, INF, h)


def _log1p_exp_neg(b, dt):
    """log1p(exp(-dt)) for dt >= 0 (any dt: sanitized)."""
    ok = b.fcmp("oge", dt, 0.0)
    dts = b.sel(ok, dt, 0.0)
    e = _exp_core(b, b.neg(dts))
    hi, lo = _log1p_dd(b, e)
    return b.add(hi, lo)


def _f_logaddexp(b, x, y):
    tmp = b.sub(x, y)
    L = _log1p_exp_neg(b, b.fabs(tmp))
    r1 = b.sel(b.fcmp("ogt", tmp, 0.0), b.add(x, L), b.add(y, L))
    r2 = b.sel(b.isnan(tmp), tmp, r1)
    return b.sel(b.fcmp("oeq", x, y), b.add(x, LN2), r2)


def _f_power(b, x, y):
    ax = b.fabs(x)
    hi, lo = _log_core(b, _sanitize_pos(b, ax))
    hi, lo = b.fast_two_sum(hi, lo)
    ph, pl = b.two_prod(y, hi)
    pl = b.fma(y, lo, pl)
    okp = b.fcmp("olt", b.fabs(ph), 1200.0)
    phc = b.sel(okp, ph, b.sel(b.fcmp("ogt", ph, 0.0), 1300.0, -1300.0))
    plc = b.sel(okp, pl, 0.0)
    n, rh, rl = _exp_reduce(b, phc, plc)
    res = _exp_finish(b, rh, _expm1_parts(b, rh, rl), n)
    # integer-ness of y
    fy = b.floor(y)
    yint = b.fcmp("oeq", fy, y)
    hy = b.mul(y, 0.5)
    yodd = b.and1(b.and1(yint, b.fcmp("une", b.floor(hy), hy)), b.fcmp("olt", b.fabs(y), 2.0 ** 53))
    xneg = b.fcmp("olt", x, 0.0)
    res = b.sel(b.and1(xneg, yodd), b.neg(res), res)
    res = b.sel(b.and1(xneg, b.not1(yint)), NAN, res)
    # x == +-0 or +-inf
    xzero = b.fcmp("oeq", ax, 0.0)
    xinf = b.fcmp("oeq", ax, INF)
    yneg = b.fcmp("olt", y, 0.0)
    mag = b.sel(b.xor1(xzero, yneg), 0.0, INF)
    mag = b.sel(b.and1(yodd, b.signbit(x)), b.neg(mag), mag)
    res = b.sel(b.or1(xzero, xinf), mag, res)
    # y == +-inf
    yinf = b.fcmp("oeq", b.fabs(y), INF)
    axlt1 = b.fcmp("olt", ax, 1.0)
    ymag = b.sel(b.xor1(axlt1, yneg), 0.0, INF)
    ymag = b.sel(b.fcmp("oeq", ax, 1.0), 1.0, ymag)
    res = b.sel(yinf, ymag, res)
    # nans
    res = b.sel(b.or1(b.isnan(x), b.isnan(y)), b.add(x, y), res)
    res = b.sel(b.fcmp("oeq", x, 1.0), 1.0, res)
    return b.sel(b.fcmp("oeq", y, 0.0), 1.0, res)


_BODIES = {
    "exp": _f_exp, "exp2": _f_exp2, "expm1": _f_expm1,
    "log": _f_log, "log2": _f_log2, "log10": _f_log10, "log1p": _f_log1p,
    "sin": _f_sin, "cos": _f_cos, "tan": _f_tan,
    "arcsin": _f_arcsin, "arccos": _f_arccos, "arctan": _f_arctan, "arctan2": _f_arctan2,
    "sinh": _f_sinh_pub, "cosh": _f_cosh, "tanh": _f_tanh,
    "arcsinh": _f_arcsinh, "arccosh": _f_arccosh, "arctanh": _f_arctanh,
    "cbrt": _f_cbrt, "power": _f_power, "hypot": _f_hypot, "logaddexp": _f_logaddexp,
}


# --------------------------------------------------------------------------------------------------------
# Module assembly
# --------------------------------------------------------------------------------------------------------

_TABLES = {
    "tj_vm_log_invc": _LOG_INVC,
    "tj_vm_log_lh": _LOG_LH,
    "tj_vm_log_ll": _LOG_LL,
    "tj_vm_2opi": _PH_TABLE,
}

_ATTRS = "alwaysinline nounwind willreturn nofree nosync memory(none)"


def _table_ir(name: str) -> str:
    vals = _TABLES[name]
    body = ", ".join(f"double {_hex(v)}" for v in vals)
    return f"@{name} = linkonce_odr unnamed_addr constant [{len(vals)} x double] [{body}], align 64"


def _function_ir(name: str, dtname: str, b: _B) -> str:
    sym = symbol(name, dtname)
    nargs = 2 if name in BINARY else 1
    argnames = ["%x", "%y"][:nargs]
    if dtname == "float64":
        params = ", ".join(f"double {a}" for a in argnames)
        args = argnames
        if name == "arctan2":
            res = _BODIES[name](b, *args)
        else:
            res = _BODIES[name](b, *args)
        ret = f"  ret double {res}"
        rtype = "double"
    else:
        params = ", ".join(f"float {a}" for a in argnames)
        if name == "logaddexp":
            res = _logaddexp_f32(b, *argnames)
        elif name in _F32_BODIES:  # float32 results need ~2^-30, not double-double: a plain float64 path
            x64 = b.emit(f"fpext float {argnames[0]} to double")
            res = b.emit(f"fptrunc double {_F32_BODIES[name](b, x64)} to float")
        else:
            args = [b.emit(f"fpext float {a} to double") for a in argnames]
            r64 = _BODIES[name](b, *args)
            res = b.emit(f"fptrunc double {r64} to float")
        ret = f"  ret float {res}"
        rtype = "float"
    body = "\n".join(b.lines)
    return (f"define linkonce_odr {rtype} @{sym}({params}) #0 {{\nentry:\n{body}\n{ret}\n}}\n")


def _exp_plain(b: _B, x):
    """exp(x) in plain float64 (relative error < 1e-9, enough for a float32 result), x finite in [-150, 90]."""
    n = b.rint(b.mul(x, 1.4426950408889634))
    r = b.fma(n, -0.6931471805599453, x)
    r = b.fma(n, -2.3190468138462996e-17, r)
    p = b.horner(r, [1.0, 1.0, 0.5, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320, 1 / 362880])
    return b.mul(p, b.pow2i(b.fptosi(n)))


def _f32_exp(b: _B, x):
    """exp for a float32 result, computed in float64: overflow, underflow and subnormals round correctly."""
    xc = b.clamp(x, -150.0, 90.0)
    res = _exp_plain(b, xc)
    res = b.sel(b.fcmp("ogt", x, 89.0), float("inf"), res)
    res = b.sel(b.fcmp("olt", x, -150.0), 0.0, res)
    return b.sel(b.isnan(x), x, res)


def _f32_tanh(b: _B, x):
    """tanh for a float32 result: 1 - 2/(exp(2|x|) + 1) in float64, x - x^3/3 below 2^-13 (no cancellation)."""
    a = b.fabs(x)
    e = _exp_plain(b, b.mul(b.minnum(a, 20.0), 2.0))
    t = b.sub(1.0, b.div(2.0, b.add(e, 1.0)))
    small = b.fcmp("olt", a, 2.0 ** -13)
    t = b.sel(small, b.fma(b.mul(a, a), b.mul(a, -1 / 3), a), t)
    t = b.copysign(t, x)
    return b.sel(b.isnan(x), x, t)


_F32_BODIES = {"exp": _f32_exp, "tanh": _f32_tanh}


def _logaddexp_f32(b: _B, x, y):
    """numpy's float32 formula: x==y -> x + ln2f; tmp = x - y (float32);
    max + log1pf(expf(-|tmp|)); the log1p(exp()) part is evaluated in float64 and rounded."""
    tmp = b.emit(f"fsub float {x}, {y}")
    t64 = b.emit(f"fpext float {tmp} to double")
    L64 = _log1p_exp_neg(b, b.fabs(t64))
    L = b.emit(f"fptrunc double {L64} to float")
    xa = b.emit(f"fadd float {x}, {L}")
    ya = b.emit(f"fadd float {y}, {L}")
    gt = b.emit(f"fcmp ogt float {tmp}, 0.0")
    r1 = b.emit(f"select i1 {gt}, float {xa}, float {ya}")
    un = b.emit(f"fcmp uno float {tmp}, {tmp}")
    r2 = b.emit(f"select i1 {un}, float {tmp}, float {r1}")
    eq = b.emit(f"fcmp oeq float {x}, {y}")
    ln2f = _hex(float(np.float32(LN2)))
    xl = b.emit(f"fadd float {x}, {ln2f}")
    return b.emit(f"select i1 {eq}, float {xl}, float {r2}")


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
        b = _B()
        funcs.append(_function_ir(name, dtname, b))
        intrinsics |= b.intrinsics
        tables |= b.tables
    parts = ["; tracejit vecmath"]
    parts += [_table_ir(t) for t in sorted(tables)]
    parts += funcs
    parts += sorted(intrinsics)
    parts.append(f"attributes #0 = {{ {_ATTRS} }}")
    return "\n".join(parts) + "\n"
