"""The scalar table's dtype-specific lowering: numpy's astype between floats and integers (with x86's answers
for nan and out-of-range values), exact uint64/int64 comparisons, and numpy's stepwise float16 composites.
lower/scalar.py calls these; like it, this module imports nothing from backends."""
from __future__ import annotations

import numpy as np

BOOL, INT32, INT64 = np.dtype(np.bool_), np.dtype(np.int32), np.dtype(np.int64)
UINT64, FLOAT16, FLOAT32 = np.dtype(np.uint64), np.dtype(np.float16), np.dtype(np.float32)


def _f(dt):
    return np.dtype(dt).kind == "f"


def convert(o, x, src, dst):
    """numpy's astype. A float that is nan or out of the integer range is what x86's conversions give numpy:
    INT_MIN for int32/int64, the low bits of the int32 conversion for 8/16-bit ints, of the int64 one for
    uint32; negative floats wrap into the unsigned types."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst:
        return x
    if not (_f(src) and dst.kind in "iu"):
        return o.cast(x, src, dst)
    if src == FLOAT16:  # its integer bounds are not float16 values
        x, src = o.cast(x, FLOAT16, FLOAT32), FLOAT32
    if dst == UINT64:
        return _float_to_uint64(o, x, src)
    via = dst if dst.kind == "i" and dst.itemsize >= 4 else (INT32 if dst.itemsize < 4 else INT64)
    r = _float_to_signed(o, x, src, via)
    return r if via == dst else o.cast(r, via, dst)


def _float_to_signed(o, x, src, dst):
    bits = dst.itemsize * 8
    ok = _in_range(o, x, src, -(2.0 ** (bits - 1)), 2.0 ** (bits - 1))
    safe = o.select(src, ok, x, o.const(src, 0))
    return o.select(dst, ok, o.cast(safe, src, dst), o.const(dst, np.iinfo(dst).min))


def _in_range(o, x, src, lo, hi):
    """lo <= x < hi (false for nan)."""
    return o.and_(BOOL, o.cmp(src, ">=", x, o.const(src, lo)), o.cmp(src, "<", x, o.const(src, hi)))


def _float_to_uint64(o, x, src):
    """[0, 2**64) converts as unsigned; [-2**63, 0) wraps through int64; the rest is 2**63 (numpy on x86)."""
    wraps = o.cast(_float_to_signed(o, x, src, INT64), INT64, UINT64)
    big = _in_range(o, x, src, 2.0 ** 63, 2.0 ** 64)
    r = o.cast(o.select(src, big, x, o.const(src, 0)), src, UINT64)
    return o.select(UINT64, big, r, wraps)


_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def mixed_sign_compare(o, op, in_dts, args):
    """numpy's exact comparison (``op``: "<", "==", ...) of a uint64 with an int64 (its own loop: no common
    dtype holds both)."""
    u, s = args
    if np.dtype(in_dts[0]).kind != "u":
        u, s, op = s, u, _MIRRORED[op]
    r = o.cmp(UINT64, op, u, o.cast(s, INT64, UINT64))
    negative = o.cmp(INT64, "<", s, o.const(INT64, 0))  # then u > s
    return o.select(BOOL, negative, o.const(BOOL, op in (">", ">=", "!=")), r)


# numpy functions that are no ufunc but a few float16 operations (np.sinc: pi * x, sin, divide), each rounded
STEPWISE_IN_FLOAT16 = {"sinc"}


class RoundEachStep:
    """A backend's operations in float32 with every arithmetic result and constant rounded to float16."""

    def __init__(self, o):
        self.o = o

    def __getattr__(self, name):
        op = getattr(self.o, name)
        if name not in ("add", "sub", "mul", "div", "math", "const"):
            return op

        def rounded(*a):
            dt = a[1] if name == "math" else a[0]
            if name == "const":
                return op(dt, float(np.float16(a[1]))) if dt == FLOAT32 else op(*a)
            r = op(*a)
            return self.o.cast(self.o.cast(r, FLOAT32, FLOAT16), FLOAT16, FLOAT32) if dt == FLOAT32 else r
        return rounded
