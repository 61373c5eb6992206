"""LAPACK inside native loops: ``solve``, ``inv`` and ``cholesky`` in a loop body (a Newton step, a Kalman
update) run as steps of the body's op table, calling LAPACK through scipy's ``cython_lapack`` function pointers,
with no Python per iteration.

Each routine is one small machine-code function ``fn(args, 0, 0, -1)`` (the runner's CALL form), compiled once
per process; ``args`` is a table of int64 words naming the pointer cells of its operands, the sizes and the
workspace. numpy's row-major matrix is LAPACK's column-major transpose, so:
  solve    getrf on A's bytes factors A^T; getrs with 'T' then solves A X = B, B's columns copied in and out
  inv      the same factors; getrs with 'N' on the identity gives (A^T)^-1 column-major, A^-1 row-major
  cholesky potrf 'U' on A's bytes: U^T U = A, and U column-major is the lower factor L row-major
A singular matrix (or one that is not positive definite) sets a flag, raised as numpy's LinAlgError after the
run. Stacked matrices are looped over.
"""
from __future__ import annotations

import ctypes
import threading

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np

from .loop_runner import CALL

I8, I32, I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
PTR = ir.PointerType()
ROUTINES = ("solve", "inv", "cholesky")
MESSAGES = {"solve": "Singular matrix", "inv": "Singular matrix", "cholesky": "Matrix is not positive definite"}
_lock = threading.Lock()
_compiled: dict = {}


def _lapack(name):
    """The address of a cython_lapack routine."""
    from scipy.linalg import cython_lapack
    from .blas import _capsule_address
    return _capsule_address(cython_lapack.__pyx_capi__[name])


class _Emitter:
    """Loops and loads over one IRBuilder (the args table ``args`` of int64 words)."""

    def __init__(self, fn, fty):
        self.fn, self.fty = fn, fty
        self.b = ir.IRBuilder(fn.append_basic_block("entry"))
        self.args = fn.args[0]

    def word(self, k):
        b = self.b
        return b.load(b.gep(self.args, [ir.Constant(I64, k)], source_etype=I64), typ=I64)

    def pointer(self, k):
        return self.b.inttoptr(self.word(k), PTR)

    def through_cell(self, k):
        """The address a cell (named by word k) holds."""
        return self.b.load(self.pointer(k), typ=PTR)

    def at(self, base, index):
        return self.b.gep(base, [index], source_etype=self.fty)

    def loop(self, n, body):
        """for i in range(n): body(i)"""
        b = self.b
        head, step, out = (self.fn.append_basic_block(x) for x in ("head", "step", "out"))
        before = b.block
        b.branch(head)
        b.position_at_end(head)
        i = b.phi(I64)
        i.add_incoming(ir.Constant(I64, 0), before)
        b.cbranch(b.icmp_signed("<", i, n), step, out)
        b.position_at_end(step)
        body(i)
        nxt = b.add(i, ir.Constant(I64, 1))
        i.add_incoming(nxt, b.block)
        b.branch(head)
        b.position_at_end(out)

    def int32_cell(self, value):
        cell = self.b.alloca(I32)
        self.b.store(self.b.trunc(value, I32) if value.type == I64 else value, cell)
        return cell

    def char_cell(self, char):
        cell = self.b.alloca(I8)
        self.b.store(ir.Constant(I8, ord(char)), cell)
        return cell

    def call(self, routine, args):
        """Call LAPACK's ``routine`` (a symbol bound to scipy's function pointer: see _functions)."""
        mod, name = self.b.module, f"tj_lapack_{routine}"
        fn = mod.globals.get(name) or ir.Function(mod, ir.FunctionType(ir.VoidType(), [PTR] * len(args)), name)
        self.b.call(fn, args)

    def fail_if(self, info, flag_word):
        """Set the flag when LAPACK's info is not 0."""
        b = self.b
        bad = b.icmp_signed("!=", b.load(info, typ=I32), ir.Constant(I32, 0))
        with b.if_then(bad):
            b.store(ir.Constant(I64, 1), self.pointer(flag_word))
        return bad


def _transpose(e, src, dst, rows, cols):
    """dst[j * rows + i] = src[i * cols + j]: a row-major block to column-major and back."""
    b = e.b

    def row(i):
        def col(j):
            v = b.load(e.at(src, b.add(b.mul(i, cols), j)), typ=e.fty)
            b.store(v, e.at(dst, b.add(b.mul(j, rows), i)))
        e.loop(cols, col)
    e.loop(rows, row)


# args words: solve/inv: 0 cell a, 1 cell b (solve), 2 cell out, 3 n, 4 k, 5 batch, 6 work a, 7 work b, 8 pivots,
# 9 info, 10 flag; cholesky: 0 cell a, 2 cell out, 3 n, 5 batch, 9 info, 10 flag
def _emit_getrs(e, kind, inverse):
    b = e.b
    a, out = e.through_cell(0), e.through_cell(2)
    bvec = None if inverse else e.through_cell(1)
    n, k, batch = e.word(3), e.word(4), e.word(5)
    work_a, work_b, piv, info = e.pointer(6), e.pointer(7), e.pointer(8), e.pointer(9)
    size = _itemsize(e.fty)
    n32, k32 = e.int32_cell(n), e.int32_cell(k)
    trans = e.char_cell("N" if inverse else "T")
    nn, nk = b.mul(n, n), b.mul(n, k)

    def one(m):
        am, om = e.at(a, b.mul(m, nn)), e.at(out, b.mul(m, nk))
        b.call(_memcpy(b), [work_a, am, b.mul(nn, ir.Constant(I64, size)), ir.Constant(ir.IntType(1), 0)])
        e.call(kind + "getrf", [n32, n32, work_a, n32, piv, info])
        bad = e.fail_if(info, 10)
        with b.if_then(b.not_(bad)):
            if inverse:  # the identity, column-major and row-major alike
                e.loop(nn, lambda t: b.store(ir.Constant(e.fty, 0.0), e.at(om, t)))
                e.loop(n, lambda i: b.store(ir.Constant(e.fty, 1.0), e.at(om, b.add(b.mul(i, n), i))))
                e.call(kind + "getrs", [trans, n32, n32, work_a, n32, piv, om, n32, info])
            else:
                _transpose(e, e.at(bvec, b.mul(m, nk)), work_b, n, k)
                e.call(kind + "getrs", [trans, n32, k32, work_a, n32, piv, work_b, n32, info])
                _transpose(e, work_b, om, k, n)
    e.loop(batch, one)


