"""Arguments updated in place.

A function that writes into its argument (``u[1:-1, 1:-1] += ...``, ``out[i] = v``, ``np.add(a, b, out=c)``)
returns the argument's final value as an extra output (trace/trace.py); numpy's meaning is that the caller's
array holds that value after the call. Here the output buffer is given the argument's own memory when the steps
allow it, so no output is allocated and nothing is copied back:

- every step that reads the argument's old values runs before the first step that writes its memory, except
  that this first step may be a kernel that reads each element in the same iteration in which it writes it
  (``u *= 2``);
- a copy of an element onto itself (the unchanged part of a partly written argument) is dropped;
- a piece copied into the argument (a concatenation's part, a value computed into a temporary) is computed into
  its place directly when that keeps the rule above.

Arguments that share memory with another argument at run time (``f(a, a)``, overlapping views) cannot be updated
in place; the backend checks that at each call and then runs on a private copy of the argument instead.
"""
from __future__ import annotations

from .dims import DimCanon
from .memory import MemoryPlan, _accesses, _kernel_buffer_uses
from .plan import Access, BufferKind, CopyStep, Kernel, Level, Plan, contiguous_strides


def write_into_arguments(plan: Plan, memory: MemoryPlan, updates: dict) -> dict:
    """Place each updated argument's final value (``updates``: graph output index -> graph input index) in the
    argument's memory where that is safe; rewrites ``plan.steps`` and ``memory.slot_of`` and returns
    {input index: output buffer id} for the arguments so placed (also kept as ``memory.in_arguments``)."""
    if plan.flag is not None:  # an index error is raised after the run: the arguments must still be untouched
        memory.in_arguments = {}
        return {}
    canon = _CachedCanon(plan.graph.constraints)
    inputs = {b.input_index: b.id for b in plan.buffers if b.kind is BufferKind.INPUT}
    placed, used_outputs = {}, set()
    for k, j in sorted(updates.items()):
        out, arg = plan.outputs[k], inputs.get(j)
        if arg is None or out in used_outputs or not _fits(plan, memory, canon, out, arg):
            continue
        saved = (list(plan.steps), dict(memory.slot_of))
        for b in [b.id for b in plan.buffers if memory.slot_of.get(b.id, b.id) == out]:
            memory.slot_of[b] = arg  # the output and the temporaries living in its memory
        _drop_copies_onto_themselves(plan, memory, canon)
        if not _old_values_read_in_time(plan, memory, canon, arg):
            plan.steps[:], memory.slot_of = saved
            continue
        _compute_pieces_in_place(plan, memory, canon, arg)
        placed[j] = out
        used_outputs.add(out)
    memory.in_arguments = placed
    return placed


class _CachedCanon(DimCanon):
    """DimCanon remembering each length it canonicalized: the rewrites here compare the same few accesses many
    times, and a slice's ``max(0, min(1, n))`` lengths are slow to canonicalize."""

    def __init__(self, constraints):
        self._seen = {}
        super().__init__(constraints)
        self._seen = {}  # (filled while the aliases were found: forget, they changed as they were found)

    def dim(self, d):
        try:
            return self._seen[d]
        except KeyError:
            out = self._seen[d] = super().dim(d)
            return out
        except TypeError:  # an unhashable length: not remembered
            return super().dim(d)

    def shape(self, shape):
        return tuple(self.dim(d) for d in shape)


def _fits(plan, memory, canon, out, arg) -> bool:
    ob, ab = plan.buffers[out], plan.buffers[arg]
    return (ob.kind is BufferKind.OUTPUT and memory.slot_of.get(out, out) == out and ob.dtype == ab.dtype
            and canon.shape(ob.shape) == canon.shape(ab.shape))


def _root(memory, b):
    return memory.slot_of.get(b, b)


def _same(a: Access, b: Access, memory, canon) -> bool:
    return (_root(memory, a.buf) == _root(memory, b.buf) and canon.shape(a.shape) == canon.shape(b.shape)
            and canon.shape(a.strides) == canon.shape(b.strides) and canon.dim(a.offset) == canon.dim(b.offset))


def _drop_copies_onto_themselves(plan, memory, canon):
    plan.steps[:] = [s for s in plan.steps if not (isinstance(s, CopyStep) and _same(s.src, s.dst, memory, canon))]


def _writes(plan, memory, step, arg) -> bool:
    """Whether ``step`` writes the memory of argument buffer ``arg``."""
    return any(_root(memory, b) == arg for b in _accesses(step)[1])


def _reads_old(plan, step, arg) -> bool:
    """Whether ``step`` reads the argument's own buffer (its values before the call)."""
    if isinstance(step, Kernel):
        return arg in _kernel_buffer_uses(plan, step)[0]
    return arg in _accesses(step)[0]


def _old_values_read_in_time(plan, memory, canon, arg) -> bool:
    """The rule of the module's docstring for argument buffer ``arg`` over the current steps."""
    first = next((i for i, s in enumerate(plan.steps) if _writes(plan, memory, s, arg)), None)
    if first is None:
        return True
    if any(_reads_old(plan, s, arg) for s in plan.steps[first + 1:]):
        return False
    step = plan.steps[first]
    if not _reads_old(plan, step, arg):
        return True
    return isinstance(step, Kernel) and _reads_before_writing_each_element(plan, memory, canon, step, arg)


