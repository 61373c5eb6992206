"""The program's entry: a CPython METH_FASTCALL function generated in IR. It reads the data pointers and shapes of
the numpy arrays it is given straight from numpy's public ``PyArrayObject`` layout and runs every step, so a small
call costs about as much as calling a builtin; make_builtin wraps its address as a Python builtin function.
"""
from __future__ import annotations

import ctypes

import llvmlite.ir as ir

from .scalar import I8, I64, PTR


def emit_entry(module, plan, steps_fns, symbols, slot_of_input, nslots, updated=()):
    """``PyObject *entry(PyObject *self, PyObject *const *args, Py_ssize_t nargs)`` (METH_FASTCALL).

    ``updated``: {input index of an argument whose memory the program writes (lower/inplace.py): the other inputs
    it must not overlap}. When one overlaps the entry runs nothing and returns an argument instead of None (the
    driver then runs on private copies)."""
    fnty = ir.FunctionType(PTR, [PTR, PTR, I64])
    fn = ir.Function(module, fnty, "tj_entry")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    _, args, _ = fn.args
    bufs = b.bitcast(b.alloca(PTR, size=max(nslots, 1)), PTR)
    dims = b.bitcast(b.alloca(I64, size=max(len(symbols), 1)), PTR)
    if updated:
        _return_if_overlapping(fn, b, args, plan, slot_of_input, updated)
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


def _extent(b, obj, buf):
    """(first byte, one past the last byte) of a C-contiguous numpy array of ``buf``'s rank and dtype."""
    data = b.ptrtoint(b.load(b.gep(obj, [ir.Constant(I64, 16)], source_etype=I8), typ=PTR), I64)
    size = ir.Constant(I64, buf.dtype.itemsize)
    if buf.shape:
        dimsp = b.load(b.gep(obj, [ir.Constant(I64, 32)], source_etype=I8), typ=PTR)  # PyArrayObject.dimensions
        for axis in range(len(buf.shape)):
            size = b.mul(size, b.load(b.gep(dimsp, [ir.Constant(I64, axis)], source_etype=I64), typ=I64))
    return data, b.add(data, size), size


def _return_if_overlapping(fn, b, args, plan, slot_of_input, updated):
    """Return the first updated argument (a new reference) when an updated argument's bytes overlap another
    input's; an empty array overlaps nothing."""
    extents = {}
    for j in sorted(set(updated) | {k for ks in updated.values() for k in ks}):
        slot = slot_of_input[j]
        obj = b.load(b.gep(args, [ir.Constant(I64, slot)], source_etype=PTR), typ=PTR)
        extents[j] = _extent(b, obj, plan.buffers[slot])
    zero = ir.Constant(I64, 0)
    hit = ir.Constant(ir.IntType(1), 0)
    for j, others in updated.items():
        lo, hi, n = extents[j]
        for k in others:
            lo2, hi2, n2 = extents[k]
            both = b.and_(b.icmp_signed(">", n, zero), b.icmp_signed(">", n2, zero))
            over = b.and_(b.icmp_unsigned("<", lo, hi2), b.icmp_unsigned("<", lo2, hi))
            hit = b.or_(hit, b.and_(both, over))
    shared, run = fn.append_basic_block("shared"), fn.append_basic_block("run")
    b.cbranch(hit, shared, run)
    b.position_at_end(shared)
    obj = b.load(b.gep(args, [ir.Constant(I64, slot_of_input[min(updated)])], source_etype=PTR), typ=PTR)
    rc = b.load(obj, typ=I64)  # ob_refcnt
    b.store(b.add(rc, ir.Constant(I64, 1)), obj)
    b.ret(obj)
    b.position_at_end(run)


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

