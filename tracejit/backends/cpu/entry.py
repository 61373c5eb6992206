"""The program's entry: a CPython METH_FASTCALL function written as LLVM IR text. It reads the data pointers and
shapes of the numpy arrays it is given straight from numpy's public ``PyArrayObject`` layout into a table, and
runs every step through ``tj_steps``; make_builtin wraps its address as a Python builtin function, so a small
call costs about as much as calling a builtin.

``tj_steps(ptr bufs, ptr dims, i64 start, i64 stop)`` runs the steps in order (native loops call it too, on a
body's own tables, loops.py). Both are loops over constant tables: the program's code does not grow with its
steps, only its data does. LLVM's time per generated call (~0.1 ms at the quick tier, superlinear in a long
block) made per-step code most of a deep program's compile: first one ABI wrapper function per step, then one
call per step. A step is a row ``(caller, indices)``: the caller, one per distinct body, reads the lengths and
buffer pointers that the body takes from the tables at the step's indices, and calls it. The text is written
directly (not llvmlite objects): building and printing it through llvmlite cost more than compiling it.
"""
from __future__ import annotations

import ctypes
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class StepCall:
    """How a program calls one step: its body's function name and, in the order the body takes them, the index
    in ``dims`` of each length and the buffer slot of each pointer (after ``start`` and ``stop``)."""
    fn: str
    dims: tuple
    slots: tuple


def program_text(plan, calls, symbols, slot_of_input, nslots, updated=()) -> str:
    """The text of ``tj_entry``, ``PyObject *entry(PyObject *self, PyObject *const *args, Py_ssize_t nargs)``, and
    of ``tj_steps``, which runs ``calls`` (StepCalls, one per step), with their tables and callers.

    ``updated``: {input index of an argument whose memory the program writes (lower/inplace.py): the other inputs
    it must not overlap}. When one overlaps the entry runs nothing and returns an argument instead of None (the
    driver then runs on private copies)."""
    return "\n".join(['@"tj_py_none" = external global i64', _entry(plan, symbols, slot_of_input, nslots, updated)]
                     + _steps(calls))


def _table(name, ty, values) -> str:
    return f'@"{name}" = private unnamed_addr constant [{len(values)} x {ty}] [{", ".join(values)}]'


def _counted_loop(lines, name, pred, n, body):
    """Lines of ``for %name in [0, n)`` (n >= 1) entered from block ``pred``; ``body`` appends the loop's lines.
    Returns the label of the block after the loop."""
    lines += [f'  br label %"{name}.loop"', f"{name}.loop:",
              f'  %"{name}" = phi i64 [0, %"{pred}"], [%"{name}.next", %"{name}.loop"]']
    body()
    lines += [f'  %"{name}.next" = add i64 %"{name}", 1', f'  %"{name}.more" = icmp slt i64 %"{name}.next", {n}',
              f'  br i1 %"{name}.more", label %"{name}.loop", label %"{name}.done"', f"{name}.done:"]
    return f"{name}.done"


def _entry(plan, symbols, slot_of_input, nslots, updated):
    pairs = [None] * len(symbols)
    for name, k in symbols.items():
        inp, axis = plan.graph.symbols[name]
        pairs[k] = (slot_of_input[inp], axis)
    lines = ([_table("tj_symbols", "i64", [f"i64 {v}" for pair in pairs for v in pair])] if pairs else []) + [
        'define ptr @"tj_entry"(ptr %"self", ptr %"args", i64 %"nargs")', "{", "entry:",
        f'  %"bufs" = alloca ptr, i64 {max(nslots, 1)}', f'  %"dims" = alloca i64, i64 {max(len(symbols), 1)}']
    pred = "entry"
    if updated:
        lines += _return_if_overlapping(plan, slot_of_input, updated)
        pred = "run"
    if nslots:
        pred = _counted_loop(lines, "i", pred, nslots, lambda: lines.extend([
            '  %"ap" = getelementptr ptr, ptr %"args", i64 %"i"', '  %"a" = load ptr, ptr %"ap"',
            '  %"dp" = getelementptr i8, ptr %"a", i64 16', '  %"d" = load ptr, ptr %"dp"',  # PyArrayObject.data
            '  %"bp" = getelementptr ptr, ptr %"bufs", i64 %"i"', '  store ptr %"d", ptr %"bp"']))
    if pairs:  # each length: (buffer slot of an input, axis)
        pred = _counted_loop(lines, "k", pred, len(pairs), lambda: lines.extend([
            '  %"k2" = mul i64 %"k", 2', '  %"kp" = getelementptr i64, ptr @"tj_symbols", i64 %"k2"',
            '  %"slot" = load i64, ptr %"kp"', '  %"axp" = getelementptr i64, ptr %"kp", i64 1',
            '  %"axis" = load i64, ptr %"axp"',
            '  %"sap" = getelementptr ptr, ptr %"args", i64 %"slot"', '  %"sa" = load ptr, ptr %"sap"',
            '  %"shp" = getelementptr i8, ptr %"sa", i64 32', '  %"sh" = load ptr, ptr %"shp"',  # .dimensions
            '  %"lp" = getelementptr i64, ptr %"sh", i64 %"axis"', '  %"l" = load i64, ptr %"lp"',
            '  %"tp" = getelementptr i64, ptr %"dims", i64 %"k"', '  store i64 %"l", ptr %"tp"']))
    lines += ['  call void @"tj_steps"(ptr %"bufs", ptr %"dims", i64 0, i64 -1)',
              '  %"rc" = load i64, ptr @"tj_py_none"', '  %"rc1" = add i64 %"rc", 1',
              '  store i64 %"rc1", ptr @"tj_py_none"', '  ret ptr @"tj_py_none"', "}"]
    return "\n".join(lines)


