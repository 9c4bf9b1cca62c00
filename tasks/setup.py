"""Pre-flight checks of a run, before any work starts.

Input: a loaded configuration and the process environment. Output: the list of
problems that would stop the run (`preflight`). Side effects: the output location
(and a separate result storage URL) is probed by writing and deleting one small
file or object (`tasks.store.storage_check`); nothing else. The run's resources
are built per process by `tasks.resources`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tasks.llm.client import check_endpoint_config
from tasks.steps import Mode, StepInfo, missing_prerequisites
from tasks.store.artifacts import ArtifactStore, UnusableStepOutput
from tasks.store.config_loader import (
    LoadedConfig,
    resolve_output_dir,
    resolve_prompt_overrides,
    resolve_results_storage,
)
from tasks.store.location import StorePath, is_url, store_path
from tasks.store.paths import OutputLayout
from tasks.store.storage_check import storage_problem


def preflight(loaded: LoadedConfig, env: Mapping[str, str]) -> list[str]:
    """Problems that would stop the run, found before any work starts."""
    cfg = loaded.config
    problems = list(check_endpoint_config(cfg.llm, env, config_dir=loaded.config_dir))
    folder = resolve_prompt_overrides(loaded)
    if folder is not None:
        if not folder.is_dir():
            problems.append(
                f"llm.prompt_overrides: {folder} is not a directory ({loaded.path})"
            )
    emb = cfg.embeddings
    if emb.provider == "openai":
        if not emb.model:
            problems.append(
                "embeddings.model: required when embeddings.provider is openai "
                f"({loaded.path})"
            )
        if not env.get(emb.api_key_env):
            problems.append(
                f"embeddings: environment variable {emb.api_key_env} is not set "
                f"(needed by embeddings.provider: openai in {loaded.path}); export it, "
                "or use provider: wordllama, which runs offline"
            )
    if cfg.run.executor == "work_pool":
        from tasks.pool import pool_problems

        problems += pool_problems(cfg, env)
    return problems + storage_problems(loaded, env)


def storage_problems(loaded: LoadedConfig, env: Mapping[str, str]) -> list[str]:
    """Whether the output location, and a result storage URL of its own, can be
    written: a missing bucket, denied access, an unreachable endpoint or a
    read-only folder is named here, before any work starts."""
    out = resolve_output_dir(loaded, Path.cwd())
    problems = [storage_problem(out, env)]
    results = resolve_results_storage(loaded, Path.cwd())
    if loaded.config.run.results_storage is not None and is_url(results):
        where = store_path(results, loaded.config.run.storage_options)
        found = storage_problem(where, env)
        problems.append(found and f"run.results_storage: {found}")
    return [p for p in problems if p]


def prerequisite_problems(
    mode: Mode, out: StorePath, steps: Sequence[StepInfo]
) -> list[str]:
    """What a run of `steps` in `mode` needs from an earlier run in the output
    location `out` but cannot find (say, `cross_domain` before any single-domain
    task work): one sentence each, naming the mode that makes it."""
    store = ArtifactStore(OutputLayout(out))

    def finished(step_name: str) -> bool:
        try:
            return store.read_manifest(step_name) is not None
        except (OSError, UnusableStepOutput):
            return False

    return missing_prerequisites(mode, finished, steps)
