"""A tanh RNN trained with ``scan`` + ``grad``: it learns to output the running mean of a noisy sequence.

The recurrence is one ``scan`` (one loop in the IR whatever the sequence length); ``grad`` differentiates through
it by a reverse scan over the stored hidden states (backpropagation through time).
``python examples/rnn_scan.py`` trains for a few hundred steps and prints the loss.
"""
import numpy as np

import tracejit as tj


def init_params(rng, hidden, dtype=np.float32):
    s = 1.0 / np.sqrt(hidden)
    return {"wx": (rng.standard_normal((1, hidden)) * s).astype(dtype),
            "wh": (rng.standard_normal((hidden, hidden)) * s).astype(dtype),
            "b": np.zeros(hidden, dtype),
            "wo": (rng.standard_normal((hidden, 1)) * s).astype(dtype)}


def predict(params, xs):
    """xs: (time, batch, 1) -> predictions (time, batch, 1)."""
    def cell(h, x):
        h = np.tanh(x @ params["wx"] + h @ params["wh"] + params["b"])
        return h, h @ params["wo"]
    h0 = np.zeros((xs.shape[1], params["wh"].shape[0]), xs.dtype)
    return tj.scan(cell, h0, xs)[1]


def loss(params, xs, targets):
    return ((predict(params, xs) - targets) ** 2).mean()


@tj.jit
def train_step(params, xs, targets, lr):
    value, grads = tj.value_and_grad(loss)(params, xs, targets)
    return value, {k: params[k] - lr * grads[k] for k in params}


def make_batch(rng, steps=20, batch=16, dtype=np.float32):
    xs = rng.standard_normal((steps, batch, 1)).astype(dtype)
    targets = np.cumsum(xs, axis=0) / np.arange(1, steps + 1, dtype=dtype)[:, None, None]
    return xs, targets


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    params = init_params(rng, 32)
    for it in range(301):
        xs, targets = make_batch(rng)
        value, params = train_step(params, xs, targets, np.float32(0.1))
        if it % 50 == 0:
            print(f"step {it:3d}  loss {float(value):.4f}")
