"""Theano's random streams (``RandomStreams`` / ``MRG_RandomStreams``), default updates and ``x.shape`` outputs."""
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import tracejit as tj
import tracejit.tensor as T
from tracejit import function, shared
from tracejit.tensor.shared_randomstreams import RandomStreams
from tracejit.theano import random_bits as R


def test_tutorial_semantics_new_numbers_per_call_same_within_a_call():
    srng = RandomStreams(seed=234)
    rv_u, rv_n = srng.uniform((2, 2)), srng.normal((2, 2))
    f = function([], rv_u)
    g = function([], rv_n, no_default_updates=True)
    nearly_zeros = function([], rv_u + rv_u - 2 * rv_u)
    a, b = f(), f()
    assert a.shape == (2, 2) and a.dtype == np.float64 and not np.array_equal(a, b)
    assert np.array_equal(g(), g())  # its stream is not advanced
    assert np.array_equal(nearly_zeros(), np.zeros((2, 2)))


def test_state_can_be_saved_restored_and_reseeded():
    srng = RandomStreams(seed=7)
    rv = srng.uniform((3,))
    f = function([], rv)
    saved = rv.rng.get_value()
    first = f()
    rv.rng.set_value(saved)
    assert np.array_equal(f(), first)
    srng.seed(99)
    again = RandomStreams(seed=99)
    assert np.array_equal(f(), function([], again.uniform((3,)))())
    assert not np.array_equal(function([], RandomStreams(seed=98).uniform((3,)))(), first)


def test_streams_of_one_generator_are_independent():
    srng = RandomStreams(seed=1)
    a, b = srng.uniform((1000,)), srng.uniform((1000,))
    x, y = function([], [a, b])()
    assert abs(np.corrcoef(x, y)[0, 1]) < 0.1


@pytest.mark.parametrize("draw, dist", [
    (lambda s: s.uniform((20000,), low=2.0, high=5.0), stats.uniform(2.0, 3.0)),
    (lambda s: s.normal((20000,), avg=1.0, std=2.0), stats.norm(1.0, 2.0)),
])
def test_continuous_draws_follow_their_distribution(draw, dist):
    sample = function([], draw(RandomStreams(seed=3)))()
    assert stats.kstest(sample, dist.cdf).pvalue > 1e-3


def test_discrete_draws_follow_their_distribution():
    srng = RandomStreams(seed=5)
    coin = function([], srng.binomial((40000,), n=1, p=0.3))()
    assert coin.dtype == np.int64 and set(np.unique(coin)) == {0, 1} and abs(coin.mean() - 0.3) < 0.01
    five = function([], srng.binomial((40000,), n=5, p=0.5))()
    assert stats.chisquare(np.bincount(five, minlength=6), 40000 * stats.binom(5, 0.5).pmf(np.arange(6))).pvalue > 1e-3
    die = function([], srng.random_integers((60000,), 1, 6))()
    assert die.min() == 1 and die.max() == 6
    assert stats.chisquare(np.bincount(die)[1:]).pvalue > 1e-3
    pv = T.dmatrix("pv")
    counts = function([pv], srng.multinomial(pvals=pv).sum(axis=0))(np.tile([[0.2, 0.3, 0.5]], (30000, 1)))
    assert counts.sum() == 30000 and stats.chisquare(counts, [6000, 9000, 15000]).pvalue > 1e-3
    perm = function([], srng.permutation(n=50))()
    assert sorted(perm.tolist()) == list(range(50)) and perm.tolist() != list(range(50))


def test_dropout_mask_of_a_symbolic_shape_fuses_and_keeps_lengths_symbolic():
    srng = RandomStreams(seed=11)
    x = T.dmatrix("x")
    mask = srng.binomial(size=x.shape, p=0.8, dtype="float64")
    drop = function([x], x * mask / 0.8)
    out = drop(np.ones((500, 40)))
    assert out.shape == (500, 40) and abs((out == 0).mean() - 0.2) < 0.01
    assert drop(np.ones((3, 7))).shape == (3, 7)
    assert len(drop._execs) == 1  # a new length did not compile again


