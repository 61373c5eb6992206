"""The Theano tutorial's logistic regression: shared weights trained by gradient descent through updates."""
import sys
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import tracejit as theano  # noqa: E402
import tracejit.tensor as T  # noqa: E402

rng = numpy.random.default_rng(0)
N = 400                                   # training sample size
feats = 784                               # number of input variables
D = (rng.standard_normal((N, feats)), rng.integers(size=N, low=0, high=2))
training_steps = 200

x = T.dmatrix("x")
y = T.dvector("y")
w = theano.shared(rng.standard_normal(feats), name="w")
b = theano.shared(0., name="b")

p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))         # probability that the target is 1
prediction = p_1 > 0.5                            # the prediction, thresholded
xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)  # cross-entropy loss
cost = xent.mean() + 0.01 * (w ** 2).sum()        # the cost to minimize
gw, gb = T.grad(cost, [w, b])

train = theano.function(inputs=[x, y], outputs=[prediction, xent],
                        updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)))
predict = theano.function(inputs=[x], outputs=prediction)

for i in range(training_steps):
    pred, err = train(D[0], D[1])

print("final cost:", float(err.mean() + 0.01 * (w.get_value() ** 2).sum()))
print("training accuracy:", float((predict(D[0]) == D[1]).mean()))
