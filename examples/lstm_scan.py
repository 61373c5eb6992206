"""An LSTM character language model trained with Theano's ``scan`` + ``T.grad``: it learns to predict the next
character of a short text, and the loss falls.

The step over time is one ``theano.scan`` (one loop in the IR, whatever the sequence length); ``T.grad`` of the
summed cross-entropy differentiates through it (backpropagation through time: a reverse loop over the stored
states), and ``function(..., updates=...)`` applies one SGD step to the shared weights per call.

    python examples/lstm_scan.py             # or: python -m tracejit.theano examples/lstm_scan.py
"""
import numpy as np

try:
    import theano
    import theano.tensor as T
except ImportError:
    import tracejit as theano
    import tracejit.tensor as T

TEXT = "the quick brown fox jumps over the lazy dog. " * 4
chars = sorted(set(TEXT))
V, H, STEPS, BATCH = len(chars), 48, 24, 8
rng = np.random.default_rng(0)


def weight(*shape):
    return theano.shared((rng.standard_normal(shape) / np.sqrt(shape[0])).astype("float32"))


Wx, Wh = weight(V, 4 * H), weight(H, 4 * H)
b = theano.shared(np.concatenate([np.zeros(H), np.ones(H), np.zeros(2 * H)]).astype("float32"))  # forget gate 1
Wy, by = weight(H, V), theano.shared(np.zeros(V, "float32"))
params = [Wx, Wh, b, Wy, by]

X = T.ftensor3("X")  # (time, batch, V) one-hot characters
Y = T.fmatrix("Y")  # (time * batch, V): the next characters, one-hot
lr = T.fscalar("lr")


def step(x_t, h_tm1, c_tm1, Wx, Wh, b):
    z = T.dot(x_t, Wx) + T.dot(h_tm1, Wh) + b
    i = T.nnet.sigmoid(z[:, :H])
    f = T.nnet.sigmoid(z[:, H:2 * H])
    g = T.tanh(z[:, 2 * H:3 * H])
    o = T.nnet.sigmoid(z[:, 3 * H:])
    c = f * c_tm1 + i * g
    h = o * T.tanh(c)
    return h, c


h0 = T.zeros((X.shape[1], H), dtype="float32")
(hs, cs), _ = theano.scan(step, sequences=X, outputs_info=[h0, h0], non_sequences=[Wx, Wh, b])
logits = T.dot(hs.reshape((-1, H)), Wy) + by
loss = T.nnet.categorical_crossentropy(T.nnet.softmax(logits), Y).mean()
grads = T.grad(loss, params)
train = theano.function([X, Y, lr], loss, updates=[(p, p - lr * g) for p, g in zip(params, grads)])
evaluate = theano.function([X, Y], loss)


def batch(rng):
    idx = np.array([chars.index(ch) for ch in TEXT])
    starts = rng.integers(0, len(TEXT) - STEPS - 1, BATCH)
    eye = np.eye(V, dtype="float32")
    xs = np.stack([eye[idx[s:s + STEPS]] for s in starts], axis=1)  # (time, batch, V)
    ys = np.stack([eye[idx[s + 1:s + STEPS + 1]] for s in starts], axis=1).reshape(-1, V)
    return xs, ys


if __name__ == "__main__":
    fixed = batch(np.random.default_rng(1))
    first = float(evaluate(*fixed))
    print(f"step    0  loss {first:.3f}  (uniform guess: {np.log(V):.3f})")
    for it in range(1, 301):
        xs, ys = batch(rng)
        train(xs, ys, np.float32(1.0))
        if it % 50 == 0:
            print(f"step {it:4d}  loss {float(evaluate(*fixed)):.3f}")
    last = float(evaluate(*fixed))
    assert last < 0.5 * first, (first, last)
