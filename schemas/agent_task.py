"""s14 payloads: the task template the writer model drafts from one trajectory,
the judge's rubric draft, and the stored `TaskTemplate` (trajectory, template,
scores computed by us) with the per-source `TaskTemplateSet` exported as
`task_templates/<Server>.json`; data only, no side effects."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from schemas.base import CheckedDraft, Draft, Frozen

Score = Annotated[int, Field(ge=1, le=5)]
"""One rubric score: 5 excellent, 4 good, 3 acceptable, 2 poor, 1 unacceptable."""

RUBRIC = (
    "motivation_clarity",
    "logical_coherence",
    "completeness",
    "naturalness",
    "specificity",
)
"""The judge's five dimensions, in the order the reference lists them."""


class TaskTemplateDraft(CheckedDraft):
    """What the writer model returns for one trajectory."""

    instruction: str = Field(
        min_length=1,
        description="What the user wants, in the user's voice, with every concrete "
        "value left as an <Entity.attribute> placeholder",
    )
    reason_for_call: str = Field(
        min_length=1, description="Why the user contacts the assistant, in one line"
    )


class TemplateRubricDraft(Draft):
    """What the judge returns for one template: five scores and, when it would
    reject the template, why. Any overall score it adds is ignored: the overall
    score is always our mean of the five."""

    motivation_clarity: Score = Field(description="Is the motivation realistic?")
    logical_coherence: Score = Field(description="Is it free of contradictions?")
    completeness: Score = Field(
        description="Would fulfilling it need every tool of the trajectory?"
    )
    naturalness: Score = Field(description="Does it sound like a real user?")
    specificity: Score = Field(description="Is it actionable and not verbose?")
    rejection_reason: str | None = Field(
        default=None, description="Why the template falls short; null if it passes"
    )


class TemplateScores(Frozen):
    """The judge's five scores with our overall score (their mean)."""

    motivation_clarity: Score
    logical_coherence: Score
    completeness: Score
    naturalness: Score
    specificity: Score
    overall_score: float = Field(ge=1, le=5)
    rejection_reason: str | None = None


class TaskTemplate(Frozen):
    """One kept template: a trajectory rewritten as a user task with placeholders.

    `source` names the template file (a server, or later a fused combination);
    `domains` lists the member servers of a cross-domain source (empty for a
    single server), whose trajectory steps are then written `Server.tool`.
    """

    source: str
    trajectory: tuple[str, ...] = Field(min_length=1)
    trajectory_hash: str
    instruction: str
    reason_for_call: str
    placeholders: tuple[str, ...] = Field(
        default=(), description="The <Entity.attribute> names the instruction uses."
    )
    scores: TemplateScores | None = Field(
        default=None, description="None only when the judge is disabled."
    )
    domains: tuple[str, ...] = ()
    is_cross_domain: bool = False


class TemplateStats(Frozen):
    """What happened to one source's trajectories."""

    total_trajectories: int = Field(ge=0, description="In the tool graph.")
    planned: int = Field(ge=0, description="Within the lengths and the cap.")
    generated_templates: int = Field(ge=0, description="Kept.")
    rejected_by_judge: int = Field(ge=0)
    failed: int = Field(ge=0, description="Writer or judge never validated, etc.")


class TaskTemplateSet(Frozen):
    """The kept templates of one source, as `task_templates/<Server>.json`."""

    source: str
    templates: tuple[TaskTemplate, ...]
    stats: TemplateStats
    is_cross_domain: bool = False
