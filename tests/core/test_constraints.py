"""s06 constraint rules: rules a checker cannot use are refused with a reason; valid
rules are evaluated on every row, following foreign keys, against the configured
simulation time."""

from __future__ import annotations

import pytest

from schemas.database import (
    AllowedPairsRule,
    ColumnContract,
    CompareRule,
    Condition,
    ConstraintSetDraft,
    RiskDraft,
    SimulationTimeRule,
    TableConstraints,
    TableContract,
    TableRule,
    UniqueTogetherRule,
)
from tasks.core.constraints import (
    canonical_constraints,
    constraint_checker,
    constraints_export,
    describe_rule,
    rule_problems,
)
from tasks.core.data_contract import TableData
from tasks.core.data_rules import rule_violations

NOW = "2025-01-23T15:00:00-05:00"

TREATMENT = TableContract(
    table="Treatment",
    kind="entity",
    primary_key="treatment_id",
    columns={
        "treatment_id": ColumnContract(type="string"),
        "price": ColumnContract(type="number"),
        "category": ColumnContract(type="enum", enum=("preventive", "surgical")),
    },
    n=2,
    seed=1,
    simulation_time=NOW,
)
TREATMENTS = TableData(
    TREATMENT,
    [
        {"treatment_id": "t1", "price": 80.0, "category": "preventive"},
        {"treatment_id": "t2", "price": 900.0, "category": "surgical"},
    ],
)


def _contract(*rules) -> TableContract:
    return TableContract(
        table="Plan",
        kind="relationship",
        server="Care",
        primary_key="plan_id",
        columns={
            "plan_id": ColumnContract(type="string"),
            "treatment_id": ColumnContract(type="string", references="Treatment"),
            "amount": ColumnContract(type="number"),
            "status": ColumnContract(type="enum", enum=("planned", "done")),
            "starts_on": ColumnContract(type="date"),
            "ends_at": ColumnContract(type="datetime"),
            "tags": ColumnContract(type="array"),
        },
        n=3,
        seed=1,
        simulation_time=NOW,
        tables={"Treatment": "treatment_id"},
        constraints=rules,
    )


def _problems(rule) -> list[str]:
    return rule_problems(rule, _contract(), {"Treatment": TREATMENT})


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (
            CompareRule(kind="compare", left="cost", op=">", value=1),
            "column 'cost' does not exist in Plan (plan_id, treatment_id, amount, "
            "status, starts_on, ends_at, tags)",
        ),
        (
            CompareRule(kind="compare", left="status.code", op="==", value="x"),
            "'status' is not a foreign key, so 'status.code' cannot be followed",
        ),
        (
            CompareRule(kind="compare", left="treatment_id.cost", op=">", value=1),
            "Treatment has no column 'cost' (treatment_id, price, category)",
        ),
        (
            CompareRule(kind="compare", left="status", op="<", right="plan_id"),
            "'<' needs numbers or dates; 'status' is enum",
        ),
        (
            CompareRule(kind="compare", left="amount", op="==", right="starts_on"),
            "'amount' (number) and its right side (date) do not compare",
        ),
        (
            CompareRule(kind="compare", left="amount", op=">", value="high"),
            "value 'high' does not compare with number 'amount'",
        ),
        (
            CompareRule(kind="compare", left="status", op="==", value="closed"),
            "'status' never holds closed (values: planned, done)",
        ),
        (
            SimulationTimeRule(kind="after_simulation_time", column="amount"),
            "'amount' is number, not a date or datetime",
        ),
        (
            AllowedPairsRule(
                kind="allowed_pairs",
                left="treatment_id.category",
                right="tags",
                pairs=(("surgical", "x"),),
            ),
            "'tags' is array; rules compare scalar columns only",
        ),
        (
            UniqueTogetherRule(kind="unique_together", columns=("plan_id", "owner")),
            "column 'owner' does not exist in Plan",
        ),
        (
            SimulationTimeRule(
                kind="after_simulation_time",
                column="ends_at",
                when=Condition(column="status", values=("cancelled",)),
            ),
            "when: 'status' never holds cancelled (values: planned, done)",
        ),
    ],
)
def test_rule_a_checker_cannot_use_is_refused_with_its_reason(rule, problem):
    """Unknown columns, bad paths, incomparable types and impossible values."""
    assert _problems(rule) == [problem]


