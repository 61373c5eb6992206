"""Small IR builders the VJP rules are written with (constants, arithmetic with a scalar shortcut, reshapes,
and undoing broadcasting, reductions and slices on a cotangent): kept apart so the rules read as formulas."""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value


def _c(value, dtype) -> Value:
    """A strong scalar constant of ``dtype`` (rules compute in their inputs' dtype)."""
    return ops.constant(np.asarray(value, dtype=dtype))


def _is_scalar_const(v: Value, value) -> bool:
    return v.is_const and v.ndim == 0 and v.const == value


def _mul(a, b):
    if _is_scalar_const(a, 1) and a.dtype == b.dtype:
        return b
    if _is_scalar_const(b, 1) and a.dtype == b.dtype:
        return a
    return ops.ufunc("multiply", a, b)


def _div(a, b):
    if _is_scalar_const(b, 1) and a.dtype == b.dtype:
        return a
    return ops.ufunc("divide", a, b)


def _add(a, b):
    return ops.ufunc("add", a, b)


def _sub(a, b):
    return ops.ufunc("subtract", a, b)


def _neg(a):
    if a.eqn is not None and a.eqn.prim == "negative":
        return a.eqn.inputs[0]
    if a.eqn is not None and a.eqn.prim in ("multiply", "divide"):  # -(-u * v) -> u * v
        u, v = a.eqn.inputs
        if u.eqn is not None and u.eqn.prim == "negative":
            return ops.ufunc(a.eqn.prim, u.eqn.inputs[0], v)
        if v.eqn is not None and v.eqn.prim == "negative":
            return ops.ufunc(a.eqn.prim, u, v.eqn.inputs[0])
    if a.is_const:
        return ops.constant(-a.const)
    return ops.ufunc("negative", a)


def _u(name, a):
    return ops.ufunc(name, a)


def _where(c, a, b):
    return ops.ufunc("where", c, a, b)


def _reshape(v: Value, shape) -> Value:
    """``ops.reshape`` that keeps a constant symbolic-shaped result as an equation (constants need int shapes)."""
    shape = tuple(shape)
    if v.is_const and any(isinstance(d, T.Dim) for d in shape):
        return ops.bind("reshape", v, shape=shape)
    return ops.reshape(v, shape)


def full(g: Value, shape) -> Value:
    """Materialize a broadcastable cotangent to exactly ``shape``."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    return ops.broadcast_to(g, shape)


def unbroadcast(g: Value, out_shape, shape) -> Value:
    """The cotangent of an operand of ``shape`` that numpy broadcast to ``out_shape``, given the cotangent ``g``
    (broadcastable to ``out_shape``) of the result: broadcast axes are summed out. Where ``g`` itself is only
    implicitly broadcast along such an axis, the sum is ``g`` times the axis length. The result is broadcastable
    to ``shape``."""
    out_shape, shape = tuple(out_shape), tuple(shape)
    if out_shape == shape:  # nothing was broadcast (g equal to ``shape`` alone is not enough: a 0-d g seeded by a
        return g            # reduction may stand for every element of a broadcast 0-d operand)
    lead = len(out_shape) - len(shape)
    g_lead = len(out_shape) - g.ndim
    sum_axes, scale = [], []
    for k, d_out in enumerate(out_shape):
        i = k - lead
        if (i >= 0 and shape[i] != 1) or (isinstance(d_out, int) and d_out == 1):
            continue
        j = k - g_lead
        if j >= 0 and g.shape[j] != 1:
            sum_axes.append(j)
        else:
            scale.append(d_out)
    drop = [j for j in range(g.ndim) if j + g_lead - lead < 0]
    if sum_axes or drop:
        kept = tuple(1 if j in sum_axes else d for j, d in enumerate(g.shape) if j not in drop)
        if sum_axes:
            g = ops.reduce("sum", g, tuple(sum_axes))
        g = _reshape(g, kept)
    if scale:
        n = T.prod(scale)
        g = _mul(g, _c(n, g.dtype) if isinstance(n, int) else ops.dimsize(n))
    return g


def _keepdims(v: Value, in_shape, axes) -> Value:
    """A reduction's result (or cotangent) reshaped with its reduced axes put back as length 1."""
    if v.ndim == 0 and not axes:
        return v
    return _reshape(v, tuple(1 if i in axes else d for i, d in enumerate(in_shape)))


def _reduced_ct(g: Value, out: Value, in_shape, axes) -> Value:
    """The cotangent of a reduction output, broadcastable to the reduction's input."""
    if g.ndim == 0:
        return g
    return _keepdims(full(g, out.shape), in_shape, axes)


def _swap_last(v: Value) -> Value:
    nd = v.ndim
    return ops.transpose(v, tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _zeros(dtype, shape) -> Value:
    return ops.broadcast_to(_c(0, dtype), tuple(shape))


def _slice(v: Value, axis, start, step, length) -> Value:
    starts = tuple(start if i == axis else 0 for i in range(v.ndim))
    steps = tuple(step if i == axis else 1 for i in range(v.ndim))
    shape = tuple(length if i == axis else d for i, d in enumerate(v.shape))
    return ops.bind("slice", v, starts=starts, steps=steps, shape=shape)


def _concat(parts, axis) -> Value:
    parts = [p for p in parts if not (isinstance(p.shape[axis], int) and p.shape[axis] == 0)]
    if len(parts) == 1:
        return parts[0]
    return ops.bind("concatenate", *parts, axis=axis)


def _with_dim(shape, axis, d):
    return tuple(d if i == axis else x for i, x in enumerate(shape))


def _unslice_axis(g: Value, axis, start, step, n) -> Value:
    """The VJP of taking ``start::step`` (length ``g.shape[axis]``) of an axis of length ``n``: place ``g`` back
    into zeros. Built from slices, reshapes and concatenations only, so lengths stay symbolic."""
    L = g.shape[axis]
    if isinstance(L, int) and L == 0:
        return _zeros(g.dtype, _with_dim(g.shape, axis, n))
    if step < 0:  # reverse g, then it covers start + step*(L-1) ... start in increasing order
        g = _slice(g, axis, L - 1, -1, L)
        start, step = start + step * (L - 1), -step
    if step > 1:  # interleave with step-1 zeros: (.., L, 1, ..) ++ (.., L, step-1, ..) -> (.., L*step, ..)
        g1 = _reshape(g, g.shape[:axis + 1] + (1,) + g.shape[axis + 1:])
        z = _zeros(g.dtype, g.shape[:axis + 1] + (step - 1,) + g.shape[axis + 1:])
        inter = ops.bind("concatenate", g1, z, axis=axis + 1)
        flat = _reshape(inter, _with_dim(g.shape, axis, L * step))
        g = _slice(flat, axis, 0, 1, (L - 1) * step + 1)
    M = g.shape[axis]
    before, after = start, n - start - M
    parts = []
    if not (isinstance(before, int) and before == 0):
        parts.append(_zeros(g.dtype, _with_dim(g.shape, axis, before)))
    parts.append(g)
    if not (isinstance(after, int) and after == 0):
        parts.append(_zeros(g.dtype, _with_dim(g.shape, axis, after)))
    return _concat(parts, axis)
