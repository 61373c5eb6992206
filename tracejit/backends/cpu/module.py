"""LLVM for the host: the target machine, optimization at each tier, object code loaded with MCJIT
(CompiledModule), the math functions a program links, and the fingerprint of the code generator that keys the
disk cache. Optimized at O3 with vectorizers for the optimized tier, at O0 with LLVM's fast code generator for
the quick first tier.
"""
from __future__ import annotations

import functools
import os
import re
import threading
import time

import llvmlite.binding as llvm
import numpy as np

from . import vecmath_library
from .scalar import BINARY_MATH, INTRINSICS, LIBM, vec_symbol, vecmath_module

_init_lock = threading.Lock()
_target_machine = None


# llvmlite's global LLVM context is not thread-safe (numba compiles in it, and the optimized tier compiles on a
# background thread): tracejit never uses it; every module it builds, optimizes or loads has a context of its own


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



# ------------------------------------------------------------------------------------------------ engines
# The LLVM context of each engine's module, held here rather than by the engine's owner: the garbage collector
# finalizes the objects of a dead reference cycle in any order, and a context freed before the engine whose
# module lives in it makes the engine's disposal a use after free (a segfault in some later collection)
_ENGINE_CONTEXTS: dict = {}


def engine_context(owner):
    """A new LLVM context for the engine ``owner`` will hold; freed by ``release_engine(owner, engine)``."""
    ctx = _ENGINE_CONTEXTS[id(owner)] = llvm.create_context()
    return ctx


def release_engine(owner, engine):
    """Free ``owner``'s engine (its module with it), then the context that module lived in: from ``owner``'s
    ``__del__``."""
    try:
        if engine is not None:
            engine.close()
        ctx = _ENGINE_CONTEXTS.pop(id(owner), None)
        if ctx is not None:
            ctx.close()
    except Exception:  # noqa: BLE001 - interpreter shutdown: llvmlite's own module may be gone already
        pass


class OwnedEngine:
    """An engine compiled from IR text in a context of its own (kernels outside CompiledModule's path)."""

    def __init__(self):
        self.engine = None

    def context(self):
        return engine_context(self)

    def __del__(self):
        try:
            release_engine(self, self.engine)
        except TypeError:  # interpreter shutdown (see CompiledModule.__del__)
            pass


# ------------------------------------------------------------------------------------------------ compile
COMPILES = [0, 0]  # LLVM compiles of this process (quick tier, optimized tier): tests count them


class CompiledModule:
    """A JIT-compiled LLVM module; keeps the engine alive as long as functions are in use.

    With a ``cache_key``, the object code is looked up in the on-disk cache first (a hit skips LLVM's
    optimizer and code generator) and stored there after a miss, together with the optimized IR for display.
    """

    @classmethod
    def from_cache(cls, cache_key, fn_names, before_load=None):
        """The module stored under ``cache_key``, or None (a miss, or an unusable entry). ``before_load``: called
        with the manifest stored beside the object (bytes) before the object is loaded; it makes the symbols the
        object calls resolvable, and returns the kernel modules it loaded (kept alive with this one) or None
        (then the entry is not loaded: an unresolved symbol would abort the process inside LLVM)."""
        from .. import cache
        blob = cache.load(cache_key)
        if blob is None:
            return None
        self = cls.__new__(cls)
        try:
            m = int.from_bytes(blob[:8], "little")
            manifest = blob[8:8 + m]
            n = int.from_bytes(blob[8 + m:16 + m], "little")
            self._bitcode = blob[16 + m:16 + m + n]
            obj = blob[16 + m + n:]
            self.kernels = () if before_load is None else before_load(manifest)
            if self.kernels is None:
                return None
            self._load_object(obj, fn_names)
        except Exception:  # an unusable entry: the caller compiles afresh and overwrites it
            return None
        self.from_cache = True
        return self

    def __init__(self, ir_text, fn_names, vec_pairs, cache_key=None, tier=1, cancelled=None, timings=None,
                 kernels=(), manifest=b"", light=False):
        """``kernels``: the kernel modules whose functions this one calls (kept alive as long as it is);
        ``manifest``: stored with the object, given to ``from_cache``'s ``before_load``; ``light``: see
        ``_optimize``."""
        from .. import cache
        self.from_cache = False
        self.kernels = tuple(kernels)
        self._bitcode, obj = _optimize_and_emit(ir_text, vec_pairs, tier, cancelled, timings, light)
        self.cancelled = obj is None
        if self.cancelled:  # the interpreter is exiting: no machine code is loaded or stored
            return
        COMPILES[tier >= 1] += 1
        # machine code is generated once: the object file both runs here and goes to the disk cache
        self._load_object(obj, fn_names)
        if cache_key and obj:
            cache.store(cache_key, len(manifest).to_bytes(8, "little") + manifest
                        + len(self._bitcode).to_bytes(8, "little") + self._bitcode + obj)

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
        # the engine's (empty) module lives in an LLVM context of its own, never in llvmlite's global one: numba
        # compiles in that global context on whatever thread calls it, and an engine freed by the garbage
        # collector (on any thread, at any moment) would otherwise edit it concurrently
        empty = llvm.parse_assembly("", context=engine_context(self))
        empty.triple = tm.triple
        self.engine = llvm.create_mcjit_compiler(empty, tm)
        vecmath_library.resolve_object(obj)
        self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        self.engine.finalize_object()
        self.addresses = {n: self.engine.get_function_address(n) for n in fn_names}
        if not all(self.addresses.values()):
            raise RuntimeError("cached object lacks a function")

    def __del__(self):
        try:
            release_engine(self, getattr(self, "engine", None))
        except TypeError:  # interpreter shutdown: this module's globals are gone, and LLVM goes with the process
            pass

    def asm(self):
        ctx = llvm.create_context()
        mod = llvm.parse_assembly(self.optimized_ir, context=ctx)
        try:
            return target_machine().emit_assembly(mod)
        finally:
            mod.close()
            ctx.close()


