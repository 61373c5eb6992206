"""Custom derivative rules: ``custom_vjp`` (``defvjp(fwd, bwd)``) and ``custom_jvp`` (``defjvp(rule)``), with
JAX's calling conventions (``nondiff_argnums``, pytrees, residuals).

A call on traced values records the primal computation as ordinary IR and marks each float output with a
``custom_vjp_call`` equation: an identity whose inputs are the output, the call's input leaves and its residuals,
and whose ``call`` parameter knows the user's rule. The backward walk (passes/autodiff.py) stops at the marks: the
body is never differentiated; the rule runs once per call with every output's cotangent. Residuals are inputs of
the marks, so graph rewrites (inlining, batching) keep them pointing at the right values. The optimizer drops the
marks like ``stop_gradient``; a program that is never differentiated pays nothing.

A ``custom_jvp`` rule is used for reverse mode by transposing it: its tangent output is linear in the tangents, so
the backward walk applied to it gives the pullback. Forward mode (``tj.jvp``) transposes that pullback again and
so runs the user's JVP rule.
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from .ir import graph as _graph
from .ir import ops
from .ir import types as T
from .ir.graph import Value
from .ir.regions import captured_values, equations_since, replay
from .trace.trace import tree_flatten, tree_unflatten
from .trace.tracer import Tracer, wrap


def _value(x, what) -> Value:
    if isinstance(x, Tracer):
        return x._tj_value
    try:
        return ops.as_value(x)
    except Exception:
        raise TypeError(f"{what} must be an array or a Python/numpy scalar, got an object of type "
                        f"{type(x).__name__}") from None


def _zeros(v: Value) -> Value:
    return ops.broadcast_to(ops.constant(np.zeros((), v.dtype)), tuple(v.shape))


def _bind_positional(fun, args, kwargs, what):
    """JAX resolves keyword arguments to positions before applying the rule."""
    if not kwargs:
        return tuple(args)
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what}: {e}") from None
    bound.apply_defaults()
    return tuple(bound.args)


def _flat_args(args, positions, name):
    """((tree, leaf count) per argument at ``positions``, their leaves as Values, flat)."""
    arg_trees, ins = [], []
    for i in positions:
        leaves, tree = tree_flatten(args[i])
        arg_trees.append((tree, len(leaves)))
        ins.extend(_value(x, f"argument {i} of {name}") for x in leaves)
    return arg_trees, ins


def _unflat_args(arg_trees, values) -> list:
    """One pytree of tracers per argument from flat Values (inverse of ``_flat_args``)."""
    out, pos = [], 0
    for tree, n in arg_trees:
        out.append(tree_unflatten(tree, [wrap(v) for v in values[pos:pos + n]]))
        pos += n
    return out


class _Rule:
    """The shared part of both decorators: the function, its non-differentiable positions, one call's marks."""
    kind = "custom rule"

    def __init__(self, fun, nondiff_argnums=()):
        if not callable(fun):
            raise TypeError(f"tj.{self.kind}: expected a callable, got an object of type {type(fun).__name__}")
        self.fun = fun
        self.nondiff_argnums = tuple(int(i) for i in nondiff_argnums)
        functools.update_wrapper(self, fun)

    def _split(self, args):
        nd = {i % len(args) for i in self.nondiff_argnums} if args else set()
        for i in self.nondiff_argnums:
            if not -len(args) <= i < len(args):
                raise TypeError(f"tj.{self.kind}: nondiff_argnums={self.nondiff_argnums} refers to argument {i}, "
                                f"but {getattr(self.fun, '__name__', 'the function')} was called with {len(args)}")
        return [a for i, a in enumerate(args) if i in nd], [i for i in range(len(args)) if i not in nd]

    def _mark(self, call, out, ins):
        """Wrap each float output leaf in a mark that knows ``call``."""
        leaves, tree = tree_flatten(out)
        vals = [_value(x, f"tj.{self.kind}: an output of {call.name}") for x in leaves]
        call.out_types = [v.type for v in vals]
        call.n_in = len(ins)
        marked = [ops.bind("custom_vjp_call", v, *ins, *call.residuals, call=call, index=k)
                  if T.is_float(v.dtype) else v for k, v in enumerate(vals)]
        return tree_unflatten(tree, [wrap(m) for m in marked])


