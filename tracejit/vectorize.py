"""vmap: the user-facing side of batching (rules and walk: passes/batching.py).

``vmap(f)`` traces ``f`` once, on one example (fresh inputs shaped like one slice of each mapped argument), in a
private Builder, and then rewrites that per-example graph into one over the whole batch: no Python loop over the
examples, no unrolling. Like ``grad`` it works in two ways:
  * called on Tracers (inside ``tj.jit``, ``tj.grad`` or another ``tj.vmap``): the batched equations are inlined
    into the enclosing trace. Under ``jit`` the batch length is a traced length, so a new batch size reuses the
    compiled program.
  * called on concrete arrays: it traces itself the same way and runs the graph at once.

The arguments follow JAX's ``jax.vmap``: ``in_axes`` (an int, None, or a tuple with one entry per positional
argument, each a pytree prefix of its argument), ``out_axes`` (the same over the output), ``axis_size`` (needed when
nothing is mapped), keyword arguments mapped over axis 0, and the same ValueErrors for inconsistent batch sizes.
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from .ir import ops
from .ir import types as T
from .ir.constraints import Constraint
from .ir.graph import Value
from .passes.batching import batch, move
from .trace.trace import is_complex_leaf, tree_flatten, tree_unflatten
from .trace.tracer import Tracer, wrap
from .transforms import _adopt_checks, _dispatch, _fun_name, _shape, _unwrap_jit

_IN_AXES_MSG = ("vmap in_axes must be an int, None, or a tuple of entries corresponding to the positional "
                "arguments passed to the function")


# ------------------------------------------------------------------------------------------------ axis specs
def _is_axis(a) -> bool:
    return a is None or (isinstance(a, (int, np.integer)) and not isinstance(a, bool))


def _check_spec(spec, what):
    """A TypeError, at vmap() time, for an axis spec whose leaves are not ints or None."""
    if isinstance(spec, (tuple, list)):
        for s in spec:
            _check_spec(s, what)
    elif isinstance(spec, dict):
        for s in spec.values():
            _check_spec(s, what)
    elif not _is_axis(spec):
        raise TypeError(f"vmap {what} must be an int, None, or (nested) container with those types as leaves, but "
                        f"got {spec!r}.")


def _key_str(k) -> str:
    return f"[{k!r}]"


def _prefix_leaves(spec, tree, path: str, what: str) -> list:
    """One (axis, path) per leaf of ``tree`` (in tree_flatten's order): ``spec`` is a pytree prefix of ``tree``
    whose leaves (ints or None) apply to their whole subtree, as in JAX."""
    if _is_axis(spec):
        return [(spec, p) for p in _leaf_paths(tree, path)]
    kind = type(spec)
    if isinstance(spec, (tuple, list)) and isinstance(tree, (tuple, list)) and type(tree) is kind:
        if len(spec) != len(tree):
            raise ValueError(f"vmap {what} specification must be a tree prefix of the corresponding value; at "
                             f"{path}, the prefix has a {kind.__name__} of length {len(spec)} but the value has "
                             f"one of length {len(tree)}")
        return [x for i, (s, t) in enumerate(zip(spec, tree))
                for x in _prefix_leaves(s, t, path + f"[{i}]", what)]
    if isinstance(spec, dict) and isinstance(tree, dict):
        if set(spec) != set(tree):
            raise ValueError(f"vmap {what} specification must be a tree prefix of the corresponding value; at "
                             f"{path}, the prefix is a dict with keys {sorted(spec, key=repr)} but the value has "
                             f"keys {sorted(tree, key=repr)}")
        return [x for k in sorted(tree, key=repr) for x in _prefix_leaves(spec[k], tree[k], path + _key_str(k), what)]
    raise ValueError(f"vmap {what} specification must be a tree prefix of the corresponding value; at {path}, the "
                     f"prefix has a {type(spec).__name__} but the value is of type {type(tree).__name__}")


def _leaf_paths(tree, path) -> list:
    """The key path of every leaf of ``tree`` (tree_flatten's order), for error messages."""
    if isinstance(tree, (tuple, list)):
        return [p for i, t in enumerate(tree) for p in _leaf_paths(t, path + f"[{i}]")]
    if isinstance(tree, dict):
        return [p for k in sorted(tree, key=repr) for p in _leaf_paths(tree[k], path + _key_str(k))]
    if tree is None:
        return []
    if is_complex_leaf(tree):  # its two parts (trace.tree_flatten)
        return [path + ".real", path + ".imag"]
    return [path]


def _arg_names(fun, nargs) -> list:
    """``argument x`` for each positional parameter JAX-style, ``args[i]`` where the signature does not say."""
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(nargs):
        p = params[i] if i < len(params) else None
        if p is not None and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(f"argument {p.name}")
        else:
            names.append(f"args[{i}]")
    return names


def _in_specs(fun, in_axes, args, kwargs) -> list:
    """(axis, description) per leaf of ``(args, kwargs)`` in tree_flatten's order."""
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)  # a list can never be a prefix of the args tuple: JAX reads it as a tuple
    if isinstance(in_axes, tuple):
        if len(in_axes) != len(args):
            raise ValueError(f"{_IN_AXES_MSG}, but got len(in_axes)={len(in_axes)}, len(args)={len(args)}")
    else:
        in_axes = (in_axes,) * len(args)
    out = []
    for spec, arg, name in zip(in_axes, args, _arg_names(fun, len(args))):
        out += _prefix_leaves(spec, arg, name, "in_axes")
    for k in sorted(kwargs, key=repr):  # keyword arguments are always mapped over their axis 0, as in JAX
        out += _prefix_leaves(0, kwargs[k], f"keyword argument {k}", "in_axes")
    return out


# ------------------------------------------------------------------------------------------------ batch length
def _type_str(v: Value) -> str:
    return f"{v.dtype.name}[{','.join(str(d) for d in _shape(v))}]"


def _normalize_axis(axis, v: Value) -> int:
    if not -v.ndim - 1 < axis < v.ndim:
        raise ValueError(f"vmap was requested to map its argument along axis {axis}, which implies that its rank "
                         f"should be at least {axis + 1 if axis >= 0 else -axis}, but is only {v.ndim} (its shape "
                         f"is {T.shape_str(_shape(v))})")
    return int(axis) % v.ndim


def _batch_length(mapped, axis_size):
    """The batch length (an int or a symbolic length) of the mapped leaves ``(value, axis, path)``.

    Lengths known now (eager calls, static lengths) must agree, or the ValueError names each argument as JAX
    does; symbolic lengths that may differ become a run-time check with the same words."""
    sizes = [(_shape(v)[a], v, a, p) for v, a, p in mapped]
    known = [s for s in sizes if isinstance(s[0], int)]
    distinct = {s[0] for s in known} | ({int(axis_size)} if axis_size is not None else set())
    if len(distinct) > 1:
        lines = [f"  * the `axis_size` argument was {axis_size};"] if axis_size is not None else []
        lines += [f"  * one axis had size {n}: axis {a} of {p} of type {_type_str(v)};" for n, v, a, p in known]
        raise ValueError("vmap got inconsistent sizes for array axes to be mapped:\n" + "\n".join(lines)[:-1])
    if axis_size is not None:
        size = int(axis_size)
    else:
        size = known[0][0] if known else sizes[0][0]
    for _, v, a, p in sizes:
        d = v.shape[a]
        if d != size:  # symbolic: equal only at run time (a static 1 never broadcasts here)
            msg = (f"vmap got inconsistent sizes for array axes to be mapped: axis {a} of {p} has size {{a}} but the "
                   f"batch size is {{b}}")
            ops.current().constraints.append(Constraint.same(d, size, msg, (v.shape,)))
            ops.current().constraints.append(Constraint.eq(d, size, (v.shape,)))
    return size


def _with_length(v: Value, axis: int, size) -> Value:
    """``v`` typed with the one batch length (a run-time check already says they agree), so that every batched
    value of the program carries the same length and work that depends on it (e.g. ``arange``) is shared."""
    if v.shape[axis] == size:
        return v
    return ops.bind("reshape", v, shape=v.shape[:axis] + (size,) + v.shape[axis + 1:])


# ------------------------------------------------------------------------------------------------ the core
def _leaf_value(x) -> Value:
    if isinstance(x, Tracer):
        return x._tj_value
    return ops.as_value(x)


def _out_leaves(out, fun) -> tuple:
    leaves, tree = tree_flatten(out)
    vals = []
    for o in leaves:
        try:
            vals.append(_leaf_value(o))
        except TypeError:
            raise TypeError(f"vmap: {_fun_name(fun)} must return arrays or pytrees (tuples, lists, dicts) of arrays, "
                            f"but it returned an object of type {type(o).__name__}") from None
    return vals, tree


def _place_output(v: Value, d, axis, size, path) -> Value:
    """Move (or broadcast in) the batch axis of one output to where ``out_axes`` asks."""
    if axis is None:
        if d is not None:
            raise ValueError(f"at vmap out_axes{path}, got axis spec None but output was batched on axis {d}")
        return v
    if d is None:
        v, d = ops.broadcast_to(v, (size,) + v.shape), 0
    if not -v.ndim <= axis < v.ndim:
        raise ValueError(f"at vmap out_axes{path}: axis {axis} is out of bounds for array of dimension {v.ndim}")
    return move(v, d, int(axis) % v.ndim)


def _vmap_traced(fun, in_axes, out_axes, axis_size, args, kwargs):
    specs = _in_specs(fun, in_axes, args, kwargs)
    leaves, treedef = tree_flatten((tuple(args), dict(kwargs)))
    mapped = [(_leaf_value(x), axis, path) for x, (axis, path) in zip(leaves, specs) if axis is not None]
    mapped = [(v, _normalize_axis(axis, v), path) for v, axis, path in mapped]
    if not mapped and axis_size is None:
        if not leaves:
            raise ValueError(f"vmap wrapped function must be passed at least one argument containing an array or "
                             f"axis_size must be specified, got empty *args={tuple(args)} and **kwargs={kwargs}")
        raise ValueError("vmap must have at least one non-None value in in_axes or axis_size must be specified")
    size = _batch_length(mapped, axis_size)
    mapped = [(_with_length(v, a, size), a, path) for v, a, path in mapped]
    builder, fresh = ops.Builder(), {}
    with builder:
        it = iter(mapped)
        new_leaves = []
        for x, (axis, _) in zip(leaves, specs):
            if axis is None:  # shared by every example: passed through as it is
                new_leaves.append(x)
                continue
            v, a, _ = next(it)
            one = Value(T.TensorType(v.dtype, v.shape[:a] + v.shape[a + 1:]), name=v.name)  # one example
            fresh[one.id] = (v, a)
            new_leaves.append(wrap(one))
        new_args, new_kwargs = tree_unflatten(treedef, new_leaves)
        out = _unwrap_jit(fun)(*new_args, **new_kwargs)
        outs, out_tree = _out_leaves(out, fun)
    _adopt_checks(builder, {}, batched=fresh)
    results = batch(outs, fresh)
    axes = _prefix_leaves(out_axes, out, "", "out_axes") if not _is_axis(out_axes) else [(out_axes, "")] * len(outs)
    placed = [_place_output(v, d, ax, size, p) for (v, d), (ax, p) in zip(results, axes)]
    return tree_unflatten(out_tree, [wrap(v) for v in placed])


# ------------------------------------------------------------------------------------------------ public API
def vmap(fun, in_axes=0, out_axes=0, axis_size=None):
    """Vectorize ``fun`` over a batch axis: ``vmap(f)(xs)`` equals ``np.stack([f(x) for x in xs])``, computed as
    one program over the whole batch.

    ``in_axes``: the axis of each positional argument that holds the batch (an int, negative allowed; None: not
    mapped, shared by every example), or a tuple with one entry per argument, each an axis or a pytree prefix of
    the argument (a dict of axes for a dict argument). Keyword arguments are mapped over axis 0. ``out_axes``:
    where the batch axis goes in each output (None: the output must not depend on the batch). ``axis_size``: the
    batch length, required when no argument is mapped. Composes with ``jit``, ``grad`` and itself
    (per-example gradients: ``vmap(grad(loss), in_axes=(None, 0, 0))``)."""
    if not callable(fun):
        raise TypeError(f"Expected a callable value, got {fun!r}")
    if isinstance(in_axes, (tuple, list)):
        _check_spec(in_axes, "in_axes")
    elif not _is_axis(in_axes):
        raise TypeError(f"{_IN_AXES_MSG}, but got {in_axes!r}.")
    _check_spec(out_axes, "out_axes")
    if axis_size is not None and not (isinstance(axis_size, (int, np.integer)) and not isinstance(axis_size, bool)
                                      and axis_size >= 0):
        raise TypeError(f"vmap axis_size must be a non-negative int or None, got {axis_size!r}")

    def traced(*args, **kwargs):
        return _vmap_traced(fun, in_axes, out_axes, axis_size, args, kwargs)

    @functools.wraps(fun)
    def batched(*args, **kwargs):
        return _dispatch(traced, args, kwargs)
    return batched


__all__ = ["vmap"]
