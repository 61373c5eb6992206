"""The CPU backend: every step of a Plan becomes an LLVM function (emitter.py, kernels.py, reductions.py,
streaming.py, steps.py over the scalar operations of scalar.py and the vector math of vecmath/), compiled by
module.py, called through the METH_FASTCALL entry of entry.py by the executable of executable.py (quick and
optimized tiers: tiers.py)."""