class _Call:
    """One traced call of a custom-rule function; ``pullback`` is what the backward walk runs."""

    def __init__(self, name, pullback, residuals=()):
        self.name = name
        self._pullback = pullback
        self.residuals = list(residuals)
        self.out_types: list = []
        self.n_in = 0

    def __repr__(self):
        return f"<{self.name}>"

    def pullback(self, ins: list, res: list, cts: list) -> list:
        """Cotangents (Values or None) of the input leaves, given every output's cotangent (None: zero)."""
        cts = [c if c is not None else _zeros(Value(t)) for c, t in zip(cts, self.out_types)]
        return self._pullback(ins, res, cts)

    def batched(self, operands: list, dims: list, n) -> "_Call":
        """This call under ``vmap``: the marks' operands (inputs, then residuals) carry a batch axis in front
        (dim 0) or none; the rule runs per example and is batched in turn. One object per batched call, shared by
        all of its marks, so the walk still runs the rule once."""
        key = tuple((v.id, d) for v, d in zip(operands, dims))
        cache = self.__dict__.setdefault("_batched", {})
        if key not in cache:
            out = _Call(self.name, functools.partial(_batched_pullback, self, dims, n), operands[self.n_in:])
            out.n_in = self.n_in
            out.out_types = [T.TensorType(t.dtype, (n,) + tuple(t.shape)) for t in self.out_types]
            cache[key] = out
        return cache[key]


def _batched_pullback(call: _Call, dims, n, ins, res, cts):
    """Run ``call``'s rule on one example's stand-ins, then batch what it built over the real operands."""
    from .passes.batching import batch, materialize
    from .transforms import _inline
    operands = list(ins) + list(res)
    fresh = [Value(T.TensorType(v.dtype, tuple(v.shape[1:]) if d == 0 else tuple(v.shape)))
             for v, d in zip(operands, dims)]
    fresh_cts = [Value(T.TensorType(c.dtype, tuple(c.shape[1:]))) for c in cts]
    per = call.pullback(fresh[:len(ins)], fresh[len(ins):], fresh_cts)
    live = [k for k, c in enumerate(per) if c is not None]
    shared = {f.id: v for f, v, d in zip(fresh, operands, dims) if d is None}
    outs = _inline([per[k] for k in live], shared)
    mapping = {f.id: (v, d) for f, v, d in zip(fresh, operands, dims) if d == 0}
    mapping.update({f.id: (materialize(c, None, n) if c.ndim == len(f.shape) else c, 0)
                    for f, c in zip(fresh_cts, cts)})
    result = [None] * len(ins)
    for k, (c, d) in zip(live, batch(outs, mapping)):
        if dims[k] == 0:
            result[k] = materialize(c, d, n)
        else:  # an operand shared by every example: its cotangent sums theirs
            result[k] = c if d is None else ops.reduce("sum", c, (d,))
    return result


class _Zero:
    """A leaf standing for a None cotangent (a zero), so None keeps its place in the tree."""


_ZERO = _Zero()


def _none_to_zero(r):
    if r is None:
        return _ZERO
    if isinstance(r, dict):
        return {k: _none_to_zero(v) for k, v in r.items()}
    if isinstance(r, (list, tuple)):
        return type(r)(_none_to_zero(v) for v in r)
    return r


