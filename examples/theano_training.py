"""The Theano tutorial's training loop: a shared weight vector updated by gradient descent at every call.

Prints the prediction before each update: 0.9, 8.54, 13.124, 15.8744, ... moving toward the target 20.
"""
import sys
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import tracejit as theano  # noqa: E402
import tracejit.tensor  # noqa: E402,F401

x = theano.tensor.fvector('x')
target = theano.tensor.fscalar('target')
W = theano.shared(numpy.asarray([0.2, 0.7]), 'W')
y = (x * W).sum()
cost = theano.tensor.sqr(target - y)
gradients = theano.tensor.grad(cost, [W])
W_updated = W - (0.1 * gradients[0])
f = theano.function([x, target], y, updates=[(W, W_updated)])
for i in range(10):
    print(f([1.0, 1.0], 20.0))
