"""Kernels -> machine code, one module per target."""
