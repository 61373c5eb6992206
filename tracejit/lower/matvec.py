"""Matrix-vector products that read the same matrix, lowered so that the matrix is read once.

A matrix-vector product over a large matrix is bound by memory: BLAS's gemv streams the matrix once per call, so
``X @ w`` and ``X @ v`` (a Hessian-vector product's forward pass) read X twice. Stacking the vectors into one
gemm does not help with OpenBLAS, whose gemm with two columns runs slower than two gemvs. Instead each product of a
group over one matrix becomes a reduction over it,

    X @ b    (b one column)   ->  sum(X * b.T, axis=1)   a row reduction
    X.T @ r  (r one column)   ->  sum(X * r, axis=0)     a column reduction

and the planner (``lower/fuse.py``) puts reductions over the same domain and input into one loop nest, where each
element of X is loaded once and feeds every product; the elementwise work on the products joins that kernel's tail.
A lone product keeps its BLAS call: the rewrite only pays when a read is shared.

This is a planning step, not a pass of the optimizer: which reads a loop nest can share is a question of lowering,
and the optimized graph (what ``Lowered`` shows and the disk cache keys on) stays as the optimizer left it.
"""
from __future__ import annotations

from ..ir import ops
from ..ir.graph import Equation, Graph, rebuild
from .dims import DimCanon

ROWS = "rows"        # X @ b: one dot product per row of X
COLUMNS = "columns"  # X.T @ r: one dot product per column of X


def matvec_operand(e: Equation, canon: DimCanon):
    """(matrix, orientation) when ``e`` is a product of a 2-d real float matrix with one column, else None.

    ``matmul(transpose(X), r)`` is keyed on X itself, so products with X and with X.T are told apart and two
    products with X.T share X. ``canon`` equates the lengths the graph's run-time checks force equal (the
    vector's length is often another symbol than the matrix's)."""
    if e.prim != "matmul":
        return None
    a, b = e.inputs
    if a.ndim != 2 or b.ndim != 2 or not _is_one(b.shape[1]):
        return None
    if a.dtype != b.dtype or a.dtype.kind != "f" or not canon.eq(b.shape[0], a.shape[1]):
        return None
    t = a.eqn
    if t is not None and t.prim == "transpose" and tuple(t.p["perm"]) == (1, 0):
        return t.inputs[0], COLUMNS
    return a, ROWS


def _is_one(d) -> bool:
    return isinstance(d, int) and d == 1


def shared_matvecs(graph: Graph) -> dict:
    """Output id -> (matrix, orientation) of every matrix-vector product whose matrix another product of the same
    orientation also reads."""
    if sum(e.prim == "matmul" for e in graph.eqns) < 2:  # most programs: no work for the planner's hot path
        return {}
    groups: dict = {}
    canon = DimCanon(graph.constraints)
    for e in graph.eqns:
        key = matvec_operand(e, canon)
        if key is not None:
            groups.setdefault((key[0].id, key[1]), []).append((e, key))
    return {e.out.id: key for members in groups.values() if len(members) > 1 for e, key in members}


def as_reduction(e: Equation, matrix, orientation: str):
    """``e``'s product as a multiply and a sum over ``matrix`` (same shape and dtype as the matmul's result)."""
    b = e.inputs[1]
    if orientation == ROWS:
        terms = ops.bind("multiply", matrix, ops.bind("transpose", b, perm=(1, 0)))
        dots = ops.bind("sum", terms, axes=(1,))
    else:
        terms = ops.bind("multiply", matrix, b)
        dots = ops.bind("sum", terms, axes=(0,))
    return ops.bind("reshape", dots, shape=tuple(e.out.shape))


def share_matrix_reads(graph: Graph) -> Graph:
    """``graph`` with each group of matrix-vector products over one matrix written as reductions over it (see the
    module docstring); the graph itself when there is no such group."""
    shared = shared_matvecs(graph)
    if not shared:
        return graph
    env: dict = {}
    with ops.Builder():
        for e in graph.eqns:
            ins = [env.get(x.id, x) for x in e.inputs]
            if e.out.id in shared:
                env[e.out.id] = as_reduction(e, *shared[e.out.id])
            elif e.prim == "reshape" and ins[0].eqn is not None and ins[0].eqn.prim == "reshape" \
                    and ins[0] is not e.inputs[0]:
                env[e.out.id] = _reshape_of_reshape(ins[0], e.out.shape)  # (k0, 1) back to (k0,)
            elif any(a is not b for a, b in zip(ins, e.inputs)):
                env[e.out.id] = ops.bind(e.prim, *ins, **e.p)
    return rebuild(graph, outputs=[env.get(o.id, o) for o in graph.outputs])


def _reshape_of_reshape(inner, shape):
    """reshape(reshape(x, s1), s2) -> x when x has shape s2, else reshape(x, s2)."""
    x = inner.eqn.inputs[0]
    return x if tuple(x.shape) == tuple(shape) else ops.bind("reshape", x, shape=tuple(shape))
