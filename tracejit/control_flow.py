"""Loops and branches that stay loops and branches: ``fori_loop``, ``while_loop``, ``scan``, ``cond``, ``switch``.

JAX's semantics (``jax.lax``), pytrees for carries, xs and ys. On traced values (under ``jit``, or on any Tracer,
such as a Theano-style symbolic variable) each call traces its bodies once into closed sub-graphs (regions, see
ir/regions.py) held by one equation, whatever the trip count; on plain numpy values it runs eagerly in Python.
"""
from __future__ import annotations

import operator

import numpy as np

from .ir import graph as _graph
from .ir import ops
from .ir import types as T
from .ir.constraints import Constraint
from .ir.graph import Value
from .ir.regions import Region, bind_all, captured_values, equations_since, extract
from .ir.types import TensorType
from .trace.trace import tree_flatten, tree_unflatten
from .trace.tracer import Tracer, unwrap, wrap


# ------------------------------------------------------------------------------------------------ helpers
def _tracing(*trees) -> bool:
    """Whether to build IR: some argument leaf is traced, or a trace is running (a body may read its tracers)."""
    if getattr(ops._state, "stack", None):
        return True
    return any(isinstance(x, Tracer) for t in trees for x in tree_flatten(t)[0])


def _leaf_names(what: str, treedef) -> list:
    """Printable paths of a pytree's leaves (``carry[0]['h']``), in flattening order."""
    out: list = []

    def walk(t, path):
        if t == ("n",):
            return
        if not isinstance(t, tuple):
            out.append(path)
            return
        kind = t[0]
        if kind == "d":
            for k, sub in zip(t[1], t[2]):
                walk(sub, f"{path}[{k!r}]")
        elif kind in ("t", "l"):
            for i, sub in enumerate(t[1]):
                walk(sub, f"{path}[{i}]")
        elif kind == "nt":
            for i, sub in enumerate(t[2]):
                walk(sub, f"{path}[{i}]")
        elif kind == "c":  # a complex array: its two real parts (trace/complex_array.py)
            out.extend([f"{path}.real", f"{path}.imag"])
    walk(treedef, what)
    return out


def _as_strong(x) -> Value:
    """A carry's initial value: Python scalars take their default dtype (a carry's type is fixed)."""
    v = ops.as_value(unwrap(x))
    return ops.convert(v, v.dtype) if v.type.weak else v


def _type_desc(t: TensorType) -> str:
    return f"{t.dtype.name}{T.shape_str(t.shape)}"


def _same_at_run_time(a, b, constraints, message) -> bool:
    """Lengths that differ only symbolically (``n`` and ``k`` of two inputs that must agree) are checked at run
    time; two different static lengths are an error now."""
    pairs = [(x, y) for x, y in zip(a, b) if x != y]
    if any(isinstance(x, int) and isinstance(y, int) for x, y in pairs):
        return False
    for x, y in pairs:
        constraints.append(Constraint.same(x, y, message))
    return True


def _match_types(outs, types, names, what, constraints):
    """Body outputs converted to the carries' types (a Python scalar adapts); TypeError naming the leaf else."""
    res = []
    for o, t, name in zip(outs, types, names):
        if o.dtype != t.dtype and o.type.weak and o.ndim == 0 and t.ndim == 0:
            o = ops.convert(o, t.dtype)
        elif o.dtype != t.dtype and o.type.weak and o.ndim == 0:
            o = ops.convert(o, t.dtype)
        if o.dtype == t.dtype and o.ndim == t.ndim and tuple(o.shape) != tuple(t.shape) and _same_at_run_time(
                o.shape, t.shape, constraints, f"{what}: {name} has length {{a}} but the input carry has {{b}}"):
            o = ops.reshape(o, t.shape)
        if o.dtype != t.dtype or tuple(o.shape) != tuple(t.shape):
            if o.type.weak and o.ndim == 0 and o.dtype == t.dtype:
                o = ops.broadcast_to(o, t.shape) if t.shape else o
            else:
                raise TypeError(f"{what}: {name} has type {_type_desc(o.type)} but the input carry has type "
                                f"{_type_desc(t)}; the carry must keep its dtype and shape (cast with "
                                f".astype(...) or fix the initial value)")
        if o.type.weak:
            o = ops.convert(o, o.dtype)
        res.append(o)
    return res


