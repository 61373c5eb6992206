"""Loops and branches that hold loops or branches, run natively: a segmented graph (segmented.RegionExecutable:
straight-line segments, ``scan``, ``while_loop`` and ``cond`` steps) becomes one op table for the native loop
runner (loop_runner.py), so a fori_loop inside a scan body, a cond inside a loop body, or a cond at top level runs
without Python between its steps, iterations or branches.

A program is built for one set of input shapes (every length known) and exposes, for the caller to wire:
``input_slots(k)`` (pointer cells to point at input k's memory before running), ``ops`` (the table that runs it
once) and ``output_cell(k)`` (a pointer cell holding output k's address after a run; valid until the next run).
Values pass between steps by moving pointers. A loop's carries live in two buffers of the program's own: a step
copies the body's results into the spare one and the two swap, so a body result that is one of its inputs, or
two results sharing memory, need no special case. A cond's branches are tables of their own; the runner's SWITCH
op runs the one the index picks.

Library calls: LAPACK's solve, inv and cholesky, and sort, run in the table (loop_library.py). Unsupported (the
caller runs those from Python): other library calls (FFT, eig, argsort; nonzero, whose length is bound at run
time) and any body that is not CPU code.
"""
from __future__ import annotations

import ctypes
import threading

import numpy as np

from ...ir import types as T
from ...ir.interpret import check_constraints, resolve, symbol_env
from ...ir.regions import witness_arrays
from .loop_blas import one_blas_thread, small_products
from .loop_runner import COPY, COPY_ROW, LOOP, MOVE, ROW_AT, STOP_IF, SWITCH, loop_runner
from .loops import FOREVER, BodyFrame, llvm_executable


class Unsupported(Exception):
    """This executable cannot become an op table (the caller falls back to the Python-driven loop)."""


class Build:
    """What the tables point into: pointer cells, arrays and op tables kept alive while the program lives."""

    def __init__(self):
        self.keep: list = []
        self.frames: list = []
        self.checks: list = []  # run after the program: they raise the errors its flags recorded
        self.flags: list = []  # the flag arrays those read, cleared before each run
        self.tiered: list = []  # (executable, its tier when built): the program is rebuilt once it tiers up

    def cell(self, address=0) -> int:
        c = ctypes.c_void_p(address or None)
        self.keep.append(c)
        return ctypes.addressof(c)

    def array_cell(self, arr) -> int:
        """A cell pointing at ``arr`` (kept alive)."""
        self.keep.append(arr)
        return self.cell(arr.ctypes.data)

    def table(self, ops) -> tuple:
        """(address, length) of an op table."""
        t = np.array(ops, np.int64).reshape(-1, 5) if ops else np.zeros((1, 5), np.int64)
        self.keep.append(t)
        return t.ctypes.data, len(ops)


def pin(slots, address):
    """Point each pointer cell in ``slots`` at ``address`` now (memory that stays put: witnesses, constants)."""
    for s in slots:
        ctypes.c_void_p.from_address(s).value = address


def feed(slots, cell) -> list:
    return [(MOVE, s, cell, 0, 0) for s in slots]


def placeholder(shape, dtype):
    """An array standing for a value whose memory is pointed at later: only its shape matters."""
    return np.empty(shape, dtype)


class FrameProgram:
    """A straight-line body: one BodyFrame, its step functions called in order."""

    def __init__(self, exe, arrays, build):
        self.frame = BodyFrame(exe, arrays)
        check_constraints(exe.graph, self.frame.env)  # the lengths a body's trace assumed (once per build)
        build.frames.append(self.frame)
        build.checks.append(self.frame.check_flag)
        if self.frame.flag is not None:
            build.flags.append(self.frame.flag)
        build.keep.append(self.frame)
        self.ops = self.frame.calls()
        self.graph = exe.graph

    def input_slots(self, k) -> list:
        return self.frame.input_slots(k)

    def output_cell(self, k) -> int:
        return self.frame.slot(self.frame.plan.outputs[k])


def program(exe, arrays, build):
    """The program of a body's executable, for inputs shaped like ``arrays``."""
    tier_up = getattr(exe, "tier_up", None)
    if tier_up is not None and getattr(exe, "tier", 1) < 1:
        tier_up(wait=False)  # a body run natively never counts calls toward the optimized tier
        build.tiered.append((exe, exe.tier))
    leaf = llvm_executable(exe)
    if leaf is not None:
        return FrameProgram(leaf, arrays, build)
    if getattr(exe, "segmented", False) and exe.device == "cpu":  # a segmented.RegionExecutable
        return GraphProgram(exe, arrays, build)
    raise Unsupported(type(exe).__name__)


