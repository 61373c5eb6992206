"""CPU code generation: each step of a fusion Plan becomes an LLVM function, optimized for the host: at O3 with
vectorizers for the optimized tier, at O0 with LLVM's fast code generator for the quick first tier.
Identical steps of a program share one function (see _Emitter._share_or_own).

Kernel ABI: ``void k(ptr bufs, ptr dims, i64 start, i64 stop)``: ``bufs`` holds every buffer's data pointer,
``dims`` the run-time value of every shape symbol; ``[start, stop)`` is the range of the first outer loop that
this call runs (``stop < 0``: all of it), so the runtime can split a kernel across threads.

The program entry is a CPython METH_FASTCALL function generated in IR: it reads the data pointers and shapes of
the numpy arrays it is given straight from numpy's public ``PyArrayObject`` layout and runs every step, so a
small call costs about as much as calling a builtin.
"""
from __future__ import annotations

import ctypes
import functools
import os
import re
import threading
import time

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np

from ..ir import types as T
from ..lower import scalar as scalar_table
from ..lower.plan import (Access, CopyStep, DimLength, InBuffer, Kernel, MatmulStep, ScalarConst, ScatterAddStep,
                          contiguous_strides, memory_access)
# the scalar part lives in cpu_scalar.py; these names are re-exported for the rest of the CPU backend
from .cpu_scalar import (_INTRINSICS, _LIBM, BINARY_MATH, F32, F64, I1, I8, I32, I64, PTR, VEC_FUNCTIONS,  # noqa: F401
                         CpuScalarOps as _Ops, _const, _is_f, _Math, _vec, _vec_symbol, lltype, memtype)

VOID = ir.VoidType()
KERNEL_TY = ir.FunctionType(VOID, [PTR, PTR, I64, I64])
FLAT = "flat"  # axis map of an access inside a kernel whose domain was collapsed to one loop

_init_lock = threading.Lock()
_target_machine = None


# llvmlite's global LLVM context is not thread-safe, and the optimized tier compiles on a background thread:
# every use of that context (engines' modules) takes this lock; compiles use contexts of their own
GLOBAL_CONTEXT_LOCK = threading.RLock()


def target_machine(opt=3):
    """A new host TargetMachine (MCJIT takes ownership of the one it is given, so each engine gets its own);
    ``opt`` is the code generator's level (0: fast instruction selection and register allocation)."""
    global _target_machine
    with _init_lock:
        if _target_machine is None:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _register_symbols()
            _target_machine = True
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=opt, codemodel="jitdefault")


def _register_symbols():
    llvm.add_symbol("tj_py_none", id(None))


_blas_done = False


def ensure_blas_symbols():
    """Register the BLAS entry points (importing scipy.linalg costs ~0.3 s, so only programs with a matmul do)."""
    global _blas_done
    if not _blas_done:
        from . import blas
        target_machine()
        for name, addr in blas.symbols().items():
            llvm.add_symbol(name, addr)
        _blas_done = True


# ------------------------------------------------------------------------------------------------ kernels
_ARG_NAME = re.compile(r'%"([^"]*)"')


class _Emitter:
    """Emits one step function."""

    def __init__(self, module, math, plan, symbols, name, roots=None, shared=None):
        self.m = module
        self.math = math
        self.plan = plan
        self.symbols = symbols  # symbol name -> index in dims
        # The body lives in an internal function taking each buffer it uses as its own noalias argument (buffers
        # of one step never overlap), so loops vectorize without run-time alias checks; ``name`` is the ABI
        # wrapper.
        # Lengths are arguments too (the wrapper reads them from ``dims``), so that the body does not depend on
        # where a length sits in the program's table: identical steps print identical IR (see _share_or_own).
        # Arguments are made as the body first reads them (finish() gives the function its final type), so a
        # step costs nothing per buffer or length of the program it does not touch.
        self.fn = ir.Function(module, ir.FunctionType(VOID, [I64, I64]), name + "_impl")
        self.fn.linkage = "internal"
        # never inlined into its wrapper: several wrappers may share it, and LLVM optimizes it once either way
        self.fn.attributes.add("noinline")
        self.start, self.stop = self.fn.args
        # buffers that share memory (reuse, in-place takeover) are all addressed through one argument, so that
        # noalias stays true and LLVM sees one base pointer
        self._roots = roots or {}
        self._used = {}  # slot -> its argument, for the slots the body addresses, in first-use order
        self._used_dims = {}  # index in ``dims`` -> its argument, for each length the body reads, in first-use order
        self._shared = shared  # normalized impl text -> impl function, shared by identical steps (or None)
        self.wrapper = ir.Function(module, KERNEL_TY, name)
        self.impl = self.fn  # the function the wrapper calls (another step's when this one is a duplicate)
        self.impl_text = None  # the impl's IR text when this step owns it (module text is built from these)
        self.entry = self.fn.append_basic_block("entry")
        self.b = ir.IRBuilder(self.entry)
        self._dimcache = {}
        self._bufcache = {}
        self._body = self.fn.append_basic_block("body")

    # entry-block helpers ----------------------------------------------------------------------------
    def _in_entry(self, f):
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
        v = self._in_entry(emit)
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
        self.b.branch(self._body)
        self._set_args()
        self._share_or_own()
        wb = ir.IRBuilder(self.wrapper.append_basic_block("entry"))
        bufs, dims, start, stop = self.wrapper.args
        lens = [wb.load(wb.gep(dims, [ir.Constant(I64, k)], source_etype=I64), typ=I64) for k in self._used_dims]
        ptrs = [wb.load(wb.gep(bufs, [ir.Constant(I64, i)], source_etype=PTR), typ=PTR) for i in self._used]
        wb.call(self.impl, [start, stop] + lens + ptrs)
        wb.ret_void()

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
        v = self.b.load(self.address(acc, idx, axes), typ=memtype(dt))
        if dt == T.BOOL:
            v = self.b.trunc(v, I1)
        return v

    def store(self, acc: Access, idx, axes, v):
        dt = self.plan.buffers[acc.buf].dtype
        if dt == T.BOOL:
            v = self.b.zext(v, I8)
        self.b.store(v, self.address(acc, idx, axes))
