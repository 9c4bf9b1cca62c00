"""s15 selection code: its sandboxed run, the check of what it found, and the
choice of the combinations kept.

Input: a model-written selection script, the checked `InstancePlan`, the rows of
the server's own tables (with their primary keys), a seed and the simulation
time. Output: the `SandboxRequest` that runs the script on copies of the tables,
the `SelectionRun` of a finished run (its typed status, the combinations that
hold, the problems of those that do not; s15x's creation check reads its output
the same way, `script_output`), the declarative calls of a combination
(built from the plan, checked with `bind_call`), combination ids, the seeded
choice of the kept combinations and the convergence rule of the rounds. Pure: the
caller runs the request.

The script contract: the scratch directory holds `select.py`, `input.json`
(`plan`, `tables` (name -> primary key), `values` (value key `<step>.<param>`
-> its domain), `seed`, `simulation_time`) and one copy `tables/<Table>.json`
(a JSON array of rows; changes are discarded) per table of the server. The
script writes `output.json`: `{"combinations": [{"instances": {key: record},
"values": {value key: value}}]}`. Only the primary key of each record matters:
the record kept is the table's own row.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from schemas.base import canonical_json, sha256_hex
from schemas.golden import EntityFieldArg, LiteralArg, PlannedCall, StepResultArg
from schemas.instance_plan import InstancePlan
from schemas.sandbox import SandboxRequest, SandboxResult
from tasks.core.bindings import bind_call
from tasks.core.data_scripts import output_text, run_problems
from tasks.core.instance_plans import value_key, value_keys

SCRIPT_FILE = "select.py"
INPUT_FILE = "input.json"
TABLES_DIR = "tables"
T = TypeVar("T")
MAX_REPORTED = 8
"""Rejected combinations whose problems go back to the model, at most."""

RunStatus = Literal["ok", "timeout", "script_failed", "no_combination", "bad_reference"]


@dataclass(frozen=True)
class Selected:
    """One combination that holds: the table rows it names and its calls."""

    instances: dict[str, dict[str, Any]]
    calls: tuple[PlannedCall, ...]


@dataclass(frozen=True)
class SelectionRun:
    """What one run of a selection script gave."""

    status: RunStatus
    combinations: tuple[Selected, ...] = ()
    problems: tuple[str, ...] = ()
    rejected: int = 0


@dataclass(frozen=True)
class TableRows:
    """One table of the server: its primary key and rows."""

    primary_key: str
    rows: tuple[dict[str, Any], ...]


def selection_request(
    script: str,
    plan: InstancePlan,
    tables: Mapping[str, TableRows],
    *,
    seed: int,
    simulation_time: str,
    timeout_s: float,
) -> SandboxRequest:
    """The sandboxed run of a selection script on copies of the tables."""
    spec = {
        "plan": plan.model_dump(mode="json"),
        "tables": {name: t.primary_key for name, t in sorted(tables.items())},
        "values": {k: list(v) for k, v in value_keys(plan).items()},
        "seed": seed,
        "simulation_time": simulation_time,
    }
    return script_request(
        SCRIPT_FILE,
        script,
        spec,
        {name: table.rows for name, table in tables.items()},
        timeout_s=timeout_s,
    )


def script_request(
    script_file: str,
    script: str,
    given: Mapping[str, Any],
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    timeout_s: float,
) -> SandboxRequest:
    """The sandboxed run of a combination script (s15's selection, s15x's
    creation): `script_file`, `input.json` (`given`) and one copy
    `tables/<Table>.json` per table; it collects `output.json`."""
    files = {script_file: script, INPUT_FILE: json.dumps(given, indent=2)}
    for name, rows in tables.items():
        files[f"{TABLES_DIR}/{name}.json"] = json.dumps(list(rows))
    return SandboxRequest(
        argv=("python", script_file),
        files=files,
        timeout_s=timeout_s,
        cpu_s=max(1, math.ceil(timeout_s)),
        collect=("output.json",),
    )


def selection_run(
    result: SandboxResult, plan: InstancePlan, tables: Mapping[str, TableRows]
) -> SelectionRun:
    """The typed outcome of a finished run (the sandbox itself worked)."""
    out = script_output(
        result,
        lambda raw: check_combination(raw, plan, tables),
        lambda c: canonical_json({"i": c.instances, "c": _dump(c.calls)}),
        not_json="output.json is not JSON",
        none_found="the script found no combination; relax the filters that "
        "exclude every record, keeping the plan's constraints",
    )
    return SelectionRun(out.status, out.kept, out.problems, out.rejected)


class ScriptOutput(NamedTuple, Generic[T]):
    """What a finished combination script wrote, checked."""

    status: RunStatus
    kept: tuple[T, ...] = ()
    problems: tuple[str, ...] = ()
    rejected: int = 0


def script_output(
    result: SandboxResult,
    check: Callable[[Any], T | list[str]],
    key: Callable[[T], str],
    *,
    not_json: str,
    none_found: str,
    limit: int | None = None,
) -> ScriptOutput[T]:
    """The combinations a finished run wrote (the sandbox itself worked): those
    that pass `check`, each once (by `key`), with the problems of the others
    (at most `MAX_REPORTED`); at most `limit` are checked. A run that failed,
    wrote no JSON (`not_json` starts the problem) or no combination
    (`none_found`) has no combinations."""
    if result.status == "timeout":
        return ScriptOutput("timeout", problems=(problem_text(result),))
    if not result.ok:
        return ScriptOutput("script_failed", problems=(problem_text(result),))
    text = output_text(result)
    try:
        data = json.loads(text) if text is not None else None
    except ValueError as exc:
        return ScriptOutput("script_failed", problems=(f"{not_json}: {exc}",))
    found = data.get("combinations") if isinstance(data, dict) else None
    if not isinstance(found, list):
        return ScriptOutput(
            "script_failed",
            problems=('output.json must be an object {"combinations": [...]}',),
        )
    if not found:
        return ScriptOutput("no_combination", problems=(none_found,))
    kept: list[T] = []
    seen: set[str] = set()
    problems: list[str] = []
    for n, raw in enumerate(found[:limit]):
        checked = check(raw)
        if isinstance(checked, list):
            problems += [f"combination {n}: {p}" for p in checked]
        elif (ident := key(checked)) not in seen:
            seen.add(ident)
            kept.append(checked)
    status: RunStatus = "ok" if kept else "bad_reference"
    return ScriptOutput(
        status, tuple(kept), tuple(problems[:MAX_REPORTED]), len(found) - len(kept)
    )


def problem_text(result: SandboxResult) -> str:
    """The failure of a script's run as the repair prompt shows it (the stdout
    tail included: a script may print its error there, reference defect 16)."""
    problems = run_problems(result)
    text = problems[0].message if problems else result.message
    out = result.stdout.strip()
    if out and result.status == "exit_error":
        text += f"\nstdout (end):\n{out[-1000:]}"  # reference defect 16
    return text


def check_combination(
    raw: Any, plan: InstancePlan, tables: Mapping[str, TableRows]
) -> Selected | list[str]:
    """The combination with the tables' own rows and its calls, or why not."""
    if not isinstance(raw, dict) or not isinstance(raw.get("instances"), dict):
        return ['each combination must be an object with an "instances" object']
    values = raw.get("values") or {}
    if not isinstance(values, dict):
        return ['"values" must be an object keyed by "<step>.<parameter>"']
    problems: list[str] = []
    instances: dict[str, dict[str, Any]] = {}
    for key, wanted in plan.instances.items():
        row, why = _row(raw["instances"].get(key), key, tables[wanted.table])
        if row is None:
            problems.append(why)
        else:
            instances[key] = row
    for key, domain in value_keys(plan).items():
        if key not in values:
            problems.append(f"no value for {key}")
        elif canonical_json(values[key]) not in {canonical_json(v) for v in domain}:
            problems.append(f"value {values[key]!r} for {key} is not in its domain")
    if problems:
        return problems
    calls = planned_calls(plan, values)
    for index, call in enumerate(calls):
        own = {
            k: b for k, b in call.arguments.items() if not isinstance(b, StepResultArg)
        }
        local = PlannedCall(tool=call.tool, arguments=own)
        bound = bind_call(local, index, instances, [])
        if isinstance(bound, list):
            problems += [f"{p.tool}.{p.argument}: {p.message}" for p in bound]
    return problems or Selected(instances, calls)


