"""grad, value_and_grad, vjp: the user-facing side of reverse-mode autodiff (rules and walk: passes/autodiff.py).

A transformed function works in two ways:
  * called on Tracers (inside ``tj.jit``, ``tj.make_ir`` or another ``tj.grad``): it traces ``fun`` on fresh inputs in
    a private Builder, appends the backward equations, and inlines the result into the enclosing trace. The
    gradient is then an ordinary part of the enclosing graph: optimized, fused, cached, differentiable again.
  * called on concrete arrays: it traces itself the same way and runs the graph at once (trace + run per call).

Fresh inputs per call keep nested derivatives apart (``grad(lambda x: x * grad(lambda y: x * y)(x))`` differentiates
the inner function with respect to its own argument only).
"""
from __future__ import annotations

import functools
import threading

import numpy as np

from .errors import filter_traceback
from .ir import ops
from .ir import types as T
from .ir.graph import Value, toposort
from .ir.interpret import evaluate
from .passes.autodiff import backward
from .trace.trace import as_runtime_array, leaf_signature, make_input, trace, tree_flatten, tree_unflatten
from .trace import guards
from .trace.tracer import Tracer, wrap


# ------------------------------------------------------------------------------------------------ helpers
def _fun_name(fun):
    return getattr(fun, "__name__", type(fun).__name__)


def _unwrap_jit(fun):
    from .api import Jitted
    while isinstance(fun, Jitted):
        fun = fun.fun
    return fun


def _normalize_argnums(argnums, nargs, what):
    single = isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool)
    nums = (argnums,) if single else argnums
    if not isinstance(nums, (tuple, list)) or not nums or \
            any(not isinstance(a, (int, np.integer)) or isinstance(a, bool) for a in nums):
        raise TypeError(f"{what}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")
    out = []
    for a in nums:
        a = int(a)
        if not -nargs <= a < nargs:
            raise TypeError(f"{what}: argnums={argnums!r} refers to positional argument {a}, but the function was "
                            f"called with {nargs} positional argument(s)")
        out.append(a % nargs)
    return single, tuple(out)


def _check_argnums_type(argnums, what):
    nums = (argnums,) if isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool) else argnums
    if not isinstance(nums, (tuple, list)) or not nums or \
            any(not isinstance(a, (int, np.integer)) or isinstance(a, bool) for a in nums):
        raise TypeError(f"{what}: argnums must be an int or a non-empty tuple of ints, got {argnums!r}")


def _leaf_value(x) -> Value:
    """The IR value of an argument leaf inside a trace (Tracers, arrays, Python scalars)."""
    if isinstance(x, Tracer):
        return x._tj_value
    return ops.as_value(x)


_concrete = threading.local()  # symbol -> length while an eager call traces, so errors show real shapes


def _shape(v: Value) -> tuple:
    """``v``'s shape with the lengths of an eager call filled in (symbolic inside jit)."""
    env = getattr(_concrete, "env", None) or {}
    return tuple(T.eval_dim(d, env) if isinstance(d, int) or d.atoms() <= set(env) else d for d in v.shape)


def _describe(v: Value) -> str:
    return f"shape {T.shape_str(_shape(v))} and dtype {v.dtype}"


def _inline(outputs, mapping: dict) -> list:
    """Re-bind, in the current Builder, every equation of ``outputs`` that depends on a key of ``mapping`` (value
    id -> replacement Value); the rest (closed-over values, constants) is kept as is."""
    memo = dict(mapping)
    for e in toposort([o for o in outputs if isinstance(o, Value)]):
        if any(v.id in memo for v in e.inputs):
            memo[e.out.id] = ops.bind(e.prim, *[memo.get(v.id, v) for v in e.inputs], **e.p)
    return [memo.get(o.id, o) if isinstance(o, Value) else o for o in outputs]


