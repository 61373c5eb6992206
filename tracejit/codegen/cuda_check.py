"""Is CUDA usable here? Imported lazily so the CPU path never imports CUDA. Owned by the GPU work."""


def devices():
    return ["cpu"]


def require_cuda(device):
    raise RuntimeError(f"device={device!r}: tracejit's CUDA backend is not available in this build")