# ------------------------------------------------------------------------------------------------ reductions
_RED_INIT = {
    "sum": lambda dt: 0, "prod": lambda dt: 1, "any": lambda dt: False, "all": lambda dt: True,
    "max": lambda dt: -np.inf if _is_f(dt) else (False if dt == T.BOOL else np.iinfo(dt).min),
    "min": lambda dt: np.inf if _is_f(dt) else (True if dt == T.BOOL else np.iinfo(dt).max),
    "argmax": lambda dt: -np.inf if _is_f(dt) else (False if dt == T.BOOL else np.iinfo(dt).min),
    "argmin": lambda dt: np.inf if _is_f(dt) else (True if dt == T.BOOL else np.iinfo(dt).max),
}


class _Reduction:
    """Accumulator state of one reduction inside a kernel phase."""

    def __init__(self, em: _Emitter, ops: _Ops, kop):
        self.em, self.ops, self.kop = em, ops, kop
        e = kop.eqn
        self.prim = e.prim
        self.in_dt = e.inputs[0].dtype
        self.out_dt = e.out.dtype
        # float32 sums accumulate in float64 (as accurate as numpy's pairwise summation, and still vectorized)
        self.acc_dt = self.out_dt
        if self.prim in ("sum", "prod") and self.out_dt == T.FLOAT32:
            self.acc_dt = T.FLOAT64
        if self.prim in ("argmax", "argmin"):
            self.acc_dt = self.in_dt
        self.blocked = self.prim == "sum" and _is_f(self.acc_dt)
        b = em.b
        ty = lltype(self.acc_dt)

        def allocas():
            acc = b.alloca(ty)
            blk = b.alloca(ty) if self.blocked else None
            idx = b.alloca(I64) if self.prim in ("argmax", "argmin") else None
            return acc, blk, idx
        self.acc, self.blk, self.idx = em._in_entry(allocas)

    def init(self):
        b = self.em.b
        b.store(_const(self.acc_dt, _RED_INIT[self.prim](self.acc_dt)), self.acc)
        if self.idx is not None:
            b.store(ir.Constant(I64, 0), self.idx)

    def init_block(self):
        if self.blocked:
            self.em.b.store(_const(self.acc_dt, 0.0), self.blk)

    def flush_block(self):
        if self.blocked:
            b = self.em.b
            ty = lltype(self.acc_dt)
            b.store(b.fadd(b.load(self.acc, typ=ty), b.load(self.blk, typ=ty)), self.acc)

    def update(self, v, counter):
        b, ops = self.em.b, self.ops
        ty = lltype(self.acc_dt)
        p = self.prim
        if p in ("argmax", "argmin"):
            best = b.load(self.acc, typ=ty)
            dt = self.acc_dt
            if _is_f(dt):
                better = b.fcmp_ordered(">" if p == "argmax" else "<", v, best)
                better = b.or_(better, b.and_(ops.isnan(dt, v), b.not_(ops.isnan(dt, best))))
            else:
                better = ops._cmp(dt, ">" if p == "argmax" else "<", v, best)
            b.store(b.select(better, v, best), self.acc)
            b.store(b.select(better, counter, b.load(self.idx, typ=I64)), self.idx)
            return
        target = self.blk if self.blocked else self.acc
        b.store(self.combine(b.load(target, typ=ty), v), target)

    def combine(self, cur, v):
        """cur (of the accumulator dtype) combined with one input element v."""
        b, ops = self.em.b, self.ops
        p = self.prim
        v = ops.convert(v, self.in_dt, self.acc_dt) if p not in ("any", "all") else ops._truth(self.in_dt, v)
        if p == "sum":
            new = b.fadd(cur, v, flags=("reassoc",)) if _is_f(self.acc_dt) else ops.op_add(self.acc_dt, cur, v)
        elif p == "prod":
            new = b.fmul(cur, v, flags=("reassoc",)) if _is_f(self.acc_dt) else ops.op_multiply(self.acc_dt, cur, v)
        elif p == "max":
            new = ops._minmax(self.acc_dt, cur, v, True)
        elif p == "min":
            new = ops._minmax(self.acc_dt, cur, v, False)
        elif p == "any":
            new = b.or_(cur, v)
        else:
            new = b.and_(cur, v)
        return new

    def result(self):
        b = self.em.b
        if self.prim in ("argmax", "argmin"):
            return b.load(self.idx, typ=I64)
        v = b.load(self.acc, typ=lltype(self.acc_dt))
        return self.ops.convert(v, self.acc_dt, self.out_dt)


# ------------------------------------------------------------------------------------------------ kernel lowering
SUM_BLOCK = 1024
# Streaming stores. A plain store to memory not in cache first reads the line it writes (read for ownership), so
# a kernel that writes 3 arrays and reads 2 moves 8 arrays' worth of bytes; non-temporal stores skip that read
# (measured here: the three-output difference 10.7 -> 7.4 ms). They also bypass the caches, which only pays when
# the outputs are far larger than the last-level cache, hence the run-time threshold. LLVM's loop vectorizer
# refuses non-temporal scalar stores it cannot widen to aligned vector stores, so the loop computes a block into
# scratch memory on the stack (vectorized as usual, stays in L1) and a second loop copies the block out with
# explicit vector stores (LLVM splits them into 8-byte non-temporal stores where the target is not aligned).
# Elements per block. Small blocks keep reads and streaming writes in flight together: the three-output
# difference took 7.7 ms with 64, 9.1 with 256, 13.5 with 1024 (long read-only then write-only phases).
STREAM_BLOCK = 64
STREAM_MIN_BYTES = 16 << 20  # bytes a kernel writes before its stores bypass the cache (L3 here: 32 MiB)


def _collapsible(plan, k: Kernel, canon):
    """An elementwise kernel whose every access is C-contiguous over the whole domain runs as one flat loop."""
    if k.red_axes or len(k.domain) <= 1 or any(o.eqn.prim == "gather" for o in k.ops):
        return False
    full = contiguous_strides(k.domain)
    accs = [acc for _, acc in k.stores]
    for o in k.ops:
        for x in o.eqn.inputs:
            s = plan.sources.get(x.id)
            if isinstance(s, InBuffer) and not _produced_in(k, x):
                accs.append(s.access)
    for acc in accs:
        if len(acc.shape) == 0 or all(isinstance(s, int) and s == 0 for s in acc.strides):
            continue
        if len(acc.shape) != len(k.domain):
            return False
        for d, dd, s, f in zip(acc.shape, k.domain, acc.strides, full):
            if not canon.eq(d, dd) or not (d == 1 or canon.eq(s, f)):
                return False
    return True


