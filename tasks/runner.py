"""The one Prefect task that runs any work item, in any process.

Input: a `WorkItem` and a `RunRef`. Output: the item's `ItemOutcome`. The item
names its task function ("module:function", a plain function in a `tasks` module);
the runner imports it, checks that this process runs the code and prompts the item
was planned with, loads the named input artifacts from the run's store, validates
the parameter slice against the function's annotations and calls it with
`(work, env, **arguments)`. Nothing else reaches the function, so the item's hash
(the cache key) covers everything it reads. Side effects: those of the function.
"""

from __future__ import annotations

import functools
import logging
import typing
from typing import Any

from prefect import task
from pydantic import BaseModel, TypeAdapter

from schemas.artifact import Artifact, ArtifactRef, ItemOutcome, WorkItem
from schemas.run import RunRef
from tasks.caching import code_version
from tasks.machinery import MachineryError
from tasks.resources import ItemEnv, RunResources, resources
from tasks.store.artifacts import ArtifactStore
from tasks.task_args import PlanError, task_function
from tasks.task_args import arguments as _arguments


def _artifact_type(hint: Any) -> tuple[type[BaseModel] | None, bool]:
    """(payload type or None for a bare ref, is a tuple) of an input annotation."""
    many = typing.get_origin(hint) is tuple
    one = typing.get_args(hint)[0] if many else hint
    if one is ArtifactRef:
        return None, many
    metadata = getattr(one, "__pydantic_generic_metadata__", None) or {}
    if metadata.get("origin") is Artifact and metadata.get("args"):
        return metadata["args"][0], many
    raise PlanError(f"input annotation {hint!r} is not an Artifact[...] or ref")


def _load(store: ArtifactStore, hint: Any, value: Any) -> Any:
    payload, many = _artifact_type(hint)

    def one(digest: str) -> Any:
        if payload is None:
            raw = store.get_raw(digest)
            return ArtifactRef(kind=raw["kind"], id=raw["id"], content_hash=digest)
        return store.get(digest, payload)

    return tuple(one(d) for d in value) if many else one(value)


@functools.cache
def _adapter(hint: Any) -> TypeAdapter:
    return TypeAdapter(hint)


def _check_versions(res: RunResources, work: WorkItem) -> None:
    module = work.task.partition(":")[0]
    problems = []
    if code_version(module) != work.code_version:
        problems.append(f"the code of {module} differs")
    for prompt_id, digest in work.prompt_hashes.items():
        if res.prompts.prompt_hash(prompt_id) != digest:
            problems.append(f"prompt {prompt_id} differs")
    if problems:
        raise MachineryError(
            f"work item {work.label}",
            f"it was planned with other code or prompts than this process has "
            f"({'; '.join(problems)})",
            "run every worker and the orchestrator from the same version of the "
            "project",
        )


def execute(work: WorkItem, run: RunRef) -> ItemOutcome:
    """Run one work item in this process (the body of the Prefect task)."""
    res = resources(run)
    fn = task_function(work.task)
    _check_versions(res, work)
    arguments: dict[str, Any] = {}
    for name, (hint, _) in _arguments(fn).items():
        if name in work.inputs:
            arguments[name] = _load(res.store, hint, work.inputs[name])
        elif name in work.params:
            arguments[name] = _adapter(hint).validate_python(work.params[name])
    return fn(work, ItemEnv(res, work), **arguments)


ITEM_TASK_NAME = "work-item"


class QuietItemCompletions(logging.Filter):
    """Drops the Prefect engine's "Finished in state Completed()" (or Cached) line
    of each work item, on the console and in the API's log store alike.

    At thousands of items those lines drown the console, and sending and storing
    them was a tenth of the per-item orchestration cost. What an item did stays
    visible: its state in the Prefect UI, the run summary, the batch reports, and
    every failure (logged at ERROR, which this filter passes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO
            and getattr(record, "task_name", None) == ITEM_TASK_NAME
            and str(record.msg).startswith("Finished in state ")
        )


_task_run_logger = logging.getLogger("prefect.task_runs")
if not any(isinstance(f, QuietItemCompletions) for f in _task_run_logger.filters):
    _task_run_logger.addFilter(QuietItemCompletions())


@task(name=ITEM_TASK_NAME, task_run_name="{work.label}")
def run_work_item(work: WorkItem, run: RunRef) -> ItemOutcome:
    """Run one work item; cached by its hash (see `tasks.fanout`)."""
    return execute(work, run)
