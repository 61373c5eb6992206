"""The vector math library compiled once per process: each of vecmath's functions (per dtype) becomes machine
code of its own, a scalar symbol ``tj_sin_f64`` and explicit vector variants ``tj_sin_f64_v4`` (one per width
the host's registers hold), kept in the disk cache like kernels and registered by symbol.

Why: linked into each kernel as IR, a function's polynomial was inlined into every copy of every loop the loop
vectorizer makes (interleaved body, epilogue, scalar remainder), and LLVM's optimizer and code generator spent
most of a loop body's compile time on those copies. Kernels now only declare the scalar function, with LLVM's
vector-function ABI attribute naming its variants; the loop vectorizer widens the call into a call of the variant
of its width. The variants are the same polynomials: each is a loop over its lanes calling the scalar code,
vectorized (forced, at exactly the variant's width) when the library is compiled, so results are bit for bit
those of the inlined code.
"""
from __future__ import annotations

import os
import re
import struct
import threading

import numpy as np

# TRACEJIT_VECMATH_INLINE=1: the former way (each kernel links the polynomials as IR and inlines them), for
# measuring one against the other
INLINE = os.environ.get("TRACEJIT_VECMATH_INLINE", "").strip() not in ("", "0")

# The functions kernels call rather than inline. A call costs ~2 ns per vector of lanes (the call, constants
# reloaded each time, spills around it), which the long float64 functions hide (sin, cos, tan: within ~5% of
# inlined) and the short ones do not (float64 exp, tanh, arctan2: 10-30% slower); float32 code runs as fast or
# faster called (the variant's float64 internals get registers of their own), except the short four left out
INLINE_F64 = frozenset({"exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "power", "arctan2", "tanh", "cbrt",
                        "cosh", "sinh", "arcsin", "arccos", "arctan", "hypot"})
INLINE_F32 = frozenset({"arctan", "cosh", "sinh", "hypot"})
# inlined together, sin and cos of one argument share their range reduction (half the work of two calls)
SHARED_REDUCTION = frozenset({"sin", "cos"})
_SCALAR_ATTRS = "nounwind willreturn nofree nosync memory(none)"
_lock = threading.Lock()
_loaded: dict = {}  # (name, "f64"/"f32") -> the engine holding its code (never freed: kernels call into it)


def called(name, dtype) -> bool:
    """Whether kernels call function ``name`` for ``dtype`` from the library (else they inline its IR)."""
    return not INLINE and name not in (INLINE_F64 if _suffix(dtype) == "f64" else INLINE_F32)


def called_in(pairs) -> set:
    """The ``(name, dtype)`` pairs of one module's math that it calls from the library."""
    both = {_suffix(dt) for name, dt in pairs if name == "sin"} & {_suffix(dt) for name, dt in pairs if name == "cos"}
    return {(name, dt) for name, dt in pairs
            if called(name, dt) and not (name in SHARED_REDUCTION and _suffix(dt) in both)}


def _suffix(dtype) -> str:
    return "f64" if np.dtype(dtype) == np.float64 else "f32"


def _elem(suffix) -> tuple:
    """(LLVM type, bits) of a suffix's element."""
    return ("double", 64) if suffix == "f64" else ("float", 32)


