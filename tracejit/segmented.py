"""The executable of a graph that holds loops or branches (``scan``, ``while_loop``, ``cond``).

The outer graph is cut into straight-line segments, each compiled by the ordinary backend path, and region
steps. On the CPU a loop whose bodies are straight-line runs natively (backends/cpu/loops.py): one machine-code
loop calls the body's compiled steps, carries double-buffered, scan rows written in place, a while_loop's
predicate read in compiled code; a while_loop over independent elements (vmap's per-element loop) runs each
element's loop inside one kernel (backends/cpu/elementwise_while.py). A cond, and a loop whose bodies hold loops,
branches or LAPACK/sort calls, run as one op table of the same native loop (backends/cpu/native_program.py).
What is left (bodies calling other library routines, and every loop on a CUDA device) runs from a Python loop
here: carries passed as arrays, stacked scan outputs allocated once, a cond running only its taken branch.
Bodies are compiled once, when the executable is built: compile time grows with the body, not with the trip
count.
"""
from __future__ import annotations

import os
import time

import numpy as np

from .ir import types as T
from .ir.interpret import bind_unbacked, check_constraints, constraints_by_phase, resolve, symbol_env
from .ir.primitives import LIBRARY_ALL_OUTPUTS, PRIMS, is_library_call, unbacked_outputs
from .ir.regions import REGION_PRIMS, Region, extract, group_key, run_group, witness_arrays


WAIT_FOR_TIER = 0.005  # a native loop whose quick-tier run took longer waits for the optimized code next time


def _cut_here(e) -> bool:
    return e.prim in REGION_PRIMS or is_library_call(e)


def has_regions(graph) -> bool:
    """Whether the graph needs segments: loops, branches or library calls (sort, LAPACK, FFT, nonzero)."""
    return any(_cut_here(e) for e in graph.eqns)


class _Segment:
    """Straight-line equations compiled as one graph: reads ``inputs``, produces ``outputs`` (outer Values)."""
    step_kind = "segment"  # what backends/cpu/native_program.py dispatches on (it cannot import this module)

    def __init__(self, eqns, inputs, outputs, build):
        self.inputs, self.outputs = inputs, outputs
        graph, self.witness = extract(eqns, inputs, outputs)
        self.exe = build(graph)
        # reshapes and broadcasts around a library call (solve's right-hand side as a column), and scalar checks:
        # numpy makes those views in microseconds, where a compiled program's call costs tens
        self.numpy_views = eqns if all(_cheap_in_numpy(e) for e in eqns) else None

    def run(self, env, symvals):
        if self.numpy_views is not None and all(type(env.get(v.id)) is np.ndarray for v in self.inputs):
            return self._run_views(env, symvals)
        args = [_contiguous(env[v.id]) for v in self.inputs] + [np.zeros(symvals[s], np.bool_) for s in self.witness]
        for v, a in zip(self.outputs, self.exe.run(args)):
            env[v.id] = a

    def _run_views(self, env, symvals):
        vals = {v.id: env[v.id] for v in self.inputs}
        for e in self.numpy_views:
            args = [vals[v.id] if v.id in vals else v.const for v in e.inputs]
            out = PRIMS[e.prim].impl(*args, **{k: resolve(p, symvals) for k, p in e.params})
            vals[e.out.id] = out if isinstance(out, np.ndarray) and out.dtype == e.out.dtype else \
                np.asarray(out, e.out.dtype)
        for v in self.outputs:
            env[v.id] = vals[v.id]


class _RegionStep:
    """One run of a loop or branch; its sibling equations' results all land in the environment."""
    step_kind = "region"  # what backends/cpu/native_program.py dispatches on (it cannot import this module)

    def __init__(self, eqns, owner):
        self.eqns, self.owner = eqns, owner
        first = eqns[0]
        self.prim, self.inputs, self.params = first.prim, first.inputs, first.p
        # a while_loop over independent elements: its per-element kernel, or its tiled bodies (else None)
        self.tiled = owner.tiled_while(self.params, self.inputs) if self.prim == "while_loop" else None
        if hasattr(self.tiled, "fn"):
            return  # one per-element kernel runs the loop: the bodies compile only if the Python path asks
        for p in self.params.values():
            for r in (p if isinstance(p, tuple) else (p,)):
                if isinstance(r, Region):
                    owner.body(r)  # compiled now, not at the first call

    def run(self, env, symvals):
        params = {k: resolve(p, symvals) for k, p in self.params.items()}
        args = [env[v.id] if v.id in env else v.const for v in self.inputs]
        results = self.owner.run_native(self.prim, params, args, symvals, self.tiled, self.eqns)
        if results is None:
            self.owner.loop_runs["python"] += 1
            results = run_group(self.prim, params, args, self.owner.run_body(symvals), symvals)
        for e in self.eqns:
            env[e.out.id] = results[e.p["result"]]


