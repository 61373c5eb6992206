"""scipy.special.i0 and i1 on traced values: the modified Bessel functions of the first kind, by a power series
below a switch point and the asymptotic expansion above it (coefficients derived from the definitions), with
exact derivatives as custom_jvp rules."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .custom import custom_jvp
from .scipy_special import _float, _safe


_BESSEL_SWITCH = 20.0  # power series below, asymptotic expansion above (its smallest term, ~e^-2x, is < 1e-17 here)


@lru_cache(maxsize=None)
def _bessel_plan(nu: int):
    """(power-series coefficients in t = x^2/4, asymptotic coefficients in 1/x) for I_nu, nu in {0, 1}:
    I_nu(x) = (x/2)^nu sum_k t^k / (k! (k+nu)!), and I_nu(x) ~ e^x / sqrt(2 pi x) sum_k (-1)^k a_k / x^k with
    a_k = prod_{j<=k} (4 nu^2 - (2j-1)^2) / (k! 8^k). Each is cut where its terms fall below 1e-17 of the sum at the
    switch point."""
    x = _BESSEL_SWITCH
    t = x * x / 4
    series, k = [], 0
    total = sum(math.exp(j * math.log(t) - math.lgamma(j + 1) - math.lgamma(j + nu + 1)) for j in range(150))
    while True:
        c = 1 / (math.factorial(k) * math.factorial(k + nu))
        series.append(c)
        if math.exp(k * math.log(t) - math.lgamma(k + 1) - math.lgamma(k + nu + 1)) < 1e-17 * total:
            break
        k += 1
    asym, a = [1.0], 1.0
    for k in range(1, 60):
        a *= (4 * nu * nu - (2 * k - 1) ** 2) / (8 * k)
        asym.append((-1) ** k * a)
        if abs(a) / x ** k < 1e-17:
            break
    return tuple(series), tuple(asym)


def _bessel(nu, x):
    """I_nu(|x|) (nu = 0, 1) by the plan above; overflows to inf where e^x does, as scipy."""
    series, asym = _bessel_plan(nu)
    ax = np.abs(x)
    near = ax < _BESSEL_SWITCH
    xn = _safe(near, ax, 1.0)
    t = 0.25 * xn * xn
    s = 0.0
    for c in reversed(series):
        s = s * t + c
    s = s * (0.5 * xn) ** nu
    xf = _safe(near, _BESSEL_SWITCH, ax)
    r = 1.0 / xf
    f = 0.0
    for c in reversed(asym):
        f = f * r + c
    far = np.exp(xf) * f / np.sqrt(2 * math.pi * xf)
    return np.where(near, s, far)


@custom_jvp
def i0(x):
    """Modified Bessel function of the first kind, order 0 (scipy.special.i0); I0' = I1."""
    return _bessel(0, _float(x))


@i0.defjvp
def _i0_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return i0(x), dx * i1(x)


@custom_jvp
def i1(x):
    """Modified Bessel function of the first kind, order 1 (odd); I1' = I0 - I1/x (1/2 at 0)."""
    x = _float(x)
    return np.sign(x) * _bessel(1, x)


@i1.defjvp
def _i1_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    x = _float(x)
    xs = _safe(x == 0, 1.0, x)
    return i1(x), dx * np.where(x == 0, 0.5, i0(x) - i1(xs) / xs)
