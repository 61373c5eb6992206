"""The second call (issue 16): it runs the first tier and nothing else (no thread started or woken in it, no wait
on the background compile); the first call plans the tier-up, which happens only if the function is called
again; later calls never wait on a compile whose estimate has run out; results agree across the switch."""
import threading
import time

import numpy as np
import pytest

import tracejit as tj
from tracejit.backends.cpu import jobs, tiers

from test_compile_time import _entry_exe, _f, hook_optimized_compile, quick_first_call

rng = np.random.default_rng(1616)


@pytest.fixture
def handovers(monkeypatch):
    """Each job handed to a worker thread and each thread started: (the thread that did it, what)."""
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")  # a disk hit would skip the first tier
    seen = []
    hand, spawn, start = jobs._Worker.hand, jobs._spawn, threading.Thread.start

    def recorded(what, fn):
        def record(*args):
            seen.append((threading.get_ident(), what))
            return fn(*args)
        return record
    monkeypatch.setattr(jobs._Worker, "hand", recorded("hand", hand))
    monkeypatch.setattr(jobs, "_spawn", recorded("spawn", spawn))
    monkeypatch.setattr(threading.Thread, "start", recorded("thread", start))
    return seen


def test_the_second_call_hands_nothing_over_and_the_compile_follows(handovers, monkeypatch):
    monkeypatch.setattr(tiers, "TIER_UP_DELAY", 0.5)  # (a slow moment between the calls must not start it first)
    f, x, want, exe = quick_first_call(700)
    del handovers[:]
    np.testing.assert_allclose(f(x), want, rtol=1e-13)  # the second call: earns the tier-up the first call planned
    assert handovers == [], "the second call started or woke a thread"
    deadline = time.time() + 60
    while exe.tier < 1 and time.time() < deadline:  # the timer thread starts the compile, a worker runs it
        time.sleep(0.01)
    assert exe.tier == 1 and exe.tier_up_error is None
    assert handovers and all(t != threading.get_ident() for t, _ in handovers)
    np.testing.assert_allclose(f(x), want, rtol=1e-13)


def test_a_function_called_once_compiles_no_optimized_tier(monkeypatch):
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    monkeypatch.setattr(tiers, "TIER_UP_DELAY", 0.01)
    f = tj.jit(lambda x: np.exp(np.cos(x)) * 2.0 - np.log1p(x * x))
    x = rng.standard_normal(300)
    f(x)
    exe = _entry_exe(f)
    job = exe._job
    assert exe.tier == 0 and job is not None and job.started_at is None  # planned, not started
    assert job.join(30)  # its time came: dropped, as the function was not called again
    assert job.lost and job.started_at is None and exe.tier == 0
    np.testing.assert_allclose(f(x), np.exp(np.cos(x)) * 2.0 - np.log1p(x * x), rtol=1e-13)  # earns it now
    exe.wait()
    assert exe.tier == 1 and exe._job is not job


def test_no_call_waits_on_a_compile_that_overran_its_estimate(monkeypatch):
    """Once the background compile has taken longer than predicted, what is left of it is unknown: small calls
    keep running the first tier (they joined it before, one call of Game of Life waited 1.2 s)."""
    gate = threading.Event()

    def held():
        assert gate.wait(60)
    hook_optimized_compile(monkeypatch, held)
    f = tj.jit(_f)
    x = rng.standard_normal(1000)
    f(x)
    f(x)
    exe = _entry_exe(f)
    jobs.start_now(exe._job)  # (rather than waiting for its planned time)
    exe._job.started_at = time.perf_counter() - 3600  # "started an hour ago": far past any estimate
    try:
        t0 = time.perf_counter()
        for _ in range(5):
            np.testing.assert_allclose(f(x), _f(x), rtol=1e-13)
        assert time.perf_counter() - t0 < 10 and exe.tier == 0  # (waiting would have been 60 s)
    finally:
        gate.set()
    exe.wait()
    assert exe.tier == 1


