"""s09 static checks of model-written code, run before anything executes.

Inputs: the source of a tool module or of a policy-test file, and the server's
`EnvironmentSpec`. Output: problem sentences for instructor to send back to the
model (empty when the code may go to the sandbox), and `assertion_count`, which
measures whether a test edit weakened the tests. The module must parse, import only
an allowed standard-library subset and `tasks.runtime`, reach no other module
through attributes, dunders, the import machinery or names given as strings
(`code_escapes`), touch no files, processes or wall clock, define exactly one
function per tool whose signature fits the tool's schema (checked with the runtime's
own `signature_problems` on the signature read from the syntax tree, so the code is
never imported here), and declare `CONFIRM_TOOLS` as the policy requires. Pure:
parsing only, nothing runs.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from schemas.environment import EnvironmentSpec
from tasks.core.code_escapes import escape_problems
from tasks.core.python_source import declared_strings, parse_python
from tasks.runtime.harness import FIXTURES
from tasks.runtime.implementations import CONFIRM_TOOLS_ATTRIBUTE, signature_problems

STDLIB_ALLOWED = frozenset(
    {
        "__future__",
        "collections",
        "dataclasses",
        "datetime",
        "decimal",
        "enum",
        "functools",
        "itertools",
        "json",
        "math",
        "operator",
        "re",
        "statistics",
        "string",
        "typing",
    }
)
RUNTIME_MODULE = "tasks.runtime"
TEST_ONLY_IMPORTS = frozenset({"pytest"})
FORBIDDEN_CALLS = frozenset({"open", "exit", "quit"})
"""Builtins refused in tool modules and policy tests, besides those every kind of
generated code is refused (`code_escapes.REFUSED_BUILTINS`, dunder names)."""
WALL_CLOCK = frozenset({"now", "utcnow", "today", "time", "monotonic"})
CLOCK_OWNERS = frozenset({"datetime", "date", "time"})
SKIPPING = frozenset({"skip", "skipif", "xfail", "importorskip"})
_NO_DEFAULT = inspect.Parameter.empty
_HAS_DEFAULT = object()


def tool_module_problems(code: str, spec: EnvironmentSpec) -> list[str]:
    """Why a tool module may not run yet (syntax, imports, names, signatures).

    Args:
        code: The module source.
        spec: The server's environment spec.

    Returns:
        Problem sentences; empty when the module may go to the sandbox.
    """
    tree, problems = _parse(code, "the tool module")
    if tree is None:
        return problems
    problems += _import_problems(tree, STDLIB_ALLOWED)
    problems += escape_problems(tree, FORBIDDEN_CALLS)
    problems += _call_problems(tree)
    problems += _top_level_problems(tree)
    functions = {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    tools = {tool.name: tool for tool in spec.tools}
    for name in tools:
        node = functions.get(name)
        if node is None:
            problems.append(f"missing function for tool '{name}'")
        elif isinstance(node, ast.AsyncFunctionDef):
            problems.append(f"tool '{name}': use a plain def, not async def")
        else:
            problems += signature_problems(_stub(node), tools[name])
    extra = sorted(n for n in functions if not n.startswith("_") and n not in tools)
    if extra:
        problems.append(
            f"public functions that are not tools: {', '.join(extra)} (prefix "
            "helpers with an underscore)"
        )
    problems += _confirm_problems(tree, spec)
    return problems


def policy_test_problems(code: str, spec: EnvironmentSpec) -> list[str]:
    """Why a policy-test file may not run yet.

    Args:
        code: The pytest module source.
        spec: The server's environment spec (for tool names).

    Returns:
        Problem sentences; empty when the tests may go to the sandbox.
    """
    tree, problems = _parse(code, "the test file")
    if tree is None:
        return problems
    problems += _import_problems(tree, STDLIB_ALLOWED | TEST_ONLY_IMPORTS)
    problems += escape_problems(tree, FORBIDDEN_CALLS)
    problems += _call_problems(tree)
    tests = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    ]
    if not tests:
        problems.append("define at least one top-level test_ function")
    local = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and _is_fixture(node)
    }
    for test in tests:
        if assertion_count(ast.unparse(test)) == 0:
            problems.append(f"{test.name} asserts nothing")
        known = {*FIXTURES, *local, *_parametrized(test)}
        unknown = [a.arg for a in test.args.args if a.arg not in known]
        if unknown:
            problems.append(
                f"{test.name} asks for unknown fixture(s) {', '.join(unknown)}; "
                f"available: {', '.join(FIXTURES)}"
            )
    tools = {tool.name for tool in spec.tools}
    for name in sorted(_called_tools(tree) - tools):
        problems.append(f"the tests call '{name}', which is not a tool of the server")
    return problems


def assertion_count(code: str) -> int:
    """Meaningful assertions: `assert` statements that are not constant, plus
    `pytest.raises` blocks (0 when the code does not parse)."""
    try:
        tree = parse_python(code)
    except SyntaxError:
        return 0
    count = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert) and not isinstance(node.test, ast.Constant):
            count += 1
        elif isinstance(node, ast.With | ast.AsyncWith):
            count += sum(_is_raises(item.context_expr) for item in node.items)
    return count


def _parse(code: str, what: str) -> tuple[ast.Module | None, list[str]]:
    try:
        return parse_python(code), []
    except SyntaxError as exc:
        return None, [f"{what} does not parse: {exc.msg} (line {exc.lineno})"]


def _import_problems(tree: ast.Module, allowed: frozenset[str]) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append("relative imports are not allowed")
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            if name != RUNTIME_MODULE and name.split(".")[0] not in allowed:
                problems.append(
                    f"import of '{name}' is not allowed; use only {RUNTIME_MODULE} "
                    f"and {', '.join(sorted(allowed))}"
                )
    return problems


def _call_problems(tree: ast.Module) -> list[str]:
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Attribute):
            owner = _name(function.value)
            if function.attr in WALL_CLOCK and owner in CLOCK_OWNERS:
                problems.append(
                    f"line {node.lineno}: {owner}.{function.attr}() reads the wall "
                    "clock; use env.now() / env.today() or spec.simulation_time"
                )
            elif function.attr in SKIPPING and owner in ("pytest", "mark"):
                problems.append(f"line {node.lineno}: tests must not skip or xfail")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in SKIPPING:
            if _name(node.value) in ("mark", "pytest"):
                problems.append(f"line {node.lineno}: tests must not skip or xfail")
    return list(dict.fromkeys(problems))


def _top_level_problems(tree: ast.Module) -> list[str]:
    allowed = (
        ast.Import,
        ast.ImportFrom,
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.ClassDef,
        ast.Assign,
        ast.AnnAssign,
    )
    problems = []
    for index, node in enumerate(tree.body):
        docstring = index == 0 and isinstance(node, ast.Expr)
        if not docstring and not isinstance(node, allowed):
            problems.append(
                f"line {node.lineno}: the module top level may only import, define "
                "functions and classes, and assign constants"
            )
    return problems


def _confirm_problems(tree: ast.Module, spec: EnvironmentSpec) -> list[str]:
    wanted = sorted(t.name for t in spec.tools if t.needs_confirmation)
    try:
        declared = declared_strings(tree, CONFIRM_TOOLS_ATTRIBUTE)
    except ValueError:
        declared = None
        wanted = wanted or [""]  # a non-literal declaration is always a problem
    if declared is None and not wanted:
        return []
    if declared is None or sorted(declared) != wanted:
        shown = tuple(name for name in wanted if name)
        return [
            f"declare {CONFIRM_TOOLS_ATTRIBUTE} = {shown!r}: the policy requires "
            "confirmation for exactly these tools"
        ]
    return []


def _stub(node: ast.FunctionDef) -> Callable[..., Any]:
    """A function object carrying the signature written in the syntax tree."""
    arguments = node.args
    kinds = inspect.Parameter
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults = [_NO_DEFAULT] * (len(positional) - len(arguments.defaults))
    defaults += [_HAS_DEFAULT] * len(arguments.defaults)
    only = len(arguments.posonlyargs)
    parameters = [
        kinds(
            a.arg,
            kinds.POSITIONAL_ONLY if i < only else kinds.POSITIONAL_OR_KEYWORD,
            default=defaults[i],
        )
        for i, a in enumerate(positional)
    ]
    if arguments.vararg is not None:
        parameters.append(kinds(arguments.vararg.arg, kinds.VAR_POSITIONAL))
    for a, default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
        value = _NO_DEFAULT if default is None else _HAS_DEFAULT
        parameters.append(kinds(a.arg, kinds.KEYWORD_ONLY, default=value))
    if arguments.kwarg is not None:
        parameters.append(kinds(arguments.kwarg.arg, kinds.VAR_KEYWORD))

    def stub(*args: Any, **kwargs: Any) -> None:
        """Stands in for the written function; never called."""

    stub.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    return stub


def _is_fixture(node: ast.FunctionDef) -> bool:
    return any("fixture" in ast.unparse(d) for d in node.decorator_list)


def _parametrized(node: ast.FunctionDef) -> Iterable[str]:
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Call) and "parametrize" in ast.unparse(decorator):
            first = decorator.args[0] if decorator.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield from (n.strip() for n in first.value.split(",") if n.strip())


def _called_tools(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id == "call":
            position = 0
        elif isinstance(node.func, ast.Attribute) and node.func.attr == "call":
            position = 1
        else:
            continue
        if len(node.args) > position:
            value = node.args[position]
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.add(value.value)
    return found


def _is_raises(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "raises"
    )


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None