def _check_cts(result, arg_trees, ins, name, what):
    """Flatten what a user's rule returned for the differentiable arguments into one Value (or None) per leaf."""
    if not isinstance(result, (tuple, list)) or len(result) != len(arg_trees):
        got = f"a {type(result).__name__} of length {len(result)}" if isinstance(result, (tuple, list)) else \
            f"an object of type {type(result).__name__}"
        raise TypeError(f"{what} of {name} must return a tuple with one cotangent per differentiable argument "
                        f"({len(arg_trees)}), got {got}")
    from .transforms import _shape
    out = []
    for i, (r, (tree, n)) in enumerate(zip(result, arg_trees)):
        leaves, t = tree_flatten(_none_to_zero(r))  # None, anywhere in the tree, stands for a zero cotangent
        if r is None:
            leaves, t = [_ZERO] * n, tree
        if t != tree:
            raise TypeError(f"{what} of {name}: cotangent {i} must have the structure of its argument ({tree}), "
                            f"got {t}")
        out.extend(None if x is _ZERO else _value(x, f"{what} of {name}: cotangent {i}") for x in leaves)
    for k, (c, v) in enumerate(zip(out, ins)):
        if c is None:
            continue
        cs, vs = _shape(c), _shape(v)
        if c.ndim > v.ndim or any(isinstance(a, int) and isinstance(b, int) and a != b and a != 1
                                  for a, b in zip(cs[::-1], vs[::-1])):
            raise ValueError(f"{what} of {name}: a cotangent of shape {T.shape_str(cs)} was returned for an "
                             f"argument of shape {T.shape_str(vs)}")
        if c.dtype != v.dtype and T.is_float(v.dtype):
            out[k] = ops.convert(c, v.dtype)
    return out


class custom_vjp(_Rule):
    """``@tj.custom_vjp`` then ``f.defvjp(fwd, bwd)``: ``fwd(*args) -> (out, residuals)``,
    ``bwd(*nondiff_args, residuals, cotangent) -> tuple`` (one cotangent per differentiable argument, None for
    zero). Honoured by ``grad``, ``vjp``, ``jvp`` (by transposition), ``vmap`` and ``jit``."""
    kind = "custom_vjp"

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.fwd = self.bwd = None
        self._in_fwd = False

    def defvjp(self, fwd, bwd):
        if not callable(fwd) or not callable(bwd):
            raise TypeError("tj.custom_vjp.defvjp: fwd and bwd must be callables")
        self.fwd, self.bwd = fwd, bwd
        return self

    def __call__(self, *args, **kwargs):
        name = getattr(self.fun, "__name__", "custom_vjp function")
        if self.fwd is None:
            raise AttributeError(f"no VJP defined for custom_vjp function {name}: call {name}.defvjp(fwd, bwd) first")
        args = _bind_positional(self.fun, args, kwargs, f"tj.custom_vjp {name}")
        if not any(isinstance(x, Tracer) for x in tree_flatten(args)[0]):
            return self.fun(*args)  # nothing traces it: nothing can differentiate it
        if self._in_fwd:  # fwd calling the function itself (JAX's idiom): the primal, no second rule
            return self.fun(*args)
        nondiff, diff_pos = self._split(args)
        self._in_fwd = True
        try:
            pair = self.fwd(*args)
        finally:
            self._in_fwd = False
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"custom_vjp fwd of {name} must return a pair (output, residuals), got an object of "
                            f"type {type(pair).__name__}")
        out, res = pair
        res_leaves, res_tree = tree_flatten(res)
        res_vals = [_value(x, f"custom_vjp fwd of {name}: a residual") for x in res_leaves]
        arg_trees, ins = _flat_args(args, diff_pos, name)
        bwd = self.bwd

        def pullback(in_vals, res_now, cts):
            res_py = tree_unflatten(res_tree, [wrap(r) for r in res_now])
            out_tree = tree_flatten(out)[1]
            result = bwd(*nondiff, res_py, tree_unflatten(out_tree, [wrap(c) for c in cts]))
            return _check_cts(result, arg_trees, in_vals, name, "custom_vjp bwd")
        return self._mark(_Call(name, pullback, res_vals), out, ins)


