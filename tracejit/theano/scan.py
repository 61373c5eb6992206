"""Theano's ``scan``: its argument order and conventions, translated onto tracejit's one loop primitive.

Theano describes a loop by roles (``sequences`` sliced per step with ``taps``, ``outputs_info`` fed back with
their own taps, ``non_sequences`` passed through, shared variables updated through a returned dict); tracejit's
``scan(f, init, xs, length, reverse)`` (control_flow.py) takes one carry and one slice per step. The translation:

- a sequence with taps [t0, t1, ...] becomes one slice per tap, cut from the sequence so that step i reads
  element ``i + t - min(taps)``; the trip count is the shortest window count (Theano's rule);
- an output fed back with taps [-k, ..., -1] carries its k last values (oldest first) and shifts them each step;
  its initial value's first k rows are x(-k), ..., x(-1); an output with no taps (``None``) is only stacked;
- a shared variable the step function updates (``{k: k + 1}``) is carried too: inside the body every read of it
  is replaced by the carry, and its final value is returned as that variable's update, as Theano does;
- ``non_sequences`` are passed as the very variables given, so the step function may differentiate with respect to
  them (``T.grad(y[i], x)``: the Jacobian through scan).

A symbolic ``n_steps`` (an ``iscalar``) is a trip count known only at run time. tracejit's loop primitive takes a
length (a Dim), and the stacked outputs have that length on axis 0. The IR already has data-dependent lengths
(``np.nonzero``'s: an unbacked symbol bound at run time by the library call that produces it), so the scalar
becomes one: the ``trip_count`` library primitive turns ``k`` into a bool array of length ``k`` whose length is a
fresh unbacked symbol, and that array is scanned over as one more (ignored) sequence. The loop is the ordinary
``scan`` equation (one body, compiled once; outputs preallocated once the length is bound), shapes downstream
(``result[-1]``, ``result.sum()``) are ordinary symbolic shapes, and ``grad`` needs nothing new.

A step returning ``until(cond)`` makes the loop a ``while_loop`` bounded by the trip count: each step writes its
outputs into row i of buffers of that many rows, and the result is their first rows, as many as the steps that
ran (that count becomes a length the same way a symbolic n_steps does). Like JAX's while loops, it has no reverse
mode.

The stacked outputs are what Theano returns: one row per step, not including the initial values.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..ir import ops
from ..ir import types as T
from ..trace.numpy_more import iota
from ..trace.symbolic import Variable, symbolic_apply
from ..trace.tracer import Tracer, unwrap, wrap
from . import scan_random

THEANO_KEYWORDS = frozenset({"fn", "sequences", "outputs_info", "non_sequences", "n_steps", "truncate_gradient",
                             "go_backwards", "mode", "name", "profile", "allow_gc", "strict", "return_list"})


class _Sequence:
    def __init__(self, value, taps):
        self.value, self.taps = value, taps

    @property
    def span(self) -> int:
        """Elements a step window covers beyond the first: taps [-2, 0] lose 2 steps."""
        return max(self.taps) - min(self.taps)


class _Output:
    def __init__(self, initial, taps=()):
        self.initial, self.taps = initial, list(taps)  # initial None: not fed back

    @property
    def depth(self) -> int:
        return -min(self.taps) if self.taps else 0


def _as_list(x):
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _taps(taps, what):
    taps = [taps] if isinstance(taps, (int, np.integer)) else list(taps)
    for t in taps:
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
            raise TypeError(f"scan: the taps of {what} must be ints, got {t!r}")
    if len(set(taps)) != len(taps):
        raise ValueError(f"scan: the taps of {what} repeat a value: {taps}")
    return [int(t) for t in taps]


def _sequences(sequences):
    out = []
    for k, s in enumerate(_as_list(sequences)):
        what = f"sequences[{k}]"
        if isinstance(s, dict):
            unknown = set(s) - {"input", "taps"}
            if "input" not in s or unknown:
                raise ValueError(f"scan: {what} is a dict, which needs an 'input' entry and optionally 'taps'"
                                 + (f"; unknown keys {sorted(unknown)}" if unknown else ""))
            taps = _taps(s.get("taps", [0]) if s.get("taps") is not None else [0], what)
            if not taps:
                continue  # Theano: a sequence with no taps is not passed to the step function
            s = _Sequence(_tensor(s["input"], what), taps)
        else:
            s = _Sequence(_tensor(s, what), [0])
        if s.value.ndim == 0:
            raise ValueError(f"scan: {what} is a scalar; a sequence needs a leading axis to iterate over")
        out.append(s)
    return out


def _outputs(outputs_info):
    out = []
    for k, o in enumerate(_as_list(outputs_info)):
        what = f"outputs_info[{k}]"
        if o is None:
            out.append(_Output(None))
        elif isinstance(o, dict):
            unknown = set(o) - {"initial", "taps", "return_steps", "inplace"}
            if unknown:
                raise ValueError(f"scan: {what} has unknown keys {sorted(unknown)}; use 'initial' and 'taps'")
            if o.get("initial") is None:
                if o.get("taps"):
                    raise ValueError(f"scan: {what} has taps {o['taps']} but no 'initial' value to start from")
                out.append(_Output(None))
                continue
            taps = _taps(o.get("taps", [-1]) if o.get("taps") is not None else [-1], what)
            if any(t >= 0 for t in taps):
                raise ValueError(f"scan: the taps of {what} must be negative (past steps), got taps={taps}")
            init = _tensor(o["initial"], what)
            taps = sorted(taps)
            if taps != [-1] and init.ndim == 0:
                raise ValueError(f"scan: {what} has taps {taps}, so its initial value needs a leading axis holding "
                                 f"the {-taps[0]} past steps; got a scalar")
            out.append(_Output(init, taps))
        else:
            out.append(_Output(_tensor(o, what), [-1]))
    return out


def _tensor(x, what):
    if isinstance(x, Tracer):
        return x
    try:
        a = np.asarray(x)
    except Exception:
        a = None
    if a is None or a.dtype == object:
        raise TypeError(f"scan: {what} must be a symbolic variable or an array, got {type(x).__name__}")
    return wrap(ops.constant(a))


def _n_steps(n_steps):
    """None, an int, or a traced int scalar."""
    if n_steps is None:
        return None
    if isinstance(n_steps, (bool, np.bool_)):
        raise TypeError("scan: n_steps must be an integer (a Python int or an integer scalar variable), got a bool")
    if isinstance(n_steps, (int, np.integer)):
        if n_steps < 0:
            raise ValueError(f"scan: n_steps must be >= 0, got {n_steps}")
        return int(n_steps)
    if isinstance(n_steps, T.Dim):
        return n_steps
    if isinstance(n_steps, Tracer):
        v = n_steps._tj_value
        if v.ndim != 0 or v.dtype.kind not in "iu":
            raise TypeError(f"scan: n_steps must be an integer scalar, got {v.dtype}{T.shape_str(v.shape)}")
        if v.is_const:
            return _n_steps(int(v.const))
        return n_steps
    a = np.asarray(n_steps)
    if a.ndim == 0 and a.dtype.kind in "iu":
        return _n_steps(int(a))
    raise TypeError(f"scan: n_steps must be an integer scalar, got {type(n_steps).__name__}")


class until:
    """Theano's ``scan_module.until(condition)``: returned by the step function beside its outputs, it ends the
    loop after the first step whose condition is true (that step's outputs included); n_steps (or the sequences)
    bound the number of steps, and the outputs hold the steps that ran."""

    def __init__(self, condition):
        self.condition = condition


def _take_until(res):
    """(the step's result without its ``until``, the until's condition or None)."""
    if isinstance(res, until):
        return None, res.condition
    if isinstance(res, (list, tuple)) and any(isinstance(r, until) for r in res):
        conds = [r.condition for r in res if isinstance(r, until)]
        if len(conds) > 1:
            raise ValueError("scan: the step function returned more than one until(...) condition")
        rest = [r for r in res if not isinstance(r, until)]
        return (rest[0] if len(rest) == 1 else tuple(rest)), conds[0]
    return res, None


def _split_result(res):
    """Theano's step function returns outputs, an updates dict, or both (in either order)."""
    if isinstance(res, dict):
        return [], OrderedDict(res)
    if isinstance(res, (list, tuple)):
        items = list(res)
        dicts = [r for r in items if isinstance(r, dict)]
        if dicts:
            outs = [r for r in items if not isinstance(r, dict)]
            if len(outs) == 1 and isinstance(outs[0], (list, tuple)):
                outs = list(outs[0])
            return outs, OrderedDict(dicts[0])
        return items, OrderedDict()
    if res is None:
        return [], OrderedDict()
    return [res], OrderedDict()


class _UpdatesFound(Exception):
    """The step function updates shared variables the carry does not hold yet: trace again with them carried."""

    def __init__(self, shared):
        self.shared = shared


class _UntilFound(Exception):
    """The step function returned ``until(...)``: trace again as a while loop."""


def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None, truncate_gradient=-1,
         go_backwards=False, mode=None, name=None, profile=False, allow_gc=None, strict=False, return_list=False):
    """Theano's scan: ``(outputs, updates)``.

    ``fn(*sequence slices, *past outputs, *non_sequences)`` returns the step's outputs, an updates dict
    (``{shared: new value}``), or both. ``outputs`` is one stacked variable per output (a list when there are
    several, or with ``return_list``; None when the step returns only updates); ``updates`` maps each shared
    variable updated in the loop to its final value (pass it to ``function(..., updates=updates)``).
    """
    if not callable(fn):
        raise TypeError(f"scan: fn must be callable, got {type(fn).__name__}")
    truncate = _truncate_gradient(truncate_gradient)
    result = symbolic_apply(lambda: _scan(fn, sequences, outputs_info, non_sequences, n_steps, go_backwards,
                                          truncate))
    outputs, updates = result
    outputs = [_variable(o) for o in outputs]
    updates = OrderedDict((sv, _variable(v)) for sv, v in updates)
    if not outputs:
        return ([] if return_list else None), updates
    if len(outputs) == 1 and not return_list:
        return outputs[0], updates
    return outputs, updates


