"""Forward mode and Jacobians: jvp, linearize, jacfwd, jacrev, hessian.

One source of truth per primitive: its VJP rule (passes/autodiff.py). A JVP is the transpose of the VJP: the
pullback ``u -> J^T u`` is linear in ``u``, so differentiating it once more with cotangent ``v`` gives ``J v``.
Both walks append ordinary IR, which the passes then simplify; the auxiliary ``u`` drops out (the result does not
depend on it; any structural leftover is evaluated at ``u = 0``). Jacobians batch the linear maps with ``vmap``
over the rows of an identity, so a 100 x 100 Jacobian is one program, not 100.
"""
from __future__ import annotations

import functools

import numpy as np

from .errors import filter_traceback
from .ir import ops
from .ir import types as T
from .ir.graph import Value
from .passes.autodiff import backward
from .ir.ops import iota as arange
from .trace.trace import tree_flatten, tree_unflatten
from .trace.tracer import Tracer, wrap
from .transforms import (_adopt_checks, _check_argnums_type, _dispatch, _inline, _leaf_value, _normalize_argnums,
                         _shape, _trace_fresh, vjp)


def _zeros(v: Value) -> Value:
    return ops.broadcast_to(ops.constant(np.zeros((), v.dtype)), tuple(v.shape))


def _check_tangents(primals, tangents, what):
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"{what}: primals and tangents must be tuples (one entry per positional argument), got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    if len(primals) != len(tangents):
        raise TypeError(f"{what}: {len(primals)} primal(s) but {len(tangents)} tangent(s)")
    for i, (p, t) in enumerate(zip(primals, tangents)):
        pl, pt = tree_flatten(p)
        tl, tt = tree_flatten(t)
        if pt != tt:
            raise TypeError(f"{what}: tangent {i} must have the structure of primal {i} ({pt}), got {tt}")
        for p_, t_ in zip(pl, tl):
            pv, tv = _leaf_value(p_), _leaf_value(t_)
            if not T.is_float(pv.dtype):
                raise TypeError(f"{what}: can only differentiate with respect to float arguments, but primal {i} "
                                f"has dtype {pv.dtype}")
            ps, ts = _shape(pv), _shape(tv)
            if len(ps) != len(ts) or any(a != b for a, b in zip(ps, ts) if isinstance(a, int) and isinstance(b, int)):
                raise ValueError(f"{what}: tangent {i} has shape {T.shape_str(ts)} but primal {i} has shape "
                                 f"{T.shape_str(ps)}; a tangent must have its primal's shape")


def _jvp_traced(fun, primals, tangents, what):
    """(primal outputs, tangent outputs) with the enclosing Builder current."""
    nums = tuple(range(len(primals)))
    builder, fresh, actual, trees, out = _trace_fresh(fun, tuple(primals), {}, nums, what)
    with builder:
        out_leaves, out_tree = tree_flatten(out)
        outs = [_leaf_value(o) for o in out_leaves]
        active = [k for k, o in enumerate(outs) if T.is_float(o.dtype)]
        us = [Value(T.TensorType(outs[k].dtype, tuple(outs[k].shape))) for k in active]
        pulled = backward([outs[k] for k in active], us, fresh) if active else []  # J^T u, linear in u
        tans = [_leaf_value(t) for t in tree_flatten(tuple(tangents))[0]]
        tans = [ops.convert(t, f.dtype) if t.dtype != f.dtype else t for t, f in zip(tans, fresh)]
        pushed = backward(pulled, tans, us) if us else []  # (J^T)^T v = J v
    mapping = {f.id: a for f, a in zip(fresh, actual)}
    _adopt_checks(builder, mapping)
    mapping.update({u.id: _zeros(u) for u in us})  # J v does not depend on u; leftovers read it as 0
    results = _inline(outs + pushed, mapping)
    outs, pushed = results[:len(outs)], results[len(outs):]
    tan_out = [_zeros(o) for o in outs]
    for k, t in zip(active, pushed):
        tan_out[k] = t
    return (tree_unflatten(out_tree, [wrap(o) for o in outs]),
            tree_unflatten(out_tree, [wrap(t) for t in tan_out]))


def jvp(fun, primals, tangents):
    """``(fun(*primals), J(primals) @ tangents)``: forward-mode derivative along ``tangents`` (JAX's signature;
    works eagerly, inside ``jit`` and under other transformations)."""
    if not callable(fun):
        raise TypeError(f"tj.jvp: expected a callable, got an object of type {type(fun).__name__}")
    what = "tj.jvp"
    try:
        _check_tangents(primals, tangents, what)
    except Exception as e:
        raise e.with_traceback(filter_traceback(e.__traceback__))
    n = len(primals)
    return _dispatch(lambda *a: _jvp_traced(fun, a[:n], a[n:], what), tuple(primals) + tuple(tangents), {})


def linearize(fun, *primals):
    """``(fun(*primals), f_jvp)`` with ``f_jvp(*tangents) = jvp(fun, primals, tangents)[1]``."""
    out = jvp(fun, primals, tuple(_zeros_like(p) for p in primals))[0]
    return out, lambda *tangents: jvp(fun, primals, tangents)[1]


