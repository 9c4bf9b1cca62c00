"""s06 constraint rules: takes the rules a model proposed for a relationship table
(`ConstraintSetDraft`), the table's contract and the contracts or rows of the
tables it points into; returns the problems that make a rule unusable (sent back
to the model), the canonical `TableConstraints` (rules without a machine form kept
as notes), a readable form of each rule and the
`database/constraints/<Server>/<Rel>.json` export; rows are checked against the
rules by `tasks.core.data_rules`. Pure, no side effects.

The rule language (`schemas.database.ConstraintRule`). An operand is a column
(`amount`) or, through a foreign key, a column of the referenced row
(`clinic_id.specialty`).
- `compare`: `left op right` or `left op value`; `<`, `<=`, `>`, `>=` need numeric
  or date/datetime operands on both sides; `==`, `!=` need operands of one
  category (numeric, date/datetime, or text: string, enum, boolean).
- `after_simulation_time` / `before_simulation_time`: a date/datetime column is
  strictly after, or at or before, the configured simulation time (a date column
  compares with the simulation date).
- `allowed_pairs`: the row's (left, right) values are one of `pairs`.
- `unique_together`: no two rows share the values of all `columns`.
Any rule but `unique_together` may carry `when: {column, values}` and then applies
only to rows whose `column` holds one of `values`. A rule is not evaluated on a row
where an operand is null or its foreign key does not resolve (those are reported
by the data validation).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from schemas.database import (
    AllowedPairsRule,
    CompareRule,
    Condition,
    ConstraintRule,
    ConstraintSetDraft,
    SimulationTimeRule,
    TableConstraints,
    TableContract,
    TableRule,
    UniqueTogetherRule,
)
from tasks.core.data_values import category, is_number, temporal, value_text

_ORDERING = frozenset({"<", "<=", ">", ">="})


def rule_problems(
    rule: ConstraintRule,
    contract: TableContract,
    referenced: Mapping[str, TableContract],
) -> list[str]:
    """Why a rule cannot be checked on this table (empty when it can)."""
    if isinstance(rule, UniqueTogetherRule):
        return [
            f"column '{name}' does not exist in {contract.table}"
            for name in rule.columns
            if name not in contract.columns
        ]
    problems = _condition_problems(rule.when, contract, referenced)
    if isinstance(rule, SimulationTimeRule):
        kind, problem = _operand_type(rule.column, contract, referenced)
        if problem:
            return [*problems, problem]
        if category(kind) != "temporal":
            problems.append(f"'{rule.column}' is {kind}, not a date or datetime")
        return problems
    if isinstance(rule, AllowedPairsRule):
        for operand, side in ((rule.left, 0), (rule.right, 1)):
            problems += _values_problems(
                operand, [pair[side] for pair in rule.pairs], contract, referenced
            )
        return problems
    return problems + _compare_problems(rule, contract, referenced)


def constraint_checker(
    contract: TableContract, referenced: Mapping[str, TableContract]
) -> Callable[[ConstraintSetDraft], list[str]]:
    """The `check` of the constraint-identification call."""

    def check(draft: ConstraintSetDraft) -> list[str]:
        problems = []
        for number, risk in enumerate(draft.risks, start=1):
            if risk.rule is None:
                continue
            problems += [
                f"Risk {number} ({risk.description[:60]!r}): {problem}"
                for problem in rule_problems(risk.rule, contract, referenced)
            ]
        return problems

    return check


def canonical_constraints(
    draft: ConstraintSetDraft, *, table: str, server: str, simulation_time: str
) -> TableConstraints:
    """Checked rules in answer order (repeats dropped); rule-less risks as notes."""
    rules: list[TableRule] = []
    notes: list[str] = []
    for risk in draft.risks:
        text = risk.description.strip()
        if risk.rule is None:
            columns = f" (columns: {', '.join(risk.columns)})" if risk.columns else ""
            notes.append(f"{text}{columns}")
        elif all(kept.rule != risk.rule for kept in rules):
            rules.append(
                TableRule(
                    description=text, conflict_type=risk.conflict_type, rule=risk.rule
                )
            )
    notes += [note.strip() for note in draft.notes if note.strip()]
    return TableConstraints(
        table=table,
        server=server,
        simulation_time=simulation_time,
        rules=tuple(rules),
        notes=tuple(dict.fromkeys(notes)),
    )


def describe_rule(rule: ConstraintRule) -> str:
    """The rule in one readable line, e.g. `end_date >= start_date`."""
    if isinstance(rule, UniqueTogetherRule):
        return f"unique ({', '.join(rule.columns)})"
    if isinstance(rule, CompareRule):
        right = rule.right if rule.right is not None else json.dumps(rule.value)
        text = f"{rule.left} {rule.op} {right}"
    elif isinstance(rule, SimulationTimeRule):
        side = "after" if rule.kind == "after_simulation_time" else "at or before"
        text = f"{rule.column} {side} the simulation time"
    else:
        pairs = ", ".join(f"({value_text(a)}, {value_text(b)})" for a, b in rule.pairs)
        text = f"({rule.left}, {rule.right}) in {{{pairs}}}"
    if rule.when is not None:
        values = ", ".join(value_text(v) for v in rule.when.values)
        text += f" when {rule.when.column} in [{values}]"
    return text


def constraints_export(constraints: TableConstraints) -> dict[str, Any]:
    """The `database/constraints/<Server>/<Rel>.json` document."""
    return {
        "server_name": constraints.server,
        "relationship_name": constraints.table,
        "simulation_time": constraints.simulation_time,
        "constraints": [
            {
                "description": entry.description,
                "conflict_type": entry.conflict_type,
                "rule": entry.rule.model_dump(mode="json", exclude_none=True),
                "readable": describe_rule(entry.rule),
            }
            for entry in constraints.rules
        ],
        "notes": list(constraints.notes),
    }


def _operand_type(
    operand: str, contract: TableContract, referenced: Mapping[str, TableContract]
) -> tuple[str, str]:
    """(column type, "") or ("", the problem)."""
    name, _, attribute = operand.partition(".")
    column = contract.columns.get(name)
    if column is None:
        known = ", ".join(contract.columns)
        return "", f"column '{name}' does not exist in {contract.table} ({known})"
    if not attribute:
        return column.type, ""
    target = referenced.get(column.references or "")
    if target is None:
        return "", f"'{name}' is not a foreign key, so '{operand}' cannot be followed"
    if attribute not in target.columns:
        known = ", ".join(target.columns)
        return "", f"{target.table} has no column '{attribute}' ({known})"
    return target.columns[attribute].type, ""


def _enum_of(
    operand: str, contract: TableContract, referenced: Mapping[str, TableContract]
) -> tuple[str, ...] | None:
    name, _, attribute = operand.partition(".")
    if not attribute:
        return contract.columns[name].enum
    return referenced[contract.columns[name].references or ""].columns[attribute].enum


def _values_problems(
    operand: str,
    values: Sequence[Any],
    contract: TableContract,
    referenced: Mapping[str, TableContract],
) -> list[str]:
    kind, problem = _operand_type(operand, contract, referenced)
    if problem:
        return [problem]
    if category(kind) == "other":
        return [f"'{operand}' is {kind}; rules compare scalar columns only"]
    enum = _enum_of(operand, contract, referenced)
    wrong = sorted({value_text(v) for v in values if enum and v not in enum})
    if wrong:
        known = ", ".join(enum or ())
        return [f"'{operand}' never holds {', '.join(wrong)} (values: {known})"]
    return []


def _condition_problems(
    when: Condition | None,
    contract: TableContract,
    referenced: Mapping[str, TableContract],
) -> list[str]:
    if when is None:
        return []
    return [
        f"when: {p}"
        for p in _values_problems(when.column, when.values, contract, referenced)
    ]


def _compare_problems(
    rule: CompareRule, contract: TableContract, referenced: Mapping[str, TableContract]
) -> list[str]:
    left, problem = _operand_type(rule.left, contract, referenced)
    if problem:
        return [problem]
    if rule.right is not None:
        right, problem = _operand_type(rule.right, contract, referenced)
        if problem:
            return [problem]
    else:
        right = _literal_type(rule.value, left)
        if not right:
            return [f"value {rule.value!r} does not compare with {left} '{rule.left}'"]
        if rule.op not in _ORDERING:
            problems = _values_problems(rule.left, [rule.value], contract, referenced)
            if problems:
                return problems
    sides = {category(left), category(right)}
    if len(sides) != 1 or "other" in sides:
        return [f"'{rule.left}' ({left}) and its right side ({right}) do not compare"]
    if rule.op in _ORDERING and sides == {"text"}:
        return [f"'{rule.op}' needs numbers or dates; '{rule.left}' is {left}"]
    return []


def _literal_type(value: Any, column_type: str) -> str:
    """The column type a literal stands for when compared with `column_type`."""
    kind = category(column_type)
    if kind == "numeric" and is_number(value):
        return "number"
    if kind == "temporal" and temporal(value, column_type, None) is not None:
        return column_type
    if column_type == "boolean" and isinstance(value, bool):
        return "boolean"
    if column_type in ("string", "enum") and isinstance(value, str):
        return "string"
    return ""
