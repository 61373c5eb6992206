"""Library calls inside native loops: ``solve``, ``inv`` and ``cholesky`` in a loop body (a Newton step, a Kalman
update) and ``sort`` run as steps of the body's op table, calling LAPACK through scipy's ``cython_lapack``
function pointers and the C library's ``qsort``, with no Python per iteration.

Each routine is one small machine-code function ``fn(args, 0, 0, -1)`` (the runner's CALL form), compiled once
per process; ``args`` is a table of int64 words naming the pointer cells of its operands, the sizes and the
workspace. numpy's row-major matrix is LAPACK's column-major transpose, so:
  solve    getrf on A's bytes factors A^T; getrs with 'T' then solves A X = B, B's columns copied in and out
  inv      the same factors; getrs with 'N' on the identity gives (A^T)^-1 column-major, A^-1 row-major
  cholesky potrf 'U' on A's bytes: U^T U = A, and U column-major is the lower factor L row-major
A singular matrix (or one that is not positive definite) sets a flag, raised as numpy's LinAlgError after the
run. Stacked matrices are looped over. ``sort`` along the last axis: each row copied, then qsort with numpy's
order (nan last). FFT and eig have no C entry point to call here: bodies using them run from Python.
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
SORTED = {"d": ir.DoubleType(), "s": ir.FloatType(), "l": I64, "i": I32}  # the types sort handles
SORT_KINDS = {np.dtype(np.float64): "d", np.dtype(np.float32): "s", np.dtype(np.int64): "l", np.dtype(np.int32): "i"}
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


def _emit_compare(module, kind, ty):
    """int cmp(const T *a, const T *b) in numpy's order: nan after every number."""
    fn = ir.Function(module, ir.FunctionType(I32, [PTR, PTR]), f"tj_cmp_{kind}")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    x, y = b.load(fn.args[0], typ=ty), b.load(fn.args[1], typ=ty)
    one, minus = ir.Constant(I32, 1), ir.Constant(I32, -1)
    if isinstance(ty, ir.IntType):
        lt, gt = b.icmp_signed("<", x, y), b.icmp_signed(">", x, y)
        b.ret(b.select(lt, minus, b.zext(gt, I32)))
        return fn
    lt, gt = b.fcmp_ordered("<", x, y), b.fcmp_ordered(">", x, y)
    nan_order = b.sub(b.zext(b.fcmp_unordered("uno", x, x), I32), b.zext(b.fcmp_unordered("uno", y, y), I32))
    b.ret(b.select(lt, minus, b.select(gt, one, nan_order)))  # equal numbers: 0; nan and nan: 0
    return fn


def _emit_sort(module, kind, ty):
    """fn(args): args = [cell in, cell out, rows, n]; out = in with each row of n sorted."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64, I64]), f"tj_sort_{kind}")
    e = _Emitter(fn, ty)
    b = e.b
    src, out, rows, n = e.through_cell(0), e.through_cell(1), e.word(2), e.word(3)
    size = ir.Constant(I64, 8 if kind in "dl" else 4)
    b.call(_memcpy(b), [out, src, b.mul(b.mul(rows, n), size), ir.Constant(ir.IntType(1), 0)])
    qsort = module.globals.get("tj_qsort") or ir.Function(
        module, ir.FunctionType(ir.VoidType(), [PTR, I64, I64, PTR]), "tj_qsort")
    compare = _emit_compare(module, kind, ty)
    e.loop(rows, lambda r: b.call(qsort, [e.at(out, b.mul(r, n)), n, size, compare]))
    b.ret_void()


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
            for kind, ty in SORTED.items():
                _emit_sort(module, kind, ty)
            llvm.add_symbol("tj_qsort", ctypes.cast(ctypes.CDLL(None).qsort, ctypes.c_void_p).value)
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
            for kind in SORTED:
                _compiled["sort", kind] = engine.get_function_address(f"tj_sort_{kind}")
    return _compiled


PRIMS = {"linalg_solve": "solve", "linalg_inv": "inv", "cholesky": "cholesky"}


def library_program(eqn, arrays, build):
    """The program of one library equation of a body (see the module docstring), or Unsupported."""
    if eqn.prim == "sort":
        return SortProgram(eqn, arrays, build)
    return LapackProgram(eqn, arrays, build)


class SortProgram:
    """``np.sort`` along the last axis as one CALL."""

    def __init__(self, eqn, arrays, build):
        from .native_program import Unsupported
        a = arrays[0]
        kind = SORT_KINDS.get(a.dtype)
        if kind not in SORTED or eqn.p["axis"] not in (-1, a.ndim - 1):
            raise Unsupported(f"sort of {a.dtype} along axis {eqn.p['axis']}")
        self.input = build.cell()
        self.out = build.array_cell(np.empty(a.shape, a.dtype))
        n = a.shape[-1]
        table = np.array([self.input, self.out, a.size // n if n else 0, n], np.int64)
        build.keep.append(table)
        self.ops = [(CALL, _functions()["sort", kind], table.ctypes.data, 0, 0)] if a.size else []

    def input_slots(self, k) -> list:
        return [self.input]

    def output_cell(self, k) -> int:
        return self.out


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
        build.flags.append(self.flag)

    def input_slots(self, k) -> list:
        return [self.inputs[k]]

    def output_cell(self, k) -> int:
        return self.out

    def check(self):
        if self.flag[0]:
            raise np.linalg.LinAlgError(MESSAGES[self.routine])
