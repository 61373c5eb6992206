"""The device executable: runs a graph's Plan (lower/fuse.py) and memory plan (lower/memory.py) on a CUDA device.

The plan is the CPU backend's: the same kernels (one generated CUDA kernel per plan Kernel), the same buffers and
the same reuse of dead temporaries. A call binds the length symbols from the inputs' shapes, checks the graph's
constraints, allocates one flat device array per buffer slot, launches every step in order and raises IndexError
when a gather or scatter-add met a bad index. Inputs may be numpy or numba device arrays; the results are device
arrays when any input was one, numpy arrays otherwise.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ...ir import types as T
from ...ir.interpret import check_constraints
from ...lower import plan_graph
from ...lower.plan import BufferKind, Kernel
from .check import device_index
from .kernel import threads_of, uses_blocks, write_kernel
from .source import MAX_BLOCKS, NUMBA_TYPE, SIM, SPLIT_CHUNKS, TPB, blocks_for, generated_kernel
from .steps import step_launch


def is_device_array(x) -> bool:
    if SIM:
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray
        return isinstance(x, FakeCUDAArray)
    return not isinstance(x, np.ndarray) and hasattr(x, "__cuda_array_interface__")


class KernelLaunch:
    """A plan Kernel's generated kernel, launched with a thread or a block per outer iteration."""

    def __init__(self, plan, k: Kernel):
        self.launchable, self.threads, self.blocks = write_kernel(plan, k), threads_of(k), uses_blocks(k)

    @property
    def kernels(self):
        return [self.launchable.kernel]

    def run(self, arrays, env):
        n = int(T.eval_dim(self.threads, env))
        self.launchable.launch(arrays, env, n, grid=max(1, min(MAX_BLOCKS, n)) if self.blocks else None)


def _size(shape, env) -> int:
    return int(np.prod([T.eval_dim(d, env) for d in shape], dtype=np.int64))


class CudaExecutable:
    """The compiled program for one graph and device: ``run`` takes numpy or device arrays."""

    def __init__(self, graph, device="cuda"):
        self.graph = graph
        self.device = device
        self.device_index = device_index(device)
        self.plan, self.memory = plan_graph(graph, split_chunks=SPLIT_CHUNKS)
        self.launches = [KernelLaunch(self.plan, s) if isinstance(s, Kernel) else step_launch(self.plan, s)
                         for s in self.plan.steps]
        self._consts: dict = {}
        self._flag = None
        if not SIM and cuda.is_available():  # compile now, not on the first call (PTX alone needs no GPU)
            for k in self.kernels():
                k.compiled()

    @property
    def num_kernels(self) -> int:
        """The plan's loop nests: the CPU backend's count for the same graph."""
        return self.plan.num_kernels

    @property
    def kernel_groups(self) -> list:
        return self.plan.kernel_groups

    # -- buffers
    def _const(self, b):
        x = self._consts.get(b.id)
        if x is None:
            x = self._consts[b.id] = cuda.to_device(np.ascontiguousarray(b.const, b.dtype).reshape(-1))
        return x

    def _flag_array(self):
        if self._flag is None:
            self._flag = cuda.to_device(np.zeros(1, np.int64))
        return self._flag

    def _buffers(self, inputs, env) -> list:
        """The flat device array of every plan buffer; reused temporaries share their slot's array."""
        arrays = [None] * len(self.plan.buffers)
        slot_of = self.memory.slot_of
        for b in self.plan.buffers:
            if b.kind is BufferKind.INPUT:
                arrays[b.id] = inputs[b.input_index]
            elif b.kind is BufferKind.CONST:
                arrays[b.id] = self._const(b)
            elif b.kind is BufferKind.FLAG:
                arrays[b.id] = self._flag_array()
            else:
                root = slot_of.get(b.id, b.id)
                if arrays[root] is None:
                    rb = self.plan.buffers[root]
                    arrays[root] = cuda.device_array(max(_size(rb.shape, env), 1), dtype=rb.dtype)
                arrays[b.id] = arrays[root]
        return arrays

    # -- calls
    def run(self, arrays):
        if self.device_index:
            with cuda.gpus[self.device_index]:
                return self._run(arrays)
        return self._run(arrays)

    def _run(self, arrays):
        on_device = any(is_device_array(a) for a in arrays)
        env = {s: tuple(arrays[i].shape)[ax] for s, (i, ax) in self.graph.symbols.items()}
        check_constraints(self.graph, env)
        inputs = [_input(v, a) for v, a in zip(self.graph.inputs, arrays)]
        bufs = self._buffers(inputs, env)
        for launch in self.launches:
            launch.run(bufs, env)
        if self.plan.flag is not None and self._flag.copy_to_host()[0]:
            self._flag = None  # a fresh zero flag for the next call
            raise IndexError("an integer-array index is out of bounds for the axis it indexes")
        outs, seen = [], set()
        for bid in self.plan.outputs:
            b = self.plan.buffers[bid]
            shape = tuple(int(T.eval_dim(d, env)) for d in b.shape)
            flat = bufs[bid]
            if on_device:
                if id(flat) in seen:  # an output listed twice: a second array, not an alias
                    flat = _device_copy(flat)
                seen.add(id(flat))
                outs.append(_device_output(flat, shape, b.dtype))
            else:
                outs.append(flat.copy_to_host()[:_size(shape, {})].reshape(shape))
        return outs

    # -- inspection
    def kernels(self) -> list:
        return [k for launch in self.launches for k in launch.kernels]

    def cuda_source(self) -> str:
        """The generated kernels (Python source compiled by numba.cuda), one block per plan step."""
        parts = []
        for step, launch in zip(self.plan.steps, self.launches):
            for k in launch.kernels:
                parts.append(f"# {type(step).__name__} -> kernel {k.name}{k.sig[4:]}\n{k.source}")
        return "\n".join(parts)

    def asm(self) -> str:
        """PTX of every kernel (needs NVVM, not a GPU); under the simulator a note saying there is none."""
        if SIM:
            return "# PTX is not generated under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)\n"
        return "\n".join(f"// kernel {k.name}\n{k.ptx()}" for k in self.kernels())

    def memory_plan(self, example_args=None):
        return self.memory.report(self.plan, example_args)


