"""``scan`` and ``while_loop`` run as native loops on the CPU: every buffer a body uses is allocated once per run,
and the loop (loop_runner.py) calls the body's compiled step functions directly, iteration after iteration.

Carries are double-buffered: a carry's current value lives in a cell of ``cur``; after a step the body's output
buffer and that carry's memory swap places (pointer moves, no copy). A carry that shares its output buffer with
another output, or whose output is a constant or an input of the body, is copied instead (inputs are staged
first, so ``(a, b) -> (b, a)`` reads the old values). A scan's stacked outputs are allocated once; a body output
that owns its buffer is pointed at row ``i`` and written there in place, the others are copied into it.

Covered: bodies (and while predicates) that are straight-line graphs compiled by the CPU backend. Bodies with
nested loops or branches, or LAPACK and sort calls, become op tables of native_program.py; other library calls
(FFT, eig, nonzero) and a CUDA device run from Python (segmented.py).
"""
from __future__ import annotations

import ctypes

import numpy as np

from ...ir import types as T
from ...ir.interpret import check_constraints
from ...lower.plan import BufferKind
from .loop_blas import one_blas_thread, small_products
from .loop_runner import CALL, COPY, COPY_ROW, MOVE, ROW, STOP_IF, loop_runner

PTR_BYTES = ctypes.sizeof(ctypes.c_void_p)
FOREVER = (1 << 62)  # a while_loop's trip bound: it stops on its predicate
_MOVABLE = (BufferKind.OUTPUT, BufferKind.TEMP)


def llvm_executable(exe):
    """The LLVMExecutable that ``exe`` runs now (a TieredExecutable's current tier), or None when ``exe`` is not
    a CPU executable of a straight-line graph."""
    from .executable import LLVMExecutable
    from .tiers import TieredExecutable
    if isinstance(exe, TieredExecutable):
        exe = exe._exe
    return exe if isinstance(exe, LLVMExecutable) else None


class _Cells:
    """A table of pointer cells of our own (carries' current memory, staging, a swap temporary)."""

    def __init__(self, n):
        self.table = (ctypes.c_void_p * max(n, 1))()
        self.base = ctypes.addressof(self.table)

    def cell(self, k) -> int:
        return self.base + PTR_BYTES * k


class BodyFrame:
    """One body's buffers for a run: its buffer table (one pointer per plan buffer, as the entry passes), its
    lengths table and the arrays behind them. ``inputs``: one array per body input (the shapes that matter; a
    loop re-points carry and row slots before every step)."""

    def __init__(self, exe, inputs):
        self.exe = exe
        plan = self.plan = exe.plan
        env = {s: inputs[i].shape[ax] for s, (i, ax) in exe.graph.symbols.items()}
        self.env = env
        self.arrays: dict = {}  # root buffer id -> array (allocated here)
        self.table = (ctypes.c_void_p * max(len(plan.buffers), 1))()
        self.flag = None
        for b in plan.buffers:
            if b.kind is BufferKind.INPUT:
                arr = inputs[b.input_index]
            elif b.kind is BufferKind.CONST:
                arr = self.arrays.setdefault(b.id, np.ascontiguousarray(b.const))
            elif b.kind is BufferKind.FLAG:
                arr = self.flag = self.arrays.setdefault(b.id, np.zeros(1, np.int64))
            else:
                root = self.root(b.id)
                arr = self.arrays.get(root)
                if arr is None:
                    rb = plan.buffers[root]
                    arr = self.arrays[root] = np.empty(tuple(T.eval_dim(d, env) for d in rb.shape), rb.dtype)
            self.table[b.id] = arr.ctypes.data
        order = sorted(exe.symbols, key=exe.symbols.get)
        self.dims = (ctypes.c_int64 * max(len(order), 1))(*[env[s] for s in order])
        self.steps = [exe.compiled.addresses["tj_steps"]]  # every step of the body, in order (entry.py)

    def root(self, bid) -> int:
        return self.exe.memory.slot_of.get(bid, bid)

    def slot(self, bid) -> int:
        return ctypes.addressof(self.table) + PTR_BYTES * bid

    def nbytes(self, bid) -> int:
        b = self.plan.buffers[bid]
        return int(T.eval_dim(T.prod(b.shape), self.env)) * b.dtype.itemsize if b.shape else b.dtype.itemsize

    def input_slots(self, index) -> list:
        return [self.slot(b.id) for b in self.plan.buffers
                if b.kind is BufferKind.INPUT and b.input_index == index]

    def aliases(self, bid) -> list:
        """Buffers sharing ``bid``'s memory (``bid`` first)."""
        r = self.root(bid)
        return [bid] + [b.id for b in self.plan.buffers
                        if b.id != bid and b.kind in _MOVABLE and self.root(b.id) == r]

    def owns(self, position) -> bool:
        """Whether graph output ``position``'s buffer is its own: no other output shares its memory, and every
        buffer sharing it is as big (so the memory may be swapped for, or pointed at, another of that size)."""
        plan = self.plan
        bid = plan.outputs[position]
        if plan.buffers[bid].kind not in _MOVABLE:
            return False
        r = self.root(bid)
        if sum(1 for o in plan.outputs if self.root(o) == r) != 1:
            return False
        size = self.nbytes(bid)
        return all(self.nbytes(a) == size for a in self.aliases(bid)) and self.nbytes(r) == size

    def calls(self) -> list:
        table, dims = ctypes.addressof(self.table), ctypes.addressof(self.dims)
        return [(CALL, f, table, dims, 0) for f in self.steps]

    def check_flag(self):
        if self.flag is not None and self.flag[0]:
            raise IndexError("an integer-array index is out of bounds for the axis it indexes")


