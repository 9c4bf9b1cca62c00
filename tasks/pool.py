"""Run a step's work items as batches of deployment runs on a Prefect work pool.

Input: a run reference whose configuration says `run.executor: work_pool`, and the
step's `WorkItem`s. Output: one `ItemOutcome` per item, exactly as the local path
gives them (`tasks.fanout.run_items`), and `pool_problems`, the checks made before
any work starts (API answers, pool exists and is not paused, the item-batch
deployment is deployed on that pool). Side effects: creates flow runs of the
item-batch deployment (`flows.items.run_work_items`), writes each finished item's
artifacts to the store as its batch finishes (workers never write artifacts), and
marks a batch whose worker was lost as crashed before submitting its items again.

Each finished item's outcome is read back from the run's result storage by its
cache key (so result storage must be shared by the workers and this process); the
batch report artifact says which items came from the cache, which failed with what
typed reason, and which worker ran them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from schemas.artifact import FailedItem, ItemOutcome, RunStamp, WorkItem
from schemas.config import PipelineConfig, WorkPoolConfig
from schemas.run import RunRef

WORKER_ENV = "AGENTSKILLER_WORKER_NAME"
PREFECT_WORKER_ENV = "PREFECT__WORKER_NAME"
BATCH_REPORT_KEY = "agentskiller-batch"
"""Description prefix of a batch's report artifact."""
WORKER_TAG_PREFIX = "worker:"
HEARTBEAT_EVENT = "agentskiller.batch.heartbeat"
"""Event a running batch emits every `run.work_pool.heartbeat_s` (resource: its
flow run), so the orchestrator tells a slow batch from one whose worker died."""
MAX_PARAMETER_BYTES = 400_000
"""Prefect caps flow-run parameters at 512 KB; batches stay below this."""


def worker_name() -> str:
    """Who runs items in this process: `AGENTSKILLER_WORKER_NAME`, else the name of
    the Prefect worker that started it, else `host:pid`."""
    from tasks.resources import process_tag

    return (
        os.environ.get(WORKER_ENV)
        or os.environ.get(PREFECT_WORKER_ENV)
        or process_tag()
    )


def report_row(
    work: WorkItem,
    *,
    state: str,
    task_run_id: str | None,
    worker: str,
    failure: FailedItem | None = None,
) -> dict[str, Any]:
    """One line of a batch report (a table artifact: flat, JSON-able values)."""
    return {
        "item": work.item_key,
        "step": work.step,
        "state": state,
        "worker": worker,
        "task_run_id": task_run_id or "",
        "reason": failure.reason if failure else "",
        "failure": failure.model_dump_json() if failure else "",
    }


def read_report_rows(data: Any) -> list[dict[str, Any]]:
    """The rows of a batch report artifact, as the API returns its data."""
    rows = json.loads(data) if isinstance(data, str) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError("a batch report is a list of rows")
    return rows


# ---------------------------------------------------------------- before any work


def pool_problems(config: PipelineConfig, env: Mapping[str, str]) -> list[str]:
    """Why items could not run on the configured work pool (empty: they can).

    Checked before any work starts: a Prefect API is configured and answers, the
    pool exists and is not paused, and the item-batch deployment is deployed on it
    and takes this flow's parameters.
    """
    if config.run.executor != "work_pool":
        return []
    cfg = config.run.work_pool
    from prefect.settings import get_current_settings

    url = env.get("PREFECT_API_URL") or get_current_settings().api.url
    if not url:
        return [
            "run.executor is work_pool, but PREFECT_API_URL is not set: this run "
            "and the pool's workers must use one Prefect server (export "
            "PREFECT_API_URL=http://HOST:4200/api)"
        ]
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        failed = client.api_healthcheck()
        if failed is not None:
            return [
                f"run.executor is work_pool, but no Prefect API answers at {url} "
                f"({type(failed).__name__}: {failed}); start it (`prefect server "
                "start`) or correct PREFECT_API_URL"
            ]
        try:
            pool = client.read_work_pool(cfg.name)
        except ObjectNotFound:
            names = sorted(p.name for p in client.read_work_pools())
            return [
                f"run.work_pool.name: work pool {cfg.name!r} does not exist at {url} "
                f"(pools there: {', '.join(names) or 'none'}); create it with "
                f"`prefect work-pool create {cfg.name} --type process`"
            ]
        if pool.is_paused:
            return [
                f"run.work_pool.name: work pool {cfg.name!r} at {url} is paused; "
                f"resume it with `prefect work-pool resume {cfg.name}`"
            ]
        try:
            deployment = client.read_deployment_by_name(cfg.deployment)
        except ObjectNotFound:
            return [
                f"run.work_pool.deployment: {cfg.deployment!r} is not deployed at "
                f"{url}; deploy it from the repository root with `prefect deploy "
                f"--name {cfg.deployment.partition('/')[2]}`"
            ]
        problems = []
        if deployment.work_pool_name != cfg.name:
            problems.append(
                f"run.work_pool.deployment: {cfg.deployment!r} runs on work pool "
                f"{deployment.work_pool_name!r}, not on run.work_pool.name "
                f"{cfg.name!r}"
            )
        schema = deployment.parameter_openapi_schema or {}
        wanted = {"run", "items", "refresh", "label"}
        if not wanted <= set(schema.get("properties", {})):
            problems.append(
                f"run.work_pool.deployment: {cfg.deployment!r} does not run the "
                "item-batch flow (flows/items.py:run_work_items)"
            )
        return problems


