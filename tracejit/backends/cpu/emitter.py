"""One step function of a Plan as LLVM IR: the step's buffers and lengths as arguments, loops, and element
loads and stores through an Access.

A step's body is ``void body(i64 start, i64 stop, <lengths>, <buffers>)``: each length and each buffer it reads
is an argument of its own (noalias pointers), in order of first use; ``[start, stop)`` is the range of the first
outer loop that this call runs (``stop < 0``: all of it), so the runtime can split a step across threads. The
program calls the bodies from ``tj_steps`` (entry.py); a StepCall says which lengths and buffers each call
passes. Identical steps of a program share one body: steps with equal structural keys (step_key.py) before any
IR is built, and the rest when their IR text is equal (StepEmitter._share_or_own).
"""
from __future__ import annotations

import contextlib
import gc
import re

import llvmlite.ir as ir

from ...lower.plan import Access
from .entry import StepCall
from .scalar import I64, PTR, from_memory, memtype, to_memory

VOID = ir.VoidType()
FLAT = "flat"  # axis map of an access inside a kernel whose domain was collapsed to one loop

_ARG_NAME = re.compile(r'%"([^"]*)"')


class StepEmitter:
    """Emits one step function."""

    def __init__(self, module, math, plan, symbols, name, roots=None, shared=None):
        self.m = module
        self.math = math
        self.plan = plan
        self.symbols = symbols  # symbol name -> index in dims
        # Buffers that a step uses are its own noalias arguments (buffers of one step never overlap), so loops
        # vectorize without run-time alias checks. Lengths are arguments too, so that the body does not depend on
        # where a length sits in the program's table: identical steps print identical IR (see _share_or_own).
        # Arguments are made as the body first reads them (finish() gives the function its final type), so a
        # step costs nothing per buffer or length of the program it does not touch. External linkage: the
        # runtime calls a body by its address when it splits the step across threads.
        self.fn = ir.Function(module, ir.FunctionType(VOID, [I64, I64]), name + "_impl")
        # never inlined into tj_steps: several steps may share it, and LLVM optimizes it once either way
        self.fn.attributes.add("noinline")
        self.start, self.stop = self.fn.args
        # buffers that share memory (reuse, in-place takeover) are all addressed through one argument, so that
        # noalias stays true and LLVM sees one base pointer
        self._roots = roots or {}
        self._used = {}  # slot -> its argument, for the slots the body addresses, in first-use order
        self._used_dims = {}  # index in ``dims`` -> its argument, for each length the body reads, in first-use order
        self._shared = shared  # normalized impl text -> impl function, shared by identical steps (or None)
        self.impl = self.fn  # the body this step calls (another step's when this one is a duplicate)
        self.impl_text = None  # the impl's IR text when this step owns it (module text is built from these)
        self.light = False  # optimized lightly at tier 1 (step_key.is_light): the owner of a step sets it
        # Streamed stores (streaming.py) pay off only in the optimized tier's code, and they double the body the
        # quick tier would compile: with ``defer_streaming`` a body that would stream is built without them and
        # marked ``streams_later`` (the optimized tier builds its streamed variant: executable.py)
        self.defer_streaming = False
        self.streams_later = False
        self.entry = self.fn.append_basic_block("entry")
        self.b = ir.IRBuilder(self.entry)
        self._dimcache = {}
        self._bufcache = {}
        self.body_block = self.fn.append_basic_block("body")

    # entry-block helpers ----------------------------------------------------------------------------
    def in_entry(self, f):
        saved = self.b.block
        self.b.position_at_end(self.entry)
        v = f()
        self.b.position_at_end(saved)
        return v

    def dim(self, d) -> ir.Value:
        if isinstance(d, int):
            return ir.Constant(I64, d)
        key = d
        hit = self._dimcache.get(key)
        if hit is not None:
            return hit

        def emit():
            total = None
            for mono, c in d.terms:
                v = ir.Constant(I64, c)
                for a in mono:
                    if isinstance(a, str):
                        k = self.symbols[a]
                        av = self._used_dims.get(k)
                        if av is None:
                            av = self._used_dims[k] = ir.Argument(self.fn, I64, f"d{k}")
                    else:
                        op, x, y = a
                        xv, yv = self.dim(x), self.dim(y)
                        if op == "fdiv":
                            safe = self.b.select(self.b.icmp_signed("==", yv, ir.Constant(I64, 0)),
                                                 ir.Constant(I64, 1), yv)
                            q = self.b.sdiv(xv, safe)
                            r = self.b.srem(xv, safe)
                            adj = self.b.and_(self.b.icmp_signed("!=", r, ir.Constant(I64, 0)),
                                              self.b.icmp_signed("<", self.b.xor(xv, safe), ir.Constant(I64, 0)))
                            av = self.b.sub(q, self.b.zext(adj, I64))
                        elif op == "max":
                            av = self.b.select(self.b.icmp_signed(">", xv, yv), xv, yv)
                        else:
                            av = self.b.select(self.b.icmp_signed("<", xv, yv), xv, yv)
                    v = self.b.mul(v, av) if not (isinstance(v, ir.Constant) and v.constant == 1) else av
                total = v if total is None else self.b.add(total, v)
            return total if total is not None else ir.Constant(I64, 0)
        v = self.in_entry(emit)
        self._dimcache[key] = v
        return v

    def buf(self, bid) -> ir.Value:
        slot = self._roots.get(bid, bid)
        arg = self._used.get(slot)
        if arg is None:
            arg = self._used[slot] = ir.Argument(self.fn, PTR, f"s{slot}")
            arg.add_attribute("noalias")
        return arg

    def finish(self):
        self.b.position_at_end(self.entry)
        self.b.branch(self.body_block)
        self._set_args()
        self._share_or_own()

    def take_arguments_of(self, call: StepCall):
        """Make the body's arguments now, in the order of ``call`` (another build of this step), so that both
        builds take their lengths and buffers in one order (first use would order them by where the body reads
        them first)."""
        for k in call.dims:
            self._used_dims[k] = ir.Argument(self.fn, I64, f"d{k}")
        for slot in call.slots:
            arg = self._used[slot] = ir.Argument(self.fn, PTR, f"s{slot}")
            arg.add_attribute("noalias")

    def call(self) -> StepCall:
        """How the program calls this step (after finish())."""
        return StepCall(self.impl.name, tuple(self._used_dims), tuple(self._used))

    def reuse_for(self, own, other):
        """The StepCall of a step whose StepStructure ``other`` equals this step's (``own``): this step's body
        with the other's own lengths and buffers, matched by their numbers in the key (None: one the body reads
        is not numbered there; the step is then emitted by itself)."""
        slot_num = {s: n for n, s in enumerate(own.slots)}
        index_num = {self.symbols[s]: n for n, s in enumerate(own.symbols) if s in self.symbols}
        try:
            slots = tuple(other.slots[slot_num[s]] for s in self._used)
            dims = tuple(self.symbols[other.symbols[index_num[k]]] for k in self._used_dims)
        except (KeyError, IndexError):
            return None
        return StepCall(self.impl.name, dims, slots)

    def _set_args(self):
        """Give the impl its arguments: the lengths, then the buffers, its body read."""
        lens, used = list(self._used_dims.values()), list(self._used.values())
        fn = self.fn
        fn.ftype = ir.FunctionType(VOID, [I64, I64] + [I64] * len(lens) + [PTR] * len(used))
        fn.type = fn.ftype.as_pointer()
        fn.args = tuple(fn.args[:2]) + tuple(lens) + tuple(used)

    def _share_or_own(self):
        """With a table of shared impls: reuse an identical impl emitted for an earlier step (same IR once the
        function's name and buffer arguments are renamed in order), and drop this one from the module."""
        text = str(self.fn)
        self.impl_text = text
        if self._shared is None:
            return
        order = {a.name: f"#a{k}" for k, a in enumerate(self.fn.args)}  # '#': in no name the builder makes
        key = _ARG_NAME.sub(lambda m: '%"' + order.get(m.group(1), m.group(1)) + '"',
                            text.replace(f'@"{self.fn.name}"', "@_", 1))
        first = self._shared.setdefault(key, self.fn)
        if first is not self.fn:
            del self.m.globals[self.fn.name]
            self.impl, self.impl_text = first, None

    # loops ------------------------------------------------------------------------------------------
    def loop(self, lo, hi, body, name="i"):
        b = self.b
        pre = b.block
        header = self.fn.append_basic_block(f"{name}.head")
        blk = self.fn.append_basic_block(f"{name}.body")
        end = self.fn.append_basic_block(f"{name}.end")
        b.branch(header)
        b.position_at_end(header)
        i = b.phi(I64, name=name)
        i.add_incoming(lo, pre)
        b.cbranch(b.icmp_signed("<", i, hi), blk, end)
        b.position_at_end(blk)
        body(i)
        nxt = b.add(i, ir.Constant(I64, 1), flags=("nsw",))
        i.add_incoming(nxt, b.block)
        b.branch(header)
        b.position_at_end(end)

    def checked_index(self, iv, n, flag_ptr):
        """numpy's index semantics: negative counts from the end; out of bounds sets the error flag (the
        runtime raises IndexError) and reads element 0 instead, never outside the buffer."""
        b = self.b
        zero = ir.Constant(I64, 0)
        iv = b.select(b.icmp_signed("<", iv, zero), b.add(iv, n), iv)
        bad = b.or_(b.icmp_signed("<", iv, zero), b.icmp_signed(">=", iv, n))
        with b.if_then(bad, likely=False):
            b.store(ir.Constant(I64, 1), flag_ptr)
        return b.select(bad, zero, iv)

    # memory -----------------------------------------------------------------------------------------
    def address(self, acc: Access, idx: dict, axes) -> ir.Value:
        """Pointer to element of ``acc`` at domain indices ``idx``; ``axes[j]`` is the domain axis of dim j."""
        off = self.dim(acc.offset) if not (isinstance(acc.offset, int) and acc.offset == 0) else None
        if axes is FLAT:  # a C-contiguous access over a collapsed domain: element i is at offset + i
            if any(d != 1 and not (isinstance(s, int) and s == 0) for d, s in zip(acc.shape, acc.strides)):
                off = idx[0] if off is None else self.b.add(off, idx[0])
            axes = ()
        for j, (d, s) in enumerate(zip(acc.shape, acc.strides)):
            if j >= len(axes):
                break
            if d == 1 or (isinstance(s, int) and s == 0):
                continue
            a = axes[j]
            if a is None:
                continue
            term = idx[a] if (isinstance(s, int) and s == 1) else self.b.mul(idx[a], self.dim(s))
            off = term if off is None else self.b.add(off, term)
        if off is None:
            off = ir.Constant(I64, 0)
        dt = self.plan.buffers[acc.buf].dtype
        return self.b.gep(self.buf(acc.buf), [off], source_etype=memtype(dt), inbounds=True)

    def load(self, acc: Access, idx, axes):
        dt = self.plan.buffers[acc.buf].dtype
        return from_memory(self.b, dt, self.b.load(self.address(acc, idx, axes), typ=memtype(dt)))

    def store(self, acc: Access, idx, axes, v):
        dt = self.plan.buffers[acc.buf].dtype
        self.b.store(to_memory(self.b, dt, v), self.address(acc, idx, axes))


@contextlib.contextmanager
def gc_paused():
    """Python's cyclic collector off while a program's IR is built: llvmlite's objects are reference cycles, and
    each full collection walks every object alive, so at 10^4 steps collections made the build superlinear
    (12,000 steps: 12.0 s of CPU with them, 6.2 s without). Back on afterwards, unless it was off already."""
    was_on = gc.isenabled()
    if was_on:
        gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
