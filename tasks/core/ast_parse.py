"""One lock for every `ast.parse` of the process.

Input: Python source text. Output: its syntax tree (or the SyntaxError). CPython
3.11's parser keeps its recursion depth in shared state, so two threads parsing at
once can fail with "SystemError: AST constructor recursion depth mismatch"; code
versions (`tasks.caching`) and checks of model-written code
(`tasks.core.python_source`) both parse here. Kept apart from `python_source` so
that a step's code version does not depend on the helpers for generated code. No
side effects.
"""

from __future__ import annotations

import ast
import threading

_PARSE_LOCK = threading.Lock()


def parse_python(source: str) -> ast.Module:
    """`ast.parse`, serialised across threads.

    Raises:
        SyntaxError: the source does not parse.
    """
    with _PARSE_LOCK:
        return ast.parse(source)