def _produced_in(k, x):
    return any(o.eqn.out is x for o in k.ops)


STREAM_MAX_MATH = 2  # math functions per element above which a kernel is compute-bound: no streamed copy


def _streamable(k: Kernel, flat) -> bool:
    """A one-loop elementwise kernel whose every store is unit stride along that loop, and memory-bound: with
    more than STREAM_MAX_MATH math functions (chain20's sin, cos, tanh, log1p, exp) streaming gains nothing at run
    time and the second copy of the loop nearly doubled the optimized tier's compile time (97 -> 173 ms)."""
    if k.red_axes or k.chunks or k.column or k.nphases != 1 or not k.stores or (not flat and len(k.domain) != 1):
        return False
    if sum(scalar_table.is_expensive(o.eqn.prim) for o in k.ops) > STREAM_MAX_MATH:
        return False
    for v, acc in k.stores:
        if v.id in k.scalars or all(d == 1 for d in acc.shape):
            return False
        if not flat and not (len(acc.shape) == 1 and isinstance(acc.strides[0], int) and acc.strides[0] == 1):
            return False
    return True


class _StreamedStores:
    """The stores of a one-loop kernel that writes more than STREAM_MIN_BYTES: computed a block at a time into
    stack scratch, copied out with non-temporal stores. The kernel branches at run time between this loop and
    the plain one (a store through a pointer chosen at run time kept LLVM from vectorizing math-heavy loops), so
    only the optimized tier emits it: the quick first tier keeps its compile time."""

    def __init__(self, em: _Emitter, plan, k: Kernel, total):
        self.em, self.plan = em, plan
        b = em.b
        self.accs = [acc for _, acc in k.stores]
        self.scratch = {}
        for acc in self.accs:
            mt = memtype(plan.buffers[acc.buf].dtype)
            self.scratch[id(acc)] = em._in_entry(lambda mt=mt: _aligned_alloca(b, mt, STREAM_BLOCK))
        nbytes = sum(np.dtype(plan.buffers[acc.buf].dtype).itemsize for acc in self.accs)
        self.big = em._in_entry(lambda: b.icmp_signed(">=", b.mul(em.dim(total), ir.Constant(I64, nbytes)),
                                                      ir.Constant(I64, STREAM_MIN_BYTES)))
        self.base = None
        self.active = False
        self.nt_md = em.m.add_metadata([ir.Constant(I32, 1)])

    def store(self, acc, i, v):
        dt = self.plan.buffers[acc.buf].dtype
        if dt == T.BOOL:
            v = self.em.b.zext(v, I8)
        b = self.em.b
        b.store(v, b.gep(self.scratch[id(acc)], [b.sub(i, self.base)], source_etype=memtype(dt), inbounds=True))

    def loop(self, lo, hi, leaf, axes_of, name):
        """``leaf(i)`` for i in [lo, hi): streamed when the kernel is big, else the plain loop."""
        em, b = self.em, self.em.b
        with b.if_else(self.big) as (then, otherwise):
            with then:
                self.active = True
                self._blocks(lo, hi, leaf, axes_of)
                self.active = False
            with otherwise:
                em.loop(lo, hi, leaf, name=name)

    def _blocks(self, lo, hi, leaf, axes_of):
        em, b = self.em, self.em.b
        nblk = b.sdiv(b.add(b.sub(hi, lo), ir.Constant(I64, STREAM_BLOCK - 1)), ir.Constant(I64, STREAM_BLOCK))

        def block(jb):
            blo = b.add(lo, b.mul(jb, ir.Constant(I64, STREAM_BLOCK)), flags=("nsw",))
            bhi = b.add(blo, ir.Constant(I64, STREAM_BLOCK))
            bhi = b.select(b.icmp_signed("<", bhi, hi), bhi, hi)
            self.base = blo
            em.loop(blo, bhi, leaf, name="s")
            for acc in self.accs:
                self._copy_out(acc, em.address(acc, {0: blo}, axes_of(acc)), b.sub(bhi, blo))
        em.loop(ir.Constant(I64, 0), nblk, block, name="sb")
        _store_fence(em.m, b)

    def _copy_out(self, acc, dst, cnt):
        em, b = self.em, self.em.b
        mt = memtype(self.plan.buffers[acc.buf].dtype)
        size = np.dtype(self.plan.buffers[acc.buf].dtype).itemsize
        w = 64 // size
        vty = ir.VectorType(mt, w)
        src = self.scratch[id(acc)]
        nvec = b.sdiv(cnt, ir.Constant(I64, w))

        def vec(j):
            off = b.mul(j, ir.Constant(I64, w))
            v = b.load(b.gep(src, [off], source_etype=mt), typ=vty, align=64)
            b.store(v, b.gep(dst, [off], source_etype=mt), align=size).set_metadata("nontemporal", self.nt_md)
        em.loop(ir.Constant(I64, 0), nvec, vec, name="cv")

        def tail(j):
            b.store(b.load(b.gep(src, [j], source_etype=mt), typ=mt), b.gep(dst, [j], source_etype=mt))
        em.loop(b.mul(nvec, ir.Constant(I64, w)), cnt, tail, name="ct")


def _aligned_alloca(b, ty, n):
    a = b.alloca(ty, size=ir.Constant(I64, n))
    a.align = 64
    return a


def _store_fence(module, b):
    """Non-temporal stores are weakly ordered: fence them before another thread may read the outputs."""
    if llvm.get_process_triple().startswith(("x86_64", "i686", "i386")):
        fn = module.globals.get("llvm.x86.sse.sfence") or ir.Function(module, ir.FunctionType(VOID, []),
                                                                      "llvm.x86.sse.sfence")
        b.call(fn, [])
    else:
        b.fence("seq_cst")


