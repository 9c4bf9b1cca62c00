"""s15x creation code: its sandboxed run and the check of the records it created.

Input: a model-written creation script, the checked `InstancePlan` (its tables
are the fused environment's session tables: the shared core table under its own
name, every other table `Server.Table`), the fused `EnvironmentSpec`, the base
`Database` (read only), a seed and the simulation time. Output: the
`SandboxRequest` that runs the script on a read-only copy of the fused data, and
the `CreationCheck` of a finished run: every combination whose overlay fits the
tables (`tasks.runtime.overlay`) and whose instances and values meet the plan,
as a `Candidate` (overlay, instances, declarative calls), and the problems of
the others. Pure: the caller runs the request and executes the candidates.

The script contract: the scratch directory holds `create.py`, `input.json`
(`plan`; `tables`: table name -> `primary_key`, `columns`, `foreign_keys`;
`values` (value key `<step>.<parameter>` -> its domain); `core_entity`; `seed`;
`simulation_time`) and one copy `tables/<Table>.json` per session table (changes
are discarded). The script writes `output.json`: `{"combinations":
[{"overlay": {table: [new rows]}, "instances": {key: record}, "values": {value
key: value}}]}`. An instance is found by its primary key among the table's
existing rows and the combination's own new rows; every combination must create
at least one record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.base import canonical_json, sha256_hex
from schemas.environment import EnvironmentSpec
from schemas.instance_plan import InstancePlan
from schemas.sandbox import SandboxRequest, SandboxResult
from tasks.core.instance_plans import value_keys
from tasks.core.instance_selection import (
    RunStatus,
    Selected,
    TableRows,
    check_combination,
    combo_id,
    script_output,
    script_request,
)
from tasks.runtime.database import Database
from tasks.runtime.overlay import overlay_issues

SCRIPT_FILE = "create.py"
MAX_CANDIDATES = 100
"""Combinations of one run that are checked, at most."""


@dataclass(frozen=True)
class Candidate:
    """A combination whose new records fit: to be executed before it is kept."""

    selected: Selected
    overlay: dict[str, tuple[dict[str, Any], ...]]

    def combo_id(self, environment: str, trajectory_hash: str) -> str:
        """sha256 of the selection's id and the overlay."""
        return sha256_hex(
            canonical_json(
                {
                    "selected": combo_id(environment, trajectory_hash, self.selected),
                    "overlay": {k: list(v) for k, v in self.overlay.items()},
                }
            )
        )


@dataclass(frozen=True)
class CreationCheck:
    """What one run of a creation script gave, before execution."""

    status: RunStatus
    candidates: tuple[Candidate, ...] = ()
    problems: tuple[str, ...] = ()
    rejected: int = 0


def creation_request(
    script: str,
    plan: InstancePlan,
    spec: EnvironmentSpec,
    base: Database,
    *,
    core_entity: str,
    seed: int,
    simulation_time: str,
    timeout_s: float,
) -> SandboxRequest:
    """The sandboxed run of a creation script on a copy of the fused data."""
    tables = {
        name: {
            "primary_key": table.primary_key,
            "columns": list(table.columns),
            "foreign_keys": dict(table.foreign_keys),
        }
        for name, table in sorted(spec.tables.items())
    }
    given = {
        "plan": plan.model_dump(mode="json"),
        "tables": tables,
        "values": {k: list(v) for k, v in value_keys(plan).items()},
        "core_entity": core_entity,
        "seed": seed,
        "simulation_time": simulation_time,
    }
    return script_request(
        SCRIPT_FILE,
        script,
        given,
        {name: base.table(name).all() for name in spec.tables},
        timeout_s=timeout_s,
    )


def creation_check(
    result: SandboxResult, plan: InstancePlan, spec: EnvironmentSpec, base: Database
) -> CreationCheck:
    """The typed outcome of a finished run (the sandbox itself worked)."""
    out = script_output(
        result,
        lambda raw: check_created(raw, plan, spec, base),
        lambda c: canonical_json({"i": c.selected.instances, "o": c.overlay}),
        not_json="output.json",
        none_found="the script created no combination; create at least one",
        limit=MAX_CANDIDATES,
    )
    return CreationCheck(out.status, out.kept, out.problems, out.rejected)


def check_created(
    raw: Any, plan: InstancePlan, spec: EnvironmentSpec, base: Database
) -> Candidate | list[str]:
    """The combination with its overlay, instances and calls, or why not."""
    overlay = raw.get("overlay") if isinstance(raw, dict) else None
    if not isinstance(overlay, dict) or not all(
        isinstance(rows, list) for rows in overlay.values()
    ):
        return ['each combination needs an "overlay" object: table -> array of rows']
    if not any(overlay.values()):
        return ["the combination creates no record; put its new rows in overlay"]
    issues = overlay_issues(spec, base, overlay)
    if issues:
        return [issue.message for issue in issues]
    tables = {
        name: TableRows(
            table.primary_key,
            (*base.table(name).all(), *overlay.get(name, ())),
        )
        for name, table in spec.tables.items()
    }
    checked = check_combination(raw, plan, tables)
    if not isinstance(checked, Selected):
        return checked
    return Candidate(
        checked, {name: tuple(rows) for name, rows in sorted(overlay.items()) if rows}
    )
