"""s06 prompt templates: rendered text is snapshotted (a prompt change is a
reviewable diff) and every input of a template is required."""

from __future__ import annotations

import pytest

from schemas.blueprint import Column, Relationship, ServerBlueprint
from schemas.database import CompareRule, TableConstraints, TableRule
from schemas.entity import Attribute, Entity
from tasks import database_generation as s06
from tasks.core.data_contract import entity_contract, relationship_contract
from tasks.core.data_summary import summarize_table
from tasks.llm.prompting import PromptLibrary
from tests.llm.snapshots import assert_inputs_required, check_golden

NOW = "2025-01-23T15:00:00-05:00"
TREATMENT = Entity(
    name="Treatment",
    description="A dental procedure with a listed price.",
    is_person=False,
    primary_key="treatment_id",
    attributes={
        "category": Attribute(
            description="Kind of work",
            type="enum",
            range="preventive,surgical",
            enum=("preventive", "surgical"),
        ),
        "price": Attribute(description="Listed price", type="number", range="40-5000"),
        "treatment_id": Attribute(description="Unique id", type="string", range="UUID"),
    },
    source_domains=("dental_clinic",),
)
INVOICE = Relationship(
    name="Invoice",
    description="A bill for a treatment.",
    primary_key="invoice_id",
    attributes={
        "amount": Column(type="number", value_from_entity="Random", range="40-5000"),
        "invoice_id": Column(
            type="string", value_from_entity="system_generated", range="UUID"
        ),
        "paid": Column(type="boolean", value_from_entity="Random"),
        "treatment_id": Column(
            type="string",
            value_from_entity="Treatment.treatment_id",
            references="Treatment",
        ),
    },
)
BLUEPRINT = ServerBlueprint(
    server_name="TreatmentBilling",
    description="Patients view and pay the invoices of their treatments.",
    core_entity="Treatment",
    peripheral_entities=(),
    relationships=(INVOICE,),
    functions=(),
)
RULES = TableConstraints(
    table="Invoice",
    server="TreatmentBilling",
    simulation_time=NOW,
    rules=(
        TableRule(
            description="An invoice bills the treatment's listed price",
            conflict_type="domain_specific",
            rule=CompareRule(
                kind="compare", left="amount", op="==", right="treatment_id.price"
            ),
        ),
    ),
)
ENTITY = entity_contract(TREATMENT, n=2, seed=5, simulation_time=NOW)
TREATMENT_ROWS = [
    {"treatment_id": "t1", "category": "preventive", "price": 80.0},
    {"treatment_id": "t2", "category": "surgical", "price": 900.0},
]
TREATMENT_FACTS = summarize_table(ENTITY, TREATMENT_ROWS)
CONTRACT = relationship_contract(
    INVOICE,
    server="TreatmentBilling",
    entities={"Treatment": TREATMENT},
    n=2,
    seed=6,
    simulation_time=NOW,
    constraints=[entry.rule for entry in RULES.rules],
)
INVOICE_FACTS = summarize_table(
    CONTRACT,
    [
        {"invoice_id": "i1", "amount": 80.0, "paid": True, "treatment_id": "t1"},
        {"invoice_id": "i2", "amount": 900.0, "paid": False, "treatment_id": "t2"},
    ],
)
REFERENCED = {"referenced": [ENTITY], "summaries": {"Treatment": TREATMENT_FACTS}}
SCRIPT = 'import json\nspec = json.load(open("input.json"))\n'

CASES = {
    "write_generator": (
        s06.WRITE_PROMPT,
        {
            "contract": ENTITY,
            "referenced": [],
            "summaries": {},
            "rules": [],
            "previous_script": None,
            "problems": [],
        },
    ),
    "rewrite_generator": (
        s06.WRITE_PROMPT,
        {
            "contract": CONTRACT,
            "rules": list(RULES.rules),
            "previous_script": SCRIPT,
            "problems": ["the script did not write output.json"],
            **REFERENCED,
        },
    ),
    "fix_generator": (
        s06.FIX_PROMPT,
        {
            "contract": CONTRACT,
            "script": SCRIPT,
            "problems": ["the script did not write output.json"],
        },
    ),
    "identify_constraints": (
        s06.CONSTRAINTS_PROMPT,
        {
            "contract": CONTRACT,
            "blueprint": BLUEPRINT,
            "simulation_time": NOW,
            **REFERENCED,
        },
    ),
    "summarize_table": (
        s06.SUMMARY_PROMPT,
        {"summary": INVOICE_FACTS, "contract": CONTRACT, "constraints": RULES},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_prompt_matches_its_golden_snapshot(case, update_golden):
    """Fixed inputs render the reviewed text (--update-golden rewrites it)."""
    prompt_id, inputs = CASES[case]
    rendered = PromptLibrary().render(prompt_id, **inputs)
    check_golden(f"s06__{case}", rendered.text, update=update_golden)
    assert rendered.prompt_id == prompt_id


@pytest.mark.parametrize(
    "case", ["rewrite_generator", "fix_generator", "identify_constraints"]
)
def test_each_input_of_a_prompt_is_required(case):
    """StrictUndefined: leaving out any input is an error, never an empty string."""
    prompt_id, inputs = CASES[case]
    assert_inputs_required(prompt_id, inputs)


def test_the_rules_reach_the_generator_in_their_machine_form():
    """The write prompt quotes each rule as the JSON the script finds in input.json."""
    prompt_id, inputs = CASES["rewrite_generator"]
    text = PromptLibrary().render(prompt_id, **inputs).text
    assert (
        '`{"kind":"compare","left":"amount","op":"==","right":"treatment_id.price"}`'
        in text
    )