def _variable(x):
    if isinstance(x, Variable) or getattr(ops._state, "stack", None):
        return x  # under a jit trace: plain tracers, as symbolic_apply returns
    return Variable(x._tj_value) if isinstance(x, Tracer) else x


def _truncate_gradient(k):
    """Theano's ``truncate_gradient``: -1 (backprop through every step) or a positive step count."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"scan: truncate_gradient must be an int (-1 for full backpropagation, or the number of "
                        f"last steps to backpropagate through), got {type(k).__name__}")
    if k != -1 and k < 1:
        raise ValueError(f"scan: truncate_gradient must be -1 (no truncation) or a positive number of steps, got {k}")
    return None if k == -1 else int(k)


def _scan(fn, sequences, outputs_info, non_sequences, n_steps, go_backwards, truncate=None):
    from .. import control_flow as cf
    seqs = _sequences(sequences)
    outs = _outputs(outputs_info)
    nonseqs = _as_list(non_sequences)
    n = _n_steps(n_steps)
    if n is None and not seqs:
        raise ValueError("scan: there are no sequences and no n_steps, so nothing says how many steps to run; give "
                         "n_steps (the number of steps) or sequences to iterate over")
    count = None  # an array whose length is a run-time n_steps
    if isinstance(n, Tracer):
        k = ops.as_value(unwrap(n))
        count = ops.bind("trip_count", k, length=T.unbacked_dim())
        n = count.shape[0]
    # the trip count: n_steps when given, else the windows every sequence can fill
    seq_counts = [s.value.shape[0] - s.span for s in seqs]
    if n is None:
        n = seq_counts[0]
        for m in seq_counts[1:]:
            n = T.dim_min(n, m) if isinstance(n, T.Dim) or isinstance(m, T.Dim) else min(n, m)
        if isinstance(n, int):
            n = max(n, 0)
    xs = []
    for s, m in zip(seqs, seq_counts):
        v = s.value[::-1] if go_backwards else s.value
        lo = min(s.taps)
        for t in s.taps:
            start = t - lo
            if isinstance(n, int) and isinstance(m, int) and m < n:
                raise ValueError(f"scan: n_steps={n} but a sequence of length {s.value.shape[0]} with taps "
                                 f"{s.taps} has only {m} steps")
            xs.append(_window(v, start, n, count))
    if count is not None:
        xs.append(wrap(count))
    shared_carried: list = []
    run = _run
    draws = None  # the random streams the step draws from, once it turned out to draw
    while True:
        try:
            extra = {"truncate": truncate} if run is _run else {}
            ys, updates, steps = run(cf, fn, outs, nonseqs, xs, n, shared_carried, count is not None, draws, **extra)
            return ys, updates + scan_random.final_updates(draws or [], steps)
        except _UpdatesFound as found:
            shared_carried = found.shared
        except _UntilFound:
            run = _run_until
        except scan_random.RandomFound:  # the step draws: each step reads its streams at its own counter
            xs.append(scan_random.step_index(n))
            draws = []


def _window(v, start, n, count):
    """``v[start:start + n]``; with a run-time n, the window's length is the trip count's symbol."""
    if isinstance(n, T.Dim) and count is not None:
        return wrap(_cut_dynamic(ops.as_value(unwrap(v)), start, count))
    x = ops.as_value(unwrap(v))
    if start == 0 and (n == x.shape[0]) is True:  # the whole sequence (equal ints, or the same symbol)
        return v
    # the slice primitive, not numpy's slicing: a symbolic bound (len(x) - 1) has no sign question here
    return wrap(ops.bind("slice", x, starts=(start,) + (0,) * (x.ndim - 1), steps=(1,) * x.ndim,
                         shape=(n,) + tuple(x.shape[1:])))


def _cut_dynamic(v, start, count):
    """Rows ``start .. start + len(count)`` of ``v``: a gather by ``arange(len(count)) + start``, the window's
    length being the trip count's run-time symbol (the equations that mention it hold the call binding it:
    ops.bind records ``length_deps``, so neither dead code elimination nor the garbage collector loses it)."""
    idx = iota(count.shape[0])
    if start:
        idx = ops.ufunc("add", idx, ops.constant(start, np.int64, weak=True))
    return unwrap(wrap(v)[wrap(idx)])


def _initial_carry(outs, shared_carried):
    """The loop's carry: each fed-back output's last value(s), then the carried shared variables."""
    init = []
    for o in outs:
        if o.initial is None:
            continue
        if o.taps == [-1]:
            init.append(o.initial)
        else:  # the first `depth` rows of the initial value: x(-depth), ..., x(-1)
            init.append(tuple(o.initial[j] for j in range(o.depth)))
    return init + [wrap(sv._tj_value) for sv in shared_carried]


def _step_function(fn, outs, nonseqs, n_seq_args, shared_carried, draws=None):
    """``step(carry, x) -> (new carry, the step's outputs, until condition or None)``: one call of Theano's step
    function with its arguments laid out as Theano passes them. ``draws``: None, or a list that collects the
    random streams the step draws from (then the step index is the last of ``x``)."""
    nfed = sum(1 for o in outs if o.initial is not None)

    def step(carry, x):
        args = list(x[:n_seq_args])
        k = 0
        for o in outs:
            if o.initial is None:
                continue
            c = carry[k]
            k += 1
            args += [c] if o.taps == [-1] else [c[o.depth + t] for t in o.taps]
        args += nonseqs
        res, stop = _take_until(fn(*args))
        new_outs, updates = _split_result(res)
        for sv in updates:
            if not _is_shared(sv):
                raise TypeError(f"scan: the step function's updates must be keyed by shared variables, got "
                                f"{type(sv).__name__} {sv!r}")
        unknown = [sv for sv in updates if not any(sv is s for s in shared_carried)]
        if unknown:
            raise _UpdatesFound(list(shared_carried) + unknown)
        if outs and len(new_outs) != len(outs):
            raise ValueError(f"scan: the step function returned {len(new_outs)} output(s) but outputs_info "
                             f"describes {len(outs)}; give one outputs_info entry per output (None for an output "
                             f"that is not fed back)")
        new_outs = [_tensor(y, f"output {i} of the step function") for i, y in enumerate(new_outs)]
        ups = [_tensor(updates[sv], f"the update of {sv}") for sv in shared_carried]
        if shared_carried:  # reads of a carried shared variable inside the body read the carry
            from .substitute import replay
            vmap = {sv._tj_value.id: ops.as_value(unwrap(c)) for sv, c in zip(shared_carried, carry[nfed:])}
            extra = [] if stop is None else [_tensor(stop, "the until condition")]
            vals, _ = replay([ops.as_value(unwrap(y)) for y in new_outs + ups + extra], vmap, {})
            vals = [wrap(v) for v in vals]
            new_outs, ups = vals[:len(new_outs)], vals[len(new_outs):len(new_outs) + len(ups)]
            stop = vals[-1] if extra else None
        k_out, k_up = len(new_outs), len(ups)
        vals = scan_random.per_step(list(new_outs) + list(ups) + ([] if stop is None else [stop]),
                                    None if draws is None else x[-1], draws)
        new_outs, ups = list(vals[:k_out]), list(vals[k_out:k_out + k_up])
        stop = vals[-1] if stop is not None else None
        new_carry = []
        j = 0
        for i, (o, y) in enumerate(zip(outs, new_outs)):
            if o.initial is None:
                continue
            y = _like(y, o.initial if o.taps == [-1] else carry[j][0])
            new_carry.append(y if o.taps == [-1] else tuple(carry[j][1:]) + (y,))
            new_outs[i] = y
            j += 1
        new_carry += [_like(u, sv) for u, sv in zip(ups, shared_carried)]
        return tuple(new_carry), tuple(new_outs), stop
    return step


def _run(cf, fn, outs, nonseqs, xs, n, shared_carried, counted, draws=None, truncate=None):
    nfed = sum(1 for o in outs if o.initial is not None)
    n_seq_args = len(xs) - (1 if counted else 0) - (0 if draws is None else 1)
    step = _step_function(fn, outs, nonseqs, n_seq_args, shared_carried, draws)
    if truncate is not None:  # the step's index rides along as one more (last) sequence
        xs = list(xs) + [wrap(iota(n))]
        first_kept = n.traced() - truncate if isinstance(n, T.Dim) else n - truncate

    def body(carry, x):
        if truncate is not None:
            x, i = x[:-1], x[-1]
        new_carry, new_outs, stop = step(carry, x)
        if stop is not None:
            raise _UntilFound()
        if truncate is not None:
            new_carry, new_outs = _truncated(new_carry, i >= first_kept), _truncated(new_outs, i >= first_kept)
        return new_carry, new_outs

    length = None if xs else n
    final, ys = cf.scan(body, tuple(_initial_carry(outs, shared_carried)), tuple(xs), length=length)
    updates = [(sv, final[nfed + j]) for j, sv in enumerate(shared_carried)]
    return list(ys), updates, n


def _truncated(values, kept):
    """Theano's truncated backpropagation through time: a step before the last ``truncate_gradient`` ones passes
    no cotangent back into its body (not to its inputs, the carry it read, the sequences' rows or the
    non-sequences); the values themselves are unchanged. So the initial state gets a gradient only when the
    truncation reaches the first step, as in Theano."""
    out, kept = [], ops.as_value(unwrap(kept))
    for v in values:
        if isinstance(v, tuple):
            out.append(tuple(_truncated(v, kept)))
        elif np.dtype(v.dtype).kind in "fc":
            x = ops.as_value(unwrap(v))
            out.append(wrap(ops.ufunc("where", kept, x, ops.ufunc("stop_gradient", x))))
        else:
            out.append(v)  # integers carry no gradient
    return tuple(out)


def _zeros(shape, dtype):
    return wrap(ops.broadcast_to(ops.constant(np.zeros((), dtype)), tuple(shape)))


def _scalar_bool(cond):
    """The until condition as the loop's boolean scalar."""
    if isinstance(cond, Tracer):
        if cond.ndim != 0:
            raise ValueError(f"scan: until(...) takes a scalar condition, got one of shape {cond.shape}")
        return cond if cond.dtype == np.bool_ else cond != 0
    return np.bool_(bool(cond))


def _run_until(cf, fn, outs, nonseqs, xs, n, shared_carried, counted, draws=None):
    """A scan whose step returns ``until(cond)``: a while loop over at most ``n`` steps writing each step's
    outputs into rows of buffers of n rows; the result is their first rows, as many as steps ran (a length known
    at run time, bound by the ``trip_count`` primitive as a symbolic n_steps is)."""
    nfed = sum(1 for o in outs if o.initial is not None)
    n_seq_args = len(xs) - (1 if counted else 0) - (0 if draws is None else 1)
    step = _step_function(fn, outs, nonseqs, n_seq_args, shared_carried, draws)
    init = tuple(_initial_carry(outs, shared_carried))
    # the outputs' types, from one step traced on rows of zeros (dead code, dropped by the passes; a row read
    # from a sequence would check its bounds at run time, and a sequence may be empty)
    _, first_outs, _ = step(init, tuple(_zeros(unwrap(x).shape[1:], x.dtype) for x in xs))
    bufs = tuple(_zeros((n,) + tuple(unwrap(y).shape), y.dtype) for y in first_outs)
    limit = n.traced() if isinstance(n, T.Dim) else n

    def cond(c):
        i, stopped = c[0], c[1]
        return (i < limit) & ~stopped

    def body(c):
        i, _, carry, rows = c
        new_carry, new_outs, stop = step(carry, tuple(x[i] for x in xs))
        rows = list(rows)
        for k, y in enumerate(new_outs):
            rows[k][i] = y
        return i + 1, _scalar_bool(stop), new_carry, tuple(rows)

    steps, _, final, rows = cf.while_loop(cond, body, (np.int64(0), np.bool_(False), init, bufs))
    ran = ops.bind("trip_count", ops.as_value(unwrap(steps)), length=T.unbacked_dim())
    ys = [wrap(_cut_dynamic(ops.as_value(unwrap(r)), 0, ran)) for r in rows]
    updates = [(sv, final[nfed + j]) for j, sv in enumerate(shared_carried)]
    return ys, updates, steps


def _is_shared(x) -> bool:
    from .shared import SharedVariable
    return isinstance(x, SharedVariable)


def _like(y, ref):
    """A fed-back output keeps its initial value's dtype: the loop's carry has one type, so a step returning
    float64 for a float32 carry is cast back to float32 (Theano raises a TypeError there and asks for a cast)."""
    dt = ref.dtype
    if y.dtype != dt:
        return y.astype(dt)
    return y


def dispatch(*args, **kwargs):
    """``tracejit.scan``: JAX's ``scan(f, init, xs, length, reverse, unroll)``, or Theano's when a Theano keyword
    (fn=, sequences=, outputs_info=, non_sequences=, n_steps=, go_backwards=, ...) is used."""
    if THEANO_KEYWORDS & set(kwargs) and not {"init", "xs", "length", "reverse", "unroll"} & set(kwargs):
        return scan(*args, **kwargs)
    from ..control_flow import scan as jax_scan
    return jax_scan(*args, **kwargs)


__all__ = ["scan", "until"]