def test_results_agree_across_the_switch_with_transcendental_functions(monkeypatch):
    """libm in the first tier, the vector library in the optimized one: both within a few ulps of numpy."""
    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")
    f = tj.jit(_f)
    x = np.concatenate([rng.standard_normal(2000) * 3, [0.0, -0.0, 1e-300, 20.0, -20.0, 710.0]])
    with np.errstate(all="ignore"):
        want = _f(x)
    first = [f(x), f(x)]
    exe = _entry_exe(f)
    assert exe.tier == 0
    exe.wait()
    assert exe.tier == 1
    for got in first + [f(x)]:
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_a_call_that_waits_for_a_failed_compile_runs_the_first_tier(monkeypatch):
    """A call worth waiting for the optimized tier, whose compile then fails, runs the first tier's code (it
    recursed until RecursionError: a bound method is a new object at each lookup, never ``is`` ``run``)."""
    monkeypatch.setattr(tiers, "TIER1_COMPILE_RATIO", 0.0)  # "the compile is nearly done": always worth waiting

    def failing():
        raise MemoryError("no room for the optimized tier")
    hook_optimized_compile(monkeypatch, failing)
    f = tj.jit(_f)
    x = rng.standard_normal(400)
    f(x)
    f(x)
    with pytest.warns(RuntimeWarning, match="optimized tier failed to compile"):
        for _ in range(3):
            np.testing.assert_allclose(f(x), _f(x), rtol=1e-13)
    exe = _entry_exe(f)
    assert exe.tier == 0 and isinstance(exe.tier_up_error, MemoryError)


def test_the_quick_tier_reads_no_byte_past_an_array(monkeypatch):
    """LLVM's x86 code generator at opt level 0 folds a float select's operand loaded from memory into a 16-byte
    ``vblendvps``/``vblendvpd`` operand: the last element's select read up to 12 bytes past the array (a crash
    when it ends at an unmapped page; valgrind saw it in scipy.special.logit). The quick tier selects on bits."""
    import re

    import llvmlite.binding as llvm

    from tracejit.backends.cpu import module

    monkeypatch.setenv("TRACEJIT_DISABLE_CACHE", "1")  # a disk hit would skip the first tier
    text = """define void @f(ptr %p, ptr %o, i64 %i, i1 %c) {
entry:
  %a = getelementptr inbounds DT, ptr %p, i64 %i
  %v = load DT, ptr %a
  %"r 1" = select  i1 %c, DT %v, DT              0x0
  store DT %"r 1", ptr %o
  ret void
}"""
    folded = re.compile(r"vblendvp[sd]\s+%xmm\d+, \((?!%rsp)")  # a memory operand that is not a stack slot
    tm = module.target_machine(module.TIER0_CODEGEN)
    for dt, it in (("float", "i32"), ("double", "i64")):
        fixed = module.integer_selects(text.replace("DT", dt))
        assert f"select i1 %c, {it}" in fixed and f"select  i1 %c, {dt}" not in fixed
        assert not folded.search(tm.emit_assembly(llvm.parse_assembly(fixed)))

    def logit(x):  # scipy.special.logit's decomposition: selects whose operand is the loaded element
        m = np.abs(x - 0.5) <= 0.25
        return np.where(m, 2.0 * np.arctanh(2.0 * np.where(m, x, 0.5) - 1.0), np.log(x / (1 - x)))
    for dt in (np.float32, np.float64):
        x = np.linspace(0.1, 0.9, 300).astype(dt)
        f = tj.jit(logit)
        np.testing.assert_allclose(f(x), logit(x), rtol=1e-6 if dt == np.float32 else 1e-14)
        quick = _entry_exe(f)._exe
        assert quick.tier == 0
        asm = tm.emit_assembly(llvm.parse_assembly(quick.compiled.optimized_ir))
        assert not folded.search(asm)
