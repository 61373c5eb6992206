"""Python values -> IR."""
