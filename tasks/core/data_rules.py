"""s06 rule evaluation: takes a table contract (whose `constraints` are checked
rules), its rows and the validated tables its foreign keys point into; returns one
`DataProblem` per (rule, violating row), with the row, the readable rule and the
values that break it. The language is described in `tasks.core.constraints`; a rule
is not evaluated on a row where an operand is null or its foreign key does not
resolve (the data validation reports those). Pure, no side effects.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from schemas.database import (
    AllowedPairsRule,
    CompareRule,
    Condition,
    ConstraintRule,
    DataProblem,
    SimulationTimeRule,
    TableContract,
    UniqueTogetherRule,
)
from tasks.core.constraints import describe_rule
from tasks.core.data_contract import TableData
from tasks.core.data_values import (
    category,
    is_number,
    parse_date,
    parse_datetime,
    row_label,
    simulation_now,
    temporal,
    value_text,
)

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def rule_violations(
    contract: TableContract,
    rows: Sequence[Mapping[str, Any]],
    referenced: Mapping[str, TableData],
) -> list[DataProblem]:
    """One problem per (rule, violating row), rules in contract order."""
    scope = _Scope(contract, referenced)
    problems: list[DataProblem] = []
    for number, rule in enumerate(contract.constraints, start=1):
        label = f"violates rule {number} ({describe_rule(rule)})"
        if isinstance(rule, UniqueTogetherRule):
            problems += _duplicates(rule, rows, contract, label)
            continue
        for index, row in enumerate(rows):
            if rule.when is not None and not scope.satisfies(row, rule.when):
                continue
            detail = scope.violation(rule, row)
            if detail:
                where = row_label(contract.primary_key, row, index)
                problems.append(
                    DataProblem(
                        kind="constraint",
                        message=f"{where}: {label}: {detail}",
                        column=_first_column(rule),
                        row=index,
                    )
                )
    return problems


class _Scope:
    """Operand values of one row, following foreign keys into referenced rows."""

    def __init__(self, contract: TableContract, referenced: Mapping[str, TableData]):
        self.contract = contract
        self.now = simulation_now(contract.simulation_time)
        self.zone = self.now.tzinfo
        self.index = {
            name: {
                value_text(row.get(table.contract.primary_key)): row
                for row in table.rows
            }
            for name, table in referenced.items()
        }
        self.referenced = {name: table.contract for name, table in referenced.items()}

    def operand(self, row: Mapping[str, Any], operand: str) -> tuple[Any, str] | None:
        name, _, attribute = operand.partition(".")
        column = self.contract.columns[name]
        value = row.get(name)
        if value is None:
            return None
        if not attribute:
            return value, column.type
        target = self.index.get(column.references or "", {}).get(value_text(value))
        if target is None or target.get(attribute) is None:
            return None
        kind = self.referenced[column.references or ""].columns[attribute].type
        return target[attribute], kind

    def satisfies(self, row: Mapping[str, Any], when: Condition) -> bool:
        found = self.operand(row, when.column)
        wanted = {value_text(v) for v in when.values}
        return found is not None and value_text(found[0]) in wanted

    def violation(self, rule: Any, row: Mapping[str, Any]) -> str:
        """A description of how the row breaks the rule, or "" (holds or n/a)."""
        if isinstance(rule, SimulationTimeRule):
            return self._time(rule, row)
        if isinstance(rule, AllowedPairsRule):
            left, right = self.operand(row, rule.left), self.operand(row, rule.right)
            if left is None or right is None:
                return ""
            pair = (value_text(left[0]), value_text(right[0]))
            allowed = {(value_text(a), value_text(b)) for a, b in rule.pairs}
            return "" if pair in allowed else f"({pair[0]}, {pair[1]}) is not allowed"
        return self._compare(rule, row)

    def _time(self, rule: SimulationTimeRule, row: Mapping[str, Any]) -> str:
        found = self.operand(row, rule.column)
        if found is None:
            return ""
        value, kind = found
        after = rule.kind == "after_simulation_time"
        if kind == "date":
            day, now = parse_date(value), self.now.date()
            if day is None:
                return ""
            holds = day > now if after else day <= now
        else:
            moment = parse_datetime(value, self.zone)
            if moment is None:
                return ""
            holds = moment > self.now if after else moment <= self.now
        side = "after" if after else "at or before"
        return (
            ""
            if holds
            else f"{rule.column} {value!r} is not {side} {self.now.isoformat()}"
        )

    def _compare(self, rule: CompareRule, row: Mapping[str, Any]) -> str:
        left = self.operand(row, rule.left)
        if left is None:
            return ""
        if rule.right is not None:
            right = self.operand(row, rule.right)
            if right is None:
                return ""
            shown = f"{rule.right} {right[0]!r}"
        else:
            right, shown = (rule.value, left[1]), json.dumps(rule.value)
        a, b = self._key(*left), self._key(*right)
        if a is None or b is None:
            return ""
        if _OPS[rule.op](a, b):
            return ""
        return f"{rule.left} {left[0]!r} {rule.op} {shown} does not hold"

    def _key(self, value: Any, kind: str) -> Any:
        if category(kind) == "numeric":
            return float(value) if is_number(value) else None
        if category(kind) == "temporal":
            return temporal(value, kind, self.zone)
        return value_text(value)


def _duplicates(
    rule: UniqueTogetherRule,
    rows: Sequence[Mapping[str, Any]],
    contract: TableContract,
    label: str,
) -> list[DataProblem]:
    seen: dict[tuple[str, ...], int] = {}
    problems = []
    for index, row in enumerate(rows):
        combination = tuple(value_text(row.get(c)) for c in rule.columns)
        if combination in seen:
            problems.append(
                DataProblem(
                    kind="constraint",
                    message=f"{row_label(contract.primary_key, row, index)}: "
                    f"{label}: same values as row #{seen[combination]}",
                    column=rule.columns[0],
                    row=index,
                )
            )
        else:
            seen[combination] = index
    return problems


def _first_column(rule: ConstraintRule) -> str:
    if isinstance(rule, UniqueTogetherRule):
        return rule.columns[0]
    if isinstance(rule, SimulationTimeRule):
        return rule.column
    return rule.left
