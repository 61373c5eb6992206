"""Algorithm cores shared by the functions: range reductions, polynomials and double-double steps, emitted
inline over double SSA values."""
from __future__ import annotations

from .builder import SSABuilder
from .constants import (ATAN_P, COS_C, EXPM1_Q, INVSQRT3, LN2HI, LN2LO, LOG1P_P, LOG2E, PIH, PIL, PIO2H, PIO2L,
                        PIO3H, PIO3L, PIO6H, PIO6L, SIN_S, SQRT2, SQRT3, TAN_5PI12, TAN_PI12)


def exp_reduce(b: SSABuilder, x, extra_lo=None):
    """x finite, |x| <= ~1300.  Returns n (double), r_hi, r_lo with x + extra_lo = n*ln2 + r_hi + r_lo."""
    n = b.rint(b.mul(x, LOG2E))
    r1 = b.fma(b.neg(n), LN2HI, x)           # exact
    t = b.mul(n, LN2LO)
    rh = b.sub(r1, t)
    rl = b.sub(b.sub(r1, rh), t)
    if extra_lo is not None:
        rl = b.add(rl, extra_lo)
    return n, rh, rl


def expm1_parts(b: SSABuilder, rh, rl):
    """exp(rh + rl) - 1 == rh + t (unevaluated) for |rh| <= ~0.35, |rl| tiny."""
    r2 = b.mul(rh, rh)
    q = b.horner(rh, EXPM1_Q)
    p = b.mul(r2, q)
    em0 = b.add(rh, p)
    return b.add(p, b.fma(rl, em0, rl))


def expm1_poly(b: SSABuilder, rh, rl):
    """exp(rh + rl) - 1 for |rh| <= ~0.35, |rl| tiny."""
    return b.add(rh, expm1_parts(b, rh, rl))


def exp_finish(b: SSABuilder, eh, et, n, offset=0):
    """(1 + eh + et) * 2**(n + offset) with one rounding of the sum and correct over/underflow."""
    hi, e = b.fast_two_sum(1.0, eh)
    p = b.add(hi, b.add(e, et))
    ni = b.fptosi(n)
    if offset:
        ni = b.iop("add", ni, offset)
    n1 = b.iop("ashr", ni, 1)
    n2 = b.iop("sub", ni, n1)
    return b.mul(b.mul(p, b.pow2i(n1)), b.pow2i(n2))


def scale_split(b: SSABuilder, p_em, n, offset=0):
    """(1 + em) * 2**(n + offset) with correct overflow/underflow, |n| <= ~1800."""
    ni = b.fptosi(n)
    if offset:
        ni = b.iop("add", ni, offset)
    n1 = b.iop("ashr", ni, 1)
    n2 = b.iop("sub", ni, n1)
    s1 = b.pow2i(n1)
    s2 = b.pow2i(n2)
    return b.mul(b.fma(p_em, s1, s1), s2)


def exp_core(b: SSABuilder, x, lo=None, offset=0):
    """exp(x [+ lo]) * 2**offset for any non-nan x (clamped internally)."""
    xc = b.clamp(x, -1300.0, 1300.0)
    if lo is not None:
        lo = b.sel(b.fcmp("oeq", x, xc), lo, 0.0)
    n, rh, rl = exp_reduce(b, xc, lo)
    return exp_finish(b, rh, expm1_parts(b, rh, rl), n, offset)


def log_core(b: SSABuilder, x, koff=None):
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
    tail = b.mul(b.mul(rr, rh), b.horner(rh, LOG1P_P))
    lo = b.add(al, e1)
    lo = b.add(lo, e2)
    lo = b.sub(lo, h2l)
    lo = b.fma(k, LN2LO, lo)
    lo = b.add(lo, lcl)
    lo = b.add(lo, rl)
    lo = b.fma(b.neg(rh), rl, lo)
    lo = b.add(lo, tail)
    return s2, lo


def log1p_dd(b: SSABuilder, y):
    """log(1 + y) as (hi, lo) for y > -1 finite (sanitized by caller)."""
    u, ue = b.two_sum(1.0, y)
    hi, lo = log_core(b, u)
    lo = b.add(lo, b.div(ue, u))
    return hi, lo


def atan_core(b: SSABuilder, n, d):
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
    p = b.horner(z, ATAN_P)
    atn = b.fma(b.mul(u, z), p, u)
    return ah, b.add(al, atn)


def pi_minus(b: SSABuilder, hi, lo):
    s, e = b.two_sum(PIH, b.neg(hi))
    return b.add(s, b.add(e, b.sub(PIL, lo)))


def trig_reduce(b: SSABuilder, ax):
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


def sincos_poly(b: SSABuilder, rh, rl):
    """sin and cos of rh + rl (|rh| <= ~pi/4) each as (hi, lo)."""
    z = b.mul(rh, rh)
    zl = b.fma(rh, rh, b.neg(z))
    # sin
    sp = b.horner(z, SIN_S)
    slo = b.fma(b.mul(rh, z), sp, rl)
    sh, sl = b.fast_two_sum(rh, slo)
    # cos
    hz = b.mul(z, 0.5)
    w = b.sub(1.0, hz)
    cp = b.horner(z, COS_C)
    clo = b.sub(b.sub(1.0, w), hz)
    tail = b.fma(b.mul(z, z), cp, b.fma(b.neg(rh), rl, b.mul(zl, -0.5)))
    clo = b.add(clo, tail)
    ch, cl = b.fast_two_sum(w, clo)
    return (sh, sl), (ch, cl)


# --------------------------------------------------------------------------------------------------------
