"""What s15 and s15x share: the plan call, the script job, the end of its code
loop and the item's artifacts.

Input: a work item and its `ItemEnv`, the template, the step's
`SelectionSettings`, and a step's own parts (its prompts, the tools and columns
a plan may name, a `ScriptJob` subclass that runs its script). Output: the
checked `InstancePlan`, the `LoopResult` of the script job, and the item's
outcome: one `instance_selection` and its `instance_combination`s, or a failed
item whose first detail is its typed reason
(`schemas.instance_plan.CombinationFailure`). Side effects: the model calls of
the plan, the script and its repairs (`<step>/<item>/plan`, `<step>/<item>`,
`/fix-<k>`, `/rewrite-<k>`) and the job's sandboxed runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from schemas.agent_task import TaskTemplate
from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.base import Frozen
from schemas.config import InstanceConfig
from schemas.instance_plan import (
    CombinationFailure,
    InstancePlan,
    InstancePlanDraft,
    InstanceSelection,
    SelectionFixDraft,
    SelectionScriptDraft,
)
from schemas.sandbox import SandboxRequest, SandboxResult
from schemas.validated_task import InstanceCombination, Scope
from tasks.code_loop import (
    LoopResult,
    Proposal,
    Verdict,
    Version,
    ask_for_edits,
    run_code_loop,
)
from tasks.core.data_scripts import script_problems
from tasks.core.instance_plans import ToolParameters, canonical_plan, plan_problems
from tasks.core.instance_selection import Selected
from tasks.items import producer
from tasks.llm.bound import StepLLM
from tasks.llm.errors import InvalidModelOutput
from tasks.machinery import MachineryError
from tasks.runtime.sandbox import run_sandboxed

EDIT_ATTEMPTS = 2


class SelectionSettings(Frozen):
    """What every s15 and s15x item reads besides its inputs."""

    cfg: InstanceConfig
    seed: int
    simulation_time: str


def typed_failure(
    work: WorkItem, kind: CombinationFailure, message: str, problems: Sequence[str]
) -> ItemOutcome:
    """A failed item whose first detail is its typed s15 or s15x reason."""
    reason = "invalid_output" if kind == "plan_invalid" else "validation_failed"
    return ItemOutcome(
        item_key=work.item_key,
        failure=FailedItem(
            step=work.step,
            item_key=work.item_key,
            reason=reason,
            message=f"{kind}: {message}",
            details=(kind, *problems),
        ),
    )


def checked_plan(
    work: WorkItem,
    llm: StepLLM,
    prompt_id: str,
    tools: Mapping[str, ToolParameters],
    columns: Mapping[str, frozenset[str]],
    context: Mapping[str, Any],
    **extra: Any,
) -> InstancePlan | ItemOutcome:
    """The plan of one template (s15's or s15x's prompt), re-asked until it
    passes `plan_problems`, or the item's `plan_invalid` failure. The prompt
    sees the trajectory's tools, `context` and `extra`."""
    trajectory = context["template"].trajectory
    try:
        answer = llm.ask(
            prompt_id,
            InstancePlanDraft,
            item_key=f"{work.item_key}/plan",
            check=lambda d: plan_problems(d, trajectory, tools, columns),
            tools={name: tools[name] for name in trajectory if name in tools},
            **extra,
            **context,
        )
    except InvalidModelOutput as exc:
        return typed_failure(work, "plan_invalid", exc.summary, exc.problems)
    return canonical_plan(answer.value)


def finished_loop(work: WorkItem, job: ScriptJob) -> LoopResult[str, Any] | ItemOutcome:
    """The code loop of a script job, or the item's typed failure: no valid
    script (`script_failed`), or the status of the last run when it found no
    usable combination."""
    try:
        loop = run_code_loop(job)
    except InvalidModelOutput as exc:
        return typed_failure(work, "script_failed", exc.summary, exc.problems)
    final = loop.final
    if final.run.status != "ok":
        return typed_failure(
            work,
            final.run.status,
            job.exhausted.format(runs=loop.runs),
            final.run.problems,
        )
    return loop


def template_combination(
    template: Artifact[TaskTemplate],
    selected: Selected,
    *,
    combo_id: str,
    scope: Scope,
    sample_index: int,
    overlay: dict[str, tuple[dict[str, Any], ...]] | None = None,
) -> InstanceCombination:
    """One combination of a template: its records, calls and (cross-domain) the
    rows it creates."""
    tmpl = template.payload
    return InstanceCombination(
        combo_id=combo_id,
        environment=tmpl.source,
        scope=scope,
        template_id=template.id,
        trajectory=tmpl.trajectory,
        trajectory_hash=tmpl.trajectory_hash,
        instruction=tmpl.instruction,
        reason_for_call=tmpl.reason_for_call,
        instances=selected.instances,
        calls=selected.calls,
        overlay=overlay or {},
        sample_index=sample_index,
    )


