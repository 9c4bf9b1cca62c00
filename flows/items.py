"""The item-batch flow: runs a batch of one run's work items wherever a worker puts it.

Input: a `RunRef` and the `WorkItem`s of one batch (deployment parameters, so plain
JSON; Prefect validates them against these types before the body runs, and a wrong
type fails the run with a message naming the parameter). Output: the items'
`ItemOutcome`s, in order. Side effects: each item runs as the same cached Prefect
task as in a local run (`tasks.fanout.item_task`: cache key = work item hash,
JSON results in the run's result storage), so a cached item is not recomputed and
the orchestrator reads each finished item's outcome back by its cache key; while
the items run, a heartbeat event (`HEARTBEAT_EVENT`) goes out every
`run.work_pool.heartbeat_s`, so the orchestrator can tell a dead worker from a slow
batch; a table
artifact (`BATCH_REPORT_KEY`) records, per item, its state, whether it came from the
cache, its task run and the worker that ran it, and the typed failure of an item
whose task raised. The flow run is named after its batch label and its worker, and
tagged `worker:<name>`. Artifacts are never written here: the orchestrator writes
them, as in a local run.

The worker's name is `AGENTSKILLER_WORKER_NAME`, else the name Prefect's worker
gives its flow runs (`PREFECT__WORKER_NAME`, from `prefect worker start --name`),
else `host:pid`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.context import get_run_context
from prefect.events import emit_event
from prefect.runtime import flow_run as current_flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from schemas.artifact import ItemOutcome, WorkItem
from schemas.run import RunRef
from tasks.fanout import failed_outcome, item_parameters, item_task
from tasks.pool import (
    BATCH_REPORT_KEY,
    HEARTBEAT_EVENT,
    WORKER_TAG_PREFIX,
    report_row,
    worker_name,
)
from tasks.resources import resources


class BatchError(RuntimeError):
    """The batch cannot run in this process; the message says why and what to do."""


def _batch_run_name() -> str:
    label = current_flow_run.parameters.get("label") or "batch"
    return f"{label}@{worker_name()}"


def _tag_worker(worker: str) -> None:
    """Add `worker:<name>` to this flow run's tags (shown and filterable in the UI)."""
    run = get_run_context().flow_run
    if run is None:
        return
    tags = sorted({*run.tags, f"{WORKER_TAG_PREFIX}{worker}"})
    with get_client(sync_client=True) as client:
        client.update_flow_run(run.id, tags=tags)


@contextlib.contextmanager
def _heartbeat(worker: str, every_s: float) -> Iterator[None]:
    """Emit `HEARTBEAT_EVENT` for this flow run every `every_s` seconds while the
    batch runs, so the orchestrator can tell a slow batch from a dead worker."""
    run = get_run_context().flow_run
    if run is None:
        yield
        return
    resource = {"prefect.resource.id": f"prefect.flow-run.{run.id}"}
    stop = threading.Event()

    def beat() -> None:
        beats = 0
        while True:
            beats += 1
            payload = {"worker": worker, "n": beats}
            emit_event(HEARTBEAT_EVENT, resource=resource, payload=payload)
            if stop.wait(every_s):
                return

    thread = threading.Thread(target=beat, name="batch-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@flow(
    name="agentskiller-items",
    flow_run_name=_batch_run_name,
    log_prints=True,
    persist_result=False,
)
def run_work_items(
    run: RunRef,
    items: list[WorkItem],
    refresh: bool = False,
    label: str = "",
) -> list[ItemOutcome]:
    """Run a batch of work items of one run concurrently, each as its cached task.

    Args:
        run: the run the items belong to (its configuration must be readable here,
            at the same path, and its hash must match).
        items: the work items of the batch.
        refresh: run the items again even when a cached outcome exists (the
            orchestrator sets it for `--retry-failed`).
        label: the batch's name in the orchestrator (e.g. `s04-batch-2-of-5`).

    Raises:
        BatchError: this process cannot run the run's items (its configuration
            is missing or differs from the orchestrator's).
    """
    del label  # used for the flow run's name only
    worker = worker_name()
    logger = get_run_logger()
    try:
        res = resources(run)
    except Exception as exc:  # a missing or changed configuration, unusable storage
        raise BatchError(
            f"worker {worker} cannot run items of run {run.run_id}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    _tag_worker(worker)
    configured = item_task(run)
    if refresh:
        configured = configured.with_options(refresh_cache=True)
    rows: list[dict[str, Any]] = []
    outcomes: list[ItemOutcome] = []
    threads = max(1, min(len(items), res.config.run.max_concurrency))
    beating = _heartbeat(worker, res.config.run.work_pool.heartbeat_s)
    with beating, ThreadPoolTaskRunner(max_workers=threads) as runner:
        futures = [
            runner.submit(configured, item_parameters(work, run)) for work in items
        ]
        for work, future in zip(items, futures, strict=True):
            future.wait()
            state = future.state
            task_run_id = str(future.task_run_id)
            if state.is_completed():
                outcome = future.result()
                name = "cached" if state.name == "Cached" else "completed"
                rows.append(
                    report_row(work, state=name, task_run_id=task_run_id, worker=worker)
                )
            else:
                outcome = failed_outcome(work, future)
                failure = outcome.failure
                rows.append(
                    report_row(
                        work,
                        state="failed",
                        task_run_id=task_run_id,
                        worker=worker,
                        failure=failure,
                    )
                )
            outcomes.append(outcome)
    create_table_artifact(
        table=rows,
        description=f"{BATCH_REPORT_KEY}: {len(items)} item(s) run by {worker}",
    )
    logger.info(
        "worker %s ran %d item(s): %s",
        worker,
        len(items),
        ", ".join(f"{r['item']} ({r['state']})" for r in rows),
    )
    return outcomes
