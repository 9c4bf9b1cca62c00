"""The step catalogue: ids, names, phases and one-line descriptions.

Input: none. Output: `STEPS` in pipeline order and `resolve_step`, which accepts a
step id (`s04`), its full name (`s04_blueprint_generation`) or the name without the
id (`blueprint_generation`). No side effects.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepInfo:
    id: str
    name: str
    phase: str
    description: str
    uses_llm: bool


STEPS: tuple[StepInfo, ...] = (
    StepInfo(
        "s01",
        "s01_domain_expansion",
        "Domain & Entity",
        "Grow seed domains by batch expansion with exact and semantic de-duplication",
        True,
    ),
    StepInfo(
        "s02",
        "s02_entity_extraction",
        "Domain & Entity",
        "Extract an entity catalogue with primary keys, linked to source domains",
        True,
    ),
    StepInfo(
        "s03",
        "s03_entity_graph",
        "Domain & Entity",
        "Relate each person entity to the entities it interacts with",
        True,
    ),
    StepInfo(
        "s04",
        "s04_blueprint_generation",
        "Blueprint & Tools",
        "Design validated MCP server blueprints (outlines, details, fix-up, repair)",
        True,
    ),
    StepInfo(
        "s05",
        "s05_tool_list_formulation",
        "Blueprint & Tools",
        "Export OpenAI tool lists with enums, array items and optional parameters",
        False,
    ),
    StepInfo(
        "s06",
        "s06_database_generation",
        "Implementation",
        "Generate validated tables with sandboxed, seeded generator scripts",
        True,
    ),
    StepInfo(
        "s07",
        "s07_policy_generation",
        "Implementation",
        "Write per-server policies with machine-readable markers, audited",
        True,
    ),
    StepInfo(
        "s08",
        "s08_tool_graph_generation",
        "Implementation",
        "Build tool dependency DAGs, preconditions and candidate trajectories",
        True,
    ),
    StepInfo(
        "s09",
        "s09_mcp_server_implementation",
        "Implementation",
        "Implement MCP servers against the runtime with test-driven repair",
        True,
    ),
)


class UnknownStep(ValueError):
    """A step name that matches no step."""


def resolve_step(name: str) -> StepInfo:
    """Find a step by id, full name or bare name.

    Raises:
        UnknownStep: with the list of valid names.
    """
    wanted = name.strip().lower()
    for info in STEPS:
        if wanted in (info.id, info.name, info.name.split("_", 1)[1]):
            return info
    valid = ", ".join(f"{s.id} ({s.name})" for s in STEPS)
    raise UnknownStep(f"unknown step {name!r}; valid steps: {valid}")


def select_steps(
    *, step: str | None = None, start: str | None = None, until: str | None = None
) -> tuple[StepInfo, ...]:
    """The steps a run executes, from --step / --from / --until.

    Raises:
        UnknownStep: a name is unknown, or --from comes after --until.
    """
    if step is not None:
        return (resolve_step(step),)
    ids = [s.id for s in STEPS]
    first = ids.index(resolve_step(start).id) if start else 0
    last = ids.index(resolve_step(until).id) if until else len(ids) - 1
    if first > last:
        raise UnknownStep(f"--from {start!r} comes after --until {until!r}")
    return STEPS[first : last + 1]