class custom_jvp(_Rule):
    """``@tj.custom_jvp`` then ``f.defjvp(rule)``: ``rule(*nondiff_args, primals, tangents) ->
    (primal_out, tangent_out)``, the tangent linear in ``tangents``. Reverse mode transposes the rule."""
    kind = "custom_jvp"

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.jvp = None

    def defjvp(self, jvp):
        if not callable(jvp):
            raise TypeError("tj.custom_jvp.defjvp: the rule must be a callable")
        self.jvp = jvp
        return jvp

    def __call__(self, *args, **kwargs):
        from .passes.autodiff import backward
        from .transforms import _inline
        name = getattr(self.fun, "__name__", "custom_jvp function")
        if self.jvp is None:
            raise AttributeError(f"no JVP defined for custom_jvp function {name}: call {name}.defjvp(rule) first")
        args = _bind_positional(self.fun, args, kwargs, f"tj.custom_jvp {name}")
        if not any(isinstance(x, Tracer) for x in tree_flatten(args)[0]):
            return self.fun(*args)
        nondiff, diff_pos = self._split(args)
        out = self.fun(*args)
        arg_trees, ins = _flat_args(args, diff_pos, name)
        rule = self.jvp

        def pullback(in_vals, res_now, cts):
            """Run the rule on fresh tangents, then transpose its (linear) tangent output."""
            ts = [Value(T.TensorType(v.dtype if T.is_float(v.dtype) else T.FLOAT64, tuple(v.shape)))
                  for v in in_vals]
            primals, tangents = _unflat_args(arg_trees, in_vals), _unflat_args(arg_trees, ts)
            pair = rule(*nondiff, tuple(primals), tuple(tangents))
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise TypeError(f"custom_jvp rule of {name} must return a pair (primal_out, tangent_out), got an "
                                f"object of type {type(pair).__name__}")
            t_leaves = [_value(x, f"custom_jvp rule of {name}: a tangent output") for x in tree_flatten(pair[1])[0]]
            if len(t_leaves) != len(cts):
                raise TypeError(f"custom_jvp rule of {name}: the tangent output has {len(t_leaves)} leaves but the "
                                f"function's output has {len(cts)}")
            live = [(t, c) for t, c in zip(t_leaves, cts) if T.is_float(t.dtype)]
            gs = backward([t for t, _ in live], [c for _, c in live], ts) if live else [None] * len(ts)
            gs = _inline(gs, {t.id: _zeros(t) for t in ts})  # linear in the tangents: leftovers read them as 0
            return [g if T.is_float(v.dtype) else None for g, v in zip(gs, in_vals)]
        return self._mark(_Call(name, pullback), out, ins)


def checkpoint(fun, static_argnums=()):
    """``fun`` whose intermediate values are recomputed in the backward pass instead of kept from the forward pass
    (JAX's ``checkpoint``/``remat``): memory for time on long chains. Values are unchanged.

    The call is a custom rule whose pullback replays ``fun``'s recorded equations on its inputs behind a
    ``remat_barrier`` that waits for the cotangents, so the recomputation runs in the backward pass and CSE cannot
    merge it with the forward pass; the forward intermediates then die after the forward pass and their buffers
    are reused. Values ``fun`` closes over (a weight matrix of the enclosing trace, a loop's carry) are inputs of
    the call too: they get their cotangents, and inside a loop body they are the body's own values."""
    if not callable(fun):
        raise TypeError(f"tj.checkpoint: expected a callable, got an object of type {type(fun).__name__}")
    static = {int(i) for i in static_argnums}
    name = getattr(fun, "__name__", "checkpointed function")

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        args = _bind_positional(fun, args, kwargs, f"tj.checkpoint {name}")
        if not any(isinstance(x, Tracer) for x in tree_flatten(args)[0]):
            return fun(*args)
        _, ins = _flat_args(args, [i for i in range(len(args)) if i not in static], name)
        start = next(_graph._ids)
        out = fun(*args)
        outs = [_value(x, f"an output of {name}") for x in tree_flatten(out)[0]]
        eqns = equations_since(outs, start)
        ins = ins + captured_values(eqns, outs, [v.id for v in ins])

        def pullback(in_vals, res_now, cts):
            from .passes.autodiff import backward
            after = [c for c in cts if c is not None]
            again = [ops.bind("remat_barrier", v, *after) for v in in_vals]
            now = replay(eqns, {v.id: a for v, a in zip(ins, again)}, outs)
            live = [(o, c) for o, c in zip(now, cts) if T.is_float(o.dtype)]
            gs = backward([o for o, _ in live], [c for _, c in live], again) if live else [None] * len(again)
            return [g if T.is_float(v.dtype) else None for g, v in zip(gs, in_vals)]
        return _Rule(fun)._mark(_Call(name, pullback), out, ins)
    return wrapped


remat = checkpoint

__all__ = ["custom_vjp", "custom_jvp", "checkpoint", "remat"]
