"""What a task function takes, and how a work item names it.

Input: a task function (a plain function of a `tasks` step module taking
`(work, env, *, ...)`) or its "module:function" name. Output: the function, its
keyword-only arguments with their types, and `check_plan`, which refuses an item
that does not fit its function. No side effects beyond importing step modules.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from schemas.artifact import ItemOutcome

TaskFunction = Callable[..., ItemOutcome]
# Work items come from plans and deployment parameters: only functions of the
# project's step modules may be named by one.
TASK_PACKAGE = "tasks."


class PlanError(ValueError):
    """A work item does not fit the task function it names."""


def task_name(fn: TaskFunction) -> str:
    return f"{fn.__module__}:{fn.__name__}"


@functools.cache
def task_function(name: str) -> TaskFunction:
    """The function a work item names.

    Raises:
        PlanError: the name is not "module:function" of a `tasks` module.
    """
    module, _, attr = name.partition(":")
    if not module.startswith(TASK_PACKAGE) or not attr.isidentifier():
        raise PlanError(f"{name!r} does not name a function of a tasks module")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise PlanError(f"work item task {name!r} not found: {exc}") from None
    if not callable(fn):
        raise PlanError(f"work item task {name!r} is not a function")
    return fn


@functools.cache
def arguments(fn: TaskFunction) -> dict[str, tuple[Any, bool]]:
    """Keyword-only parameters of a task function: name -> (type, required)."""
    hints = typing.get_type_hints(fn)
    return {
        name: (hints[name], p.default is inspect.Parameter.empty)
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def check_plan(
    fn: TaskFunction, inputs: Mapping[str, Any], params: Mapping[str, Any]
) -> None:
    """Refuse, at planning time, an item the task could not run.

    Raises:
        PlanError: an argument is given twice, unknown, or missing.
    """
    wanted = arguments(fn)
    both = sorted(set(inputs) & set(params))
    unknown = sorted(set(inputs) - set(wanted))
    missing = sorted(
        n
        for n, (_, required) in wanted.items()
        if required and n not in inputs and n not in params
    )
    problems = []
    if both:
        problems.append(f"given as input and parameter: {', '.join(both)}")
    if unknown:
        problems.append(f"inputs it does not take: {', '.join(unknown)}")
    if missing:
        problems.append(f"arguments missing: {', '.join(missing)}")
    if problems:
        raise PlanError(f"work item for {task_name(fn)}: {'; '.join(problems)}")
