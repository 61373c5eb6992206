"""Theano-style symbolic tensors (``from tracejit import tensor``). Owned by the Theano-API work."""
