"""THE scalar table: what every elementwise primitive means, written once for every backend.

Each primitive is a rule over a small set of abstract scalar operations (``ScalarOps``: arithmetic, compare,
select, cast, bit operations, ``math(name, ...)``); a backend implements those operations once (LLVM IR
builder calls on the CPU, Python source for numba.cuda) and never decides what a primitive means. numpy's
semantics (nan propagation of ``maximum``, float ``floor_divide`` through ``fmod``, integer division by zero
giving 0, ``reciprocal(0)`` giving INT_MIN, integer ``power``...) live here and nowhere else.

``MATH`` (math_functions.py) has one row per math function: its C libm name, its CUDA libdevice name, its name in
the vector math library (``vecmath``) when it has one, its cost, and the ulp bound the backends meet. A backend may register a
faster native form of a primitive (``llvm.maximum`` for ``maximum``), nothing else.

This module imports nothing from ``codegen``/``backends``/``trace`` (tests/test_layers.py checks).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np

# the math table's names, read by the backends through this module
from .math_functions import BINARY_MATH, CHEAP, LIBCALL, VEC_FUNCTIONS, MathFn, reference  # noqa: F401
from .math_functions import EXPENSIVE, MATH, ROWS
from .scalar_dtypes import STEPWISE_IN_FLOAT16, RoundEachStep, convert, mixed_sign_compare

BOOL, INT32, INT64 = np.dtype(np.bool_), np.dtype(np.int32), np.dtype(np.int64)
FLOAT16, FLOAT32 = np.dtype(np.float16), np.dtype(np.float32)


class ScalarOps:
    """The abstract scalar operations a backend implements; values are the backend's own (LLVM values, source
    text). ``dt`` is the numpy dtype the operation computes in. Integer ``idiv``/``imod`` are numpy's floor
    division/modulo for a divisor that is neither 0 nor -1 (the rules handle those); ``cast`` need only be right
    for values the target dtype holds (the ``convert`` rule handles nan and out-of-range floats); comparisons
    are ordered except ``!=``; ``shl``/``shr`` (arithmetic) take an amount in [0, bits)."""

    def const(self, dt, value): raise NotImplementedError
    def add(self, dt, x, y): raise NotImplementedError
    def sub(self, dt, x, y): raise NotImplementedError
    def mul(self, dt, x, y): raise NotImplementedError
    def div(self, dt, x, y): raise NotImplementedError
    def neg(self, dt, x): raise NotImplementedError
    def idiv(self, dt, x, y): raise NotImplementedError
    def imod(self, dt, x, y): raise NotImplementedError
    def cmp(self, dt, op, x, y): raise NotImplementedError
    def select(self, dt, c, x, y): raise NotImplementedError
    def and_(self, dt, x, y): raise NotImplementedError
    def or_(self, dt, x, y): raise NotImplementedError
    def xor(self, dt, x, y): raise NotImplementedError
    def not_(self, dt, x): raise NotImplementedError
    def shl(self, dt, x, y): raise NotImplementedError
    def shr(self, dt, x, y): raise NotImplementedError
    def cast(self, x, src, dst): raise NotImplementedError
    def isnan(self, dt, x): raise NotImplementedError
    def math(self, name, dt, *xs): raise NotImplementedError

    def while_(self, dt, state, cond, step, max_steps):
        """``state = step(state)`` while ``cond(state)``, at most ``max_steps`` times (a list of values of dtype
        ``dt``). ``step`` must be defined on every state: a backend may evaluate it unconditionally (this default
        unrolls the loop into selects; a backend with loops runs a real one)."""
        for _ in range(max_steps):
            live, new = cond(state), step(state)
            state = [self.select(dt, live, n, s) for n, s in zip(new, state)]
        return state


ABSTRACT_OPS = tuple(n for n in vars(ScalarOps) if not n.startswith("_"))


@dataclass(frozen=True)
class Row:
    """One elementwise primitive: ``rule(ops, dt, *args)`` computes it in the compute dtype ``dt``; ``ulp``: how
    far from numpy's float result the backends may be (0: the same bits up to the sign of a zero)."""
    prim: str
    rule: Callable
    ulp: int = 0


RULES: dict[str, Row] = {}


def rule(*prims, ulp=0):
    def deco(f):
        for p in prims:
            RULES[p] = Row(p, f, ulp)
        return f
    return deco


def _f(dt):
    return np.dtype(dt).kind == "f"


