"""Batching (vmap) over the SSA IR: one rule per primitive, and the forward walk.

``batch(outputs, batched)`` re-binds, in the current ``ops.Builder``, every equation of ``outputs`` that depends on
a batched value. A batched value carries one extra axis, the batch axis, at a position of its own (its "batch
dim"); an unbatched value is the original Value, shared by every example. Rules build their results with ``ops``
(the same IR primitives as any traced code), so the batched graph is an ordinary graph: optimized, fused, cached,
differentiable and batchable again (nested vmap).

A rule: ``rule(eqn, args, dims) -> (value, dim)``. ``args`` are the inputs (batched ones replaced), ``dims`` their
batch dims (None: unbatched, the per-example value as in ``eqn``); the result is the batched output and where its
batch axis is. Every example's per-example shapes are those of ``eqn``, so params that hold shapes (reshape,
broadcast_to, slice, scatter_add's size) are reused with the batch length inserted.

The batch length may be symbolic (a traced length): nothing here needs its value, so a jitted vmap serves every
batch size with one compilation. Only a gather or scatter whose index and operand are both batched needs the
positions 0..B-1 (to offset each example's indices into its own rows); see ``arange``.
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..ir.graph import Value, toposort
from ..ir.primitives import PRIMS

RULES: dict = {}


def rule(*names):
    def deco(f):
        for n in names:
            RULES[n] = f
        return f
    return deco


# ------------------------------------------------------------------------------------------------ small builders
def move(v: Value, src: int, dst: int) -> Value:
    """``np.moveaxis(v, src, dst)`` as a transpose (nothing when src == dst)."""
    if src == dst:
        return v
    perm = [a for a in range(v.ndim) if a != src]
    perm.insert(dst, src)
    return ops.transpose(v, tuple(perm))


def to_front(v: Value, d: int) -> Value:
    return move(v, d, 0)


def reshape(v: Value, shape) -> Value:
    """``ops.reshape`` that also accepts a constant with a symbolic target shape (kept as an equation)."""
    shape = tuple(shape)
    if shape == v.shape:
        return v
    if v.is_const and any(isinstance(d, T.Dim) for d in shape):
        return ops.bind("reshape", v, shape=shape)
    return ops.reshape(v, shape)


def broadcast(v: Value, shape) -> Value:
    """``broadcast_to`` (a view) that also accepts a constant with a symbolic target shape."""
    shape = tuple(shape)
    if shape == v.shape:
        return v
    return ops.broadcast_to(v, shape)


def batch_size(args, dims):
    """The batch length, read off the first batched argument."""
    for v, d in zip(args, dims):
        if d is not None:
            return v.shape[d]
    raise ValueError("batching rule called without a batched argument")


def materialize(v: Value, d, size) -> Value:
    """``v`` with its batch axis in front: moved there, or (for an unbatched value) broadcast along it."""
    if d is None:
        return broadcast(v, (size,) + v.shape)
    return to_front(v, d)


def front_padded(v: Value, d, rank: int) -> Value:
    """A batched ``v`` with the batch axis in front and length-1 axes after it, so that its per-example part is
    ``rank`` dims: numpy broadcasting then lines examples up with examples (the batch axis is never broadcast
    against a per-example axis)."""
    v = to_front(v, d)
    per = v.shape[1:]
    return reshape(v, v.shape[:1] + (1,) * (rank - len(per)) + per)


def _flat_index(idx: Value, n, size) -> Value:
    """Each example's int64 index ``idx`` (batch axis in front) into an axis of length ``n``, turned into an index
    into that axis with the ``size`` examples' axes laid end to end (example b's rows start at b * n). Negative
    indices count from the end of their own example's axis; an index out of its example's range is mapped out of
    the whole range, so the bounds check still raises instead of reading a neighbour's rows."""
    n_v = ops.dimsize(n) if not isinstance(n, int) else ops.constant(np.asarray(n, np.int64))
    zero = ops.constant(np.zeros((), np.int64))
    wrapped = ops.ufunc("where", ops.ufunc("less", idx, zero), ops.ufunc("add", idx, n_v), idx)
    bad = ops.ufunc("logical_or", ops.ufunc("less", wrapped, zero), ops.ufunc("greater_equal", wrapped, n_v))
    offsets = reshape(ops.ufunc("multiply", ops.iota(size), n_v), (size,) + (1,) * (idx.ndim - 1))
    total = ops.dimsize(size * n) if not isinstance(size * n, int) else ops.constant(np.asarray(size * n, np.int64))
    return ops.ufunc("where", bad, total, ops.ufunc("add", wrapped, offsets))


