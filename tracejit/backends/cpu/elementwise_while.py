"""A while_loop over independent elements (the shape tiled_loops.tileable proves) as one kernel whose loop over
the elements holds each element's own while loop: per element, load its carries, iterate while its own
predicate ``m`` holds, store. That is the batched loop's result (tiled_loops' docstring gives the argument) with
no arrays between iterations and nothing per iteration but the body's arithmetic: the loop a numba user writes
by hand. Elements go SIMD_LANES at a time, one vector per carry, while any lane is live (a finished lane keeps its
values); a body the vector form cannot spell (a math library call, float16) interleaves scalar lanes instead.
The element range is split across threads.
"""
from __future__ import annotations

import ctypes
import threading
from types import SimpleNamespace

import llvmlite.binding as llvm
import llvmlite.ir as ir
import numpy as np

from ...ir import types as T
from .scalar import I1, I8, I32, I64, PTR, CpuScalarOps, MathFunctions, constant, is_float, is_unsigned, lltype, memtype
from .threads import get_pool, num_threads

KERNEL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
LANES = 4  # elements whose loops one pass interleaves (scalar lanes, where SIMD lanes cannot be used)
SIMD_LANES = 8  # elements one pass carries as vectors: two AVX2 registers of float64, two chains in flight
CHUNK = 1 << 14  # elements per piece of work handed to a thread
_compile_lock = threading.Lock()


def _load(b, dt, base, index):
    v = b.load(b.gep(base, [index], source_etype=memtype(dt)), typ=memtype(dt))
    return b.trunc(v, I1) if dt == T.BOOL else v


def _store(b, dt, value, base, index):
    b.store(b.zext(value, I8) if dt == T.BOOL else value, b.gep(base, [index], source_etype=memtype(dt)))


def _evaluate(ops, graph, env, upto=None):
    """Emit ``graph``'s equations (all elementwise) on scalar values ``env`` (value id -> LLVM value)."""
    def arg(x):
        if x.id in env:
            return env[x.id]
        return ops.const(x.dtype, np.asarray(x.const).item())
    for e in graph.eqns:
        if e is upto:
            break
        if e.prim == "broadcast_to":  # of a 0-d value (tiled_loops.tileable): that value, per element
            env[e.out.id] = arg(e.inputs[0])
        else:
            env[e.out.id] = ops.emit(e, [arg(x) for x in e.inputs])
    return arg


class VectorOps(CpuScalarOps):
    """The scalar table's operations on vectors of ``width`` lanes (LLVM's arithmetic, comparisons and selects are
    lane-wise). Math library calls and float16 are not offered: NotImplementedError (the caller falls back)."""

    def __init__(self, em, width):
        super().__init__(em)
        self.width = width

    def vtype(self, dt):
        return ir.VectorType(lltype(dt), self.width)

    def const(self, dt, value):
        return ir.Constant(self.vtype(dt), [constant(np.dtype(dt), value)] * self.width)

    def splat(self, x):
        b = self.b
        one = b.insert_element(ir.Constant(ir.VectorType(x.type, self.width), None), x, ir.Constant(I32, 0))
        return b.shuffle_vector(one, one, ir.Constant(ir.VectorType(I32, self.width), [0] * self.width))

    def load(self, dt, base, index):
        b = self.b
        v = b.load(b.gep(base, [index], source_etype=memtype(dt)), typ=ir.VectorType(memtype(dt), self.width),
                   align=np.dtype(dt).itemsize)  # an element's alignment, not the vector's
        if dt == T.FLOAT16:
            raise NotImplementedError("float16 lanes")
        return b.trunc(v, self.vtype(dt)) if dt == T.BOOL else v

    def store(self, dt, value, base, index):
        b = self.b
        v = b.zext(value, ir.VectorType(I8, self.width)) if dt == T.BOOL else value
        b.store(v, b.gep(base, [index], source_etype=memtype(dt)), align=np.dtype(dt).itemsize)

    def any(self, mask):
        b = self.b
        name = f"llvm.vector.reduce.or.v{self.width}i1"
        fn = b.module.globals.get(name) or ir.Function(b.module, ir.FunctionType(I1, [mask.type]), name)
        return b.call(fn, [mask])

    def math(self, name, dt, *xs):
        raise NotImplementedError(f"{name} on SIMD lanes")

    def _fabs(self, x, ty):
        raise NotImplementedError("fabs on SIMD lanes")

    def cast(self, x, src, dst):
        b = self.b
        src, dst = np.dtype(src), np.dtype(dst)
        if T.FLOAT16 in (src, dst):
            raise NotImplementedError("float16 lanes")
        if src == dst:
            return x
        to = self.vtype(dst)
        if dst == T.BOOL:
            zero = self.const(src, 0)
            return b.fcmp_unordered("une", x, zero) if is_float(src) else b.icmp_unsigned("!=", x, zero)
        if src == T.BOOL:
            return b.uitofp(x, to) if is_float(dst) else b.zext(x, to)
        if is_float(src) and is_float(dst):
            return b.fpext(x, to) if dst.itemsize > src.itemsize else b.fptrunc(x, to)
        if not is_float(src) and not is_float(dst):
            if dst.itemsize == src.itemsize:
                return x
            if dst.itemsize < src.itemsize:
                return b.trunc(x, to)
            return b.zext(x, to) if is_unsigned(src) else b.sext(x, to)
        if is_float(dst):
            return b.uitofp(x, to) if is_unsigned(src) else b.sitofp(x, to)
        return b.fptoui(x, to) if is_unsigned(dst) else b.fptosi(x, to)


