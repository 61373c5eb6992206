"""Step functions compiled once per structure, shared by every program of the process and kept on disk one by one.

A program's IR (executable._build_ir) is split here into small modules: one per distinct step body (the impl
function that StepEmitter makes), renamed after a hash of its own module text, and the program's entry module
(``tj_entry`` and ``tj_steps``, entry.py) that calls them by those names. Two programs, or two layers of one model, that
lower to the same body (same loop nest, same arithmetic, same dtypes: lengths and buffers are arguments) thus get
the same module text and the same key: the library compiles it once (or loads its object from the disk cache)
and registers its address as a global symbol that the entries' MCJIT engines resolve. A new program made of known
kernels compiles only its entry.

A kernel module lives as long as the process (entries also hold theirs): freeing a kernel engine while others
were being linked crashed llvmlite 0.50 (CI's version) when the same kernel was later compiled again, and a
process compiles a bounded number of distinct kernels (tens of KB of code each). Entries are freed as before.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import llvmlite.binding as llvm

from .scalar import vec_symbol

PLACEHOLDER = "__tj_kernel__"  # the kernel function's name in its module text until its key names it
SYMBOL_PREFIX = "tjk_"
# Programs with fewer distinct step functions compile as one module: a second module costs ~2 ms of fixed LLVM
# work (context, pass pipeline, engine) and a one-kernel program rarely shares its kernel with another.
SPLIT_MIN_FUNCTIONS = 2

_GLOBAL_REF = re.compile(r'@"([^"]+)"')
_META_REF = re.compile(r"!(\d+)\b")
_LOCAL_NAME = re.compile(r'%"([^"]*)"')
_IMPL_NAME = re.compile(r'@"(tj_step\d+_impl)"')


@dataclass(frozen=True)
class KernelSource:
    """One distinct step body as a module of its own: its text (the function named PLACEHOLDER, arguments and
    metadata numbered in order of use, so that the text depends on the body only) and the math it links."""
    text: str
    vec_pairs: frozenset
    declaration: str  # ``declare void @"{}"(i64, ...)``: the entry's declaration of it, with the name left open
    light: bool = False  # optimized without O3's loop vectorizer and unroller (step_key.is_light)
    # the optimized tier compiles what this returns (a KernelSource, or None: ``text`` itself) in place of
    # ``text``: a body built without its streamed stores (StepEmitter.defer_streaming) builds them here, once its
    # kernel is not found in the library. ``text`` alone keys it, so a new program finds it without building it.
    build: Callable | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ProgramSource:
    """What both tiers compile: ``whole``, the program as one module (the quick tier compiles it so: one module
    costs less LLVM set-up than many, and quick code is short-lived), and, when the program splits, the entry
    module's text (kernel i called as ``@"__tjk{i}__"``) and its kernels (the optimized tier compiles these).
    ``calls``: each step's StepCall (entry.py), naming bodies as ``whole`` does; ``kernel_of``: the body's kernel
    index, for each body name, when the program splits."""
    whole: str
    entry_text: str | None
    kernels: tuple
    vec_used: frozenset
    num_functions: int
    calls: tuple = ()
    kernel_of: dict | None = None
    streams_later: bool = False  # a body was built without its streamed stores (see KernelSource.build)


def split_program(module, emitters, vec_used, num_functions, program, calls=(), builds=None) -> ProgramSource:
    """Take each distinct step impl out of ``module`` (finished by every emitter) as a KernelSource; the rest,
    with ``program`` (the text of the entry's functions, entry.program_text), is the entry. No split when a body
    refers to anything but declared functions and metadata. ``builds``: body name -> its KernelSource.build."""
    owners = [em for em in emitters if em.impl_text is not None]
    for em in owners:
        del module.globals[em.fn.name]
    header = str(module) + "\n" + program
    whole = "\n".join([header] + [em.impl_text for em in owners])
    calls, builds = tuple(calls), builds or {}
    later = any(em.streams_later for em in owners)
    if num_functions < SPLIT_MIN_FUNCTIONS:
        return ProgramSource(whole, None, (), vec_used, num_functions, calls, streams_later=later)
    declares, metadata = _top_level(header)
    kernels, index = [], {}
    for em in owners:
        ks = _kernel_source(em, declares, metadata, vec_used, builds.get(em.fn.name))
        if ks is None:
            return ProgramSource(whole, None, (), vec_used, num_functions, calls, streams_later=later)
        index[em.fn.name] = len(kernels)
        kernels.append(ks)
    entry = _IMPL_NAME.sub(lambda m: f'@"__tjk{index[m.group(1)]}__"', header)
    decls = [ks.declaration.format(f"__tjk{i}__") for i, ks in enumerate(kernels)]
    return ProgramSource(whole, "\n".join([entry] + decls), tuple(kernels), vec_used, num_functions, calls, index,
                         later)


def kernel_source_of(module, em, vec_used):
    """The KernelSource of the one step body ``em`` built in ``module`` (None: it does not stand alone)."""
    del module.globals[em.fn.name]
    declares, metadata = _top_level(str(module))
    return _kernel_source(em, declares, metadata, vec_used)


def _top_level(header):
    """The module's declarations (name -> line) and metadata definitions (number -> body)."""
    declares, metadata = {}, {}
    for line in header.splitlines():
        if line.startswith("declare "):
            m = _GLOBAL_REF.search(line)
            if m:
                declares[m.group(1)] = line
        elif line.startswith("!"):
            num, _, body = line.partition(" = ")
            if num[1:].isdigit():
                metadata[int(num[1:])] = body
    return declares, metadata


def _kernel_source(em, declares, metadata, vec_used, build=None):
    text = em.impl_text
    own = em.fn.name
    refs = dict.fromkeys(n for n in _GLOBAL_REF.findall(text) if n != own)
    if any(n not in declares for n in refs):
        return None
    # arguments renamed by position ('#' is in no name the IR builder makes), as StepEmitter's dedup key does
    order = {a.name: f"#a{k}" for k, a in enumerate(em.fn.args)}
    text = _LOCAL_NAME.sub(lambda m: '%"' + order.get(m.group(1), m.group(1)) + '"', text)
    text = text.replace(f'define void @"{own}"', f'define void @"{PLACEHOLDER}"', 1)
    if f'@"{PLACEHOLDER}"' not in text:
        return None
    meta_lines, renumber = _metadata_closure(text, metadata)
    if meta_lines is None:
        return None
    text = _META_REF.sub(lambda m: f"!{renumber[int(m.group(1))]}", text)
    symbols = {vec_symbol(name, "f64" if np.dtype(dt) == np.float64 else "f32"): (name, dt) for name, dt in vec_used}
    pairs = frozenset(symbols[n] for n in refs if n in symbols)
    args = ", ".join(str(t) for t in em.fn.ftype.args)
    body = "\n".join([declares[n] for n in sorted(refs)] + meta_lines + [text])
    return KernelSource(body, pairs, f'declare void @"{{}}"({args})', em.light, build)


def _metadata_closure(text, metadata):
    """The metadata definitions ``text`` uses (transitively), renumbered from 0 in order of first use."""
    renumber, queue = {}, [int(n) for n in _META_REF.findall(text)]
    while queue:
        n = queue.pop(0)
        if n in renumber:
            continue
        if n not in metadata:
            return None, None
        renumber[n] = len(renumber)
        queue += [int(k) for k in _META_REF.findall(metadata[n])]
    lines = [f"!{renumber[n]} = " + _META_REF.sub(lambda m: f"!{renumber[int(m.group(1))]}", metadata[n])
             for n in renumber]
    return lines, renumber


# ------------------------------------------------------------------------------------------------ the library
class KernelLibrary:
    """The kernels compiled or loaded in this process, by key (kept for the life of the process)."""

    def __init__(self):
        self._modules = {}
        self._forgotten = []  # modules clear() dropped from the table: never freed (see the module docstring)
        self._lock = threading.Lock()
        self.stats = {"compiled": 0, "from_disk": 0, "reused": 0}  # for TRACEJIT_LOG_COMPILES and tests

    @staticmethod
    def key(ks: KernelSource, tier) -> str:
        from .. import cache
        from .module import codegen_fingerprint
        return cache.make_key("kernel", ks.text, sorted(map(str, ks.vec_pairs)), f"tier{tier}",
                              "light" if ks.light else "full", "built" if ks.build else "", codegen_fingerprint(),
                              cache.target_description("cpu"), *cache.versions())

    @staticmethod
    def symbol(key) -> str:
        return SYMBOL_PREFIX + key[:40]

    def lookup(self, key):
        """The kernel of ``key`` loaded in this process, or from the disk cache (then registered), or None."""
        with self._lock:
            mod = self._modules.get(key)
            if mod is not None:
                self.stats["reused"] += 1
                return mod
        from .module import CompiledModule
        mod = CompiledModule.from_cache(key, [self.symbol(key)])
        if mod is not None:
            self._register(key, mod)
            self.stats["from_disk"] += 1
        return mod

    def compile(self, key, ks: KernelSource, tier, cancelled=None, timings=None, use_disk=True, known_only=False):
        """(the kernel of ``key``, how: "reused", "from_disk" or "compiled"): found in this process or on disk,
        or compiled now and registered; (None, "cancelled") when the interpreter is exiting; (None, "unknown")
        with ``known_only`` when it would have to be compiled."""
        with self._lock:
            mod = self._modules.get(key)
            if mod is not None:
                self.stats["reused"] += 1
                return mod, "reused"
        mod = self.lookup(key) if use_disk else None
        if mod is not None:
            return mod, "from_disk"
        if known_only:
            return None, "unknown"
        from .module import CompiledModule
        sym = self.symbol(key)
        spent = {}
        ks = (ks.build() if ks.build else None) or ks
        mod = CompiledModule(ks.text.replace(f'@"{PLACEHOLDER}"', f'@"{sym}"'), [sym], ks.vec_pairs,
                             key if use_disk else None, tier=tier, cancelled=cancelled, timings=spent,
                             light=ks.light)
        if timings is not None:
            for k, v in spent.items():
                timings[k] = timings.get(k, 0.0) + v
        if mod.cancelled:
            return None, "cancelled"
        with self._lock:
            self.stats["compiled"] += 1
        return self._register(key, mod), "compiled"

    def _register(self, key, mod):
        """Make ``mod`` the kernel of ``key`` (another thread's copy, if it got there first: same code)."""
        with self._lock:
            first = self._modules.get(key)
            if first is not None:
                return first
            sym = self.symbol(key)
            # the entries' engines resolve the kernel by this name (llvmlite serializes its calls under a lock)
            llvm.add_symbol(sym, mod.addresses[sym])
            mod.kernel_key = key
            self._modules[key] = mod
            return mod

    def clear(self):
        """Forget every kernel (tests: the next program compiles them again; their code stays loaded)."""
        with self._lock:
            self._forgotten.extend(self._modules.values())
            self._modules.clear()


LIBRARY = KernelLibrary()
