"""Cross-domain payloads shared by s10-s13 and the runtime: which servers form a
combination, and how its fused name is made. Data only, no side effects."""

from __future__ import annotations

from pydantic import Field, model_validator

from schemas.base import Frozen, PascalName

FUSED_NAME_SEPARATOR = "_"
"""Joins member server names into a fused name (`DentalAppointments_TreatmentBilling`);
single servers are PascalCase without it, so the name alone says cross-domain."""


def fused_name(servers: tuple[str, ...] | list[str]) -> str:
    """The fused environment name of a combination: members sorted, joined."""
    return FUSED_NAME_SEPARATOR.join(sorted(servers))


def is_fused(name: str) -> bool:
    """Whether an environment name is a fused (cross-domain) one."""
    return FUSED_NAME_SEPARATOR in name


def members(name: str) -> tuple[str, ...]:
    """The member servers of an environment name (one for a single server)."""
    return tuple(name.split(FUSED_NAME_SEPARATOR))


class ServerCombination(Frozen):
    """A chosen group of servers that serve the same user (s10's output unit)."""

    servers: tuple[PascalName, ...] = Field(min_length=2)
    core_entity: PascalName = Field(
        description="The person entity every member serves; one shared table."
    )
    shared_entities: tuple[PascalName, ...] = Field(
        description="Entities every member uses (the core entity included)."
    )

    @model_validator(mode="after")
    def _sorted_unique(self) -> ServerCombination:
        if list(self.servers) != sorted(set(self.servers)):
            raise ValueError("servers must be distinct and sorted by name")
        if self.core_entity not in self.shared_entities:
            raise ValueError("the core entity must be among the shared entities")
        return self

    @property
    def name(self) -> str:
        """The fused environment's name."""
        return fused_name(self.servers)