class _LibraryStep:
    """A call into numpy's routine (sort, LAPACK, FFT, nonzero) between compiled segments; the data-dependent
    lengths of its result (``x[mask]``'s) are bound from the array it returns, so later segments read them."""
    step_kind = "library"  # what backends/cpu/native_program.py dispatches on (it cannot import this module)

    def __init__(self, eqn):
        self.eqn = eqn
        self.binds = bool(unbacked_outputs(eqn))

    def run(self, env, symvals):
        e = self.eqn
        params = {k: p if k == "length" else resolve(p, symvals) for k, p in e.params}
        args = [_contiguous(env[v.id]) if v.id in env else v.const for v in e.inputs]
        with np.errstate(all="ignore"):
            out = np.asarray(PRIMS[e.prim].impl(*args, **params))
        if out.dtype != e.out.dtype:
            out = out.astype(e.out.dtype)
        env[e.out.id] = out
        if self.binds:
            bind_unbacked(e, out.shape, symvals)


class _LibraryGroupStep:
    """Several results of one library call (svd's u, s and vh; a transform's two parts), read by one program: the
    routine runs once (primitives.LIBRARY_ALL_OUTPUTS) and each equation takes its ``output``."""
    step_kind = "library_group"  # native_program.py runs none in its table (the caller's Python path does)

    def __init__(self, eqns):
        self.eqns = eqns

    def run(self, env, symvals):
        e = self.eqns[0]
        params = {k: resolve(p, symvals) for k, p in e.params if k != "output"}
        # numpy's routines read any strides: the parts of a complex argument are passed as the views they are
        args = [_host(env[v.id]) if v.id in env else v.const for v in e.inputs]
        with np.errstate(all="ignore"):
            results = LIBRARY_ALL_OUTPUTS[e.prim](*args, **params)
        for s in self.eqns:
            out = np.asarray(results[s.p["output"]])
            env[s.out.id] = out if out.dtype == s.out.dtype else out.astype(s.out.dtype)


def _library_group_key(e):
    """Equal calls that differ only in the result they name share a key (None: a call that runs alone)."""
    if e.prim not in LIBRARY_ALL_OUTPUTS or "output" not in e.p:
        return None
    return e.prim, tuple(v.id for v in e.inputs), tuple((k, p) for k, p in e.params if k != "output")


