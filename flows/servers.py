"""Flow of s09 MCP server implementation: tool modules written against the runtime,
gated in the sandbox and repaired test-first.

Input: s04's blueprints, s02's entity catalogue, s06's data tables and s07's
policies. Output: a `server_build` per server and an `mcp_server` per server that
passed; only passing servers are in the step's outputs (so only they go
downstream). Exports: `mcp_servers/<Server>.py` and `unit_tests/test_<Server>.py`
of passing servers, their `tool_lists/<Server>.json` re-exported from the live MCP
listing, and `mcp_global_record.json` (every server's build status, written once
at the end from all builds). A server without its tables or policy is a failed
item (`dependency_failed`) and gets no model call.
"""

from __future__ import annotations

from prefect import flow

from schemas.artifact import Artifact
from schemas.database import DataTable
from schemas.policy import PolicyDocument
from schemas.report import StepReport
from schemas.run import RunRef
from schemas.server import McpServer, ServerBuild
from tasks import inputs
from tasks import server_implementation as s09
from tasks.items import dependency_failed
from tasks.step_run import StepRun
from tasks.store.paths import (
    GLOBAL_RECORD_RELPATH,
    mcp_server_relpath,
    tool_list_relpath,
    unit_test_relpath,
)


@flow(name="s09-mcp-server-implementation", validate_parameters=False)
def implement_servers(run: RunRef) -> StepReport:
    """Build every server that has its data and policy; keep those that pass."""
    step = StepRun("s09", run)
    cfg = step.config.steps.s09_mcp_server_implementation
    coder = step.llm(cfg)
    triager = step.llm(s09.triage_model(cfg))
    blueprints = inputs.blueprints(step.store)
    catalogue = inputs.entity_catalogue(step.store)
    tables = step.store.load_outputs(
        "s06_database_generation", DataTable, kind="data_table"
    )
    policies = {
        p.payload.server_name: p
        for p in step.store.load_outputs(
            "s07_policy_generation", PolicyDocument, kind="policy"
        )
    }
    params = {
        "cfg": cfg,
        "seed": step.config.run.seed,
        "simulation_time": step.config.run.simulation_time,
    }
    works, missing = [], {}
    for blueprint in blueprints:
        name = blueprint.payload.server_name
        present, lacking = s09.server_tables(blueprint.payload, tables)
        policy = policies.get(name)
        if lacking or policy is None:
            missing[name] = _missing(lacking, policy is None)
            continue
        works.append(
            step.item(
                name,
                s09.implement_server,
                inputs={
                    "blueprint": blueprint,
                    "catalogue": catalogue,
                    "tables": present,
                    "policy": policy,
                },
                params=params,
                llm=coder,
                models={s09.TRIAGE: triager},
                prompts=s09.PROMPTS,
            )
        )
    outcomes = step.run_items(works)
    builds = tuple(a for o in outcomes for a in o.artifacts if a.kind == "server_build")
    servers: list[Artifact[McpServer]] = [
        a for o in outcomes for a in o.artifacts if a.kind == "mcp_server"
    ]
    step.fail(
        *(dependency_failed(s09.STEP, name, why) for name, why in missing.items())
    )
    built = {b.id for b in builds}
    # Items without a build report (the machinery failed) are recorded with why.
    unbuilt = {
        o.item_key: o.failure.message
        for o in outcomes
        if o.failure is not None and o.item_key not in built
    }
    [recorded] = step.run_items(
        [
            step.item(
                "global-record",
                s09.record_builds,
                inputs={"builds": builds},
                params={"missing": missing | unbuilt},
            )
        ]
    )
    exports = {tool_list_relpath(a.id): (a, list(a.payload.tools)) for a in servers}
    if recorded.artifacts:
        record = recorded.artifacts[0]
        exports[GLOBAL_RECORD_RELPATH] = (
            record,
            record.payload.model_dump(mode="json"),
        )
    for server in servers:
        exports[mcp_server_relpath(server.id)] = (server, server.payload.module_code)
        exports[unit_test_relpath(server.id)] = (server, server.payload.tests_code)
    passed = {a.id for a in servers}
    return step.finish(
        outputs=[
            *servers,
            *(b for b in builds if b.id in passed),
        ],
        exports=exports,
        note=_note(builds, servers, missing, unbuilt),
        inputs=len(blueprints),
        produced=len(servers),
    )


def _missing(tables: tuple[str, ...], no_policy: bool) -> str:
    parts = [f"s06 produced no data for {', '.join(tables)}"] if tables else []
    if no_policy:
        parts.append("s07 produced no policy")
    return "; ".join(parts) + ", so it gets no server"


def _note(
    builds: tuple[Artifact[ServerBuild], ...],
    servers: list[Artifact[McpServer]],
    missing: dict[str, str],
    unbuilt: dict[str, str],
) -> str:
    repaired = sum(
        1
        for b in builds
        if b.payload.status == "passed"
        and any(r.decision == "kept" for r in b.payload.repairs)
    )
    note = (
        f"{len(servers)} of {len(builds) + len(missing) + len(unbuilt)} server(s) "
        f"passed ({repaired} after repair), {len(builds) - len(servers)} failed, "
        f"{len(missing)} without inputs"
    )
    return note + (f", {len(unbuilt)} not built (see failures)" if unbuilt else "")
