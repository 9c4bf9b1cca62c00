"""s14 task-template rules: which trajectories get a template, what a template
may say, how its scores are computed and how a source's templates are exported.

Input: trajectories (bare tool names of one server, or `Server.tool` steps of a
fused source), the server's schema tables and parsed policies, model drafts.
Output: the chosen trajectories (`choose_trajectories`), the reference's
trajectory hash, the policy text a trajectory needs (`trajectory_policy`), the
problems of a template draft as sentences the writer is re-asked with
(`template_problems`), our scores of a rubric draft (`rubric_scores`) and the
`task_templates/<Server>.json` document (`task_templates_export`). Pure: no I/O.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from itertools import zip_longest

from schemas.agent_task import (
    RUBRIC,
    TaskTemplateDraft,
    TaskTemplateSet,
    TemplateRubricDraft,
    TemplateScores,
)
from schemas.policy import ParsedPolicy, SchemaTable
from tasks.core.policy import filter_policy

Trajectory = tuple[str, ...]

_PLACEHOLDER = re.compile(r"<(?P<table>[A-Za-z]\w*)\.(?P<column>[A-Za-z]\w*)>")
_ANGLE = re.compile(r"<[^<>\n]{1,80}>")
_IF_THEN = re.compile(r"\bif\b[^.?!;]*\bthen\b", re.IGNORECASE)


def trajectory_hash(trajectory: Sequence[str]) -> str:
    """The reference's trajectory hash: 12 hex digits of the MD5 of the steps
    joined by `_` (file names of later steps use it)."""
    joined = "_".join(trajectory).encode("utf-8")
    return hashlib.md5(joined, usedforsecurity=False).hexdigest()[:12]


def choose_trajectories(
    trajectories: Sequence[Sequence[str]],
    *,
    min_length: int,
    max_length: int,
    cap: int | None,
) -> tuple[Trajectory, ...]:
    """The trajectories that get a template, deterministically.

    Trajectories outside `min_length..max_length` are dropped, as are repeats.
    Under a cap, the choice takes turns across lengths, longest first (each
    length in its given order), so a small cap still covers short and long
    tasks; the chosen ones keep their given order.

    Args:
        trajectories: Candidate trajectories in the tool graph's order.
        min_length: Fewest steps a templated trajectory has.
        max_length: Most steps a templated trajectory has.
        cap: At most this many are chosen (None: all).

    Returns:
        The chosen trajectories in their given order.
    """
    kept: list[Trajectory] = []
    for path in trajectories:
        if min_length <= len(path) <= max_length and tuple(path) not in kept:
            kept.append(tuple(path))
    if cap is None or len(kept) <= cap:
        return tuple(kept)
    by_length: dict[int, list[Trajectory]] = {}
    for path in kept:
        by_length.setdefault(len(path), []).append(path)
    groups = [by_length[n] for n in sorted(by_length, reverse=True)]
    turns = [p for row in zip_longest(*groups) for p in row if p is not None]
    chosen = set(turns[:cap])
    return tuple(path for path in kept if path in chosen)


def split_step(step: str, server: str) -> tuple[str, str]:
    """(server, tool) of a trajectory step: `Server.tool`, or a bare tool name of
    `server` (a single-domain trajectory)."""
    owner, dot, tool = step.partition(".")
    return (owner, tool) if dot else (server, step)


def trajectory_policy(
    policies: Mapping[str, ParsedPolicy], trajectory: Sequence[str], server: str
) -> str:
    """The policy text a trajectory needs: each involved server's global rules
    and the sections of its tools the trajectory calls (in call order).

    Args:
        policies: Parsed policies by server name.
        trajectory: The steps (bare names of `server`, or `Server.tool`).
        server: The server of bare step names.

    Returns:
        One filtered policy; for several servers, each under `## <Server>`.
    """
    tools: dict[str, list[str]] = {}
    for step in trajectory:
        owner, tool = split_step(step, server)
        tools.setdefault(owner, []).append(tool)
    if len(tools) == 1:
        [(owner, names)] = tools.items()
        return filter_policy(policies[owner], names)
    return "\n\n".join(
        f"## {owner}\n\n{filter_policy(policies[owner], names)}"
        for owner, names in tools.items()
    )


def placeholders(text: str) -> tuple[str, ...]:
    """The `Entity.attribute` placeholders of a text, each once, in order."""
    found = (f"{m['table']}.{m['column']}" for m in _PLACEHOLDER.finditer(text))
    return tuple(dict.fromkeys(found))


def template_problems(
    draft: TaskTemplateDraft, tables: Sequence[SchemaTable]
) -> list[str]:
    """What is wrong with a template draft, as sentences for the writer.

    Every `<...>` must be an `<Entity.attribute>` placeholder naming a table of
    the server and one of its columns; the instruction needs at least one; and
    neither field may hold an "if ... then ..." condition.

    Args:
        draft: The writer's answer.
        tables: The schema tables of the involved server(s).

    Returns:
        Problem sentences; empty when the draft is acceptable.
    """
    columns = {t.name: tuple(t.columns) for t in tables}
    problems: list[str] = []
    for field in ("instruction", "reason_for_call"):
        text = getattr(draft, field)
        for token in _ANGLE.findall(text):
            match = _PLACEHOLDER.fullmatch(token)
            if match is None:
                problems.append(
                    f"{field}: {token} is not a placeholder; write "
                    "<Entity.attribute> with a table and column listed in the schema"
                )
            else:
                problems.extend(_unknown(match["table"], match["column"], columns))
        if _IF_THEN.search(text):
            problems.append(
                f'{field}: remove the "if ... then ..." condition; state one '
                "course of action the user wants"
            )
    if not _PLACEHOLDER.search(draft.instruction):
        problems.append(
            "instruction: leave every value the user knows (at least the id the "
            "user is identified by) as an <Entity.attribute> placeholder"
        )
    return problems


def _unknown(
    table: str, column: str, columns: Mapping[str, Sequence[str]]
) -> list[str]:
    if table not in columns:
        near = difflib.get_close_matches(table, list(columns), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        known = ", ".join(columns)
        return [f"<{table}.{column}>: {table} is not a table{hint}; tables: {known}"]
    if column not in columns[table]:
        near = difflib.get_close_matches(column, list(columns[table]), n=1)
        hint = f" (did you mean {table}.{near[0]}?)" if near else ""
        known = ", ".join(columns[table])
        return [
            f"<{table}.{column}>: {table} has no column {column}{hint}; "
            f"its columns: {known}"
        ]
    return []


def rubric_scores(draft: TemplateRubricDraft) -> TemplateScores:
    """The judge's five scores with their mean (two decimals) as the overall
    score; a self-reported overall score is never read."""
    values = {name: getattr(draft, name) for name in RUBRIC}
    overall = round(sum(values.values()) / len(values), 2)
    reason = (draft.rejection_reason or "").strip() or None
    return TemplateScores(**values, overall_score=overall, rejection_reason=reason)


def score_summary(scores: TemplateScores) -> str:
    """The scores in one line, for failure messages and notes."""
    parts = ", ".join(f"{name} {getattr(scores, name)}" for name in RUBRIC)
    return f"overall {scores.overall_score:.2f} ({parts})"


def task_templates_export(template_set: TaskTemplateSet) -> dict[str, object]:
    """A source's templates in the reference `task_templates/<Server>.json` shape.

    Args:
        template_set: The kept templates of one source with its stats.

    Returns:
        `{"templates": [...], "stats": {...}, "is_cross_domain": ...}`; each
        template has `trajectory`, `task_template` (instruction, reason_for_call,
        known_info, complexity, category), `scores`, `domains`, `is_cross_domain`,
        plus `trajectory_hash` and `placeholders`.
    """
    return {
        "templates": [
            {
                "trajectory": list(t.trajectory),
                "trajectory_hash": t.trajectory_hash,
                "task_template": {
                    "instruction": t.instruction,
                    "reason_for_call": t.reason_for_call,
                    "known_info": {},
                    "complexity": None,
                    "category": None,
                },
                "placeholders": list(t.placeholders),
                "scores": t.scores.model_dump(mode="json") if t.scores else None,
                "domains": list(t.domains),
                "is_cross_domain": t.is_cross_domain,
            }
            for t in template_set.templates
        ],
        "stats": template_set.stats.model_dump(mode="json"),
        "is_cross_domain": template_set.is_cross_domain,
    }
