"""The compiled entry as a Python builtin (backends/cpu/entry.make_builtin): its method definition must outlive the
builtin even when the garbage collector frees them together.

CPython's ``meth_dealloc`` reads the definition's flags before it releases ``self``. When the builtin sits in a
reference cycle (an executable and its driver make one), the collector runs ``tp_clear`` on the cycle's objects
before their deallocation; a ctypes structure's ``tp_clear`` frees its memory, so a definition kept in one was
read after it was freed (valgrind: 'Invalid read of size 1 ... inside a block of size 32 free'd ... PyCData_clear'),
and a flag bit from reused memory made CPython release a pointer read past the builtin: CI's random segfaults in
later collections. The definition now lives in a ``bytes`` object, which has no ``tp_clear``."""
import ctypes
import gc
import struct

import numpy as np

import tracejit as tj
from tracejit.backends.cpu.entry import METH_FASTCALL, make_builtin

M_ML_OFFSET = 16  # PyCFunctionObject: ob_refcnt, ob_type, then m_ml (CPython 3.8 to 3.13)
CDATA = ctypes._SimpleCData.__mro__[1]  # _ctypes._CData: the base of every ctypes instance, structures too


def _definition_address(fn) -> int:
    return ctypes.c_void_p.from_address(id(fn) + M_ML_OFFSET).value


def _owner_of_definition(fn):
    """The object in the builtin's ``self`` whose own memory holds the definition the builtin points to."""
    address = _definition_address(fn)
    for obj in fn.__self__:
        if isinstance(obj, bytes) and ctypes.cast(ctypes.c_char_p(obj), ctypes.c_void_p).value == address:
            return obj
        if isinstance(obj, CDATA) and ctypes.addressof(obj) == address:
            return obj
    return None


def test_the_definition_lives_in_memory_the_collector_never_clears():
    fn = make_builtin(0x1234, owner=None)
    owner = _owner_of_definition(fn)
    assert owner is not None, "the builtin's method definition is not held by its self slot"
    # a ctypes object (or any object with tp_clear) would be cleared, its memory freed, before the builtin's
    # deallocation reads the definition
    assert type(owner) is bytes and not gc.is_tracked(owner)
    assert not any(isinstance(o, CDATA) for o in fn.__self__)


def test_the_definition_reads_back():
    fn = make_builtin(0xABCDEF, owner=None, name=b"tracejit_probe")
    name, meth, flags, doc = struct.unpack("@PPiP", ctypes.string_at(_definition_address(fn), 32))
    assert (meth, flags, doc) == (0xABCDEF, METH_FASTCALL, 0)
    assert ctypes.string_at(name) == b"tracejit_probe" and fn.__name__ == "tracejit_probe"


def test_compiled_programs_in_reference_cycles_are_collected_and_the_survivors_still_run():
    x = np.linspace(-1.0, 1.0, 64)
    keep = []
    for i in range(40):
        f = tj.jit(lambda v, i=i: np.tanh(v) * (i + 0.5))
        f(x)
        exe = next(e for es in f._specs.values() for e in es).exe
        exe.cycle = exe  # the executable in a cycle with its own driver, as in real programs
        if i % 8 == 0:
            keep.append((i, f))
        del f, exe
        gc.collect()
    for i, f in keep:
        np.testing.assert_allclose(f(x), np.tanh(x) * (i + 0.5), rtol=1e-12)
