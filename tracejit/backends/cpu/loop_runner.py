"""The native loop: one small machine-code function, compiled once per process, that runs a loop's iterations
from a table of operations (call a body's step function, point a buffer slot at row i of a stacked array, copy a
row, move a pointer, stop when a predicate is false). A region's loop is a table, not code: it costs no compile of
its own, and an iteration costs a few loads and indirect calls, with no Python and no allocation.

Each operation is five int64 words ``[code, a, b, c, d]``; ``i`` is the iteration's index (``n - 1 - t`` for a
reversed scan). Slots are addresses of pointer-sized cells (entries of a body's buffer table):

  CALL      a: step function, b: buffer table, c: lengths table      fn(b, c, 0, -1)
  ROW       a: slot, b: base address, c: row bytes                   *a = b + i * c
  COPY_ROW  a: base address, b: row bytes, c: slot, d: bytes         memcpy(a + i * b, *c, d)
  COPY      a: slot, b: slot, c: bytes                               memcpy(*a, *b, c)
  MOVE      a: slot, b: slot                                         *a = *b
  STOP_IF   a: slot                                                  stop the loop when the byte at *a is 0
  LOAD_ROW  a: slot, b: base address, c: row bytes, d: bytes         memcpy(*a, b + i * c, d)
  LOOP      a: ops, b: number of ops, c: trips, d: reverse          run another table (a loop nest)
  ROW_AT    a: slot, b: slot of the base, c: row bytes               *a = *b + i * c
  SWITCH    a: slot of the index, b: branch table, c: branches,      run table k once, k = the index (int32 when
            d: index bytes (4 or 8)                                  d is 4, else int64) clipped to [0, c - 1];
                                                                     a branch table row is (ops, number of ops)
"""
from __future__ import annotations

import ctypes
import threading

import llvmlite.binding as llvm

CALL, ROW, COPY_ROW, COPY, MOVE, STOP_IF, LOAD_ROW, LOOP, ROW_AT, SWITCH = range(10)
WORDS = 5