def test_usable_rules_have_no_problems():
    """Column, literal, FK-path, time, pair and uniqueness rules all check out."""
    rules = [
        CompareRule(kind="compare", left="amount", op="==", right="treatment_id.price"),
        CompareRule(kind="compare", left="ends_at", op=">=", right="starts_on"),
        CompareRule(kind="compare", left="starts_on", op=">", value="2025-01-01"),
        SimulationTimeRule(kind="before_simulation_time", column="starts_on"),
        AllowedPairsRule(
            kind="allowed_pairs",
            left="treatment_id.category",
            right="status",
            pairs=(("surgical", "planned"),),
        ),
        UniqueTogetherRule(kind="unique_together", columns=("treatment_id", "status")),
    ]
    assert [_problems(rule) for rule in rules] == [[]] * len(rules)


def test_violations_follow_foreign_keys_and_respect_when():
    """amount must equal the treatment's price, but only for planned rows."""
    rule = CompareRule(
        kind="compare",
        left="amount",
        op="==",
        right="treatment_id.price",
        when=Condition(column="status", values=("planned",)),
    )
    rows = [
        {"plan_id": "a", "treatment_id": "t1", "amount": 80, "status": "planned"},
        {"plan_id": "b", "treatment_id": "t2", "amount": 80, "status": "planned"},
        {"plan_id": "c", "treatment_id": "t2", "amount": 80, "status": "done"},
        {"plan_id": "d", "treatment_id": "t9", "amount": 80, "status": "planned"},
        {"plan_id": "e", "treatment_id": "t2", "amount": None, "status": "planned"},
    ]
    problems = rule_violations(_contract(rule), rows, {"Treatment": TREATMENTS})
    assert [p.message for p in problems] == [
        "row #1 (plan_id 'b'): violates rule 1 (amount == treatment_id.price when "
        "status in [planned]): amount 80 == treatment_id.price 900.0 does not hold"
    ]


def test_time_rules_use_the_configured_simulation_time():
    """Dates compare with the simulation date, naive datetimes are local time."""
    rules = (
        SimulationTimeRule(kind="after_simulation_time", column="ends_at"),
        SimulationTimeRule(kind="before_simulation_time", column="starts_on"),
    )
    rows = [
        {"plan_id": "a", "ends_at": "2025-01-23T15:30:00", "starts_on": "2025-01-23"},
        {"plan_id": "b", "ends_at": "2025-01-23T14:59:00", "starts_on": "2025-01-24"},
        {"plan_id": "c", "ends_at": "2025-01-23T20:30:00Z", "starts_on": None},
        {"plan_id": "d", "ends_at": "2025-01-23T20:00:00Z", "starts_on": "2024-12-31"},
    ]
    problems = rule_violations(_contract(*rules), rows, {"Treatment": TREATMENTS})
    assert [p.message for p in problems] == [
        "row #1 (plan_id 'b'): violates rule 1 (ends_at after the simulation time): "
        "ends_at '2025-01-23T14:59:00' is not after 2025-01-23T15:00:00-05:00",
        "row #3 (plan_id 'd'): violates rule 1 (ends_at after the simulation time): "
        "ends_at '2025-01-23T20:00:00Z' is not after 2025-01-23T15:00:00-05:00",
        "row #1 (plan_id 'b'): violates rule 2 (starts_on at or before the "
        "simulation time): starts_on '2025-01-24' is not at or before "
        "2025-01-23T15:00:00-05:00",
    ]


