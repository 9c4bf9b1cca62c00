"""Flow of s13 policy merge: one merged policy per server combination.

Input: s10's server combinations and s07's policies. Output: `merged_policy`
artifacts, exported as `policies/<Fused>.md` (markdown with the s07 markers). A
combination some of whose members have no policy is a failed item
(`dependency_failed`) and gets no model call.
"""

from __future__ import annotations

from prefect import flow

from schemas.fusion import ServerCombination
from schemas.policy import PolicyDocument
from schemas.report import StepReport
from schemas.run import RunRef
from tasks import policy_merge as s13
from tasks.step_run import StepRun
from tasks.store.paths import policy_relpath


@flow(name="s13-policy-merge", validate_parameters=False)
def merge_policies(run: RunRef) -> StepReport:
    """Merge the members' policies of every chosen combination."""
    step = StepRun("s13", run)
    cfg = step.config.steps.s13_policy_merge
    llm = step.llm(cfg)
    combos = step.store.load_outputs(
        "s10_combination_selection", ServerCombination, kind="server_combination"
    )
    policies = {
        p.payload.server_name: p
        for p in step.store.load_outputs(
            "s07_policy_generation", PolicyDocument, kind="policy"
        )
    }
    works = []
    for combo in combos:
        members = combo.payload.servers
        missing = [server for server in members if server not in policies]
        if missing:
            step.fail(s13.missing_policies_failure(combo.payload.name, missing))
            continue
        works.append(
            step.item(
                combo.payload.name,
                s13.merge_policies,
                inputs={
                    "combination": combo,
                    "policies": [policies[server] for server in members],
                },
                params={
                    "cfg": cfg,
                    "simulation_time": step.config.run.simulation_time,
                },
                llm=llm,
                prompts=[s13.MERGE_PROMPT],
            )
        )
    outcomes = step.run_items(
        works, exports={w.item_key: policy_relpath(w.item_key) for w in works}
    )
    merged = [a for o in outcomes for a in o.artifacts]
    return step.finish(
        outputs=merged,
        exports={policy_relpath(m.id): (m, m.payload.markdown) for m in merged},
        note=f"{len(merged)} merged policy(ies), {step.tally.failed} failed",
        inputs=len(combos),
        produced=len(merged),
    )
