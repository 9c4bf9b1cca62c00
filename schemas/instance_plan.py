"""s15 payloads: the typed constraint analysis (plan) of one template, the
selection script the coding model writes from it, and the typed failures of an
item.

The plan says, per trajectory step and per tool parameter, where the argument
comes from (a field of an entity instance, a value the selection code picks from
a value domain, or a path into an earlier step's result), which instances the
trajectory needs (one key per instance: `Patient`, `Appointment_2`; the same key
at two steps is the same record, two keys of one table are different records)
and the constraints the records must meet. The selection code only picks records
and values; the calls are built from the plan, never by model-written code. Data
only, no side effects.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from schemas.base import CheckedDraft, Draft, Frozen

BindingSource = Literal["entity", "value", "step_result"]

CombinationFailure = Literal[
    "plan_invalid",  # the plan never validated
    "script_failed",  # the script crashed or wrote no readable output, after repairs
    "no_combination",  # the script ran but found no combination
    "timeout",  # the script hit its time limit
    "bad_reference",  # every combination referenced a missing row, field or value
    "execution_failed",  # cross-domain: no created combination executed successfully
]
"""Why one template got no instance combination (the item's typed failure)."""


class InstanceDraft(Draft):
    """One record the trajectory needs."""

    key: str = Field(
        description="Instance key: the table name (`Patient`), or the table name "
        "with `_2`, `_3` for a further, different record of the same table"
    )
    table: str = Field(description="The entity or relationship table it comes from")
    constraints: list[str] = Field(
        default_factory=list,
        description="Conditions the record must meet (status, dates, foreign keys "
        "to other instances), each a short sentence naming columns",
    )


class ArgumentPlanDraft(Draft):
    """Where one parameter of one step gets its value."""

    parameter: str = Field(description="The tool parameter's exact name")
    source: BindingSource = Field(
        description="`entity`: a field of an instance; `value`: picked by the "
        "selection code from `domain`; `step_result`: returned by an earlier step"
    )
    instance: str | None = Field(default=None, description="For `entity`: its key")
    field: str | None = Field(default=None, description="For `entity`: the column")
    domain: list[JsonValue] | None = Field(
        default=None,
        description="For `value`: every value that keeps the trajectory valid "
        "(blocked values left out)",
    )
    step: int | None = Field(
        default=None, description="For `step_result`: 0-based index of the step"
    )
    path: list[str | int] | None = Field(
        default=None,
        description="For `step_result`: keys and list indexes into its result",
    )
    notes: str = Field(default="", description="Policy constraints, briefly")


class StepPlanDraft(Draft):
    """The arguments of one trajectory step."""

    tool: str
    arguments: list[ArgumentPlanDraft] = Field(default_factory=list)


class InstancePlanDraft(CheckedDraft):
    """What the planning model returns for one template."""

    instances: list[InstanceDraft] = Field(min_length=1)
    steps: list[StepPlanDraft] = Field(
        min_length=1, description="One per trajectory step, in trajectory order"
    )
    sequential_constraints: list[str] = Field(
        default_factory=list,
        description="Constraints across steps (state transitions, values one step "
        "hands to another, values that would block a later step)",
    )


class SelectionScriptDraft(CheckedDraft):
    """A complete selection program."""

    script: str = Field(
        description="The whole Python program: reads input.json and tables/, "
        "writes output.json"
    )


class SelectionFixDraft(CheckedDraft):
    """Edits to the current selection program."""

    edits: str = Field(
        description="One or more SEARCH/REPLACE blocks against the current script."
    )


class PlannedArgument(Frozen):
    """One checked argument source of the plan."""

    source: BindingSource
    instance: str | None = None
    field: str | None = None
    domain: tuple[JsonValue, ...] | None = None
    step: int | None = None
    path: tuple[str | int, ...] | None = None
    notes: str = ""


class PlannedStep(Frozen):
    tool: str
    arguments: dict[str, PlannedArgument]


class PlannedInstance(Frozen):
    table: str
    constraints: tuple[str, ...] = ()


class InstancePlan(Frozen):
    """The checked plan: the selection script's input and the calls' recipe."""

    instances: dict[str, PlannedInstance]
    steps: tuple[PlannedStep, ...]
    sequential_constraints: tuple[str, ...] = ()


class SkippedTrajectory(Frozen):
    """One entry of `combinations/_skipped_trajectories.json`."""

    trajectory: tuple[str, ...]
    trajectory_hash: str
    kind: CombinationFailure | Literal["dependency_failed", "other"]
    reason: str


class InstanceSelection(Frozen):
    """How one template's combinations were found: the checked plan and the
    selection script that worked (exported as `sampling_codes/<Server>/<hash>.py`
    and as the `constraint_analysis` of the combinations' file)."""

    environment: str
    template_id: str
    trajectory: tuple[str, ...]
    trajectory_hash: str
    plan: InstancePlan
    script: str
    runs: int = Field(ge=1, description="Sandboxed runs of the script.")
    found: int = Field(ge=1, description="Distinct combinations that hold.")
    rejected: int = Field(
        ge=0, description="Combinations the script gave that did not hold."
    )
