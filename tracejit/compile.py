"""The one path from a traced graph to something that runs: optimize, plan, pick a backend and a tier.

``jit``, ``Lowered``, ``make_ir``, Theano's ``function`` and ``tensor.grad`` all come through here, so what a
compile honours is decided once: the device (``check_device``), which passes run (``pass_order``), whether IEEE
special values are preserved (``CompileOptions.strict_ieee``, read by the passes), and whether the first calls
run quick first-tier code while the optimized code compiles (``build_executable``). The disk cache is decided
by ``backends.cache.enabled`` inside the backend, keyed on the optimized graph.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional

from .ir.graph import Graph


@dataclasses.dataclass(frozen=True)
class CompileOptions:
    """How a graph is compiled. ``passes``: run only these passes or stages, in this order (None: the default
    pipeline); ``excluding``: passes or stages switched off by name (Theano's ``Mode.excluding``);
    ``tiered``: quick first-tier code until the function proves hot (off for ``Lowered``, which shows the
    optimized code)."""
    device: str = "cpu"
    strict_ieee: bool = False
    passes: Optional[tuple] = None
    excluding: frozenset = frozenset()
    tiered: bool = True

    def __post_init__(self):
        if not isinstance(self.strict_ieee, bool):
            raise TypeError(f"strict_ieee must be True or False, got {self.strict_ieee!r}")
        if self.passes is not None:
            if isinstance(self.passes, str):
                raise TypeError(f"passes must be a list of pass or stage names, got the string {self.passes!r}")
            object.__setattr__(self, "passes", tuple(self.passes))
        if isinstance(self.excluding, str):
            raise TypeError(f"excluding must be a collection of pass or stage names, got the string "
                            f"{self.excluding!r}")
        object.__setattr__(self, "excluding", frozenset(self.excluding))
        pass_order(self)  # unknown names fail here, where the user gave them

    def replace(self, **changes) -> "CompileOptions":
        return dataclasses.replace(self, **changes)


def check_device(device) -> str:
    """The device name a compile targets: 'cpu', or a CUDA device that is usable here (else a clear error)."""
    if device in ("cpu", None):
        return "cpu"
    if isinstance(device, str) and device.startswith("cuda"):
        from .backends.cuda.check import require_cuda
        require_cuda(device)
        return device
    raise ValueError(f"unknown device {device!r}: use 'cpu' or 'cuda' (see tj.devices())")


def pass_order(options: CompileOptions) -> list:
    """The passes a compile runs, in order: the chosen ones, or the default order without the excluded ones."""
    from .passes import pipeline
    order = pipeline.expand(pipeline.DEFAULT_ORDER if options.passes is None else options.passes)
    if options.excluding:
        off = set(pipeline.expand(sorted(options.excluding)))
        order = [name for name in order if name not in off]
    return order


def optimize(graph: Graph, options: CompileOptions = CompileOptions(), with_log=False):
    """The optimized graph (and, ``with_log``, the record of what each pass changed)."""
    from .passes.pipeline import optimize_with_log
    opt, log = optimize_with_log(graph, strict_ieee=options.strict_ieee, passes=pass_order(options))
    return (opt, log) if with_log else opt


def build_executable(optimized: Graph, options: CompileOptions = CompileOptions(), updates=None):
    """An executable for an optimized graph: the CUDA backend, or the CPU backend with or without tiers.
    ``updates``: {output index: input index} for outputs that are an argument's value after the call; on the CPU
    they are stored into the argument's memory where that is safe (lower/inplace.py).

    Tiers pay off where LLVM's optimized compile is slow: vector math (big inlined polynomials) or several
    steps; a small program compiles at the optimized level at once. TRACEJIT_TIERED=0 turns tiers off.
    """
    from .segmented import RegionExecutable, has_regions
    if has_regions(optimized):  # loops and branches: straight-line segments compiled here, bodies run by segments
        return RegionExecutable(optimized, lambda g: build_executable(g, options), options.device)
    if options.device != "cpu":
        from .backends.cuda.executable import compile_graph_cuda
        return compile_graph_cuda(optimized, options.device)
    from .backends.cpu import tiers
    from .backends.cpu.executable import LLVMExecutable
    from .lower import plan_graph
    from .lower import scalar as scalar_table
    t0 = time.perf_counter()
    planned = plan_graph(optimized)
    # (counted before the arguments' copies are dropped: the kernels that cost LLVM time stay)
    worth_tiers = any(scalar_table.is_expensive(e.prim) for e in optimized.eqns) \
        or len(planned[0].steps) >= tiers.TIER_MIN_STEPS
    if updates:
        from .lower.inplace import write_into_arguments
        write_into_arguments(*planned, updates)
    plan_s = time.perf_counter() - t0
    if options.tiered and worth_tiers and os.environ.get("TRACEJIT_TIERED", "1") != "0":
        exe = tiers.TieredExecutable(optimized, planned)
    else:
        exe = LLVMExecutable(optimized, planned=planned)
    exe.compile_stats["plan"] = plan_s
    return exe


def compile(graph: Graph, options: CompileOptions = CompileOptions(), name="function", trace_s=None,
            updates=None):
    """Optimize ``graph`` and build its executable (``updates``: see build_executable). The executable keeps
    ``traced`` (the graph given),
    ``optimized`` and ``options``; its ``compile_stats`` gain the time of each stage (logged with
    TRACEJIT_LOG_COMPILES=1 under ``name``)."""
    t0 = time.perf_counter()
    opt = optimize(graph, options)
    t1 = time.perf_counter()
    exe = build_executable(opt, options, updates)
    exe.traced, exe.optimized, exe.options = graph, opt, options
    stats = getattr(exe, "compile_stats", None)
    if stats is not None:
        if trace_s is not None:
            stats["trace"] = trace_s
        stats.update(passes=t1 - t0, total=time.perf_counter() - t0 + (trace_s or 0.0))
        from .backends.cpu.executable import log_compile
        log_compile(name, stats)
    return exe


def clear_caches():
    """Give back what tracejit keeps for speed: idle recycled buffers, and every jitted function's compiled
    executables (the next call traces again; the disk cache spares it LLVM). Arrays still held are untouched."""
    import gc
    from .api import Jitted
    from .backends.cpu import module, recycle
    for obj in gc.get_objects():  # jitted functions keep no registry; this rare call walks the heap once
        if issubclass(type(obj), Jitted):  # (type(), not isinstance: a dead weakproxy raises on __class__)
            obj.cache_clear()
    module.vecmath_ir.cache_clear()
    gc.collect()  # executables are freed with their machine code (a driver and its executable form a cycle)
    recycle.recycler.clear()


__all__ = ["CompileOptions", "clear_caches", "check_device", "pass_order", "optimize", "build_executable", "compile"]