class _Body:
    """A function traced on fresh inputs of given types: what it computed since ``start`` belongs to the body;
    values from before (the enclosing trace) are captured and become explicit operands when it is closed."""

    def __init__(self, fun, in_types, in_tree, call):
        self.start = next(_graph._ids)
        self.builder = ops.Builder()
        with self.builder:
            self.inputs = [Value(t) for t in in_types]
            args = tree_unflatten(in_tree, [wrap(v) for v in self.inputs])
            out = call(fun, args)
            leaves, self.out_tree = tree_flatten(out)
            self.outs = []
            for leaf in leaves:
                try:
                    self.outs.append(ops.as_value(unwrap(leaf)))
                except TypeError:
                    raise TypeError(f"a loop or branch body returned an object of type {type(leaf).__name__}; "
                                    f"bodies must return arrays or pytrees (tuples, lists, dicts) of arrays") from None
        # length constraints hold for every step, so the call checks them once; a body's run-time checks
        # (builder.checks: flags computed from body values) have no place to be raised from yet and are dropped
        self.outer_constraints = ops.current().constraints
        self.outer_constraints.extend(self.builder.constraints)

    def convert_outs(self, fn):
        with self.builder:
            self.outs = fn(self.outs)

    def close(self, hoist: bool):
        """(Region, captured outer Values). ``hoist``: work that reads no body input is left outside (computed
        once before a loop); a branch keeps it inside, so only the taken branch computes it."""
        order = equations_since(self.outs, self.start)
        body_in = {v.id for v in self.inputs}
        dependent = set(body_in)
        for e in order:
            if any(x.id in dependent for x in e.inputs):
                dependent.add(e.out.id)
        inner = [e for e in order if e.out.id in dependent] if hoist else order
        captured = captured_values(inner, self.outs, body_in)
        graph, witness = extract(inner, captured + self.inputs, self.outs)
        return Region(graph, witness), captured


def _tree_values(tree, strong=False):
    leaves, treedef = tree_flatten(tree)
    return [(_as_strong(x) if strong else ops.as_value(unwrap(x))) for x in leaves], treedef


# ------------------------------------------------------------------------------------------------ scan
def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """``f(carry, x) -> (carry, y)`` over the leading axis of ``xs``; returns ``(carry, stacked ys)``.
    ``length`` may be a traced array's length; ``unroll`` is accepted as JAX's (the loop stays rolled)."""
    if not callable(f):
        raise TypeError(f"scan: f must be callable, got {type(f).__name__}")
    if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
        raise ValueError(f"scan: unroll must be a positive int, got {unroll!r}")
    if length is not None and (isinstance(length, bool) or not isinstance(length, (int, np.integer, T.Dim))):
        raise TypeError(f"scan: length must be a Python int (or a traced array's length), got "
                        f"{type(length).__name__}")
    if not _tracing(init, xs):
        return _scan_eager(f, init, xs, length, reverse)
    carries, carry_tree = _tree_values(init, strong=True)
    xvals, x_tree = _tree_values(xs)
    n = _scan_length(xvals, length, x_tree)
    x_types = [TensorType(x.dtype, x.shape[1:]) for x in xvals]
    body = _Body(f, [c.type for c in carries] + x_types, ("t", (carry_tree, x_tree)),
                 lambda fun, args: _pair(fun(*args), "scan: f"))
    res_tree = body.out_tree
    new_carry_tree, y_tree = res_tree[1]
    if new_carry_tree != carry_tree:
        raise TypeError(f"scan: f must return a carry with the structure of init ({_show(carry_tree)}), got "
                        f"{_show(new_carry_tree)}")
    nc = len(carries)
    names = _leaf_names("the carry output of f", carry_tree)
    body.convert_outs(lambda outs: _match_types(outs[:nc], [c.type for c in carries], names, "scan",
                                                   body.outer_constraints)
                      + [o if not o.type.weak else ops.convert(o, o.dtype) for o in outs[nc:]])
    region, captured = body.close(hoist=True)
    results = bind_all("scan", captured + carries + xvals, body=region, num_consts=len(captured), num_carry=nc,
                       length=n, reverse=bool(reverse))
    out = tree_unflatten(carry_tree, [wrap(v) for v in results[:nc]])
    return out, tree_unflatten(y_tree, [wrap(v) for v in results[nc:]])