def _adopt_checks(builder, mapping: dict, batched: dict | None = None) -> None:
    """Carry a private Builder's shape constraints and run-time checks (a negative integer power, an empty max)
    into the enclosing one: the checks' flags are re-bound over the enclosing values (``mapping``), or batched
    (``batched``, vmap: the flag of any example fails the call)."""
    outer = ops.current()
    outer.constraints.extend(builder.constraints)
    if not builder.checks:
        return
    flags = [f for f, _, _ in builder.checks]
    if batched is not None:
        from .passes.batching import batch
        new = []
        for v, d in batch(flags, batched):
            new.append(v if d is None else ops.reduce("any", v, (d,)))
    else:
        new = _inline(flags, mapping)
    for v, (_, exc, msg) in zip(new, builder.checks):
        ops.add_check(v, exc, msg)


def _has_tracer(tree) -> bool:
    leaves, _ = tree_flatten(tree)
    return any(isinstance(x, Tracer) for x in leaves)


def _run_eager(traced_fn, args, kwargs):
    """Trace ``traced_fn(*args, **kwargs)`` on concrete arguments and run the graph once (no jit cache)."""
    leaves, treedef = tree_flatten((tuple(args), dict(kwargs)))
    for i, x in enumerate(leaves):
        leaf_signature(x, f"argument leaf {i}")
    arrays = [as_runtime_array(x) for x in leaves]

    def rebuild(tracers):
        a, k = tree_unflatten(treedef, tracers)
        return a, k
    symbols: dict = {}
    for i, x in enumerate(leaves):
        make_input(x, i, symbols)  # the names trace() gives each length, to print concrete shapes in errors
    _concrete.env = {s: arrays[i].shape[ax] for s, (i, ax) in symbols.items()}
    # len(x), range(n), `a, b = x`, even `if loss > 0`: read off these arguments (the trace runs once, uncached)
    info: dict = {"eager": True}
    try:
        graph, out_tree = trace(traced_fn, leaves, treedef, rebuild, info=info)  # Python scalars stay weak
    finally:
        _concrete.env = None
    out = tree_unflatten(out_tree, evaluate(graph, arrays))
    if info["mutated"]:  # numpy's in-place meaning for arguments the function wrote into
        out, finals = out
        for i, v in zip(info["mutated"], finals):
            np.copyto(leaves[i], v)
    return out


def _dispatch(traced_fn, args, kwargs):
    """Inline into the enclosing trace when called on Tracers, else trace and run now."""
    try:
        if _has_tracer((args, kwargs)):
            return traced_fn(*args, **kwargs)
        return _run_eager(traced_fn, args, kwargs)
    except Exception as e:
        raise e.with_traceback(filter_traceback(e.__traceback__))


# ------------------------------------------------------------------------------------------------ the core
def _trace_fresh(fun, args, kwargs, argnums, what):
    """Trace ``fun`` in a private Builder with fresh inputs in place of the differentiated arguments.

    Returns (builder, fresh values, actual values, per-argnum treedefs and leaf counts, fun's raw output)."""
    trees, fresh, actual = [], [], []
    for i in argnums:
        leaves, tree = tree_flatten(args[i])
        _refuse_complex(tree, f"argument {i}", what)
        vals = [_leaf_value(x) for x in leaves]
        for k, v in enumerate(vals):
            if not T.is_float(v.dtype):
                where = f"argument {i}" + (f" (leaf {k})" if len(vals) > 1 else "")
                kind = f" (a Python {'bool' if v.dtype == T.BOOL else 'int'})" if v.type.weak else ""
                raise TypeError(f"{what}: can only differentiate with respect to float arguments, but {where} has "
                                f"dtype {v.dtype}{kind}; convert it with .astype(np.float64) or leave it out of "
                                f"argnums")
        trees.append((tree, len(vals)))
        actual.extend(vals)
    builder = ops.Builder()
    with builder:
        fresh = [Value(v.type, name=v.name) for v in actual]
        ctx = guards.current()
        if ctx is not None and ctx.eager:  # an eager grad: the fresh inputs hold the arguments' values
            ctx.same_values(fresh, actual)
        new_args = list(args)
        pos = 0
        for i, (tree, n) in zip(argnums, trees):
            new_args[i] = tree_unflatten(tree, [wrap(v) for v in fresh[pos:pos + n]])
            pos += n
        out = _unwrap_jit(fun)(*new_args, **kwargs)
    return builder, fresh, actual, trees, out


