"""Fan a step's items out as Prefect task runs and collect typed outcomes.

Input: a run reference and the step's `WorkItem`s. Output: the items'
`ItemOutcome`s in submission order and a tally of ok, failed and cached items.
Side effects: each artifact is written to the store as soon as its task finishes,
so a crash loses nothing that completed. Items run concurrently up to the
flow's task-runner limit; each is cached by `artifact_cache_key`, its result kept as
validated JSON (`tasks.results`), never as a pickle; a run with `--retry-failed`
refreshes exactly the cached outcomes that are failures.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import Task
from prefect.context import get_run_context
from prefect.filesystems import LocalFileSystem, RemoteFileSystem, WritableFileSystem
from prefect.futures import as_completed
from prefect.settings import get_current_settings
from prefect.utilities.annotations import quote

from schemas.artifact import FailedItem, ItemOutcome, RunStamp, WorkItem
from schemas.base import sha256_hex
from schemas.run import RunRef
from tasks.caching import artifact_cache_key
from tasks.llm.errors import LLMError
from tasks.machinery import MachineryError
from tasks.resources import resources
from tasks.results import OutcomeSerializer, TrustedResultReads
from tasks.runner import run_work_item
from tasks.store.atomic import write_bytes_atomic
from tasks.store.location import DEFAULT_STORAGE_OPTIONS, is_url


@dataclass
class StepTally:
    """Counts for one step's items; failures keep their typed reasons."""

    step: str
    ok: int = 0
    cached: int = 0
    items: int = 0
    failures: list[FailedItem] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def blocking(self) -> list[FailedItem]:
        """Failures that stop the step (endpoint failures, cassette misses, bugs)."""
        return [f for f in self.failures if f.blocking]


def _flow_run_id() -> str | None:
    try:
        flow_run = getattr(get_run_context(), "flow_run", None)
    except RuntimeError:
        return None
    return str(flow_run.id) if flow_run is not None else None


class ResultFolder(TrustedResultReads, LocalFileSystem):
    """Local result storage that resolves its base folder once.

    Prefect's `LocalFileSystem` calls `Path.resolve()` (an lstat per path component)
    twice for every result and cache-record access; measured, that was a third of
    the per-task CPU on a 2-core machine. Paths are normalised instead, and a path
    that escapes the folder is still refused.
    """

    _block_type_name = "AgentSkiller Result Folder"

    def _resolve_path(self, path: str) -> Path:  # type: ignore[override]
        base = _resolved_base(self.basepath or ".")
        if path is None:
            return base
        candidate = Path(os.path.normpath(base / Path(path).expanduser()))
        if candidate != base and base not in candidate.parents:
            raise ValueError(
                f"Provided path {candidate} is outside of the base path {base}."
            )
        return candidate

    # Prefect's LocalFileSystem opens the record in place and writes into it, so a
    # process killed mid-write leaves a torn record where readers (a resubmitted
    # batch, the orchestrator salvaging a lost worker's items) look. Records are
    # written to a temporary name and renamed over instead.
    async def awrite_path(self, path: str, content: bytes) -> str:
        return str(write_bytes_atomic(self._resolve_path(path), content))

    def write_path(self, path: str, content: bytes, **_: Any) -> str:  # type: ignore[override]
        return str(write_bytes_atomic(self._resolve_path(path), content))


class ResultBucket(TrustedResultReads, RemoteFileSystem):
    """Result storage at an fsspec URL; like `ResultFolder`, reads only JSON records.

    A record is written with one PUT of its whole content (no folder creation,
    which on S3 would create a missing bucket, and no streamed upload), so another
    worker reading it sees the whole record or none.
    """

    _block_type_name = "AgentSkiller Result Bucket"

    async def awrite_path(self, path: str, content: bytes) -> str:
        return self.write_path(path, content)

    def write_path(self, path: str, content: bytes, **kwargs: object) -> str:  # type: ignore[override]
        resolved = self._resolve_path(path)
        self.filesystem.pipe_file(resolved, content)
        return resolved


@functools.cache
def _resolved_base(basepath: str) -> Path:
    return Path(basepath).expanduser().resolve()


_SAVED: dict[tuple[str, str, str], WritableFileSystem] = {}
_SAVED_LOCK = threading.Lock()


def result_storage(
    location: str | Path, storage_options: Mapping[str, Any] | None = None
) -> WritableFileSystem:
    """Prefect result storage for a path or an fsspec URL (s3://..., gs://...).

    Prefect accepts a storage block object only once it is saved, and would read a
    plain string as the name of a saved block; so the block is saved once per
    location and Prefect API, then reused by every task of the run.

    Args:
        location: A folder or URL.
        storage_options: fsspec options for a URL (`run.storage_options`).
    """
    text = str(location)
    options = {**DEFAULT_STORAGE_OPTIONS, **dict(storage_options or {})}
    key = (
        text,
        json.dumps(options, sort_keys=True),
        str(get_current_settings().api.url),
    )
    with _SAVED_LOCK:
        if key not in _SAVED:
            block: WritableFileSystem
            if is_url(text):
                block = ResultBucket(basepath=text, settings=options)
            else:
                block = ResultFolder(basepath=text.removeprefix("file://"))
            block.save(f"agentskiller-results-{sha256_hex(text)[:16]}", overwrite=True)
            _SAVED[key] = block
        return _SAVED[key]


