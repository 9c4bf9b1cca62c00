"""s13 policy merge: one policy per server combination, with bridge rules.

Input: an s10 `server_combination` and its members' s07 `policy` artifacts.
Output: one `merged_policy` artifact (`MergedPolicy`, exported as
`policies/<Fused>.md`): the model merges the members' global rules and writes the
bridge rules between the services; every member tool keeps its own section under
its qualified name (`tasks.core.policy_merge`). A draft with problems (a marker,
a bare tool name, a bridge rule that connects fewer than two members) is re-asked
with the problems; one that never validates, or whose assembled policy does not
parse cleanly, is a failed item. A member without a policy is a
`dependency_failed` item found when planning. Side effects: model calls only.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.config import PolicyMergeConfig
from schemas.fusion import (
    BridgeRule,
    MergedPolicy,
    MergedPolicyDraft,
    ServerCombination,
)
from schemas.policy import PolicyDocument
from tasks.core.policy_merge import (
    assemble,
    merge_problems,
    qualified_global_rules,
    qualified_tools,
)
from tasks.items import dependency_failed, invalid_output, producer
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

STEP = "s13"
MERGE_PROMPT = "s13/merge_policy"


def missing_policies_failure(fused: str, missing: Sequence[str]) -> FailedItem:
    """The failure of a combination some of whose members have no policy."""
    return dependency_failed(
        STEP,
        fused,
        f"s07 produced no policy for {', '.join(missing)}, so {fused} gets no "
        "merged policy",
    )


def merge_policies(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: PolicyMergeConfig,
    simulation_time: str,
    combination: Artifact[ServerCombination],
    policies: tuple[Artifact[PolicyDocument], ...],
) -> ItemOutcome:
    """The merged policy of one combination."""
    combo = combination.payload
    members = {p.payload.server_name: p.payload.parsed for p in policies}
    try:
        answer = env.llm.ask(
            MERGE_PROMPT,
            MergedPolicyDraft,
            item_key=f"merge/{work.item_key}",
            check=lambda draft: merge_problems(draft, members),
            servers=list(combo.servers),
            core_entity=combo.core_entity,
            simulation_time=simulation_time,
            global_rules=qualified_global_rules(members),
            tool_names=qualified_tools(members),
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    markdown, parsed = assemble(answer.value, members)
    if parsed.problems:
        return ItemOutcome(
            item_key=work.item_key,
            failure=FailedItem(
                step=STEP,
                item_key=work.item_key,
                reason="validation_failed",
                message="the merged policy's markers do not hold: "
                + "; ".join(parsed.problems),
            ),
        )
    names = qualified_tools(members)
    agent_name = {route: name for name, route in names.items()}
    merged = MergedPolicy(
        fused_name=combo.name,
        servers=combo.servers,
        markdown=markdown,
        parsed=parsed,
        bridge_rules=tuple(
            BridgeRule(rule=b.rule.strip(), servers=tuple(sorted(set(b.servers))))
            for b in answer.value.bridge_rules
        ),
        confirm_tools=tuple(
            agent_name[(p.payload.server_name, tool)]
            for p in policies
            for tool in p.payload.confirm_tools
        ),
        tool_names=names,
    )
    artifact = Artifact[MergedPolicy].build(
        kind="merged_policy",
        id=combo.name,
        payload=merged,
        parents=[combination.ref, *(p.ref for p in policies)],
        producer=producer(work, prompt=answer.prompt, model_id=answer.model_id),
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(artifact,))
