"""Parsing model-written Python safely from many threads.

Input: source text. Output: the module's syntax tree (or the SyntaxError). CPython
3.11's `ast.parse` is not thread-safe: concurrent calls from pipeline items running
in threads can fail with "SystemError: AST constructor recursion depth mismatch",
so every parse of generated code goes through one lock. No side effects.
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
