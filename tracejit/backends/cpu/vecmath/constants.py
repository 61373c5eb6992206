"""High precision constants and tables of the vector math library, computed at import from exact integer
and decimal arithmetic."""
from __future__ import annotations

import math
import struct
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np


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
EXPM1_Q = [float(Fraction(1, math.factorial(k))) for k in range(2, 14)]           # 1/2! .. 1/13!
EXP2_C = [float(_LN2_DEC ** k / math.factorial(k)) for k in range(1, 14)]           # ln2^k/k!
EXP2_C1H, EXP2_C1L = _dd(_LN2_DEC)
LOG1P_P = [float(Fraction((-1) ** (k + 1), k)) for k in range(3, 12)]               # r^3/3 - r^4/4 ...
SIN_S = [float(Fraction((-1) ** k, math.factorial(2 * k + 1))) for k in range(1, 11)]   # -1/3! ...
COS_C = [float(Fraction((-1) ** k, math.factorial(2 * k))) for k in range(2, 11)]        # 1/4! ...
ATAN_P = [float(Fraction((-1) ** k, 2 * k + 1)) for k in range(1, 17)]             # -1/3, 1/5 ...
SINH_S = [float(Fraction(1, math.factorial(2 * k + 1))) for k in range(1, 11)]    # 1/3!, 1/5! ...
COSH_C = [float(Fraction(1, math.factorial(2 * k))) for k in range(2, 12)]        # 1/4!, 1/6! ...


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


LOG_INVC, LOG_LH, LOG_LL = _log_table()
PH_TABLE = _two_over_pi_table()


def _cbrt_init_poly():
    # least-squares polynomial for cbrt on [1, 8) (initial guess before Halley/Newton steps)
    ys = np.cos(np.linspace(0, np.pi, 400)) * 3.5 + 4.5
    coef = np.polynomial.polynomial.polyfit(ys, np.cbrt(ys), 5)
    return [float(c) for c in coef]


CBRT_P = _cbrt_init_poly()
