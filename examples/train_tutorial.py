"""The tutorial's minimal training example, written with ``tj.jit`` and ``tj.grad``.

A weight vector W = [0.2, 0.7] is trained by gradient descent (learning rate 0.1) so that ``sum(x * W)`` for
x = [1, 1] reaches the target 20; each step prints the prediction before the update:
0.9, 8.54, 13.124, 15.8744, ... (the gap to 20 shrinks by 0.6 per step).
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
import tracejit as tj  # noqa: E402


def cost(W, x, target):
    """Squared error of the prediction, with the prediction as auxiliary output."""
    y = (x * W).sum()
    return np.square(target - y), y


@tj.jit
def train_step(W, x, target):
    """One SGD step: the prediction before the update and the updated weights, in one compiled call."""
    (_, y), g = tj.value_and_grad(cost, has_aux=True)(W, x, target)
    return y, W - 0.1 * g


def main(steps=10):
    W = np.asarray([0.2, 0.7])
    x = np.asarray([1.0, 1.0], dtype=np.float32)
    ys = []
    for _ in range(steps):
        y, W = train_step(W, x, 20.0)
        ys.append(float(y))
        print(f"{float(y):.10g}")
    return ys


if __name__ == "__main__":
    main()
