"""A while_loop over independent elements runs tile by tile, each tile's loop inside the cache.

The shape: every carry is an array of one shape S; the predicate is ``any(m)`` where ``m`` is an elementwise
function of the carries (and of loop constants of shape S or 0-d); every body output is ``where(m, g(...), carry)``
with the same ``m`` and an elementwise ``g`` (what ``vmap`` makes of a per-element while_loop, e.g. Mandelbrot's
escape iteration). Then an element whose ``m`` is false never changes again, and ``m`` of one element reads only
that element: element e ends as the per-element loop ``while m_e: s_e = g(s_e)`` leaves it, whatever the other
elements do. So any partition of the elements gives the same result: each tile of TILE elements runs its own
while_loop (stopping when its own elements are done) on buffers that stay in cache, instead of every iteration
streaming the whole arrays through memory. Only this proven shape is tiled; anything else runs as one loop.
"""
from __future__ import annotations

import numpy as np

from ...ir import ops
from ...ir.graph import Value
from ...ir.regions import close_graph
from ...ir.types import Dim, TensorType
from ...lower.scalar import RULES
from .loop_runner import COPY_ROW, LOAD_ROW, LOOP, ROW, STOP_IF
from .loops import FOREVER, BodyFrame, Carries, run_ops
from .threads import get_pool, num_threads

ELEMENTWISE = frozenset(RULES) | {"where", "convert"}
TILE = 2048  # elements per tile: a body's few arrays of them stay in the L1/L2 cache
TILE_SYMBOL = "tj_tile"
MIN_TILES_PER_THREAD = 8  # fewer tiles than this per thread: one thread runs them all


def _producers(graph) -> dict:
    return {e.out.id: e for e in graph.eqns}


def _keys(graph, roles):
    """``key(value)``: the value's computation spelled in terms of ``roles`` (one per graph input), so equal
    computations in two graphs (the predicate's and the body's copy of ``m``) compare equal."""
    made, memo = _producers(graph), {}
    for v, r in zip(graph.inputs, roles):
        memo[v.id] = r

    def key(v):
        k = memo.get(v.id)
        if k is None:
            if v.is_const:
                c = np.asarray(v.const)
                k = ("lit", c.dtype.str, c.shape, c.tobytes())
            else:
                e = made[v.id]
                k = (e.prim, repr(e.params), tuple(key(x) for x in e.inputs))
            memo[v.id] = k
        return k
    return key


def _elementwise(graph, n_inputs, shape, allow=None) -> bool:
    """Every equation (but ``allow``) elementwise, on and to values of ``shape`` or 0-d."""
    ok = (shape, ())
    if any(v.shape not in ok for v in graph.inputs[:n_inputs]):
        return False
    for e in graph.eqns:
        if e is allow:
            continue
        if e.out.shape not in ok or any(x.shape not in ok for x in e.inputs):
            return False
        if e.prim not in ELEMENTWISE and not (e.prim == "broadcast_to" and e.inputs[0].shape == ()):
            return False
    return True


def tileable(params, outer_inputs) -> bool:
    """Whether a while_loop has the shape of the module docstring (checked on its graphs, once)."""
    cond, body = params["cond"], params["body"]
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    carries = body.graph.inputs[nb:body.num_inputs]
    if not carries or not carries[0].shape:
        return False
    shape = carries[0].shape
    if any(v.shape != shape for v in carries):
        return False
    pred = _producers(cond.graph).get(cond.graph.outputs[0].id)
    if pred is None or pred.prim != "any" or pred.out.shape != () or pred.inputs[0].shape != shape:
        return False
    if not (_elementwise(cond.graph, cond.num_inputs, shape, allow=pred)
            and _elementwise(body.graph, body.num_inputs, shape)):
        return False
    ncarry = len(carries)
    cond_key = _keys(cond.graph, [("const", v.id) for v in outer_inputs[:nc]] + [("carry", k) for k in range(ncarry)])
    body_key = _keys(body.graph, [("const", v.id) for v in outer_inputs[nc:nc + nb]] +
                     [("carry", k) for k in range(ncarry)])
    mask = cond_key(pred.inputs[0])
    made = _producers(body.graph)
    for k, out in enumerate(body.graph.outputs):
        e = made.get(out.id)
        if e is None or e.prim != "where" or e.inputs[2].id != carries[k].id or body_key(e.inputs[0]) != mask:
            return False
    return True


