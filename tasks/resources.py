"""Per-process run resources, rebuilt from a `RunRef` wherever an item runs.

Input: a `RunRef` (configuration location and hash, output and result locations).
Output: `resources(run)`, the process's `RunResources` for that run (configuration,
artifact store, LLM client with its usage ledger, prompt library, embedder), built
once per process and run; `ItemEnv`, the view a task body gets (its model access and
the embedder, nothing else). Side effects: the first call in a process loads the
configuration and opens the clients; the ledger of a process that is not the run's
orchestrator is appended to its own part file, so workers never write one file.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Mapping
from pathlib import Path

from schemas.artifact import WorkItem
from schemas.config import PipelineConfig
from schemas.run import RunRef
from tasks.llm.bound import StepLLM
from tasks.llm.client import LLMClient, build_llm_client
from tasks.llm.embeddings import OpenAIEmbedder
from tasks.llm.ledger import UsageLedger, read_ledger
from tasks.llm.prompting import PromptLibrary
from tasks.settings import environment
from tasks.store.artifacts import ArtifactStore
from tasks.store.config_loader import (
    ConfigError,
    LoadedConfig,
    load_config,
    resolve_prompt_overrides,
    with_overrides,
)
from tasks.store.location import StorePath, lance_storage_options
from tasks.store.paths import OutputLayout
from tasks.store.vectors import Embedder, VectorIndex, WordLlamaEmbedder


def process_tag() -> str:
    """`host:pid` of this process (a run's `origin` names its orchestrator)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def load_run_config(run: RunRef) -> LoadedConfig:
    """The run's configuration, as its orchestrator loaded it.

    Raises:
        ConfigError: the file is unusable, or it changed since the run started (its
            hash differs), so items would run with other settings than their keys
            say.
    """
    loaded = with_overrides(load_config(Path(run.config_path)), overrides=run.overrides)
    if loaded.config_hash != run.config_hash:
        raise ConfigError(
            f"the configuration {run.config_path} changed since run {run.run_id} "
            f"started (hash {loaded.config_hash[:12]}, the run has "
            f"{run.config_hash[:12]}); start a new run instead of resuming this one",
            path=loaded.path,
        )
    return loaded


class RunResources:
    """Everything the steps of one run share within one process."""

    def __init__(
        self,
        run: RunRef,
        loaded: LoadedConfig,
        *,
        env: Mapping[str, str],
        llm: LLMClient | None = None,
    ) -> None:
        self.run = run
        self.loaded = loaded
        self.layout = OutputLayout.at(run.output, loaded.config.run.storage_options)
        self.store = ArtifactStore(self.layout, config_hint=str(loaded.path))
        self.ledger = UsageLedger()
        if run.origin in ("", process_tag()):
            self.ledger.attach(self.layout.ledger_path(run.run_id))
        else:
            part = process_tag().replace(":", "-")
            self.ledger.attach(self.layout.ledger_path(f"{run.run_id}.{part}"))
        overrides = resolve_prompt_overrides(loaded)
        self.prompts = PromptLibrary(str(overrides) if overrides else None)
        self.llm = llm or build_llm_client(
            loaded.config.llm, config_dir=loaded.config_dir, env=env, ledger=self.ledger
        )
        self._env = dict(env)
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def config(self) -> PipelineConfig:
        return self.loaded.config

    @property
    def embedder(self) -> Embedder:
        """The configured embedder, built on first use."""
        with self._lock:
            if self._embedder is None:
                self._embedder = build_embedder(self.loaded, self._env)
            return self._embedder

    def step_llm(self, work: WorkItem, name: str | None = None) -> StepLLM:
        """The model access a work item was planned with (`name`: one of its
        further model choices)."""
        choice = work.llm if name is None else work.models.get(name)
        if choice is None:
            wanted = "a model" if name is None else f"model {name!r}"
            raise ValueError(f"work item {work.label} was planned without {wanted}")
        return StepLLM(
            self.llm,
            self.prompts,
            step=work.step,
            role=choice.role,  # type: ignore[arg-type]
            model=choice.model,
            settings=choice.settings,
        )

    def vectors(self, table: str) -> VectorIndex:
        """A LanceDB table in the run's output location (local or at a URL)."""
        lancedb_dir = self.layout.lancedb_dir
        options = lance_storage_options(lancedb_dir, self._env)
        return VectorIndex(lancedb_dir, table, self.embedder, storage_options=options)

    def usage(self) -> UsageLedger:
        """Every model call of the run so far: this process's, and those other
        processes (workers) appended to their own ledger parts of the run."""
        records = self.ledger.records()
        own = self.ledger.path
        for part in sorted(self.layout.ledger_dir.glob(f"{self.run.run_id}.*.jsonl")):
            if part != own:
                records += read_ledger(part).entries
        return UsageLedger(records)

    def close(self) -> None:
        self.llm.close()


def build_embedder(loaded: LoadedConfig, env: Mapping[str, str]) -> Embedder:
    emb = loaded.config.embeddings
    if emb.provider == "openai":
        return OpenAIEmbedder(
            model=emb.model or "",
            base_url=env.get(emb.base_url_env) or "https://api.openai.com/v1",
            api_key=env.get(emb.api_key_env, ""),
        )
    return WordLlamaEmbedder()


_CACHE: dict[str, RunResources] = {}
_CACHE_LOCK = threading.Lock()


def resources(run: RunRef) -> RunResources:
    """This process's resources for `run`, built on first use.

    Raises:
        ConfigError: the configuration is unusable or changed since the run began.
    """
    key = run.model_dump_json()
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            found = RunResources(run, load_run_config(run), env=environment())
            _CACHE[key] = found
        return found


def open_local(
    loaded: LoadedConfig,
    output_dir: StorePath,
    *,
    env: Mapping[str, str] | None = None,
    run_id: str = "local",
) -> RunResources:
    """Resources of a run that lives in this process only, outside the pipeline
    flow (unit tests, benchmarks): its ledger is kept under `run_id`."""
    run = RunRef(
        run_id=run_id,
        config_path=str(loaded.path.resolve()),
        config_hash=loaded.config_hash,
        output=str(output_dir),
        results=str(OutputLayout.at(output_dir).prefect_results_dir),
        origin=process_tag(),
    )
    return adopt(
        run, RunResources(run, loaded, env=environment() if env is None else env)
    )


def adopt(run: RunRef, built: RunResources) -> RunResources:
    """Use already built resources for `run` in this process (the orchestrator
    builds them before its first step; tests inject a scripted client)."""
    with _CACHE_LOCK:
        _CACHE[run.model_dump_json()] = built
    return built


def forget(run: RunRef) -> None:
    """Drop and close this process's resources for a finished run."""
    with _CACHE_LOCK:
        found = _CACHE.pop(run.model_dump_json(), None)
    if found is not None:
        found.close()


class ItemEnv:
    """What a task body may use besides its work item: its model access, the
    embedder and LanceDB tables. Configuration is deliberately absent: a task
    reads its parameters from the work item, so they are in its cache key."""

    def __init__(self, res: RunResources, work: WorkItem) -> None:
        self._res = res
        self._work = work

    @functools.cached_property
    def llm(self) -> StepLLM:
        return self._res.step_llm(self._work)

    def model(self, name: str) -> StepLLM:
        """One of the item's further model choices (`WorkItem.models`)."""
        return self._res.step_llm(self._work, name)

    @property
    def embedder(self) -> Embedder:
        return self._res.embedder

    @property
    def prompts(self) -> PromptLibrary:
        """The prompt library (for texts rendered without a model call)."""
        return self._res.prompts

    def vectors(self, table: str) -> VectorIndex:
        """A LanceDB table of the run's output location."""
        return self._res.vectors(table)