# ---------------------------------------------------------------- running batches


@dataclass
class _Batch:
    label: str
    positions: list[int]
    attempt: int
    flow_run_id: UUID | None = None
    submitted: float = 0.0
    started: float | None = None
    beat: str | None = None
    """Id of the newest heartbeat event seen."""
    alive_at: float | None = None
    """When (this process's monotonic clock) the batch last showed it lives."""


def plan_batches(works: list[WorkItem], cfg: WorkPoolConfig) -> list[list[int]]:
    """Item positions per batch: at most `batch_size` items and
    `MAX_PARAMETER_BYTES` of parameters each (an item over that alone is a batch
    of its own, refused by Prefect and reported as failed)."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, work in enumerate(works):
        weight = len(work.model_dump_json())
        if current and (
            len(current) >= cfg.batch_size or size + weight > MAX_PARAMETER_BYTES
        ):
            batches.append(current)
            current, size = [], 0
        current.append(i)
        size += weight
    if current:
        batches.append(current)
    return batches


def _lost(work: WorkItem, message: str) -> ItemOutcome:
    return ItemOutcome(
        item_key=work.item_key,
        failure=FailedItem(
            step=work.step,
            item_key=work.item_key,
            reason="worker_lost",
            message=message,
            retryable=True,
        ),
    )


def _broken(work: WorkItem, message: str) -> ItemOutcome:
    return ItemOutcome(
        item_key=work.item_key,
        failure=FailedItem(
            step=work.step,
            item_key=work.item_key,
            reason="machinery_error",
            message=message,
        ),
    )


def _latest_heartbeat(client: Any, flow_run_id: UUID | None) -> str | None:
    """Id of the newest `HEARTBEAT_EVENT` of a flow run, None before the first."""
    from datetime import UTC, datetime, timedelta

    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    now = datetime.now(UTC)
    window = timedelta(days=1)  # wide: the worker's clock may differ from ours
    page = client.read_events(
        filter=EventFilter(
            event=EventNameFilter(name=[HEARTBEAT_EVENT]),
            resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
            occurred=EventOccurredFilter(since=now - window, until=now + window),
        ),
        limit=1,
    )
    return str(page.events[0].id) if page.events else None


class PoolRun:
    """The batches of one `run_items` call on the pool, until every item has an
    outcome."""

    def __init__(
        self,
        run: RunRef,
        works: list[WorkItem],
        exports: dict[str, str] | None,
        *,
        refresh: bool,
    ) -> None:
        from prefect.results import ResultStore

        from tasks.fanout import result_storage
        from tasks.resources import resources
        from tasks.results import OutcomeSerializer

        self.run = run
        self.works = works
        self.exports = exports or {}
        self.refresh = refresh
        res = resources(run)
        self.cfg = res.config.run.work_pool
        self.store = res.store
        self.results = ResultStore(
            result_storage=result_storage(run.results, res.config.run.storage_options),
            serializer=OutcomeSerializer(),
            cache_result_in_memory=False,
        )
        self.done: dict[int, tuple[ItemOutcome, bool]] = {}
        self.active: list[_Batch] = []
        self.beats_checked = 0.0

    # -- submitting

    def _parameters(self, batch: _Batch) -> dict[str, Any]:
        return {
            "run": self.run.model_dump(mode="json"),
            "items": [self.works[i].model_dump(mode="json") for i in batch.positions],
            "refresh": self.refresh,
            "label": batch.label,
        }

    def _submit(self, batch: _Batch) -> None:
        from prefect.deployments import run_deployment

        step = self.works[batch.positions[0]].step
        flow_run = run_deployment(
            self.cfg.deployment,
            parameters=self._parameters(batch),
            timeout=0,
            flow_run_name=batch.label,
            tags=["agentskiller", step, f"run:{self.run.run_id}"],
        )
        batch.flow_run_id = flow_run.id
        batch.submitted = time.monotonic()
        batch.started = None
        batch.beat = None
        batch.alive_at = None
        self.active.append(batch)

    # -- collecting

    def collect(self) -> dict[int, tuple[ItemOutcome, bool]]:
        """Run every item on the pool; position -> (outcome, came from the cache)."""
        from prefect.client.orchestration import get_client

        planned = plan_batches(self.works, self.cfg)
        step = self.works[0].step
        for n, positions in enumerate(planned, 1):
            label = f"{step}-batch-{n}-of-{len(planned)}"
            self._submit(_Batch(label=label, positions=positions, attempt=0))
        try:
            with get_client(sync_client=True) as client:
                while self.active:
                    time.sleep(self.cfg.poll_interval_s)
                    self._poll(client)
        finally:
            self._cancel_active()
        return self.done

    def _poll(self, client: Any) -> None:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        ids = [b.flow_run_id for b in self.active]
        runs = {
            r.id: r
            for r in client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
            )
        }
        now = time.monotonic()
        for batch in list(self.active):
            flow_run = runs.get(batch.flow_run_id)
            state = flow_run.state if flow_run is not None else None
            if state is None:
                continue
            if state.is_running() and batch.started is None:
                batch.started = batch.alive_at = now
            if state.is_final():
                self.active.remove(batch)
                self._finished(client, batch, flow_run)
            elif (
                batch.started is None
                and now - batch.submitted > self.cfg.start_timeout_s
            ):
                self.active.remove(batch)
                self._give_up(
                    client,
                    batch,
                    f"no worker of pool {self.cfg.name!r} started batch "
                    f"{batch.label} within run.work_pool.start_timeout_s "
                    f"({self.cfg.start_timeout_s:g} s)",
                )
            elif batch.started is not None and now - batch.started > self.cfg.timeout_s:
                self.active.remove(batch)
                self._give_up(
                    client,
                    batch,
                    f"batch {batch.label} ran longer than run.work_pool.timeout_s "
                    f"({self.cfg.timeout_s:g} s); its worker counts as lost",
                )
        self._check_heartbeats(client, now)

    def _check_heartbeats(self, client: Any, now: float) -> None:
        """Give up on running batches whose worker went silent (every heartbeat_s).

        Liveness is judged on this process's clock (when a new heartbeat was first
        seen), so clock skew between machines does not matter.
        """
        if now - self.beats_checked < self.cfg.heartbeat_s:
            return
        self.beats_checked = now
        for batch in [b for b in self.active if b.started is not None]:
            latest = _latest_heartbeat(client, batch.flow_run_id)
            if latest is not None and latest != batch.beat:
                batch.beat, batch.alive_at = latest, now
            silent = now - (batch.alive_at or batch.started or now)
            if silent > self.cfg.lost_after_s:
                self.active.remove(batch)
                self._give_up(
                    client,
                    batch,
                    f"batch {batch.label} sent no heartbeat for {silent:.0f} s "
                    f"(run.work_pool.lost_after_s = {self.cfg.lost_after_s:g}); "
                    "its worker counts as lost",
                )

    def _finished(self, client: Any, batch: _Batch, flow_run: Any) -> None:
        state = flow_run.state
        name = getattr(flow_run, "name", batch.label)
        if state.is_completed():
            rows = self._report(client, batch.flow_run_id)
            missing = self._take(batch, rows, flow_run_id=str(batch.flow_run_id))
            if missing:
                self._retry_or_fail(
                    client,
                    batch,
                    missing,
                    f"batch {name} completed without a report for these items",
                )
            return
        message = (state.message or state.name or "").strip()
        self._take(batch, {}, flow_run_id=str(batch.flow_run_id), salvage=True)
        missing = [i for i in batch.positions if i not in self.done]
        if not missing:
            return
        if state.is_failed():
            # The flow itself raised (unusable parameters or configuration on the
            # worker): running it again fails the same way.
            for i in missing:
                self.done[i] = (
                    _broken(
                        self.works[i],
                        f"batch flow run {name} failed: {message}",
                    ),
                    False,
                )
            return
        self._retry_or_fail(
            client,
            batch,
            missing,
            f"batch flow run {name} ended {state.name}: {message}",
        )

    def _give_up(self, client: Any, batch: _Batch, why: str) -> None:
        from prefect.states import Crashed

        try:
            client.set_flow_run_state(
                batch.flow_run_id,
                Crashed(message=f"agentskiller: {why}; its items were resubmitted"),
                force=True,
            )
        except Exception:  # the API may be gone too; the outcome says why anyway
            pass
        self._take(batch, {}, flow_run_id=str(batch.flow_run_id), salvage=True)
        missing = [i for i in batch.positions if i not in self.done]
        if missing:
            self._retry_or_fail(client, batch, missing, why)

    def _retry_or_fail(
        self, client: Any, batch: _Batch, missing: list[int], why: str
    ) -> None:
        if batch.attempt < self.cfg.batch_retries:
            label = f"{batch.label.split('-retry-')[0]}-retry-{batch.attempt + 1}"
            self._submit(
                _Batch(label=label, positions=missing, attempt=batch.attempt + 1)
            )
            return
        for i in missing:
            self.done[i] = (
                _lost(
                    self.works[i],
                    f"{why} (after {batch.attempt + 1} attempt(s), "
                    "run.work_pool.batch_retries); run the same command again",
                ),
                False,
            )

    def _report(self, client: Any, flow_run_id: UUID) -> dict[str, dict[str, Any]]:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
        rows: dict[str, dict[str, Any]] = {}
        for artifact in artifacts:
            if (artifact.description or "").startswith(BATCH_REPORT_KEY):
                for row in read_report_rows(artifact.data):
                    rows[str(row.get("item"))] = row
        return rows

    def _read_cached(self, work: WorkItem) -> ItemOutcome | None:
        try:
            outcome = self.results.read(work.cache_key).result
        except Exception:
            return None
        if isinstance(outcome, ItemOutcome) and outcome.item_key == work.item_key:
            return outcome
        return None

    def _take(
        self,
        batch: _Batch,
        rows: dict[str, dict[str, Any]],
        *,
        flow_run_id: str,
        salvage: bool = False,
    ) -> list[int]:
        """Record the outcomes a batch produced; the positions still missing.

        With `salvage` (a batch that did not complete), outcomes its items left in
        result storage are used, except in a refresh run, where an old record
        cannot be told from a new one.
        """
        missing = []
        for i in batch.positions:
            work = self.works[i]
            row = rows.get(work.item_key)
            if row is None:
                outcome = None
                if salvage and not self.refresh:
                    outcome = self._read_cached(work)
                if outcome is None:
                    missing.append(i)
                    continue
                stamp = RunStamp(flow_run_id=flow_run_id, cached=True)
                self._put(outcome, stamp)
                self.done[i] = (outcome, True)
                continue
            worker = str(row.get("worker") or "") or None
            if row.get("state") == "failed":
                failure = FailedItem.model_validate_json(row["failure"])
                self.done[i] = (
                    ItemOutcome(item_key=work.item_key, failure=failure),
                    False,
                )
                continue
            outcome = self._read_cached(work)
            if outcome is None:
                self.done[i] = (
                    _broken(
                        work,
                        f"item {work.item_key} finished on worker {worker}, but its "
                        f"result is not readable here under {self.run.results}: "
                        "result storage must be storage that every worker and this "
                        "run share (run.results_storage)",
                    ),
                    False,
                )
                continue
            cached = row.get("state") == "cached"
            stamp = RunStamp(
                flow_run_id=flow_run_id,
                task_run_id=str(row.get("task_run_id") or "") or None,
                cached=cached,
                worker=worker,
            )
            self._put(outcome, stamp)
            self.done[i] = (outcome, cached)
        return missing

    def _put(self, outcome: ItemOutcome, stamp: RunStamp) -> None:
        from tasks.fanout import store_outcome

        store_outcome(self.store, outcome, stamp, self.exports)

    def _cancel_active(self) -> None:
        """Cancel the batches still out (this run stops: an interrupt or a bug)."""
        if not self.active:
            return
        from prefect.client.orchestration import get_client
        from prefect.states import Cancelling

        with get_client(sync_client=True) as client:
            for batch in self.active:
                try:
                    client.set_flow_run_state(
                        batch.flow_run_id,
                        Cancelling(message="the agentskiller run stopped"),
                        force=True,
                    )
                except Exception:
                    pass
        self.active.clear()


def run_items_on_pool(
    run: RunRef,
    works: list[WorkItem],
    tally: Any,
    *,
    exports: dict[str, str] | None = None,
) -> list[ItemOutcome]:
    """`tasks.fanout.run_items` for `run.executor: work_pool` (same contract)."""
    done = PoolRun(run, works, exports, refresh=False).collect()
    if run.retry_failed:
        again = [
            i for i, (outcome, cached) in done.items() if cached and not outcome.ok
        ]
        if again:
            redone = PoolRun(
                run, [works[i] for i in again], exports, refresh=True
            ).collect()
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
