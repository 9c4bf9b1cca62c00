"""Parsing model-written Python safely from many threads.

Input: source text. Output: the module's syntax tree (or the SyntaxError), and the
literal strings a module assigns to a top-level constant (read statically, so the
code never runs). CPython 3.11's `ast.parse` is not thread-safe: concurrent calls
from pipeline items running in threads can fail with "SystemError: AST constructor
recursion depth mismatch", so every parse goes through one lock
(`tasks.core.ast_parse`).
No side effects.
"""

from __future__ import annotations

import ast

from tasks.core.ast_parse import parse_python

__all__ = ["declared_strings", "parse_python"]


def declared_strings(tree: ast.Module, name: str) -> tuple[str, ...] | None:
    """The strings a module assigns to a top-level constant, read without running it.

    Args:
        tree: The parsed module.
        name: The constant, e.g. "CONFIRM_TOOLS".

    Returns:
        The names of its last top-level assignment; None when it never assigns it.

    Raises:
        ValueError: If the value is not a literal tuple or list of strings.
    """
    declared: tuple[str, ...] | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if not any(isinstance(t, ast.Name) and t.id == name for t in targets):
            continue
        elements = value.elts if isinstance(value, ast.Tuple | ast.List) else None
        strings = [
            e.value
            for e in elements or ()
            if isinstance(e, ast.Constant) and isinstance(e.value, str)
        ]
        if elements is None or len(strings) != len(elements):
            raise ValueError(f"{name} must be a literal tuple of names")
        declared = tuple(strings)
    return declared
