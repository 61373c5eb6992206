"""Sorting by several keys and numpy 2's unique family on traced values.

``np.lexsort(keys, axis)`` is one stable argsort per key, least significant (first) key first, each later key
sorted in the order the earlier ones left: a stable sort keeps that order among its ties, so the last key ends up
primary, as numpy's. ``unique_all`` / ``unique_counts`` / ``unique_inverse`` / ``unique_values`` are numpy's
definitions over ``np.unique`` (equal_nan=False), returning numpy's named tuples.
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..ir.constraints import Constraint
from ..ir.graph import Value
from . import guards
from .numpy_api import IMPLS, impl
from .numpy_more import _ax
from .numpy_results import UniqueAllResult, UniqueCountsResult, UniqueInverseResult


def _keys_of(keys) -> list:
    """The keys as Values: a sequence of arrays, or an array whose first axis enumerates them (numpy's reading)."""
    if isinstance(keys, Value):
        if keys.ndim == 0:
            raise TypeError("need sequence of keys with len > 0 in lexsort")
        n = guards.dim_value(keys.shape[0])  # the number of keys, as numpy iterates them (guarded)
        return [ops.reshape(ops.bind("slice", keys, starts=(i,) + (0,) * (keys.ndim - 1), steps=(1,) * keys.ndim,
                                     shape=(1,) + tuple(keys.shape[1:])), tuple(keys.shape[1:])) for i in range(n)]
    if not isinstance(keys, (list, tuple)):
        raise TypeError(f"np.lexsort: keys must be a sequence of arrays, got {type(keys).__name__}")
    return [ops.as_value(k) for k in keys]


@impl("lexsort")
def lexsort(keys, axis=-1):
    """numpy.lexsort: the stable permutation sorting by the last key, ties broken by the one before, and so on."""
    keys = _keys_of(keys)
    if not keys:
        raise TypeError("need sequence of keys with len > 0 in lexsort")
    shape = keys[0].shape
    for k in keys[1:]:
        if len(k.shape) != len(shape) or any(isinstance(a, int) and isinstance(b, int) and a != b
                                             for a, b in zip(k.shape, shape)):
            raise ValueError("all keys need to be the same shape")
        for a, b in zip(k.shape, shape):
            if a != b:  # symbolic lengths: equal at run time, or numpy's error
                ops.current().constraints.append(Constraint.same(a, b, "all keys need to be the same shape"))
    if len(shape) == 0:
        return ops.constant(np.int64(0))
    ax = _ax(axis, len(shape))
    perm = IMPLS["argsort"](keys[0], axis=ax, kind="stable")
    for k in keys[1:]:
        in_order = _along(k, perm, ax)
        perm = _along(perm, IMPLS["argsort"](in_order, axis=ax, kind="stable"), ax)
    return perm


def _along(x: Value, idx: Value, axis: int) -> Value:
    """x picked along ``axis`` at ``idx`` (a permutation: always in range)."""
    if x.ndim == 1:
        return ops.bind("gather", x, idx, axis=0)
    return IMPLS["take_along_axis"](x, idx, axis)


@impl("unique_all")
def unique_all(x):
    return UniqueAllResult(*IMPLS["unique"](x, return_index=True, return_inverse=True, return_counts=True,
                                            equal_nan=False))


@impl("unique_counts")
def unique_counts(x):
    return UniqueCountsResult(*IMPLS["unique"](x, return_counts=True, equal_nan=False))


@impl("unique_inverse")
def unique_inverse(x):
    return UniqueInverseResult(*IMPLS["unique"](x, return_inverse=True, equal_nan=False))


@impl("unique_values")
def unique_values(x):
    return IMPLS["unique"](x, equal_nan=False)


lexsort.takes_scalars = True  # the keys sequence arrives as it is (each key becomes a Value here)
