"""Calling one step task directly, as the runner would, on artifacts held in memory.

`local_step` opens a run of a configuration in this process; `call_task` plans a
work item for a task function (its parameters and input hashes, its model choice
and prompt hashes) and calls the function with the item, its `ItemEnv` and the
given arguments, without the store or Prefect.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.artifact import Artifact, ItemOutcome
from schemas.config import StepModel
from tasks.resources import ItemEnv, open_local
from tasks.step_run import StepRun
from tasks.store.config_loader import LoadedConfig
from tasks.task_args import TaskFunction


def local_step(loaded: LoadedConfig, out: Path, step_id: str) -> StepRun:
    return StepRun(step_id, open_local(loaded, out).run)


def _is_input(value: Any) -> bool:
    if isinstance(value, Artifact):
        return True
    return isinstance(value, tuple | list) and all(
        isinstance(v, Artifact) for v in value
    )


def call_task(
    step: StepRun,
    fn: TaskFunction,
    key: str,
    *,
    model: StepModel | None = None,
    models: dict[str, StepModel] | None = None,
    prompts: Sequence[str] = (),
    **arguments: Any,
) -> ItemOutcome:
    """Plan an item of `fn` from `arguments` and run it in this process."""
    inputs = {k: v for k, v in arguments.items() if _is_input(v)}
    params = {
        k: v.model_dump(mode="json") if isinstance(v, BaseModel) else v
        for k, v in arguments.items()
        if k not in inputs
    }
    work = step.item(
        key,
        fn,
        inputs=inputs,
        params=params,
        llm=step.llm(model) if model is not None else None,
        models={n: step.llm(m) for n, m in (models or {}).items()},
        prompts=prompts,
    )
    return fn(work, ItemEnv(step.res, work), **arguments)