def _pair(res, what):
    if not isinstance(res, (tuple, list)) or len(res) != 2:
        raise TypeError(f"{what} must return a pair (carry, y), got {type(res).__name__}")
    return tuple(res)


def _show(treedef) -> str:
    return str(tree_unflatten(treedef, ["*"] * len(_leaf_names("", treedef))))


def _scan_length(xvals, length, x_tree):
    lens, constraints = [], ops.current().constraints
    for x, name in zip(xvals, _leaf_names("xs", x_tree)):
        if x.ndim == 0:
            raise ValueError(f"scan: {name} is a scalar; every leaf of xs needs a leading axis to scan over")
        lens.append((x.shape[0], name))
    for d, name in lens[1:]:
        message = f"scan: all leaves of xs must have the same leading length, but {lens[0][1]} has {{a}} and " \
                  f"{name} has {{b}}"
        if d != lens[0][0] and not _same_at_run_time((lens[0][0],), (d,), constraints, message):
            raise ValueError(message.format(a=lens[0][0], b=d))
    if length is not None:
        length = length if isinstance(length, T.Dim) else operator.index(length)
        if isinstance(length, int) and length < 0:
            raise ValueError(f"scan: length must be >= 0, got {length}")
        message = f"scan: length={{b}} but xs has leading length {{a}}"
        if lens and lens[0][0] != length and not _same_at_run_time((lens[0][0],), (length,), constraints, message):
            raise ValueError(message.format(a=lens[0][0], b=length))
        return length
    if not lens:
        raise ValueError("scan: give xs or length (the number of steps)")
    return lens[0][0]


def _scan_eager(f, init, xs, length, reverse):
    x_leaves, x_tree = tree_flatten(xs)
    x_leaves = [np.asarray(x) for x in x_leaves]
    n = _scan_length([ops.constant(np.zeros(x.shape[:1] + (0,) * (x.ndim - 1), x.dtype)) if x.ndim else
                      ops.constant(x) for x in x_leaves], length, x_tree)
    if n == 0:  # the ys' shapes come from tracing f once
        from .api import jit
        return jit(lambda c, x: scan(f, c, x, length=0, reverse=reverse))(init, xs)
    carry, carry_tree = init, tree_flatten(init)[1]
    ys = []
    for i in (range(n - 1, -1, -1) if reverse else range(n)):
        carry, y = _pair(f(carry, tree_unflatten(x_tree, [x[i] for x in x_leaves])), "scan: f")
        _check_eager_carry("scan", init, carry, carry_tree)
        ys.append(y)
    if reverse:
        ys.reverse()
    y_leaves = [tree_flatten(y)[0] for y in ys]
    stacked = [np.stack([np.asarray(y[k]) for y in y_leaves]) for k in range(len(y_leaves[0]))]
    return carry, tree_unflatten(tree_flatten(ys[0])[1], stacked)


def _check_eager_carry(what, init, new, carry_tree):
    il, nl = tree_flatten(init)[0], tree_flatten(new)
    if nl[1] != carry_tree:
        raise TypeError(f"{what}: the body must return a carry with the structure of the initial value "
                        f"({_show(carry_tree)}), got {_show(nl[1])}")
    for a, b, name in zip(il, nl[0], _leaf_names("the carry output", carry_tree)):
        ta, tb = _eager_type(a), _eager_type(b)
        if ta != tb and not (type(b) in (int, float, bool) and np.ndim(a) == 0):
            raise TypeError(f"{what}: {name} has type {tb[0]}{list(tb[1])} but the input carry has type "
                            f"{ta[0]}{list(ta[1])}; the carry must keep its dtype and shape")


def _eager_type(x):
    if type(x) in (int, float, bool):
        return (np.asarray(x).dtype.name, ())
    a = np.asarray(x)
    return (a.dtype.name, a.shape)