class ElementWhile:
    """The compiled per-element loop of one while_loop; ``run(params, args)`` -> final carries."""

    def __init__(self, params):
        cond, body = params["cond"].graph, params["body"].graph
        self.nc, self.nb = params["cond_nconsts"], params["body_nconsts"]
        self.ncarry = len(body.outputs)
        self.dtypes = [v.dtype for v in body.outputs]
        self.simd = True
        try:  # SIMD lanes (one vector per carry); an operation they lack falls back to interleaved scalar lanes
            self.fn, self._engine = self._build(cond, body, params)
        except (NotImplementedError, RuntimeError, TypeError, AttributeError, ValueError):
            self.simd = False
            self.fn, self._engine = self._build(cond, body, params)

    def _build(self, cond, body, params):
        module = ir.Module(name="tj_elem_while")
        math = MathFunctions(module, vector=False)  # one element at a time: scalar libm calls
        fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR, I64, I64]), "tj_elem_while")
        self._emit(fn, math, cond, body, params)
        return _compile(str(module), frozenset(math.vec_used))

    def _emit(self, fn, math, cond, body, params):
        """fn(arrays, start, stop); arrays: cond consts, body consts, initial carries, results. Elements go
        LANES at a time (their loops interleaved, so one element's chain of dependent operations does not stall
        the core; each stops changing when its own predicate is false), the rest one at a time."""
        nc, nb, ncarry = self.nc, self.nb, self.ncarry
        b = ir.IRBuilder(fn.append_basic_block("entry"))
        ops = CpuScalarOps(SimpleNamespace(b=b, math=math))
        arrays, start, stop = fn.args
        ptrs = [b.load(b.gep(arrays, [ir.Constant(I64, j)], source_etype=PTR), typ=PTR)
                for j in range(nc + nb + 2 * ncarry)]
        index = b.alloca(I64)
        slots = [[b.alloca(lltype(dt)) for dt in self.dtypes] for _ in range(LANES)]
        b.store(start, index)
        group = SIMD_LANES if self.simd else LANES
        grouped_end = b.sub(stop, b.srem(b.sub(stop, start), ir.Constant(I64, group)))
        if self.simd:
            vops = VectorOps(SimpleNamespace(b=b, math=math), SIMD_LANES)
            vslots = [b.alloca(vops.vtype(dt)) for dt in self.dtypes]
            self._vector_loop(b, fn, vops, ptrs, index, vslots, grouped_end, cond, body)
        else:
            self._element_loop(b, fn, ops, ptrs, index, slots, grouped_end, cond, body)
        self._element_loop(b, fn, ops, ptrs, index, slots[:1], stop, cond, body)
        b.ret_void()

    def _element_loop(self, b, fn, ops, ptrs, index, slots, limit, cond, body):
        """Elements [index, limit), len(slots) at a time: load, iterate while any is live, store."""
        nc, nb, ncarry, lanes = self.nc, self.nb, self.ncarry, len(slots)
        head, elem, test, step, done, out = (fn.append_basic_block(f"{n}{lanes}") for n in
                                             ("head", "elem", "test", "step", "done", "out"))
        b.branch(head)
        b.position_at_end(head)
        e = b.load(index, typ=I64)
        b.cbranch(b.icmp_signed("<=", b.add(e, ir.Constant(I64, lanes)), limit), elem, out)
        b.position_at_end(elem)
        at = [b.add(e, ir.Constant(I64, lane)) for lane in range(lanes)]
        zero = ir.Constant(I64, 0)

        def inputs(graph, first, count, lane):
            """A graph's consts, read at this element (arrays of the carries' shape) or once (0-d)."""
            return {v.id: _load(b, v.dtype, ptrs[first + j], at[lane] if v.shape else zero)
                    for j, v in enumerate(graph.inputs[:count])}
        cconsts = [inputs(cond, 0, nc, lane) for lane in range(lanes)]
        bconsts = [inputs(body, nc, nb, lane) for lane in range(lanes)]
        for lane in range(lanes):
            for k, dt in enumerate(self.dtypes):
                b.store(_load(b, dt, ptrs[nc + nb + k], at[lane]), slots[lane][k])
        b.branch(test)
        b.position_at_end(test)
        cur = [[b.load(s, typ=lltype(dt)) for s, dt in zip(slots[lane], self.dtypes)] for lane in range(lanes)]
        pred = next(q for q in cond.eqns if q.out.id == cond.outputs[0].id)
        live = []
        for lane in range(lanes):
            env = {**cconsts[lane], **{v.id: c for v, c in zip(cond.inputs[nc:nc + ncarry], cur[lane])}}
            live.append(_evaluate(ops, cond, env, upto=pred)(pred.inputs[0]))
        anyone = live[0]
        for m in live[1:]:
            anyone = b.or_(anyone, m)
        b.cbranch(anyone, step, done)
        b.position_at_end(step)
        for lane in range(lanes):
            env = {**bconsts[lane], **{v.id: c for v, c in zip(body.inputs[nb:nb + ncarry], cur[lane])}}
            arg = _evaluate(ops, body, env)
            for k, o in enumerate(body.outputs):
                new = arg(o) if lanes == 1 else b.select(live[lane], arg(o), cur[lane][k])
                b.store(new, slots[lane][k])
        b.branch(test)
        b.position_at_end(done)
        for lane in range(lanes):
            for k, dt in enumerate(self.dtypes):
                _store(b, dt, cur[lane][k], ptrs[nc + nb + ncarry + k], at[lane])
        b.store(b.add(e, ir.Constant(I64, lanes)), index)
        b.branch(head)
        b.position_at_end(out)

    def _vector_loop(self, b, fn, ops, ptrs, index, slots, limit, cond, body):
        """Elements [index, limit), SIMD_LANES at a time as one vector per carry: a lane whose predicate is false
        keeps its values (a select), and the loop runs while any lane is live."""
        nc, nb, ncarry = self.nc, self.nb, self.ncarry
        head, elem, test, step, done, out = (fn.append_basic_block(f"v{n}") for n in
                                             ("head", "elem", "test", "step", "done", "out"))
        b.branch(head)
        b.position_at_end(head)
        e = b.load(index, typ=I64)
        b.cbranch(b.icmp_signed("<=", b.add(e, ir.Constant(I64, ops.width)), limit), elem, out)
        b.position_at_end(elem)

        def inputs(graph, first, count):
            """A graph's consts: the lanes' elements of an array of the carries' shape, or one 0-d value splat."""
            return {v.id: ops.load(v.dtype, ptrs[first + j], e) if v.shape else
                    ops.splat(_load(b, v.dtype, ptrs[first + j], ir.Constant(I64, 0)))
                    for j, v in enumerate(graph.inputs[:count])}
        cconsts, bconsts = inputs(cond, 0, nc), inputs(body, nc, nb)
        for k, dt in enumerate(self.dtypes):
            b.store(ops.load(dt, ptrs[nc + nb + k], e), slots[k])
        b.branch(test)
        b.position_at_end(test)
        cur = [b.load(s, typ=ops.vtype(dt)) for s, dt in zip(slots, self.dtypes)]
        pred = next(q for q in cond.eqns if q.out.id == cond.outputs[0].id)
        env = {**cconsts, **{v.id: c for v, c in zip(cond.inputs[nc:nc + ncarry], cur)}}
        live = _evaluate(ops, cond, env, upto=pred)(pred.inputs[0])
        b.cbranch(ops.any(live), step, done)
        b.position_at_end(step)
        env = {**bconsts, **{v.id: c for v, c in zip(body.inputs[nb:nb + ncarry], cur)}}
        arg = _evaluate(ops, body, env)
        for k, o in enumerate(body.outputs):
            b.store(b.select(live, arg(o), cur[k]), slots[k])
        b.branch(test)
        b.position_at_end(done)
        for k, dt in enumerate(self.dtypes):
            ops.store(dt, cur[k], ptrs[nc + nb + ncarry + k], e)
        b.store(b.add(e, ir.Constant(I64, ops.width)), index)
        b.branch(head)
        b.position_at_end(out)

    def run(self, params, args) -> list:
        nc, nb = self.nc, self.nb
        arrays = [np.ascontiguousarray(a) for a in args]
        init = arrays[nc + nb:]
        results = [np.empty(a.shape, dt) for a, dt in zip(init, self.dtypes)]
        table = (ctypes.c_void_p * len(arrays + results))(*[a.ctypes.data for a in arrays + results])
        size = init[0].size
        nt = min(num_threads(), -(-size // CHUNK))
        if nt <= 1:
            self.fn(table, 0, size)
        else:  # pieces handed out as threads come free: rows of slow elements are shared out
            pool = get_pool(nt)
            futures = [pool.submit(self.fn, table, lo, min(lo + CHUNK, size)) for lo in range(0, size, CHUNK)]
            for f in futures:
                f.result()
        return results


def _compile(text, vec_used):
    """(the kernel as a ctypes function, its engine) at LLVM's O3, for this machine."""
    from .module import OwnedEngine, math_ir, target_machine
    with _compile_lock:
        tm = target_machine(3)
        owner = OwnedEngine()  # a context of its own, freed after the engine (see module.py)
        ctx = owner.context()
        mod = llvm.parse_assembly(text, context=ctx)
        for extra in math_ir(vec_used, 0):
            mod.link_in(llvm.parse_assembly(extra, context=ctx))
        mod.triple = tm.triple
        mod.data_layout = str(tm.target_data)
        mod.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)
        engine = owner.engine = llvm.create_mcjit_compiler(mod, tm)
        engine.finalize_object()
        return KERNEL(engine.get_function_address("tj_elem_while")), owner
