"""autograd's surface over tracejit: ``grad``, ``elementwise_grad``, ``value_and_grad``, ``jacobian``,
``hessian``, ``make_vjp``, ``hessian_tensor_product``, ``extend.primitive`` / ``defvjp``, ``misc.flatten`` and
``misc.optimizers``, with autograd's conventions (one ``argnum``, plain numpy inside).

``python -m tracejit.autograd script.py`` runs an autograd script unchanged: ``import autograd.numpy as np`` is
numpy itself (tracejit's tracers reach numpy's functions through ``__array_ufunc__`` / ``__array_function__``), and
``autograd.scipy.*`` is scipy (tracejit's hooks make scipy.special / scipy.stats take tracers). Outside ``jit`` the
functions are traced once per call on the call's arguments, so Python control flow on values works, as autograd's
boxes allow.
"""
from __future__ import annotations

import numpy as np

from .. import forward as _forward
from .. import transforms as _transforms
from ..custom import custom_vjp as _custom_vjp


def grad(fun, argnum=0):
    """The gradient of scalar ``fun`` with respect to positional argument ``argnum``."""
    return _transforms.grad(fun, argnums=argnum)


def value_and_grad(fun, argnum=0):
    """``(fun(*args), grad(fun)(*args))`` in one pass."""
    return _transforms.value_and_grad(fun, argnums=argnum)


def elementwise_grad(fun, argnum=0):
    """The gradient of ``fun(...).sum()``: for a function applied elementwise, each output's derivative by its
    own input (autograd's idiom for plotting derivatives)."""
    def summed(*args, **kwargs):
        return np.sum(fun(*args, **kwargs))
    return _transforms.grad(summed, argnums=argnum)


def jacobian(fun, argnum=0):
    """The Jacobian, shaped ``out.shape + x.shape`` (reverse mode)."""
    return _forward.jacrev(fun, argnums=argnum)


def hessian(fun, argnum=0):
    """The Hessian of scalar ``fun``, shaped ``x.shape + x.shape``."""
    return _forward.hessian(fun, argnums=argnum)


def make_vjp(fun, argnum=0):
    """``make_vjp(fun)(*args) -> (vjp, ans)``: ``vjp(g)`` is the cotangent ``g`` pulled back to argument ``argnum``."""
    def maker(*args, **kwargs):
        def at(x):
            full = list(args)
            full[argnum] = x
            return fun(*full, **kwargs)
        ans, pull = _transforms.vjp(at, args[argnum])
        return (lambda g: pull(g)[0]), ans
    return maker


def hessian_tensor_product(fun, argnum=0):
    """``f(*args, v)``: the Hessian of scalar ``fun`` applied to ``v`` (a gradient of the gradient's inner product
    with v, never the whole Hessian)."""
    def hvp(*args):
        *primal, v = args

        def inner(x):
            full = list(primal)
            full[argnum] = x
            return np.sum(_transforms.grad(fun, argnums=argnum)(*full) * v)
        return _transforms.grad(inner)(primal[argnum])
    return hvp


hessian_vector_product = hessian_tensor_product


class _Primitive:
    """``autograd.extend.primitive(f)``: f's body is not differentiated; ``defvjp(f, maker, ...)`` gives, per
    argument, ``maker(ans, *args) -> (g -> gradient)``."""

    def __init__(self, fun):
        self.fun, self.makers = fun, {}
        self.__name__ = getattr(fun, "__name__", "primitive")
        self.__doc__ = getattr(fun, "__doc__", None)

    def __call__(self, *args, **kwargs):
        if not self.makers:
            return self.fun(*args, **kwargs)
        makers = self.makers

        def body(*xs):
            return self.fun(*xs, **kwargs)
        rule = _custom_vjp(body)

        def fwd(*xs):
            ans = self.fun(*xs, **kwargs)
            return ans, (ans, xs)

        def bwd(res, g):
            ans, xs = res
            return tuple(makers[i](ans, *xs, **kwargs)(g) if i in makers else None for i in range(len(xs)))
        rule.defvjp(fwd, bwd)
        return rule(*args)


def primitive(fun):
    return _Primitive(fun)


def defvjp(prim, *makers, argnums=None):
    """Register the VJP makers of a primitive, one per argument (``None`` for an argument without one)."""
    if not isinstance(prim, _Primitive):
        raise TypeError("defvjp: the function must be made with autograd.extend.primitive first")
    nums = range(len(makers)) if argnums is None else argnums
    for i, m in zip(nums, makers):
        if m is not None:
            prim.makers[i] = m


from . import misc  # noqa: E402  (misc.flatten, misc.optimizers)

__all__ = ["grad", "value_and_grad", "elementwise_grad", "jacobian", "hessian", "make_vjp", "hessian_tensor_product",
           "hessian_vector_product", "primitive", "defvjp", "misc"]