def _optimize_and_emit(ir_text, vec_pairs, tier=1, cancelled=None, timings=None, light=False):
    """(optimized bitcode, object code) of a module, built in an LLVM context of its own that is freed here: the
    constants, types and metadata that optimization adds to a context would otherwise accumulate, compile after
    compile, in llvmlite's global one. ``cancelled()`` true between the stages: (None, None), nothing emitted.
    ``timings``: a dict that gets the seconds of LLVM's optimization and of object emission."""
    tm = target_machine(3 if tier >= 1 else TIER0_CODEGEN)
    ctx = llvm.create_context()
    ir_text, math_texts = math_link(ir_text, vec_pairs, tier)
    if tier < 1:
        ir_text, math_texts = integer_selects(ir_text), [integer_selects(t) for t in math_texts]
    mod = llvm.parse_assembly(ir_text, context=ctx)
    try:
        for text in math_texts:
            mod.link_in(llvm.parse_assembly(text, context=ctx))
        mod.triple = tm.triple
        mod.data_layout = str(tm.target_data)
        mod.verify()
        if cancelled is not None and cancelled():
            return None, None
        t0 = time.perf_counter()
        _optimize(mod, tm, tier, light)
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


def _optimize(mod, tm, tier, light=False):
    """Run LLVM's pipeline for ``tier``: 1 is O3 with loop and SLP vectorization and unrolling (the code that
    runs from then on), or with ``light`` (a step with little work: step_key.is_light) LIGHT_SPEED without them;
    0 is the quick tier, whose code runs a few calls while the optimized tier compiles in the background:
    TIER0_SPEED without vectorizers, emitted at TIER0_CODEGEN."""
    speed = TIER0_SPEED if tier < 1 else LIGHT_SPEED if light else 3
    pto = llvm.create_pipeline_tuning_options(speed_level=speed)
    vectorize = tier >= 1 and not light
    pto.loop_vectorization = vectorize
    pto.slp_vectorization = vectorize
    pto.loop_unrolling = vectorize
    pb = llvm.create_pass_builder(tm, pto)
    pm = pb.getModulePassManager()
    try:
        pm.run(mod, pb)
    finally:
        _free_pass_manager(pm)


_FP_SELECT = re.compile(r'^(\s*)(%"[^"]+"|%[-\w.$]+) = select\s+((?:[a-z]+\s+)*)i1\s+(\S+),\s*(half|float|double)\s+'
                        r'([^,\s]+),\s*(?:half|float|double)\s+(\S+)\s*$', re.M)


def integer_selects(ir_text) -> str:
    """``ir_text`` with every scalar floating-point ``select`` done on the values' bits (bitcast to an integer and
    back). LLVM's x86 code generator at opt level 0 folds a select's operand loaded from memory into a
    ``vblendvps``/``vblendvpd``, whose memory operand is 16 bytes: a 4- or 8-byte element read as 16, past the
    end of the array at its last element, which faults when the array ends at an unmapped page. The quick tier
    emits at that level; the optimized tier (whose InstCombine turns these back into float selects) does not."""
    if " = select " not in ir_text:
        return ir_text

    def rewrite(m):
        pad, out, _flags, cond, ty, a, b = m.groups()
        it = {"half": "i16", "float": "i32", "double": "i64"}[ty]
        stem = out[:-1] + '.' if out.endswith('"') else out + "."
        name = (lambda k: f'{stem}{k}"') if out.endswith('"') else (lambda k: f"{stem}{k}")
        return (f"{pad}{name('ia')} = bitcast {ty} {a} to {it}\n{pad}{name('ib')} = bitcast {ty} {b} to {it}\n"
                f"{pad}{name('is')} = select i1 {cond}, {it} {name('ia')}, {it} {name('ib')}\n"
                f"{pad}{out} = bitcast {it} {name('is')} to {ty}")
    return _FP_SELECT.sub(rewrite, ir_text)


