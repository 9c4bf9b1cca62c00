"""Flow of s07 policy generation: one validated, audited policy per server.

Input: s04's blueprints, s02's entity catalogue and s06's table summaries. Output:
`policy` artifacts, exported as `policies/<Server>.md` (markdown with markers). A
server whose tables s06 did not produce is a failed item (`dependency_failed`) and
gets no model call.
"""

from __future__ import annotations

from prefect import flow

from schemas.database import TableSummary
from schemas.report import StepReport
from schemas.run import RunRef
from tasks import inputs
from tasks import policy_generation as s07
from tasks.step_run import StepRun
from tasks.store.paths import policy_relpath


@flow(name="s07-policy-generation", validate_parameters=False)
def write_policies(run: RunRef) -> StepReport:
    """Write, validate and audit the policy of every server that has its data."""
    step = StepRun("s07", run)
    cfg = step.config.steps.s07_policy_generation
    llm = step.llm(cfg)
    blueprints = inputs.blueprints(step.store)
    catalogue = inputs.entity_catalogue(step.store)
    summaries = step.store.load_outputs(
        "s06_database_generation", TableSummary, kind="table_summary"
    )
    works = []
    for blueprint in blueprints:
        server = blueprint.payload.server_name
        present, missing = s07.server_summaries(blueprint.payload, summaries)
        if missing:
            step.fail(s07.missing_data_failure(server, missing))
            continue
        works.append(
            step.item(
                server,
                s07.write_policy,
                inputs={
                    "blueprint": blueprint,
                    "catalogue": catalogue,
                    "summaries": present,
                },
                params={
                    "cfg": cfg,
                    "simulation_time": step.config.run.simulation_time,
                },
                llm=llm,
                prompts=[s07.WRITE_PROMPT, s07.AUDIT_PROMPT],
            )
        )
    outcomes = step.run_items(
        works, exports={w.item_key: policy_relpath(w.item_key) for w in works}
    )
    policies = [a for o in outcomes for a in o.artifacts]
    edited = sum(s07.AUDIT_APPLIED in a.payload.audit_notes for a in policies)
    return step.finish(
        outputs=policies,
        exports={policy_relpath(p.id): (p, p.payload.markdown) for p in policies},
        note=f"{len(policies)} policy(ies), {edited} edited by the auditor, "
        f"{step.tally.failed} failed",
        inputs=len(blueprints),
        produced=len(policies),
    )
