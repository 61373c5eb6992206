"""Matrix-vector products that read the same matrix, lowered so that the matrix is read once.

A matrix-vector product over a large matrix is bound by memory: BLAS's gemv streams the matrix once per call, so
``X @ w`` and ``X @ v`` (a Hessian-vector product's forward pass) read X twice. Stacking the vectors into one
gemm does not help with OpenBLAS, whose gemm with two columns runs slower than two gemvs. Instead each product of a
group over one matrix becomes a reduction over it,

    X @ b    (b one column)   ->  sum(X * b.T, axis=1)   a row reduction (also w @ X.T, w one row)
    X.T @ r  (r one column)   ->  sum(X * r, axis=0)     a column reduction (also r @ X, r one row)

and the planner (``lower/fuse.py``) puts reductions over the same domain and input into one loop nest, where each
element of X is loaded once and feeds every product; the elementwise work on the products joins that kernel's tail.
A lone product keeps its BLAS call: the rewrite only pays when a read is shared.

This is a planning step, not a pass of the optimizer: which reads a loop nest can share is a question of lowering,
and the optimized graph (what ``Lowered`` shows and the disk cache keys on) stays as the optimizer left it.
"""
from __future__ import annotations

from typing import NamedTuple

from ..ir import ops
from ..ir.graph import Equation, Graph, Value, rebuild
from .dims import DimCanon

ROWS = "rows"        # one dot product per row of the matrix: X @ b, w @ X.T
COLUMNS = "columns"  # one dot product per column of the matrix: X.T @ r, r @ X
_FLIPPED = {ROWS: COLUMNS, COLUMNS: ROWS}


class MatVec(NamedTuple):
    """A matrix-vector product seen as dot products along the rows or the columns of ``matrix``."""
    matrix: Value
    along: str            # ROWS or COLUMNS
    vector: Value         # the other operand, as the graph holds it: one column (k, 1) or one row (1, k)
    vector_is_column: bool


def matvec_of(e: Equation, canon: DimCanon) -> MatVec | None:
    """``e`` as a MatVec when it is a product of a 2-d real float matrix with one column or one row, else None.

    A transposed matrix is seen through (``X.T @ r`` is a column product over X), so products with X and with X.T
    are told apart and two with X.T share X. ``canon`` equates the lengths the graph's run-time checks force
    equal (the vector's length is often another symbol than the matrix's)."""
    if e.prim != "matmul":
        return None
    a, b = e.inputs
    if a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype or a.dtype.kind != "f":
        return None
    if _is_one(b.shape[1]) and canon.eq(b.shape[0], a.shape[1]):     # a @ column
        mv = MatVec(a, ROWS, b, True)
    elif _is_one(a.shape[0]) and canon.eq(a.shape[1], b.shape[0]):   # row @ b, i.e. (b.T @ row.T).T
        mv = MatVec(b, COLUMNS, a, False)
    else:
        return None
    t = mv.matrix.eqn
    if t is not None and t.prim == "transpose" and tuple(t.p["perm"]) == (1, 0):
        mv = mv._replace(matrix=t.inputs[0], along=_FLIPPED[mv.along])
    return mv


def _is_one(d) -> bool:
    return isinstance(d, int) and d == 1


def shared_matvecs(graph: Graph) -> dict:
    """Output id -> MatVec of every matrix-vector product whose matrix another product along the same axis also
    reads."""
    if sum(e.prim == "matmul" for e in graph.eqns) < 2:  # most programs: no work for the planner's hot path
        return {}
    groups: dict = {}
    canon = DimCanon(graph.constraints)
    for e in graph.eqns:
        mv = matvec_of(e, canon)
        if mv is not None:
            groups.setdefault((mv.matrix.id, mv.along), []).append((e, mv))
    return {e.out.id: mv for members in groups.values() if len(members) > 1 for e, mv in members}


