"""Theano's ``ifelse``: a lazy branch over already-built expressions (``from tracejit.ifelse import ifelse``).

``T.switch(c, a, b)`` computes both ``a`` and ``b`` and picks elementwise; ``ifelse(c, a, b)`` computes only the
branch taken. Since ``a`` and ``b`` arrive as finished expressions (their equations already built), laziness comes
from where their work is placed: ``ifelse`` builds one ``cond`` equation (ir/regions.py) whose branch regions hold
each branch's *exclusive cone*: the equations computing ``a`` that neither ``b`` nor the condition need (and
likewise for ``b``). Work both sides share, and the condition's, stays outside and is computed once, before the
branch. Work that some other output also uses is then computed outside as well as in the branch (correct, and
rare: Theano's own ifelse computes such a value once because its outputs are known at compile time).
"""
from __future__ import annotations

from ..ir import ops
from ..ir import types as T
from ..ir.graph import toposort
from ..ir.primitives import unbacked_outputs
from ..ir.regions import Region, bind_all, extract
from ..trace.symbolic import Variable, symbolic_apply
from ..trace.tracer import Tracer, unwrap, wrap


def ifelse(condition, then_branch, else_branch, name=None):
    """``then_branch`` if ``condition`` (a scalar; nonzero is true) else ``else_branch``, computing only the
    branch taken. The branches are variables or lists of variables (same length, same dtypes, ranks and shapes).
    """
    single = not isinstance(then_branch, (list, tuple))
    thens = [then_branch] if single else list(then_branch)
    elses = [else_branch] if not isinstance(else_branch, (list, tuple)) else list(else_branch)
    if single != (not isinstance(else_branch, (list, tuple))) or len(thens) != len(elses):
        raise ValueError(f"ifelse: then_branch and else_branch must have the same number of outputs, got "
                         f"{len(thens)} and {len(elses)}")
    if not thens:
        raise ValueError("ifelse: then_branch and else_branch are empty")
    out = symbolic_apply(lambda: _build(condition, thens, elses))
    out = [o if isinstance(o, Variable) or getattr(ops._state, "stack", None) else Variable(o._tj_value)
           for o in out]
    if name is not None and isinstance(out[0], Variable):
        for o in out:
            o.name = name
    return out[0] if single else out


def _value(x, what):
    try:
        return ops.as_value(unwrap(x))
    except TypeError:
        raise TypeError(f"ifelse: {what} must be a symbolic variable or an array, got {type(x).__name__}") from None


def _build(condition, thens, elses):
    c = _value(condition, "condition")
    if c.ndim != 0:
        raise TypeError(f"ifelse: condition must be a scalar, got shape {T.shape_str(c.shape)}")
    index = ops.convert(ops.ufunc("not_equal", c, ops.constant(0, c.dtype, weak=True)), T.INT32)
    tv = [_value(x, f"then_branch[{i}]") for i, x in enumerate(thens)]
    ev = [_value(x, f"else_branch[{i}]") for i, x in enumerate(elses)]
    tv, ev = _unify(tv, ev)
    t_eqns, e_eqns, c_eqns = toposort(tv), toposort(ev), toposort([index])
    # branch regions: 0 is else (index 0), 1 is then
    regions, captured = [], []
    for mine, others in ((ev, t_eqns), (tv, e_eqns)):
        keep_out = set(others) | set(c_eqns)
        region, cap = _region(mine, keep_out)
        regions.append(region)
        captured.append(cap)
    results = bind_all("cond", [index] + captured[0] + captured[1], branches=tuple(regions),
                       const_counts=(len(captured[0]), len(captured[1])))
    return [wrap(v) for v in results]


def _region(outputs, keep_out):
    """The cone of ``outputs`` not in ``keep_out`` as a closed region, and the outer values it reads."""
    inner = [e for e in toposort(outputs) if e not in keep_out and not unbacked_outputs(e)]
    made = {e.out.id for e in inner}
    captured: dict = {}
    for x in [x for e in inner for x in e.inputs] + list(outputs):
        if x.id not in made and not x.is_const and x.id not in captured:
            captured[x.id] = x
    graph, witness = extract(inner, list(captured.values()), outputs)
    return Region(graph, witness), list(captured.values())


def _unify(tv, ev):
    """Python scalars adapt to the other side's dtype; dtypes and ranks must agree; lengths that differ only
    symbolically are checked at run time."""
    from ..control_flow import _same_at_run_time, _type_desc
    constraints = ops.current().constraints
    out_t, out_e = [], []
    for i, (a, b) in enumerate(zip(tv, ev)):
        if a.type.weak and not b.type.weak:
            a = ops.convert(a, b.dtype)
        elif b.type.weak and not a.type.weak:
            b = ops.convert(b, a.dtype)
        elif a.type.weak and b.type.weak and a.dtype != b.dtype:
            dt = T.result_type(a.dtype, b.dtype) if hasattr(T, "result_type") else __import__("numpy").result_type(
                a.dtype, b.dtype)
            a, b = ops.convert(a, dt), ops.convert(b, dt)
        if a.ndim == 0 and b.ndim > 0 and a.type.weak:
            a = ops.broadcast_to(a, b.shape)
        if b.ndim == 0 and a.ndim > 0 and b.type.weak:
            b = ops.broadcast_to(b, a.shape)
        if a.dtype != b.dtype or a.ndim != b.ndim:
            raise TypeError(f"ifelse: then_branch[{i}] has type {_type_desc(a.type)} but else_branch[{i}] has type "
                            f"{_type_desc(b.type)}; both branches must have the same dtype and rank (cast one "
                            f"with T.cast)")
        if tuple(a.shape) != tuple(b.shape):
            if not _same_at_run_time(a.shape, b.shape, constraints,
                                     f"ifelse: then_branch[{i}] has length {{a}} but else_branch[{i}] has {{b}}"):
                raise TypeError(f"ifelse: then_branch[{i}] has shape {T.shape_str(a.shape)} but else_branch[{i}] "
                                f"has shape {T.shape_str(b.shape)}; both branches must have the same shape")
            b = ops.reshape(b, a.shape)
        if a.type.weak:
            a = ops.convert(a, a.dtype)
        if b.type.weak:
            b = ops.convert(b, b.dtype)
        out_t.append(a)
        out_e.append(b)
    return out_t, out_e


__all__ = ["ifelse"]