def test_pairs_uniqueness_and_literal_comparisons_are_checked_per_row():
    """Disallowed pairs, repeated combinations and literal bounds are reported."""
    rules = (
        AllowedPairsRule(
            kind="allowed_pairs",
            left="treatment_id.category",
            right="status",
            pairs=(("preventive", "done"), ("surgical", "planned")),
        ),
        UniqueTogetherRule(kind="unique_together", columns=("treatment_id", "status")),
        CompareRule(kind="compare", left="amount", op=">", value=50),
    )
    rows = [
        {"plan_id": "a", "treatment_id": "t1", "status": "done", "amount": 60},
        {"plan_id": "b", "treatment_id": "t1", "status": "planned", "amount": 50},
        {"plan_id": "c", "treatment_id": "t1", "status": "done", "amount": 70},
    ]
    problems = rule_violations(_contract(*rules), rows, {"Treatment": TREATMENTS})
    assert [(p.row, p.column, p.message.split(": ", 2)[2]) for p in problems] == [
        (1, "treatment_id.category", "(preventive, planned) is not allowed"),
        (2, "treatment_id", "same values as row #0"),
        (1, "amount", "amount 50 > 50 does not hold"),
    ]


def test_canonical_constraints_keep_rule_less_risks_as_notes():
    """Risks without a rule, and advice, become notes; repeated rules are dropped."""
    rule = UniqueTogetherRule(kind="unique_together", columns=("treatment_id",))
    draft = ConstraintSetDraft(
        risks=[
            RiskDraft(columns=["treatment_id"], description="Once each.", rule=rule),
            RiskDraft(description="Twice.", rule=rule),
            RiskDraft(columns=["plan_id", "x"], description=" Needs other tables. "),
        ],
        notes=["Prefer planned rows.", ""],
    )
    assert canonical_constraints(
        draft, table="Plan", server="Care", simulation_time=NOW
    ) == TableConstraints(
        table="Plan",
        server="Care",
        simulation_time=NOW,
        rules=(
            TableRule(
                description="Once each.", conflict_type="logical_dependency", rule=rule
            ),
        ),
        notes=("Needs other tables. (columns: plan_id, x)", "Prefer planned rows."),
    )


def test_constraint_checker_names_the_risk_of_each_problem():
    """Problems are prefixed with the risk's number and description."""
    check = constraint_checker(_contract(), {"Treatment": TREATMENT})
    draft = ConstraintSetDraft(
        risks=[
            RiskDraft(description="No rule."),
            RiskDraft(
                description="Cost is positive.",
                rule=CompareRule(kind="compare", left="cost", op=">", value=0),
            ),
        ]
    )
    assert check(draft) == [
        "Risk 2 ('Cost is positive.'): column 'cost' does not exist in Plan "
        "(plan_id, treatment_id, amount, status, starts_on, ends_at, tags)"
    ]


def test_rules_read_as_one_line_and_export_in_the_reference_layout():
    """describe_rule and the constraints JSON document."""
    rule = CompareRule(
        kind="compare",
        left="status",
        op="!=",
        value="done",
        when=Condition(column="amount", values=(0, True)),
    )
    assert describe_rule(rule) == 'status != "done" when amount in [0, true]'
    constraints = TableConstraints(
        table="Plan",
        server="Care",
        simulation_time=NOW,
        rules=(
            TableRule(description="d", conflict_type="temporal_conflict", rule=rule),
        ),
        notes=("n",),
    )
    assert constraints_export(constraints) == {
        "server_name": "Care",
        "relationship_name": "Plan",
        "simulation_time": NOW,
        "constraints": [
            {
                "description": "d",
                "conflict_type": "temporal_conflict",
                "rule": {
                    "kind": "compare",
                    "left": "status",
                    "op": "!=",
                    "value": "done",
                    "when": {"column": "amount", "values": [0, True]},
                },
                "readable": 'status != "done" when amount in [0, true]',
            }
        ],
        "notes": ["n"],
    }


def test_compare_rule_needs_exactly_one_right_side():
    """Neither or both of right and value is a schema error."""
    with pytest.raises(ValueError, match="exactly one of 'right' or 'value'"):
        CompareRule(kind="compare", left="amount", op=">")
    with pytest.raises(ValueError, match="exactly one of 'right' or 'value'"):
        CompareRule(kind="compare", left="amount", op=">", right="x", value=1)
