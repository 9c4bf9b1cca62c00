"""s06 summaries: facts are computed from the rows (never from the script), and the
markdown document is rendered from those facts plus the prose."""

from __future__ import annotations

from schemas.database import (
    ColumnContract,
    ColumnSummary,
    CompareRule,
    TableConstraints,
    TableContract,
    TableRule,
    TableSummary,
)
from tasks.core.data_summary import summarize_table, summary_markdown

NOW = "2025-01-23T15:00:00-05:00"

CONTRACT = TableContract(
    table="Visit",
    kind="relationship",
    server="Care",
    primary_key="visit_id",
    columns={
        "visit_id": ColumnContract(type="string"),
        "clinic_id": ColumnContract(type="string", references="Clinic"),
        "fee": ColumnContract(type="number"),
        "seats": ColumnContract(type="integer"),
        "status": ColumnContract(type="enum", enum=("open", "done", "void")),
        "paid": ColumnContract(type="boolean"),
        "starts_at": ColumnContract(type="datetime"),
        "city": ColumnContract(type="string", nullable=True),
        "tags": ColumnContract(type="array"),
    },
    n=4,
    seed=1,
    simulation_time=NOW,
    tables={"Clinic": "clinic_id"},
)
ROWS = [
    {
        "visit_id": "v1",
        "clinic_id": "c1",
        "fee": 120.5,
        "seats": 10,
        "status": "open",
        "paid": True,
        "starts_at": "2025-02-01T10:00:00",
        "city": "Oslo",
        "tags": [],
    },
    {
        "visit_id": "v2",
        "clinic_id": "c1",
        "fee": 80,
        "seats": 2,
        "status": "done",
        "paid": False,
        "starts_at": "2025-01-30T09:00:00-05:00",
        "city": "Oslo",
        "tags": ["a"],
    },
    {
        "visit_id": "v3",
        "clinic_id": "c2",
        "fee": 99.99,
        "seats": 2,
        "status": "open",
        "paid": True,
        "starts_at": "2025-03-01T08:30:00",
        "city": None,
        "tags": [],
    },
]


def test_summary_facts_are_computed_from_the_rows():
    """Counts, nulls, ranges, listed values and references, exactly."""
    summary = summarize_table(CONTRACT, ROWS)
    assert summary == TableSummary(
        table="Visit",
        kind="relationship",
        server="Care",
        row_count=3,
        columns={
            "visit_id": ColumnSummary(type="string", distinct=3, nulls=0),
            "clinic_id": ColumnSummary(
                type="string", distinct=2, nulls=0, references="Clinic"
            ),
            "fee": ColumnSummary(
                type="number", distinct=3, nulls=0, minimum=80.0, maximum=120.5
            ),
            "seats": ColumnSummary(
                type="integer",
                distinct=2,
                nulls=0,
                values=("2", "10"),
                minimum=2.0,
                maximum=10.0,
            ),
            "status": ColumnSummary(
                type="enum", distinct=2, nulls=0, values=("done", "open")
            ),
            "paid": ColumnSummary(
                type="boolean", distinct=2, nulls=0, values=("false", "true")
            ),
            "starts_at": ColumnSummary(
                type="datetime",
                distinct=3,
                nulls=0,
                minimum="2025-01-30T09:00:00-05:00",
                maximum="2025-03-01T08:30:00",
            ),
            "city": ColumnSummary(type="string", distinct=1, nulls=1, values=("Oslo",)),
            "tags": ColumnSummary(type="array", distinct=2, nulls=0),
        },
    )


def test_summary_markdown_renders_prose_facts_and_rules():
    """Title, prose, the fact table and the checked rules, in that order."""
    summary = summarize_table(CONTRACT, ROWS[:2]).model_copy(
        update={"prose": "Two visits."}
    )
    rule = CompareRule(kind="compare", left="fee", op=">", value=0)
    constraints = TableConstraints(
        table="Visit",
        server="Care",
        simulation_time=NOW,
        rules=(
            TableRule(
                description="Fees are positive.",
                conflict_type="domain_specific",
                rule=rule,
            ),
        ),
        notes=("Visits follow referrals.",),
    )
    markdown = summary_markdown(
        summary, primary_key="visit_id", constraints=constraints
    )
    assert markdown == (
        "# Visit (Relationship of Care)\n"
        "\n"
        "Two visits.\n"
        "\n"
        "## Facts computed from the data\n"
        "\n"
        "- Rows: 2\n"
        "- Primary key: `visit_id`\n"
        "\n"
        "| Column | Type | Distinct | Nulls | Minimum | Maximum | Values |\n"
        "|---|---|---|---|---|---|---|\n"
        "| `visit_id` | string | 2 | 0 |  |  |  |\n"
        "| `clinic_id` | string | 1 | 0 |  |  | references `Clinic` |\n"
        "| `fee` | number | 2 | 0 | 80 | 120.5 |  |\n"
        "| `seats` | integer | 2 | 0 | 2 | 10 |  |\n"
        "| `status` | enum | 2 | 0 |  |  | `done`, `open` |\n"
        "| `paid` | boolean | 2 | 0 |  |  | `false`, `true` |\n"
        "| `starts_at` | datetime | 2 | 0 | 2025-01-30T09:00:00-05:00 "
        "| 2025-02-01T10:00:00 |  |\n"
        "| `city` | string | 1 | 0 |  |  | `Oslo` |\n"
        "| `tags` | array | 2 | 0 |  |  |  |\n"
        "\n"
        "## Rules checked on every row\n"
        "\n"
        "- `fee > 0`: Fees are positive.\n"
        "\n"
        "## Notes (not machine-checked)\n"
        "\n"
        "- Visits follow referrals.\n"
    )


def test_entity_summary_has_no_owner_and_no_rule_sections():
    """An entity table's document names no server and lists no rules."""
    summary = TableSummary(table="Clinic", kind="entity", row_count=0, columns={})
    assert summary_markdown(summary, primary_key="clinic_id").splitlines()[:3] == [
        "# Clinic (Entity)",
        "",
        "## Facts computed from the data",
    ]
