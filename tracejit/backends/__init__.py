"""Backends: each turns the Plan of an optimized graph (tracejit.lower) into an executable. ``cpu/`` compiles with
LLVM (llvmlite); ``interpreter.py`` runs a graph with numpy; ``cache.py`` is the on-disk cache they share.
Backends import from ``ir``, ``lower`` and ``errors`` only (tests/test_layers.py checks)."""
