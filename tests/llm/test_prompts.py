"""Prompt templates: rendered text is snapshotted, so a prompt change is a reviewable
diff; templates are strict about their inputs; overrides change the prompt hash."""

from __future__ import annotations

import jinja2
import pytest

from schemas.blueprint import BlueprintOutline
from schemas.entity import Attribute, Entity
from tasks.core.domains import STRATEGIES
from tasks.llm.prompting import PromptLibrary
from tests.llm.snapshots import check_golden, golden_name

PATIENT = Entity(
    name="Patient",
    description="A person who receives care from a clinic.",
    is_person=True,
    primary_key="patient_id",
    attributes={
        "patient_id": Attribute(
            description="Unique patient id", type="string", range="UUID"
        ),
        "email": Attribute(description="Contact e-mail", type="string"),
    },
    source_domains=("dental_clinic", "healthcare"),
)
CLINIC = Entity(
    name="Clinic",
    description="A practice where patients are seen.",
    is_person=False,
    primary_key="clinic_id",
    attributes={"clinic_id": Attribute(description="Unique clinic id", type="string")},
    source_domains=("dental_clinic",),
)
OUTLINE = BlueprintOutline(
    index=0,
    server_name="DentalAppointments",
    description="Patients book appointments at clinics.",
    core_entity="Patient",
    peripheral_entities=("Clinic",),
)

CASES = {
    "s01/expand_domains": {
        "shown": ["finance", "travel"],
        "total": 2,
        "n": 3,
        "strategies": STRATEGIES,
    },
    "s02/extract_entities": {"domains": ["airline", "finance"], "per_domain": 2},
    "s03/relate_entities": {"person": PATIENT, "candidates": [CLINIC]},
    "s04/outline_blueprints": {
        "core": PATIENT,
        "candidates": [CLINIC],
        "n": 2,
        "max_peripherals": 2,
        "max_relationships": 2,
    },
    "s04/detail_blueprint": {
        "outline": OUTLINE,
        "entities": [PATIENT, CLINIC],
        "core_key": "patient_id",
        "max_relationships": 2,
        "min_functions": 4,
    },
    "s04/fixup_blueprint": {
        "outline": OUTLINE,
        "entity_names": ["Clinic", "Patient"],
        "problems": ["Relationship 'Visit' has no column holding patient_id."],
        "blueprint_json": '{"MCP_server_name": "DentalAppointments"}',
        "max_relationships": 2,
        "min_functions": 4,
    },
}


@pytest.mark.parametrize("prompt_id", sorted(CASES))
def test_rendered_prompt_matches_its_golden_snapshot(prompt_id, update_golden):
    """Fixed inputs render the reviewed text (--update-golden rewrites it)."""
    rendered = PromptLibrary().render(prompt_id, **CASES[prompt_id])
    check_golden(golden_name(prompt_id), rendered.text, update=update_golden)
    assert rendered.prompt_id == prompt_id
    assert len(rendered.prompt_hash) == 64


def test_s01_prompt_tags_exactly_the_answer_schemas_strategies():
    """The prompt lists the strategies from one place, so prompt and schema agree."""
    text = PromptLibrary().render("s01/expand_domains", **CASES["s01/expand_domains"])
    listed = [
        line.split("`")[1] for line in text.text.splitlines() if line[:3] == "- `"
    ]
    assert tuple(listed) == STRATEGIES
    with pytest.raises(jinja2.UndefinedError):
        PromptLibrary().render(
            "s01/expand_domains",
            **{**CASES["s01/expand_domains"], "strategies": ("sideways",)},
        )


def test_missing_template_input_is_an_error_not_an_empty_string():
    """StrictUndefined: a template never silently renders a missing variable."""
    with pytest.raises(jinja2.UndefinedError):
        PromptLibrary().render("s01/expand_domains", shown=["finance"], total=1)


def test_prompt_override_changes_only_that_prompts_hash(tmp_path):
    """An override file replaces one template; other prompt hashes stay the same."""
    packaged = PromptLibrary()
    (tmp_path / "s03").mkdir()
    (tmp_path / "s03" / "relate_entities.md.j2").write_text("Relate {{ person.name }}.")
    custom = PromptLibrary(str(tmp_path))
    assert custom.prompt_hash("s03/relate_entities") != packaged.prompt_hash(
        "s03/relate_entities"
    )
    assert custom.prompt_hash("s04/detail_blueprint") == packaged.prompt_hash(
        "s04/detail_blueprint"
    )
    rendered = custom.render("s03/relate_entities", person=PATIENT, candidates=[])
    assert rendered.text == "Relate Patient.\n"


def test_shared_include_is_part_of_every_prompt_hash(tmp_path):
    """Editing the shared system preamble changes every prompt's hash."""
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "system.md.j2").write_text("A different preamble.")
    custom, packaged = PromptLibrary(str(tmp_path)), PromptLibrary()
    for prompt_id in CASES:
        assert custom.prompt_hash(prompt_id) != packaged.prompt_hash(prompt_id)
