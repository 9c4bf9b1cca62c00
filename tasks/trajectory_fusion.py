"""s11 trajectory fusion: cross-domain tasks for one server combination.

Input: an s10 `server_combination`, its members' s04 `blueprint`s (their tool
lists) and the s16 `agent_task`s that validated each member's single-domain
trajectories. Output: one `fused_trajectory` artifact per kept task (id
`<Fused>/<n>`) and one `fused_trajectory_set` (exported as
`cross_domain_combinations/<Fused>.json`, with the pruned tasks and their
reasons). The model is offered, per member, the tool sequences s16 validated and
drafts tasks of one segment per member; a draft naming a non-member, missing or
repeating a member, or naming a tool the member lacks is re-asked with the
problems. The feasibility filter then prunes, without asking again, every task
with a segment that has no validated single-domain counterpart
(`tasks.core.trajectory_fusion`). A member without a validated trajectory is a
`dependency_failed` item found when planning. Side effects: model calls only.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.artifact import Artifact, FailedItem, ItemOutcome, WorkItem
from schemas.blueprint import ServerBlueprint
from schemas.config import TrajectoryFusionConfig
from schemas.fused_trajectory import FusedTrajectory, FusedTrajectorySet, FusionDraft
from schemas.fusion import ServerCombination
from schemas.validated_task import AgentTask
from tasks.core import trajectory_fusion as rules
from tasks.items import dependency_failed, invalid_output, producer
from tasks.llm.errors import InvalidModelOutput
from tasks.resources import ItemEnv

STEP = "s11"
FUSE_PROMPT = "s11/fuse_trajectories"


def unvalidated_members_failure(fused: str, lacking: Sequence[str]) -> FailedItem:
    """The failure of a combination some of whose members have no validated
    single-domain trajectory (no model call)."""
    return dependency_failed(
        STEP,
        fused,
        f"s16 validated no single-domain trajectory of {', '.join(lacking)}, so "
        f"{fused} gets no fused trajectories",
    )


def fuse_trajectories(
    work: WorkItem,
    env: ItemEnv,
    *,
    cfg: TrajectoryFusionConfig,
    combination: Artifact[ServerCombination],
    blueprints: tuple[Artifact[ServerBlueprint], ...],
    tasks: tuple[Artifact[AgentTask], ...],
) -> ItemOutcome:
    """The fused trajectories of one combination, or why there are none."""
    combo = combination.payload
    member_tools = {
        b.payload.server_name: [f.name for f in b.payload.functions]
        for b in sorted(blueprints, key=lambda b: b.payload.server_name)
    }
    validated = rules.validated_trajectories(t.payload for t in tasks)
    try:
        answer = env.llm.ask(
            FUSE_PROMPT,
            FusionDraft,
            item_key=f"fuse/{work.item_key}",
            check=lambda draft: rules.fusion_problems(
                draft, member_tools, cfg.trajectories_per_combo
            ),
            servers=list(combo.servers),
            core_entity=combo.core_entity,
            shared_entities=list(combo.shared_entities),
            cap=cfg.trajectories_per_combo,
            tools=member_tools,
            offers={s: list(validated.get(s, {}).values()) for s in combo.servers},
        )
    except InvalidModelOutput as exc:
        return invalid_output(work, exc)
    kept, pruned = rules.fuse(answer.value, combo, member_tools, validated)
    made_by = producer(work, prompt=answer.prompt, model_id=answer.model_id)
    parents = [combination.ref, *(b.ref for b in blueprints)]
    fused = [
        Artifact[FusedTrajectory].build(
            kind="fused_trajectory",
            id=f"{combo.name}/{n}",
            payload=trajectory,
            parents=[
                *parents,
                *(
                    t.ref
                    for t in tasks
                    if (t.payload.environment, t.payload.trajectory_hash)
                    in {(s.server, s.trajectory_hash) for s in trajectory.segments}
                ),
            ],
            producer=made_by,
        )
        for n, trajectory in enumerate(kept, start=1)
    ]
    summary = Artifact[FusedTrajectorySet].build(
        kind="fused_trajectory_set",
        id=combo.name,
        payload=FusedTrajectorySet(
            combination=combo, trajectories=tuple(kept), pruned=tuple(pruned)
        ),
        parents=[*parents, *(f.ref for f in fused)],
        producer=made_by,
    )
    return ItemOutcome(item_key=work.item_key, artifacts=(*fused, summary))
