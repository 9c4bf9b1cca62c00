"""Everything a step needs at run time, built once per run and handed to tasks.

Input: the loaded configuration, the artifact store, the LLM client, the prompt
library and the usage ledger. Output: `StepContext`, a plain object (deliberately not
a pydantic model or dataclass, so Prefect does not walk it looking for futures and it
never enters a cache key). No side effects.
"""

from __future__ import annotations

from pathlib import Path

from schemas.config import PipelineConfig, StepModel
from tasks.llm.bound import StepLLM
from tasks.llm.client import LLMClient
from tasks.llm.ledger import UsageLedger
from tasks.llm.prompting import PromptLibrary
from tasks.store.artifacts import ArtifactStore
from tasks.store.paths import OutputLayout
from tasks.store.vectors import Embedder


class StepContext:
    """Shared run resources: configuration, store, model access."""

    def __init__(
        self,
        *,
        config: PipelineConfig,
        config_hash: str,
        layout: OutputLayout,
        store: ArtifactStore,
        llm: LLMClient,
        prompts: PromptLibrary,
        ledger: UsageLedger,
        results_storage: str | Path,
        embedder: Embedder,
        retry_failed: bool = False,
    ) -> None:
        self.config = config
        self.config_hash = config_hash
        self.layout = layout
        self.store = store
        self.llm = llm
        self.prompts = prompts
        self.ledger = ledger
        self.results_storage = results_storage
        self.embedder = embedder
        # `--retry-failed`: run again the items whose cached outcome is a failure
        self.retry_failed = retry_failed

    def step_llm(
        self, step: str, choice: StepModel, *, max_retries: int | None = None
    ) -> StepLLM:
        """The model access for one step, honouring its role and model override.

        The settings that shape its answers (attempts, token limit, temperature)
        go into every work item that uses it, so changing one re-runs its items.
        """
        llm = self.config.llm
        role = llm.roles[choice.role]
        return StepLLM(
            self.llm,
            self.prompts,
            step=step,
            role=choice.role,
            model=choice.model,
            max_retries=max_retries,
            settings={
                "validation_retries": llm.validation_retries,
                "max_retries": max_retries,
                "max_tokens": role.max_tokens,
                "temperature": role.temperature,
            },
        )


_ACTIVE: dict[str, StepContext] = {}


def register(token: str, ctx: StepContext) -> str:
    """Make a context reachable by step flows through a small, serialisable token.

    Flow parameters are stored by the Prefect API, so the live context (clients,
    stores) is looked up in-process instead of being passed as a parameter.
    """
    _ACTIVE[token] = ctx
    return token


def lookup(token: str) -> StepContext:
    """The context registered under `token`.

    Raises:
        KeyError: no run with that token is active in this process.
    """
    try:
        return _ACTIVE[token]
    except KeyError:
        raise KeyError(
            f"no active pipeline run {token!r} in this process; step flows run "
            "inside the agentskiller-pipeline flow"
        ) from None


def release(token: str) -> None:
    _ACTIVE.pop(token, None)