def _steps(calls) -> list:
    """``tj_steps``, the table of its steps and a caller per distinct body."""
    head = 'define void @"tj_steps"(ptr %"bufs", ptr %"dims", i64 %"start", i64 %"stop")'
    if not calls:
        return [head, "{", "entry:", "  ret void", "}"]
    callers, indices, rows = {}, [], []
    for c in calls:
        caller = callers.setdefault(c.fn, f"tj_call{len(callers)}")
        rows.append(f'{{ ptr, ptr }} {{ ptr @"{caller}", ptr getelementptr (i64, ptr @"tj_args", i64 {len(indices)}) }}')
        indices += c.dims + c.slots
    first = {c.fn: c for c in reversed(calls)}
    out = [_table("tj_args", "i64", [f"i64 {i}" for i in indices] or ["i64 0"]),
           _table("tj_calls", "{ ptr, ptr }", rows)]
    out += [_caller(callers[fn], first[fn]) for fn in callers]
    lines = [head, "{", "entry:"]
    _counted_loop(lines, "j", "entry", len(calls), lambda: lines.extend([
        '  %"row" = getelementptr { ptr, ptr }, ptr @"tj_calls", i64 %"j"', '  %"f" = load ptr, ptr %"row"',
        '  %"ixp" = getelementptr i8, ptr %"row", i64 8', '  %"ix" = load ptr, ptr %"ixp"',
        '  call void %"f"(i64 %"start", i64 %"stop", ptr %"bufs", ptr %"dims", ptr %"ix")']))
    return out + ["\n".join(lines + ["  ret void", "}"])]


def _caller(name, call) -> str:
    """``void caller(start, stop, bufs, dims, ix)``: the body of ``call`` on the lengths and buffers at the step's
    indices ``ix`` (its lengths' indices in ``dims``, then its buffers' slots)."""
    lines = [f'define internal void @"{name}"(i64 %"start", i64 %"stop", ptr %"bufs", ptr %"dims", ptr %"ix")',
             "{", "entry:"]
    args = ['i64 %"start"', 'i64 %"stop"']
    for j in range(len(call.dims) + len(call.slots)):
        table, ty = ('dims', 'i64') if j < len(call.dims) else ('bufs', 'ptr')
        lines += [f'  %"q{j}" = getelementptr i64, ptr %"ix", i64 {j}', f'  %"x{j}" = load i64, ptr %"q{j}"',
                  f'  %"p{j}" = getelementptr {ty}, ptr %"{table}", i64 %"x{j}"', f'  %"v{j}" = load {ty}, ptr %"p{j}"']
        args.append(f'{ty} %"v{j}"')
    lines += [f'  call void @"{call.fn}"({", ".join(args)})', "  ret void", "}"]
    return "\n".join(lines)