def kept_outcome(
    work: WorkItem,
    template: Artifact[TaskTemplate],
    plan: InstancePlan,
    loop: LoopResult[str, Any],
    seed: int,
    combos: Sequence[InstanceCombination],
) -> ItemOutcome:
    """The item's artifacts: the `instance_selection` (plan, the script that
    worked, how many it found and rejected) and the kept combinations."""
    tmpl = template.payload
    final = loop.final
    made = producer(work, seed=seed)
    selection = Artifact[InstanceSelection].build(
        kind="instance_selection",
        id=f"{tmpl.source}/{tmpl.trajectory_hash}",
        payload=InstanceSelection(
            environment=tmpl.source,
            template_id=template.id,
            trajectory=tmpl.trajectory,
            trajectory_hash=tmpl.trajectory_hash,
            plan=plan,
            script=final.code,
            runs=loop.runs,
            found=len(final.run.combinations),
            rejected=final.run.rejected,
        ),
        parents=[template.ref],
        producer=made,
    )
    kept = [
        Artifact[InstanceCombination].build(
            kind="instance_combination",
            id=combo.combo_id,
            payload=combo,
            parents=[template.ref, selection.ref],
            producer=made,
        )
        for combo in combos
    ]
    return ItemOutcome(item_key=work.item_key, artifacts=(selection, *kept))


@dataclass(frozen=True)
class ScriptJob:
    """What the selection (s15) and the creation (s15x) code jobs share: the
    first script, its repair by edit blocks (a rewrite when no edit applies),
    the sandboxed run, the score, a run passing when it kept a combination, and
    keeping every repaired version. A subclass (a frozen dataclass) names its two
    prompts and its script, holds what its `run` needs, and says whether repairs
    see the context too (`fix_with_context`)."""

    write_prompt: ClassVar[str]
    fix_prompt: ClassVar[str]
    fix_with_context: ClassVar[bool] = False
    script_name: ClassVar[str]
    """What the script is, in a sandbox failure ("selection script")."""
    exhausted: ClassVar[str]
    """The failure message when no run passed (`{runs}`: how many ran)."""
    llm: StepLLM
    key: str
    settings: SelectionSettings
    plan: InstancePlan
    seed: int
    context: Mapping[str, Any]

    @property
    def rounds(self) -> int:
        return self.settings.cfg.max_code_retries

    def write(self) -> str:
        return self._write(self.key, None, ())

    def run(self, code: str) -> Any:
        """Run one version of the script (the subclass's own run)."""
        raise NotImplementedError

    def passed(self, run: Any) -> bool:
        return run.status == "ok"

    def score(self, run: Any) -> tuple[int, ...]:
        return (int(run.status == "ok"), len(run.combinations))

    def repair(self, current: Version[str, Any], number: int) -> Proposal[str]:
        try:
            return Proposal(self._fix(current.code, current.run.problems, number))
        except InvalidModelOutput as exc:
            note = f"repair {number} gave no usable script: {'; '.join(exc.problems)}"
            return Proposal(None, note=note, give_up=True)

    def judge(
        self,
        proposal: Proposal[str],
        candidate: Version[str, Any],
        best: Version[str, Any],
    ) -> Verdict:
        return "kept"

    def _fix(self, script: str, problems: Sequence[str], number: int) -> str:
        extra = dict(self.context) if self.fix_with_context else {}
        try:
            return ask_for_edits(
                self.llm,
                self.fix_prompt,
                SelectionFixDraft,
                item_key=f"{self.key}/fix-{number}",
                source=script,
                error="\n".join(problems),
                static=script_problems,
                max_retries=EDIT_ATTEMPTS,
                unapplied="The edit blocks did not change the script.",
                script=script,
                problems=list(problems),
                plan=self.plan,
                **extra,
            )
        except InvalidModelOutput:
            return self._write(f"{self.key}/rewrite-{number}", script, problems)

    def _write(self, key: str, previous: str | None, problems: Sequence[str]) -> str:
        answer = self.llm.ask(
            self.write_prompt,
            SelectionScriptDraft,
            item_key=key,
            check=lambda d: script_problems(d.script),
            plan=self.plan,
            previous_script=previous,
            problems=list(problems),
            **self.context,
        )
        return answer.value.script

    def sandboxed(self, request: SandboxRequest) -> SandboxResult:
        """The finished run of a script.

        Raises:
            MachineryError: the sandbox itself failed.
        """
        result = run_sandboxed(request)
        if result.status == "sandbox_error":
            raise MachineryError(f"running a {self.script_name}", result.message)
        return result