def test_float32_draws_and_truncated_normal():
    srng = RandomStreams(seed=2)
    u = function([], srng.uniform((1000,), dtype="float32"))()
    assert u.dtype == np.float32 and 0.0 <= u.min() and u.max() < 1.0
    t = function([], srng.truncated_normal((20000,)))()
    assert np.abs(t).max() <= 2.0 and 0.7 < t.std() < 0.95


def test_bits_are_the_same_traced_and_in_numpy():
    state = np.array([R.new_key(3, 0), 4], dtype=np.uint64)
    traced = tj.jit(lambda s, x: R.uniform(s, x.shape, 0.0, 1.0, np.float64))(state, np.zeros((4, 5)))
    assert np.array_equal(traced, R.uniform(state, (4, 5), 0.0, 1.0, np.float64))


def test_bad_arguments_are_named():
    srng = RandomStreams(seed=0)
    with pytest.raises(NotImplementedError, match="binomial: n must be"):
        srng.binomial((3,), n=1000)
    with pytest.raises(TypeError, match="multinomial: pvals"):
        srng.multinomial()
    with pytest.raises(TypeError, match="uniform: size must be"):
        srng.uniform(size="big")


def test_user_default_update_applies_unless_switched_off():
    s = shared(np.float64(0.0), name="s")
    s.default_update = s + 1
    f = function([], s * 2)
    assert f() == 0.0 and f() == 2.0 and s.get_value() == 2.0
    g = function([], s * 2, no_default_updates=True)
    assert g() == 4.0 and g() == 4.0
    h = function([], s * 2, updates=[(s, s + 10)])  # an explicit update wins
    assert h() == 4.0 and s.get_value() == 12.0


def test_shape_as_an_output_is_one_int_vector():
    x = T.dmatrix("x")
    f = function([x], x.shape)
    out = f(np.ones((2, 3)))
    assert isinstance(out, np.ndarray) and out.dtype == np.int64 and out.tolist() == [2, 3]
    assert function([x], [x.shape[0] * 2, x.sum()])(np.ones((2, 3)))[0] == 4


def test_theano_runner_aliases_random_streams(tmp_path):
    script = tmp_path / "rand.py"
    script.write_text("from theano.tensor.shared_randomstreams import RandomStreams\n"
                      "from theano.sandbox.rng_mrg import MRG_RandomStreams\n"
                      "import theano\n"
                      "srng = MRG_RandomStreams(seed=1)\n"
                      "f = theano.function([], srng.normal((4,)))\n"
                      "print(f().shape, RandomStreams is MRG_RandomStreams)\n")
    out = subprocess.run([sys.executable, "-m", "tracejit.theano", str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(4,) True"


def test_floatx_flag_sets_default_dtypes():
    code = ("import tracejit.tensor as T\n"
            "print(T.matrix('x').dtype, T.zeros((2,)).dtype, T.shared_randomstreams.RandomStreams(1).uniform((2,)).dtype)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "THEANO_FLAGS": "floatX=float32,device=cpu"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["float32"] * 3


def test_draws_inside_scan_differ_per_step_and_the_update_advances_by_the_steps():
    srng = RandomStreams(seed=3)
    v0 = T.dvector("v0")
    chain, updates = tj.scan(lambda v: srng.binomial(size=v.shape, n=1, p=0.5, dtype="float64") + 0 * v,
                             outputs_info=v0, n_steps=6)
    (rng, _), = updates.items()
    before = rng.get_value()
    f = function([v0], chain, updates=updates)
    a, b = f(np.zeros(64)), f(np.zeros(64))
    assert len({tuple(r) for r in a}) == 6 and not np.array_equal(a, b)
    assert rng.get_value()[1] == before[1] + 12 and abs(a.mean() - 0.5) < 0.1
    k = T.iscalar("k")
    walk, ups = tj.scan(lambda v: srng.normal(size=v.shape) + v, outputs_info=v0, n_steps=k)
    w = function([v0, k], walk, updates=ups)(np.zeros(2000), 4)
    steps = np.diff(np.vstack([np.zeros(2000), w]), axis=0)  # independent standard normal increments
    assert np.all(np.abs(steps.std(axis=1) - 1) < 0.1) and abs(np.corrcoef(steps[0], steps[1])[0, 1]) < 0.1
