"""The CUDA backend (numba.cuda): runs the same Plan as the CPU backend, one generated kernel per plan Kernel.

  check.py       is CUDA usable here (no numba.cuda import at module level: ``import tracejit`` stays light)
  scalar.py      the scalar table's abstract operations spelled as numba source
  source.py      the kernel source builder and the compiled kernels
  kernel.py      a plan Kernel as one kernel (one thread per outer iteration)
  steps.py       CopyStep, ScatterAddStep, MatmulStep
  executable.py  CudaExecutable: buffers, launches, device arrays in and out
"""
