"""The executable: checks run-time shapes, allocates buffers, runs the compiled kernels."""
from __future__ import annotations

import numpy as np

from ..ir.interpret import evaluate


class InterpretedExecutable:
    """Runs a graph with numpy (the reference backend)."""

    num_kernels = 0

    def __init__(self, graph):
        self.graph = graph

    def run(self, arrays):
        return [np.array(o) for o in evaluate(self.graph, arrays)]

    def llvm_ir(self):
        return ""

    def asm(self):
        return ""


def compile_graph(graph, device="cpu"):
    if device != "cpu":
        from .cuda import compile_graph_cuda
        return compile_graph_cuda(graph, device)
    try:
        from .llvm import compile_graph_llvm
    except ImportError:
        return InterpretedExecutable(graph)
    return compile_graph_llvm(graph)