def _emit_potrf(e, kind):
    b = e.b
    a, out = e.through_cell(0), e.through_cell(2)
    n, batch, info = e.word(3), e.word(5), e.pointer(9)
    size = _itemsize(e.fty)
    n32, upper = e.int32_cell(n), e.char_cell("U")
    nn = b.mul(n, n)

    def one(m):
        am, om = e.at(a, b.mul(m, nn)), e.at(out, b.mul(m, nn))
        b.call(_memcpy(b), [om, am, b.mul(nn, ir.Constant(I64, size)), ir.Constant(ir.IntType(1), 0)])
        e.call(kind + "potrf", [upper, n32, om, n32, info])
        e.fail_if(info, 10)

        def row(i):  # numpy's factor has zeros above the diagonal (LAPACK leaves A's values there)
            def col(j):
                with b.if_then(b.icmp_signed(">", j, i)):
                    b.store(ir.Constant(e.fty, 0.0), e.at(om, b.add(b.mul(i, n), j)))
            e.loop(n, col)
        e.loop(n, row)
    e.loop(batch, one)


def _itemsize(fty) -> int:
    return 8 if isinstance(fty, ir.DoubleType) else 4


def _memcpy(b):
    mod = b.module
    name = "llvm.memcpy.p0.p0.i64"
    if name in mod.globals:
        return mod.globals[name]
    return ir.Function(mod, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, ir.IntType(1)]), name)


def _functions():
    """{(routine, dtype char): address}, compiled once per process."""
    with _lock:
        if not _compiled:
            from .module import OwnedEngine, target_machine
            module = ir.Module(name="tj_loop_lapack")
            for kind, fty in (("d", ir.DoubleType()), ("s", ir.FloatType())):
                for routine in ROUTINES:
                    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I64]),
                                     f"tj_lapack_{routine}_{kind}")
                    e = _Emitter(fn, fty)
                    _emit_potrf(e, kind) if routine == "cholesky" else _emit_getrs(e, kind, routine == "inv")
                    e.b.ret_void()
            for kind in "ds":
                for name in ("getrf", "getrs", "potrf"):
                    llvm.add_symbol(f"tj_lapack_{kind}{name}", _lapack(kind + name))
            tm = target_machine(2)
            owner = OwnedEngine()
            mod = llvm.parse_assembly(str(module), context=owner.context())
            mod.triple = tm.triple
            mod.verify()
            engine = owner.engine = llvm.create_mcjit_compiler(mod, tm)
            engine.finalize_object()
            _compiled["owner"] = owner
            for kind in "ds":
                for routine in ROUTINES:
                    _compiled[routine, kind] = engine.get_function_address(f"tj_lapack_{routine}_{kind}")
    return _compiled


PRIMS = {"linalg_solve": "solve", "linalg_inv": "inv", "cholesky": "cholesky"}


class LapackProgram:
    """One library equation of a body as a CALL of its LAPACK function (see the module docstring); built for
    operands shaped like ``arrays``. Raises native_program.Unsupported for other routines or dtypes."""

    def __init__(self, eqn, arrays, build):
        from .native_program import Unsupported
        routine = PRIMS.get(eqn.prim)
        a = arrays[0]
        if routine is None or a.dtype not in (np.float64, np.float32) or a.ndim < 2:
            raise Unsupported(f"{eqn.prim} on {a.dtype}")
        kind = "d" if a.dtype == np.float64 else "s"
        n = a.shape[-1]
        batch = int(np.prod(a.shape[:-2]))
        k = arrays[1].shape[-1] if routine == "solve" else n
        out = np.empty(arrays[1].shape if routine == "solve" else a.shape, a.dtype)
        self.routine = routine
        self.inputs = [build.cell() for _ in arrays]
        self.out = build.array_cell(out)
        work = [np.empty(n * n, a.dtype), np.empty(max(n * k, 1), a.dtype), np.empty(max(n, 1), np.int32),
                np.zeros(1, np.int32)]
        self.flag = np.zeros(1, np.int64)
        build.keep += work + [self.flag]
        table = np.zeros(11, np.int64)
        table[0] = self.inputs[0]
        table[1] = self.inputs[1] if routine == "solve" else 0
        table[2], table[3], table[4], table[5] = self.out, n, k, batch
        table[6:10] = [w.ctypes.data for w in work]
        table[10] = self.flag.ctypes.data
        build.keep.append(table)
        fn = _functions()[routine, kind]
        self.ops = [(CALL, fn, table.ctypes.data, 0, 0)] if n and batch else []
        build.checks.append(self.check)

    def input_slots(self, k) -> list:
        return [self.inputs[k]]

    def output_cell(self, k) -> int:
        return self.out

    def check(self):
        if self.flag[0]:
            raise np.linalg.LinAlgError(MESSAGES[self.routine])
