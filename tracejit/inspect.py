"""Looking at what the compiler did: explain(), graph pictures. Owned by the Jupyter work."""


def explain(lowered):
    return lowered.as_text("optimized")
