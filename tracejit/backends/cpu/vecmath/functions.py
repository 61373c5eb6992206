"""The function bodies: float64 ones (each takes the builder and argument names and returns the result's name)
and the float32 ones that need less than a float64 path."""
from __future__ import annotations

import numpy as np

from .builder import INF, NAN, SSABuilder, hex_double
from .constants import (CBRT_P, COSH_C, EXP2_C, EXP2_C1H, EXP2_C1L, IL10H, IL10L, IL2H, IL2L, LN2, PIO2H, PIO2L,
                        PIO4H, PIO4L, SINH_S)
from .cores import (atan_core, exp_core, exp_finish, exp_reduce, expm1_parts, expm1_poly, log1p_dd, log_core,
                    pi_minus, scale_split, sincos_poly, trig_reduce)


def _f_exp(b, x):
    r = exp_core(b, x)
    return b.sel(b.isnan(x), x, r)


def _f_exp2(b, x):
    xc = b.clamp(x, -1200.0, 1200.0)
    n = b.rint(xc)
    r = b.sub(xc, n)
    q = b.horner(r, EXP2_C[1:])
    inner = b.fma(r, q, EXP2_C1L)
    ph, pl = b.two_prod(r, EXP2_C1H)
    res = exp_finish(b, ph, b.fma(r, inner, pl), n)
    return b.sel(b.isnan(x), x, res)


def _f_expm1(b, x):
    xc = b.clamp(x, -45.0, 712.0)
    n, rh, rl = exp_reduce(b, xc)
    et = expm1_parts(b, rh, rl)
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
    hi, lo = log_core(b, _sanitize_pos(b, x))
    return _log_specials(b, x, b.add(hi, lo))


def _dd_mul_const(b, hi, lo, ch, cl):
    ph, pl = b.two_prod(hi, ch)
    pl = b.add(pl, b.fma(hi, cl, b.mul(lo, ch)))
    return b.add(ph, pl)


def _f_log2(b, x):
    hi, lo = log_core(b, _sanitize_pos(b, x))
    return _log_specials(b, x, _dd_mul_const(b, hi, lo, IL2H, IL2L))


def _f_log10(b, x):
    hi, lo = log_core(b, _sanitize_pos(b, x))
    return _log_specials(b, x, _dd_mul_const(b, hi, lo, IL10H, IL10L))


def _f_log1p(b, x):
    ok = b.and1(b.fcmp("ogt", x, -1.0), b.fcmp("olt", x, INF))
    y = b.sel(ok, x, 0.0)
    hi, lo = log1p_dd(b, y)
    res = _log_specials(b, x, b.add(hi, lo), zero_at=-1.0)
    tiny = b.fcmp("olt", b.fabs(x), 2.0 ** -54)
    return b.sel(tiny, x, res)


def _f_sinh(b, x):
    a = b.fabs(x)
    ac = b.minnum(a, 800.0)
    # small: Taylor
    z = b.mul(a, a)
    small = b.fma(b.mul(a, z), b.horner(z, SINH_S), a)
    # mid (1 <= a <= 22): e/2 as double-double, minus 1/(2e)
    n, rh, rl = exp_reduce(b, ac)
    em = expm1_poly(b, rh, rl)
    ni = b.fptosi(n)
    nm = b.smin(b.iop("sub", ni, 1), 60)
    s = b.pow2i(nm)
    th, tl = b.fast_two_sum(s, b.mul(s, em))
    inv = b.div(0.25, th)
    mid_s = b.add(th, b.sub(tl, inv))
    mid_c = b.add(th, b.add(tl, inv))
    large = scale_split(b, em, n, offset=-1)
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
    small = b.add(1.0, b.fma(b.mul(z, z), b.horner(z, COSH_C), b.mul(z, 0.5)))
    res = b.sel(is_small, small, b.sel(is_large, large, mid_c))
    return b.sel(b.isnan(x), x, res)


def _f_tanh(b, x):
    a = b.fabs(x)
    a2 = b.mul(b.minnum(a, 20.0), 2.0)
    n, rh, rl = exp_reduce(b, a2)
    em = expm1_poly(b, rh, rl)
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
    rh, rl, qi = trig_reduce(b, axs)
    (sh, sl), (ch, cl) = sincos_poly(b, rh, rl)
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
    hi, lo = atan_core(b, n, 1.0)
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
    hi, lo = atan_core(b, n, d)
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
    res = b.sel(b.signbit(x), pi_minus(b, hi, lo), b.add(hi, lo))
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
    hi, lo = atan_core(b, axs, root)
    return _domain_checked(b, x, ok, b.copysign(b.add(hi, lo), x))


