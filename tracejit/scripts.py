"""``python -m tracejit.theano script.py`` and ``python -m tracejit.autograd script.py``: run another library's
script unchanged, its imports of that library answered by tracejit's modules."""
from __future__ import annotations

import runpy
import sys


def run_aliased(argv, install, command: str, library: str) -> int:
    """Run ``argv[0]`` as ``__main__`` (with ``argv`` as its ``sys.argv``) after ``install()`` has put tracejit's
    modules in ``sys.modules`` under ``library``'s names; ``command`` is what the usage line shows."""
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {command} script.py [args...]  (runs a script written for {library} on tracejit)", file=sys.stderr)
        return 2
    install()
    sys.argv = list(argv)
    runpy.run_path(argv[0], run_name="__main__")
    return 0
