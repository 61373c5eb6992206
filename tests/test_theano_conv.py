"""Theano's conv2d and pool_2d against direct-loop references, their gradients, and a LeNet that trains."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tracejit as tj
import tracejit.tensor as T
from tracejit import function
from tracejit.tensor.nnet import conv2d
from tracejit.tensor.signal.pool import pool_2d

sys.path.insert(0, str(Path(__file__).parent))
from conv_reference import conv_ref, pool_ref  # noqa: E402
from finite_differences import numeric_grad  # noqa: E402

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 9, 8))
W = RNG.standard_normal((4, 3, 3, 2))


@pytest.mark.parametrize("border_mode, pad", [("valid", (0, 0)), ("full", (2, 1)), ("half", (1, 1)),
                                              ((1, 2), (1, 2))])
@pytest.mark.parametrize("subsample", [(1, 1), (2, 3)])
def test_conv2d_matches_direct_loops(border_mode, pad, subsample):
    x, w = T.tensor4("x"), T.tensor4("w")
    f = function([x, w], conv2d(x, w, border_mode=border_mode, subsample=subsample))
    np.testing.assert_allclose(f(X, W), conv_ref(X, W, pad, subsample), rtol=1e-12, atol=1e-12)


def test_conv2d_dilation_no_flip_and_new_lengths_without_recompiling():
    x, w = T.tensor4("x"), T.tensor4("w")
    f = function([x, w], conv2d(x, w, filter_flip=False, filter_dilation=(2, 1)))
    np.testing.assert_allclose(f(X, W), conv_ref(X, W, (0, 0), (1, 1), (2, 1), flip=False), atol=1e-12)
    X2, W2 = RNG.standard_normal((3, 2, 12, 10)), RNG.standard_normal((5, 2, 4, 4))
    np.testing.assert_allclose(f(X2, W2), conv_ref(X2, W2, (0, 0), (1, 1), (2, 1), flip=False), atol=1e-12)
    assert len(f._execs) == 1


def test_one_channel_inputs_compile_one_executable():
    """A length-1 symbolic axis at every call (one input channel) compiles only that signature: nothing is
    compiled when the function is made, so the common signature is not built for nothing."""
    x, w = T.tensor4("x"), T.tensor4("w")
    f = function([x, w], conv2d(x, w))
    assert f.num_compiled == 0
    X1, W1 = RNG.standard_normal((2, 1, 7, 6)), RNG.standard_normal((3, 1, 3, 3))
    for _ in range(2):
        np.testing.assert_allclose(f(X1, W1), conv_ref(X1, W1, (0, 0), (1, 1)), atol=1e-12)
    assert f.num_compiled == 1
    np.testing.assert_allclose(f(X, W), conv_ref(X, W, (0, 0), (1, 1)), atol=1e-12)  # the common one, now
    assert f.num_compiled == 2 and f.graph is not None


MODES = ["max", "sum", "average_exc_pad", "average_inc_pad"]


@pytest.mark.parametrize("ignore_border", [True, False])
@pytest.mark.parametrize("stride", [None, (1, 2)])
def test_pool_2d_matches_direct_loops(ignore_border, stride):
    x = T.tensor4("x")
    f = function([x], [pool_2d(x, ws=(2, 3), ignore_border=ignore_border, mode=m, stride=stride) for m in MODES])
    for mode, out in zip(MODES, f(X)):
        ref = pool_ref(X, (2, 3), ignore_border, stride or (2, 3), (0, 0), mode)
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12, err_msg=mode)


def test_pool_2d_with_padding():
    x = T.tensor4("x")
    f = function([x], [pool_2d(x, ws=(3, 3), ignore_border=True, pad=(1, 2), stride=(2, 2), mode=m) for m in MODES])
    for mode, out in zip(MODES, f(X)):
        np.testing.assert_allclose(out, pool_ref(X, (3, 3), True, (2, 2), (1, 2), mode), atol=1e-12, err_msg=mode)


def test_gradients_of_conv_and_pool_match_finite_differences():
    x, w = T.tensor4("x"), T.tensor4("w")
    xs, ws = RNG.standard_normal((1, 2, 5, 4)), RNG.standard_normal((2, 2, 3, 2))
    y = pool_2d(T.tanh(conv2d(x, w, border_mode="half", subsample=(1, 1))), ws=(2, 2), ignore_border=False)
    loss = (y * y).sum()
    f = function([x, w], loss)
    gx, gw = function([x, w], T.grad(loss, [x, w]))(xs, ws)
    np.testing.assert_allclose(gx, numeric_grad(lambda a: f(a, ws), xs), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gw, numeric_grad(lambda a: f(xs, a), ws), rtol=1e-5, atol=1e-7)


def test_conv_and_pool_work_on_jit_tracers():
    f = tj.jit(lambda a, b: pool_2d(conv2d(a, b), ws=(2, 2), ignore_border=True))
    ref = pool_ref(conv_ref(X, W, (0, 0), (1, 1)), (2, 2), True, (2, 2), (0, 0), "max")
    np.testing.assert_allclose(f(X, W), ref, atol=1e-12)


def test_bad_arguments_are_named():
    x, w = T.tensor4("x"), T.tensor4("w")
    with pytest.raises(ValueError, match="border_mode"):
        conv2d(x, w, border_mode="same-ish")
    with pytest.raises(TypeError, match="input must be 4-d"):
        conv2d(T.matrix("m"), w)
    with pytest.raises(ValueError, match="filter_shape .* has 3 entries"):
        conv2d(x, w, filter_shape=(1, 2, 3))
    with pytest.raises(ValueError, match="pool_2d: mode"):
        pool_2d(x, ws=(2, 2), mode="median")
    with pytest.raises(TypeError, match="ws .* is required"):
        pool_2d(x)
    with pytest.raises(NotImplementedError, match="num_groups"):
        conv2d(x, w, num_groups=2)


def test_lenet_trains_and_runs_as_theano_code(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[1] / "examples"))
    import theano_lenet
    rng = np.random.default_rng(0)
    train, error = theano_lenet.build(rng, learning_rate=0.2)
    xs, ys = theano_lenet.synthetic_digits(40, rng)
    losses = [float(train(xs, ys)) for _ in range(12)]  # fitting one batch: the loss must fall fast
    assert losses[-1] < 0.7 * losses[0], losses
    assert float(error(xs, ys)) < 0.5
    script = tmp_path / "lenet_theano.py"
    script.write_text("import theano, theano.tensor as T\n"
                      "from theano.tensor.nnet import conv2d\n"
                      "from theano.tensor.signal import pool\n"
                      "import numpy as np\n"
                      "x = T.tensor4('x'); w = theano.shared(np.ones((2, 1, 3, 3)))\n"
                      "f = theano.function([x], pool.pool_2d(conv2d(x, w), ws=(2, 2), ignore_border=True))\n"
                      "print(f(np.ones((1, 1, 6, 6))).tolist())\n")
    out = subprocess.run([sys.executable, "-m", "tracejit.theano", str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str([[[[9.0, 9.0], [9.0, 9.0]], [[9.0, 9.0], [9.0, 9.0]]]])
