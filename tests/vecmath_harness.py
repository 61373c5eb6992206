"""Test/benchmark harness for tracejit.backends.cpu.vecmath: a loop over arrays calling one vecmath function,
linked with ``module_ir``, optimized at O3 for the host CPU, JIT-compiled with MCJIT, called via ctypes."""

from __future__ import annotations

import ctypes
import functools

import llvmlite.binding as llvm
import numpy as np

try:
    from tracejit.backends.cpu import vecmath
except ImportError:     # the package is being edited concurrently: load the module file by itself
    import importlib.util
    import os
    import sys
    _path = os.path.join(os.path.dirname(__file__), os.pardir, "tracejit", "backends", "cpu", "vecmath", "__init__.py")
    _spec = importlib.util.spec_from_file_location("tracejit_backends_cpu_vecmath", _path)
    vecmath = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = vecmath
    _spec.loader.exec_module(vecmath)

_LLTY = {"float64": "double", "float32": "float"}
_CTY = {"float64": ctypes.c_double, "float32": ctypes.c_float}
_ENGINES = []   # keep JIT engines alive


def _new_target_machine():
    """A host TargetMachine of its own: an MCJIT engine takes ownership of the one it is given (and frees it with
    itself), so every engine gets a new one; passes and data layouts share ``_target_machine()``."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, codemodel="jitdefault")


_target_machine = functools.lru_cache(maxsize=None)(_new_target_machine)


def kernel_ir(name: str, dtype) -> str:
    dt = np.dtype(dtype).name
    ty = _LLTY[dt]
    sym = vecmath.symbol(name, dt)
    nargs = 2 if name in vecmath.BINARY else 1
    params = ", ".join(f"ptr noalias nocapture readonly %in{i}" for i in range(nargs))
    loads = []
    for i in range(nargs):
        loads.append(f"  %p{i} = getelementptr inbounds {ty}, ptr %in{i}, i64 %i\n"
                     f"  %v{i} = load {ty}, ptr %p{i}, align 4")
    callargs = ", ".join(f"{ty} %v{i}" for i in range(nargs))
    return f"""
declare {ty} @{sym}({", ".join([ty] * nargs)})

define void @kernel({params}, ptr noalias nocapture %out, i64 %n) {{
entry:
  %nz = icmp sgt i64 %n, 0
  br i1 %nz, label %loop, label %exit
loop:
  %i = phi i64 [ 0, %entry ], [ %inext, %loop ]
{chr(10).join(loads)}
  %r = call {ty} @{sym}({callargs})
  %po = getelementptr inbounds {ty}, ptr %out, i64 %i
  store {ty} %r, ptr %po, align 4
  %inext = add nuw nsw i64 %i, 1
  %done = icmp eq i64 %inext, %n
  br i1 %done, label %exit, label %loop
exit:
  ret void
}}
"""


def optimized_module(name: str, dtype):
    tm = _target_machine()
    mod = llvm.parse_assembly(kernel_ir(name, dtype))
    lib = llvm.parse_assembly(vecmath.module_ir([(name, dtype)]))
    lib.verify()
    mod.link_in(lib)
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(mod, pb)
    mod.verify()
    return mod


@functools.lru_cache(maxsize=None)
def compiled(name: str, dtype):
    """Returns f(*arrays) -> out array for vecmath function ``name``."""
    dt = np.dtype(dtype).name
    mod = optimized_module(name, dt)
    ir_text = str(mod)
    engine = llvm.create_mcjit_compiler(mod, _new_target_machine())
    engine.finalize_object()
    _ENGINES.append(engine)
    addr = engine.get_function_address("kernel")
    nargs = 2 if name in vecmath.BINARY else 1
    cfunc = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * (nargs + 1)), ctypes.c_int64)(addr)

    def call(*arrays, out=None):
        arrays = [np.ascontiguousarray(a, dtype=dt) for a in arrays]
        if len(arrays) == 2:
            arrays = list(np.broadcast_arrays(*arrays))
            arrays = [np.ascontiguousarray(a) for a in arrays]
        if out is None:
            out = np.empty(arrays[0].shape, dtype=dt)
        cfunc(*[a.ctypes.data for a in arrays], out.ctypes.data, out.size)
        return out

    call.ir = ir_text
    return call


@functools.lru_cache(maxsize=None)
def library_compiled(name: str, dtype):
    """Like ``compiled``, but built the way tracejit's optimized tier builds a kernel (module.CompiledModule):
    the loop calls the precompiled library's vector variant (backends/cpu/vecmath_library.py) instead of
    inlining the polynomial, for every function (also those the library's policy leaves inlined)."""
    from tracejit.backends.cpu import module as M, vecmath_library as L
    dt = np.dtype(dtype).name
    policy, L.called_in = L.called_in, set
    try:
        mod = M.CompiledModule(kernel_ir(name, dt), ["kernel"], frozenset({(name, np.dtype(dt))}), tier=1)
    finally:
        L.called_in = policy
    _ENGINES.append(mod)
    nargs = 2 if name in vecmath.BINARY else 1
    cfunc = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * (nargs + 1)), ctypes.c_int64)(mod.addresses["kernel"])

    def call(*arrays, out=None):
        arrays = [np.ascontiguousarray(a, dtype=dt) for a in np.broadcast_arrays(*arrays)]
        if out is None:
            out = np.empty(arrays[0].shape, dtype=dt)
        cfunc(*[a.ctypes.data for a in arrays], out.ctypes.data, out.size)
        return out

    call.ir = mod.optimized_ir
    call.asm = mod.asm()
    return call


def ulp_distance(a, b):
    """|a - b| in units of the integer ordering of float bits (nan vs nan = 0, nan vs number = huge)."""
    a = np.asarray(a)
    b = np.asarray(b)
    it = {4: np.int32, 8: np.int64}[a.dtype.itemsize]
    ia = a.view(it).astype(np.int64)
    ib = b.view(it).astype(np.int64)
    mask = np.int64((1 << (8 * a.dtype.itemsize - 1)) - 1)
    # map to a monotonic integer scale: negative floats -> -(magnitude)
    ia = np.where(ia < 0, -(ia & mask), ia)
    ib = np.where(ib < 0, -(ib & mask), ib)
    d = np.abs(ia - ib).astype(np.float64)
    na, nb = np.isnan(a), np.isnan(b)
    d = np.where(na & nb, 0.0, d)
    d = np.where(na ^ nb, np.inf, d)
    return d