class RegionExecutable:
    """Segments and region steps in order (see the module docstring); ``run(arrays) -> list of arrays``.
    ``build(graph) -> executable`` compiles a straight-line graph (compile.build_executable with the options);
    on a CUDA device each segment and body is a CudaExecutable run from the host loop: arrays pass through host
    memory between steps (correct, not fast: device-resident carries come with the native loop)."""
    segmented = True  # (see step_kind)

    def __init__(self, graph, build, device="cpu"):
        t0 = time.perf_counter()
        self.graph, self.device, self.build = graph, device, build
        self._bodies: dict = {}
        self._programs: dict = {}  # steps built as op tables, by shapes (native_program.run_step)
        self._quick_tier_seconds: dict = {}  # body executable id -> seconds of its latest quick-tier loop
        # loop runs by path (tests check which one ran): native (of which tiled, elementwise), or python
        # (program: a step run as one op table holding nested loops or branches, see native_program.py)
        self.loop_runs = {"native": 0, "python": 0, "tiled": 0, "elementwise": 0, "program": 0}
        self.steps = self._plan(graph)
        self._checks = constraints_by_phase(graph)  # (before the run, after it)
        direct = _one_library_call(graph, self.steps) if device == "cpu" else None
        if direct is not None:
            self.run = direct  # (an instance attribute: the call path looks ``run`` up on the executable)
        self.compile_stats = {"regions": time.perf_counter() - t0}

    def body(self, region: Region):
        exe = self._bodies.get(region)
        if exe is None:
            exe = self._bodies[region] = compile_any(region.graph, self.build, self.device)
        return exe

    def run_body(self, symvals):
        def run(region, arrays):
            exe = self.body(region)
            arrays = [_contiguous(a) for a in arrays]
            if region.witness:
                arrays = list(arrays) + witness_arrays(region, symvals)
            return exe.run(arrays)
        return run

    def tiled_while(self, params, outer_inputs):
        """A while_loop over independent elements, compiled to run tile by tile (backends/cpu/tiled_loops.py),
        or None where its shape does not prove that equivalent."""
        if self.device != "cpu":
            return None
        from .backends.cpu import elementwise_while, tiled_loops
        if not tiled_loops.tileable(params, outer_inputs):
            return None
        try:
            return elementwise_while.ElementWhile(params)
        except NotImplementedError:  # an operation the scalar table lacks: tiles of the compiled bodies instead
            return tiled_loops.TiledWhile(params, self.build)

    def run_native(self, prim, params, args, symvals, tiled=None, eqns=()):
        """A loop's or branch's results run in native code (backends/cpu/loops.py; native_program.py where a body
        holds loops or branches, and for a cond), or None where that does not apply: a CUDA device, bodies
        calling libraries, TRACEJIT_NATIVE_LOOPS=0."""
        if self.device != "cpu" or os.environ.get("TRACEJIT_NATIVE_LOOPS", "1") == "0":
            return None
        from .backends.cpu import loops, native_program
        if tiled is not None and hasattr(tiled, "fn"):  # a per-element kernel: nothing compiled to tier up
            self.loop_runs["native"] += 1
            self.loop_runs["elementwise"] += 1
            return tiled.run(params, [_contiguous(np.asarray(a)) for a in args])
        if prim != "cond":
            regions = (params["body"],) if prim == "scan" else (params["cond"], params["body"])
            compiled = [tiled.cond, tiled.body] if tiled is not None else [self.body(r) for r in regions]
            exes = [loops.llvm_executable(e) for e in compiled]
        if prim == "cond" or any(e is None for e in exes):  # branches, or bodies holding loops or branches
            out = native_program.run_step(self, prim, params, [_contiguous(np.asarray(a)) for a in args], symvals,
                                          eqns, self._programs)
            if out is not None:
                self.loop_runs["native"] += 1
                self.loop_runs["program"] += 1
            return out
        self._tier_up(compiled)
        exes = [loops.llvm_executable(e) for e in compiled]  # the optimized tier when that was waited for
        self.loop_runs["native"] += 1
        args = [_contiguous(np.asarray(a)) for a in args]
        t0 = time.perf_counter()
        if tiled is not None:
            self.loop_runs["tiled"] += 1
            out = tiled.run(exes[0], exes[1], params, args)
        elif prim == "scan":
            out = loops.run_scan(exes[0], params, args, witness_arrays(params["body"], symvals))
        else:
            out = loops.run_while(exes[0], exes[1], params, args, witness_arrays(params["cond"], symvals),
                                  witness_arrays(params["body"], symvals))
        if any(getattr(e, "tier", 1) < 1 for e in exes):
            for e in compiled:
                self._quick_tier_seconds[id(e)] = time.perf_counter() - t0
        return out

    def _tier_up(self, compiled):
        """A body run natively never calls its executable's ``run``, which is what counts calls toward the
        optimized tier: a loop's body is hot from its first run, so that run starts the optimized compile (in
        the background); a later run waits for it when the quick tier's loop took longer than WAIT_FOR_TIER."""
        for exe in compiled:
            tier_up = getattr(exe, "tier_up", None)
            if tier_up is None or getattr(exe, "tier", 1) >= 1:
                continue
            slow = self._quick_tier_seconds.get(id(exe), 0.0) > WAIT_FOR_TIER
            tier_up(wait=slow)

    def _plan(self, graph):
        later_reads = _reads_after(graph)
        steps, seg, done = [], [], set()
        lib_groups: dict = {}
        for e in graph.eqns:
            if is_library_call(e) and _library_group_key(e) is not None:
                lib_groups.setdefault(_library_group_key(e), []).append(e)

        def flush(pos):
            if not seg:
                return
            made = {e.out.id for e in seg}
            ins, seen = [], set()
            for e in seg:
                for x in e.inputs:
                    if x.id not in made and not x.is_const and x.id not in seen:
                        seen.add(x.id)
                        ins.append(x)
            outs = [e.out for e in seg if later_reads.get(e.out.id, -1) >= pos]
            steps.append(_Segment(list(seg), ins, outs, self.build))
            seg.clear()

        for pos, e in enumerate(graph.eqns):
            if not _cut_here(e):
                seg.append(e)
                continue
            flush(pos)
            if is_library_call(e):
                lib_key = _library_group_key(e)
                siblings = lib_groups.get(lib_key, ())
                if len(siblings) > 1:
                    if lib_key not in done:
                        done.add(lib_key)
                        steps.append(_LibraryGroupStep(siblings))
                    continue
                steps.append(_LibraryStep(e))
                continue
            key = group_key(e)
            if key in done:
                continue
            done.add(key)
            steps.append(_RegionStep([s for s in graph.eqns if s.prim == e.prim and group_key(s) == key], self))
        flush(len(graph.eqns))
        return steps

    def wait(self):
        """Wait for the optimized tier of every segment and body (``Jitted.compile``)."""
        tiled = [e for s in self.steps if hasattr(getattr(s, "tiled", None), "body")
                 for e in (s.tiled.cond, s.tiled.body)]
        for exe in [s.exe for s in self.steps if isinstance(s, _Segment)] + list(self._bodies.values()) + tiled:
            wait = getattr(exe, "wait", None)
            if wait is not None:
                wait()

    @property
    def num_kernels(self) -> int:
        return sum(getattr(s.exe, "num_kernels", 0) for s in self.steps if isinstance(s, _Segment)) + \
            sum(getattr(b, "num_kernels", 0) for b in self._bodies.values())

    def llvm_ir(self):
        """The generated code of every segment and body (LLVM IR, or CUDA kernel source on a CUDA device)."""
        def text(exe):
            return exe.cuda_source() if hasattr(exe, "cuda_source") else exe.llvm_ir()
        parts = [text(s.exe) for s in self.steps if isinstance(s, _Segment)]
        return "\n".join(parts + [text(b) for b in self._bodies.values()])

    kernel_groups = None  # segments and bodies are separate graphs: no clusters to draw over the outer one

    def memory_plan(self, example_args=None):
        """Each straight-line segment's plan (loop bodies' buffers are the bodies' own)."""
        return "\n".join(f"segment {k}:\n{s.exe.memory_plan()}" for k, s in enumerate(self.steps)
                         if isinstance(s, _Segment))

    def asm(self):
        return "\n".join([s.exe.asm() for s in self.steps if isinstance(s, _Segment)])

    def run(self, arrays):
        if self.device == "cpu":
            return self._run(arrays)
        from .backends.cuda.executable import is_device_array
        on_device = [is_device_array(a) for a in arrays]
        out = self._run([a.copy_to_host() if d else a for a, d in zip(arrays, on_device)])
        if any(on_device):
            from numba import cuda
            out = [cuda.to_device(np.ascontiguousarray(o)) for o in out]
        return out

    def _run(self, arrays):
        g = self.graph
        symvals = symbol_env(g, arrays)
        check_constraints(g, symvals, constraints=self._checks[0])
        env = {v.id: a for v, a in zip(g.inputs, arrays)}
        for step in self.steps:
            step.run(env, symvals)
        if self._checks[1]:  # the ones on data-dependent lengths, bound by now
            check_constraints(g, symvals, deferred=True, constraints=self._checks[1])
        inputs = {id(a) for a in arrays}
        out = []
        for v in g.outputs:
            a = env[v.id] if v.id in env else v.const
            fresh = not (id(a) in inputs or v.is_const or _views_an_argument(a, arrays))
            out.append(a if fresh else np.array(a))
        return out