def vector_widths(suffix) -> tuple:
    """The lane counts of the variants: what the host's vector registers hold (and 256 bits on AVX-512 hosts,
    whose cost model often prefers half-width vectors)."""
    from .scalar import llvm_features
    feats = llvm_features()
    bits = 512 if "+avx512f" in feats else 256 if "+avx" in feats else 128
    elem = _elem(suffix)[1]
    return tuple(sorted({bits // elem, min(bits, 256) // elem}))


def _nargs(name) -> int:
    from .scalar import BINARY_MATH
    return 2 if name in BINARY_MATH else 1


# ------------------------------------------------------------------------------------------------ the kernel side
def _abi_attribute(name, suffix) -> str:
    """The declaration attributes that let the loop vectorizer call ``tj_<name>_<suffix>_v<W>``."""
    from .scalar import vec_symbol
    sym = vec_symbol(name, suffix)
    params = "v" * _nargs(name)
    variants = ",".join(f"_ZGV_LLVM_N{w}{params}_{sym}({sym}_v{w})" for w in vector_widths(suffix))
    return f'{_SCALAR_ATTRS} "vector-function-abi-variant"="{variants}"'


def _variant_declarations(pairs) -> str:
    """A module declaring the variants, kept through optimization (``llvm.compiler.used``) until the loop
    vectorizer looks them up by name."""
    from .scalar import vec_symbol
    decls, used = [], []
    for name, suffix in pairs:
        ty = _elem(suffix)[0]
        sym = vec_symbol(name, suffix)
        for w in vector_widths(suffix):
            vt = f"<{w} x {ty}>"
            decls.append(f"declare {vt} @{sym}_v{w}({', '.join([vt] * _nargs(name))}) {_SCALAR_ATTRS}")
            used.append(f"ptr @{sym}_v{w}")
    decls.append(f"@llvm.compiler.used = appending global [{len(used)} x ptr] [{', '.join(used)}], "
                 'section "llvm.metadata"')
    return "\n".join(decls) + "\n"


_DECLARE = re.compile(r'^declare (double|float) @"?(tj_([a-z0-9]+)_(f32|f64))"?\((.*)\)[^\n]*$', re.M)


def link_library(ir_text, pairs) -> tuple:
    """(``ir_text`` with the library functions' declarations carrying the vector-ABI attribute, [the variants'
    declarations]): what an optimized-tier module links instead of the polynomials. Starts compiling (or
    loading) the library's functions for ``pairs``; the module's object code finds them when it is loaded."""
    keys = sorted({(name, _suffix(dt)) for name, dt in pairs})
    prefetch(keys)
    wanted = set(keys)

    def rewrite(m):
        if (m.group(3), m.group(4)) not in wanted:
            return m.group(0)
        return f'declare {m.group(1)} @"{m.group(2)}"({m.group(5)}) {_abi_attribute(m.group(3), m.group(4))}'
    return _DECLARE.sub(rewrite, ir_text), [_variant_declarations(keys)]


# ------------------------------------------------------------------------------------------------ the library side
def library_ir(name, suffix) -> str:
    """The module of one function: vecmath's scalar definition (exported), and per width a variant that runs
    the scalar code over its lanes in a loop the vectorizer must widen at exactly that width."""
    from . import vecmath
    from .scalar import vec_symbol
    dtype = np.float64 if suffix == "f64" else np.float32
    text = vecmath.module_ir([(name, dtype)])
    # exported scalar code; the constant tables private to this object (each function's object has its own)
    text = text.replace("define linkonce_odr ", "define ").replace("linkonce_odr unnamed_addr constant",
                                                                  "internal unnamed_addr constant")
    sym, ty = vec_symbol(name, suffix), _elem(suffix)[0]
    args = ["%x", "%y"][:_nargs(name)]
    parts = [text, '!1 = !{!"llvm.loop.vectorize.enable", i1 true}', '!2 = !{!"llvm.loop.unroll.disable"}']
    for w in vector_widths(suffix):
        vt = f"<{w} x {ty}>"
        lanes = "\n".join(f"  %in{i} = alloca [{w} x {ty}], align 64\n  store {vt} {a}, ptr %in{i}"
                          for i, a in enumerate(args))
        loads = "\n".join(f"  %p{i} = getelementptr {ty}, ptr %in{i}, i64 %i\n  %v{i} = load {ty}, ptr %p{i}"
                          for i in range(len(args)))
        call_args = ", ".join(f"{ty} %v{i}" for i in range(len(args)))
        parts.append(f"""define {vt} @{sym}_v{w}({', '.join(f'{vt} {a}' for a in args)}) #1 {{
entry:
{lanes}
  %out = alloca [{w} x {ty}], align 64
  br label %loop
loop:
  %i = phi i64 [0, %entry], [%next, %loop]
{loads}
  %r = call {ty} @{sym}({call_args})
  %q = getelementptr {ty}, ptr %out, i64 %i
  store {ty} %r, ptr %q
  %next = add i64 %i, 1
  %done = icmp eq i64 %next, {w}
  br i1 %done, label %exit, label %loop, !llvm.loop !{10 + w}
exit:
  %res = load {vt}, ptr %out
  ret {vt} %res
}}
!{10 + w} = distinct !{{!{10 + w}, !1, !2, !{100 + w}}}
!{100 + w} = !{{!"llvm.loop.vectorize.width", i32 {w}}}""")
    parts.append(f"attributes #1 = {{ {_SCALAR_ATTRS} }}")
    return "\n".join(parts) + "\n"


def _symbols(name, suffix) -> list:
    from .scalar import vec_symbol
    sym = vec_symbol(name, suffix)
    return [sym] + [f"{sym}_v{w}" for w in vector_widths(suffix)]


def _cache_key(name, suffix) -> str:
    """The disk cache's key of one function's object: library_ir's text is a function of these (the
    fingerprint hashes vecmath's sources and this module's), so a hit neither builds the text nor imports
    vecmath (its tables take ~10 ms)."""
    from .. import cache
    from .module import codegen_fingerprint
    return cache.make_key("vecmath-library", name, suffix, vector_widths(suffix), codegen_fingerprint(),
                          cache.target_description("cpu"), *cache.versions())


def ensure(keys) -> None:
    """Make the functions ``keys`` (``(name, "f64"/"f32")``) callable by symbol: loaded from the disk cache,
    or compiled (once per process) and stored there."""
    with _lock:
        for key in keys:
            if key not in _loaded:
                _loaded[key] = _load_or_compile(*key)


_prefetched: set = set()
_prefetch_lock = threading.Lock()  # not _lock: that one is held through a compile


def prefetch(keys) -> None:
    """Start making the functions ``keys`` callable on a background thread: a kernel needs them only when its
    object is loaded (resolve_object waits for them there), so a cold compile of the library (tens of ms for
    ``sin``) overlaps with LLVM's work on the kernel itself."""
    with _prefetch_lock:
        keys = sorted(k for k in set(keys) if k not in _prefetched and k not in _loaded)
        _prefetched.update(keys)
    if not keys:
        return
    from .jobs import start_background

    def run(cancelled):
        if not cancelled():
            try:
                ensure(keys)
            except Exception:  # noqa: BLE001 - the optimized tier calls ensure itself and reports the error
                pass
    start_background(run, "tracejit vector math library")


def _load_or_compile(name, suffix):
    import llvmlite.binding as llvm
    from .. import cache
    from .module import _optimize, engine_context, target_machine
    key = _cache_key(name, suffix)
    obj = cache.load(key)
    tm = target_machine()
    if obj is None:
        ctx = llvm.create_context()
        mod = llvm.parse_assembly(library_ir(name, suffix), context=ctx)
        try:
            mod.triple, mod.data_layout = tm.triple, str(tm.target_data)
            _optimize(mod, tm, 1)
            obj = tm.emit_object(mod)
        finally:
            mod.close()
            ctx.close()
        cache.store(key, obj)
    owner = _LibraryFunction()
    empty = llvm.parse_assembly("", context=engine_context(owner))
    empty.triple = tm.triple
    owner.engine = llvm.create_mcjit_compiler(empty, target_machine())
    owner.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
    owner.engine.finalize_object()
    for sym in _symbols(name, suffix):
        addr = owner.engine.get_function_address(sym)
        if not addr:
            raise RuntimeError(f"the vector math library's object lacks {sym}")
        llvm.add_symbol(sym, addr)
    return owner


class _LibraryFunction:
    """Holds one function's engine for the life of the process (kernels anywhere may call into it)."""
    engine = None


# ------------------------------------------------------------------------------------------------ loading objects
_SYMBOL = re.compile(r"^tj_([a-z0-9]+)_(f32|f64)(?:_v\d+)?$")


def resolve_object(obj: bytes) -> None:
    """Before an object file is loaded: make the library functions it calls resolvable (an object from the disk
    cache may call functions this process has not compiled yet; an unresolved symbol aborts inside LLVM)."""
    from .scalar import VEC_FUNCTIONS
    keys = set()
    for sym in undefined_symbols(obj):
        m = _SYMBOL.match(sym)
        if m and m.group(1) in VEC_FUNCTIONS:
            keys.add((m.group(1), m.group(2)))
    if keys:
        ensure(sorted(keys))


def undefined_symbols(obj: bytes) -> set:
    """The names an ELF64 object file leaves undefined; for any other format every ``tj_`` name it mentions
    (a superset: at worst a library function is loaded that nothing calls)."""
    if obj[:5] != b"\x7fELF\x02" or obj[5] != 1:
        return {s.decode() for s in re.findall(rb"tj_[a-z0-9]+_f(?:32|64)(?:_v\d+)?(?=\x00)", obj)}
    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + i * shentsize) for i in range(shnum)]
    out = set()
    for _, sh_type, _, _, offset, size, link, _, _, entsize in sections:
        if sh_type != 2 or not entsize:  # SHT_SYMTAB
            continue
        strtab = sections[link][4]
        for at in range(offset, offset + size, entsize):
            st_name, _, _, st_shndx = struct.unpack_from("<IBBH", obj, at)
            if st_shndx == 0 and st_name:  # SHN_UNDEF
                end = obj.index(b"\x00", strtab + st_name)
                out.add(obj[strtab + st_name:end].decode("ascii", "replace"))
    return out