def lower_kernel(em: _Emitter, plan, k: Kernel, canon):
    ops = _Ops(em)
    b = em.b
    b.position_at_end(em._body)
    domain = tuple(k.domain)
    flat = _collapsible(plan, k, canon)
    streamed = None
    producers = {o.eqn.out.id: o for o in k.ops}
    stored = {}
    for v, acc in k.stores:
        stored.setdefault(v.id, []).append(acc)
    nph = k.nphases
    red = tuple(k.red_axes)
    outer = tuple(a for a in range(len(domain)) if a not in red)
    flag_ptr = em.buf(plan.flag) if plan.flag is not None else None

    if flat:
        n = domain[0]
        for d in domain[1:]:
            n = n * d
        flat_n = em.dim(n)

    def axes_for(x, consumer_axes, q):
        """Domain axis of each dim of operand x as seen by an op whose output has axis map consumer_axes."""
        off = q - x.ndim
        return tuple(None if x.shape[j] == 1 else consumer_axes[j + off] for j in range(x.ndim))

    def eval_op(o, idx, values, phase, level):
        e = o.eqn
        if e.prim == "reshape":
            return values[e.inputs[0].id] if e.inputs[0].id in values else operand(e.inputs[0], o.axes, idx,
                                                                                     values, phase, level, q=None)
        if e.prim == "gather":  # addresses its operands itself: they need not have the result's rank
            return gather(e, o, idx, values, phase, level)
        q = e.out.ndim
        args = [operand(x, o.axes, idx, values, phase, level, q) for x in e.inputs]
        return ops.emit(e, args)

    def operand(x, cons_axes, idx, values, phase, level, q):
        if x.id in values:
            return values[x.id]
        src = plan.sources.get(x.id)
        p = producers.get(x.id)
        if p is not None and x.id in stored and (p.phase < phase and p.level == "inner"):
            acc = stored[x.id][0]
            return em.load(acc, idx, _acc_axes(acc, x, cons_axes, q))
        if p is not None:
            raise AssertionError(f"value {x} used before it is computed in its kernel")
        if isinstance(src, ScalarConst):
            return _const(src.dtype, src.value)
        if isinstance(src, DimLength):
            return em.dim(src.dim)
        acc = memory_access(src)
        return em.load(acc, idx, _acc_axes(acc, x, cons_axes, q))

    def _acc_axes(acc, x, cons_axes, q):
        if flat:
            return FLAT
        if q is None:
            q = len(cons_axes)
        off = q - x.ndim
        return tuple(None if x.shape[j] == 1 else cons_axes[j + off] for j in range(x.ndim))

    def gather(e, o, idx, values, phase, level):
        x, ind = e.inputs
        ax = e.p["axis"]
        xacc = plan.sources[x.id].access
        # the index may be a constant, a length or a stored value: read it as any operand over its own axes
        iv = operand(ind, tuple(o.axes[ax:ax + ind.ndim]), idx, values, phase, level, ind.ndim)
        iv = em.checked_index(iv, em.dim(x.shape[ax]), flag_ptr)
        # address: x dims before ax map to out dims before ax; after ax to out dims after the index dims
        local = dict(idx)
        gath_axis = "g"
        local[gath_axis] = iv
        xaxes = []
        for j in range(x.ndim):
            if x.shape[j] == 1:
                xaxes.append(None)
            elif j < ax:
                xaxes.append(o.axes[j])
            elif j == ax:
                xaxes.append(gath_axis)
            else:
                xaxes.append(o.axes[j - 1 + ind.ndim])
        return em.load(xacc, local, tuple(xaxes))

    def do_stores(o, idx, v):
        for acc in stored.get(o.eqn.out.id, ()):
            if streamed is not None and streamed.active:
                streamed.store(acc, idx[0], v)
            else:
                em.store(acc, idx, _acc_axes(acc, o.eqn.out, o.axes, None), v)

    def run_body(idx):
        values = {}
        for phase in range(nph):
            inner_ops = [o for o in k.ops if o.phase == phase and o.level == "inner"]
            reds = [o for o in k.ops if o.phase == phase and PRIMS_KIND(o) == "reduce"]
            tail_ops = [o for o in k.ops if o.phase == phase and o.level == "tail" and PRIMS_KIND(o) != "reduce"]
            accs = [_Reduction(em, ops, o) for o in reds]
            for a in accs:
                a.init()
            counter = em._in_entry(lambda: b.alloca(I64)) if reds else None
            if counter is not None:
                b.store(ir.Constant(I64, 0), counter)

            def inner_body(iidx, ivalues):
                for o in inner_ops:
                    v = eval_op(o, iidx, ivalues, phase, "inner")
                    ivalues[o.eqn.out.id] = v
                    do_stores(o, iidx, v)
                if accs:
                    c = b.load(counter, typ=I64)
                for a in accs:
                    x = a.kop.eqn.inputs[0]
                    q_axes = _red_input_axes(a.kop)
                    v = operand(x, q_axes, iidx, ivalues, phase, "inner", x.ndim)
                    a.update(v, c)
                if accs:
                    b.store(b.add(c, ir.Constant(I64, 1)), counter)

            if red:
                blocked = any(a.blocked for a in accs)
                emit_inner(list(red), dict(idx), values, inner_body, blocked, accs)
            else:
                for a in accs:
                    a.init_block()
                inner_body(idx, values)
                for a in accs:
                    a.flush_block()
            if k.chunks:  # a split full reduction: this chunk's raw accumulators, combined by the next step
                for a in accs:
                    part = Access(k.partials[a.kop.eqn.out.id], (k.chunks,), (1,), 0)
                    em.store(part, {"chunk": idx["chunk"]}, ("chunk",), b.load(a.acc, typ=lltype(a.acc_dt)))
                continue
            for a in accs:
                v = a.result()
                values[a.kop.eqn.out.id] = v
                do_stores(a.kop, idx, v)
            for o in tail_ops:
                v = eval_op(o, idx, values, phase, "tail")
                values[o.eqn.out.id] = v
                do_stores(o, idx, v)
        # a kernel made only of stores of scalars / dims (e.g. a constant output)
        for v, acc in k.stores:
            if v.id in k.scalars:
                src = k.scalars[v.id]
                val = _const(src.dtype, src.value) if isinstance(src, ScalarConst) else em.dim(src.dim)
                em.store(acc, idx, tuple(None for _ in acc.shape), val)

    def _red_input_axes(kop):
        return kop.in_axes

    def axis_range(a, idx):
        """[lo, hi) of reduced axis a: all of it, or this chunk's share in a split full reduction."""
        n = em.dim(domain[a])
        if k.chunks and a == k.red_axes[0]:
            per = b.sdiv(b.add(n, ir.Constant(I64, k.chunks - 1)), ir.Constant(I64, k.chunks))
            lo = b.mul(idx["chunk"], per)
            lo = b.select(b.icmp_signed("<", lo, n), lo, n)
            hi = b.add(lo, per)
            return lo, b.select(b.icmp_signed("<", hi, n), hi, n)
        return ir.Constant(I64, 0), n

    def emit_inner(axes_left, idx, values, body, blocked, accs):
        a = axes_left[0]
        lo0, n = axis_range(a, idx)
        if len(axes_left) == 1:
            if blocked:
                nblk = b.sdiv(b.add(b.sub(n, lo0), ir.Constant(I64, SUM_BLOCK - 1)), ir.Constant(I64, SUM_BLOCK))

                def blk_body(jb):
                    for r in accs:
                        r.init_block()
                    lo = b.add(lo0, b.mul(jb, ir.Constant(I64, SUM_BLOCK)))
                    hi = b.add(lo, ir.Constant(I64, SUM_BLOCK))
                    hi = b.select(b.icmp_signed("<", hi, n), hi, n)

                    def leaf(i):
                        d = dict(idx)
                        d[a] = i
                        body(d, dict(values))
                    em.loop(lo, hi, leaf, name=f"r{a}")
                    for r in accs:
                        r.flush_block()
                em.loop(ir.Constant(I64, 0), nblk, blk_body, name=f"rb{a}")
                return

            def leaf(i):
                d = dict(idx)
                d[a] = i
                body(d, dict(values))
            em.loop(lo0, n, leaf, name=f"r{a}")
            return

        def mid(i):
            d = dict(idx)
            d[a] = i
            emit_inner(axes_left[1:], d, values, body, blocked, accs)
        em.loop(lo0, n, mid, name=f"r{a}")

    def emit_outer(axes_left, idx, first):
        if not axes_left:
            run_body(idx)
            return
        a = axes_left[0]
        n = flat_n if flat else em.dim(domain[a])
        if first:
            lo = em.start
            hi = b.select(b.icmp_signed("<", em.stop, ir.Constant(I64, 0)), n, em.stop)
        else:
            lo, hi = ir.Constant(I64, 0), n

        def body(i):
            d = dict(idx)
            d[a] = i
            emit_outer(axes_left[1:], d, False)
        if first and streamed is not None:
            streamed.loop(lo, hi, body, lambda acc: FLAT if flat else (0,), f"o{a}")
        else:
            em.loop(lo, hi, body, name=f"o{a}")

    if k.column:
        lower_column(em, plan, k, ops, eval_op, operand, do_stores)
    elif k.chunks:
        hi = b.select(b.icmp_signed("<", em.stop, ir.Constant(I64, 0)), ir.Constant(I64, k.chunks), em.stop)
        em.loop(em.start, hi, lambda c: emit_outer(list(outer), {"chunk": c}, False), name="chunk")
    else:
        if em.math.vector and _streamable(k, flat):
            streamed = _StreamedStores(em, plan, k, T.prod(domain))
        emit_outer([0] if flat else list(outer), {}, True)
    b.ret_void()
    em.finish()
    return flat