# ------------------------------------------------------------------------------------------------ loops
def fori_loop(lower, upper, body_fun, init_val):
    """``for i in range(lower, upper): val = body_fun(i, val)``; traced bounds make it a ``while_loop``."""
    if not callable(body_fun):
        raise TypeError(f"fori_loop: body_fun must be callable, got {type(body_fun).__name__}")
    for name, b in (("lower", lower), ("upper", upper)):
        if isinstance(b, T.Dim):  # a traced array's length: the trip count is known when the call starts
            continue
        dt = b.dtype if isinstance(b, Tracer) else np.asarray(b).dtype
        if np.ndim(b) != 0 or dt.kind not in "iu":
            raise TypeError(f"fori_loop: {name} must be an integer scalar, got {dt} of shape {np.shape(b)}")
    if isinstance(lower, Tracer) or isinstance(upper, Tracer):
        def cond_fun(c):
            return c[0] < upper

        def step(c):
            return (c[0] + 1, body_fun(c[0], c[1]))
        i0 = ops.convert(ops.as_value(unwrap(lower)), np.result_type(*[_int_dtype(b) for b in (lower, upper)]))
        return while_loop(cond_fun, step, (wrap(i0), init_val))[1]
    lo, hi = [b if isinstance(b, T.Dim) else operator.index(b) for b in (lower, upper)]
    if not _tracing(init_val):
        val = init_val
        carry_tree = tree_flatten(init_val)[1]
        for i in range(lo, hi):
            val = body_fun(i, val)
            _check_eager_carry("fori_loop", init_val, val, carry_tree)
        return val
    dt = np.result_type(_int_dtype(lower), _int_dtype(upper))
    start = wrap(ops.convert(ops.dimsize(lo), dt)) if isinstance(lo, T.Dim) else np.asarray(lo, dt)

    def step(c, _):
        return (c[0] + np.asarray(1, dt), body_fun(c[0], c[1])), None
    return scan(step, (start, init_val), length=T.dim_max(hi - lo, 0))[0][1]


def _int_dtype(b):
    if isinstance(b, T.Dim):
        return T.INT64
    if isinstance(b, Tracer):
        return b.dtype
    return np.asarray(b).dtype if not isinstance(b, int) else T.INT64


def while_loop(cond_fun, body_fun, init_val):
    """``while cond_fun(val): val = body_fun(val)``; the predicate must be a boolean scalar."""
    for name, fn in (("cond_fun", cond_fun), ("body_fun", body_fun)):
        if not callable(fn):
            raise TypeError(f"while_loop: {name} must be callable, got {type(fn).__name__}")
    if not _tracing(init_val):
        val, carry_tree = init_val, tree_flatten(init_val)[1]
        while _eager_pred(cond_fun(val)):
            val = body_fun(val)
            _check_eager_carry("while_loop", init_val, val, carry_tree)
        return val
    carries, carry_tree = _tree_values(init_val, strong=True)
    types = [c.type for c in carries]
    cond = _Body(cond_fun, types, carry_tree, lambda fn, args: fn(args))
    p = cond.outs
    if len(p) != 1 or p[0].ndim != 0 or p[0].dtype != T.BOOL:
        got = ", ".join(_type_desc(v.type) for v in p) or "nothing"
        raise TypeError(f"while_loop: cond_fun must return a boolean scalar, got {got}")
    body = _Body(body_fun, types, carry_tree, lambda fn, args: fn(args))
    if body.out_tree != carry_tree:
        raise TypeError(f"while_loop: body_fun must return a carry with the structure of init_val "
                        f"({_show(carry_tree)}), got {_show(body.out_tree)}")
    body.convert_outs(lambda outs: _match_types(outs, types, _leaf_names("the output of body_fun", carry_tree),
                                                "while_loop", body.outer_constraints))
    creg, ccap = cond.close(hoist=True)
    breg, bcap = body.close(hoist=True)
    results = bind_all("while_loop", ccap + bcap + carries, cond=creg, body=breg, cond_nconsts=len(ccap),
                       body_nconsts=len(bcap))
    return tree_unflatten(carry_tree, [wrap(v) for v in results])


