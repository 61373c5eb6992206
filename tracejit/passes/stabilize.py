"""Numerically stable forms (PyTensor's ``stabilize`` stage): same value, no overflow or cancellation.

  log(1 + x) -> log1p(x), log(1 - x) -> log1p(-x)      exp(x) - 1 -> expm1(x)
  log(1 + exp(x)) -> softplus(x), log1p(exp(x)) -> softplus(x)
  1 / (1 + exp(-x)) -> sigmoid(x), exp(x) / (1 + exp(x)) -> sigmoid(x)
  log(sigmoid(x)) -> -softplus(-x)                      log(1 - sigmoid(x)) -> -softplus(x)
  log(sum(exp(x))) -> log(sum(exp(x - m))) + m with m = max(x) (m = 0 where max is not finite)
  log(exp(a) / b) -> a - log(b)    (so log(softmax(x)), traced as exp(x - max) / sum(exp(x - max)), becomes
                                    log_softmax: (x - max) - log(sum(exp(x - max))))
  sqrt(x ** 2), sqrt(square(x)) -> abs(x)
The binary cross-entropy of a sigmoid, -(t*log(sigmoid(z)) + (1-t)*log(1-sigmoid(z))), becomes
t*softplus(-z) + (1-t)*softplus(z) through the rules above (``1/(1+exp(-z))`` is first recognised as sigmoid).

These rewrites make results more accurate (finite where the written form overflows to inf or rounds to 0); they
are not switched off by ``strict_ieee``, which guards the canonicalizations in ``simplify``.
"""
from __future__ import annotations

from ..ir import ops
from .matching import arg, args, const_like, is_float, is_scalar, neg, operands_with_scalar, param
from .patterns import on, rewrite, rule_table


def _one_plus(v):
    """y when v = 1 + y (either order), else None."""
    return operands_with_scalar(v, "add", 1)


def _one_minus(v):
    """y when v = 1 - y, else None."""
    ab = args(v, "subtract")
    return ab[1] if ab is not None and is_scalar(ab[0], 1) else None


def softplus(x):
    return ops.ufunc("softplus", x)


@on("log", reach=1)
def log_of_sigmoid(v, ctx):
    """log(sigmoid(x)) -> -softplus(-x)"""
    x = arg(arg(v, "log"), "sigmoid")
    if x is not None:
        return neg(softplus(neg(x, True)))


@on("log", reach=2)
def log_of_one_minus_sigmoid(v, ctx):
    """log(1 - sigmoid(x)) -> -softplus(x)"""
    x = arg(_one_minus(arg(v, "log")), "sigmoid")
    if x is not None:
        return neg(softplus(x))


@on("log1p", reach=2)
def log1p_of_negated_sigmoid(v, ctx):
    """log1p(-sigmoid(x)) -> -softplus(x)"""
    x = arg(arg(arg(v, "log1p"), "negative"), "sigmoid")
    if x is not None:
        return neg(softplus(x))


@on("log", reach=2)
def log_of_one_plus_exp(v, ctx):
    """log(1 + exp(x)) -> softplus(x)"""
    x = arg(_one_plus(arg(v, "log")), "exp")
    if x is not None:
        return softplus(x)


@on("log1p", reach=1)
def log1p_of_exp(v, ctx):
    """log1p(exp(x)) -> softplus(x)"""
    x = arg(arg(v, "log1p"), "exp")
    if x is not None:
        return softplus(x)


@on("log", reach=2)
def log_of_exp_ratio(v, ctx):
    """log(exp(a) / b) -> a - log(b)   (log of a softmax -> log_softmax)"""
    ab = args(arg(v, "log"), "divide")
    a = arg(ab and ab[0], "exp")
    if a is not None:
        return ops.ufunc("subtract", a, ops.ufunc("log", ab[1]))


def _strip_views(v):
    while v.eqn is not None and v.eqn.prim in ("reshape", "broadcast_to"):
        v = v.eqn.inputs[0]
    return v