def _return_if_overlapping(plan, slot_of_input, updated) -> list:
    """Lines returning the first updated argument (a new reference) when an updated argument's bytes overlap
    another input's; an empty array overlaps nothing."""
    lines, extents = [], {}
    for j in sorted(set(updated) | {k for ks in updated.values() for k in ks}):
        extents[j] = _extent(lines, j, slot_of_input[j], plan.buffers[slot_of_input[j]])
    hit, n = "false", 0
    for j, others in updated.items():
        lo, hi, size = extents[j]
        for k in others:
            lo2, hi2, size2 = extents[k]
            t = f"o{n}_"
            n += 1
            lines += [f'  %"{t}1" = icmp sgt i64 {size}, 0', f'  %"{t}2" = icmp sgt i64 {size2}, 0',
                      f'  %"{t}3" = and i1 %"{t}1", %"{t}2"', f'  %"{t}4" = icmp ult i64 {lo}, {hi2}',
                      f'  %"{t}5" = icmp ult i64 {lo2}, {hi}', f'  %"{t}6" = and i1 %"{t}4", %"{t}5"',
                      f'  %"{t}7" = and i1 %"{t}3", %"{t}6"', f'  %"{t}8" = or i1 {hit}, %"{t}7"']
            hit = f'%"{t}8"'
    first = f'%"x{min(updated)}_o"'
    return lines + [f'  br i1 {hit}, label %"shared", label %"run"', "shared:",
                    f'  %"ref" = load i64, ptr {first}',  # ob_refcnt
                    '  %"ref1" = add i64 %"ref", 1', f'  store i64 %"ref1", ptr {first}', f"  ret ptr {first}",
                    "run:"]


def _extent(lines, j, slot, buf):
    """(first byte, one past the last byte, size in bytes) of input ``j``, a C-contiguous numpy array of
    ``buf``'s rank and dtype, as IR operands; their lines are appended to ``lines``."""
    t = f"x{j}_"
    lines += [f'  %"{t}op" = getelementptr ptr, ptr %"args", i64 {slot}', f'  %"{t}o" = load ptr, ptr %"{t}op"',
              f'  %"{t}p" = getelementptr i8, ptr %"{t}o", i64 16', f'  %"{t}d" = load ptr, ptr %"{t}p"',
              f'  %"{t}lo" = ptrtoint ptr %"{t}d" to i64']
    size = str(buf.dtype.itemsize)
    if buf.shape:
        lines += [f'  %"{t}sp" = getelementptr i8, ptr %"{t}o", i64 32', f'  %"{t}s" = load ptr, ptr %"{t}sp"']
        for axis in range(len(buf.shape)):
            lines += [f'  %"{t}n{axis}p" = getelementptr i64, ptr %"{t}s", i64 {axis}',
                      f'  %"{t}n{axis}" = load i64, ptr %"{t}n{axis}p"',
                      f'  %"{t}z{axis}" = mul i64 {size}, %"{t}n{axis}"']
            size = f'%"{t}z{axis}"'
    lines.append(f'  %"{t}hi" = add i64 %"{t}lo", {size}')
    return f'%"{t}lo"', f'%"{t}hi"', size


PyCFunction_NewEx = ctypes.pythonapi.PyCFunction_NewEx
PyCFunction_NewEx.restype = ctypes.py_object
PyCFunction_NewEx.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.c_void_p]

METH_FASTCALL = 0x80
_METHOD_DEF = struct.Struct("@PPiP")  # CPython's PyMethodDef: ml_name, ml_meth, ml_flags, ml_doc


def _buffer_address(data: bytes) -> int:
    """The address of a bytes object's own characters (ctypes points a c_char_p at them, no copy)."""
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value


def make_builtin(address, owner=None, name=b"tracejit_program"):
    """Wrap a METH_FASTCALL function pointer as a Python builtin function (no ctypes on the call path).

    The builtin's ``self`` slot (passed to the entry, which ignores it) holds ``owner`` (the CompiledModule whose
    machine code ``address`` points into) and the method definition: whoever keeps the builtin, even after the
    executable is gone, keeps the code and the definition it points to alive, so a call never runs freed code.

    The definition lives in a ``bytes`` object, never in a ctypes structure: when the garbage collector frees a
    reference cycle holding the builtin (an executable and its driver make one), it clears a ctypes object's
    memory (its ``tp_clear``) before it deallocates the builtin, and CPython's ``meth_dealloc`` reads the
    definition's flags first. A flag bit read from freed, reused memory made it release a pointer read past the
    builtin: random heap corruption, a crash in some later collection. Tuples and bytes have no ``tp_clear``."""
    name = bytes(name)
    definition = _METHOD_DEF.pack(_buffer_address(name), address, METH_FASTCALL, 0)
    return PyCFunction_NewEx(_buffer_address(definition), (owner, definition, name), None)
