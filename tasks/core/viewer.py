"""The rollout viewer: one self-contained HTML file over rollouts and verdicts.

Input: rollouts, their evaluation results (missing ones show as "not evaluated"),
the golden task of each query (by query id), and the counts of input items that
could not be read. Output: the HTML text of `evaluation/viewer.html`.

How it renders: this module turns the records into plain JSON (conversation with
pretty-printed tool arguments and results, the state diff compared change by
change with `tasks.core.diff_compare`, verdicts) and embeds it in a
`<script type="application/json">` block with every `<`, `>` and `&` written as a
JSON `\\u` escape, so no text in it can close the block. A small vanilla script
(`viewer_assets/viewer.js`) builds the page from that data with DOM calls and text
nodes only, never `innerHTML`, so model text is shown, not interpreted. Filters
(environment, domain, outcome, failing evaluator) and the open rollout live in the
URL fragment (`#outcome=failed&failing=state`), so a view can be linked. CSS and
script are inline and a Content-Security-Policy forbids any fetch: the file works
offline from disk. No side effects besides reading the packaged assets.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from schemas.evaluation import EvaluationResult, Verdict
from schemas.rollout import (
    OUT_OF_SCOPE_TOKEN,
    STOP_TOKEN,
    TRANSFER_TOKEN,
    ChatMessage,
    Rollout,
    rollout_key,
)
from schemas.validated_task import AgentTask
from tasks.core.diff_compare import TableComparison, compare_diffs

_ASSETS = "viewer_assets"
_PLACEHOLDER = re.compile(r"\{\{(title|css|js|data)\}\}")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def render_viewer(
    rollouts: Iterable[Rollout],
    results: Iterable[EvaluationResult],
    tasks_by_query: Mapping[str, AgentTask],
    *,
    skipped: Mapping[str, int] | None = None,
    title: str = "Rollout viewer",
) -> str:
    """The viewer page.

    Args:
        rollouts: Every rollout to show.
        results: Their evaluation results, matched by (query id, trial).
        tasks_by_query: Query id -> its golden task (expected diff and calls).
        skipped: Why input items could not be shown -> count.
        title: The page title.

    Returns:
        One HTML document with its data, style and script inline.
    """
    data = viewer_data(rollouts, results, tasks_by_query, skipped=skipped)
    parts = {
        "title": html.escape(title),
        "css": _asset("viewer.css"),
        "js": _asset("viewer.js"),
        "data": embed_json(data),
    }
    return _PLACEHOLDER.sub(lambda m: parts[m.group(1)], _asset("viewer.html"))


def embed_json(data: Any) -> str:
    """JSON safe inside an HTML `<script>` block: no `<`, `>` or `&` in it."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return re.sub("[<>&]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def viewer_data(
    rollouts: Iterable[Rollout],
    results: Iterable[EvaluationResult],
    tasks_by_query: Mapping[str, AgentTask],
    *,
    skipped: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The JSON the page renders: `{"rollouts": [...], "skipped": {...}}`, the
    rollouts sorted by environment, query id and trial."""
    by_key = {rollout_key(r.id, r.trial): r for r in results}
    ordered = sorted(rollouts, key=lambda r: (r.environment, r.id, r.trial))
    return {
        "rollouts": [
            _rollout(r, by_key.get(r.rollout_id), tasks_by_query.get(r.id))
            for r in ordered
        ],
        "skipped": dict(sorted((skipped or {}).items())),
    }


def _rollout(
    rollout: Rollout, result: EvaluationResult | None, task: AgentTask | None
) -> dict[str, Any]:
    expected = task.expected_diff if task else None
    final_hash = rollout.final_state_hash
    return {
        "key": rollout.rollout_id,
        "id": rollout.id,
        "trial": rollout.trial,
        "environment": rollout.environment,
        "domains": list(_domains(rollout, result, task)),
        "outcome": _outcome(result),
        "failing": _failing(result),
        "total_score": result.total_score if result else None,
        "error": rollout.error or (result.error if result else None),
        "error_kind": rollout.error_kind,
        "stop": _stop(rollout),
        "turns": rollout.total_turns,
        "format_errors": rollout.format_errors,
        "models": dict(sorted(rollout.models.items())),
        "usage": {role: u.model_dump() for role, u in sorted(rollout.usage.items())},
        "instruction": task.instruction if task else None,
        "golden_calls": [
            {"tool": c.tool, "arguments": _pretty_value(c.arguments)}
            for c in (task.golden_calls if task else ())
        ],
        "expected_hash": task.expected_state_hash if task else None,
        "final_hash": final_hash,
        "hash_match": None
        if task is None or final_hash is None
        else final_hash == task.expected_state_hash,
        "has_golden": task is not None,
        "has_final_diff": rollout.final_diff is not None,
        "diff": [_table(t) for t in compare_diffs(expected, rollout.final_diff)],
        "messages": _messages(rollout),
        "verdicts": _verdicts(result.evaluators if result else {}),
        "legacy": _verdicts(result.legacy if result else {}),
    }


def _domains(
    rollout: Rollout, result: EvaluationResult | None, task: AgentTask | None
) -> tuple[str, ...]:
    if result and result.domains:
        return result.domains
    if task and task.domains:
        return task.domains
    return (rollout.environment,)


def _outcome(result: EvaluationResult | None) -> str:
    if result is None:
        return "unevaluated"
    return "passed" if result.passed else "failed"


def _failing(result: EvaluationResult | None) -> list[str]:
    """Evaluators that failed (not skipped), and `error` for a result that ended
    with an error, e.g. a rollout cut short."""
    if result is None:
        return []
    names = sorted(
        name for name, v in result.evaluators.items() if not (v.passed or v.skipped)
    )
    return names + (["error"] if result.error else [])


def _stop(rollout: Rollout) -> str:
    if rollout.stop_reason == "max_turns":
        return "turn limit reached"
    if rollout.stop_reason == "user_token":
        for flag, token in (
            (rollout.transferred, TRANSFER_TOKEN),
            (rollout.out_of_scope, OUT_OF_SCOPE_TOKEN),
            (rollout.stopped, STOP_TOKEN),
        ):
            if flag:
                return f"user sent {token}"
        return "user ended the conversation"
    return "cut short by an error" if rollout.error else "no stop recorded"


def _messages(rollout: Rollout) -> list[dict[str, Any]]:
    names: dict[str, str] = {}
    out = []
    for message in rollout.messages:
        for c in message.tool_calls or ():
            names[c.id] = c.function.name
        out.append(_message(message, rollout, names))
    return out


def _message(
    message: ChatMessage, rollout: Rollout, names: Mapping[str, str]
) -> dict[str, Any]:
    item: dict[str, Any] = {"role": message.role, "text": message.content}
    if message.role == "tool":
        item["text"] = _pretty_text(message.content)
        item["call_id"] = message.tool_call_id
        item["name"] = names.get(message.tool_call_id or "")
    if message.reasoning_content:
        item["reasoning"] = message.reasoning_content
    if message.tool_calls:
        item["calls"] = []
        for c in message.tool_calls:
            arguments, malformed = _arguments(c.function.arguments)
            route = rollout.tool_names.get(c.function.name)
            item["calls"].append(
                {
                    "id": c.id,
                    "name": c.function.name,
                    "route": f"{route.server}.{route.tool}" if route else None,
                    "arguments": arguments,
                    "malformed": malformed,
                }
            )
    return item


def _arguments(text: str) -> tuple[str, bool]:
    """Pretty-printed arguments, and whether they are not a JSON object (then
    shown exactly as the model wrote them)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text, True
    if not isinstance(value, dict):
        return text, True
    return _pretty_value(value), False


def _pretty_text(text: str | None) -> str | None:
    """A tool result: indented when it is JSON, as it is otherwise."""
    if text is None:
        return None
    try:
        return _pretty_value(json.loads(text))
    except ValueError:
        return text


def _pretty_value(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _table(comparison: TableComparison) -> dict[str, Any]:
    return {
        "table": comparison.table,
        "matches": comparison.matches,
        "changes": [
            {
                "kind": c.kind,
                "row": c.row,
                "column": c.column,
                "expected": _side(c.expected),
                "actual": _side(c.actual),
                "status": c.status,
            }
            for c in comparison.changes
        ],
    }


def _side(value: Any) -> str | None:
    """An updated cell as `old -> new`, a row change as `yes`, none as None."""
    if value is None:
        return None
    if isinstance(value, tuple):
        old, new = value
        return f"{_compact(old)} \u2192 {_compact(new)}"
    return "yes"


def _verdicts(verdicts: Mapping[str, Verdict]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "passed": v.passed,
            "skipped": v.skipped,
            "score": v.score,
            "reasoning": v.reasoning,
            "details": _pretty_value(v.details) if v.details else None,
        }
        for name, v in sorted(verdicts.items())
    ]


def _asset(name: str) -> str:
    return (resources.files("tasks.core") / _ASSETS / name).read_text("utf-8")
