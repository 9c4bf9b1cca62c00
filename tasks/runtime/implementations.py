"""Tool-body modules: takes the path of a generated module (`mcp_servers/<Server>.py`,
one function per tool, each `def tool(env, <parameters>) -> JSON`) and the tool
specs; returns the functions by tool name, after checking that every tool has a
function, that no public function is left over, and that each signature accepts
exactly the tool's JSON-schema parameters. Side effects: importing the module runs
its top-level code, under the module name `agentskiller_env_<server>` (the pipeline
does this only inside sandboxed child processes)."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from schemas.environment import ToolSpec

MODULE_PREFIX = "agentskiller_env_"
CONFIRM_TOOLS_ATTRIBUTE = "CONFIRM_TOOLS"

ToolBody = Callable[..., Any]


class ImplementationError(ValueError):
    """A tool module that cannot serve its tools; `problems` lists why."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        listed = "\n".join(f"- {problem}" for problem in self.problems)
        super().__init__(f"{source} cannot serve its tools:\n{listed}")


def load_tool_module(path: Path) -> ModuleType:
    """Import a tool module by file path.

    Args:
        path: The module file; its stem is the server name.

    Returns:
        The module, registered as `agentskiller_env_<stem>`.

    Raises:
        ImplementationError: If the file is missing or its import raises.
    """
    name = f"{MODULE_PREFIX}{path.stem}"
    if not path.is_file():
        raise ImplementationError(str(path), ["the module file does not exist"])
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImplementationError(str(path), ["not an importable Python file"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ImplementationError(
            str(path), [f"import failed: {type(exc).__name__}: {exc}"]
        ) from exc
    return module


def module_confirm_tools(module: ModuleType) -> frozenset[str]:
    """The tools a module declares as needing confirmation (`CONFIRM_TOOLS`).

    Raises:
        ImplementationError: If the attribute is not a collection of names.
    """
    declared = getattr(module, CONFIRM_TOOLS_ATTRIBUTE, ())
    if isinstance(declared, str) or not all(isinstance(n, str) for n in declared):
        raise ImplementationError(
            module.__name__, [f"{CONFIRM_TOOLS_ATTRIBUTE} must be a tuple of names"]
        )
    return frozenset(declared)


def implementations_from(
    module: ModuleType, tool_names: Iterable[str]
) -> dict[str, ToolBody]:
    """The module's tool functions by tool name.

    Public functions defined in the module must all be tools; helpers are named
    with a leading underscore.

    Args:
        module: An imported tool module.
        tool_names: Every tool of the server.

    Returns:
        Tool name -> function, in the order of `tool_names`.

    Raises:
        ImplementationError: Naming missing tools, non-function attributes that
            shadow a tool, and extra public functions.
    """
    names = list(tool_names)
    problems: list[str] = []
    found: dict[str, ToolBody] = {}
    for name in names:
        candidate = getattr(module, name, None)
        if candidate is None:
            problems.append(f"missing function for tool '{name}'")
        elif not inspect.isfunction(candidate):
            kind = type(candidate).__name__
            problems.append(f"'{name}' is not a function (it is a {kind})")
        else:
            found[name] = candidate
    extra = sorted(
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value)
        and value.__module__ == module.__name__
        and not name.startswith("_")
        and name not in names
    )
    if extra:
        problems.append(
            f"public functions that are not tools: {', '.join(extra)} (rename "
            "helpers with a leading underscore)"
        )
    if problems:
        raise ImplementationError(module.__name__, problems)
    return found


def load_implementations(path: Path, tool_names: Iterable[str]) -> dict[str, ToolBody]:
    """Import a tool module by path and return its tool functions.

    Args:
        path: The module file (`mcp_servers/<Server>.py`).
        tool_names: Every tool of the server.

    Returns:
        Tool name -> function.

    Raises:
        ImplementationError: If the import fails or names do not match.
    """
    return implementations_from(load_tool_module(path), tool_names)


def signature_problems(fn: ToolBody, tool: ToolSpec) -> list[str]:
    """How a tool body's signature fails to accept the tool's arguments.

    The first parameter receives the `Env`; every schema property must be a
    keyword parameter, optional properties need a default, and any other
    parameter needs one too.

    Args:
        fn: The tool body.
        tool: Its spec.

    Returns:
        Problem sentences (empty when the signature fits).
    """
    label = f"tool '{tool.name}'"
    if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn):
        return [f"{label}: the body must be a plain def returning a JSON value"]
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError) as exc:
        return [f"{label}: no inspectable signature ({exc})"]
    positional = (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )
    if not parameters or parameters[0].kind not in positional:
        return [f"{label}: the first parameter must take the env positionally"]
    rest = {p.name: p for p in parameters[1:]}
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in rest.values())
    properties: Mapping[str, Any] = tool.parameters.get("properties", {})
    required = set(tool.parameters.get("required", ()))
    problems: list[str] = []
    for name in properties:
        parameter = rest.get(name)
        if parameter is None or parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            if not var_keyword:
                problems.append(f"{label}: no keyword parameter '{name}'")
        elif name not in required and parameter.default is inspect.Parameter.empty:
            problems.append(f"{label}: optional parameter '{name}' needs a default")
    for name, parameter in rest.items():
        unfilled = parameter.default is inspect.Parameter.empty and parameter.kind in (
            *positional,
            inspect.Parameter.KEYWORD_ONLY,
        )
        if name not in properties and unfilled:
            problems.append(f"{label}: parameter '{name}' is not in the tool schema")
    return problems