def _refuse_complex(tree, where, what):
    """Complex derivatives (Wirtinger, holomorphic) are a later issue: a complex argument or result is refused
    rather than differentiated by some convention the user did not ask for. Complex values inside a real-valued
    function of real arguments are fine: they are real work on their parts, differentiated exactly."""
    if isinstance(tree, tuple) and tree and tree[0] == "c":
        dt = "complex128" if tree[1] == "weak" else tree[1]
        raise TypeError(f"{what}: {where} has dtype {dt}; tracejit does not differentiate complex functions yet. "
                        f"Differentiate a real-valued function of real arguments (np.abs(z), z.real, ...), passing "
                        f"the real and imaginary parts as float arrays")
    if isinstance(tree, tuple):
        for t in tree[1:]:
            for k in (t if isinstance(t, tuple) else ()):
                _refuse_complex(k, where, what)


def _scalar_output(out, what, fun) -> Value:
    if type(out).__name__ == "ComplexArray":
        _refuse_complex(("c", out.dtype), "the result", what)
    try:
        v = _leaf_value(out)
    except TypeError:
        raise TypeError(f"{what}: {_fun_name(fun)} must return a scalar (a 0-d float array), but it returned an "
                        f"object of type {type(out).__name__}") from None
    if v.ndim != 0 or not T.is_float(v.dtype):
        raise TypeError(f"{what}: {_fun_name(fun)} must return a scalar (a 0-d float array), but it returned an "
                        f"array of {_describe(v)}; reduce it (e.g. np.sum) or use tj.vjp for non-scalar outputs")
    return v


def _value_and_grad_traced(fun, argnums, has_aux, single, what, args, kwargs):
    builder, fresh, actual, trees, out = _trace_fresh(fun, args, kwargs, argnums, what)
    with builder:
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(f"{what}: with has_aux=True, {_fun_name(fun)} must return a pair (value, aux), but "
                                f"it returned an object of type {type(out).__name__}")
            out, aux = out
        else:
            aux = None
        value = _scalar_output(out, what, fun)
        grads = backward([value], [ops.constant(np.ones((), value.dtype))], fresh)
        aux_leaves, aux_tree = tree_flatten(aux)
        aux_vals = [x._tj_value if isinstance(x, Tracer) else x for x in aux_leaves]
    _adopt_checks(builder, {f.id: a for f, a in zip(fresh, actual)})
    results = _inline([value] + grads + aux_vals, {f.id: a for f, a in zip(fresh, actual)})
    value, grads, aux_vals = results[0], results[1:1 + len(grads)], results[1 + len(grads):]
    grads = [ops.convert(g, a.dtype) if g.dtype != a.dtype or g.type.weak != a.type.weak else g
             for g, a in zip(grads, actual)]
    per_arg, pos = [], 0
    for tree, n in trees:
        per_arg.append(tree_unflatten(tree, [wrap(g) for g in grads[pos:pos + n]]))
        pos += n
    grad_out = per_arg[0] if single else tuple(per_arg)
    aux_out = tree_unflatten(aux_tree, [wrap(x) for x in aux_vals])
    return wrap(value), grad_out, aux_out


def _make(fun, argnums, has_aux, with_value, what):
    _check_argnums_type(argnums, what)
    if not callable(fun):
        raise TypeError(f"{what}: expected a callable, got an object of type {type(fun).__name__}")

    def traced(*args, **kwargs):
        single, nums = _normalize_argnums(argnums, len(args), what)
        value, g, aux = _value_and_grad_traced(fun, nums, has_aux, single, what, args, kwargs)
        if with_value:
            return ((value, aux), g) if has_aux else (value, g)
        return (g, aux) if has_aux else g

    @functools.wraps(fun)
    def transformed(*args, **kwargs):
        if _has_tracer((args, kwargs)):
            return _dispatch(traced, args, kwargs)
        # eager: only the differentiated arguments are traced; the others (an int counter, a list of batches,
        # keyword options) reach ``fun`` as the Python values they are, as in JAX and autograd
        single, nums = _normalize_argnums(argnums, len(args), what)

        def on_diff_args(*diff):
            full = list(args)
            for i, x in zip(nums, diff):
                full[i] = x
            return traced(*full, **kwargs)
        return _dispatch(on_diff_args, tuple(args[i] for i in nums), {})
    return transformed