def failure_from_exception(step: str, item_key: str, exc: BaseException) -> FailedItem:
    """Turn an exception that escaped an item into a typed failure.

    A broken machine (`MachineryError`) is recorded and does not stop the step;
    the task raised, so nothing was cached and the next run (after the fix the
    message names) redoes the item. The LLM layer's errors name their own reason
    and whether a plain re-run may fix them (an endpoint that was down or slow may
    answer next time; a refused request will not). Anything else is a bug
    (`error`): it stops the step, keeps the end of its traceback, and is not called
    retryable, because running the same code again fails the same way.
    """
    if isinstance(exc, MachineryError):
        return FailedItem(
            step=step, item_key=item_key, reason="machinery_error", message=str(exc)
        )
    if isinstance(exc, LLMError) and exc.failure_reason != "error":
        reason, retryable, details = exc.failure_reason, exc.retryable, ()
    else:
        reason, retryable = "error", False
        details = tuple(traceback.format_exception(exc)[-6:])
    return FailedItem(
        step=step,
        item_key=item_key,
        reason=reason,
        message=f"{type(exc).__name__}: {exc}",
        details=details,
        retryable=retryable,
    )


def _own_outcome(run: RunRef, work: WorkItem, result: object) -> ItemOutcome:
    """The task's outcome, or a failure when a stored result is another item's."""
    if isinstance(result, ItemOutcome) and result.item_key == work.item_key:
        return result
    found = getattr(result, "item_key", type(result).__name__)
    failure = FailedItem(
        step=work.step,
        item_key=work.item_key,
        reason="error",
        message=f"the stored result for item {work.item_key} is for {found!r}; "
        f"remove it from {run.results} to recompute the item",
        retryable=True,
    )
    return ItemOutcome(item_key=work.item_key, failure=failure)


def item_task(run: RunRef) -> Task:
    """The work-item task configured for a run: cached by the item's hash, its
    result kept as validated JSON in the run's result storage."""
    return run_work_item.with_options(
        cache_key_fn=artifact_cache_key,
        persist_result=True,
        result_storage=result_storage(
            run.results, resources(run).config.run.storage_options
        ),
        result_serializer=OutcomeSerializer(),
    )


def item_parameters(work: WorkItem, run: RunRef) -> dict[str, Any]:
    """The work-item task's parameters, quoted: Prefect hands them to the task as
    they are instead of walking every field of the item looking for futures to
    resolve (an item never holds one), which was a sizeable share of the per-item
    orchestration cost."""
    return {"work": quote(work), "run": quote(run)}


def run_items(
    run: RunRef,
    works: list[WorkItem],
    tally: StepTally,
    *,
    exports: dict[str, str] | None = None,
) -> list[ItemOutcome]:
    """Run one task per work item, store artifacts as they finish.

    With `run.retry_failed`, an item whose outcome came from the cache and is a
    failure (invalid or cut-off model output, a failed check) runs once more with
    its cache refreshed; items that succeeded stay cached.

    Args:
        run: the run the items belong to.
        works: the items (see `tasks.items.work_item`).
        tally: updated in place with ok, cached and failed counts.
        exports: optional artifact id -> export path (relative to the output root)
            recorded in the artifacts' lineage records.

    Returns:
        One outcome per item, in order. Items whose task raised come back as
        outcomes carrying a `FailedItem` typed by `failure_from_exception`.
    """
    if resources(run).config.run.executor == "work_pool":
        from tasks.pool import run_items_on_pool

        return run_items_on_pool(run, works, tally, exports=exports)
    configured = item_task(run)
    done = _collect(run, configured, works, exports)
    if run.retry_failed:
        again = [
            i for i, (outcome, cached) in done.items() if cached and not outcome.ok
        ]
        if again:
            refreshed = configured.with_options(refresh_cache=True)
            redone = _collect(run, refreshed, [works[i] for i in again], exports)
            done |= {again[j]: result for j, result in redone.items()}
    outcomes = [done[i][0] for i in range(len(works))]
    for outcome, cached in (done[i] for i in range(len(works))):
        tally.items += 1
        tally.cached += int(cached)
        if outcome.failure is None:
            tally.ok += 1
        else:
            tally.failures.append(outcome.failure)
    return outcomes


def store_outcome(
    store: Any, outcome: ItemOutcome, stamp: RunStamp, exports: dict[str, str] | None
) -> None:
    """Write an item's artifacts to the store (with their export files, if any)."""
    for artifact in outcome.artifacts:
        paths = [exports[artifact.id]] if exports and artifact.id in exports else []
        store.put(artifact, stamp, exports=paths)


def failed_outcome(work: WorkItem, future: Any) -> ItemOutcome:
    """The typed failure of an item whose task future did not complete."""
    exc = future.result(raise_on_failure=False)
    if not isinstance(exc, BaseException):
        state = future.state
        exc = RuntimeError(f"task ended in state {state.name}: {state.message}")
    return ItemOutcome(
        item_key=work.item_key,
        failure=failure_from_exception(work.step, work.item_key, exc),
    )


def _collect(
    run: RunRef,
    configured: Task,
    works: list[WorkItem],
    exports: dict[str, str] | None,
) -> dict[int, tuple[ItemOutcome, bool]]:
    """Run the items; each index maps to (outcome, came from the cache)."""
    store = resources(run).store
    futures = [configured.submit(**item_parameters(work, run)) for work in works]
    index = {future.task_run_id: i for i, future in enumerate(futures)}
    done: dict[int, tuple[ItemOutcome, bool]] = {}
    flow_run_id = _flow_run_id()
    for future in as_completed(futures):
        i = index[future.task_run_id]
        work = works[i]
        future.wait()
        state = future.state
        cached = False
        if state.is_completed():
            outcome = _own_outcome(run, work, future.result())
            cached = state.name == "Cached"
            stamp = RunStamp(
                flow_run_id=flow_run_id,
                task_run_id=str(future.task_run_id),
                cached=cached,
            )
            store_outcome(store, outcome, stamp, exports)
        else:
            outcome = failed_outcome(work, future)
        done[i] = (outcome, cached)
    return done