def _b(dt):
    return np.dtype(dt) == BOOL


def _u(dt):
    return np.dtype(dt).kind == "u"


def _truth(o, dt, x):
    return x if _b(dt) else o.cast(x, dt, BOOL)


def _as(o, dt, c):
    """A bool ``c`` as 0/1 of dtype ``dt``."""
    return o.cast(c, BOOL, dt)


def _is_zero(o, dt, x):
    return o.cmp(dt, "==", x, o.const(dt, 0))


# ------------------------------------------------------------------------------------------------ arithmetic
@rule("positive", "stop_gradient")
def _identity(o, dt, x):
    return x


@rule("add")
def _add(o, dt, x, y):
    return o.or_(dt, x, y) if _b(dt) else o.add(dt, x, y)


@rule("subtract")
def _subtract(o, dt, x, y):
    return o.sub(dt, x, y)


@rule("multiply")
def _multiply(o, dt, x, y):
    return o.and_(dt, x, y) if _b(dt) else o.mul(dt, x, y)


@rule("divide")
def _divide(o, dt, x, y):
    return o.div(dt, x, y)


@rule("negative")
def _negative(o, dt, x):
    return o.neg(dt, x)


@rule("square")
def _square(o, dt, x):
    return _multiply(o, dt, x, x)


@rule("absolute")
def _absolute(o, dt, x):
    if _f(dt):
        return o.math("fabs", dt, x)
    if _b(dt) or _u(dt):
        return x
    return o.select(dt, o.cmp(dt, "<", x, o.const(dt, 0)), o.neg(dt, x), x)


@rule("sign")
def _sign(o, dt, x):
    z = o.const(dt, 0)
    s = o.sub(dt, _as(o, dt, o.cmp(dt, ">", x, z)), _as(o, dt, o.cmp(dt, "<", x, z)))
    return o.select(dt, o.isnan(dt, x), x, s) if _f(dt) else s


@rule("reciprocal")
def _reciprocal(o, dt, x):
    if _f(dt):
        return o.div(dt, o.const(dt, 1), x)
    # C's 1 / x as numpy computes it: 1, -1 or 0, and for x == 0 the INT_MIN pattern of x86's 32/64-bit division
    # (8/16-bit and unsigned ints give 0)
    one, zero = o.const(dt, 1), o.const(dt, 0)
    if _u(dt):
        return o.select(dt, o.cmp(dt, "==", x, one), one, zero)
    m1 = o.const(dt, -1)
    r = o.select(dt, o.cmp(dt, "==", x, one), one, o.select(dt, o.cmp(dt, "==", x, m1), m1, zero))
    at_zero = o.const(dt, np.iinfo(dt).min if np.dtype(dt).itemsize >= 4 else 0)
    return o.select(dt, _is_zero(o, dt, x), at_zero, r)


def _float_mod(o, dt, x, y):
    """(fmod(x, y), whether it must move by y to take y's sign): numpy's divmod starts from fmod."""
    z = o.const(dt, 0)
    mod = o.math("fmod", dt, x, y)
    fix = o.and_(BOOL, o.cmp(dt, "!=", mod, z), o.xor(BOOL, o.cmp(dt, "<", y, z), o.cmp(dt, "<", mod, z)))
    return mod, fix


def _safe_divisor(o, dt, y):
    """(y with 0 and -1 replaced by 1, y == 0, y == -1): integer division never traps or overflows (unsigned
    division has no -1)."""
    yz = _is_zero(o, dt, y)
    ym1 = o.const(BOOL, False) if _u(dt) else o.cmp(dt, "==", y, o.const(dt, -1))
    return o.select(dt, o.or_(BOOL, yz, ym1), o.const(dt, 1), y), yz, ym1


@rule("floor_divide")
def _floor_divide(o, dt, x, y):
    if not _f(dt):
        safe, yz, ym1 = _safe_divisor(o, dt, y)
        q = o.select(dt, ym1, o.neg(dt, x), o.idiv(dt, x, safe))
        return o.select(dt, yz, o.const(dt, 0), q)
    # numpy: floor(x / y) through fmod, so that x == (x // y) * y + x % y (1 // 0.1 == 9.0, not 10.0)
    z, one = o.const(dt, 0), o.const(dt, 1)
    mod, fix = _float_mod(o, dt, x, y)
    div = o.div(dt, o.sub(dt, x, mod), y)
    div = o.select(dt, fix, o.sub(dt, div, one), div)
    fl = o.math("floor", dt, div)
    adj = o.select(dt, o.cmp(dt, ">", o.sub(dt, div, fl), o.const(dt, 0.5)), o.add(dt, fl, one), fl)
    res = o.select(dt, o.cmp(dt, "!=", div, z), adj, o.math("copysign", dt, z, o.div(dt, x, y)))
    return o.select(dt, o.cmp(dt, "==", y, z), o.div(dt, x, y), res)