def lower_column(em, plan, k, ops, eval_op, operand, do_stores):
    """Reductions over leading axes: init accumulators, then reduced loops outside and kept loops inside (unit
    stride, vectorized), then the tail over the kept axes. Threads split the first kept axis."""
    b = em.b
    red = list(k.red_axes)
    kept = [a for a in range(len(k.domain)) if a not in red]
    kept_shape = tuple(k.domain[a] for a in kept)
    acc_access = {vid: Access(bid, kept_shape, contiguous_strides(kept_shape), 0) for vid, bid in k.column_accs.items()}
    acc_axes = tuple(None if d == 1 else a for a, d in zip(kept, kept_shape))
    reds = [o for o in k.ops if PRIMS_KIND(o) == "reduce"]
    inner_ops = [o for o in k.ops if o.level == "inner"]
    tail_ops = [o for o in k.ops if o.level == "tail" and PRIMS_KIND(o) != "reduce"]
    state = {o.eqn.out.id: _Reduction(em, ops, o) for o in reds}

    def kept_loops(body, idx):
        def rec(j, idx):
            if j == len(kept):
                body(idx)
                return
            a = kept[j]
            n = em.dim(k.domain[a])
            if j == 0:
                lo, hi = em.start, b.select(b.icmp_signed("<", em.stop, ir.Constant(I64, 0)), n, em.stop)
            else:
                lo, hi = ir.Constant(I64, 0), n

            def inner(i):
                rec(j + 1, {**idx, a: i})
            em.loop(lo, hi, inner, name=f"k{a}")
        rec(0, idx)

    def init(idx):
        for o in reds:
            r = state[o.eqn.out.id]
            em.store(acc_access[o.eqn.out.id], idx, acc_axes, _const(r.acc_dt, _RED_INIT[r.prim](r.acc_dt)))
    kept_loops(init, {})

    def accumulate(idx):
        values = {}
        for o in inner_ops:
            v = eval_op(o, idx, values, 0, "inner")
            values[o.eqn.out.id] = v
            do_stores(o, idx, v)
        for o in reds:
            r = state[o.eqn.out.id]
            x = o.eqn.inputs[0]
            v = operand(x, o.in_axes, idx, values, 0, "inner", x.ndim)
            acc = acc_access[o.eqn.out.id]
            cur = em.load(acc, idx, acc_axes)
            em.store(acc, idx, acc_axes, r.combine(cur, v))

    def red_loops(j, idx):
        if j == len(red):
            kept_loops(accumulate, idx)
            return
        a = red[j]
        em.loop(ir.Constant(I64, 0), em.dim(k.domain[a]), lambda i: red_loops(j + 1, {**idx, a: i}), name=f"c{a}")
    red_loops(0, {})

    def finish(idx):
        values = {}
        for o in reds:
            r = state[o.eqn.out.id]
            v = ops.convert(em.load(acc_access[o.eqn.out.id], idx, acc_axes), r.acc_dt, r.out_dt)
            values[o.eqn.out.id] = v
            do_stores(o, idx, v)
        for o in tail_ops:
            v = eval_op(o, idx, values, 0, "tail")
            values[o.eqn.out.id] = v
            do_stores(o, idx, v)
    kept_loops(finish, {})


def PRIMS_KIND(o):
    from ..ir.primitives import PRIMS
    return PRIMS[o.eqn.prim].kind


