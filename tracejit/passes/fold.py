"""Constant folding: an equation whose inputs are all constants becomes a constant, computed with the
primitive's numpy reference (``broadcast_to`` and results of more than ``FOLD_MAX`` elements stay, so big constants
are not materialized at compile time; a primitive that raises on its constants is left to run, where its call
reports the error as it does for any input)."""
from __future__ import annotations

import math

import numpy as np

from ..ir import ops
from ..ir.primitives import PRIMS
from ..ir.types import Dim
from .patterns import on, rewrite, rule_table

FOLD_MAX = 1 << 22


def _has_dim(p) -> bool:
    if isinstance(p, Dim):
        return True
    if isinstance(p, tuple):
        return any(_has_dim(x) for x in p)
    return False


@on("*", reach=1)
def fold_constants(v, ctx):
    """f(constants) -> constant, evaluated with f's numpy reference"""
    e = v.eqn
    if not e.inputs or not all(x.is_const for x in e.inputs) or e.prim == "broadcast_to":
        return None
    if PRIMS[e.prim].kind == "region":  # a loop is run by the backend, not unrolled at compile time
        return None
    if any(_has_dim(p) for _, p in e.params) or not all(isinstance(d, int) for d in v.shape):
        return None
    if math.prod(v.shape) > FOLD_MAX:
        return None
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(PRIMS[e.prim].impl(*[x.const for x in e.inputs], **e.p))
    except Exception:  # noqa: BLE001 - e.g. cholesky of a constant that is not positive definite: left to run,
        return None   # where the call reports it as it does for any input
    if out.dtype != v.dtype:
        out = out.astype(v.dtype)
    return ctx.shared_constant(out, weak=v.type.weak)


@on("*", reach=2)
def fold_through_broadcast(v, ctx):
    """f(broadcast_to(c1, s), c2) -> broadcast_to(f(c1, c2), s): an elementwise function of broadcast constants
    is a broadcast constant (the zero real part of ``1j * x`` reaching exp and cos, which would otherwise cost a
    scalar kernel of their own)"""
    e = v.eqn
    if PRIMS[e.prim].kind != "elementwise" or not e.inputs or v.type.weak or all(x.is_const for x in e.inputs):
        return None
    srcs = []
    for x in e.inputs:
        if x.is_const:
            srcs.append(x.const)
        elif x.eqn is not None and x.eqn.prim == "broadcast_to" and x.eqn.inputs[0].is_const:
            srcs.append(x.eqn.inputs[0].const)
        else:
            return None
    if any(_has_dim(p) for _, p in e.params) or max(np.size(c) for c in srcs) > FOLD_MAX:
        return None
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(PRIMS[e.prim].impl(*srcs, **e.p))
    except Exception:  # noqa: BLE001 - left to run, as fold_constants does
        return None
    return ops.broadcast_to(ctx.shared_constant(out.astype(v.dtype)), v.shape)


FOLD_RULES = rule_table(fold_constants, fold_through_broadcast)


def fold(graph, strict_ieee=False, stats=None, memo=None, **_):
    """Constant folding: every equation whose inputs are all constants becomes a constant."""
    return rewrite(graph, FOLD_RULES, strict_ieee, stats, memo)