def _shifted_by_max(x, axes) -> bool:
    """Is x already ``a - max(a, axes)`` (possibly reshaped, possibly with the where(isfinite) guard)?"""
    ab = args(x, "subtract")
    if ab is None:
        return False
    a, m = ab
    m = _strip_views(m)
    w = args(m, "where")
    if w is not None:
        m = _strip_views(w[1])
    mx = args(m, "max")
    return mx is not None and mx[0] is a and param(m, "axes") == axes


@on("log")  # no bounded reach: the max it looks for may sit behind any number of reshapes
def log_sum_exp(v, ctx):
    """log(sum(exp(x))) -> log(sum(exp(x - m))) + m, m = max(x) where finite else 0"""
    s = arg(v, "log")
    inner = arg(s, "reshape")  # keepdims=True puts a reshape between the sum and the log
    total = inner if inner is not None else s
    x = arg(arg(total, "sum"), "exp")
    if x is None or not is_float(x):
        return None
    axes = param(total, "axes")
    if _shifted_by_max(x, axes) or any(x.shape[a] == 0 for a in axes):
        return None
    m = ops.reduce("max", x, axes)
    m = ops.ufunc("where", ops.ufunc("isfinite", m), m, const_like(0, m))
    keep = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    shifted = ops.ufunc("subtract", x, ops.reshape(m, keep))
    lse = ops.ufunc("add", ops.ufunc("log", ops.reduce("sum", ops.ufunc("exp", shifted), axes)), m)
    return ops.reshape(lse, s.shape)


@on("log", reach=2)
def log_of_one_plus(v, ctx):
    """log(1 + x) -> log1p(x), log(1 - x) -> log1p(-x)"""
    s = arg(v, "log")
    y = _one_plus(s)
    if y is not None:
        return ops.ufunc("log1p", y)
    y = _one_minus(s)
    if y is not None:
        return ops.ufunc("log1p", neg(y, True))


@on("subtract", "add", reach=1)
def exp_minus_one(v, ctx):
    """exp(x) - 1 -> expm1(x)  (and exp(x) + -1)"""
    ab = args(v, "subtract")
    if ab is not None:
        e = ab[0] if is_scalar(ab[1], 1) else None
    else:
        e = operands_with_scalar(v, "add", -1)
    x = arg(e, "exp")
    if x is not None:
        return ops.ufunc("expm1", x)


@on("divide", reach=2)
def logistic(v, ctx):
    """1 / (1 + exp(-x)) -> sigmoid(x), exp(x) / (1 + exp(x)) -> sigmoid(x)"""
    a, b = args(v, "divide")
    y = _one_plus(b)
    e = arg(y, "exp")
    if e is None:
        return None
    if is_scalar(a, 1):
        return ops.ufunc("sigmoid", neg(e, True))
    if a is y:
        return ops.ufunc("sigmoid", e)
    return None


@on("sqrt", reach=2)
def sqrt_of_square(v, ctx):
    """sqrt(x ** 2) -> abs(x), sqrt(square(x)) -> abs(x)"""
    s = arg(v, "sqrt")
    x = arg(s, "square")
    if x is None:
        xp = args(s, "power")
        x = xp[0] if xp is not None and is_scalar(xp[1], 2) else None
    if x is not None:
        return ops.ufunc("absolute", x)


STABILIZE_RULES = rule_table(log_of_sigmoid, log_of_one_minus_sigmoid, log1p_of_negated_sigmoid,
                             log_of_one_plus_exp, log1p_of_exp, log_of_exp_ratio, log_sum_exp, log_of_one_plus,
                             exp_minus_one, logistic, sqrt_of_square)


def stabilize(graph, strict_ieee=False, stats=None, memo=None, **_):
    """Rewrite numerically fragile expressions into their stable forms (see the module docstring)."""
    return rewrite(graph, STABILIZE_RULES, strict_ieee, stats, memo)