def outer_extent(k: Kernel, flat: bool):
    """The dim split across threads (None: this kernel runs on one thread)."""
    if k.chunks:
        return k.chunks
    if flat:
        n = k.domain[0]
        for d in k.domain[1:]:
            n = n * d
        return n
    outer = [a for a in range(len(k.domain)) if a not in k.red_axes]
    return k.domain[outer[0]] if outer else None


# ------------------------------------------------------------------------------------------------ other steps
def lower_copy(em: _Emitter, plan, step: CopyStep):
    b = em.b
    b.position_at_end(em._body)
    shape = step.src.shape
    nd = len(shape)
    axes = tuple(range(nd))

    def rec(j, idx, first):
        if j == nd:
            v = em.load(step.src, idx, tuple(None if d == 1 else a for a, d in zip(axes, shape)))
            em.store(step.dst, idx, tuple(None if d == 1 else a for a, d in zip(axes, step.dst.shape)), v)
            return
        n = em.dim(shape[j])
        if first:
            lo, hi = em.start, b.select(b.icmp_signed("<", em.stop, ir.Constant(I64, 0)), n, em.stop)
        else:
            lo, hi = ir.Constant(I64, 0), n

        def body(i):
            d = dict(idx)
            d[j] = i
            rec(j + 1, d, False)
        em.loop(lo, hi, body, name=f"c{j}")
    rec(0, {}, True)
    b.ret_void()
    em.finish()


def lower_scatter_add(em: _Emitter, plan, step: ScatterAddStep):
    b = em.b
    b.position_at_end(em._body)
    out = step.out
    g = step.g
    ax = step.axis
    idx_nd = len(step.idx.shape)
    dt = plan.buffers[out.buf].dtype
    ops = _Ops(em)
    flag_ptr = em.buf(plan.flag)
    # zero the output
    total = 1
    for d in out.shape:
        total = total * d
    zero = _const(dt, 0)
    em.loop(ir.Constant(I64, 0), em.dim(total),
            lambda i: em.store(Access(out.buf, (total,), (1,), 0), {0: i}, (0,), zero), name="z")
    nd = len(g.shape)

    def rec(j, idx):
        if j == nd:
            iv = em.load(step.idx, idx, tuple(None if d == 1 else ax + k for k, d in enumerate(step.idx.shape)))
            iv = em.checked_index(iv, em.dim(out.shape[ax]), flag_ptr)
            local = dict(idx)
            local["s"] = iv
            oaxes = []
            for k in range(len(out.shape)):
                if out.shape[k] == 1:
                    oaxes.append(None)
                elif k < ax:
                    oaxes.append(k)
                elif k == ax:
                    oaxes.append("s")
                else:
                    oaxes.append(k - 1 + idx_nd)
            ptr = em.address(out, local, tuple(oaxes))
            gv = em.load(g, idx, tuple(None if d == 1 else k for k, d in enumerate(g.shape)))
            cur = b.load(ptr, typ=memtype(dt))
            if dt == T.BOOL:
                b.store(b.zext(b.or_(b.trunc(cur, I1), gv), I8), ptr)
            else:
                b.store(ops.op_add(dt, cur, gv), ptr)
            return
        em.loop(ir.Constant(I64, 0), em.dim(g.shape[j]), lambda i: rec(j + 1, {**idx, j: i}), name=f"s{j}")
    rec(0, {})
    b.ret_void()
    em.finish()


def lower_matmul(em: _Emitter, plan, step: MatmulStep):
    """C[b] = A[b] @ B[b] through BLAS gemm (floats) or a loop nest (integers)."""
    from . import blas
    b = em.b
    b.position_at_end(em._body)
    A, B, C = step.a, step.b, step.out
    dt = step.dtype
    nd = len(C.shape)
    nbatch = nd - 2
    M, N = C.shape[-2], C.shape[-1]
    K = A.shape[-1]

    def batch(j, idx):
        if j == nbatch:
            pa = em.address(Access(A.buf, A.shape[:nbatch], A.strides[:nbatch], A.offset), idx,
                            tuple(None if d == 1 else k for k, d in enumerate(A.shape[:nbatch])))
            pb = em.address(Access(B.buf, B.shape[:nbatch], B.strides[:nbatch], B.offset), idx,
                            tuple(None if d == 1 else k for k, d in enumerate(B.shape[:nbatch])))
            pc = em.address(Access(C.buf, C.shape[:nbatch], C.strides[:nbatch], C.offset), idx,
                            tuple(None if d == 1 else k for k, d in enumerate(C.shape[:nbatch])))
            if _is_f(dt) and (N == 1 or M == 1):
                blas.emit_gemv(em, dt, pa, A, pb, B, pc, C, M, N, K, step.alpha, step.beta)
            elif _is_f(dt):
                blas.emit_gemm(em, dt, pa, A, pb, B, pc, M, N, K, step.alpha, step.beta)
            else:
                _int_matmul(em, dt, pa, A, pb, B, pc, C, M, N, K)
            return
        em.loop(ir.Constant(I64, 0), em.dim(C.shape[j]), lambda i: batch(j + 1, {**idx, j: i}), name=f"b{j}")
    batch(0, {})
    b.ret_void()
    em.finish()


def _int_matmul(em, dt, pa, A, pb, B, pc, C, M, N, K):
    b = em.b
    ty = lltype(dt)

    def st(acc, j):
        return em.dim(acc.strides[j]) if acc.shape[j] != 1 else ir.Constant(I64, 0)
    sa0, sa1, sb0, sb1 = st(A, -2), st(A, -1), st(B, -2), st(B, -1)
    sc0, sc1 = st(C, -2), st(C, -1)
    accp = em._in_entry(lambda: b.alloca(ty))

    def row(i):
        def col(j):
            b.store(ir.Constant(ty, 0), accp)

            def kk(k):
                a = b.load(b.gep(pa, [b.add(b.mul(i, sa0), b.mul(k, sa1))], source_etype=ty), typ=ty)
                bb = b.load(b.gep(pb, [b.add(b.mul(k, sb0), b.mul(j, sb1))], source_etype=ty), typ=ty)
                b.store(b.add(b.load(accp, typ=ty), b.mul(a, bb)), accp)
            em.loop(ir.Constant(I64, 0), em.dim(K), kk, name="k")
            b.store(b.load(accp, typ=ty), b.gep(pc, [b.add(b.mul(i, sc0), b.mul(j, sc1))], source_etype=ty))
        em.loop(ir.Constant(I64, 0), em.dim(N), col, name="j")
    em.loop(ir.Constant(I64, 0), em.dim(M), row, name="i")


