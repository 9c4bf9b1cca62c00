"""The run reference: the small, serialisable handle every task and flow gets.

A task rebuilds its clients, store and embedder from it in whichever process runs it
(see `tasks.resources`), so items can run in a worker on another machine. It holds
locations and identities only, never configuration values a task reads (those are
in the work item, and so in its cache key).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from schemas.base import Frozen


class RunRef(Frozen):
    """Where one run's configuration, outputs and results live."""

    run_id: str = Field(description="The pipeline's flow-run id.")
    config_path: str = Field(description="Absolute path of the configuration file.")
    config_hash: str = Field(
        description="Hash of the configuration after overrides; a process that "
        "loads a different configuration refuses to run the run's items."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted key -> value applied over the file (e.g. seed domains).",
    )
    output: str = Field(description="Output location: an absolute path or URL.")
    results: str = Field(description="Prefect result storage: a path or URL.")
    retry_failed: bool = False
    origin: str = Field(
        default="",
        description="host:pid of the orchestrating process (its ledger part is "
        "the run's main ledger file).",
    )
