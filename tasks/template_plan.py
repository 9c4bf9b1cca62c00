"""s14 planning: the sources of trajectories and the work items of the step.

Input: the run's store (s02 catalogue, s04 blueprints, s06 summaries, s07
policies, s08 tool graphs, s09 servers) and the step's configuration. Output:
one `SourceInputs` per single-domain source whose server passed s09 (with the
`dependency_failed` items of servers that did not), the template items of the
chosen trajectories, and one collecting item per source that gathers its kept
templates and counts into the exported template file. The cross-domain source
(s11's fused trajectories, `tasks.cross_template_plan`) returns `SourceInputs`
with its own writer and collector; the items are planned the same way. No side
effects beyond reading the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas.agent_task import TemplateStats
from schemas.artifact import FailedItem, ItemOutcome, WorkItem
from schemas.config import TemplateConfig
from schemas.database import TableSummary
from schemas.policy import PolicyDocument
from schemas.server import McpServer
from schemas.tool_graph import ToolGraph
from tasks import inputs
from tasks import task_templates as s14
from tasks.core.server_tables import select_owned
from tasks.items import InputValue
from tasks.step_run import StepRun
from tasks.store.artifacts import ArtifactStore
from tasks.task_args import TaskFunction


@dataclass(frozen=True)
class SourceInputs:
    """A source of trajectories with the artifacts its items read.

    Attributes:
        source: The source's name, members and trajectories.
        origin: The inputs of the collecting item besides the kept templates
            (the artifact the trajectories came from).
        artifacts: The inputs every template item of the source reads.
        per_trajectory: Inputs only the item of one trajectory reads.
        writer: The task writing and judging one template.
        collector: The task gathering the source's template file.
    """

    source: s14.TemplateSource
    origin: dict[str, InputValue]
    artifacts: dict[str, InputValue] = field(default_factory=dict)
    per_trajectory: dict[tuple[str, ...], dict[str, InputValue]] = field(
        default_factory=dict
    )
    writer: TaskFunction = s14.write_task_template
    collector: TaskFunction = s14.collect_task_templates


def single_domain_sources(
    store: ArtifactStore,
) -> tuple[list[SourceInputs], list[FailedItem]]:
    """One source per server with a passing s09 build and an s08 tool graph, in
    blueprint order; every other server as a `dependency_failed` item."""
    catalogue = inputs.entity_catalogue(store)
    summaries = store.load_outputs(
        "s06_database_generation", TableSummary, kind="table_summary"
    )
    policies = {
        p.payload.server_name: p
        for p in store.load_outputs(
            "s07_policy_generation", PolicyDocument, kind="policy"
        )
    }
    graphs = {
        g.payload.server_name: g
        for g in store.load_outputs(
            "s08_tool_graph_generation", ToolGraph, kind="tool_graph"
        )
    }
    servers = {
        s.id: s
        for s in store.load_outputs(
            "s09_mcp_server_implementation", McpServer, kind="mcp_server"
        )
    }
    found, missing = [], []
    for blueprint in inputs.blueprints(store):
        name = blueprint.payload.server_name
        graph = graphs.get(name)
        if name not in servers or graph is None:
            missing.append(
                s14.missing_inputs_failure(
                    name, built=name in servers, graph=graph is not None
                )
            )
            continue
        present, _ = select_owned(blueprint.payload, summaries)
        source = s14.TemplateSource(name=name, trajectories=graph.payload.trajectories)
        found.append(
            SourceInputs(
                source,
                {"graph": graph},
                {
                    "graph": graph,
                    "blueprint": blueprint,
                    "catalogue": catalogue,
                    "summaries": present,
                    "policy": policies[name],  # s09 builds only servers with one
                    "server": servers[name],
                },
            )
        )
    return found, missing


def template_items(
    step: StepRun, cfg: TemplateConfig, sources: Sequence[SourceInputs]
) -> list[WorkItem]:
    """One item per chosen trajectory of each source (writer, then judge)."""
    writer = step.llm(cfg)
    judges = {s14.JUDGE: step.llm(s14.judge_model(cfg))} if cfg.enable_judge else {}
    return [
        step.item(
            s14.item_key(src.source, trajectory),
            src.writer,
            inputs={**src.artifacts, **src.per_trajectory.get(trajectory, {})},
            params={
                "cfg": cfg,
                "source": src.source.name,
                "domains": list(src.source.domains),
                "trajectory": list(trajectory),
            },
            llm=writer,
            models=judges,
            prompts=s14.PROMPTS,
        )
        for src in sources
        for trajectory in s14.chosen(src.source, cfg)
    ]


def collect_items(
    step: StepRun,
    sources: Sequence[SourceInputs],
    works: Sequence[WorkItem],
    outcomes: Sequence[ItemOutcome],
) -> list[WorkItem]:
    """One item per source gathering its kept templates and its counts."""
    by_key = {w.item_key: o for w, o in zip(works, outcomes, strict=True)}
    items = []
    for src in sources:
        prefix = f"{src.source.name}/"
        mine = [o for key, o in by_key.items() if key.startswith(prefix)]
        kept = [a for o in mine for a in o.artifacts]
        failures = [o.failure for o in mine if o.failure is not None]
        rejected = sum(f.reason == "rejected_by_judge" for f in failures)
        stats = TemplateStats(
            total_trajectories=len(src.source.trajectories),
            planned=len(mine),
            generated_templates=len(kept),
            rejected_by_judge=rejected,
            failed=len(failures) - rejected,
        )
        items.append(
            step.item(
                src.source.name,
                src.collector,
                inputs={**src.origin, "templates": kept},
                params={
                    "source": src.source.name,
                    "domains": list(src.source.domains),
                    "stats": stats,
                },
            )
        )
    return items