def module_text(module, emitters) -> str:
    """The module's IR text, reusing each step impl's text printed once by finish() (printing is slow)."""
    texts = []
    for em in emitters:
        if em.impl_text is not None:
            del module.globals[em.fn.name]
            texts.append(em.impl_text)
    return "\n".join([str(module)] + texts)


# ------------------------------------------------------------------------------------------------ entry
def emit_entry(module, plan, steps_fns, symbols, slot_of_input, nslots):
    """``PyObject *entry(PyObject *self, PyObject *const *args, Py_ssize_t nargs)`` (METH_FASTCALL)."""
    fnty = ir.FunctionType(PTR, [PTR, PTR, I64])
    fn = ir.Function(module, fnty, "tj_entry")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    _, args, _ = fn.args
    bufs = b.bitcast(b.alloca(PTR, size=max(nslots, 1)), PTR)
    dims = b.bitcast(b.alloca(I64, size=max(len(symbols), 1)), PTR)
    arrs = []
    for i in range(nslots):
        obj = b.load(b.gep(args, [ir.Constant(I64, i)], source_etype=PTR), typ=PTR)
        arrs.append(obj)
        data = b.load(b.gep(obj, [ir.Constant(I64, 16)], source_etype=I8), typ=PTR)  # PyArrayObject.data
        b.store(data, b.gep(bufs, [ir.Constant(I64, i)], source_etype=PTR))
    for name, k in symbols.items():
        inp, axis = plan.graph.symbols[name]
        obj = arrs[slot_of_input[inp]]
        dimsp = b.load(b.gep(obj, [ir.Constant(I64, 32)], source_etype=I8), typ=PTR)  # PyArrayObject.dimensions
        v = b.load(b.gep(dimsp, [ir.Constant(I64, axis)], source_etype=I64), typ=I64)
        b.store(v, b.gep(dims, [ir.Constant(I64, k)], source_etype=I64))
    bp = b.bitcast(bufs, PTR)
    dp = b.bitcast(dims, PTR)
    for f in steps_fns:
        b.call(f, [bp, dp, ir.Constant(I64, 0), ir.Constant(I64, -1)])
    none = ir.GlobalVariable(module, I64, "tj_py_none")
    none.linkage = "external"
    rc = b.load(none, typ=I64)
    b.store(b.add(rc, ir.Constant(I64, 1)), none)
    b.ret(b.bitcast(none, PTR))
    return fn


# ------------------------------------------------------------------------------------------------ compile
class CompiledModule:
    """A JIT-compiled LLVM module; keeps the engine alive as long as functions are in use.

    With a ``cache_key``, the object code is looked up in the on-disk cache first (a hit skips LLVM's
    optimizer and code generator) and stored there after a miss, together with the optimized IR for display.
    """

    @classmethod
    def from_cache(cls, cache_key, fn_names):
        """The module stored under ``cache_key``, or None (a miss, or an unusable entry)."""
        from . import cache
        blob = cache.load(cache_key)
        if blob is None:
            return None
        self = cls.__new__(cls)
        try:
            n = int.from_bytes(blob[:8], "little")
            self._bitcode = blob[8:8 + n]
            self._load_object(blob[8 + n:], fn_names)
        except Exception:  # an unusable entry: the caller compiles afresh and overwrites it
            return None
        self.from_cache = True
        return self

    def __init__(self, ir_text, fn_names, vec_pairs, cache_key=None, tier=1, cancelled=None, timings=None):
        from . import cache
        self.from_cache = False
        self._bitcode, obj = _optimize_and_emit(ir_text, vec_pairs, tier, cancelled, timings)
        self.cancelled = obj is None
        if self.cancelled:  # the interpreter is exiting: no machine code is loaded or stored
            return
        # machine code is generated once: the object file both runs here and goes to the disk cache
        self._load_object(obj, fn_names)
        if cache_key and obj:
            cache.store(cache_key, len(self._bitcode).to_bytes(8, "little") + self._bitcode + obj)

    @property
    def optimized_ir(self) -> str:
        """The optimized module as text (kept as bitcode until someone asks: printing costs milliseconds)."""
        ctx = llvm.create_context()  # a context of its own, freed with the module: printing leaves nothing behind
        mod = llvm.parse_bitcode(self._bitcode, context=ctx)
        try:
            return str(mod)
        finally:
            mod.close()
            ctx.close()

    def _load_object(self, obj, fn_names):
        tm = target_machine()
        with GLOBAL_CONTEXT_LOCK:  # the engine's module lives in llvmlite's global context, shared by threads
            empty = llvm.parse_assembly("")
            empty.triple = tm.triple
            self.engine = llvm.create_mcjit_compiler(empty, tm)
            self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self.engine.finalize_object()
        self.addresses = {n: self.engine.get_function_address(n) for n in fn_names}
        if not all(self.addresses.values()):
            raise RuntimeError("cached object lacks a function")

    def asm(self):
        with GLOBAL_CONTEXT_LOCK:
            return target_machine().emit_assembly(llvm.parse_assembly(self.optimized_ir))


def _optimize_and_emit(ir_text, vec_pairs, tier=1, cancelled=None, timings=None):
    """(optimized bitcode, object code) of a module, built in an LLVM context of its own that is freed here: the
    constants, types and metadata that optimization adds to a context would otherwise accumulate, compile after
    compile, in llvmlite's global one. ``cancelled()`` true between the stages: (None, None), nothing emitted.
    ``timings``: a dict that gets the seconds of LLVM's optimization and of object emission."""
    tm = target_machine(3 if tier >= 1 else TIER0_CODEGEN)
    ctx = llvm.create_context()
    mod = llvm.parse_assembly(ir_text, context=ctx)
    try:
        for text in _math_ir(vec_pairs, tier):
            mod.link_in(llvm.parse_assembly(text, context=ctx))
        mod.triple = tm.triple
        mod.data_layout = str(tm.target_data)
        mod.verify()
        if cancelled is not None and cancelled():
            return None, None
        t0 = time.perf_counter()
        _optimize(mod, tm, tier)
        t1 = time.perf_counter()
        if cancelled is not None and cancelled():
            return None, None
        out = mod.as_bitcode(), tm.emit_object(mod)
        if timings is not None:
            timings.update(llvm_optimize=t1 - t0, emit=time.perf_counter() - t1)
        return out
    finally:
        mod.close()  # before its context
        ctx.close()