def _zeros_like(p):
    leaves, tree = tree_flatten(p)
    return tree_unflatten(tree, [x * 0.0 if isinstance(x, Tracer) else np.zeros(np.shape(x), np.result_type(x, 0.0))
                                 for x in leaves])


def hvp(fun, primals, tangents):
    """Hessian-vector product of scalar ``fun``: ``jvp(grad(fun), primals, tangents)[1]``."""
    from .transforms import grad
    return jvp(grad(fun, argnums=tuple(range(len(primals)))), primals, tangents)[1]


# ------------------------------------------------------------------------------------------------ Jacobians
def _identity(n, dtype) -> Value:
    """An n x n identity of ``dtype`` (n may be a symbolic length)."""
    i = arange(n)
    eq = ops.ufunc("equal", ops.reshape(i, (n, 1)), ops.reshape(i, (1, n)))
    return ops.convert(eq, dtype)


def _flat_basis(v: Value):
    """The rows of an identity over ``v``'s elements, each reshaped like ``v``: shape (size,) + v.shape."""
    n = T.prod(tuple(v.shape)) if v.ndim else 1
    return wrap(ops.reshape(_identity(n, v.dtype), (n,) + tuple(v.shape))), n


def _jacobian(fun, argnums, what, forward_mode):
    from .vectorize import vmap
    _check_argnums_type(argnums, what)
    if not callable(fun):
        raise TypeError(f"{what}: expected a callable, got an object of type {type(fun).__name__}")

    def traced(*args, **kwargs):
        single, nums = _normalize_argnums(argnums, len(args), what)
        xs = [args[i] for i in nums]
        for i, x in zip(nums, xs):
            if not isinstance(x, Tracer) or not T.is_float(x._tj_value.dtype):
                dt = x._tj_value.dtype if isinstance(x, Tracer) else np.asarray(x).dtype
                raise TypeError(f"{what}: argument {i} must be a float array (got dtype {dt}); pytrees of "
                                f"arguments are not supported yet: pass one array per argnum")

        def f_of(*ys):
            full = list(args)
            for i, y in zip(nums, ys):
                full[i] = y
            return fun(*full, **kwargs)
        out = f_of(*xs)
        out_leaves, out_tree = tree_flatten(out)
        per_arg = []
        if forward_mode:
            for k, x in enumerate(xs):
                basis, n = _flat_basis(x._tj_value)

                def push(v, k=k):
                    tangents = tuple(v if j == k else x_ * 0.0 for j, x_ in enumerate(xs))
                    return jvp(f_of, tuple(xs), tangents)[1]
                cols = vmap(push)(basis)  # tree of (n,) + out.shape
                leaves = [_move_first_to_last(_leaf_value(c), x._tj_value) for c in tree_flatten(cols)[0]]
                per_arg.append(leaves)
        else:
            _, pull = vjp(f_of, *xs)
            rows_per_leaf = []
            for k, o in enumerate(out_leaves):
                ov = _leaf_value(o)
                basis, m = _flat_basis(ov)

                def pull_k(u, k=k):
                    cts = [u if j == k else wrap(_zeros(_leaf_value(o_))) for j, o_ in enumerate(out_leaves)]
                    return pull(tree_unflatten(out_tree, cts))
                rows = vmap(pull_k)(basis)  # tuple over args of (m,) + x.shape
                rows_per_leaf.append([ops.reshape(_leaf_value(r), tuple(ov.shape) + tuple(_leaf_value(x).shape))
                                      for r, x in zip(rows, xs)])
            per_arg = [[rows_per_leaf[k][j] for k in range(len(out_leaves))] for j in range(len(xs))]
        jacs = [tree_unflatten(out_tree, [wrap(v) for v in leaves]) for leaves in per_arg]
        return jacs[0] if single else tuple(jacs)

    @functools.wraps(fun)
    def transformed(*args, **kwargs):
        return _dispatch(traced, args, kwargs)
    return transformed


def _move_first_to_last(v: Value, x: Value) -> Value:
    """(size of x,) + out.shape -> out.shape + x.shape."""
    out_nd = v.ndim - 1
    moved = ops.transpose(v, tuple(range(1, out_nd + 1)) + (0,))
    return ops.reshape(moved, tuple(moved.shape[:out_nd]) + tuple(x.shape))


def jacfwd(fun, argnums=0):
    """The Jacobian of ``fun`` with respect to ``argnums`` by forward mode (one batched JVP over the inputs'
    basis): shape ``out.shape + x.shape``. Best when inputs are fewer than outputs."""
    return _jacobian(fun, argnums, "tj.jacfwd", True)


def jacrev(fun, argnums=0):
    """The Jacobian by reverse mode (one batched VJP over the outputs' basis): shape ``out.shape + x.shape``."""
    return _jacobian(fun, argnums, "tj.jacrev", False)


def hessian(fun, argnums=0):
    """The Hessian of scalar ``fun``: ``jacfwd(jacrev(fun))``, shape ``x.shape + x.shape``."""
    return jacfwd(jacrev(fun, argnums), argnums)


__all__ = ["jvp", "linearize", "hvp", "jacfwd", "jacrev", "hessian"]