class Carries:
    """Carries' memory: the current value of carry ``k`` is where cell ``k`` of ``cur`` points."""

    def __init__(self, init):
        self.values = [np.array(a, copy=True, order="C") for a in init]  # ours to overwrite and swap
        self.cur = _Cells(len(init))
        self.stage = _Cells(len(init) + 1)  # staging copies, and the swap's temporary (the last cell)
        self.keep = list(self.values)
        for k, a in enumerate(self.values):
            self.cur.table[k] = a.ctypes.data

    def feed(self, frame, first_input) -> list:
        """Ops pointing the frame's carry inputs at the current carries."""
        return [(MOVE, s, self.cur.cell(k), 0, 0) for k in range(len(self.values))
                for s in frame.input_slots(first_input + k)]

    def update(self, frame) -> list:
        """Ops making the body's outputs 0..k-1 the next carries (see the module docstring)."""
        staged, swaps, copies = [], [], []
        tmp = self.stage.cell(len(self.values))
        for k, v in enumerate(self.values):
            bid = frame.plan.outputs[k]
            src, size = frame.slot(bid), v.nbytes
            if size == 0:
                continue
            if frame.owns(k):
                cur = self.cur.cell(k)
                swaps += [(MOVE, tmp, cur, 0, 0), (MOVE, cur, src, 0, 0), (MOVE, src, tmp, 0, 0)]
                swaps += [(MOVE, frame.slot(a), src, 0, 0) for a in frame.aliases(bid)[1:]]
                continue
            if frame.plan.buffers[bid].kind is BufferKind.INPUT:
                buf = np.empty(size, np.uint8)
                self.keep.append(buf)
                self.stage.table[k] = buf.ctypes.data
                staged.append((COPY, self.stage.cell(k), src, size, 0))
                src = self.stage.cell(k)
            copies.append((COPY, self.cur.cell(k), src, size, 0))
        return staged + swaps + copies

    def results(self, frames) -> list:
        """The carries' final arrays (whichever allocation each ended in)."""
        by_address = {a.ctypes.data: a for a in self.keep if a.nbytes}
        for f in frames:
            by_address.update({a.ctypes.data: a for a in f.arrays.values() if a.nbytes})
        out = []
        for k, v in enumerate(self.values):
            if v.nbytes == 0:
                out.append(v)
                continue
            arr = by_address[self.cur.table[k]]
            out.append(arr.reshape(-1).view(np.uint8)[:v.nbytes].view(v.dtype).reshape(v.shape))
        return out


def run_ops(ops, n, reverse=False) -> int:
    """Run the op table ``ops`` (tuples of five ints, see loop_runner.py) ``n`` times; the trips it made."""
    table = np.ascontiguousarray(np.array(ops, np.int64).reshape(-1, 5)) if ops else np.zeros((1, 5), np.int64)
    return loop_runner()(table.ctypes.data, len(ops), n, int(reverse))


def run_scan(exe, params, args, witness) -> list:
    """Every result of a scan (carries, then stacked ys), its body run natively ``params["length"]`` times.
    ``exe``: the body's LLVMExecutable; ``witness``: the body's witness arrays."""
    nk, nc, length = params["num_consts"], params["num_carry"], params["length"]
    consts, xs = list(args[:nk]), [np.ascontiguousarray(x) for x in args[nk + nc:]]
    carries = Carries(args[nk:nk + nc])
    slices = [x[0, ...] if length else np.empty(x.shape[1:], x.dtype) for x in xs]
    frame = BodyFrame(exe, consts + carries.values + slices + list(witness))
    if length:
        check_constraints(exe.graph, frame.env)
    outs = exe.graph.outputs
    ys = [np.empty((length,) + tuple(T.eval_dim(d, frame.env) for d in o.shape), o.dtype) for o in outs[nc:]]
    ops = carries.feed(frame, nk)
    for j, x in enumerate(xs):
        row = x[0].nbytes if length else 0
        ops += [(ROW, s, x.ctypes.data, row, 0) for s in frame.input_slots(nk + nc + j)]
    after = []
    for j, y in enumerate(ys):
        row, bid = y[0].nbytes if length else 0, frame.plan.outputs[nc + j]
        if frame.owns(nc + j):
            ops += [(ROW, frame.slot(a), y.ctypes.data, row, 0) for a in frame.aliases(bid)]
        elif row:
            after.append((COPY_ROW, y.ctypes.data, row, frame.slot(bid), row))
    ops += frame.calls() + after + carries.update(frame)
    if length:
        with one_blas_thread(small_products([frame])):
            run_ops(ops, length, params["reverse"])
    frame.check_flag()
    return carries.results([frame]) + ys


def run_while(cond_exe, body_exe, params, args, cond_witness, body_witness) -> list:
    """The final carries of a while_loop whose predicate and body both run natively."""
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    carries = Carries(args[nc + nb:])
    cframe = BodyFrame(cond_exe, list(args[:nc]) + carries.values + list(cond_witness))
    bframe = BodyFrame(body_exe, list(args[nc:nc + nb]) + carries.values + list(body_witness))
    check_constraints(cond_exe.graph, cframe.env)
    check_constraints(body_exe.graph, bframe.env)
    pred = cframe.slot(cframe.plan.outputs[0])
    ops = carries.feed(cframe, nc) + cframe.calls() + [(STOP_IF, pred, 0, 0, 0)]
    ops += carries.feed(bframe, nb) + bframe.calls() + carries.update(bframe)
    with one_blas_thread(small_products([cframe, bframe])):
        run_ops(ops, FOREVER)
    cframe.check_flag()
    bframe.check_flag()
    return carries.results([bframe])
