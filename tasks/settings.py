"""Process settings: secrets, endpoints and locations that come from the environment.

Inputs: environment variables prefixed `AGENTSKILLER_` (and a `.env` file in the
working directory, for development), read only when `Settings()` is constructed.
Output: the `Settings` model and `environment()`, a copy of the process environment
for code that must look up a variable named in the configuration (an API key
variable, say), and the process defaults a pipeline run sets before it starts
(`prepare_prefect_environment`, `tune_garbage_collection`). This is the only module
that reads the environment; nothing happens at import time.
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

from dotenv import dotenv_values
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings of one process, read from `AGENTSKILLER_*` variables and `.env`.

    Attributes:
        data_dir: Base directory for relative output paths; None means the current
            working directory.
        config: Configuration file used when the command line names none.
        prefect_api_url: Prefect server to report to; None lets Prefect decide
            (its own `PREFECT_API_URL`, else a temporary local server).
        log_level: Level of the pipeline's own loggers.
        state_dir: Folder of the user's small state files (the last run's output
            directory); None means `$XDG_STATE_HOME/agentskiller`, else
            `~/.local/state/agentskiller`.
    """

    model_config = SettingsConfigDict(
        env_prefix="AGENTSKILLER_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    data_dir: Path | None = None
    config: Path | None = None
    prefect_api_url: str | None = None
    log_level: str = "INFO"
    state_dir: Path | None = None


def user_state_dir(settings: Settings) -> Path:
    """The folder for per-user state that outlives a run (not the run's outputs).

    Args:
        settings: The process settings; `state_dir` wins when set.

    Returns:
        `settings.state_dir`, else `$XDG_STATE_HOME/agentskiller`, else
        `~/.local/state/agentskiller` (the XDG base-directory default). Nothing is
        created.
    """
    if settings.state_dir is not None:
        return settings.state_dir.expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "agentskiller"


def environment(env_file: Path | None = None) -> dict[str, str]:
    """Return a copy of the process environment, optionally under a `.env` file.

    Args:
        env_file: A dotenv file whose values fill in variables the process
            environment does not set (development convenience for API keys).
            A missing file contributes nothing.

    Returns:
        A new dict; changing it does not change the environment.
    """
    merged: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        values = dotenv_values(env_file)
        merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(os.environ)
    return merged


PREFECT_DEFAULTS: dict[str, str] = {
    # an offline machine cannot send telemetry; every server start would log an error
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # LanceDB's Rust layer warns "No existing dataset ... it will be created" when a
    # table is first written; lancedb 0.40 reads LANCEDB_LOG (LANCE_LOG is ignored)
    "LANCEDB_LOG": "error",
}


# Loggers whose every record repeats an exception the pipeline handles: instructor
# logs "Max retries exceeded ..." (with the whole validation error) at ERROR, then
# raises it, and the step records it as a failed item shown in the run summary.
QUIET_LOGGERS = ("instructor.v2.retry",)


def prepare_prefect_environment() -> None:
    """Set quiet, offline-friendly defaults for Prefect, LanceDB and instructor.

    Only variables the user has not set, and loggers whose level nobody has set,
    are touched; called by the CLI before Prefect is imported.
    """
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.CRITICAL)


# Collect the young generation after this many net allocations of container
# objects (CPython's default is 700).
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collection() -> None:
    """Make the garbage collector cheaper for a pipeline run (the CLI's process).

    Called once the pipeline's modules are imported. Their objects (modules,
    classes, functions: about 220,000 with Prefect, pydantic and openai) live as
    long as the process, so they are collected once and then frozen: later full
    collections no longer walk them. And a run allocates many short-lived
    containers per work item (request and state models, JSON documents): with
    CPython's default of a young collection every 700 allocations, a 2,000-item
    step spent about 3 s in ~1,600 collections, all threads stopped, 0.3-0.8 s
    with both changes (measured on a 2-core machine). Garbage cycles are still
    collected, a few thousand allocations later; a threshold someone already
    raised is kept.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, GC_YOUNG_THRESHOLD), middle, old)