def _reads_before_writing_each_element(plan, memory, canon, k: Kernel, arg) -> bool:
    """Kernel ``k`` stores one value into the argument's memory, at each element once, and reads the argument only
    at the element being written: earlier in the same iteration, or in an earlier phase (a reduction over the
    row before the row is written; each outer iteration touches only its own elements)."""
    stores = [(v, acc) for v, acc in k.stores if _root(memory, acc.buf) == arg]
    accumulators = set(k.column_accs.values()) | set(k.partials.values())
    if len(stores) != 1 or any(_root(memory, b) == arg for b in accumulators):
        return False
    producer = next((o for o in k.ops if o.eqn.out.id == stores[0][0].id), None)
    if producer is None or producer.level is not Level.INNER or not all(
            a in producer.axes or (isinstance(n, int) and n == 1) for a, n in enumerate(k.domain)):
        return False  # a value stored at a tail, or again at each step of a loop it does not span
    reads, writes = _kernel_buffer_uses(plan, k)
    (wphase, _, wacc, worder), = [w for b, ws in writes.items() if _root(memory, b) == arg for w in ws]
    for phase, level, acc, order in reads[arg]:
        if level is not Level.INNER or not _same(acc, wacc, memory, canon):
            return False
        if not (phase == wphase and order <= worder or phase < wphase and not k.column and not k.chunks):
            return False
    return True


def inputs_read(plan: Plan) -> set:
    """Input indices of the arguments some step reads (an array passed twice is read through one of them)."""
    read = set()
    for s in plan.steps:
        read |= set(_kernel_buffer_uses(plan, s)[0]) if isinstance(s, Kernel) else _accesses(s)[0]
    return {b.input_index for b in plan.buffers if b.kind is BufferKind.INPUT and b.id in read}


# ------------------------------------------------------------------------------------------------ pieces
def _compute_pieces_in_place(plan, memory, canon, arg):
    """Copies of a temporary into the argument's memory (``dst`` a region of it) become the temporary's writers
    storing into that region, one at a time, kept only while the rule still holds."""
    tried = set()
    while True:
        step = next((s for s in plan.steps if isinstance(s, CopyStep) and id(s) not in tried
                     and _root(memory, s.dst.buf) == arg and _forwardable(plan, memory, canon, s)), None)
        if step is None:
            return
        tried.add(id(step))
        saved, t = _snapshot(plan), step.src.buf
        try:
            _retarget(plan, t, step.dst, canon)
        except _CannotMove:
            _restore(plan, saved)
            continue
        _drop_copies_onto_themselves(plan, memory, canon)
        if not _old_values_read_in_time(plan, memory, canon, arg):
            _restore(plan, saved)
        elif not any(r == t for b, r in memory.slot_of.items() if b != t):
            memory.slot_of[t] = arg  # nothing uses t's memory any more: the driver allocates none



def _forwardable(plan, memory, canon, copy: CopyStep) -> bool:
    """``copy`` reads the whole of a temporary that only it reads and only kernels' stores and copies write."""
    t = copy.src.buf
    tb = plan.buffers[t]
    if tb.kind is not BufferKind.TEMP or not _is_whole(copy.src, tb, canon):
        return False
    if canon.shape(copy.dst.shape) != canon.shape(tb.shape):
        return False
    for s in plan.steps:
        reads, writes = _accesses(s)
        if isinstance(s, Kernel):
            reads = set(_kernel_buffer_uses(plan, s)[0])
            if t in set(s.column_accs.values()) | set(s.partials.values()):
                return False
        if t in reads and s is not copy:
            return False
        if t in writes and not isinstance(s, (Kernel, CopyStep)):
            return False
    return True


def _is_whole(acc: Access, buf, canon) -> bool:
    return (canon.shape(acc.shape) == canon.shape(buf.shape) and canon.dim(acc.offset) == 0
            and canon.shape(acc.strides) == canon.shape(contiguous_strides(buf.shape)))


def _moved(acc: Access, t_buf, region: Access, canon) -> Access | None:
    """``acc`` (an access of the temporary) as an access of ``region`` (where the temporary's values go)."""
    if _is_whole(acc, t_buf, canon):
        return Access(region.buf, acc.shape, region.strides, region.offset)
    if canon.shape(region.strides) == canon.shape(contiguous_strides(t_buf.shape)):
        return Access(region.buf, acc.shape, acc.strides, region.offset + acc.offset)
    return None


def _retarget(plan, t, region, canon):
    """Every write of temporary ``t`` goes to ``region`` instead (its one reader, the copy, becomes a copy of
    the region onto itself)."""
    tb = plan.buffers[t]

    def move(acc):
        if acc.buf != t:
            return acc
        new = _moved(acc, tb, region, canon)
        if new is None:
            raise _CannotMove
        return new
    for i, s in enumerate(plan.steps):
        if isinstance(s, Kernel):
            s.stores = [(v, move(a)) for v, a in s.stores]
        elif isinstance(s, CopyStep):
            plan.steps[i] = CopyStep(move(s.src), move(s.dst))
    for src in plan.sources.values():  # where later readers would look (none read t but the copy)
        acc = getattr(src, "access", None)
        if acc is not None and acc.buf == t:
            src.access = _moved(acc, tb, region, canon) or acc


class _CannotMove(Exception):
    pass


def _snapshot(plan):
    kernels = [(s, list(s.stores)) for s in plan.steps if isinstance(s, Kernel)]
    sources = {vid: src.access for vid, src in plan.sources.items() if getattr(src, "access", None) is not None}
    return list(plan.steps), kernels, sources


def _restore(plan, saved):
    steps, kernels, sources = saved
    plan.steps[:] = steps
    for k, stores in kernels:
        k.stores = stores
    for vid, acc in sources.items():
        plan.sources[vid].access = acc