@rule("remainder")
def _remainder(o, dt, x, y):
    if not _f(dt):
        safe, yz, ym1 = _safe_divisor(o, dt, y)
        return o.select(dt, o.or_(BOOL, yz, ym1), o.const(dt, 0), o.imod(dt, x, safe))
    z = o.const(dt, 0)
    mod, fix = _float_mod(o, dt, x, y)
    r = o.select(dt, fix, o.add(dt, mod, y), mod)
    return o.select(dt, o.cmp(dt, "==", mod, z), o.math("copysign", dt, z, y), r)


@rule("power", ulp=4)
def _power(o, dt, x, y):
    if _f(dt):
        return o.math("power", dt, x, y)
    # square and multiply over the exponent's bits (numpy refuses negative integer exponents: a signed one's
    # top bit is clear)
    res, base, one = o.const(dt, 1), x, o.const(dt, 1)
    for k in range(np.dtype(dt).itemsize * 8 - (0 if _u(dt) else 1)):
        bit = o.cmp(dt, "!=", o.and_(dt, o.shr(dt, y, o.const(dt, k)), one), o.const(dt, 0))
        res = o.select(dt, bit, o.mul(dt, res, base), res)
        base = o.mul(dt, base, base)
    return res


def _pick(o, dt, x, y, op):
    """numpy's maximum/minimum: the first nan, else ``x`` when it wins strictly, else ``y``."""
    if _b(dt):
        return o.or_(dt, x, y) if op == ">" else o.and_(dt, x, y)
    wins = o.cmp(dt, op, x, y)
    if _f(dt):
        wins = o.or_(BOOL, wins, o.isnan(dt, x))
    return o.select(dt, wins, x, y)


@rule("maximum")
def _maximum(o, dt, x, y):
    return _pick(o, dt, x, y, ">")


@rule("minimum")
def _minimum(o, dt, x, y):
    return _pick(o, dt, x, y, "<")


@rule("fmax")
def _fmax(o, dt, x, y):
    return o.math("fmax", dt, x, y) if _f(dt) else _maximum(o, dt, x, y)


@rule("fmin")
def _fmin(o, dt, x, y):
    return o.math("fmin", dt, x, y) if _f(dt) else _minimum(o, dt, x, y)


