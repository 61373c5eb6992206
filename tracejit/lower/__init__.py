"""Between an optimized graph and a backend: the kernel plan every backend lowers (plan.py, fuse.py, memory.py) and
the scalar table (scalar.py, math_functions.py)."""


def plan_graph(graph, **options):
    """(fusion plan, memory plan) of an optimized graph: what every backend and tier lowers (``options``: the
    backend's parameters of the plan, see fuse.plan)."""
    from .fuse import plan
    from .matvec import share_matrix_reads
    from .memory import plan_memory
    p = plan(share_matrix_reads(graph), **options)
    return p, plan_memory(p)
