"""``theano.gradient``: ``grad``, ``jacobian`` and ``hessian`` (through ``scan``, as Theano builds them: one
gradient per output element), ``Rop``/``Lop``, and ``zero_grad``/``disconnected_grad`` (a zero gradient)."""
from __future__ import annotations

import numpy as np

from .tensor import DisconnectedInputError, Lop, Rop, arange, grad


def _each(wrt):
    return ([wrt], True) if not isinstance(wrt, (list, tuple)) else (list(wrt), False)


def jacobian(expression, wrt, consider_constant=None, disconnected_inputs="raise"):
    """d(expression[i])/d(wrt) stacked over i for a vector ``expression`` (a scalar one gives its gradient); a list
    ``wrt`` gives a list of Jacobians."""
    from .scan import scan
    ws, single = _each(wrt)
    if expression.ndim == 0:
        gs = [grad(expression, w, consider_constant, disconnected_inputs) for w in ws]
        return gs[0] if single else gs
    if expression.ndim != 1:
        raise TypeError(f"jacobian: the expression must be a vector (or a scalar), got {expression.ndim} dimensions;"
                        f" flatten it first")
    out = []
    for w in ws:
        jac, _ = scan(lambda i, y, x: grad(y[i], x, consider_constant, disconnected_inputs),
                      sequences=arange(expression.shape[0]), non_sequences=[expression, w])
        out.append(jac)
    return out[0] if single else out


def hessian(cost, wrt, consider_constant=None, disconnected_inputs="raise"):
    """The Hessian of a scalar ``cost`` with respect to each vector in ``wrt``."""
    ws, single = _each(wrt)
    if cost.ndim != 0:
        raise TypeError(f"hessian: the cost must be a scalar, got {cost.ndim} dimensions")
    out = []
    for w in ws:
        if w.ndim != 1:
            raise TypeError(f"hessian: each wrt must be a vector, got {w.ndim} dimensions")
        out.append(jacobian(grad(cost, w, consider_constant, disconnected_inputs), w,
                            consider_constant, disconnected_inputs))
    return out[0] if single else out


def zero_grad(x):
    """``x`` in the forward pass, a zero gradient in the backward pass."""
    from ..numpy import stop_gradient
    return stop_gradient(x)


disconnected_grad = zero_grad


def grad_clip(x, lower_bound, upper_bound):
    """``x`` in the forward pass; in the backward pass the gradient reaching ``x`` is clipped to the bounds."""
    from ..custom import custom_vjp
    from ..trace.symbolic import symbolic_apply

    @custom_vjp
    def clipped(v):
        return v

    clipped.defvjp(lambda v: (v, None), lambda _, g: (np.clip(g, lower_bound, upper_bound),))
    return symbolic_apply(clipped, x)


def grad_scale(x, multiplier):
    """``x`` in the forward pass; its gradient multiplied by ``multiplier`` in the backward pass."""
    from ..numpy import stop_gradient
    from ..trace.symbolic import symbolic_apply
    return symbolic_apply(lambda v: stop_gradient(v) + multiplier * (v - stop_gradient(v)), x)

__all__ = ["grad", "jacobian", "hessian", "Rop", "Lop", "zero_grad", "disconnected_grad", "grad_clip", "grad_scale",
           "DisconnectedInputError"]