# ------------------------------------------------------------------------------------------------ logic
_CMP = {"equal": "==", "not_equal": "!=", "less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">="}
for _p, _op in _CMP.items():
    rule(_p)(lambda o, dt, x, y, _op=_op: o.cmp(dt, _op, x, y))


@rule("logical_and")
def _logical_and(o, dt, x, y):
    return o.and_(BOOL, _truth(o, dt, x), _truth(o, dt, y))


@rule("logical_or")
def _logical_or(o, dt, x, y):
    return o.or_(BOOL, _truth(o, dt, x), _truth(o, dt, y))


@rule("logical_xor")
def _logical_xor(o, dt, x, y):
    return o.xor(BOOL, _truth(o, dt, x), _truth(o, dt, y))


@rule("logical_not")
def _logical_not(o, dt, x):
    return o.not_(BOOL, _truth(o, dt, x))


rule("bitwise_and")(lambda o, dt, x, y: o.and_(dt, x, y))
rule("bitwise_or")(lambda o, dt, x, y: o.or_(dt, x, y))
rule("bitwise_xor")(lambda o, dt, x, y: o.xor(dt, x, y))
rule("invert")(lambda o, dt, x: o.not_(dt, x))


@rule("isnan")
def _isnan(o, dt, x):
    return o.isnan(dt, x) if _f(dt) else o.const(BOOL, False)


@rule("isinf")
def _isinf(o, dt, x):
    if not _f(dt):
        return o.const(BOOL, False)
    return o.cmp(dt, "==", o.math("fabs", dt, x), o.const(dt, np.inf))


@rule("isfinite")
def _isfinite(o, dt, x):
    if not _f(dt):
        return o.const(BOOL, True)
    return o.cmp(dt, "<", o.math("fabs", dt, x), o.const(dt, np.inf))


# ------------------------------------------------------------------------------------------------ math
for _p in ("floor", "ceil", "trunc", "rint"):
    rule(_p)(lambda o, dt, x, _p=_p: o.math(_p, dt, x) if _f(dt) else x)
rule("sqrt")(lambda o, dt, x: o.math("sqrt", dt, x))
for _row in ROWS:  # the math functions that are primitives of their own (power and logaddexp have rules above)
    if (_row.vec or _row.ref.startswith("special.")) and _row.name not in RULES:
        rule(_row.name, ulp=_row.ulp)(lambda o, dt, *xs, _n=_row.name: o.math(_n, dt, *xs))


@rule("lgamma", ulp=MATH["lgamma"].ulp)
def _lgamma(o, dt, x):
    # scipy's gammaln(-inf) is -inf where C's lgamma gives +inf
    ninf = o.const(dt, -np.inf)
    return o.select(dt, o.cmp(dt, "==", x, ninf), ninf, o.math("lgamma", dt, x))


@rule("logaddexp", ulp=4)
def _logaddexp(o, dt, x, y):
    # max + log1p(exp(-|x - y|)); x == y (both infinite too) is x + log(2)
    mx = _maximum(o, dt, x, y)
    e = o.math("exp", dt, o.neg(dt, o.math("fabs", dt, o.sub(dt, x, y))))
    r = o.add(dt, mx, o.math("log1p", dt, e))
    return o.select(dt, o.cmp(dt, "==", x, y), o.add(dt, x, o.const(dt, np.log(2.0))), r)


@rule("sigmoid", ulp=4)
def _sigmoid(o, dt, x):
    one = o.const(dt, 1)
    e = o.math("exp", dt, o.neg(dt, o.math("fabs", dt, x)))
    r = o.div(dt, one, o.add(dt, one, e))  # one division: sigmoid(-|x|) = e * r
    return o.select(dt, o.cmp(dt, ">=", x, o.const(dt, 0)), r, o.mul(dt, e, r))


@rule("softplus", ulp=4)
def _softplus(o, dt, x):
    e = o.math("exp", dt, o.neg(dt, o.math("fabs", dt, x)))
    r = o.add(dt, o.math("fmax", dt, x, o.const(dt, 0)), o.math("log1p", dt, e))
    return o.select(dt, o.isnan(dt, x), x, r)


# ------------------------------------------------------------------------------------------------ newer ufuncs
rule("copysign")(lambda o, dt, x, y: o.math("copysign", dt, x, y))
rule("nextafter")(lambda o, dt, x, y: o.math("nextafter", dt, x, y))
rule("float_power", ulp=4)(lambda o, dt, x, y: o.math("power", dt, x, y))  # numpy computes it in float64


@rule("heaviside")
def _heaviside(o, dt, x, h):
    z = o.const(dt, 0)
    r = o.select(dt, o.cmp(dt, "<", x, z), z, o.select(dt, o.cmp(dt, ">", x, z), o.const(dt, 1), h))
    return o.select(dt, o.isnan(dt, x), x, r)


@rule("ldexp")
def _ldexp(o, dt, x, n):
    """x * 2**n; ir/primitives.py makes ``n`` int64, C's ldexp takes an int: beyond +-100000 every result is
    already 0, inf or x itself, so the clamp changes nothing."""
    lim, nlim = o.const(INT64, 100000), o.const(INT64, -100000)
    n = o.select(INT64, o.cmp(INT64, ">", n, lim), lim, o.select(INT64, o.cmp(INT64, "<", n, nlim), nlim, n))
    return o.math("ldexp", dt, x, o.cast(n, INT64, INT32))


@rule("logaddexp2", ulp=4)
def _logaddexp2(o, dt, x, y):
    mx = _maximum(o, dt, x, y)
    e = o.math("exp2", dt, o.neg(dt, o.math("fabs", dt, o.sub(dt, x, y))))
    r = o.add(dt, mx, o.mul(dt, o.math("log1p", dt, e), o.const(dt, 1 / np.log(2.0))))
    return o.select(dt, o.cmp(dt, "==", x, y), o.add(dt, x, o.const(dt, 1)), r)


@rule("sinc", ulp=8)
def _sinc(o, dt, x):
    y = o.mul(dt, o.const(dt, np.pi), x)
    r = o.div(dt, o.math("sin", dt, y), y)
    return o.select(dt, o.cmp(dt, "==", x, o.const(dt, 0)), o.const(dt, 1), r)


def _times_const(num, den):
    """x * (num / den) with the constant rounded as numpy rounds it: computed in x's own dtype."""
    def f(o, dt, x):
        return o.mul(dt, x, o.const(dt, np.asarray(num, dt) / np.asarray(den, dt)))
    return f


rule("deg2rad")(_times_const(np.pi, 180.0))
rule("rad2deg")(_times_const(180.0, np.pi))


@rule("signbit")
def _signbit(o, dt, x):
    return o.cmp(dt, "<", o.math("copysign", dt, o.const(dt, 1), x), o.const(dt, 0))


@rule("spacing")
def _spacing(o, dt, x):
    """The distance to the next float away from zero (numpy: the smallest subnormal for both zeros)."""
    away = o.math("nextafter", dt, x, o.math("copysign", dt, o.const(dt, np.inf), x))
    tiny = o.const(dt, np.finfo(dt).smallest_subnormal)
    return o.select(dt, o.cmp(dt, "==", x, o.const(dt, 0)), tiny, o.sub(dt, away, x))


def _neg_abs(o, dt, x):
    """-|x|: every int has one (|INT_MIN| has none)."""
    return o.select(dt, o.cmp(dt, ">", x, o.const(dt, 0)), o.neg(dt, x), x)


def _euclid_steps(dt) -> int:
    """Euclid's worst case over the magnitudes of ``dt``: consecutive Fibonacci numbers (46 below 2**31)."""
    limit, a, b, n = 2 ** (np.dtype(dt).itemsize * 8 - (0 if _u(dt) else 1)), 1, 1, 1
    while b <= limit:
        a, b, n = b, a + b, n + 1
    return n + 1


def _unsigned_gcd(o, dt, x, y):
    zero, one = o.const(dt, 0), o.const(dt, 1)

    def step(s):  # (a, b) -> (b mod a, a) until a == 0
        a, b = s
        return [o.imod(dt, b, o.select(dt, _is_zero(o, dt, a), one, a)), a]
    return o.while_(dt, [x, y], lambda s: o.cmp(dt, "!=", s[0], zero), step, _euclid_steps(dt))[1]


def _neg_gcd(o, dt, x, y):
    """-gcd(|x|, |y|): Euclid's loop (as numpy's) on non-positive values, unrolled for the worst case."""
    zero, one, m1 = o.const(dt, 0), o.const(dt, 1), o.const(dt, -1)

    def step(s):  # (a, b) -> (b mod a, a); a == 0 (the loop's end) and a == -1 (b mod -1 == 0) never divide
        a, b = s
        am1 = o.cmp(dt, "==", a, m1)
        safe = o.select(dt, o.or_(BOOL, o.cmp(dt, "==", a, zero), am1), one, a)
        return [o.select(dt, am1, zero, o.imod(dt, b, safe)), a]
    state = [_neg_abs(o, dt, x), _neg_abs(o, dt, y)]
    return o.while_(dt, state, lambda s: o.cmp(dt, "!=", s[0], zero), step, _euclid_steps(dt))[1]


@rule("gcd")
def _gcd(o, dt, x, y):
    if _u(dt):
        return _unsigned_gcd(o, dt, x, y)
    return o.neg(dt, _neg_gcd(o, dt, x, y))  # gcd(INT_MIN, 0) wraps to INT_MIN, as numpy's unsigned result


@rule("lcm")
def _lcm(o, dt, x, y):
    """|x| / gcd * |y| wrapping as numpy's unsigned arithmetic: (-|x|) / (-gcd) is exact and non-negative."""
    zero, one, m1 = o.const(dt, 0), o.const(dt, 1), o.const(dt, -1)
    if _u(dt):
        g = _unsigned_gcd(o, dt, x, y)
        g0 = _is_zero(o, dt, g)
        return o.select(dt, g0, zero, o.mul(dt, o.idiv(dt, x, o.select(dt, g0, one, g)), y))
    ng, nx = _neg_gcd(o, dt, x, y), _neg_abs(o, dt, x)
    g0, gm1 = o.cmp(dt, "==", ng, zero), o.cmp(dt, "==", ng, m1)
    q = o.select(dt, gm1, o.neg(dt, nx), o.idiv(dt, nx, o.select(dt, o.or_(BOOL, g0, gm1), one, ng)))
    return o.select(dt, g0, zero, o.mul(dt, q, o.neg(dt, _neg_abs(o, dt, y))))


def _shift_amount(o, dt, n):
    """(0 <= n < bits, n where it is so and 0 elsewhere): numpy defines the shifts beyond, C does not."""
    ok = o.and_(BOOL, o.cmp(dt, ">=", n, o.const(dt, 0)), o.cmp(dt, "<", n, o.const(dt, np.dtype(dt).itemsize * 8)))
    return ok, o.select(dt, ok, n, o.const(dt, 0))


@rule("left_shift")
def _left_shift(o, dt, x, n):
    ok, n = _shift_amount(o, dt, n)
    return o.select(dt, ok, o.shl(dt, x, n), o.const(dt, 0))


@rule("right_shift")
def _right_shift(o, dt, x, n):
    ok, n = _shift_amount(o, dt, n)
    zero = o.const(dt, 0)
    beyond = zero if _u(dt) else o.select(dt, o.cmp(dt, "<", x, zero), o.const(dt, -1), zero)
    return o.select(dt, ok, o.shr(dt, x, n), beyond)


# ------------------------------------------------------------------------------------------------ lowering
def lower(o, prim, in_dts, out_dt, args, overrides=None):
    """The backend value of elementwise primitive ``prim`` on ``args`` (of dtypes ``in_dts``): the backend's
    native form from ``overrides`` when it registered one for this primitive, else the table's rule."""
    if prim == "convert":
        return convert(o, args[0], in_dts[0], out_dt)
    if prim == "where":
        return o.select(out_dt, *args)
    dt = np.dtype(in_dts[0])
    if dt == FLOAT16:  # numpy computes float16 ufuncs in float32 and rounds each result to float16
        args = [o.cast(a, FLOAT16, FLOAT32) if np.dtype(d) == FLOAT16 else a for a, d in zip(args, in_dts)]
        steps = RoundEachStep(o) if prim in STEPWISE_IN_FLOAT16 else o
        res = _apply_row(steps, prim, FLOAT32, args, overrides)
        return o.cast(res, FLOAT32, FLOAT16) if np.dtype(out_dt) == FLOAT16 else res
    if prim in _CMP and {np.dtype(d).kind for d in in_dts} == {"u", "i"}:
        return mixed_sign_compare(o, _CMP[prim], in_dts, args)
    return _apply_row(o, prim, dt, args, overrides)


def _apply_row(o, prim, dt, args, overrides):
    native = overrides.get(prim) if overrides else None
    if native is not None:
        res = native(o, dt, *args)
        if res is not NotImplemented:
            return res
    row = RULES.get(prim)
    if row is None:
        raise NotImplementedError(f"the scalar table has no row for the elementwise primitive {prim!r}")
    return row.rule(o, dt, *args)


class _Recorder(ScalarOps):
    """Abstract operations that only note which math functions a rule calls (for cost)."""

    def __init__(self):
        self.calls = []

    def math(self, name, dt, *xs):
        self.calls.append(name)
        return name

    def while_(self, dt, state, cond, step, max_steps):
        cond(state)
        return step(state)


for _name in ABSTRACT_OPS:
    if _name not in ("math", "while_"):
        setattr(_Recorder, _name, lambda self, *a: None)


def _arity(f, prim) -> int:
    """How many operands a rule takes (its parameters after ``o, dt`` without defaults; ``*xs``: the math row's)."""
    params = list(inspect.signature(f).parameters.values())[2:]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return MATH[prim].nargs
    return sum(p.default is p.empty for p in params)


def math_calls(prim, dt=np.float64) -> list:
    """Names of the math functions the rule of ``prim`` calls in dtype ``dt``."""
    rec = _Recorder()
    row = RULES[prim]
    row.rule(rec, np.dtype(dt), *([None] * _arity(row.rule, prim)))
    return rec.calls


def cost(prim, dt=np.float64) -> int:
    """Per-element cost of ``prim``: the sum of its math calls' costs (0 for arithmetic and logic)."""
    if prim not in RULES:
        return 0
    return sum(MATH[n].cost for n in math_calls(prim, dt))


def is_expensive(prim) -> bool:
    """Whether ``prim`` calls a polynomial math library function (a vector math call on the CPU): compile time
    and run time are dominated by it (tiering and streamed stores read this)."""
    return _EXPENSIVE.get(prim, False)


_EXPENSIVE = {p: cost(p) >= EXPENSIVE for p in RULES}
