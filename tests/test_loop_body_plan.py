"""Planning of loop bodies (lower/fuse.py): a body's scalar terms do not split its array work."""
import numpy as np

import tracejit as tj


def _body_plan(f):
    exe = next(e for es in f._specs.values() for e in es).exe
    (body,) = exe._bodies.values()
    return body.plan


def test_a_scalar_term_after_the_array_work_joins_its_kernel():
    """``x * a + 0.01 * sin(x) + 1e-4 * i``: the 0-d ``1e-4 * float(i)`` came after the array part, closed its
    kernel and opened a second one over the same elements (one more pass over x and one more compile)."""
    f = tj.jit(lambda x: tj.fori_loop(0, 10, lambda i, x: x * 0.98 + 0.01 * np.sin(x) + 1e-4 * i, x))
    x = np.linspace(0, 1, 1000)
    want = x.copy()
    for i in range(10):
        want = want * 0.98 + 0.01 * np.sin(want) + 1e-4 * i
    np.testing.assert_allclose(f(x), want, rtol=1e-14)
    plan = _body_plan(f)
    array_kernels = [k for k in plan.steps if getattr(k, "domain", ())]
    assert len(array_kernels) == 1, [k.domain for k in plan.steps]
    assert not [b for b in plan.buffers if b.kind.name == "TEMP" and b.shape], plan.buffers


def test_scalars_that_read_array_results_keep_their_place():
    """A 0-d value computed from a reduction is no pure scalar: it stays after the reduction it reads."""
    f = tj.jit(lambda x: tj.fori_loop(0, 3, lambda i, x: x / (x.sum() + 1.0) + 0.5 * i, x))
    x = np.linspace(0, 1, 100)
    want = x.copy()
    for i in range(3):
        want = want / (want.sum() + 1.0) + 0.5 * i
    np.testing.assert_allclose(f(x), want, rtol=1e-13)
