"""Static refusal of the ways model-written Python reaches what it may not import.

Input: the syntax tree of a generated module (tool module, policy tests, data
script) and the builtins that kind of code may not name. Which modules may be
imported at all is the caller's allowlist; this module covers what an allowlist of
`import` statements cannot see. Output: one problem
sentence per offending construct, with its line, for the model's re-ask (empty
when there is none). Pure: nothing runs.

The class of problem: an import allowlist sees only `import` statements, while a
module object also reaches other modules through its attributes (`random._os`,
`typing.sys`, `uuid.os`), through the import machinery (`__import__`,
`builtins.__import__`, `importlib`), through dunder attributes of any object
(`().__class__.__base__.__subclasses__()`, `f.__globals__`) and through names
given as strings (`getattr(random, "_os")`, `operator.attrgetter("__globals__")`,
`"{0.__class__}".format(x)`). So the rules are about names, not modules:
- no dunder name or attribute at all (only `__name__` may be read, and the
  string "__main__" written, for the `if __name__ == "__main__":` idiom);
- no attribute starting with `_` except on `self` and `cls`;
- no name, attribute or `from`-import naming a module that reaches the
  interpreter, the OS or the network (`DANGEROUS_NAMES`: `sys`, `os`,
  `importlib`, `builtins`, `subprocess`, `ctypes`, `socket`, ...), whatever owns it;
- no star import;
- no refused builtin (`eval`, `exec`, `compile`, `globals`, `vars`, ... plus
  what the caller adds), even when only referenced (`f = eval`);
- no frame, code or traceback attribute (`gi_frame`, `f_globals`, `f_builtins`,
  `tb_frame`, ...: they reach other modules' globals and the builtins);
- `getattr`, `setattr`, `delattr`, `hasattr`, `attrgetter` and `methodcaller`
  only called directly, with literal names that pass the rules above (never
  passed around as values, as in `reduce(getattr, names, obj)`);
- `str.format` and `format_map` only on string literals (a computed format
  string reads attributes by name), and no `string.Formatter`;
- no string literal that contains a dunder name or reaches an attribute from a
  format field (`"{0._x}"`, `"{0.__class__}"`), docstrings included.
"""

from __future__ import annotations

import ast
import re

DANGEROUS_NAMES = frozenset(
    {
        "builtins",
        "importlib",
        "imp",
        "sys",
        "os",
        "posix",
        "nt",
        "subprocess",
        "ctypes",
        "socket",
        "shutil",
        "pathlib",
        "multiprocessing",
        "threading",
        "pty",
        "fcntl",
        "resource",
        "marshal",
        "pickle",
        "runpy",
        "sysconfig",
        "mmap",
        "tempfile",
        "asyncio",
        "urllib",
        "http",
        "ssl",
        "zipimport",
        "pkgutil",
        "gc",
        "inspect",
    }
)
REFUSED_BUILTINS = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "globals",
        "locals",
        "vars",
        "dir",
        "breakpoint",
        "input",
        "help",
    }
)
NAME_LOOKUPS = frozenset(
    {"getattr", "setattr", "delattr", "hasattr", "attrgetter", "methodcaller"}
)
FORMATTERS = frozenset({"format", "format_map", "vformat", "Formatter"})
INTROSPECTION_NAMES = frozenset(
    {
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "f_globals",
        "f_builtins",
        "f_locals",
        "f_back",
        "f_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "co_consts",
        "co_names",
    }
)
READABLE_DUNDERS = frozenset({"__name__"})
ALLOWED_DUNDER_STRINGS = frozenset({"__main__"})
SELF_NAMES = frozenset({"self", "cls"})
_FORMAT_ATTRIBUTE = re.compile(r"\{[^{}]*\.\s*_")
_DUNDER_TEXT = re.compile(r"__\w+__")


def escape_problems(
    tree: ast.Module, refused: frozenset[str] = frozenset()
) -> list[str]:
    """Constructs that can reach modules or internals the code may not use.

    Args:
        tree: The parsed module.
        refused: Builtins this kind of code may not name, besides
            `REFUSED_BUILTINS` (e.g. `open` for tool modules).

    Returns:
        Problem sentences in line order, each naming the construct and why.
    """
    found: list[tuple[int, str]] = []
    names = REFUSED_BUILTINS | refused
    callees = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        problems = _node_problems(node, names)
        if id(node) not in callees:
            problems += _reference_problems(node)
        for problem in problems:
            found.append((line, f"line {line}: {problem}"))
    found.sort(key=lambda item: item[0])
    return list(dict.fromkeys(problem for _, problem in found))


