"""A LeNet in Theano's API (the deeplearning.net tutorial's model: two conv + max-pool layers, a tanh hidden layer,
softmax regression), trained with SGD on synthetic 28x28 "digits" (a class is a bright bar at a class-specific
place, plus noise), with dropout from MRG_RandomStreams. Prints the training loss, which falls, and the test error.

Run it as written (``import tracejit as theano``) or unchanged Theano code with ``python -m tracejit.theano``.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

import tracejit as theano  # noqa: E402
import tracejit.tensor as T  # noqa: E402
from tracejit.tensor.nnet import conv2d  # noqa: E402
from tracejit.tensor.signal.pool import pool_2d  # noqa: E402
from tracejit.theano.sandbox.rng_mrg import MRG_RandomStreams  # noqa: E402


def synthetic_digits(n, rng):
    """Images whose class (0..9) is where a bright bar lies: rows 2-24 for classes 0-4, columns for 5-9."""
    y = rng.integers(0, 10, n)
    x = rng.normal(0.0, 0.3, (n, 1, 28, 28))
    for i, c in enumerate(y):
        p = 3 + 5 * (c % 5)
        if c < 5:
            x[i, 0, p:p + 3, 4:24] += 1.5
        else:
            x[i, 0, 4:24, p:p + 3] += 1.5
    return x, y.astype(np.int64)


class ConvPoolLayer:
    def __init__(self, rng, input, filter_shape, poolsize=(2, 2)):
        fan_in = np.prod(filter_shape[1:])
        fan_out = filter_shape[0] * np.prod(filter_shape[2:]) // np.prod(poolsize)
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        self.W = theano.shared(rng.uniform(-bound, bound, filter_shape), name="W")
        self.b = theano.shared(np.zeros(filter_shape[0]), name="b")
        conv_out = conv2d(input=input, filters=self.W, filter_shape=filter_shape)
        pooled = pool_2d(input=conv_out, ws=poolsize, ignore_border=True)
        self.output = T.tanh(pooled + self.b.dimshuffle('x', 0, 'x', 'x'))
        self.params = [self.W, self.b]


def build(rng, batch=50, learning_rate=0.1):
    x, y = T.tensor4('x'), T.lvector('y')
    srng = MRG_RandomStreams(seed=1234)
    layer0 = ConvPoolLayer(rng, x, filter_shape=(8, 1, 5, 5))             # 28 -> 24 -> 12
    layer1 = ConvPoolLayer(rng, layer0.output, filter_shape=(16, 8, 5, 5))  # 12 -> 8 -> 4
    flat = layer1.output.flatten(2)
    W2 = theano.shared(rng.uniform(-0.1, 0.1, (16 * 4 * 4, 64)), name="W2")
    b2 = theano.shared(np.zeros(64), name="b2")
    hidden = T.tanh(T.dot(flat, W2) + b2)
    dropped = hidden * srng.binomial(size=hidden.shape, p=0.8, dtype='float64') / 0.8
    W3 = theano.shared(np.zeros((64, 10)), name="W3")
    b3 = theano.shared(np.zeros(10), name="b3")
    p_train = T.nnet.softmax(T.dot(dropped, W3) + b3)
    p_test = T.nnet.softmax(T.dot(hidden, W3) + b3)
    cost = T.mean(T.nnet.categorical_crossentropy(p_train, y))
    params = layer0.params + layer1.params + [W2, b2, W3, b3]
    grads = T.grad(cost, params)
    train = theano.function([x, y], cost, updates=[(p, p - learning_rate * g) for p, g in zip(params, grads)])
    error = theano.function([x, y], T.mean(T.neq(T.argmax(p_test, axis=1), y)))
    return train, error


def main(steps=60, batch=50):
    rng = np.random.default_rng(0)
    train, error = build(rng)
    xs, ys = synthetic_digits(steps * batch, rng)
    xt, yt = synthetic_digits(500, rng)
    t0 = time.perf_counter()
    losses = []
    for k in range(steps):
        losses.append(float(train(xs[k * batch:(k + 1) * batch], ys[k * batch:(k + 1) * batch])))
        if k % 10 == 0:
            print(f"step {k:3d}  loss {losses[-1]:.4f}")
    elapsed = time.perf_counter() - t0
    err = float(error(xt, yt))
    print(f"test error {err:.3f} after {steps} steps ({elapsed:.1f} s, first step includes compiling)")
    return losses, err


if __name__ == "__main__":
    main()