class GraphProgram:
    """A segmented graph's steps in order, each value's address in a cell."""

    def __init__(self, exe, arrays, build):
        from .loop_library import library_program
        g = self.graph = exe.graph
        env = symbol_env(g, arrays)
        self.inputs = [build.cell() for _ in g.inputs]
        cells = {v.id: c for v, c in zip(g.inputs, self.inputs)}

        def cell_of(v):
            if v.id not in cells:
                cells[v.id] = build.array_cell(np.ascontiguousarray(v.const))
            return cells[v.id]

        def shaped(v):
            try:
                return placeholder(tuple(T.eval_dim(d, env) for d in v.shape), v.dtype)
            except KeyError as unbound:  # a length bound only at run time
                raise Unsupported(f"the length {unbound} is known only when the step runs") from None

        self.ops = []
        for step in exe.steps:
            kind = getattr(step, "step_kind", None)  # segmented.py's steps (an upper layer: not imported)
            if kind == "segment":
                witness = [np.zeros(env[s], np.bool_) for s in step.witness]
                sub = program(step.exe, [shaped(v) for v in step.inputs] + witness, build)
                for j, w in enumerate(witness, len(step.inputs)):
                    build.keep.append(w)
                    pin(sub.input_slots(j), w.ctypes.data)
                step_inputs, outs = step.inputs, step.outputs
            elif kind == "region":
                params = {k: resolve(p, env) for k, p in step.params.items()}
                sub = region_program(exe, step.prim, params, [shaped(v) for v in step.inputs], env, build)
                outs = [next((e.out for e in step.eqns if e.p["result"] == r), None)
                        for r in range(len(sub.outputs))]  # a result nobody reads has no equation
                step_inputs = step.inputs
            elif kind == "library":
                sub = library_program(step.eqn, [shaped(v) for v in step.eqn.inputs], build)
                step_inputs, outs = step.eqn.inputs, [step.eqn.out]
            else:
                raise Unsupported(type(step).__name__)
            for j, v in enumerate(step_inputs):
                self.ops += feed(sub.input_slots(j), cell_of(v))
            self.ops += sub.ops
            for r, v in enumerate(outs):
                if v is not None:
                    cells[v.id] = sub.output_cell(r)
        self.outputs = [cell_of(v) for v in g.outputs]

    def input_slots(self, k) -> list:
        return [self.inputs[k]]

    def output_cell(self, k) -> int:
        return self.outputs[k]


def region_program(owner, prim, params, arrays, env, build):
    """The program of one loop or branch step of ``owner`` (a RegionExecutable) for inputs shaped like
    ``arrays``, its lengths resolved (``params``) with the symbol values ``env``."""
    if prim == "scan":
        return ScanProgram(owner, params, arrays, env, build)
    if prim == "while_loop":
        return WhileProgram(owner, params, arrays, env, build)
    return CondProgram(owner, params, arrays, env, build)


class _StepCells:
    """A step's own input cells (what its caller points at the arguments)."""

    def __init__(self, n, build):
        self.inputs = [build.cell() for _ in range(n)]

    def input_slots(self, k) -> list:
        return [self.inputs[k]]

    def output_cell(self, k) -> int:
        return self.outputs[k]