# ------------------------------------------------------------------------------------------------ public API
def grad(fun, argnums=0, has_aux=False):
    """The gradient of scalar-valued ``fun`` with respect to positional argument(s) ``argnums``.

    The gradient has the structure of the argument (dicts of parameters give dicts of gradients); a tuple of
    ``argnums`` gives a tuple of gradients; ``has_aux=True``: ``fun`` returns ``(value, aux)`` and the result is
    ``(grad, aux)``. Works with and without ``tj.jit`` and composes (``grad(grad(f))``)."""
    return _make(fun, argnums, has_aux, False, "tj.grad")


def value_and_grad(fun, argnums=0, has_aux=False):
    """``(value, grad)`` (or ``((value, aux), grad)``) of scalar-valued ``fun``, the value computed once."""
    return _make(fun, argnums, has_aux, True, "tj.value_and_grad")


def vjp(fun, *primals):
    """``(out, vjp_fn)``: ``out = fun(*primals)`` and ``vjp_fn(cotangent)`` (cotangent shaped like ``out``) returns
    one gradient per primal, a tuple, each with the structure of its primal."""
    if not callable(fun):
        raise TypeError(f"tj.vjp: expected a callable, got an object of type {type(fun).__name__}")
    what = "tj.vjp"
    nums = tuple(range(len(primals)))

    def forward(*args):
        return _unwrap_jit(fun)(*args)

    def pullback_traced(primals_, ct):
        builder, fresh, actual, trees, out = _trace_fresh(fun, primals_, {}, nums, what)
        with builder:
            out_leaves, out_tree = tree_flatten(out)
            ct_leaves, ct_tree = tree_flatten(ct)
            if ct_tree != out_tree or len(ct_leaves) != len(out_leaves):
                raise TypeError(f"{what}: the cotangent must have the structure of the function's output "
                                f"{out_tree}, got {ct_tree}")
            outs = [_leaf_value(o) for o in out_leaves]
            cts = []
            for k, (o, c) in enumerate(zip(outs, ct_leaves)):
                cv = _leaf_value(c)
                cs, os_ = _shape(cv), _shape(o)
                if cv.ndim != o.ndim or any(a != b for a, b in zip(cs, os_) if isinstance(a, int) and isinstance(b, int)):
                    raise ValueError(f"{what}: cotangent {k} has shape {T.shape_str(cs)} but the output has "
                                     f"shape {T.shape_str(os_)}")
                cts.append(cv)
            grads = backward(outs, cts, fresh)
        _adopt_checks(builder, {f.id: a for f, a in zip(fresh, actual)})
        grads = _inline(grads, {f.id: a for f, a in zip(fresh, actual)})
        per_arg, pos = [], 0
        for tree, n in trees:
            per_arg.append(tree_unflatten(tree, [wrap(g) for g in grads[pos:pos + n]]))
            pos += n
        return tuple(per_arg)

    def check_float(args):
        for i, a in enumerate(args):
            for x in tree_flatten(a)[0]:
                dt = x.dtype if isinstance(x, Tracer) else np.asarray(x).dtype
                if not T.is_float(dt):
                    raise TypeError(f"{what}: can only differentiate with respect to float arguments, but primal {i} "
                                    f"has dtype {dt}")

    try:
        check_float(primals)
        out = forward(*primals) if _has_tracer(primals) else _run_eager(forward, primals, {})
    except Exception as e:
        raise e.with_traceback(filter_traceback(e.__traceback__))

    def vjp_fn(ct):
        return _dispatch(lambda p, c: pullback_traced(p, c), (tuple(primals), ct), {})
    return out, vjp_fn