def tile_graph(region, shape):
    """The region's graph over one tile: its arrays of ``shape`` become vectors of a length of their own."""
    n = region.num_inputs
    tile = Dim.symbol(TILE_SYMBOL)
    with ops.Builder():
        fresh = [Value(TensorType(v.dtype, (tile,) if v.shape == shape else ()), name=v.name)
                 for v in region.graph.inputs[:n]]
        env = {v.id: f for v, f in zip(region.graph.inputs, fresh)}
        for e in region.graph.eqns:
            params = dict(e.p, shape=(tile,)) if e.prim == "broadcast_to" else e.p  # a 0-d value per element
            env[e.out.id] = ops.bind(e.prim, *[env.get(x.id, x) for x in e.inputs], **params)
        graph, witness = close_graph(fresh, [env.get(o.id, o) for o in region.graph.outputs])
    if witness:
        raise ValueError("a tiled body uses a length besides its tile's")
    return graph


class TiledWhile:
    """The tiled run of one while_loop: the predicate and body compiled over a tile (``build`` compiles them)."""

    def __init__(self, params, build):
        self.shape = params["body"].graph.inputs[params["body_nconsts"]].shape
        self.cond = build(tile_graph(params["cond"], self.shape))
        self.body = build(tile_graph(params["body"], self.shape))

    def run(self, cond_exe, body_exe, params, args) -> list:
        """The final carries; ``cond_exe``/``body_exe``: the tile graphs' current LLVMExecutables."""
        nc, nb = params["cond_nconsts"], params["body_nconsts"]
        init = [np.ascontiguousarray(a) for a in args[nc + nb:]]
        size = init[0].size
        results = [np.empty(a.shape, a.dtype) for a in init]
        full, rest = divmod(size, TILE)
        nt = max(1, min(num_threads(), full // MIN_TILES_PER_THREAD))
        # thread t runs tiles t, t + nt, t + 2 nt, ...: interleaved, so slow regions of the array are shared
        parts = [(t * TILE, TILE, (full - t + nt - 1) // nt, nt * TILE) for t in range(nt)]
        if rest:
            parts.append((full * TILE, rest, 1, 0))
        pool = get_pool(nt - 1) if nt > 1 else None
        futures = [pool.submit(self._run_tiles, cond_exe, body_exe, nc, nb, args, init, results, *p)
                   for p in parts[1:]] if pool is not None else []
        for p in parts[:1] if pool is not None else parts:
            self._run_tiles(cond_exe, body_exe, nc, nb, args, init, results, *p)
        for f in futures:
            f.result()
        return results

    def _run_tiles(self, cond_exe, body_exe, nc, nb, args, init, results, start, length, trips, step):
        """``trips`` tiles of ``length`` elements, from element ``start`` on, ``step`` elements apart (each tile
        its own while loop, on buffers of its own: threads run different tiles at once)."""
        if trips <= 0:
            return
        def tile_input(a):
            a = np.ascontiguousarray(a)
            return np.empty(length, a.dtype) if a.ndim else a
        carries = Carries([np.empty(length, a.dtype) for a in init])
        cframe = BodyFrame(cond_exe, [tile_input(a) for a in args[:nc]] + carries.values)
        bframe = BodyFrame(body_exe, [tile_input(a) for a in args[nc:nc + nb]] + carries.values)
        inner = carries.feed(cframe, nc) + cframe.calls() + [(STOP_IF, cframe.slot(cframe.plan.outputs[0]), 0, 0, 0)]
        inner += carries.feed(bframe, nb) + bframe.calls() + carries.update(bframe)
        inner_table = np.array(inner, np.int64).reshape(-1, 5)
        outer, keep = [], [inner_table]
        for k, a in enumerate(init):
            outer.append((LOAD_ROW, carries.cur.cell(k), a.ctypes.data + start * a.itemsize, step * a.itemsize,
                          length * a.itemsize))
        for frame, consts in ((cframe, args[:nc]), (bframe, args[nc:nc + nb])):
            for j, a in enumerate(consts):
                if np.ndim(a):
                    a = np.ascontiguousarray(a)
                    keep.append(a)
                    outer += [(ROW, s, a.ctypes.data + start * a.itemsize, step * a.itemsize, 0)
                              for s in frame.input_slots(j)]
        outer.append((LOOP, inner_table.ctypes.data, len(inner), FOREVER, 0))
        for k, r in enumerate(results):
            outer.append((COPY_ROW, r.reshape(-1)[start:].ctypes.data, step * r.itemsize, carries.cur.cell(k),
                          length * r.itemsize))
        run_ops(outer, trips)
        cframe.check_flag()
        bframe.check_flag()
        del keep  # (the tables and constants lived until here)