class _Carries:
    """A loop's carries: current values where the cells ``cur`` point, the spare buffers where ``spare`` point."""

    def __init__(self, init_arrays, build):
        self.nbytes = [a.nbytes for a in init_arrays]
        self.cur = [build.array_cell(np.empty_like(a)) for a in init_arrays]
        self.spare = [build.array_cell(np.empty_like(a)) for a in init_arrays]
        self.tmp = build.cell()

    def start(self, init_cells) -> list:
        return [(COPY, c, i, n, 0) for c, i, n in zip(self.cur, init_cells, self.nbytes) if n]

    def feed(self, body, first) -> list:
        return [op for k, c in enumerate(self.cur) for op in feed(body.input_slots(first + k), c)]

    def update(self, body) -> list:
        """Copy the results into the spare buffers first (a result may be another carry's input), then swap. A
        straight-line body's result that owns its buffer (loops.BodyFrame.owns) trades buffers with the carry
        instead: no copy."""
        frame = body.frame if isinstance(body, FrameProgram) else None
        owned = [bool(n) and frame is not None and frame.owns(k) for k, n in enumerate(self.nbytes)]
        ops = [(COPY, s, body.output_cell(k), n, 0) for k, (s, n) in enumerate(zip(self.spare, self.nbytes))
               if n and not owned[k]]
        for k, (c, s, n) in enumerate(zip(self.cur, self.spare, self.nbytes)):
            if owned[k]:
                out = body.output_cell(k)
                ops += self._swap(c, out)
                bid = frame.plan.outputs[k]
                ops += [(MOVE, frame.slot(a), out, 0, 0) for a in frame.aliases(bid)[1:]]
            elif n:
                ops += self._swap(c, s)
        return ops

    def _swap(self, a, b) -> list:
        return [(MOVE, self.tmp, a, 0, 0), (MOVE, a, b, 0, 0), (MOVE, b, self.tmp, 0, 0)]


def _body_program(owner, region, arrays, env, build):
    """A region's program with its witness inputs pinned."""
    witness = witness_arrays(region, env)
    body = program(owner.body(region), list(arrays) + witness, build)
    for j, w in enumerate(witness, len(arrays)):
        build.keep.append(w)
        pin(body.input_slots(j), w.ctypes.data)
    return body


def _shape_of(body, k, arrays):
    g = body.graph
    benv = symbol_env(g, arrays)
    return tuple(T.eval_dim(d, benv) for d in g.outputs[k].shape), g.outputs[k].dtype


class ScanProgram(_StepCells):
    def __init__(self, owner, params, arrays, env, build):
        super().__init__(len(arrays), build)
        nk, nc, n = params["num_consts"], params["num_carry"], params["length"]
        carries = _Carries(arrays[nk:nk + nc], build)
        xs = arrays[nk + nc:]
        slices = [placeholder(x.shape[1:], x.dtype) for x in xs]
        body_arrays = list(arrays[:nk]) + [placeholder(a.shape, a.dtype) for a in arrays[nk:nk + nc]] + slices
        body = _body_program(owner, params["body"], body_arrays, env, build)
        witness = witness_arrays(params["body"], env)
        ys = []
        for j in range(len(body.graph.outputs) - nc):
            shape, dtype = _shape_of(body, nc + j, body_arrays + witness)
            ys.append(np.empty((n,) + shape, dtype))
        inner = carries.feed(body, nk)
        for j, (x, s) in enumerate(zip(xs, slices)):
            inner += [(ROW_AT, slot, self.inputs[nk + nc + j], s.nbytes, 0) for slot in body.input_slots(nk + nc + j)]
        inner += body.ops
        for j, y in enumerate(ys):
            row = y.nbytes // n if n else 0
            if row:
                inner.append((COPY_ROW, y.ctypes.data, row, body.output_cell(nc + j), row))
        inner += carries.update(body)
        address, count = build.table(inner)
        self.ops = [op for k in range(nk) for op in feed(body.input_slots(k), self.inputs[k])]
        self.ops += carries.start(self.inputs[nk:nk + nc]) + [(LOOP, address, count, n, int(params["reverse"]))]
        self.outputs = carries.cur + [build.array_cell(y) for y in ys]


class WhileProgram(_StepCells):
    def __init__(self, owner, params, arrays, env, build):
        super().__init__(len(arrays), build)
        nc, nb = params["cond_nconsts"], params["body_nconsts"]
        init = arrays[nc + nb:]
        carries = _Carries(init, build)
        shaped = [placeholder(a.shape, a.dtype) for a in init]
        cond = _body_program(owner, params["cond"], list(arrays[:nc]) + shaped, env, build)
        body = _body_program(owner, params["body"], list(arrays[nc:nc + nb]) + shaped, env, build)
        inner = carries.feed(cond, nc) + cond.ops + [(STOP_IF, cond.output_cell(0), 0, 0, 0)]
        inner += carries.feed(body, nb) + body.ops + carries.update(body)
        address, count = build.table(inner)
        self.ops = [op for k in range(nc) for op in feed(cond.input_slots(k), self.inputs[k])]
        self.ops += [op for k in range(nb) for op in feed(body.input_slots(k), self.inputs[nc + k])]
        self.ops += carries.start(self.inputs[nc + nb:]) + [(LOOP, address, count, FOREVER, 0)]
        self.outputs = carries.cur


