"""The step catalogue and the graph of phases the steps run in.

Input: none. Output: `STEPS` (id, name, display group, description, flow),
`PHASES`, a small graph of phases (each a run of steps after the phases it
depends on), `phase_order` (a dependency order of the phases of a mode),
`pipeline_steps` (the steps of a mode, in order) and `resolve_step`, which accepts
a step id (`s04`), its full name (`s04_blueprint_generation`) or the name without
the id (`blueprint_generation`). No side effects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class StepInfo:
    id: str
    name: str
    phase: str
    description: str
    uses_llm: bool
    flow: str  # "module:function" of the step's flow, imported when it runs


STEPS: tuple[StepInfo, ...] = (
    StepInfo(
        "s01",
        "s01_domain_expansion",
        "Domain & Entity",
        "Grow seed domains by batch expansion with exact and semantic de-duplication",
        True,
        "flows.domain_entity:expand_domains",
    ),
    StepInfo(
        "s02",
        "s02_entity_extraction",
        "Domain & Entity",
        "Extract an entity catalogue with primary keys, linked to source domains",
        True,
        "flows.domain_entity:extract_entities",
    ),
    StepInfo(
        "s03",
        "s03_entity_graph",
        "Domain & Entity",
        "Relate each person entity to the entities it interacts with",
        True,
        "flows.domain_entity:relate_entities",
    ),
    StepInfo(
        "s04",
        "s04_blueprint_generation",
        "Blueprint & Tools",
        "Design validated MCP server blueprints (outlines, details, fix-up, repair)",
        True,
        "flows.blueprint_tools:design_blueprints",
    ),
    StepInfo(
        "s05",
        "s05_tool_list_formulation",
        "Blueprint & Tools",
        "Export OpenAI tool lists with enums, array items and optional parameters",
        False,
        "flows.blueprint_tools:formulate_tool_lists",
    ),
    StepInfo(
        "s06",
        "s06_database_generation",
        "Implementation",
        "Generate validated tables with sandboxed, seeded generator scripts",
        True,
        "flows.databases:generate_databases",
    ),
    StepInfo(
        "s07",
        "s07_policy_generation",
        "Implementation",
        "Write per-server policies with machine-readable markers, audited",
        True,
        "flows.policies:write_policies",
    ),
    StepInfo(
        "s08",
        "s08_tool_graph_generation",
        "Implementation",
        "Build tool dependency DAGs, preconditions and candidate trajectories",
        True,
        "flows.tool_graphs:build_tool_graphs",
    ),
    StepInfo(
        "s09",
        "s09_mcp_server_implementation",
        "Implementation",
        "Implement MCP servers against the runtime with test-driven repair",
        True,
        "flows.servers:implement_servers",
    ),
    StepInfo(
        "s10",
        "s10_combination_selection",
        "Cross-domain fusion",
        "Choose server combinations by shared entities and embedding similarity",
        False,
        "flows.combinations:select_combinations",
    ),
    StepInfo(
        "s11",
        "s11_trajectory_fusion",
        "Cross-domain fusion",
        "Fuse validated single-domain trajectories into cross-domain tasks",
        True,
        "flows.trajectory_fusion:fuse_trajectories",
    ),
    StepInfo(
        "s12",
        "s12_database_fusion",
        "Cross-domain fusion",
        "Derive fused environments: one shared core table, member namespaces",
        False,
        "flows.database_fusion:fuse_databases",
    ),
    StepInfo(
        "s13",
        "s13_policy_merge",
        "Cross-domain fusion",
        "Merge member policies into one per combination, with bridge rules",
        True,
        "flows.policy_merge:merge_policies",
    ),
    StepInfo(
        "s14",
        "s14_task_templates",
        "Agent Tasks",
        "Write user-task templates from trajectories, judged by an LLM judge",
        True,
        "flows.task_templates:write_task_templates",
    ),
    StepInfo(
        "s15",
        "s15_instance_combinations",
        "Agent Tasks",
        "Plan instance constraints, select combinations with sandboxed code",
        True,
        "flows.instance_combinations:select_instance_combinations",
    ),
    StepInfo(
        "s16",
        "s16_task_filtering",
        "Agent Tasks",
        "Execute every golden trajectory over MCP; keep combinations that pass",
        False,
        "flows.task_filtering:filter_tasks",
    ),
    StepInfo(
        "s17",
        "s17_query_generation",
        "Agent Tasks",
        "Write checked user queries for validated tasks (JSONL)",
        True,
        "flows.query_generation:generate_queries",
    ),
    StepInfo(
        "s14x",
        "s14x_cross_domain_task_templates",
        "Cross-domain tasks",
        "Write user-task templates from fused trajectories, judged by an LLM judge",
        True,
        "flows.task_templates:write_cross_domain_templates",
    ),
    StepInfo(
        "s15x",
        "s15x_cross_domain_instance_combinations",
        "Cross-domain tasks",
        "Create each cross-domain template's records as per-combination overlays "
        "and keep the combinations that executed",
        True,
        "flows.cross_tasks:create_cross_domain_combinations",
    ),
    StepInfo(
        "s16x",
        "s16x_cross_domain_task_filtering",
        "Cross-domain tasks",
        "Execute cross-domain golden trajectories over MCP, each session with its "
        "overlay",
        False,
        "flows.cross_tasks:filter_cross_domain_tasks",
    ),
    StepInfo(
        "s17x",
        "s17x_cross_domain_query_generation",
        "Cross-domain tasks",
        "Write checked user queries for validated cross-domain tasks (JSONL)",
        True,
        "flows.cross_tasks:generate_cross_domain_queries",
    ),
    StepInfo(
        "r01",
        "r01_rollouts",
        "Rollouts & Evaluation",
        "Converse: a simulated user and the assistant, tool calls over MCP in a "
        "fresh session per trial",
        True,
        "flows.rollouts:run_rollouts",
    ),
    StepInfo(
        "r02",
        "r02_evaluation",
        "Rollouts & Evaluation",
        "Score every rollout (actions, final state, NL assertions, rubric) and "
        "report pass^k",
        True,
        "flows.evaluation:evaluate_rollouts",
    ),
)


Mode = Literal["single", "cross_domain", "both"]
MODES: tuple[Mode, ...] = ("single", "cross_domain", "both")


@dataclass(frozen=True)
class Phase:
    """A run of steps that starts once the phases in `after` are done.

    `modes` are the pipeline modes whose path goes through the phase; a phase a
    mode skips is also skipped as a dependency (the next phases follow the ones
    before it). An `optional` phase is on a run's path only when the run asks
    for it (rollouts and evaluation: `steps.r01_rollouts.enabled`). `uses`
    names phases whose outputs this phase reads: when the mode skips such a
    phase, its outputs must already be in the output location
    (from an earlier run), or the run refuses to start (`missing_prerequisites`).
    """

    name: str
    steps: tuple[str, ...]
    after: tuple[str, ...] = ()
    modes: frozenset[str] = frozenset(MODES)
    uses: tuple[str, ...] = ()
    optional: bool = False


PHASES: tuple[Phase, ...] = (
    Phase(
        "environments",
        ("s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09"),
    ),
    Phase(
        "single_tasks",
        ("s14", "s15", "s16", "s17"),
        after=("environments",),
        modes=frozenset({"single", "both"}),
    ),
    Phase(
        "fusion",
        ("s10", "s11", "s12", "s13"),
        after=("environments", "single_tasks"),
        modes=frozenset({"cross_domain", "both"}),
        uses=("single_tasks",),
    ),
    Phase(
        "cross_tasks",
        ("s14x", "s15x", "s16x", "s17x"),
        after=("fusion",),
        modes=frozenset({"cross_domain", "both"}),
    ),
    Phase(
        "evaluation",
        ("r01", "r02"),
        after=("single_tasks", "cross_tasks"),
        optional=True,
    ),
)


class PhaseGraphError(ValueError):
    """The phase graph names an unknown phase or step, or has a cycle."""


def phase_order(
    mode: Mode = "both", phases: Sequence[Phase] = PHASES, *, optional: bool = False
) -> list[Phase]:
    """The phases on `mode`'s path, each after every phase it depends on.

    Among phases that are ready at the same time, declaration order decides, so
    the order is stable.

    Raises:
        PhaseGraphError: a dependency names no phase, or the graph has a cycle.
    """
    names = {p.name for p in phases}
    for phase in phases:
        unknown = sorted(set(phase.after) - names)
        if unknown:
            raise PhaseGraphError(
                f"phase {phase.name!r} comes after unknown phase(s) {unknown}"
            )
    placed: list[Phase] = []
    done: set[str] = set()
    pending = list(phases)
    while pending:
        ready = next((p for p in pending if set(p.after) <= done), None)
        if ready is None:
            cycle = ", ".join(p.name for p in pending)
            raise PhaseGraphError(f"the phases {cycle} depend on each other")
        pending.remove(ready)
        done.add(ready.name)
        if mode in ready.modes and (optional or not ready.optional):
            placed.append(ready)
    return placed


def pipeline_steps(
    mode: Mode = "both", phases: Sequence[Phase] = PHASES, *, optional: bool = False
) -> tuple[StepInfo, ...]:
    """The steps a full run of `mode` executes, in order.

    Raises:
        PhaseGraphError: the graph is invalid or names an unknown step.
    """
    by_id = {s.id: s for s in STEPS}
    ordered: list[StepInfo] = []
    for phase in phase_order(mode, phases, optional=optional):
        for step_id in phase.steps:
            if step_id not in by_id:
                raise PhaseGraphError(
                    f"phase {phase.name!r} names unknown step {step_id}"
                )
            ordered.append(by_id[step_id])
    return tuple(ordered)


def missing_prerequisites(
    mode: Mode,
    has_output: Callable[[str], bool],
    steps: Sequence[StepInfo],
    phases: Sequence[Phase] = PHASES,
) -> list[str]:
    """What a run of `steps` in `mode` needs from earlier runs but cannot find.

    A phase on the run that `uses` a phase the mode skips reads that phase's
    outputs, so the last step of the skipped phase must have finished in this
    output location before (`has_output(step_name)`). One sentence per missing
    phase, naming the modes that make it.
    """
    by_id = {s.id: s for s in STEPS}
    by_name = {p.name: p for p in phases}
    running = {s.id for s in steps}
    problems: list[str] = []
    for phase in phase_order(mode, phases):
        if not running & set(phase.steps):
            continue
        for used in phase.uses:
            source = by_name[used]
            if mode in source.modes or not source.steps:
                continue
            last = by_id[source.steps[-1]]
            if not has_output(last.name):
                makers = " or ".join(sorted(source.modes))
                problems.append(
                    f"task_mode {mode!r} runs the {phase.name} phase, which reads the "
                    f"outputs of the {used} phase ({source.steps[0]}-"
                    f"{source.steps[-1]}), and this output folder has none "
                    f"(no finished {last.name}); run with task_mode {makers} first"
                )
    return problems


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
    *,
    step: str | None = None,
    start: str | None = None,
    until: str | None = None,
    mode: Mode = "both",
    optional: bool = False,
) -> tuple[StepInfo, ...]:
    """The steps a run executes, from --step / --from / --until, on the path of
    `mode` (`run.task_mode`).

    Raises:
        UnknownStep: a name is unknown or off the mode's path, or --from comes
            after --until.
    """
    if step is not None:
        return (resolve_step(step),)
    named = {resolve_step(n).id for n in (start, until) if n is not None}
    optional = optional or any(
        p.optional and named & set(p.steps) for p in PHASES
    )  # naming a step of an optional phase asks for it
    steps = pipeline_steps(mode, optional=optional)
    ids = [s.id for s in steps]
    for name in (start, until):
        if name is not None and resolve_step(name).id not in ids:
            raise UnknownStep(f"step {name!r} is not on the path of mode {mode!r}")
    first = ids.index(resolve_step(start).id) if start else 0
    last = ids.index(resolve_step(until).id) if until else len(ids) - 1
    if first > last:
        raise UnknownStep(f"--from {start!r} comes after --until {until!r}")
    return steps[first : last + 1]
