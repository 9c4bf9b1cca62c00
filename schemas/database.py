"""s06 payloads: generated tables, their contracts, constraints and summaries.

A `TableContract` is what a generator script receives as `input.json` and what its
output is validated against; a `DataTable` carries the rows the sandboxed script
produced and the script itself; `TableConstraints` holds the machine-checkable rules
(and the notes no checker can evaluate) of one relationship table; a `TableSummary`
is computed from the rows (value sets, ranges, counts) and carries the model's
prose, which is checked against those numbers. The drafts are the response models
of the s06 model calls. Data only, no side effects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from schemas.base import CheckedDraft, Draft, Frozen, PascalName, Slug
from schemas.entity import AttributeType

TableKind = Literal["entity", "relationship"]
ColumnType = AttributeType
"""Column types of generated tables: the entity attribute types."""
Scalar = str | bool | int | float
Operand = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$")
]
"""A column (`amount`) or, through a foreign key, a column of the referenced row
(`clinic_id.specialty`)."""
ConflictType = Literal[
    "semantic_mismatch", "temporal_conflict", "domain_specific", "logical_dependency"
]


class Condition(Frozen):
    """Restricts a rule to the rows whose `column` holds one of `values`."""

    column: Operand
    values: tuple[Scalar, ...] = Field(min_length=1)


class CompareRule(Frozen):
    """`left op right` (another operand) or `left op value` (a literal)."""

    kind: Literal["compare"]
    left: Operand
    op: Literal["<", "<=", ">", ">=", "==", "!="]
    right: Operand | None = None
    value: Scalar | None = None
    when: Condition | None = None

    @model_validator(mode="after")
    def _one_right_side(self) -> CompareRule:
        if (self.right is None) == (self.value is None):
            raise ValueError("a compare rule needs exactly one of 'right' or 'value'")
        return self


class SimulationTimeRule(Frozen):
    """A date/datetime column lies after (strictly) or before (or at) "now"."""

    kind: Literal["after_simulation_time", "before_simulation_time"]
    column: Operand
    when: Condition | None = None


class AllowedPairsRule(Frozen):
    """The (left, right) values of every row are one of the listed pairs."""

    kind: Literal["allowed_pairs"]
    left: Operand
    right: Operand
    pairs: tuple[tuple[Scalar, Scalar], ...] = Field(min_length=1)
    when: Condition | None = None


class UniqueTogetherRule(Frozen):
    """No two rows share the same values in all of `columns`."""

    kind: Literal["unique_together"]
    columns: tuple[Slug, ...] = Field(min_length=1)


ConstraintRule = Annotated[
    CompareRule | SimulationTimeRule | AllowedPairsRule | UniqueTogetherRule,
    Field(discriminator="kind"),
]


class ColumnContract(Frozen):
    """One column as the generator must fill it and the validator checks it.

    `minimum`/`maximum` are numbers for integer and number columns and ISO dates
    (`YYYY-MM-DD`, inclusive) for date and datetime columns; they are set only
    when the blueprint's range text could be read exactly.
    """

    type: ColumnType
    description: str = ""
    range: str = Field(default="", description="The range text as designed.")
    enum: tuple[str, ...] | None = None
    minimum: float | str | None = None
    maximum: float | str | None = None
    format: Literal["uuid"] | None = None
    nullable: bool = False
    references: PascalName | None = Field(
        default=None, description="Table whose primary key this column holds."
    )
    drawn_from: str | None = Field(
        default=None,
        description="`Entity.attribute` whose existing values this column copies.",
    )


class TableContract(Frozen):
    """Everything a generator script gets as `input.json`."""

    table: PascalName
    kind: TableKind
    server: PascalName | None = None
    description: str = ""
    primary_key: Slug
    columns: dict[Slug, ColumnContract]
    n: int = Field(ge=1, description="Exact number of rows to write.")
    seed: int = Field(ge=0)
    simulation_time: str
    tables: dict[PascalName, Slug] = Field(
        default_factory=dict,
        description="Tables the rows point into, read from tables/<Name>.json, "
        "with their primary keys.",
    )
    constraints: tuple[ConstraintRule, ...] = ()

    @model_validator(mode="after")
    def _key_and_tables(self) -> TableContract:
        if self.primary_key not in self.columns:
            raise ValueError(f"primary key {self.primary_key!r} is not a column")
        pointed = {c.references for c in self.columns.values() if c.references}
        pointed |= {
            c.drawn_from.split(".", 1)[0] for c in self.columns.values() if c.drawn_from
        }
        missing = sorted(pointed - set(self.tables))
        if missing:
            raise ValueError(f"tables {missing} are pointed into but not listed")
        return self


class DataTable(Frozen):
    """One generated table: rows keyed by `primary_key`, and the script that made it."""

    table: str
    kind: TableKind
    server: str | None = Field(
        default=None, description="Owning server of a relationship table."
    )
    primary_key: str
    rows: tuple[dict[str, Any], ...]
    script: str
    seed: int
    attempts: int = Field(ge=1, description="Script runs until the data validated.")


class TableRule(Frozen):
    """A checked rule and the risk it guards against."""

    description: str
    conflict_type: ConflictType
    rule: ConstraintRule


class TableConstraints(Frozen):
    """The constraint identification of one (server, relationship) table."""

    table: PascalName
    server: PascalName
    simulation_time: str
    rules: tuple[TableRule, ...] = ()
    notes: tuple[str, ...] = Field(
        default=(), description="Risks no checker can evaluate, and advice."
    )


class ColumnSummary(Frozen):
    """Facts about one column, computed from the data."""

    type: str
    distinct: int = Field(ge=0)
    nulls: int = Field(ge=0)
    values: tuple[str, ...] | None = Field(
        default=None, description="Every distinct value, when there are few."
    )
    minimum: float | str | None = None
    maximum: float | str | None = None
    references: str | None = Field(default=None, description="Table a FK points to.")


class TableSummary(Frozen):
    """What downstream prompts (policies, servers) learn about a table."""

    table: str
    kind: TableKind
    server: str | None = None
    row_count: int = Field(ge=0)
    columns: dict[str, ColumnSummary]
    prose: str = ""


ProblemKind = Literal[
    "script_failed",
    "not_an_array",
    "not_an_object",
    "row_count",
    "missing_column",
    "unknown_column",
    "missing_primary_key",
    "duplicate_primary_key",
    "null_value",
    "wrong_type",
    "not_in_enum",
    "out_of_range",
    "bad_format",
    "dangling_foreign_key",
    "not_drawn_from",
    "constraint",
    "nondeterministic",
]


class DataProblem(Frozen):
    """One reason the output of a generator script is not accepted."""

    kind: ProblemKind
    message: str
    column: str | None = None
    row: int | None = Field(default=None, description="0-based row index.")


class GeneratorScriptDraft(CheckedDraft):
    """A complete generator program."""

    script: str = Field(
        description="The whole Python program: reads input.json, writes output.json."
    )
    notes: str = Field(default="", description="Choices worth knowing, briefly.")


class ScriptFixDraft(CheckedDraft):
    """Edits to the current generator program."""

    edits: str = Field(
        description="One or more SEARCH/REPLACE blocks against the current script."
    )


class RiskDraft(Draft):
    columns: list[str] = Field(
        default_factory=list, description="Columns involved, e.g. clinic_id.specialty"
    )
    conflict_type: ConflictType = "logical_dependency"
    description: str
    rule: ConstraintRule | None = Field(
        default=None, description="The rule in the rule language, or null."
    )


class ConstraintSetDraft(CheckedDraft):
    """Risky attribute combinations of one relationship table."""

    risks: list[RiskDraft] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class SummaryProseDraft(CheckedDraft):
    """A short prose summary of one table, checked against the computed facts."""

    prose: str = Field(min_length=1, max_length=2000)
