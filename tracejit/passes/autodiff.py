"""Reverse-mode autodiff over the SSA IR: one VJP rule per primitive, and the backward walk.

``backward(outputs, cotangents, wrt)`` appends, in the current ``ops.Builder``, the equations of
d(sum_i <cotangent_i, output_i>) / d(wrt_j). Rules build their results with ``ops`` (the same IR primitives as any
traced code), so the gradient graph is an ordinary graph: it can be optimized, fused, and differentiated again.

Cotangents are kept *broadcastable* to the value they belong to (e.g. the scalar 1.0 seeded by ``sum`` is not
materialized into an array of ones); they are materialized with ``broadcast_to`` only where a rule needs the exact
shape, and for the values returned.

Subgradient choices (documented, tested):
  * ``maximum``/``minimum`` (and ``fmax``/``fmin``): on a tie each input gets half of the cotangent.
  * ``max``/``min`` reductions: the cotangent is split equally among all positions equal to the extremum.
  * ``absolute``: ``sign(x)`` (0 at 0).
  * ``prod``: exact first derivative with zeros (one zero: only that position gets the product of the others;
    two or more: all zero). Its own derivative is exact away from zeros.
  * ``power(x, y)`` w.r.t. ``y`` is 0 where ``x == 0``.
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value, toposort
from ..ir.primitives import PRIMS
from ..ir.regions import REGION_PRIMS
from .ad_builders import (_add, _c, _div, _keepdims, _mul, _neg, _reduced_ct, _reshape, _slice, _sub,  # noqa: F401
                          _swap_last, _u, _unslice_axis, _where, _zeros, full, unbroadcast)

# primitives whose result has zero derivative everywhere it exists (or carries no gradient: ints, bools)
NON_DIFFERENTIABLE = {
    "sign", "floor", "ceil", "trunc", "rint", "floor_divide", "equal", "not_equal", "less", "less_equal",
    "greater", "greater_equal", "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and",
    "bitwise_or", "bitwise_xor", "invert", "isnan", "isinf", "isfinite", "argmax", "argmin", "any", "all",
    "dimsize", "iota", "signbit", "spacing", "gcd", "lcm", "left_shift", "right_shift",
}


# ------------------------------------------------------------------------------------------------ VJP rules
# Each rule: rule(eqn, g, need) -> one cotangent (or None) per input. ``g`` is broadcastable to eqn.out;
# ``need[i]`` says whether input i wants a cotangent. Results may be broadcastable to the (elementwise) output:
# the walk sums broadcast axes out.
RULES: dict = {}


def rule(*names):
    def deco(f):
        for n in names:
            RULES[n] = f
        return f
    return deco


def unary(name):
    """Register an elementwise unary rule written as ``d(x, out, g) -> cotangent``."""
    def deco(f):
        RULES[name] = lambda e, g, need: [f(e.inputs[0], e.out, g)]
        return f
    return deco


unary("negative")(lambda x, y, g: _neg(g))
unary("positive")(lambda x, y, g: g)
RULES["stop_gradient"] = lambda e, g, need: [None]


def _walk_only(e, g, need):
    raise AssertionError("custom_vjp_call is differentiated by the backward walk itself (_CustomCalls)")


RULES["custom_vjp_call"] = _walk_only
RULES["remat_barrier"] = lambda e, g, need: [g] + [None] * (len(e.inputs) - 1)
unary("absolute")(lambda x, y, g: _mul(g, _u("sign", x)))
unary("square")(lambda x, y, g: _mul(g, _mul(_c(2, x.dtype), x)))
unary("sqrt")(lambda x, y, g: _div(g, _mul(_c(2, x.dtype), y)))
unary("cbrt")(lambda x, y, g: _div(g, _mul(_c(3, x.dtype), _u("square", y))))
unary("reciprocal")(lambda x, y, g: _neg(_mul(g, _u("square", y))))
unary("exp")(lambda x, y, g: _mul(g, y))
unary("exp2")(lambda x, y, g: _mul(g, _mul(y, _c(np.log(2.0), x.dtype))))
unary("expm1")(lambda x, y, g: _mul(g, _add(y, _c(1, x.dtype))))
unary("log")(lambda x, y, g: _div(g, x))
unary("log2")(lambda x, y, g: _div(g, _mul(x, _c(np.log(2.0), x.dtype))))
unary("log10")(lambda x, y, g: _div(g, _mul(x, _c(np.log(10.0), x.dtype))))
unary("log1p")(lambda x, y, g: _div(g, _add(x, _c(1, x.dtype))))
unary("sin")(lambda x, y, g: _mul(g, _u("cos", x)))
unary("cos")(lambda x, y, g: _neg(_mul(g, _u("sin", x))))
unary("tan")(lambda x, y, g: _mul(g, _add(_c(1, x.dtype), _u("square", y))))
unary("arcsin")(lambda x, y, g: _div(g, _u("sqrt", _sub(_c(1, x.dtype), _u("square", x)))))
unary("arccos")(lambda x, y, g: _neg(_div(g, _u("sqrt", _sub(_c(1, x.dtype), _u("square", x))))))
unary("arctan")(lambda x, y, g: _div(g, _add(_c(1, x.dtype), _u("square", x))))
unary("sinh")(lambda x, y, g: _mul(g, _u("cosh", x)))
unary("cosh")(lambda x, y, g: _mul(g, _u("sinh", x)))
unary("tanh")(lambda x, y, g: _mul(g, _sub(_c(1, x.dtype), _u("square", y))))
unary("arcsinh")(lambda x, y, g: _div(g, _u("sqrt", _add(_u("square", x), _c(1, x.dtype)))))
unary("arccosh")(lambda x, y, g: _div(g, _u("sqrt", _sub(_u("square", x), _c(1, x.dtype)))))
unary("arctanh")(lambda x, y, g: _div(g, _sub(_c(1, x.dtype), _u("square", x))))
unary("sigmoid")(lambda x, y, g: _mul(g, _mul(y, _sub(_c(1, x.dtype), y))))
unary("softplus")(lambda x, y, g: _mul(g, _u("sigmoid", x)))


def _digamma(x):
    """digamma of a Value, the derivative of lgamma: a decomposition into primitives (tracejit/scipy_special.py)
    with its own exact derivative rule, so second derivatives work too."""
    from ..scipy_special import digamma_value
    return digamma_value(x)


unary("erf")(lambda x, y, g: _mul(g, _mul(_c(2 / np.sqrt(np.pi), x.dtype), _u("exp", _neg(_u("square", x))))))
unary("erfc")(lambda x, y, g: _mul(g, _mul(_c(-2 / np.sqrt(np.pi), x.dtype), _u("exp", _neg(_u("square", x))))))
unary("lgamma")(lambda x, y, g: _mul(g, _digamma(x)))
unary("tgamma")(lambda x, y, g: _mul(g, _mul(y, _digamma(x))))


unary("deg2rad")(lambda x, y, g: _mul(g, _c(np.pi / 180, x.dtype)))
unary("rad2deg")(lambda x, y, g: _mul(g, _c(180 / np.pi, x.dtype)))


@unary("sinc")
def _sinc(x, y, g):
    """(cos(pi x) - sinc(x)) / x, 0 at x == 0 (where sinc is flat)."""
    dt = x.dtype
    zero = ops.ufunc("equal", x, _c(0, dt))
    safe = _where(zero, _c(1, dt), x)
    d = _div(_sub(_u("cos", _mul(_c(np.pi, dt), safe)), y), safe)
    return _mul(g, _where(zero, _c(0, dt), d))


@rule("heaviside")
def _heaviside(e, g, need):
    """Flat in x (a step); the value h is taken where x == 0."""
    x, h = e.inputs
    at_zero = ops.convert(ops.ufunc("equal", x, _c(0, x.dtype)), x.dtype)
    return [None, _mul(g, at_zero) if need[1] else None]


@rule("copysign")
def _copysign(e, g, need):
    """|x| with y's sign: x's cotangent flips where the signs differ; y only chooses a sign."""
    x, y = e.inputs
    flip = ops.ufunc("logical_xor", _u("signbit", x), _u("signbit", y))
    return [_mul(g, _where(flip, _c(-1, x.dtype), _c(1, x.dtype))) if need[0] else None, None]


RULES["nextafter"] = lambda e, g, need: [g if need[0] else None, None]  # one ulp from x: slope 1 in x
RULES["ldexp"] = lambda e, g, need: [ops.ufunc("ldexp", g, e.inputs[1]) if need[0] else None, None]


@rule("logaddexp2")
def _logaddexp2(e, g, need):
    """d/da log2(2^a + 2^b) = sigmoid((a - b) log 2)."""
    a, b = e.inputs
    ln2 = _c(np.log(2.0), a.dtype)
    return [_mul(g, _u("sigmoid", _mul(_sub(a, b), ln2))) if need[0] else None,
            _mul(g, _u("sigmoid", _mul(_sub(b, a), ln2))) if need[1] else None]


@rule("convert")
def _convert(e, g, need):
    x = e.inputs[0]
    return [ops.convert(g, x.dtype) if T.is_float(x.dtype) else None]


@rule("add")
def _add_rule(e, g, need):
    return [g, g]


@rule("subtract")
def _subtract(e, g, need):
    return [g, _neg(g) if need[1] else None]


@rule("multiply")
def _multiply(e, g, need):
    a, b = e.inputs
    return [_mul(g, b) if need[0] else None, _mul(g, a) if need[1] else None]


@rule("divide")
def _divide(e, g, need):
    a, b = e.inputs
    return [_div(g, b) if need[0] else None, _neg(_div(_mul(g, e.out), b)) if need[1] else None]


@rule("remainder")
def _remainder(e, g, need):
    a, b = e.inputs
    return [g, _neg(_mul(g, ops.ufunc("floor_divide", a, b))) if need[1] else None]


@rule("power")
def _power(e, g, need):
    x, y = e.inputs
    dt = x.dtype
    gx = gy = None
    if need[0]:
        if y.is_const:
            ym1 = ops.constant(np.asarray(y.const - 1, dt))
            xp = x if np.all(ym1.const == 1) else ops.ufunc("power", x, ym1)
            gx = _mul(g, _mul(y, xp))
        else:
            gx = _mul(g, _mul(y, ops.ufunc("power", x, _sub(y, _c(1, dt)))))
    if need[1]:
        zero = ops.ufunc("equal", x, _c(0, dt))
        safe_log = _u("log", _where(zero, _c(1, dt), x))
        gy = _mul(g, _where(zero, _c(0, dt), _mul(e.out, safe_log)))
    return [gx, gy]


RULES["float_power"] = _power  # float_power's inputs are float64 already: power computes the same thing


@rule("arctan2")
def _arctan2(e, g, need):
    a, b = e.inputs
    denom = _add(_u("square", a), _u("square", b))
    return [_div(_mul(g, b), denom) if need[0] else None, _neg(_div(_mul(g, a), denom)) if need[1] else None]


@rule("hypot")
def _hypot(e, g, need):
    a, b = e.inputs
    return [_mul(g, _div(a, e.out)) if need[0] else None, _mul(g, _div(b, e.out)) if need[1] else None]


@rule("logaddexp")
def _logaddexp(e, g, need):
    """d/da log(e^a + e^b) = sigmoid(a - b): one stable transcendental per needed input."""
    a, b = e.inputs
    return [_mul(g, _u("sigmoid", _sub(a, b))) if need[0] else None,
            _mul(g, _u("sigmoid", _sub(b, a))) if need[1] else None]


def _select_rule(first_wins, nan_aware):
    """maximum/minimum (and fmax/fmin): the winner gets g, a tie gives each half."""
    def f(e, g, need):
        a, b = e.inputs
        dt = e.out.dtype
        a_wins, b_wins = first_wins(a, b), first_wins(b, a)
        if nan_aware:  # fmax/fmin ignore a nan operand: the other one wins
            a_wins = ops.ufunc("logical_or", a_wins, _u("isnan", b))
            b_wins = ops.ufunc("logical_or", b_wins, _u("isnan", a))
        tie = ops.ufunc("equal", a, b)
        half = _mul(g, _c(0.5, dt))
        zero = _c(0, dt)
        ga = _where(a_wins, g, _where(tie, half, zero)) if need[0] else None
        gb = _where(b_wins, g, _where(tie, half, zero)) if need[1] else None
        return [ga, gb]
    return f


def _gt(a, b):
    return ops.ufunc("greater", a, b)


def _lt(a, b):
    return ops.ufunc("less", a, b)


RULES["maximum"] = _select_rule(_gt, False)
RULES["minimum"] = _select_rule(_lt, False)
RULES["fmax"] = _select_rule(_gt, True)
RULES["fmin"] = _select_rule(_lt, True)


@rule("where")
def _where_rule(e, g, need):
    c, a, b = e.inputs
    zero = _c(0, e.out.dtype)
    return [None, _where(c, g, zero) if need[1] else None, _where(c, zero, g) if need[2] else None]


# reductions --------------------------------------------------------------------------------------------------
@rule("sum")
def _sum(e, g, need):
    x = e.inputs[0]
    return [_reduced_ct(g, e.out, x.shape, e.p["axes"])]


@rule("max", "min")
def _extremum(e, g, need):
    """The cotangent is split equally among all positions equal to the max (min)."""
    x = e.inputs[0]
    axes = e.p["axes"]
    dt = x.dtype
    hit = ops.convert(ops.ufunc("equal", x, _keepdims(e.out, x.shape, axes)), dt)
    count = _keepdims(ops.reduce("sum", hit, axes), x.shape, axes)
    return [_mul(_reduced_ct(g, e.out, x.shape, axes), _div(hit, count))]


@rule("prod")
def _prod(e, g, need):
    """prod_{j != i} x_j without dividing by zero: no zero -> prod/x_i; one zero -> the product of the others at
    the zero, 0 elsewhere; two or more zeros -> 0."""
    x = e.inputs[0]
    axes = e.p["axes"]
    dt = x.dtype
    is_zero = ops.ufunc("equal", x, _c(0, dt))
    x_nz = _where(is_zero, _c(1, dt), x)
    prod_nz = _keepdims(ops.reduce("prod", x_nz, axes), x.shape, axes)
    zeros = _keepdims(ops.reduce("sum", ops.convert(is_zero, dt), axes), x.shape, axes)
    no_zero = ops.ufunc("equal", zeros, _c(0, dt))
    one_zero_here = ops.ufunc("logical_and", ops.ufunc("equal", zeros, _c(1, dt)), is_zero)
    d = _where(no_zero, _div(prod_nz, x_nz), _where(one_zero_here, prod_nz, _c(0, dt)))
    return [_mul(_reduced_ct(g, e.out, x.shape, axes), d)]


# views and data movement -------------------------------------------------------------------------------------
@rule("reshape")
def _reshape_rule(e, g, need):
    x = e.inputs[0]
    return [g if g.ndim == 0 else _reshape(full(g, e.out.shape), x.shape)]


@rule("transpose")
def _transpose(e, g, need):
    if g.ndim == 0:
        return [g]
    perm = e.p["perm"]
    inv = tuple(int(i) for i in np.argsort(perm))
    return [ops.transpose(full(g, e.out.shape), inv)]


@rule("broadcast_to")
def _broadcast_to(e, g, need):
    return [unbroadcast(g, e.out.shape, e.inputs[0].shape)]


@rule("slice")
def _slice_rule(e, g, need):
    x = e.inputs[0]
    p = e.p
    g = full(g, e.out.shape)
    for axis, (start, step, n) in enumerate(zip(p["starts"], p["steps"], x.shape)):
        if start == 0 and step == 1 and e.out.shape[axis] == n:
            continue
        g = _unslice_axis(g, axis, start, step, n)
    return [g]


@rule("concatenate")
def _concatenate(e, g, need):
    axis = e.p["axis"]
    out, offset = [], 0
    for v, nd in zip(e.inputs, need):
        n = v.shape[axis]
        if nd:
            out.append(g if g.ndim == 0 else _slice(full(g, e.out.shape), axis, offset, 1, n))
        else:
            out.append(None)
        offset = offset + n
    return out


@rule("matmul")
def _matmul(e, g, need):
    a, b = e.inputs
    g = full(g, e.out.shape)
    ga = ops.bind("matmul", g, _swap_last(b)) if need[0] else None
    gb = ops.bind("matmul", _swap_last(a), g) if need[1] else None
    return [ga, gb]


@rule("gather")
def _gather(e, g, need):
    """Rows taken several times get the sum of their cotangents: a scatter-add."""
    x, idx = e.inputs
    axis = e.p["axis"]
    return [ops.bind("scatter_add", full(g, e.out.shape), idx, axis=axis, size=x.shape[axis]), None]


@rule("scatter_add")
def _scatter_add(e, g, need):
    _, idx = e.inputs
    return [ops.bind("gather", full(g, e.out.shape), idx, axis=e.p["axis"]), None]


# ------------------------------------------------------------------------------------------------ the walk
class _CustomCalls:
    """The marks of custom-rule calls (tracejit/custom.py). Each output of a call has a mark; every use of any mark
    comes after the call's first mark in the topological order, so when the reverse walk reaches that first mark
    all of the call's cotangents are known: the rule runs there, once."""

    def __init__(self, eqns):
        self.first, self.pending = {}, {}
        for e in eqns:
            if e.prim == "custom_vjp_call":
                self.first.setdefault(id(e.p["call"]), e)

    def visit(self, e, g, active):
        call = e.p["call"]
        got = self.pending.setdefault(id(call), {})
        if g is not None and e.out.id in active:
            got[e.p["index"]] = full(g, e.out.shape)
        if self.first[id(call)] is not e or not got:
            return []
        n_in = call.n_in
        ins, res = list(e.inputs[1:1 + n_in]), list(e.inputs[1 + n_in:])
        cts = [got.get(k) for k in range(len(call.out_types))]
        return [(v, c) for v, c in zip(ins, call.pullback(ins, res, cts))
                if c is not None and v.id in active and T.is_float(v.dtype)]


