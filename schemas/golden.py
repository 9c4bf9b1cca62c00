"""Golden trajectories with declarative arguments (s15-s17 and `check-task`).

A planned call names a tool and binds each argument to one of three sources,
never to model-written code: a literal value, a field of one of the combination's
entity instances, or a field of an earlier step's result. Binding them against
the instances and the results so far gives a `GoldenCall` with concrete
arguments, the form a validated task records. Data only, no side effects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue

from schemas.base import Frozen

AGENT_TOOL_NAME = r"^[a-zA-Z0-9_-]{1,64}$"
"""Tool names an agent sees (the OpenAI API's rule): single servers' tool names
and fused environments' `Server__tool` names both match it."""


class LiteralArg(Frozen):
    """A fixed value, e.g. a reason a user gives or a date the plan chose."""

    source: Literal["literal"] = "literal"
    value: JsonValue


class EntityFieldArg(Frozen):
    """A field of one entity instance of the combination (`Patient.patient_id`;
    a second instance of the same entity is keyed `Patient_2`)."""

    source: Literal["entity"] = "entity"
    instance: str = Field(min_length=1)
    field: str = Field(min_length=1)


class StepResultArg(Frozen):
    """A value an earlier call returned, found by a path of keys and list
    indexes into its structured result (`["appointment", "appointment_id"]`)."""

    source: Literal["step_result"] = "step_result"
    step: int = Field(ge=0, description="0-based index of the earlier call.")
    path: tuple[str | int, ...] = Field(min_length=1)


ArgumentBinding = Annotated[
    LiteralArg | EntityFieldArg | StepResultArg, Field(discriminator="source")
]


class PlannedCall(Frozen):
    """One step of a golden trajectory, before its arguments are bound."""

    tool: str = Field(pattern=AGENT_TOOL_NAME)
    arguments: dict[str, ArgumentBinding] = {}


class GoldenCall(Frozen):
    """One step of a golden trajectory with concrete arguments."""

    tool: str = Field(pattern=AGENT_TOOL_NAME)
    arguments: dict[str, Any] = {}


BindingProblemKind = Literal[
    "missing_instance", "missing_field", "not_an_earlier_step", "missing_in_result"
]


class BindingProblem(Frozen):
    """Why one argument of one call could not be bound."""

    call: int = Field(ge=0)
    tool: str
    argument: str
    kind: BindingProblemKind
    message: str


class GoldenStep(Frozen):
    """What one call of a golden run did."""

    tool: str
    call: GoldenCall | None = Field(
        default=None, description="The bound call; None when binding failed."
    )
    problems: tuple[BindingProblem, ...] = ()
    ok: bool
    error: str | None = None
    result: Any = None
    wrote: bool = Field(
        default=False, description="Whether the session's state changed."
    )


GoldenFailure = Literal["binding", "tool_error", "no_write", "overlay"]
"""Why a golden run failed; "overlay": the environment refused the
combination's overlay, so no call ran."""


class GoldenRun(Frozen):
    """A golden trajectory executed in one fresh session.

    It passes only if every call bound, every call succeeded, and every write
    tool changed the session's state (a confirmation preview or a silent no-op
    is not the write the task expects)."""

    session: str
    steps: tuple[GoldenStep, ...]
    failure: GoldenFailure | None = None
    message: str | None = None
    final_state_hash: str | None = None

    @property
    def passed(self) -> bool:
        return self.failure is None

    @property
    def calls(self) -> tuple[GoldenCall, ...]:
        """The concrete golden calls (those that bound)."""
        return tuple(s.call for s in self.steps if s.call is not None)
