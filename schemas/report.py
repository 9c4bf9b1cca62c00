"""Run and step reports: what `--report-json` writes and the Prefect UI shows."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.artifact import FailedItem
from schemas.base import Frozen


class StepReport(Frozen):
    step: str
    ok: int = 0
    failed: int = 0
    cached: int = 0
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    note: str = ""
    failures: tuple[FailedItem, ...] = ()


class RunReport(Frozen):
    run_name: str
    config_path: str
    config_hash: str
    output_dir: str
    status: Literal["ok", "failed", "error", "interrupted"] = Field(
        description='"failed": a step stopped with failures a re-run may fix, or '
        'its inputs were unusable; "error": an unexpected exception (see `error`); '
        '"interrupted": SIGINT or SIGTERM (see `signal`).'
    )
    error: str | None = None
    signal: str | None = Field(
        default=None,
        description="The signal that interrupted the run (SIGINT or SIGTERM).",
    )
    llm_calls: int = Field(
        description="Model answers this run received (live or replayed); cache hits "
        "are not calls."
    )
    steps: dict[str, StepReport]
    flow_run_id: str | None = None
