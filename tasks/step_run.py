"""One step's run, as every step flow uses it: plan items → run them → finish.

Input: the step id and the run reference a step flow receives. Output: `StepRun`,
which plans work items (with the model choice, prompt hashes and code version they
need), runs them (locally, or on a work pool: `tasks.fanout`), records failures
the step finds itself (a missing dependency) and closes the step with its exports,
manifest and report. Side effects: the step's artifacts, exports and manifest.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.artifact import Artifact, FailedItem, ItemOutcome, LLMChoice, WorkItem
from schemas.config import PipelineConfig, StepModel
from schemas.report import StepReport
from schemas.run import RunRef
from tasks.fanout import StepTally, run_items
from tasks.items import InputValue, work_item
from tasks.reporting import finish_step
from tasks.resources import RunResources, resources
from tasks.steps import StepInfo, resolve_step
from tasks.store.artifacts import ArtifactStore
from tasks.task_args import TaskFunction


class StepRun:
    """The items, tally and timer of one step of one run."""

    def __init__(self, step_id: str, run: RunRef) -> None:
        self.info: StepInfo = resolve_step(step_id)
        self.run = run
        self.res: RunResources = resources(run)
        self.tally = StepTally(self.info.name)
        self._started = time.perf_counter()

    @property
    def config(self) -> PipelineConfig:
        return self.res.config

    @property
    def store(self) -> ArtifactStore:
        return self.res.store

    def llm(self, choice: StepModel) -> LLMChoice:
        """The model access of a step's items: role, model and the call settings
        that shape answers (so changing one re-runs the items)."""
        llm = self.config.llm
        role = llm.roles[choice.role]
        return LLMChoice(
            role=choice.role,
            model=choice.model,
            model_id=self.res.llm.model_for(choice.role, choice.model),
            settings={
                "validation_retries": llm.validation_retries,
                "max_retries": None,
                "max_tokens": role.max_tokens,
                "temperature": role.temperature,
            },
        )

    def item(
        self,
        key: str,
        task: TaskFunction,
        *,
        inputs: Mapping[str, InputValue] | None = None,
        params: Mapping[str, Any] | None = None,
        llm: LLMChoice | None = None,
        models: Mapping[str, LLMChoice] | None = None,
        prompts: Sequence[str] = (),
    ) -> WorkItem:
        """One work item of this step (see `tasks.items.work_item`)."""
        return work_item(
            self.info.id,
            key,
            task=task,
            inputs=inputs,
            params=params,
            llm=llm,
            models=models,
            prompt_hashes={p: self.res.prompts.prompt_hash(p) for p in prompts},
        )

    def run_items(
        self, works: Sequence[WorkItem], *, exports: dict[str, str] | None = None
    ) -> list[ItemOutcome]:
        """Run the items; outcomes in order, counted in the step's tally."""
        if not works:
            return []
        return run_items(self.run, list(works), self.tally, exports=exports)

    def fail(self, *failures: FailedItem) -> None:
        """Record failures found without running an item (missing dependencies)."""
        self.tally.failures.extend(failures)

    def finish(
        self,
        *,
        outputs: Sequence[Artifact],
        exports: Mapping[str, tuple[Artifact, Any]],
        note: str = "",
        inputs: int | None = None,
        produced: int | None = None,
    ) -> StepReport:
        """Write exports and the manifest; the step's report.

        Raises:
            tasks.reporting.StepFailed: an item failed in a way that blocks the step.
        """
        return finish_step(
            self.res,
            self.info,
            self.tally,
            outputs=outputs,
            exports=exports,
            seconds=time.perf_counter() - self._started,
            note=note,
            inputs=inputs,
            produced=produced,
        )
