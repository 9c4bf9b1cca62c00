"""Flow of s07 policy generation: one validated, audited policy per server.

Input: s04's blueprints, s02's entity catalogue and s06's table summaries. Output:
`policy` artifacts, exported as `policies/<Server>.md` (markdown with markers). A
server whose tables s06 did not produce is a failed item (`dependency_failed`) and
gets no model call.
"""

from __future__ import annotations

import time

from prefect import flow

from schemas.database import TableSummary
from schemas.report import StepReport
from tasks import inputs
from tasks import policy_generation as s07
from tasks.context import lookup
from tasks.fanout import StepTally, run_items
from tasks.items import work_item
from tasks.reporting import finish_step
from tasks.steps import resolve_step
from tasks.store.paths import policy_relpath


@flow(name="s07-policy-generation", validate_parameters=False)
def write_policies(run_token: str) -> StepReport:
    """Write, validate and audit the policy of every server that has its data."""
    ctx, info, started = lookup(run_token), resolve_step("s07"), time.perf_counter()
    cfg = ctx.config.steps.s07_policy_generation
    llm = ctx.step_llm(s07.STEP, cfg)
    tally = StepTally(info.name)
    blueprints = inputs.blueprints(ctx.store)
    catalogue = inputs.entity_catalogue(ctx.store)
    summaries = ctx.store.load_outputs(
        "s06_database_generation", TableSummary, kind="table_summary"
    )
    params = {
        "config": cfg.model_dump(mode="json"),
        "simulation_time": ctx.config.run.simulation_time,
    }
    calls = []
    for blueprint in blueprints:
        server = blueprint.payload.server_name
        present, missing = s07.server_summaries(blueprint.payload, summaries)
        if missing:
            tally.failures.append(s07.missing_data_failure(server, missing))
            continue
        work = work_item(
            s07.STEP,
            server,
            inputs=[blueprint, catalogue, *present],
            params=params,
            llm=llm,
            prompt_ids=[s07.WRITE_PROMPT, s07.AUDIT_PROMPT],
            module=s07.__name__,
        )
        calls.append(
            (
                work,
                {"blueprint": blueprint, "catalogue": catalogue, "summaries": present},
            )
        )
    outcomes = run_items(
        ctx,
        s07.write_policy,
        calls,
        tally,
        exports={w.item_key: policy_relpath(w.item_key) for w, _ in calls},
    )
    policies = [a for o in outcomes for a in o.artifacts]
    edited = sum(s07.AUDIT_APPLIED in a.payload.audit_notes for a in policies)
    return finish_step(
        ctx,
        info,
        tally,
        outputs=policies,
        exports={policy_relpath(p.id): (p, p.payload.markdown) for p in policies},
        seconds=time.perf_counter() - started,
        note=f"{len(policies)} policy(ies), {edited} edited by the auditor, "
        f"{tally.failed} failed",
        inputs=len(blueprints),
        produced=len(policies),
    )