def _optimize(mod, tm, tier):
    """Run LLVM's pipeline for ``tier``: 1 is O3 with loop and SLP vectorization and unrolling (the code that
    runs from then on); 0 is the quick tier, whose code runs a few calls while the optimized tier compiles in the
    background: TIER0_SPEED without vectorizers, emitted at TIER0_CODEGEN."""
    pto = llvm.create_pipeline_tuning_options(speed_level=3 if tier >= 1 else TIER0_SPEED)
    vectorize = tier >= 1
    pto.loop_vectorization = vectorize
    pto.slp_vectorization = vectorize
    pto.loop_unrolling = vectorize
    pb = llvm.create_pass_builder(tm, pto)
    pm = pb.getModulePassManager()
    try:
        pm.run(mod, pb)
    finally:
        _free_pass_manager(pm)


# The quick tier: LLVM's O0 pipeline (always-inline only) and the code generator's fast path (FastISel, fast
# register allocation). Its code is slower, but it runs only until the optimized tier is in, and calls whose
# work outweighs the rest of that compile wait for it (runtime.TieredExecutable).
TIER0_SPEED = 0
TIER0_CODEGEN = 0


def _free_pass_manager(pm):
    """Free a module pass manager and the state of every pass in it (~170 KB after an O3 run).

    llvmlite 0.47's ModulePassManager lists ObjectRef before NewPassManager among its bases, so ``close()`` finds
    ObjectRef's empty ``_dispose`` and frees nothing: every compile leaked its whole pipeline."""
    from llvmlite.binding import ffi, newpassmanagers
    dispose = getattr(newpassmanagers, "NewPassManager", None)
    if type(pm)._dispose is ffi.ObjectRef._dispose and dispose is not None and not pm.closed:
        dispose._dispose(pm)
        pm.detach()
    else:
        pm.close()


@functools.lru_cache(maxsize=64)
def _vecmath_ir(pairs) -> str:
    return _vec().module_ir(pairs)


def _math_ir(pairs, tier) -> list:
    """Module texts defining the math functions a program calls (``(name, dtype)`` pairs). Both tiers share one
    program IR; they differ here: the optimized tier links the vector library's polynomials (inlined, then
    vectorized), the quick tier one-line definitions calling libm or an LLVM intrinsic (far less code for LLVM),
    except for functions that only the library has."""
    pairs = tuple(sorted(pairs, key=str))
    if tier >= 1:
        return [_vecmath_ir(pairs)] if pairs else []
    scalar = tuple(p for p in pairs if p[0] in _INTRINSICS or p[0] in _LIBM)
    rest = tuple(p for p in pairs if p not in scalar)
    return ([_scalar_math_ir(scalar)] if scalar else []) + ([_vecmath_ir(rest)] if rest else [])


@functools.lru_cache(maxsize=64)
def _scalar_math_ir(pairs) -> str:
    """The vector library's symbols defined as calls of the scalar libm function or LLVM intrinsic (the same
    choice _Math makes for a scalar call), always inlined."""
    decls, defs = {}, []
    for name, dt in pairs:
        f64 = np.dtype(dt) == np.float64
        ty = "double" if f64 else "float"
        target = f"{_INTRINSICS[name]}.{'f64' if f64 else 'f32'}" if name in _INTRINSICS \
            else _LIBM[name] + ("" if f64 else "f")
        params = ["%a", "%b"] if name in BINARY_MATH else ["%a"]
        decls[target] = f'declare {ty} @"{target}"({", ".join([ty] * len(params))})'
        args = ", ".join(f"{ty} {p}" for p in params)
        defs.append(f'define linkonce_odr {ty} @"{_vec_symbol(name, "f64" if f64 else "f32")}"({args}) #0 {{\n'
                    f'  %r = call {ty} @"{target}"({args})\n  ret {ty} %r\n}}')
    return "\n".join(list(decls.values()) + defs + ["attributes #0 = { alwaysinline nounwind }"])


def codegen_fingerprint() -> str:
    """A hash of the code generator's own source, so cached machine code never outlives the code that made it."""
    global _CODEGEN_FP
    if _CODEGEN_FP is None:
        import hashlib
        here = os.path.dirname(os.path.abspath(__file__))
        h = hashlib.sha256()
        for rel in ("llvm.py", "cpu_scalar.py", "../lower/scalar.py", "vecmath.py", "blas.py", "../lower/plan.py",
                    "../lower/dims.py", "../lower/fuse.py", "../lower/memory.py"):
            try:
                with open(os.path.join(here, rel), "rb") as f:
                    h.update(f.read())
            except OSError:
                h.update(rel.encode())
        from . import blas
        h.update(blas.fingerprint().encode())
        _CODEGEN_FP = h.hexdigest()
    return _CODEGEN_FP


_CODEGEN_FP = None


_MOD_LOCK = threading.Lock()
PyCFunction_NewEx = ctypes.pythonapi.PyCFunction_NewEx
PyCFunction_NewEx.restype = ctypes.py_object
PyCFunction_NewEx.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p]


class _PyMethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p), ("ml_flags", ctypes.c_int),
                ("ml_doc", ctypes.c_char_p)]


METH_FASTCALL = 0x80


def make_builtin(address, owner=None, name=b"tracejit_program"):
    """Wrap a METH_FASTCALL function pointer as a Python builtin function (no ctypes on the call path).

    The builtin's ``self`` slot (passed to the entry, which ignores it) holds ``owner`` (the CompiledModule whose
    machine code ``address`` points into) and the method definition: whoever keeps the builtin, even after the
    executable is gone, keeps the code and the definition it points to alive, so a call never runs freed code."""
    mdef = _PyMethodDef(name, address, METH_FASTCALL, None)
    fn = PyCFunction_NewEx(ctypes.addressof(mdef), (owner, mdef), None)
    return fn, mdef


def num_threads():
    env = os.environ.get("TRACEJIT_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError(f"TRACEJIT_NUM_THREADS must be an integer, got {env!r}") from None
    return os.cpu_count() or 1


