"""s11 trajectory-fusion rules: what the model is offered, what a draft may say,
which drafted tasks survive the feasibility filter, and the export.

Input: s16's validated agent tasks (single scope), the members' tool names, the
model's `FusionDraft`. Output: per server the validated trajectories by hash
(`validated_trajectories`), the problems of a draft as sentences the model is
re-asked with (`fusion_problems`), the kept `FusedTrajectory`s and the
`PrunedTask`s with their reasons (`fuse`), and the reference's
`cross_domain_combinations/<Fused>.json` document (`fused_trajectories_export`).

Decisions: the feasibility filter is deterministic and never re-asked: a segment
whose hash (of its bare tool names, `trajectory_hash`) is not among its server's
validated hashes prunes the whole task before any further cost. A task whose
segments repeat an earlier kept task's is pruned as a duplicate. The fused
trajectory is the segments' tools in the user's order, named as the agent sees
them in the fused environment (`schemas.fusion.agent_tool_names` over every
member tool, members in name order). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from schemas.agent_task import TaskTemplateSet
from schemas.fused_trajectory import (
    FusedSegment,
    FusedTrajectory,
    FusedTrajectorySet,
    FusionDraft,
    PrunedTask,
)
from schemas.fusion import ServerCombination, agent_tool_names, dotted_tool_name
from schemas.validated_task import AgentTask
from tasks.core.task_templates import task_templates_export, trajectory_hash

Trajectory = tuple[str, ...]


def validated_trajectories(
    tasks: Iterable[AgentTask],
) -> dict[str, dict[str, Trajectory]]:
    """Server -> trajectory hash -> bare tool names of every single-domain
    trajectory s16 validated, hashes of a server ordered by (length, tools)."""
    found: dict[str, dict[str, Trajectory]] = {}
    for task in tasks:
        if task.scope != "single":
            continue
        found.setdefault(task.environment, {})[task.trajectory_hash] = tuple(
            task.trajectory
        )
    return {
        server: dict(sorted(paths.items(), key=lambda kv: (len(kv[1]), kv[1])))
        for server, paths in sorted(found.items())
    }


def fusion_problems(
    draft: FusionDraft, member_tools: Mapping[str, Sequence[str]], cap: int
) -> list[str]:
    """What is wrong with a draft, as sentences for the model.

    Each task needs exactly one segment per member service (member names only)
    and every tool must be one of that member's tools; at most `cap` tasks.
    """
    members = list(member_tools)
    problems: list[str] = []
    if len(draft.tasks) > cap:
        problems.append(f"give at most {cap} tasks, not {len(draft.tasks)}")
    for n, task in enumerate(draft.tasks, start=1):
        named = [segment.server for segment in task.segments]
        stray = sorted(set(named) - set(members))
        if stray:
            problems.append(
                f"task {n}: {', '.join(stray)} is not a member service; the "
                f"members are {', '.join(members)}"
            )
        missing = [m for m in members if m not in named]
        twice = sorted({m for m in named if named.count(m) > 1})
        if missing or twice:
            problems.append(
                f"task {n}: give exactly one segment per member service "
                f"({', '.join(members)})"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; repeated {', '.join(twice)}" if twice else "")
            )
        for segment in task.segments:
            known = member_tools.get(segment.server)
            if known is None:
                continue
            unknown = [t for t in segment.tools if t not in known]
            if unknown:
                problems.append(
                    f"task {n}: {segment.server} has no tool "
                    f"{', '.join(unknown)}; its tools: {', '.join(known)}"
                )
    return problems


def agent_names(
    member_tools: Mapping[str, Sequence[str]],
) -> dict[tuple[str, str], str]:
    """(server, tool) -> agent-facing name in the fused environment, as
    `tasks.runtime.fusion.fuse_specs` names them (members in name order)."""
    named = agent_tool_names(
        [
            (server, tool)
            for server in sorted(member_tools)
            for tool in member_tools[server]
        ]
    )
    return {route: name for name, route in named.items()}


def fuse(
    draft: FusionDraft,
    combination: ServerCombination,
    member_tools: Mapping[str, Sequence[str]],
    validated: Mapping[str, Iterable[str]],
) -> tuple[list[FusedTrajectory], list[PrunedTask]]:
    """The feasibility filter over a checked draft.

    Args:
        draft: The model's tasks (already free of `fusion_problems`).
        combination: The server combination.
        member_tools: Member -> its tool names (in its tool-list order).
        validated: Member -> its validated single-domain trajectory hashes.

    Returns:
        The kept fused trajectories (in the draft's order) and the pruned tasks,
        each with the reason it was pruned.
    """
    names = agent_names(member_tools)
    hashes = {server: set(found) for server, found in validated.items()}
    kept: list[FusedTrajectory] = []
    pruned: list[PrunedTask] = []
    seen: set[tuple[FusedSegment, ...]] = set()
    for task in draft.tasks:
        segments = tuple(
            FusedSegment(
                server=s.server,
                tools=tuple(s.tools),
                trajectory_hash=trajectory_hash(s.tools),
            )
            for s in task.segments
        )
        motivation = task.motivation.strip()
        unvalidated = [
            s for s in segments if s.trajectory_hash not in hashes.get(s.server, set())
        ]
        reason = None
        if unvalidated:
            reason = "; ".join(
                f"{s.server} segment {' -> '.join(s.tools)} ({s.trajectory_hash}) "
                "has no validated single-domain task"
                for s in unvalidated
            )
        elif segments in seen:
            reason = "repeats the segments of an earlier task"
        if reason is not None:
            pruned.append(
                PrunedTask(segments=segments, motivation=motivation, reason=reason)
            )
            continue
        seen.add(segments)
        trajectory = tuple(
            names[(s.server, tool)] for s in segments for tool in s.tools
        )
        kept.append(
            FusedTrajectory(
                combination=combination.name,
                servers=combination.servers,
                segments=segments,
                motivation=motivation,
                trajectory=trajectory,
                trajectory_hash=trajectory_hash(trajectory),
            )
        )
    return kept, pruned


def dotted_trajectory(fused: FusedTrajectory) -> tuple[str, ...]:
    """The fused trajectory in the reference's `Server.tool` form."""
    return tuple(dotted_tool_name(s.server, t) for s in fused.segments for t in s.tools)


def _segments(segments: Sequence[FusedSegment]) -> list[dict[str, list[str]]]:
    return [{s.server: list(s.tools)} for s in segments]


def fused_trajectories_export(fused_set: FusedTrajectorySet) -> dict[str, object]:
    """One combination's fused tasks in the reference shape, plus what was pruned.

    Returns:
        `{"combination": {...}, "trajectories": [{"trajectories": [{"Server":
        [tools]}, ...], "motivation": ...}], "pruned": [...]}`; kept tasks also
        carry their agent-facing `trajectory` and `trajectory_hash`.
    """
    combo = fused_set.combination
    return {
        "combination": {
            "servers": list(combo.servers),
            "fused_name": combo.name,
            "core_entity": combo.core_entity,
            "shared_entities": list(combo.shared_entities),
        },
        "trajectories": [
            {
                "trajectories": _segments(t.segments),
                "motivation": t.motivation,
                "trajectory": list(t.trajectory),
                "trajectory_hash": t.trajectory_hash,
            }
            for t in fused_set.trajectories
        ],
        "pruned": [
            {
                "trajectories": _segments(p.segments),
                "motivation": p.motivation,
                "reason": p.reason,
            }
            for p in fused_set.pruned
        ],
    }


def cross_domain_templates_export(
    template_set: TaskTemplateSet, fused_set: FusedTrajectorySet
) -> dict[str, object]:
    """A combination's templates in the reference `task_templates/<Fused>.json`
    shape: as `task_templates_export`, with every trajectory step in the
    `Server.tool` form, plus the top-level `combination` and
    `stats.combination`."""
    compat = {
        name: dotted
        for fused in fused_set.trajectories
        for name, dotted in zip(fused.trajectory, dotted_trajectory(fused), strict=True)
    }
    document = task_templates_export(template_set)
    for template in document["templates"]:  # type: ignore[union-attr]
        template["trajectory"] = [compat[step] for step in template["trajectory"]]
    combination = fused_trajectories_export(fused_set)["combination"]
    document["stats"] = {**document["stats"], "combination": fused_set.combination.name}  # type: ignore[dict-item]
    return {"combination": combination, **document}
