"""Algebraic canonicalization (``simplify``); constant folding (``fold``) is in passes/fold.py.

simplify, as Theano's fast-run canonicalizer: ``--x -> x``, ``-(a - b) -> b - a``, ``x - x -> 0``, ``x + 0``,
``x - 0``, ``x * 1``, ``x * 0 -> 0``, ``x / 1``, ``x ** 0|1|2|0.5|-1``, ``exp(log(x)) -> x``, ``log(exp(x)) -> x``,
``where(c, x, x) -> x``; sums collected so equal terms cancel or combine (``x + y - x -> y``, ``2*x + 3*x -> 5*x``)
and products likewise (``x*y/x -> y``, ``x*x -> square(x)``, ``x / c -> x * (1/c)``); double transposes, reshapes
and broadcasts merged; ``sum`` of a broadcast turned into a multiply; ``(A.T @ B.T).T -> B @ A``.

A collection fires only when it makes the graph smaller (nodes other consumers still need do not count as saved;
a division by a constant turning into a multiplication also counts), and gives up on trees of more than
``BUDGET`` nodes, so long chains cost linear time. Integer sums are a
ring (wrap-around included), so they cancel freely; products are collected for floats only.

``strict_ieee=True`` turns off the rewrites that change results only for inf, nan or signed zero:
  x - x -> 0, x * 0 -> 0, x + 0 -> x (float; -0 + 0 is +0), -(a - b) -> b - a (float; signed zero),
  exp(log(x)) -> x, log(exp(x)) -> x, x*y/x -> y and any sum or product where a term cancels (x + y - x -> y),
  merging constants of opposite sign or several constant factors, x / c -> x * (1/c) unless 1/c is exact, and
  reassociating sums through subtract or negative (signed zeros): strict sums only merge ``x + x -> 2*x`` and
  constants of one sign.
Integer versions of these stay on (they are exact for integers). Everything else is exact or differs by rounding.
A product never cancels a factor converted from an integer or bool (``x / x`` is nan for x = 0, an ordinary integer),
and never turns ``x / c`` into ``x * (1/c)`` for such x unless 1/c is exact (``6 / 3`` stays exactly 2).
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import ops
from ..ir import types as T
from .matching import (arg, args, const_like, eqn_of, is_float, is_num, is_scalar, neg, operands_with_scalar, param,
                       scalar)
from .patterns import Walk, on, rewrite, rule_table

BUDGET = 48  # nodes a sum/product collection looks through


def _ieee_ok(v, ctx) -> bool:
    """May a rewrite that is wrong only for inf/nan/signed zero fire on v? (always for integers)"""
    return not (ctx.strict_ieee and is_float(v))


# ------------------------------------------------------------------------------------------------ small rules
@on("negative", reach=1)
def double_negation(v, ctx):
    """--x -> x"""
    return arg(arg(v, "negative"), "negative")


@on("stop_gradient", reach=1)
def drop_stop_gradient(v, ctx):
    """stop_gradient(x) -> x: it only matters to differentiation, which runs on traced graphs before any pass"""
    return arg(v, "stop_gradient")


@on("custom_vjp_call", reach=1)
def drop_custom_rule(v, ctx):
    """custom_vjp_call(x, args..., residuals...) -> x: the rule, like stop_gradient, only matters to
    differentiation"""
    e = eqn_of(v, "custom_vjp_call")
    return e.inputs[0] if e is not None else None


@on("negative", reach=1)
def negated_difference(v, ctx):
    """-(a - b) -> b - a"""
    ab = args(arg(v, "negative"), "subtract")
    if ab is None or not _ieee_ok(v, ctx):
        return None
    return ops.ufunc("subtract", ab[1], ab[0])


@on("subtract", reach=1)
def self_difference(v, ctx):
    """x - x -> 0"""
    a, b = args(v, "subtract")
    if a is b and is_num(v) and _ieee_ok(v, ctx):
        return const_like(0, v)


@on("subtract", reach=1)
def subtract_zero(v, ctx):
    """x - 0 -> x (exact, -0 - 0 is -0)"""
    a, b = args(v, "subtract")
    if is_num(v) and is_scalar(b, 0):
        return a


@on("add", reach=1)
def add_zero(v, ctx):
    """x + 0 -> x"""
    x = operands_with_scalar(v, "add", 0)
    if x is not None and is_num(v) and _ieee_ok(v, ctx):
        return x


@on("multiply", reach=1)
def multiply_one(v, ctx):
    """x * 1 -> x"""
    x = operands_with_scalar(v, "multiply", 1)
    if x is not None and is_num(v):
        return x


@on("multiply", reach=1)
def multiply_zero(v, ctx):
    """x * 0 -> 0"""
    x = operands_with_scalar(v, "multiply", 0)
    if x is not None and is_num(v) and _ieee_ok(v, ctx):
        return const_like(0, v)


@on("divide", reach=1)
def divide_one(v, ctx):
    """x / 1 -> x"""
    a, b = args(v, "divide")
    if is_scalar(b, 1):
        return a


@on("power", reach=1)
def power_constant(v, ctx):
    """x ** 1 -> x, x ** 2 -> square(x), x ** 0.5 -> sqrt(x), x ** 0 -> 1, x ** -1 -> 1 / x (floats)"""
    x, p = args(v, "power")
    e = scalar(p)
    if e is None or not is_num(v):
        return None
    if e == 1:
        return x
    if e == 2:
        return ops.ufunc("square", x)
    if e == 0:
        return const_like(1, v)  # numpy: nan ** 0 == 1 too
    if is_float(v) and e == 0.5:
        return ops.ufunc("sqrt", x)
    if is_float(v) and e == -1:
        return ops.ufunc("divide", const_like(1, v), x)
    return None


@on("exp", reach=1)
def exp_of_log(v, ctx):
    """exp(log(x)) -> x"""
    x = arg(arg(v, "exp"), "log")
    if x is not None and _ieee_ok(v, ctx):
        return x


@on("log", reach=1)
def log_of_exp(v, ctx):
    """log(exp(x)) -> x"""
    x = arg(arg(v, "log"), "exp")
    if x is not None and _ieee_ok(v, ctx):
        return x


@on("where", reach=1)
def where_same(v, ctx):
    """where(c, x, x) -> x"""
    c, a, b = args(v, "where")
    if a is b:
        return a


@on("where", reach=1)
def where_constant(v, ctx):
    """where(True, x, y) -> x; where(False, x, y) -> y (a condition known everywhere: complex z[m] writes on a
    fresh array)"""
    c, a, b = args(v, "where")
    known = scalar(c)
    if known is not None and c.dtype == np.bool_:
        pick = a if known else b
        return pick if pick.dtype == v.dtype and pick.type.weak == v.type.weak else None


# ------------------------------------------------------------------------------------------------ collections
def _count_nodes(v, leaves) -> int:
    """Equations in the expression tree of v above ``leaves`` (ids) and constants."""
    n, stack = 0, [v]
    while stack:
        x = stack.pop()
        if x.id in leaves or x.eqn is None:
            continue
        n += 1
        stack.extend(x.eqn.inputs)
    return n


class _Terms:
    """term Value -> accumulated coefficient (or exponent), with each contribution kept for the strict checks."""

    def __init__(self):
        self.vals: dict = {}
        self.parts: dict = {}

    def add(self, t, c):
        if t.id not in self.vals:
            self.vals[t.id] = t
            self.parts[t.id] = []
        self.parts[t.id].append(c)

    def total(self, tid):
        return sum(self.parts[tid])

    def mixed_signs(self) -> bool:
        return any(min(p) < 0 < max(p) for p in self.parts.values())

    def live(self):
        return [(self.vals[i], self.total(i)) for i in self.vals if self.total(i) != 0]


# the collections read the trees they walk and the operands where they stop (whether they are constants, their
# primitive); walking every multiply covers the operands of one that is no scaling (whether they are constants)
SUM_WALK = Walk(frozenset({"add", "subtract", "negative", "multiply"}), 0)
PRODUCT_WALK = Walk(frozenset({"multiply", "divide", "negative", "square", "power"}), 0)


@on("add", "subtract", "negative", "multiply", reach=SUM_WALK)
def collect_sum(v, ctx):
    """sums collected: x + y - x -> y, 2*x + 3*x -> 5*x, (x + 1) + 2 -> x + 3"""
    if not is_num(v):
        return None
    strict = ctx.strict_ieee and is_float(v)
    if _nothing_to_collect(v, strict):
        return None
    terms, consts, nodes, unary, occurrences = _Terms(), [], 0, 0, 0
    stack, budget, dtype = [(v, 1)], BUDGET, v.dtype
    while stack:
        x, c = stack.pop()
        s = scalar(x) if x.const is not None else None
        if s is not None:
            consts.append(c * s)
            continue
        e = x.eqn
        inner = (_linear_children(x, c, strict) if e is not None and e.prim in SUM_WALK.prims
                 and x.type.dtype == dtype else None)
        if inner is None:
            terms.add(x, c)
            occurrences += 1
            continue
        if budget == 0:
            return None
        budget -= 1
        nodes += x is v or not ctx.shared(x)  # a node other users still need is not saved by rewriting
        unary += len(inner) == 1
        stack.extend(reversed(inner))
    if unary == 0 and occurrences == len(terms.vals) and (not consts or (len(consts) == 1 and consts[0] != 0)):
        return None  # distinct terms joined by add and subtract alone: as few equations as a sum can have
    if nodes == 0 or not all(math.isfinite(c) for p in terms.parts.values() for c in p):
        return None
    if not all(math.isfinite(c) for c in consts):
        return None
    const = sum(consts)
    if strict and (terms.mixed_signs() or any(c == 0 for p in terms.parts.values() for c in p)
                   or (consts and (min(consts) < 0 < max(consts) or 0 in consts))):
        return None
    live = terms.live()
    if _sum_size(live, const) >= nodes:
        return None
    try:
        out = _build_sum(live, const, v)
    except (OverflowError, TypeError, ValueError):  # an integer coefficient beyond the dtype's range
        return None
    if _count_nodes(out, set(terms.vals)) < nodes:
        return out
    return None


def _nothing_to_collect(v, strict) -> bool:
    """Cheap test that skips the tree walk: v is no sum (x * y), or a binary node over two distinct operands that
    are neither constants nor sums themselves has nothing to cancel or combine (most nodes of a big graph)."""
    inner = _linear_children(v, 1, strict)
    if inner is None:
        return True
    if len(inner) == 1:  # -x or k * x over a term x: already as small as it gets (x * 1 and x * 0 are not)
        x, c = inner[0]
        return (c not in (0, 1) and math.isfinite(c) and scalar(x) is None
                and not (x.eqn is not None and x.dtype == v.dtype and _linear_children(x, 1, strict) is not None))
    ins = v.eqn.inputs
    if len(ins) != 2 or ins[0] is ins[1] or v.eqn.prim == "multiply":
        return False
    for x in ins:
        if scalar(x) is not None:
            return False
        if x.eqn is not None and x.dtype == v.dtype and _linear_children(x, 1, strict) is not None:
            return False
    return True


def _linear_children(x, c, strict):
    """(child, coefficient) pairs when x is a node a sum looks through, else None."""
    p = x.eqn.prim
    ins = x.eqn.inputs
    if p == "add":
        return [(ins[0], c), (ins[1], c)]
    if strict:  # reassociating through a negation can flip the sign of a zero: -(a + b) is -0, -a - b is +0
        return None
    if p == "subtract":
        return [(ins[0], c), (ins[1], -c)]
    if p == "negative":
        return [(ins[0], -c)]
    if p == "multiply":
        ka, kb = scalar(ins[0]), scalar(ins[1])
        if (ka is None) == (kb is None):
            return None
        return [(ins[1], c * ka)] if ka is not None else [(ins[0], c * kb)]
    return None


def _sum_size(live, const) -> int:
    """Equations ``_build_sum`` makes (so a collection that would not shrink the tree builds nothing)."""
    scalings = sum(1 for _, c in live if abs(c) != 1)
    parts = len(live) + (const != 0)
    lone_negation = parts > 0 and const <= 0 and all(c < 0 for _, c in live) and bool(live)
    return scalings + max(parts - 1, 0) + lone_negation


def _build_sum(live, const, v):
    def scaled(t, c):
        return t if c == 1 else ops.ufunc("multiply", const_like(c, v), t)

    acc = None
    for t, c in live:
        if c > 0:
            acc = scaled(t, c) if acc is None else ops.ufunc("add", acc, scaled(t, c))
    if const > 0:
        acc = const_like(const, v) if acc is None else ops.ufunc("add", acc, const_like(const, v))
    for t, c in live:
        if c < 0:
            x = scaled(t, -c)
            acc = neg(x) if acc is None else ops.ufunc("subtract", acc, x)
    if const < 0:
        acc = (const_like(const, v) if acc is None
               else ops.ufunc("subtract", acc, const_like(-const, v)))
    return acc if acc is not None else const_like(0, v)


@on("multiply", "divide", "square", "power", "negative", reach=PRODUCT_WALK)
def collect_product(v, ctx):
    """products collected: x*y/x -> y, x*x -> square(x), x / c -> x * (1/c), 2*(3*x) -> 6*x (floats)"""
    if not is_float(v) or _nothing_to_multiply(v):
        return None
    strict = ctx.strict_ieee
    terms, nodes, k = _Terms(), 0, 1.0
    factors = []  # the constant factors, as multiplied in (1/c for a divisor c)
    divisor_inexact = False
    stack, budget, dtype = [(v, 1)], BUDGET, v.dtype
    while stack:
        x, p = stack.pop()
        s = scalar(x) if x.const is not None else None
        if s is not None:
            if p < 0:
                if s == 0 or not math.isfinite(1 / s):
                    return None
                divisor_inexact |= math.frexp(s)[0] not in (0.5, -0.5)
            f = float(s) ** p
            factors.append(f)
            k *= f
            continue
        e = x.eqn
        inner = (_product_children(x, p) if e is not None and e.prim in PRODUCT_WALK.prims
                 and x.type.dtype == dtype else None)
        if inner is None:
            terms.add(x, p)
            continue
        if budget == 0:
            return None
        budget -= 1
        nodes += x is v or not ctx.shared(x)
        if x.eqn.prim == "negative":
            factors.append(-1.0)
            k = -k
        stack.extend(reversed(inner))
    if nodes == 0 or not math.isfinite(k):
        return None
    has_divisor = v.eqn.prim == "divide" and scalar(v.eqn.inputs[1]) is not None
    if divisor_inexact and (strict or any(_from_int(t) for t in terms.vals.values())):
        return None
    if strict and (terms.mixed_signs() or k == 0 or len([f for f in factors if abs(f) != 1]) > 1):
        return None
    if any(min(p) < 0 < max(p) and _from_int(terms.vals[i]) for i, p in terms.parts.items()):
        return None  # x / x with x from an integer: 0 is an ordinary integer, 0 / 0 is nan, not 1
    live = terms.live()
    if k == 0:
        return const_like(0, v)
    size = _product_size(live, k)
    merged = any(len(p) > 1 for p in terms.parts.values())  # x * x -> square(x): reads x once
    if size > nodes or (size == nodes and not (has_divisor or merged)):
        return None
    out = _build_product(live, k, v)
    new_nodes = _count_nodes(out, set(terms.vals))
    if new_nodes < nodes or (new_nodes == nodes and (has_divisor or merged)):
        return out
    return None


def _nothing_to_multiply(v) -> bool:
    """Cheap test that skips the tree walk: v is no product (x ** y), or x * y, x / y, -x, square(x) over distinct
    operands that are neither constants nor products themselves is as small as it gets."""
    if _product_children(v, 1) is None:
        return True
    ins = v.eqn.inputs
    if len(ins) == 2 and ins[0] is ins[1]:
        return False
    for x in ins:
        if scalar(x) is not None:
            return False
        if x.eqn is not None and x.dtype == v.dtype and _product_children(x, 1) is not None:
            return False
    return True


def _from_int(t) -> bool:
    """t holds integers: converted from an int dtype, or a float rounded to one (np.round(x, 1) is rint(10x) / 10).
    Their quotient by a constant must stay correctly rounded (3 / 10 is 0.3, 3 * 0.1 is 0.30000000000000004)."""
    if t.eqn is not None and t.eqn.prim in ("rint", "floor", "ceil", "trunc"):
        return True
    src = arg(t, "convert")
    return src is not None and src.dtype.kind != "f"


def _product_children(x, p):
    e = x.eqn
    ins = e.inputs
    if e.prim == "multiply":
        return [(ins[0], p), (ins[1], p)]
    if e.prim == "divide":
        return [(ins[0], p), (ins[1], -p)]
    if e.prim == "negative":
        return [(ins[0], p)]
    if e.prim == "square":
        return [(ins[0], 2 * p)]
    if e.prim == "power":
        q = scalar(ins[1])
        if q is not None and float(q).is_integer() and 0 < abs(q) <= 8:
            return [(ins[0], int(q) * p)]
    return None


def _product_size(live, k) -> int:
    """Equations ``_build_product`` makes."""
    powers = sum(1 for _, e in live if abs(e) != 1)
    n_num = sum(1 for _, e in live if e > 0)
    n_den = len(live) - n_num
    return (powers + max(n_num - 1, 0) + max(n_den - 1, 0) + (n_num > 0 and k != 1) + (n_den > 0))


def _build_product(live, k, v):
    def pw(t, e):
        if e == 1:
            return t
        if e == 2:
            return ops.ufunc("square", t)
        return ops.ufunc("power", t, const_like(e, v))

    def prod(items):
        acc = None
        for t, e in items:
            acc = pw(t, e) if acc is None else ops.ufunc("multiply", acc, pw(t, e))
        return acc

    num = prod([(t, e) for t, e in live if e > 0])
    den = prod([(t, -e) for t, e in live if e < 0])
    if num is None:
        num = const_like(k, v)
    elif k == -1:
        num = ops.ufunc("negative", num)
    elif k != 1:
        num = ops.ufunc("multiply", const_like(k, v), num)
    return num if den is None else ops.ufunc("divide", num, den)


# ------------------------------------------------------------------------------------------------ shapes
@on("transpose", reach=1)
def transpose_of_transpose(v, ctx):
    """x.transpose(p).transpose(q) -> x.transpose(p[q]) (or x)"""
    x = arg(v, "transpose")
    y = arg(x, "transpose")
    if y is None:
        return None
    p, q = param(x, "perm"), param(v, "perm")
    return ops.transpose(y, tuple(p[i] for i in q))


def _swap_last(nd):
    return tuple(range(nd - 2)) + (nd - 1, nd - 2)


@on("transpose", reach=2)
def transpose_of_matmul(v, ctx):
    """(A.T @ B.T).T -> B @ A (when at least one operand is a transpose, so transposes disappear)"""
    y = arg(v, "transpose")
    nd = v.ndim
    if nd < 2 or param(v, "perm") != _swap_last(nd):
        return None
    ab = args(y, "matmul")
    if ab is None or ab[0].ndim != nd or ab[1].ndim != nd:
        return None

    def untransposed(x):
        inner = arg(x, "transpose")
        return inner if inner is not None and param(x, "perm") == _swap_last(nd) else None

    a, b = ab
    ua, ub = untransposed(a), untransposed(b)
    if ua is None and ub is None:
        return None
    left = ub if ub is not None else ops.transpose(b, _swap_last(nd))
    right = ua if ua is not None else ops.transpose(a, _swap_last(nd))
    return ops.bind("matmul", left, right)


@on("reshape", reach=1)
def reshape_of_reshape(v, ctx):
    """x.reshape(s1).reshape(s2) -> x.reshape(s2) (or x)"""
    y = arg(arg(v, "reshape"), "reshape")
    if y is not None:
        return ops.reshape(y, v.shape)


@on("broadcast_to", reach=1)
def broadcast_of_broadcast(v, ctx):
    """broadcast_to(broadcast_to(x, s1), s2) -> broadcast_to(x, s2)"""
    y = arg(arg(v, "broadcast_to"), "broadcast_to")
    if y is not None:
        return ops.broadcast_to(y, v.shape)


@on("sum", reach=1)
def sum_of_broadcast(v, ctx):
    """sum(broadcast_to(x, S), axes) -> x * (number of copies) (summing x's own axes first)"""
    b = arg(v, "sum")
    src = arg(b, "broadcast_to")
    if src is None:
        return None
    axes, S, r = param(v, "axes"), b.shape, src.ndim
    off = len(S) - r
    copied = [a for a in axes if a < off or (src.shape[a - off] == 1 and S[a] != 1)]
    if not copied:
        return None
    own = tuple(a - off for a in axes if a not in copied)
    dropped = {a - off for a in copied if a >= off}
    y = ops.reduce("sum", src, own) if own else src
    y = ops.reshape(y, tuple(d for j, d in enumerate(src.shape) if j not in own and j not in dropped))
    y = ops.convert(y, v.dtype)
    n = T.prod([S[a] for a in copied])
    count = const_like(n, v) if isinstance(n, int) else ops.convert(ops.dimsize(n), v.dtype)
    out = ops.ufunc("multiply", y, count)
    # x's lengths may be symbols the broadcast equated with S's (a recorded constraint): take S's names back
    return ops.broadcast_to(out, v.shape) if out.shape != v.shape else out


SIMPLIFY_RULES = rule_table(drop_stop_gradient, drop_custom_rule, double_negation, negated_difference, self_difference, subtract_zero,
                            add_zero, multiply_one, multiply_zero, divide_one, power_constant, exp_of_log, log_of_exp,
                            where_same, where_constant, collect_sum, collect_product, transpose_of_transpose,
                            transpose_of_matmul, reshape_of_reshape, broadcast_of_broadcast, sum_of_broadcast)


def simplify(graph, strict_ieee=False, stats=None, memo=None, **_):
    """Algebraic canonicalization (see the module docstring for the rewrites and what strict_ieee turns off)."""
    return rewrite(graph, SIMPLIFY_RULES, strict_ieee, stats, memo)