class CondProgram(_StepCells):
    def __init__(self, owner, params, arrays, env, build):
        super().__init__(len(arrays), build)
        branches, counts = params["branches"], params["const_counts"]
        width = arrays[0].dtype.itemsize
        if arrays[0].dtype.kind not in "iu" or width not in (4, 8):
            raise Unsupported(f"a cond index of dtype {arrays[0].dtype}")
        first_operand = 1 + sum(counts)
        operands = list(range(first_operand, len(arrays)))
        n_out = len(branches[0].graph.outputs)
        self.outputs = [build.cell() for _ in range(n_out)]
        rows = []
        for k, region in enumerate(branches):
            start = 1 + sum(counts[:k])
            which = list(range(start, start + counts[k])) + operands
            branch = _body_program(owner, region, [arrays[i] for i in which], env, build)
            ops = [op for j, i in enumerate(which) for op in feed(branch.input_slots(j), self.inputs[i])]
            ops += branch.ops + [(MOVE, o, branch.output_cell(r), 0, 0) for r, o in enumerate(self.outputs)]
            rows += list(build.table(ops))
        table = np.array(rows, np.int64)
        build.keep.append(table)
        self.ops = [(SWITCH, self.inputs[0], table.ctypes.data, len(branches), width)]


class StepRun:
    """A built step program, kept for the next call with the same shapes: only the inputs' addresses change."""

    def __init__(self, owner, prim, params, args, env):
        self.build = build = Build()
        self.step = region_program(owner, prim, params, args, env, build)
        self.table, self.count = build.table(self.step.ops)
        self.small = small_products(build.frames)
        self.lock = threading.Lock()
        self.runner = loop_runner()
        # the input cells as ctypes objects, set at each run (made once: from_address costs a microsecond)
        self.input_cells = [[ctypes.c_void_p.from_address(c) for c in self.step.input_slots(k)]
                            for k in range(len(args))]
        self.shapes: dict = {}  # result -> (shape, dtype), filled at the first run

    def stale(self) -> bool:
        """Whether a body it calls has its optimized tier in place now (a new build runs that code)."""
        return any(exe.tier != tier for exe, tier in self.build.tiered)

    def run(self, args, env, eqns):
        for cells, a in zip(self.input_cells, args):
            address = a.ctypes.data
            for c in cells:
                c.value = address
        for f in self.build.flags:
            f[0] = 0  # a previous run's error is not this one's
        if self.small:
            with one_blas_thread(True):
                self.runner(self.table, self.count, 1, 0)
        else:
            self.runner(self.table, self.count, 1, 0)
        for check in self.build.checks:
            check()
        results = [None] * len(self.step.outputs)
        for e in eqns:
            r = e.p["result"]
            if r not in self.shapes:
                self.shapes[r] = (tuple(T.eval_dim(d, env) for d in e.out.shape), e.out.dtype)
            results[r] = _read(self.step.output_cell(r), *self.shapes[r])
        return results


def run_step(owner, prim, params, args, env, eqns, cache):
    """The results of one loop or branch step of ``owner`` run as one op table (None for a result no equation of
    ``eqns`` reads), or None when a body cannot be (see Unsupported). ``args``: C-contiguous arrays; ``params``
    resolved; ``env``: the symbol values; ``cache``: a dict keeping built programs by shapes (a program in use
    by another thread is not shared: this call builds its own)."""
    key = (prim, params.get("body"), params.get("cond"), params.get("branches"), params.get("length"),
           tuple((a.shape, a.dtype.str) for a in args), tuple(sorted(env.items())))
    run = cache.get(key)
    if run is False:
        return None
    if run is not None and run.stale():
        cache.pop(key, None)  # (another thread may have dropped it already)
        run = None
    if run is None or not run.lock.acquire(blocking=False):
        try:
            fresh = StepRun(owner, prim, params, args, env)
        except Unsupported:
            cache[key] = False
            return None
        if run is None:
            cache[key] = fresh
        run = fresh
        run.lock.acquire()
    try:
        return run.run(args, env, eqns)
    finally:
        run.lock.release()


def _read(cell, shape, dtype):
    """A copy of the array at the address in ``cell`` (the program's buffers are reused by its next run)."""
    out = np.empty(shape, dtype)
    if out.nbytes:
        ctypes.memmove(out.ctypes.data, ctypes.c_void_p.from_address(cell).value, out.nbytes)
    return out