def _differentiable(e) -> bool:
    return e.prim not in NON_DIFFERENTIABLE and T.is_float(e.out.dtype)


def _active_values(eqns, wrt) -> set:
    """Ids of the float values that depend on some ``wrt`` value through differentiable primitives."""
    active = {v.id for v in wrt}
    for e in eqns:
        if _differentiable(e) and any(v.id in active for v in e.inputs):
            active.add(e.out.id)
    return active


def _check_wrt(wrt):
    for i, w in enumerate(wrt):
        if not isinstance(w, Value):
            raise TypeError(f"backward: wrt[{i}] must be an IR Value, got {type(w).__name__}")
        if not T.is_float(w.dtype):
            raise TypeError(f"cannot differentiate with respect to a value of dtype {w.dtype} (wrt[{i}] of type "
                            f"{w.type}): gradients are defined only for float inputs; cast it with "
                            f".astype(np.float64) if it is meant to be continuous")


def backward(outputs: list, cotangents: list, wrt: list) -> list:
    """Append the equations of d(sum_i <cotangents[i], outputs[i]>)/d(wrt[j]) to the current Builder and return
    one Value per ``wrt`` (zeros of its shape and dtype where no differentiable path leads to the outputs)."""
    outputs, cotangents, wrt = list(outputs), list(cotangents), list(wrt)
    if len(outputs) != len(cotangents):
        raise ValueError(f"backward: {len(outputs)} outputs but {len(cotangents)} cotangents")
    _check_wrt(wrt)
    eqns = toposort(outputs)
    active = _active_values(eqns, wrt)
    cts: dict = {}

    def accumulate(v: Value, c: Value, out_shape):
        c = unbroadcast(c, out_shape, v.shape)
        if c.dtype != v.dtype:
            c = ops.convert(c, v.dtype)
        old = cts.get(v.id)
        cts[v.id] = c if old is None else _add(old, c)

    for o, c in zip(outputs, cotangents):
        if o.id not in active:
            continue
        c = ops.as_value(c)
        if c.dtype != o.dtype:
            c = ops.convert(c, o.dtype)
        accumulate(o, c, o.shape)
    custom = _CustomCalls(eqns)
    regions = RegionCalls(eqns)
    for e in reversed(eqns):
        g = cts.get(e.out.id)
        if e.prim == "custom_vjp_call":  # the user's rule, run once per call at its first mark
            for v, c in custom.visit(e, g, active):
                accumulate(v, c, v.shape)
            continue
        if e.prim in REGION_PRIMS:  # a loop's or branch's rule, once for all its results (autodiff_regions.py)
            for v, c in regions.visit(e, g, active):
                accumulate(v, c, v.shape)
            continue
        if g is None or e.out.id not in active:
            continue
        need = [v.id in active for v in e.inputs]
        if not any(need):
            continue
        fn = RULES.get(e.prim)
        if fn is None:
            raise NotImplementedError(f"tracejit has no gradient rule for the primitive {e.prim!r}")
        elementwise = PRIMS[e.prim].kind == "elementwise"
        for v, nd, c in zip(e.inputs, need, fn(e, g, need)):
            if nd and c is not None:
                accumulate(v, c, e.out.shape if elementwise else v.shape)
    result = []
    for w in wrt:
        c = cts.get(w.id)
        result.append(_zeros(w.dtype, w.shape) if c is None else full(c, w.shape))
    return result


from .autodiff_regions import RULES as _REGION_RULES, RegionCalls  # noqa: E402  (they call back into backward)

RULES.update(_REGION_RULES)  # (eqn, {result: cotangent}, need) -> cotangents; run once per loop by RegionCalls

__all__ = ["backward", "RULES", "NON_DIFFERENTIABLE", "unbroadcast"]
from . import autodiff_linalg  # noqa: E402,F401  (VJP rules of the library primitives: sort, LAPACK, FFT)