# ------------------------------------------------------------------------------------------------ elementwise
def _elementwise(eqn, args, dims):
    """Batch axes to the front, per-example parts padded to the output's rank; unbatched operands broadcast."""
    rank = eqn.out.ndim
    new = [a if d is None else front_padded(a, d, rank) for a, d in zip(args, dims)]
    return ops.bind(eqn.prim, *new, **eqn.p), 0


for _name, _prim in PRIMS.items():
    if _prim.kind == "elementwise":
        RULES[_name] = _elementwise


# ------------------------------------------------------------------------------------------------ reductions
def _reduction(eqn, args, dims):
    """The reduced axes shift past the batch axis, which stays where it is (less the reduced axes before it)."""
    (x,), (d,) = args, dims
    pos = [a + (a >= d) for a in eqn.p["axes"]]
    out = ops.bind(eqn.prim, x, axes=tuple(pos))
    return out, d - sum(1 for p in pos if p < d)


for _name, _prim in PRIMS.items():
    if _prim.kind == "reduce":
        RULES[_name] = _reduction


# ------------------------------------------------------------------------------------------------ views
@rule("reshape")
def _reshape(eqn, args, dims):
    x = to_front(args[0], dims[0])
    return reshape(x, x.shape[:1] + tuple(eqn.p["shape"])), 0


@rule("transpose")
def _transpose(eqn, args, dims):
    """The batch axis keeps its position; the per-example axes are permuted around it."""
    (x,), (d,) = args, dims
    perm = [a + (a >= d) for a in eqn.p["perm"]]
    perm.insert(d, d)
    return ops.transpose(x, tuple(perm)), d


@rule("broadcast_to")
def _broadcast_to(eqn, args, dims):
    shape = tuple(eqn.p["shape"])
    x = front_padded(args[0], dims[0], len(shape))
    return broadcast(x, x.shape[:1] + shape), 0


@rule("slice")
def _slice(eqn, args, dims):
    """The batch axis is taken whole: start 0, step 1, its full length."""
    (x,), (d,) = args, dims
    p = eqn.p
    starts, steps, shape = list(p["starts"]), list(p["steps"]), list(p["shape"])
    starts.insert(d, 0)
    steps.insert(d, 1)
    shape.insert(d, x.shape[d])
    return ops.bind("slice", x, starts=tuple(starts), steps=tuple(steps), shape=tuple(shape)), d


@rule("concatenate")
def _concatenate(eqn, args, dims):
    n = batch_size(args, dims)
    parts = [materialize(a, d, n) for a, d in zip(args, dims)]
    return ops.bind("concatenate", *parts, axis=eqn.p["axis"] + 1), 0


# ------------------------------------------------------------------------------------------------ other
@rule("matmul")
def _matmul(eqn, args, dims):
    """(..., n, k) @ (..., k, m) per example (the primitive's operands are >= 2-D with equal leading shapes).

    Only ``a`` batched: the examples are stacked as more rows (B*n, k) of one product; only ``b``: as more
    columns (k, B*m); both: one batched product. ``k == 1`` (an outer product, common in gradients) is a
    broadcast multiply instead."""
    (a, b), (da, db) = args, dims
    r = eqn.out.ndim
    if isinstance(eqn.inputs[0].shape[-1], int) and eqn.inputs[0].shape[-1] == 1:
        new = [x if d is None else front_padded(x, d, r) for x, d in zip(args, dims)]
        return ops.ufunc("multiply", *new), 0
    if da is not None and db is not None:
        return ops.bind("matmul", to_front(a, da), to_front(b, db)), 0
    if da is not None:
        a = move(a, da, r - 2)                                      # (..., B, n, k)
        lead, (size, n, k) = a.shape[:r - 2], a.shape[r - 2:]
        out = ops.bind("matmul", reshape(a, lead + (size * n, k)), b)
        return reshape(out, lead + (size, n, out.shape[-1])), r - 2
    b = move(b, db, r - 1)                                          # (..., k, B, m)
    lead, (k, size, m) = b.shape[:r - 2], b.shape[r - 2:]
    out = ops.bind("matmul", a, reshape(b, lead + (k, size * m)))
    return reshape(out, lead + (out.shape[-2], size, m)), r - 1