def _one_library_call(graph, steps):
    """``run(arrays)`` for a program that is one multi-result routine on its arguments (an FFT's two parts, svd,
    qr, eigh, slogdet, a complex matmul), or None: the routine called with its static parameters and its results
    handed out, without the environment, symbols and checks of the general path (~15 µs of a small call). These
    routines return fresh arrays, never views of an argument."""
    if len(steps) != 1 or not isinstance(steps[0], _LibraryGroupStep) or graph.constraints:
        return None
    eqns = steps[0].eqns
    e = eqns[0]
    params = {k: p for k, p in e.params if k != "output"}
    position = {v.id: i for i, v in enumerate(graph.inputs)}
    made = {s.out.id: s for s in eqns}
    if any(v.id not in position and not v.is_const for v in e.inputs) or \
            any(v.id not in made for v in graph.outputs):
        return None
    sized = {k: p for k, p in params.items() if _mentions_lengths(p)}  # (an FFT's length: the input's)
    if not set().union(*(_length_atoms(p) for p in sized.values())) <= set(graph.symbols):
        return None
    reads = [(position[v.id], None) if v.id in position else (None, v.const) for v in e.inputs]
    picks = [(made[v.id].p["output"], v.dtype) for v in graph.outputs]
    routine = LIBRARY_ALL_OUTPUTS[e.prim]

    def run(arrays):
        args = [_host(arrays[i]) if i is not None else c for i, c in reads]
        kw = params
        if sized:
            symvals = symbol_env(graph, arrays)
            kw = {**params, **{k: resolve(p, symvals) for k, p in sized.items()}}
        with np.errstate(all="ignore"):
            results = routine(*args, **kw)
        out = []
        for k, dt in picks:
            r = np.asarray(results[k])
            out.append(r if r.dtype == dt else r.astype(dt))
        return out
    return run


