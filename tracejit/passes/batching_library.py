"""Batching (vmap) rules of the library primitives. LAPACK's and the FFT's primitives already work on stacks (the
leading axes): the batch axis goes in front of every operand and the call is the same. Sorts shift their axis.
``nonzero`` has a length per example (a ragged result), which a batched array cannot hold: a clear error."""
from __future__ import annotations

from ..ir import ops
from ..ir.primitives import LIBRARY_PRIMS
from .batching import RULES, batch_size, materialize, rule


def _stacked(eqn, args, dims):
    size = batch_size(args, dims)
    return ops.bind(eqn.prim, *[materialize(v, d, size) for v, d in zip(args, dims)], **eqn.p), 0


for _name in LIBRARY_PRIMS:
    RULES.setdefault(_name, _stacked)


@rule("sort", "argsort")
def _sort(eqn, args, dims):
    (x,), (d,) = args, dims
    p = dict(eqn.p, axis=eqn.p["axis"] + 1)
    return ops.bind(eqn.prim, materialize(x, d, x.shape[d]), **p), 0


@rule("trip_count")
def _trip_count(eqn, args, dims):
    raise NotImplementedError("vmap of a scan whose symbolic n_steps differs per example is not supported: each "
                              "example would run its own number of steps; give n_steps as an unbatched value")


@rule("python_op")
def _python_op(eqn, args, dims):
    raise NotImplementedError(f"vmap of the user-defined op {eqn.p['op']} is not supported: its perform() runs on "
                              f"whole arrays")


@rule("nonzero")
def _nonzero(eqn, args, dims):
    raise NotImplementedError("vmap of a data-dependent length (x[mask], np.nonzero, np.unique) is not supported: "
                              "each example would have its own length; keep the shape with np.where(mask, x, 0)")