@rule("gather")
def _gather(eqn, args, dims):
    """take(x, idx, axis): out = x.shape[:axis] + idx.shape + x.shape[axis+1:] per example."""
    (x, idx), (dx, di) = args, dims
    axis = eqn.p["axis"]
    if di is None:
        if dx <= axis:
            return ops.bind("gather", x, idx, axis=axis + 1), dx
        return ops.bind("gather", x, idx, axis=axis), dx + idx.ndim - 1
    if dx is None:
        return ops.bind("gather", x, idx, axis=axis), axis + di
    # both batched: examples laid end to end along the gathered axis, each index offset into its own rows
    x = move(x, dx, axis)                                           # (pre, B, N, post)
    size, n = x.shape[axis], x.shape[axis + 1]
    flat = reshape(x, x.shape[:axis] + (size * n,) + x.shape[axis + 2:])
    out = ops.bind("gather", flat, _flat_index(to_front(idx, di), n, size), axis=axis)
    return out, axis                                                # (pre, B, I..., post)


@rule("scatter_add")
def _scatter_add(eqn, args, dims):
    """The transpose of gather: out = g.shape[:axis] + (size,) + g.shape[axis+idx.ndim:] per example."""
    (g, idx), (dg, di) = args, dims
    axis, size = eqn.p["axis"], eqn.p["size"]
    if di is None:
        return ops.bind("scatter_add", to_front(g, dg), idx, axis=axis + 1, size=size), 0
    n = batch_size(args, dims)
    g = move(materialize(g, dg, n), 0, axis)                        # (pre, B, I..., post)
    out = ops.bind("scatter_add", g, _flat_index(to_front(idx, di), size, n), axis=axis, size=n * size)
    return reshape(out, out.shape[:axis] + (n, size) + out.shape[axis + 1:]), axis


@rule("dimsize")
def _dimsize(eqn, args, dims):
    """A length of the per-example shapes: the same for every example (never batched: it has no inputs)."""
    return ops.bind("dimsize", **eqn.p), None


@rule("iota")
def _iota(eqn, args, dims):
    """0..n-1 over a per-example length: the same for every example."""
    return ops.bind("iota", **eqn.p), None


@rule("custom_vjp_call")
def _custom_call(eqn, args, dims):
    """A custom rule's mark: every operand gets its batch axis in front, the rule is batched with it."""
    n = batch_size(args, dims)
    operands = [to_front(a, d) if d is not None else a for a, d in zip(args[1:], dims[1:])]
    call = eqn.p["call"].batched(operands, [None if d is None else 0 for d in dims[1:]], n)
    return ops.bind("custom_vjp_call", materialize(args[0], dims[0], n), *operands, call=call,
                    index=eqn.p["index"]), 0


@rule("remat_barrier")
def _remat_barrier(eqn, args, dims):
    """Still an identity on its first input, still after the others."""
    return ops.bind("remat_barrier", *args), dims[0]


# ------------------------------------------------------------------------------------------------ the walk
def _per_example_shape(v: Value, d):
    return v.shape if d is None else v.shape[:d] + v.shape[d + 1:]


def _check(eqn, out: Value, d):
    """A rule's result must hold, per example, the shape the equation had (checked where lengths are static)."""
    per = _per_example_shape(out, d)
    bad = len(per) != eqn.out.ndim or any(isinstance(a, int) and isinstance(b, int) and a != b
                                          for a, b in zip(per, eqn.out.shape))
    if bad:
        raise AssertionError(f"batching rule for {eqn.prim} gave per-example shape {T.shape_str(per)}, expected "
                             f"{T.shape_str(eqn.out.shape)}")


def batch(outputs: list, batched: dict) -> list:
    """Batch the equations of ``outputs`` that depend on a batched value.

    ``batched``: value id -> (batched Value, batch dim) for the per-example values that stand for a batch.
    Returns one (Value, batch dim or None) per output; unbatched outputs come back unchanged with None."""
    memo = dict(batched)
    for e in toposort([o for o in outputs if isinstance(o, Value)]):
        if not any(v.id in memo for v in e.inputs):
            continue
        args = [memo[v.id][0] if v.id in memo else v for v in e.inputs]
        dims = [memo[v.id][1] if v.id in memo else None for v in e.inputs]
        fn = RULES.get(e.prim)
        if fn is None:
            raise NotImplementedError(f"tracejit has no batching rule for the primitive {e.prim!r}")
        out, d = fn(e, args, dims)
        if out.dtype != e.out.dtype:
            out = ops.convert(out, e.out.dtype)
        _check(e, out, d)
        memo[e.out.id] = (out, d)
    return [memo.get(o.id, (o, None)) for o in outputs]


from .batching_regions import RULES as _REGION_RULES  # noqa: E402  (loops and branches; they call batch())

RULES.update(_REGION_RULES)

__all__ = ["batch", "RULES", "move"]
from . import batching_library  # noqa: E402,F401  (rules of the library primitives: sort, LAPACK, FFT)
