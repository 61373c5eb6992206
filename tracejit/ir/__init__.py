"""The one language every stage speaks: types, primitives, graphs."""