def _row(record: Any, key: str, table: TableRows) -> tuple[dict[str, Any] | None, str]:
    if not isinstance(record, dict):
        return None, f"instance {key!r} is missing"
    if table.primary_key not in record:
        return None, f"instance {key!r} has no {table.primary_key!r}"
    wanted = record[table.primary_key]
    for row in table.rows:
        if row.get(table.primary_key) == wanted:
            return dict(row), ""
    return None, f"instance {key!r}: no row with {table.primary_key} = {wanted!r}"


def planned_calls(
    plan: InstancePlan, values: Mapping[str, Any]
) -> tuple[PlannedCall, ...]:
    """The trajectory's calls, each argument bound as the plan says."""
    calls = []
    for index, step in enumerate(plan.steps):
        arguments: dict[str, EntityFieldArg | LiteralArg | StepResultArg] = {}
        for name, arg in sorted(step.arguments.items()):
            if arg.source == "entity":
                arguments[name] = EntityFieldArg(instance=arg.instance, field=arg.field)
            elif arg.source == "value":
                arguments[name] = LiteralArg(value=values[value_key(index, name)])
            else:
                arguments[name] = StepResultArg(step=arg.step, path=arg.path)
        calls.append(PlannedCall(tool=step.tool, arguments=arguments))
    return tuple(calls)


def _dump(calls: Sequence[PlannedCall]) -> list[Any]:
    return [c.model_dump(mode="json") for c in calls]


def combo_id(environment: str, trajectory_hash: str, combo: Selected) -> str:
    """sha256 of the environment, the trajectory and the combination's content."""
    return sha256_hex(
        canonical_json(
            {
                "environment": environment,
                "trajectory_hash": trajectory_hash,
                "instances": combo.instances,
                "calls": _dump(combo.calls),
            }
        )
    )


def choose(combos: Sequence[T], k: int, seed: int) -> list[T]:
    """`k` of the combinations (all when fewer), drawn with `seed`, in the order
    the script gave them (s15's selected ones, s15x's created candidates)."""
    if len(combos) <= k:
        return list(combos)
    picked = sorted(random.Random(seed).sample(range(len(combos)), k))
    return [combos[i] for i in picked]


def keep_going(
    failed_per_round: Sequence[int], *, min_progress_rate: float, max_rounds: int
) -> bool:
    """Whether another round runs after the rounds so far (their failure counts).

    Stops when nothing failed, at `max_rounds`, or when the last round cut the
    failures by less than `min_progress_rate` of the round before.
    """
    if not failed_per_round or failed_per_round[-1] == 0:
        return False
    if len(failed_per_round) >= max_rounds:
        return False
    if len(failed_per_round) == 1:
        return True
    before, now = failed_per_round[-2], failed_per_round[-1]
    return (before - now) / before >= min_progress_rate
