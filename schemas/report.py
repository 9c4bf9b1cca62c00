"""Run and step reports: what `--report-json` writes and the Prefect UI shows."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.artifact import FailedItem
from schemas.base import Frozen

StepStatus = Literal["done", "starved", "skipped"]
"""done: the step ran and produced something (or was not counted); starved: it ran
and produced nothing usable; skipped: not run, because an earlier step starved."""

RunStatus = Literal["ok", "failed", "error", "starved", "interrupted"]
"""ok (exit 0); failed: a step stopped on blocking failures, its inputs were
unusable, or items failed because the pipeline's machinery is broken (exit 1);
error: an unexpected exception in a step (exit 1); starved: a step produced nothing
usable, so the steps after it were skipped (exit 3); interrupted: SIGINT or SIGTERM
(exit 130 or 143)."""


class StepReport(Frozen):
    step: str
    status: StepStatus = "done"
    inputs: int | None = Field(
        default=None,
        description="Input units the step worked on (domains for s02, entities for "
        "s03, blueprints for s05, ...); None when not counted.",
    )
    outputs: int | None = Field(
        default=None,
        description="Usable units it produced (domains, entities, edges, "
        "blueprints, tool lists, tables, policies, tool graphs, servers).",
    )
    ok: int = 0
    failed: int = 0
    cached: int = 0
    items: int = Field(
        default=0,
        description="Work items run (each fresh or a cache hit); failures found "
        "while planning, with no item, are counted in `failed` only.",
    )
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = Field(
        default=0.0, ge=0, description="At the roles' configured token prices."
    )
    seconds: float = 0.0
    note: str = ""
    failures: tuple[FailedItem, ...] = ()


class RunReport(Frozen):
    run_name: str
    config_path: str
    config_hash: str
    output_dir: str
    status: RunStatus
    error: str | None = None
    signal: str | None = Field(
        default=None,
        description="The signal that interrupted the run (SIGINT or SIGTERM).",
    )
    starved_by: str | None = Field(
        default=None, description="Id of the step that produced nothing usable."
    )
    llm_calls: int = Field(
        description="Model answers this run received (live or replayed); cache hits "
        "are not calls."
    )
    steps: dict[str, StepReport]
    flow_run_id: str | None = None