def _node_problems(node: ast.AST, refused: frozenset[str]) -> list[str]:
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
        return _name_problems(node.id, refused)
    if isinstance(node, ast.Attribute):
        return _attribute_problems(node)
    if isinstance(node, ast.ImportFrom):
        return _from_import_problems(node)
    if isinstance(node, ast.Call):
        return _lookup_problems(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _string_problems(node.value)
    return []


def _name_problems(name: str, refused: frozenset[str]) -> list[str]:
    if _is_dunder(name) and name not in READABLE_DUNDERS:
        return [f"`{name}` is not allowed: {_DUNDER_REASON}"]
    if name in refused:
        return [
            f"{name}() is not allowed, not even as a reference: it can run or "
            "inspect code, or touch files, outside the runtime's API"
        ]
    if name in DANGEROUS_NAMES:
        return [f"`{name}` is not allowed: {_reaches(name)}"]
    return []


def _attribute_problems(node: ast.Attribute) -> list[str]:
    shown = _shown(node)
    attribute = node.attr
    if _is_dunder(attribute):
        return [f"`{shown}` is not allowed: {_DUNDER_REASON}"]
    if attribute.startswith("_"):
        owner = node.value
        if not (isinstance(owner, ast.Name) and owner.id in SELF_NAMES):
            return [f"`{shown}` is not allowed: {_PRIVATE_REASON}"]
    if attribute in DANGEROUS_NAMES:
        return [f"`{shown}` is not allowed: {_reaches(attribute)}"]
    if attribute in INTROSPECTION_NAMES:
        return [
            f"`{shown}` is not allowed: frames, code objects and tracebacks reach "
            "the globals and builtins of other modules"
        ]
    return []


def _reference_problems(node: ast.AST) -> list[str]:
    """Name lookups and formatters used other than as a direct call."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        name = node.id
    elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
        name = node.attr
    else:
        return []
    if name in NAME_LOOKUPS or name in FORMATTERS:
        return [
            f"`{name}` is not allowed as a value: call it directly, with a literal "
            "name or format string"
        ]
    return []


def _from_import_problems(node: ast.ImportFrom) -> list[str]:
    module = node.module or ""
    problems = []
    for alias in node.names:
        name = alias.name
        if name == "*":
            problems.append(
                f"`from {module} import *` is not allowed: name what you import"
            )
        elif _is_dunder(name):
            problems.append(f"`from {module} import {name}`: {_DUNDER_REASON}")
        elif name.startswith("_"):
            problems.append(f"`from {module} import {name}`: {_PRIVATE_REASON}")
        elif name in DANGEROUS_NAMES:
            problems.append(
                f"`from {module} import {name}` is not allowed: {_reaches(name)}"
            )
    return problems


def _lookup_problems(node: ast.Call) -> list[str]:
    function = node.func
    if isinstance(function, ast.Name):
        called = function.id
    elif isinstance(function, ast.Attribute):
        called = function.attr
    else:
        return []
    if called == "Formatter":
        return [
            "`Formatter` is not allowed: it reads the attributes a format string "
            "names; use an f-string"
        ]
    if called in FORMATTERS:
        receiver = function.value if isinstance(function, ast.Attribute) else None
        literal = isinstance(receiver, ast.Constant) and isinstance(receiver.value, str)
        if literal or receiver is None:  # a literal, or the builtin format()
            return []
        return [
            f"`{called}` on a computed format string is not allowed: format fields "
            "read attributes by name; use an f-string"
        ]
    if called not in NAME_LOOKUPS:
        return []
    names = node.args[1:2] if called.endswith("attr") else node.args[:1]
    if called == "attrgetter":
        names = node.args
    problems = []
    for argument in names:
        literal = isinstance(argument, ast.Constant) and isinstance(argument.value, str)
        if not literal:
            problems.append(
                f"`{called}` with a computed name is not allowed: it can reach any "
                "attribute; write the attribute name literally"
            )
            continue
        assert isinstance(argument, ast.Constant)
        for part in str(argument.value).split("."):
            if part.startswith("_") or part in DANGEROUS_NAMES:
                problems.append(
                    f"`{called}(..., {argument.value!r})` is not allowed: it reaches "
                    f"`{part}` by name, which the code may not reach directly"
                )
    return problems


def _string_problems(text: str) -> list[str]:
    if _FORMAT_ATTRIBUTE.search(text):
        return [
            f"the string {_clip(text)} is not allowed: a format field that reads "
            "an attribute starting with '_' reaches interpreter internals"
        ]
    if text not in ALLOWED_DUNDER_STRINGS and _DUNDER_TEXT.search(text):
        return [
            f"the string {_clip(text)} is not allowed: it contains a dunder name, "
            "which can be looked up by name to reach interpreter internals"
        ]
    return []


_DUNDER_REASON = (
    "dunder names and attributes reach the interpreter's internals (the import "
    "machinery, globals, class hierarchies)"
)
_PRIVATE_REASON = (
    "attributes starting with '_' are private; on a module they reach the modules "
    "it imported (as `random._os` reaches `os`)"
)


def _reaches(name: str) -> str:
    root = name.split(".")[0]
    return (
        f"it reaches the module '{root}', which gives access to the interpreter, "
        "the files, processes or the network"
    )


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def _shown(node: ast.Attribute) -> str:
    try:
        text = ast.unparse(node)
    except (ValueError, RecursionError):
        text = f"....{node.attr}"
    return text if len(text) <= 60 else f"...{text[-57:]}"


def _clip(text: str) -> str:
    shown = text if len(text) <= 40 else f"{text[:37]}..."
    return repr(shown)
