"""The text parts of a user query record (s17), in the reference shape.

Input: a validated task's entity instances, its template texts and the model's
query. Output: the `known_info` markdown (what the simulated user knows), the
user simulator's system prompt, and a query id unique across the whole output.
Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.base import sha256_hex


def known_info(instances: Mapping[str, Mapping[str, Any]]) -> str:
    """`# Entity Instances`, then one `## Name` section of `- field: value`
    lines per instance, instances and fields in sorted order."""
    lines = ["# Entity Instances"]
    for name in sorted(instances):
        lines += ["", f"## {name}"]
        for field, value in sorted(instances[name].items()):
            lines.append(f"- {field}: {_text(value)}")
    return "\n".join(lines) + "\n"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return str(value)


def user_system_prompt(reason_for_call: str, instruction: str, known: str) -> str:
    """The simulated user's system prompt (the reference's three parts)."""
    return (
        f"You are a user who needs help with: {reason_for_call}\n\n"
        f"Your goal: {instruction}\n\n"
        f"Information you know: {known}"
    )


def query_id(environment: str, combo_id: str) -> str:
    """A query id unique across the whole output (one query per validated
    combination of an environment), stable across runs."""
    return "q-" + sha256_hex(f"{environment}\n{combo_id}")[:20]
