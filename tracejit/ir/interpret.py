"""Reference evaluation of a Graph with each primitive's numpy implementation (constant folding, tests)."""
from __future__ import annotations

import numpy as np

from . import types as T
from .constraints import ConstraintKind
from .primitives import PRIMS, unbacked_outputs
from .regions import REGION_PRIMS, evaluate_body, group_key, run_group
from .types import Dim


def symbol_env(graph, arrays) -> dict:
    """Symbol values read off the input arrays' shapes."""
    return {s: arrays[i].shape[ax] for s, (i, ax) in graph.symbols.items()}


def resolve(v, env):
    """Replace symbolic dims inside a parameter value by their run-time values."""
    if isinstance(v, Dim):
        return T.eval_dim(v, env)
    if isinstance(v, tuple):
        return tuple(resolve(x, env) for x in v)
    return v


def _bound(d, env) -> bool:
    return not isinstance(d, Dim) or all(a in env for a in d.atoms())


def constraints_by_phase(graph) -> tuple:
    """(the constraints checked before a run, those on data-dependent lengths, checked after it): an executable
    that runs many times splits them once (``check_constraints(..., constraints=)``)."""
    early, late = [], []
    for c in graph.constraints:
        (late if T.unbacked_symbols(c.a) or T.unbacked_symbols(c.b) else early).append(c)
    return early, late


def check_constraints(graph, env, deferred=False, constraints=None):
    """Raise numpy's exception when run-time lengths violate a constraint recorded while tracing. Constraints on
    data-dependent lengths are checked once the primitives that bind them ran (``deferred``); ``constraints``:
    the ones of this phase, from constraints_by_phase."""
    for c in (graph.constraints if constraints is None else constraints):
        kind, a, b, info = c.kind, c.a, c.b, c.origin
        if constraints is None and bool(T.unbacked_symbols(a) or T.unbacked_symbols(b)) != deferred:
            continue
        if not (_bound(a, env) and _bound(b, env)):
            continue
        va, vb = T.eval_dim(a, env), T.eval_dim(b, env)
        if kind is ConstraintKind.EQ:
            # a static 1 broadcasts in the compiled code; two symbolic lengths must be equal: a symbolic length
            # that is 1 at run time is addressed as a full axis, so letting it pass read the wrong elements
            if va != vb and a != 1 and b != 1:
                shapes = " ".join(T.shape_str(resolve(s, env)) for s in info)
                if 1 not in (va, vb):
                    raise ValueError(f"operands could not be broadcast together with shapes {shapes}")
                raise ValueError(f"operands could not be broadcast together with shapes {shapes} in the traced "
                                 f"program: numpy would broadcast the length-1 axis, but its length depends on the "
                                 f"input (a slice like x[:1], a reshape with -1) and the program was traced "
                                 f"without knowing it is 1; write it so that it is 1 while tracing, e.g. "
                                 f"x[0][np.newaxis] instead of x[:1]")
        elif kind is ConstraintKind.RESHAPE:
            if va != vb:
                raise ValueError(f"cannot reshape array of size {va} into shape {T.shape_str(resolve(info[1], env))}")
        elif kind is ConstraintKind.SAME:  # exact equality, no broadcasting (matmul core dims, concatenate)
            if va != vb:
                raise ValueError(info[0].format(a=va, b=vb))
        elif kind is ConstraintKind.INDEX:
            if not -vb <= va < vb:
                raise IndexError(f"index {va} is out of bounds for axis {info} with size {vb}")


def evaluate(graph, arrays, check=True):
    arrays = [np.asarray(a) for a in arrays]
    env = symbol_env(graph, arrays)
    if check:
        check_constraints(graph, env)
    vals = {v.id: a for v, a in zip(graph.inputs, arrays)}
    groups: dict = {}  # a loop's results are sibling equations: run it once
    for e in graph.eqns:
        args = [vals[v.id] if v.id in vals else v.const for v in e.inputs]
        # a data-dependent length a library call binds ("length") is its result's, not an argument
        binds = PRIMS[e.prim].kind == "library"
        params = {k: p if binds and k == "length" else resolve(p, env) for k, p in e.params}
        if e.prim in REGION_PRIMS:
            key = group_key(e)
            if key not in groups:
                groups[key] = run_group(e.prim, params, args, lambda r, xs: evaluate_body(r, xs, env), env)
            vals[e.out.id] = np.asarray(groups[key][params["result"]])
            continue
        with np.errstate(all="ignore"):
            out = PRIMS[e.prim].impl(*args, **params)
        out = np.asarray(out)
        if out.dtype != e.out.dtype:
            out = out.astype(e.out.dtype)
        vals[e.out.id] = out
        bind_unbacked(e, out.shape, env)
    if check:
        check_constraints(graph, env, deferred=True)
    return [np.array(vals[v.id] if v.id in vals else v.const) for v in graph.outputs]


def bind_unbacked(eqn, shape, env) -> None:
    """Record the data-dependent lengths an equation's result of ``shape`` binds (see primitives.unbacked_outputs);
    a length bound before (by an equal call) must agree."""
    for sym, ax in unbacked_outputs(eqn).items():
        got = env.setdefault(sym, shape[ax])
        if got != shape[ax]:
            raise RuntimeError(f"the data-dependent length {sym} was bound to {got} and then to {shape[ax]} by "
                               f"{eqn.prim}")
