"""Random draws inside Theano's ``scan``: each step gets its own numbers.

A draw reads its stream's state ``[key, counter]`` (a shared variable). Read as-is inside a loop body it would
give every step the same numbers, so the body's reads of stream states are replaced by ``[key, counter + i]`` at
step ``i`` (the step index is one more sequence, added when the body turns out to draw), and the loop returns
``state + [0, n]`` as each stream's update after ``n`` steps, as Theano's scan returns its random states' updates.
"""
from __future__ import annotations

import numpy as np

from ..ir import ops
from ..ir.graph import toposort
from ..trace.symbolic import roots
from ..trace.tracer import unwrap, wrap
from ..ir.ops import iota as _iota


class RandomFound(Exception):
    """The step function draws random numbers: trace again with the step index as a sequence."""


def step_index(n):
    """The extra sequence ``0, 1, ..., n - 1`` (uint64) scanned beside the others."""
    return wrap(_iota(n)).astype(np.uint64)


def streams_read(values) -> list:
    """The random streams whose state the values read (in first-use order)."""
    from .shared import shared_of
    from .shared_randomstreams import is_stream_state
    found = []
    for v in roots(toposort(values), values):
        sv = shared_of(v)
        if sv is not None and is_stream_state(sv) and not any(sv is s for s in found):
            found.append(sv)
    return found


def per_step(tensors, index, streams_out):
    """``tensors`` (the step's results) with each stream state read as its state at step ``index``; the streams
    are appended to ``streams_out``. Without an index (the first trace) a draw raises RandomFound."""
    values = [ops.as_value(unwrap(t)) for t in tensors]
    streams = streams_read(values)
    if not streams:
        return tensors
    if index is None:
        raise RandomFound()
    from .substitute import replay
    offset = np.array([0, 1], dtype=np.uint64) * index
    vmap = {sv._tj_value.id: ops.as_value(unwrap(wrap(sv._tj_value) + offset)) for sv in streams}
    out, _ = replay(values, vmap, {})
    streams_out.extend(s for s in streams if not any(s is t for t in streams_out))
    return [wrap(v) for v in out]


def final_updates(streams, n) -> list:
    """(state, state + [0, n]) for each stream the loop drew from: its counter after ``n`` steps (a length, an int
    or a traced count)."""
    if isinstance(n, int):
        steps = np.uint64(n)
    else:
        steps = (wrap(ops.dimsize(n)) if not hasattr(n, "astype") else n).astype(np.uint64)
    return [(sv, wrap(sv._tj_value) + np.array([0, 1], dtype=np.uint64) * steps) for sv in streams]