def as_reduction(e: Equation, mv: MatVec, env: dict):
    """``e``'s product as a multiply and a sum over the matrix (same shape and dtype as the matmul's result);
    ``env`` maps values already rewritten to their new form."""
    matrix, vector = env.get(mv.matrix.id, mv.matrix), env.get(mv.vector.id, mv.vector)
    want_column = mv.along == COLUMNS  # X * r[:, None] summed over rows; X * b[None, :] summed over columns
    if want_column != mv.vector_is_column:
        vector = ops.bind("transpose", vector, perm=(1, 0))
    terms = ops.bind("multiply", matrix, vector)
    dots = ops.bind("sum", terms, axes=(0,) if mv.along == COLUMNS else (1,))
    return ops.bind("reshape", dots, shape=tuple(e.out.shape))


def share_matrix_reads(graph: Graph) -> Graph:
    """``graph`` with each group of matrix-vector products over one matrix written as reductions over it (see the
    module docstring), each group's reductions next to each other; the graph itself when there is no group."""
    shared = shared_matvecs(graph)
    if not shared:
        return graph
    env: dict = {}
    groups: dict = {}  # (matrix id, along) -> the sum Values of its products
    with ops.Builder():
        for e in graph.eqns:
            ins = [env.get(x.id, x) for x in e.inputs]
            if e.out.id in shared:
                mv = shared[e.out.id]
                env[e.out.id] = as_reduction(e, mv, env)
                groups.setdefault((mv.matrix.id, mv.along), []).append(env[e.out.id].eqn.inputs[0])
            elif e.prim == "reshape" and ins[0].eqn is not None and ins[0].eqn.prim == "reshape" \
                    and ins[0] is not e.inputs[0]:
                env[e.out.id] = _reshape_of_reshape(ins[0], e.out.shape)  # (k0, 1) back to (k0,)
            elif any(a is not b for a, b in zip(ins, e.inputs)):
                env[e.out.id] = ops.bind(e.prim, *ins, **e.p)
    out = rebuild(graph, outputs=[env.get(o.id, o) for o in graph.outputs])
    for sums in groups.values():
        out.eqns = schedule_together(out.eqns, sums)
    return out


def schedule_together(eqns: list, sums: list) -> list:
    """``eqns`` reordered so that the reductions ``sums`` (and their multiplies) sit next to the last of them.

    The planner fuses in equation order, and the graph's order puts a product's vector right before the product:
    in ``(r @ X, X.T @ (2 * r))`` the kernel for ``2 * r`` would come between the two reductions and split them.
    Moving the earlier reductions (and what reads them) after the last one keeps every input before its reader;
    when the last reduction itself reads an earlier one, the order stays as it was."""
    index = {id(e): i for i, e in enumerate(eqns)}
    group = {id(s.eqn) for s in sums} | {id(s.eqn.inputs[0].eqn) for s in sums}
    if not group <= index.keys():  # (not expected: every product was live, so is its reduction)
        return eqns
    first, last = min(index[k] for k in group), max(index[k] for k in group)
    last_sum = eqns[last]
    moved: set = set()
    for e in eqns[first:last + 1]:
        if (id(e) in group and e is not last_sum and e is not last_sum.inputs[0].eqn) \
                or any(x.eqn is not None and id(x.eqn) in moved for x in e.inputs):
            moved.add(id(e))
    if id(last_sum) in moved or id(last_sum.inputs[0].eqn) in moved:
        return eqns
    window = eqns[first:last + 1]
    return eqns[:first] + [e for e in window if id(e) not in moved] + [e for e in window if id(e) in moved] \
        + eqns[last + 1:]


def _reshape_of_reshape(inner, shape):
    """reshape(reshape(x, s1), s2) -> x when x has shape s2, else reshape(x, s2)."""
    x = inner.eqn.inputs[0]
    return x if tuple(x.shape) == tuple(shape) else ops.bind("reshape", x, shape=tuple(shape))
