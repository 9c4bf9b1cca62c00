"""Helpers every step module uses to describe work and record what produced it.

Input: a step module name, item keys, input artifacts and parameters. Output:
`WorkItem`s (cache identities), `Producer` records and typed failure outcomes. Side
effects: none beyond `code_version` reading module sources once per process.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter

from schemas.artifact import (
    Artifact,
    ArtifactRef,
    FailedItem,
    ItemOutcome,
    LLMChoice,
    Producer,
    WorkItem,
)
from tasks.caching import code_version
from tasks.llm.errors import InvalidModelOutput
from tasks.llm.prompting import RenderedPrompt
from tasks.task_args import TaskFunction, check_plan, task_name

InputValue = Artifact | ArtifactRef | str | Sequence[Artifact | ArtifactRef | str]


def _digest(value: Artifact | ArtifactRef | str) -> str:
    return value if isinstance(value, str) else value.content_hash


def input_hashes(value: InputValue) -> str | tuple[str, ...]:
    """One content hash, or a tuple of them, for a task input."""
    if isinstance(value, Artifact | ArtifactRef | str):
        return _digest(value)
    return tuple(_digest(v) for v in value)


def work_item(
    step: str,
    item_key: str,
    *,
    task: TaskFunction,
    inputs: Mapping[str, InputValue] | None = None,
    params: Mapping[str, Any] | None = None,
    llm: LLMChoice | None = None,
    models: Mapping[str, LLMChoice] | None = None,
    prompt_hashes: Mapping[str, str] | None = None,
) -> WorkItem:
    """Describe one item of work for `task`; its hash is the item's cache key.

    `inputs` name the task's artifact arguments (loaded from the store by content
    hash), `params` its other arguments (JSON); the code version covers the task
    module's import closure in the project.

    Raises:
        tasks.task_args.PlanError: the arguments do not fit `task`.
    """
    inputs, params = dict(inputs or {}), _json(dict(params or {}))
    check_plan(task, inputs, params)
    return WorkItem(
        step=step,
        item_key=item_key,
        task=task_name(task),
        inputs={name: input_hashes(value) for name, value in inputs.items()},
        params=params,
        llm=llm,
        models=dict(models or {}),
        prompt_hashes=dict(prompt_hashes or {}),
        code_version=code_version(task.__module__),
    )


def _json(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON values (models dumped), as a work item keeps them."""
    return _params_adapter().dump_python(params, mode="json")


@functools.cache
def _params_adapter() -> TypeAdapter[dict[str, Any]]:
    # Building an adapter generates its core schema: made once, not per item.
    return TypeAdapter(dict[str, Any])


def producer(
    work: WorkItem,
    *,
    prompt: RenderedPrompt | None = None,
    model_id: str | None = None,
    seed: int | None = None,
) -> Producer:
    return Producer(
        step=work.step,
        item_key=work.item_key,
        model_id=model_id if model_id is not None else work.model_id,
        prompt_id=prompt.prompt_id if prompt else None,
        prompt_hash=prompt.prompt_hash if prompt else None,
        seed=seed,
        params_hash=work.params_hash,
        code_version=work.code_version,
    )


def dependency_failed(step: str, item_key: str, message: str) -> FailedItem:
    """The failure of an item that never ran because an input it needs was not
    produced (an upstream item failed); a re-run of that upstream step may fix it,
    not one of this step. `message` names what is missing."""
    return FailedItem(
        step=step, item_key=item_key, reason="dependency_failed", message=message
    )


def invalid_output(work: WorkItem, exc: InvalidModelOutput) -> ItemOutcome:
    """The outcome of an item whose model answers never validated (or were cut
    off at the token limit: `truncated`)."""
    return ItemOutcome(
        item_key=work.item_key,
        failure=FailedItem(
            step=work.step,
            item_key=work.item_key,
            reason=exc.failure_reason,
            message=exc.summary,
            details=tuple(e.last_error for e in _chain(exc)),
        ),
    )


def _chain(exc: InvalidModelOutput) -> list[InvalidModelOutput]:
    """This failure and the earlier ones it was raised from (fix-up after detail)."""
    found: list[InvalidModelOutput] = []
    current: BaseException | None = exc
    while isinstance(current, InvalidModelOutput):
        found.append(current)
        current = current.__cause__
    return found