_IR = r"""
declare void @llvm.memcpy.p0.p0.i64(ptr, ptr, i64, i1)

define i64 @tj_loop_run(ptr %ops, i64 %nops, i64 %n, i64 %reverse) {
entry:
  %rev = icmp ne i64 %reverse, 0
  br label %trip
trip:
  %t = phi i64 [0, %entry], [%t1, %next_trip]
  %more = icmp slt i64 %t, %n
  br i1 %more, label %start, label %done
start:
  %last = sub i64 %n, 1
  %back = sub i64 %last, %t
  %i = select i1 %rev, i64 %back, i64 %t
  br label %ophead
ophead:
  %k = phi i64 [0, %start], [%k1, %opnext]
  %kmore = icmp slt i64 %k, %nops
  br i1 %kmore, label %dispatch, label %next_trip
dispatch:
  %w = mul i64 %k, 5
  %p0 = getelementptr i64, ptr %ops, i64 %w
  %code = load i64, ptr %p0
  %p1 = getelementptr i64, ptr %p0, i64 1
  %a = load i64, ptr %p1
  %p2 = getelementptr i64, ptr %p0, i64 2
  %b = load i64, ptr %p2
  %p3 = getelementptr i64, ptr %p0, i64 3
  %c = load i64, ptr %p3
  %p4 = getelementptr i64, ptr %p0, i64 4
  %d = load i64, ptr %p4
  %ap = inttoptr i64 %a to ptr
  %bp = inttoptr i64 %b to ptr
  %cp = inttoptr i64 %c to ptr
  switch i64 %code, label %opnext [ i64 0, label %call
                                    i64 1, label %row
                                    i64 2, label %copyrow
                                    i64 3, label %copy
                                    i64 4, label %move
                                    i64 5, label %stopif
                                    i64 6, label %loadrow
                                    i64 7, label %loop
                                    i64 8, label %rowat
                                    i64 9, label %switch ]
call:
  call void %ap(ptr %bp, ptr %cp, i64 0, i64 -1)
  br label %opnext
row:
  %roff = mul i64 %i, %c
  %rv = add i64 %b, %roff
  store i64 %rv, ptr %ap
  br label %opnext
copyrow:
  %coff = mul i64 %i, %b
  %cdst = add i64 %a, %coff
  %cdstp = inttoptr i64 %cdst to ptr
  %csrc = load ptr, ptr %cp
  call void @llvm.memcpy.p0.p0.i64(ptr %cdstp, ptr %csrc, i64 %d, i1 false)
  br label %opnext
copy:
  %xdst = load ptr, ptr %ap
  %xsrc = load ptr, ptr %bp
  call void @llvm.memcpy.p0.p0.i64(ptr %xdst, ptr %xsrc, i64 %c, i1 false)
  br label %opnext
move:
  %mv = load i64, ptr %bp
  store i64 %mv, ptr %ap
  br label %opnext
stopif:
  %sp = load ptr, ptr %ap
  %sv = load i8, ptr %sp
  %stop = icmp eq i8 %sv, 0
  br i1 %stop, label %done, label %opnext
loadrow:
  %loff = mul i64 %i, %c
  %lsrc = add i64 %b, %loff
  %lsrcp = inttoptr i64 %lsrc to ptr
  %ldst = load ptr, ptr %ap
  call void @llvm.memcpy.p0.p0.i64(ptr %ldst, ptr %lsrcp, i64 %d, i1 false)
  br label %opnext
loop:
  %inner = call i64 @tj_loop_run(ptr %ap, i64 %b, i64 %c, i64 %d)
  br label %opnext
rowat:
  %abase = load i64, ptr %bp
  %aoff = mul i64 %i, %c
  %av = add i64 %abase, %aoff
  store i64 %av, ptr %ap
  br label %opnext
switch:
  %xp = load ptr, ptr %ap
  %wide = icmp eq i64 %d, 8
  br i1 %wide, label %sw64, label %sw32
sw32:
  %x32 = load i32, ptr %xp
  %x32w = sext i32 %x32 to i64
  br label %swpick
sw64:
  %x64 = load i64, ptr %xp
  br label %swpick
swpick:
  %x = phi i64 [%x32w, %sw32], [%x64, %sw64]
  %top = sub i64 %c, 1
  %over = icmp sgt i64 %x, %top
  %xhi = select i1 %over, i64 %top, i64 %x
  %under = icmp slt i64 %xhi, 0
  %kb = select i1 %under, i64 0, i64 %xhi
  %boff = mul i64 %kb, 2
  %brow = getelementptr i64, ptr %bp, i64 %boff
  %bops = load ptr, ptr %brow
  %bn = getelementptr i64, ptr %brow, i64 1
  %bnops = load i64, ptr %bn
  %bdone = call i64 @tj_loop_run(ptr %bops, i64 %bnops, i64 1, i64 0)
  br label %opnext
opnext:
  %k1 = add i64 %k, 1
  br label %ophead
next_trip:
  %t1 = add i64 %t, 1
  br label %trip
done:
  %r = phi i64 [%t, %trip], [%t, %stopif]
  ret i64 %r
}
"""

_lock = threading.Lock()
_runner = None
RUNNER_CFUNC = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)


def loop_runner():
    """``run(ops_address, n_ops, n, reverse) -> iterations done``: ctypes releases the GIL around the call."""
    global _runner
    with _lock:
        if _runner is None:
            from .module import target_machine
            tm = target_machine(2)
            ctx = llvm.create_context()  # a context of its own, never llvmlite's global one (see module.py)
            mod = llvm.parse_assembly(_IR, context=ctx)
            mod.triple = tm.triple
            mod.verify()
            engine = llvm.create_mcjit_compiler(mod, tm)
            engine.finalize_object()
            fn = RUNNER_CFUNC(engine.get_function_address("tj_loop_run"))
            _runner = (fn, engine, ctx)  # the engine and its context live as long as the process
    return _runner[0]
