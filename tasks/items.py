"""Helpers every step module uses to describe work and record what produced it.

Input: a step module name, item keys, input artifacts and parameters. Output:
`WorkItem`s (cache identities), `Producer` records and typed failure outcomes. Side
effects: none beyond `code_version` reading module sources once per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from schemas.artifact import Artifact, FailedItem, ItemOutcome, Producer, WorkItem
from schemas.base import stable_hash
from tasks.caching import code_version
from tasks.llm.bound import StepLLM
from tasks.llm.errors import InvalidModelOutput
from tasks.llm.prompting import RenderedPrompt


def params_hash(params: BaseModel | dict[str, Any] | None) -> str:
    return stable_hash(params if params is not None else {})


def work_item(
    step: str,
    item_key: str,
    *,
    inputs: Iterable[Artifact | str] = (),
    params: BaseModel | dict[str, Any] | None = None,
    llm: StepLLM | None = None,
    prompt_ids: Sequence[str] = (),
    module: str,
) -> WorkItem:
    """Describe one item of work; its hash is the item's cache key.

    `module` names the step module defining the task that runs the item; the
    item's code version covers that module's import closure in the project.
    """
    return WorkItem(
        step=step,
        item_key=item_key,
        inputs=tuple(a.content_hash if isinstance(a, Artifact) else a for a in inputs),
        params_hash=params_hash(params),
        model_id=llm.model_id if llm is not None else None,
        llm_settings_hash=llm.settings_hash if llm is not None else None,
        prompt_hashes=tuple(llm.prompt_hash(p) for p in prompt_ids) if llm else (),
        code_version=code_version(module),
    )


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
