"""s11 payloads: the model's draft of cross-domain tasks for one server
combination (one single-domain trajectory per member and a shared motivation),
the stored `FusedTrajectory` (segments with their hashes, the fused trajectory in
agent-facing names) and the per-combination `FusedTrajectorySet` exported as
`cross_domain_combinations/<Fused>.json` with its pruned tasks. Data only, no
side effects."""

from __future__ import annotations

from pydantic import Field

from schemas.base import CheckedDraft, Draft, Frozen, PascalName
from schemas.fusion import ServerCombination


class SegmentDraft(Draft):
    """One member's part of a cross-domain task."""

    server: str = Field(description="The member service, exactly as listed.")
    tools: list[str] = Field(
        min_length=1,
        description="One offered trajectory of that service: its tool names in order.",
    )


class FusedTaskDraft(Draft):
    """One cross-domain task: one trajectory per member service."""

    segments: list[SegmentDraft] = Field(
        description="Exactly one segment per member service, in the order the "
        "user needs them done."
    )
    motivation: str = Field(
        min_length=1,
        description="Why one user needs all of these done, in one or two sentences.",
    )


class FusionDraft(CheckedDraft):
    """The model's cross-domain tasks for one combination."""

    tasks: list[FusedTaskDraft] = Field(min_length=1)


class FusedSegment(Frozen):
    """One member's single-domain trajectory inside a fused task."""

    server: PascalName
    tools: tuple[str, ...] = Field(min_length=1, description="Bare tool names.")
    trajectory_hash: str = Field(description="Of the bare tool names.")


class FusedTrajectory(Frozen):
    """s11's output unit: a cross-domain task whose every segment has a
    validated single-domain counterpart.

    Attributes:
        combination: The fused environment's name.
        servers: The member servers (sorted).
        segments: One per member, in the order the user needs them.
        motivation: The user's shared reason.
        trajectory: The fused trajectory in agent-facing names (`Server__tool`).
        trajectory_hash: The hash of `trajectory`.
    """

    combination: str
    servers: tuple[PascalName, ...] = Field(min_length=2)
    segments: tuple[FusedSegment, ...] = Field(min_length=2)
    motivation: str
    trajectory: tuple[str, ...] = Field(min_length=2)
    trajectory_hash: str


class PrunedTask(Frozen):
    """A drafted task the feasibility filter removed, and why."""

    segments: tuple[FusedSegment, ...]
    motivation: str
    reason: str


class FusedTrajectorySet(Frozen):
    """One combination's fused trajectories and pruned drafts (the export)."""

    combination: ServerCombination
    trajectories: tuple[FusedTrajectory, ...]
    pruned: tuple[PrunedTask, ...] = ()