# ------------------------------------------------------------------------------------------------ inputs, outputs
def _input(v, a):
    """A flat device array holding input ``a`` in C order, of the graph input's dtype."""
    if is_device_array(a):
        return _device_flat(a, np.dtype(v.dtype))
    a = np.ascontiguousarray(np.asarray(a), dtype=v.dtype)
    if a.size == 0:
        return cuda.device_array(1, dtype=a.dtype)
    return cuda.to_device(a.reshape(-1))


def _device_flat(x, dtype):
    """A device array as a flat one: zero-copy when C-contiguous, else one strided copy kernel."""
    arr = x if SIM or isinstance(x, cuda.devicearray.DeviceNDArray) else cuda.as_cuda_array(x)
    shape = tuple(arr.shape)
    n = int(np.prod(shape, dtype=np.int64))
    if n == 0:
        return cuda.device_array(1, dtype)
    if arr.is_c_contiguous():
        return arr.reshape(n)
    out = cuda.device_array(n, dtype)
    rank = len(shape)
    dims = [f"d{k}" for k in range(rank)]
    src = [f"def copy_nd(n, {', '.join(dims)}, O, A):", "    i = cuda.grid(1)", "    while i < n:", "        _r = i"]
    for k in range(rank - 1, 0, -1):
        src += [f"        j{k} = _r % d{k}", f"        _r = _r // d{k}"]
    src += ["        j0 = _r", f"        O[i] = A[{', '.join(f'j{k}' for k in range(rank))}]",
            "        i += cuda.gridsize(1)"]
    ty = NUMBA_TYPE[np.dtype(dtype)]
    kern = generated_kernel("copy_nd", "\n".join(src) + "\n",
                            ["int64"] * (rank + 1) + [f"{ty}[::1]", f"{ty}[{', '.join([':'] * rank)}]"])
    kern[blocks_for(n), TPB](n, *shape, out, arr)
    return out


def _device_copy(flat):
    out = cuda.device_array(flat.shape, flat.dtype)
    out.copy_to_device(flat)
    return out


def _device_output(flat, shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    data = flat if flat.size == n else flat[:n]
    try:
        return data.reshape(shape)
    except Exception:
        return cuda.devicearray.DeviceNDArray(shape, (), dtype, gpu_data=data.gpu_data)


def compile_graph_cuda(graph, device="cuda") -> CudaExecutable:
    return CudaExecutable(graph, device)