def _f_arccos(b, x):
    ok, axs, root = _unit_circle(b, x)
    hi, lo = atan_core(b, root, axs)
    return _domain_checked(b, x, ok, b.sel(b.fcmp("olt", x, 0.0), pi_minus(b, hi, lo), b.add(hi, lo)))


def _log_of(b, arg, ue=None, koff=None):
    hi, lo = log_core(b, arg, koff)
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
    hi, lo = log1p_dd(b, y)
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
    t = b.horner(y, CBRT_P)
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
    e = exp_core(b, b.neg(dts))
    hi, lo = log1p_dd(b, e)
    return b.add(hi, lo)


def _f_logaddexp(b, x, y):
    tmp = b.sub(x, y)
    L = _log1p_exp_neg(b, b.fabs(tmp))
    r1 = b.sel(b.fcmp("ogt", tmp, 0.0), b.add(x, L), b.add(y, L))
    r2 = b.sel(b.isnan(tmp), tmp, r1)
    return b.sel(b.fcmp("oeq", x, y), b.add(x, LN2), r2)


def _f_power(b, x, y):
    ax = b.fabs(x)
    hi, lo = log_core(b, _sanitize_pos(b, ax))
    hi, lo = b.fast_two_sum(hi, lo)
    ph, pl = b.two_prod(y, hi)
    pl = b.fma(y, lo, pl)
    okp = b.fcmp("olt", b.fabs(ph), 1200.0)
    phc = b.sel(okp, ph, b.sel(b.fcmp("ogt", ph, 0.0), 1300.0, -1300.0))
    plc = b.sel(okp, pl, 0.0)
    n, rh, rl = exp_reduce(b, phc, plc)
    res = exp_finish(b, rh, expm1_parts(b, rh, rl), n)
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


BODIES = {
    "exp": _f_exp, "exp2": _f_exp2, "expm1": _f_expm1,
    "log": _f_log, "log2": _f_log2, "log10": _f_log10, "log1p": _f_log1p,
    "sin": _f_sin, "cos": _f_cos, "tan": _f_tan,
    "arcsin": _f_arcsin, "arccos": _f_arccos, "arctan": _f_arctan, "arctan2": _f_arctan2,
    "sinh": _f_sinh_pub, "cosh": _f_cosh, "tanh": _f_tanh,
    "arcsinh": _f_arcsinh, "arccosh": _f_arccosh, "arctanh": _f_arctanh,
    "cbrt": _f_cbrt, "power": _f_power, "hypot": _f_hypot, "logaddexp": _f_logaddexp,
}




def _exp_plain(b: SSABuilder, x):
    """exp(x) in plain float64 (relative error < 1e-9, enough for a float32 result), x finite in [-150, 90]."""
    n = b.rint(b.mul(x, 1.4426950408889634))
    r = b.fma(n, -0.6931471805599453, x)
    r = b.fma(n, -2.3190468138462996e-17, r)
    p = b.horner(r, [1.0, 1.0, 0.5, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040, 1 / 40320, 1 / 362880])
    return b.mul(p, b.pow2i(b.fptosi(n)))


def _f32_exp(b: SSABuilder, x):
    """exp for a float32 result, computed in float64: overflow, underflow and subnormals round correctly."""
    xc = b.clamp(x, -150.0, 90.0)
    res = _exp_plain(b, xc)
    res = b.sel(b.fcmp("ogt", x, 89.0), float("inf"), res)
    res = b.sel(b.fcmp("olt", x, -150.0), 0.0, res)
    return b.sel(b.isnan(x), x, res)


def _f32_tanh(b: SSABuilder, x):
    """tanh for a float32 result: 1 - 2/(exp(2|x|) + 1) in float64, x - x^3/3 below 2^-13 (no cancellation)."""
    a = b.fabs(x)
    e = _exp_plain(b, b.mul(b.minnum(a, 20.0), 2.0))
    t = b.sub(1.0, b.div(2.0, b.add(e, 1.0)))
    small = b.fcmp("olt", a, 2.0 ** -13)
    t = b.sel(small, b.fma(b.mul(a, a), b.mul(a, -1 / 3), a), t)
    t = b.copysign(t, x)
    return b.sel(b.isnan(x), x, t)


F32_BODIES = {"exp": _f32_exp, "tanh": _f32_tanh}


def logaddexp_f32(b: SSABuilder, x, y):
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
    ln2f = hex_double(float(np.float32(LN2)))
    xl = b.emit(f"fadd float {x}, {ln2f}")
    return b.emit(f"select i1 {eq}, float {xl}, float {r2}")
