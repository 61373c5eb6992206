"""``flatten(value) -> (vector, unflatten)`` for nested tuples, lists and dicts of arrays and numbers, as autograd's.
``unflatten`` is numpy code (slices and reshapes), so it runs on traced vectors inside a gradient."""
from __future__ import annotations

import numpy as np


def _leaves(value, out):
    if isinstance(value, dict):
        for k in sorted(value):
            _leaves(value[k], out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _leaves(v, out)
    else:
        out.append(value)


def _rebuild(template, pieces):
    if isinstance(template, dict):
        return {k: _rebuild(template[k], pieces) for k in sorted(template)}
    if isinstance(template, (list, tuple)):
        items = [_rebuild(v, pieces) for v in template]
        return type(template)(items) if isinstance(template, tuple) else items
    return next(pieces)


def flatten(value):
    """The leaves of ``value`` raveled and concatenated (dicts in key order), and the function that undoes it."""
    leaves = []
    _leaves(value, leaves)
    shapes = [np.shape(x) for x in leaves]
    sizes = [int(np.prod(s)) for s in shapes]
    vec = np.concatenate([np.ravel(x) for x in leaves]) if leaves else np.zeros(0)

    def unflatten(v):
        pieces, start = [], 0
        for shape, size in zip(shapes, sizes):
            pieces.append(np.reshape(v[start:start + size], shape))
            start += size
        return _rebuild(value, iter(pieces))
    return vec, unflatten
