"""Building a run: pre-flight checks and the `StepContext` every step uses.

Input: a loaded configuration, the output directory and the process environment.
Output: a list of problems found before any work starts (`preflight`), and the run's
`StepContext` (`build_context`): artifact store, LLM client with its usage ledger,
prompt library, embedder and Prefect result storage. Side effects: none until a step
writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tasks.context import StepContext
from tasks.llm.client import build_llm_client, check_endpoint_config
from tasks.llm.embeddings import OpenAIEmbedder
from tasks.llm.ledger import UsageLedger
from tasks.llm.prompting import PromptLibrary
from tasks.store.artifacts import ArtifactStore
from tasks.store.config_loader import (
    LoadedConfig,
    resolve_prompt_overrides,
    resolve_results_storage,
)
from tasks.store.paths import OutputLayout
from tasks.store.vectors import Embedder, WordLlamaEmbedder


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
    return problems


def _embedder(loaded: LoadedConfig, env: Mapping[str, str]) -> Embedder:
    emb = loaded.config.embeddings
    if emb.provider == "openai":
        return OpenAIEmbedder(
            model=emb.model or "",
            base_url=env.get(emb.base_url_env) or "https://api.openai.com/v1",
            api_key=env.get(emb.api_key_env, ""),
        )
    return WordLlamaEmbedder()


def build_context(
    loaded: LoadedConfig,
    *,
    output_dir: Path,
    env: Mapping[str, str],
    retry_failed: bool = False,
) -> StepContext:
    """Everything the steps of one run share; `retry_failed` asks again for items
    whose cached outcome is a failure."""
    cfg = loaded.config
    layout = OutputLayout(output_dir)
    ledger = UsageLedger()
    overrides = resolve_prompt_overrides(loaded)
    return StepContext(
        config=cfg,
        config_hash=loaded.config_hash,
        layout=layout,
        store=ArtifactStore(layout, config_hint=str(loaded.path)),
        llm=build_llm_client(
            cfg.llm, config_dir=loaded.config_dir, env=env, ledger=ledger
        ),
        prompts=PromptLibrary(str(overrides) if overrides else None),
        ledger=ledger,
        results_storage=resolve_results_storage(loaded, Path.cwd()),
        embedder=_embedder(loaded, env),
        retry_failed=retry_failed,
    )
