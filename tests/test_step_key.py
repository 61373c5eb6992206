"""Pre-emission dedup (issue 16): each distinct step body of a program has its IR built once, decided by a
structural key computed before emission (backends/cpu/step_key.py), and the program it builds is exactly the
one that emitting every step and comparing their IR text gives."""
import numpy as np
import pytest

import tracejit as tj
from tracejit.backends.cpu import executable
from tracejit.backends.cpu.executable import LLVMExecutable

rng = np.random.default_rng(1616)


def _mlp_loss(ws, x):
    h = x
    for w in ws:
        h = np.tanh(h @ w) + 0.1 * np.exp(-h * h)
    return np.sum(h * h)


def _mlp_args(depth, n=16):
    return [rng.standard_normal((n, n)) / 4 for _ in range(depth)], rng.standard_normal((n, n))


def _numpy_mlp_grad(ws, x):
    """The gradient of _mlp_loss in the weights, by hand in numpy."""
    hs, pre = [x], []
    for w in ws:
        z = hs[-1] @ w
        pre.append(z)
        hs.append(np.tanh(z) + 0.1 * np.exp(-hs[-1] * hs[-1]))
    g, grads = 2 * hs[-1], [None] * len(ws)
    for i in reversed(range(len(ws))):
        h, z = hs[i], pre[i]
        gz = g * (1 - np.tanh(z) ** 2)
        grads[i] = h.T @ gz
        g = gz @ ws[i].T + g * 0.1 * np.exp(-h * h) * (-2 * h)
    return grads


def _source(f, *args):
    """The program IR of ``f`` on ``args`` as the optimized tier builds it (no LLVM compile)."""
    graph = tj.jit(f).lower(*args).optimized
    exe = LLVMExecutable(graph, tier=1, cache_only=True, known_kernels_only=True)
    return exe.source, exe.compile_stats


@pytest.fixture
def counted_bodies(monkeypatch):
    """How many step bodies have their IR built (one StepEmitter each)."""
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    built = [0]
    real = executable.StepEmitter

    class Counting(real):
        def __init__(self, *a, **kw):
            built[0] += 1
            super().__init__(*a, **kw)
    monkeypatch.setattr(executable, "StepEmitter", Counting)
    return built


def test_a_20_layer_mlp_gradient_builds_each_distinct_body_once(counted_bodies):
    built = {}
    for depth in (4, 20):
        counted_bodies[0] = 0
        ws, x = _mlp_args(depth)
        source, stats = _source(tj.grad(_mlp_loss), ws, x)
        built[depth] = counted_bodies[0], source.num_functions, stats["steps_reused"]
    (b4, f4, _), (b20, f20, reused20) = built[4], built[20]
    # each distinct body built once: as many builds as distinct functions, the same at depth 4 and 20
    assert b20 == f20 == b4 == f4, built
    assert reused20 > 5 * b20, built
    ws, x = _mlp_args(20)
    f = tj.jit(tj.grad(_mlp_loss))
    for got, want in zip(f(ws, x), _numpy_mlp_grad(ws, x)):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def _programs():
    x, y = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    col, row = rng.standard_normal((5, 1)), rng.standard_normal((1, 7))
    idx = np.array([4, 0, 2, 2, -1])
    vec = rng.standard_normal(11)
    ints = rng.integers(-9, 9, (5, 7))
    ws, h = _mlp_args(3, n=6)
    return {
        "mlp gradient": (tj.grad(_mlp_loss), ws, h),
        "softmax and column sums": (lambda a, b: (np.exp(a) / np.exp(a).sum(1, keepdims=True),
                                                  np.exp(b) / np.exp(b).sum(0), a.sum(0), b.sum(1)), x, y),
        "broadcast shapes": (lambda a, b, c, r: (a * 2.0 + 1.0, c * 2.0 + 1.0, (c + r) * 2.0, (a + b) * 2.0),
                             x, y, col, row),
        "ints and floats": (lambda i, a: (i * 3 + 1, a * 3 + 1, i * 3.0 + 1, np.abs(i) % 4, np.abs(a) % 4),
                            ints, x),
        "gathers and their gradient": (tj.grad(lambda a, b: np.sum(np.tanh(a[idx]) * np.tanh(b[idx]))), x, y),
        "signed zeros": (lambda u, v: (np.where(u > 1, u, 0.0), np.where(v > 1, v, -0.0)), vec, vec[:7]),
        "float32": (lambda a, b: (np.sum(a * a), np.sum(b * b), np.sum(a.astype(np.float32) ** 2)), x, y),
    }


@pytest.mark.parametrize("name", list(_programs()))
def test_the_program_is_the_one_text_dedup_alone_makes(name, monkeypatch):
    """Keys equal only for steps whose IR is equal: the module is byte for byte the one built by emitting every
    step and sharing bodies of equal text, and the built program computes numpy's results."""
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    f, *args = _programs()[name]
    with_keys, stats = _source(f, *args)
    monkeypatch.setattr(executable, "PREEMISSION_DEDUP", False)
    text_only, _ = _source(f, *args)
    assert with_keys.whole == text_only.whole
    assert with_keys.num_functions == text_only.num_functions


def test_signed_zeros_keep_their_own_bodies():
    """0.0 == -0.0 in Python: a key comparing constants by value would merge these steps and lose a sign."""
    x, y = rng.standard_normal(9), rng.standard_normal(5)  # two lengths: two kernels, one body
    f = tj.jit(lambda a, b: (np.where(a > 1, a, 0.0), np.where(b > 1, b, -0.0)))
    got = f(x, y)
    np.testing.assert_array_equal(np.signbit(got[0]), np.signbit(np.where(x > 1, x, 0.0)))
    np.testing.assert_array_equal(np.signbit(got[1]), np.signbit(np.where(y > 1, y, -0.0)))


def test_steps_with_little_work_are_optimized_without_the_loop_vectorizer(monkeypatch):
    """A BLAS call and loops over a few elements known at compile time skip O3's loop passes; loops over
    symbolic lengths keep them; every tier computes numpy's results."""
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    from tracejit.backends.cpu.step_key import LIGHT_MAX_ELEMENTS, is_light
    from tracejit.lower import plan_graph
    c = np.linspace(0, 1, 64).reshape(8, 8)

    def f(x, w):
        return np.exp(c * x.sum()) + 1.0, np.tanh(x) + 1.0, x.reshape(8, -1) @ w

    x, w = rng.standard_normal(64), rng.standard_normal((8, 5))
    plan, _ = plan_graph(tj.jit(f).lower(x, w).optimized)
    light = {type(s).__name__ + str(getattr(s, "domain", "")): is_light(s) for s in plan.steps}
    assert light["Kernel(8, 8)"] and light["MatmulStep"], light
    assert light["Kernel(n,)"] is False, light  # symbolic lengths: full O3
    assert 64 <= LIGHT_MAX_ELEMENTS
    g = tj.jit(f).compile(x, w)
    exe = next(iter(g._cache.values()))[0]
    assert exe.tier == 1 and sorted(k.light for k in exe.source.kernels) == [False, False, True, True, True]
    ir_of = {k.light: m.optimized_ir for k, m in zip(exe.source.kernels, exe.compiled.kernels)}
    assert "vector.body" in ir_of[False] and "vector.body" not in ir_of[True]
    want = (np.exp(c * x.sum()) + 1.0, np.tanh(x) + 1.0, x.reshape(8, -1) @ w)
    for got, ref in zip(g(x, w), want):
        np.testing.assert_allclose(got, ref, rtol=1e-13)
