"""The program's entry: a CPython METH_FASTCALL function written as LLVM IR text. It reads the data pointers and
shapes of the numpy arrays it is given straight from numpy's public ``PyArrayObject`` layout into a table, and
runs every step through ``tj_steps``; make_builtin wraps its address as a Python builtin function, so a small
call costs about as much as calling a builtin.

``tj_steps(ptr bufs, ptr dims, i64 start, i64 stop)`` calls each step's body, in order, with the lengths and
buffer pointers it takes, read once from the tables: one function for the whole program, also called by native
loops (loops.py) on a body's own tables. There is no function per step: on the quick tier, per-step ABI wrappers
were about half of LLVM's time. Both functions are written as text (not llvmlite objects): building and printing
them through llvmlite cost more than compiling them.
"""
from __future__ import annotations

import ctypes
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
    of ``tj_steps``, which runs ``calls`` (StepCalls, one per step).

    ``updated``: {input index of an argument whose memory the program writes (lower/inplace.py): the other inputs
    it must not overlap}. When one overlaps the entry runs nothing and returns an argument instead of None (the
    driver then runs on private copies)."""
    return "\n".join(['@"tj_py_none" = external global i64',
                      _entry(plan, symbols, slot_of_input, nslots, updated), _steps(calls)])


def _entry(plan, symbols, slot_of_input, nslots, updated):
    lines = ['define ptr @"tj_entry"(ptr %"self", ptr %"args", i64 %"nargs")', "{", "entry:",
             f'  %"bufs" = alloca ptr, i64 {max(nslots, 1)}', f'  %"dims" = alloca i64, i64 {max(len(symbols), 1)}']
    for i in range(nslots):
        lines += [f'  %"ap{i}" = getelementptr ptr, ptr %"args", i64 {i}', f'  %"a{i}" = load ptr, ptr %"ap{i}"']
    if updated:
        lines += _return_if_overlapping(plan, slot_of_input, updated)
    for i in range(nslots):
        lines += [f'  %"dp{i}" = getelementptr i8, ptr %"a{i}", i64 16',  # PyArrayObject.data
                  f'  %"d{i}" = load ptr, ptr %"dp{i}"',
                  f'  %"bp{i}" = getelementptr ptr, ptr %"bufs", i64 {i}', f'  store ptr %"d{i}", ptr %"bp{i}"']
    for name, k in symbols.items():
        inp, axis = plan.graph.symbols[name]
        obj = f'%"a{slot_of_input[inp]}"'
        lines += [f'  %"sp{k}" = getelementptr i8, ptr {obj}, i64 32',  # PyArrayObject.dimensions
                  f'  %"s{k}" = load ptr, ptr %"sp{k}"',
                  f'  %"lp{k}" = getelementptr i64, ptr %"s{k}", i64 {axis}', f'  %"l{k}" = load i64, ptr %"lp{k}"',
                  f'  %"tp{k}" = getelementptr i64, ptr %"dims", i64 {k}', f'  store i64 %"l{k}", ptr %"tp{k}"']
    lines += ['  call void @"tj_steps"(ptr %"bufs", ptr %"dims", i64 0, i64 -1)',
              '  %"rc" = load i64, ptr @"tj_py_none"', '  %"rc1" = add i64 %"rc", 1',
              '  store i64 %"rc1", ptr @"tj_py_none"', '  ret ptr @"tj_py_none"', "}"]
    return "\n".join(lines)


def _steps(calls):
    """``tj_steps``: each length and buffer pointer a step takes is read from the tables once (steps never write
    the tables), then every body is called."""
    lines = ['define void @"tj_steps"(ptr %"bufs", ptr %"dims", i64 %"start", i64 %"stop")', "{", "entry:"]
    for k in sorted({k for c in calls for k in c.dims}):
        lines += [f'  %"lp{k}" = getelementptr i64, ptr %"dims", i64 {k}', f'  %"l{k}" = load i64, ptr %"lp{k}"']
    for i in sorted({i for c in calls for i in c.slots}):
        lines += [f'  %"bp{i}" = getelementptr ptr, ptr %"bufs", i64 {i}', f'  %"b{i}" = load ptr, ptr %"bp{i}"']
    for c in calls:
        args = ", ".join(['i64 %"start"', 'i64 %"stop"'] + [f'i64 %"l{k}"' for k in c.dims]
                         + [f'ptr %"b{i}"' for i in c.slots])
        lines.append(f'  call void @"{c.fn}"({args})')
    lines += ["  ret void", "}"]
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
    first = f'%"a{slot_of_input[min(updated)]}"'
    return lines + [f'  br i1 {hit}, label %"shared", label %"run"', "shared:",
                    f'  %"ref" = load i64, ptr {first}',  # ob_refcnt
                    '  %"ref1" = add i64 %"ref", 1', f'  store i64 %"ref1", ptr {first}', f"  ret ptr {first}",
                    "run:"]


def _extent(lines, j, slot, buf):
    """(first byte, one past the last byte, size in bytes) of input ``j``, a C-contiguous numpy array of
    ``buf``'s rank and dtype, as IR operands; their lines are appended to ``lines``."""
    t = f"x{j}_"
    lines += [f'  %"{t}p" = getelementptr i8, ptr %"a{slot}", i64 16', f'  %"{t}d" = load ptr, ptr %"{t}p"',
              f'  %"{t}lo" = ptrtoint ptr %"{t}d" to i64']
    size = str(buf.dtype.itemsize)
    if buf.shape:
        lines += [f'  %"{t}sp" = getelementptr i8, ptr %"a{slot}", i64 32', f'  %"{t}s" = load ptr, ptr %"{t}sp"']
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

