"""s09 MCP server implementation: the Prefect steps.

Inputs: s04's blueprint, s02's entity catalogue, s06's data tables of the server
and s07's policy. Outputs: per server a `server_build` artifact (every server,
passed or failed) and, for a server that passed every gate and whose live tool
listing agrees with its blueprint, an `mcp_server` artifact; a failed build is
also a non-retryable failed item, so the step goes on without it. Finally one
`server_build_record` (exported as `mcp_global_record.json`). The build itself
(model calls, sandboxed gates, repairs) lives in `tasks.server_repair`.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import ServerConfig, StepModel
from schemas.database import DataTable
from schemas.entity import EntityCatalogue
from schemas.policy import PolicyDocument
from schemas.server import BuildRecord, BuildStatus, McpServer, ServerBuild
from tasks.core.conformance import build_suite
from tasks.core.server_builds import build_status, listing_export
from tasks.core.server_tables import select_owned
from tasks.items import producer
from tasks.resources import ItemEnv
from tasks.runtime.spec import environment_spec
from tasks.server_drafts import PROMPTS, ServerInputs
from tasks.server_harness import project_root
from tasks.server_repair import BuildLimits, build_server

STEP = "s09"
__all__ = [
    "PROMPTS",
    "STEP",
    "implement_server",
    "record_builds",
    "server_inputs",
    "server_tables",
    "triage_model",
]


def server_tables(
    blueprint: ServerBlueprint, tables: Sequence[Artifact[DataTable]]
) -> tuple[tuple[Artifact[DataTable], ...], tuple[str, ...]]:
    """The s06 tables a server reads, and the names of those s06 did not make."""
    return select_owned(blueprint, tables)


def server_inputs(
    blueprint: ServerBlueprint,
    catalogue: EntityCatalogue,
    tables: Sequence[DataTable],
    policy: PolicyDocument,
    *,
    cfg: ServerConfig,
    seed: int,
    simulation_time: str,
) -> ServerInputs:
    """The spec (confirmation tools from the policy), rows and suite of a server."""
    spec = environment_spec(
        blueprint,
        catalogue,
        simulation_time=simulation_time,
        seed=seed,
        confirm_tools=frozenset(policy.confirm_tools),
    )
    suite = build_suite(
        spec, policy=policy.parsed, samples=cfg.conformance_samples, seed=seed
    )
    rows = {table.table: list(table.rows) for table in tables}
    return ServerInputs(blueprint, spec, policy, rows, suite)


TRIAGE = "triage"  # the name of the triage call's model access in a work item


def triage_model(cfg: ServerConfig) -> StepModel:
    """The triage call's model choice: its own role, the step's model override."""
    return StepModel(role=cfg.triage_role, model=cfg.model)


def build_limits(cfg: ServerConfig) -> BuildLimits:
    """The budgets of one build, from the step configuration."""
    return BuildLimits(
        max_fix_attempts=cfg.max_fix_attempts,
        code_attempts=1 + cfg.max_syntax_retries,
        timeout_s=cfg.test_timeout_s,
        python_path=project_root(),
    )


def implement_server(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: ServerConfig,
    seed: int,
    simulation_time: str,
    blueprint: Artifact[ServerBlueprint],
    catalogue: Artifact[EntityCatalogue],
    tables: tuple[Artifact[DataTable], ...],
    policy: Artifact[PolicyDocument],
) -> ItemOutcome:
    """Write, gate and repair one server; its build report either way."""
    inputs = server_inputs(
        blueprint.payload,
        catalogue.payload,
        [t.payload for t in tables],
        policy.payload,
        cfg=cfg,
        seed=seed,
        simulation_time=simulation_time,
    )
    build = build_server(env.llm, env.model(TRIAGE), inputs, build_limits(cfg))
    made = producer(work, seed=seed)
    parents = [blueprint.ref, catalogue.ref, policy.ref, *(t.ref for t in tables)]
    report = Artifact[ServerBuild].build(
        kind="server_build",
        id=work.item_key,
        payload=build,
        parents=parents,
        producer=made,
    )
    if build.status == "failed":
        return ItemOutcome(
            item_key=work.item_key, artifacts=(report,), failure=_failure(work, build)
        )
    server = Artifact[McpServer].build(
        kind="mcp_server",
        id=work.item_key,
        payload=_server(build),
        parents=[report.ref],
        producer=made,
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(report, server))


def _server(build: ServerBuild) -> McpServer:
    return McpServer(
        server_name=build.server_name,
        module_code=build.module_code,
        tests_code=build.tests_code,
        confirm_tools=build.confirm_tools,
        auth_required=build.auth_required,
        tools=tuple(listing_export(build.listed_tools)),
    )


def _failure(work: WorkItem, build: ServerBuild) -> FailedItem:
    reason = "invalid_output" if build.attempts == 0 else "validation_failed"
    first = (build.last_error or "no error recorded").splitlines()[0]
    return FailedItem(
        step=STEP,
        item_key=work.item_key,
        reason=reason,
        message=f"{build.server_name} did not pass after {build.attempts} run(s): "
        f"{first}",
        details=tuple(r.note for r in build.repairs),
    )


def record_builds(
    work: WorkItem,
    env: ItemEnv,
    *,
    builds: tuple[Artifact[ServerBuild], ...],
    missing: dict[str, str],
) -> ItemOutcome:
    """The global record: every server's build status, and servers never built."""
    statuses = {b.payload.server_name: build_status(b.payload) for b in builds}
    statuses |= {
        name: BuildStatus(status="FAILED", attempts=0, last_error=reason)
        for name, reason in missing.items()
    }
    record = Artifact[BuildRecord].build(
        kind="server_build_record",
        id="mcp_global_record",
        payload=BuildRecord(builds=dict(sorted(statuses.items()))),
        parents=[b.ref for b in builds],
        producer=producer(work),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(record,))