def _mentions_lengths(p) -> bool:
    return bool(_length_atoms(p))


def _length_atoms(p) -> set:
    """The symbols of the lengths in a parameter value (a Dim, or a tuple holding some)."""
    if isinstance(p, T.Dim):
        return p.atoms()
    return set().union(*(_length_atoms(x) for x in p)) if isinstance(p, tuple) else set()


def _contiguous(a):
    """Compiled code reads C-contiguous arrays (a broadcast cotangent or a strided slice is copied)."""
    if type(a) is np.ndarray and a.flags.c_contiguous:
        return a
    if hasattr(a, "copy_to_host"):  # a device array (a CUDA body's output): the host loop reads it back
        return np.ascontiguousarray(a.copy_to_host())
    return np.ascontiguousarray(a)


def _views_an_argument(a, arrays) -> bool:
    """Whether a result is a view into an argument's memory (a reshape run by numpy): the caller gets a copy."""
    return type(a) is np.ndarray and a.base is not None and \
        any(type(x) is np.ndarray and np.may_share_memory(a, x) for x in arrays)


def _cheap_in_numpy(e) -> bool:
    """A view (reshape, transpose, broadcast_to, slice), or scalar work such as a shape check's comparison."""
    kind = PRIMS[e.prim].kind
    return kind == "view" or (kind in ("elementwise", "other") and e.out.ndim == 0 and
                              all(v.ndim == 0 for v in e.inputs) and e.prim in _SCALAR_IN_NUMPY)


_SCALAR_IN_NUMPY = {"dimsize", "equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
                    "logical_or", "logical_and", "logical_not"}


def _host(a):
    """A host array (a CUDA body's output read back), in whatever layout it has."""
    return np.ascontiguousarray(a.copy_to_host()) if hasattr(a, "copy_to_host") else a


def _reads_after(graph) -> dict:
    """Value id -> the last equation position reading it (graph outputs count as read at the end)."""
    last: dict = {}
    for pos, e in enumerate(graph.eqns):
        for x in e.inputs:
            last[x.id] = pos
    for v in graph.outputs:
        last[v.id] = len(graph.eqns)
    return last


def compile_any(graph, build, device="cpu"):
    """The executable of a body: segmented when it holds regions itself, else the ordinary backend."""
    if has_regions(graph):
        return RegionExecutable(graph, build, device)
    return build(graph)
