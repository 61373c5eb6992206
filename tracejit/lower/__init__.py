"""Between an optimized graph and a backend: the kernel plan every backend lowers (plan.py, fuse.py, memory.py) and
the scalar table (scalar.py, math_functions.py)."""


def plan_graph(graph):
    """(fusion plan, memory plan) of an optimized graph: what every backend and tier lowers."""
    from .fuse import plan
    from .memory import plan_memory
    p = plan(graph)
    return p, plan_memory(p)