def _eager_pred(p) -> bool:
    a = np.asarray(p)
    if a.shape != () or a.dtype != np.bool_:
        raise TypeError(f"while_loop: cond_fun must return a boolean scalar, got {a.dtype}{list(a.shape)}")
    return bool(a)


# ------------------------------------------------------------------------------------------------ branches
def cond(pred, true_fun, false_fun, *operands):
    """``true_fun(*operands) if pred else false_fun(*operands)``; only the taken branch runs."""
    if np.ndim(pred) != 0:
        raise TypeError(f"cond: pred must be a scalar, got shape {tuple(np.shape(pred))}")
    for name, fn in (("true_fun", true_fun), ("false_fun", false_fun)):
        if not callable(fn):
            raise TypeError(f"cond: {name} must be callable, got {type(fn).__name__}")
    if isinstance(pred, Tracer):
        index = wrap(ops.convert(ops.ufunc("not_equal", ops.as_value(unwrap(pred)), 0), T.INT32))
    else:
        index = int(bool(pred))
    return _switch("cond", index, [false_fun, true_fun], operands)


def switch(index, branches, *operands):
    """``branches[clip(index, 0, len(branches) - 1)](*operands)``; only that branch runs."""
    branches = list(branches) if isinstance(branches, (list, tuple)) else branches
    if not isinstance(branches, list) or not branches or not all(callable(b) for b in branches):
        raise TypeError("switch: branches must be a non-empty sequence of callables")
    dt = index.dtype if isinstance(index, Tracer) else np.asarray(index).dtype
    if np.ndim(index) != 0 or dt.kind not in "iu":
        raise TypeError(f"switch: index must be an integer scalar, got {dt} of shape {tuple(np.shape(index))}")
    if isinstance(index, Tracer):
        index = wrap(ops.convert(ops.as_value(unwrap(index)), T.INT32))
    return _switch("switch", index, branches, operands)


def _switch(what, index, branches, operands):
    if not isinstance(index, Tracer):
        k = int(np.clip(int(index), 0, len(branches) - 1))
        return branches[k](*operands)  # a known index: only that branch runs (or is traced)
    vals, tree = _tree_values(operands)
    bodies = [_Body(b, [v.type for v in vals], tree, lambda fn, args: fn(*args)) for b in branches]
    first = bodies[0]
    for k, b in enumerate(bodies[1:], 1):
        if b.out_tree != first.out_tree:
            raise TypeError(f"{what}: the branches must return the same structure, got {_show(first.out_tree)} "
                            f"and {_show(b.out_tree)} (branch {k})")
    _unify_branch_types(what, bodies)
    regions, caps = zip(*[b.close(hoist=False) for b in bodies])
    consts = [c for cap in caps for c in cap]
    results = bind_all("cond", [ops.as_value(unwrap(index))] + consts + vals, branches=tuple(regions),
                       const_counts=tuple(len(c) for c in caps))
    return tree_unflatten(first.out_tree, [wrap(v) for v in results])


def _unify_branch_types(what, bodies):
    """Python scalars adapt to the other branches' dtype; otherwise dtypes and shapes must be equal."""
    names = _leaf_names("output", bodies[0].out_tree)
    n = len(bodies[0].outs)
    for i in range(n):
        strong = [b.outs[i] for b in bodies if not b.outs[i].type.weak]
        target = strong[0].type if strong else bodies[0].outs[i].type
        for k, b in enumerate(bodies):
            o = b.outs[i]
            if o.type.weak and o.ndim == 0 and (o.dtype != target.dtype or target.ndim):
                with b.builder:
                    o = ops.convert(o, target.dtype)
                    o = ops.broadcast_to(o, target.shape) if target.ndim else o
            if o.dtype != target.dtype or tuple(o.shape) != tuple(target.shape):
                raise TypeError(f"{what}: branch {k}'s {names[i]} has type {_type_desc(o.type)} but branch 0's "
                                f"has type {_type_desc(target)}; all branches must return identical types")
            if o.type.weak:
                with b.builder:
                    o = ops.convert(o, o.dtype)
            b.outs[i] = o


__all__ = ["fori_loop", "while_loop", "scan", "cond", "switch"]