# The quick tier: LLVM's O0 pipeline (always-inline only) and the code generator's fast path (FastISel, fast
# register allocation). Its code is slower, but it runs only until the optimized tier is in, and calls whose
# work outweighs the rest of that compile wait for it (tiers.TieredExecutable).
TIER0_SPEED = 0
TIER0_CODEGEN = 0
LIGHT_SPEED = 2  # the optimized tier's pipeline for steps with little work


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
def vecmath_ir(pairs) -> str:
    return vecmath_module().module_ir(pairs)


def math_link(ir_text, pairs, tier) -> tuple:
    """(``ir_text`` as it is to be parsed, [module texts to link into it]) for a program calling the math
    functions ``pairs``: the optimized tier calls the precompiled vector library's functions
    (vecmath_library.called_in) and links the others' definitions, the quick tier links definitions (math_ir)."""
    called = vecmath_library.called_in(pairs) if tier >= 1 else ()
    if not called:
        return ir_text, math_ir(pairs, tier)
    rest = frozenset(pairs) - called
    ir_text, texts = vecmath_library.link_library(ir_text, called)
    return ir_text, texts + math_ir(rest, tier)


def math_ir(pairs, tier) -> list:
    """Module texts defining the math functions a program calls (``(name, dtype)`` pairs). Both tiers share one
    program IR; they differ here: the optimized tier links the vector library's polynomials (inlined, then
    vectorized), the quick tier one-line definitions calling libm or an LLVM intrinsic (far less code for LLVM),
    except for functions that only the library has."""
    pairs = tuple(sorted(pairs, key=str))
    if tier >= 1:
        return [vecmath_ir(pairs)] if pairs else []
    scalar = tuple(p for p in pairs if p[0] in INTRINSICS or p[0] in LIBM)
    rest = tuple(p for p in pairs if p not in scalar)
    return ([_scalarmath_ir(scalar)] if scalar else []) + ([vecmath_ir(rest)] if rest else [])


@functools.lru_cache(maxsize=64)
def _scalarmath_ir(pairs) -> str:
    """The vector library's symbols defined as calls of the scalar libm function or LLVM intrinsic (the same
    choice MathFunctions makes for a scalar call), always inlined."""
    decls, defs = {}, []
    for name, dt in pairs:
        f64 = np.dtype(dt) == np.float64
        ty = "double" if f64 else "float"
        target = f"{INTRINSICS[name]}.{'f64' if f64 else 'f32'}" if name in INTRINSICS \
            else LIBM[name] + ("" if f64 else "f")
        params = ["%a", "%b"] if name in BINARY_MATH else ["%a"]
        decls[target] = f'declare {ty} @"{target}"({", ".join([ty] * len(params))})'
        args = ", ".join(f"{ty} {p}" for p in params)
        defs.append(f'define linkonce_odr {ty} @"{vec_symbol(name, "f64" if f64 else "f32")}"({args}) #0 {{\n'
                    f'  %r = call {ty} @"{target}"({args})\n  ret {ty} %r\n}}')
    return "\n".join(list(decls.values()) + defs + ["attributes #0 = { alwaysinline nounwind }"])


# the sources whose text decides the machine code of a program and the layout its entry expects from the Python
# driver: every module of the CPU backend and of the lowering (relative to this directory). The fingerprint hashes
# them all, so editing any of them retires what the disk cache holds (a hand-kept list missed new modules, and a
# stale entry whose buffer layout no longer matched the driver crashed the process).
CODEGEN_DIRS = (".", "../../lower")


def codegen_sources() -> list:
    """CODEGEN_DIRS' Python files, relative to this directory, in a fixed order."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = []
    for d in CODEGEN_DIRS:
        root = os.path.normpath(os.path.join(here, d))
        for dirpath, dirnames, files in os.walk(root):
            dirnames[:] = sorted(n for n in dirnames if n != "__pycache__")
            out += [os.path.relpath(os.path.join(dirpath, f), here) for f in sorted(files) if f.endswith(".py")]
    return out


def codegen_fingerprint() -> str:
    """A hash of the code generator's own source, so cached machine code never outlives the code that made it:
    each file's name, size and modification time, as Python's .pyc check and cache.tree_digest (reading the
    files cost ~4 ms of every process's first call)."""
    global _CODEGEN_FP
    if _CODEGEN_FP is None:
        import hashlib
        here = os.path.dirname(os.path.abspath(__file__))
        h = hashlib.sha256()
        for rel in codegen_sources():
            try:
                st = os.stat(os.path.join(here, rel))
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
            except OSError:
                h.update(rel.encode())
        from . import blas
        h.update(blas.fingerprint().encode())
        h.update(b"vecmath-inline" if vecmath_library.INLINE else b"vecmath-library")  # the kernels differ
        _CODEGEN_FP = h.hexdigest()
    return _CODEGEN_FP


_CODEGEN_FP = None

