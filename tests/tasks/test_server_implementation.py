"""s09 build loop: the decisions of generation, triage, fixes, rollback and test
edits with a scripted fake model, and the sandbox-backed bad inputs (code that
does not import, a test file that never finishes, an edit that matches nothing),
each ending as a typed build report within its budget.

The server is the hand-written DentalAppointments runtime fixture; its module is
correct, so each test injects one bug and scripts the model's answers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from schemas.config import RunConfig, ServerConfig
from schemas.database import DataTable
from schemas.policy import PolicyDocument
from schemas.server import RepairAttempt
from tasks.core.policy import parse_policy
from tasks.llm.bound import StepLLM
from tasks.llm.errors import CassetteMiss, InvalidModelOutput
from tasks.llm.prompting import PromptLibrary
from tasks.runtime.exports import (
    blueprint_from_export,
    catalogue_from_export,
    find_blueprint,
)
from tasks.runtime.serve import load_environment
from tasks.server_drafts import ServerInputs
from tasks.server_implementation import build_limits, server_inputs, server_tables
from tasks.server_repair import build_server
from tests.runtime import FIXTURE_DIR, SERVER, SIMULATION_TIME

CATALOGUE = catalogue_from_export(
    json.loads((FIXTURE_DIR / "entities.json").read_text(encoding="utf-8"))
)
BLUEPRINT = blueprint_from_export(
    find_blueprint(
        json.loads((FIXTURE_DIR / "blueprints.json").read_text(encoding="utf-8")),
        SERVER,
    ),
    CATALOGUE,
)
MODULE = (FIXTURE_DIR / "mcp_servers" / f"{SERVER}.py").read_text(encoding="utf-8")
POLICY_MARKDOWN = """<!-- POLICY_START -->
## Global Rules
- Call `authorize_patient` first; every other tool is rejected until it succeeds.
<!-- GLOBAL_RULES_END -->
<!-- TOOL: authorize_patient -->
Permitted: an active Patient. Rejected: unknown or suspended patients.
<!-- TOOL_END: authorize_patient -->
<!-- TOOL: list_clinics -->
Lists clinics, optionally in one city.
<!-- TOOL_END: list_clinics -->
<!-- TOOL: book_appointment -->
Books a future visit at a clinic taking new patients, after confirmation.
<!-- TOOL_END: book_appointment -->
<!-- TOOL: list_my_appointments -->
Lists the user's appointments.
<!-- TOOL_END: list_my_appointments -->
<!-- TOOL: cancel_appointment -->
Cancels one of the user's booked, upcoming appointments.
<!-- TOOL_END: cancel_appointment -->
<!-- POLICY_END -->
"""
POLICY = PolicyDocument(
    server_name=SERVER,
    markdown=POLICY_MARKDOWN,
    parsed=parse_policy(POLICY_MARKDOWN),
    confirm_tools=("book_appointment",),
)
TESTS = """def test_unknown_patient_is_rejected(call):
    assert call("authorize_patient", patient_id="nobody").is_error


def test_suspended_patients_are_not_authorized(call, data):
    for patient in data["Patient"]:
        result = call("authorize_patient", patient_id=patient["patient_id"])
        assert result.is_error == (patient["status"] != "active")
"""
CRASH_LINE = (
    '    return {"clinics": clinics.find(city=city) if city else clinics.all()}\n'
)
BUGGY = MODULE.replace(
    CRASH_LINE,
    '    return {"clinics": clinics.all(), "city": clinics.all()[0]["town"]}\n',
)
FIX = f"""<<<<<<< SEARCH
    return {{"clinics": clinics.all(), "city": clinics.all()[0]["town"]}}
=======
{CRASH_LINE}>>>>>>> REPLACE
"""
NO_MATCH = """<<<<<<< SEARCH
    return {"clinics": clinics.all(), "town": clinics.all()[0]["town"]}
=======
    return {"clinics": clinics.all()}
>>>>>>> REPLACE
"""
SERVER_TRIAGE = {
    "location": "server",
    "failing_test": "valid_calls/list_clinics",
    "explanation": "list_clinics reads a town column; Clinic has city, drop it",
}
CFG = ServerConfig(
    max_fix_attempts=2, max_syntax_retries=1, test_timeout_s=60, conformance_samples=2
)
KEY = f"s09/{SERVER}"


class FakeLLM:
    """Answers by call key and attempt, validating like instructor would."""

    def __init__(self, script: dict[str, list[dict[str, Any]]]) -> None:
        self.script = script
        self.calls: list[tuple[str, int, str]] = []

    def model_for(self, role: str, override: str | None = None) -> str:
        return override or f"fake-{role}"

    def create(
        self,
        response_model: type[BaseModel],
        messages: list[dict[str, Any]],
        *,
        call_key: str,
        role: str,
        model: str | None = None,
        context: dict[str, Any] | None = None,
        max_retries: int | None = None,
    ) -> BaseModel:
        answers = self.script.get(call_key, [])
        attempts = max_retries or 3
        error = ""
        for attempt in range(attempts):
            if attempt >= len(answers):
                raise CassetteMiss(call_key, attempt, "<fake>")
            self.calls.append((call_key, attempt, messages[0]["content"]))
            try:
                return response_model.model_validate(answers[attempt], context=context)
            except ValidationError as exc:
                error = str(exc)
        raise InvalidModelOutput(call_key, attempts, error, json.dumps(answers[-1]))

    def keys(self) -> list[tuple[str, int]]:
        return [
            (key.removeprefix(KEY + "/"), attempt) for key, attempt, _ in self.calls
        ]


def dental_tables() -> list[DataTable]:
    """The fixture's rows as s06 data tables."""
    environment = load_environment(FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME)
    return [
        DataTable(
            table=name,
            kind=environment.spec.tables[name].kind,
            server=SERVER
            if environment.spec.tables[name].kind == "relationship"
            else None,
            primary_key=table.primary_key,
            rows=tuple(table.all()),
            script="",
            seed=7,
            attempts=1,
        )
        for name, table in environment.base.tables.items()
    ]


def dental_inputs(cfg: ServerConfig = CFG) -> ServerInputs:
    """The DentalAppointments build inputs (confirmation tools from the policy)."""
    return server_inputs(
        BLUEPRINT,
        CATALOGUE,
        dental_tables(),
        POLICY,
        cfg=cfg,
        seed=RunConfig().seed,
        simulation_time=SIMULATION_TIME,
    )


def _build(script: dict[str, list[dict[str, Any]]], cfg: ServerConfig = CFG):
    fake = FakeLLM({f"{KEY}/{key}": answers for key, answers in script.items()})
    llm = StepLLM(fake, PromptLibrary(), step="s09", role="coding", model=None)
    return build_server(llm, llm, dental_inputs(cfg), build_limits(cfg)), fake


def test_server_tables_are_its_entities_and_its_own_relationships():
    """Entity tables are shared; relationship tables must belong to the server."""
    from schemas.artifact import Artifact, Producer

    made = Producer(step="s06", item_key="x", params_hash="p", code_version="c")
    tables = [
        Artifact[DataTable].build(
            kind="data_table", id=t.table, payload=t, producer=made
        )
        for t in dental_tables()
        if t.table != "Clinic"
    ]
    other = tables[-1].payload.model_copy(update={"server": "Other"})
    tables[-1] = Artifact[DataTable].build(
        kind="data_table", id="Appointment", payload=other, producer=made
    )
    present, missing = server_tables(BLUEPRINT, tables)
    assert [a.payload.table for a in present] == ["Patient"]
    assert missing == ("Clinic", "Appointment")


def test_inputs_take_confirmation_tools_from_the_policy_and_build_the_suite():
    """The spec's confirmation flag and the suite come from the policy."""
    inputs = dental_inputs()
    assert [t.name for t in inputs.spec.tools if t.needs_confirmation] == [
        "book_appointment"
    ]
    assert inputs.suite.confirm_tools == ("book_appointment",)
    assert inputs.suite.auth_required == (
        "list_clinics",
        "book_appointment",
        "list_my_appointments",
        "cancel_appointment",
    )
    assert sorted(inputs.rows) == ["Appointment", "Clinic", "Patient"]


def test_drafts_that_never_validate_fail_without_running_anything():
    """A module importing `os` is re-asked, then the build fails with no run."""
    bad = {"code": "import os\n" + MODULE}
    build, fake = _build({"module": [bad, bad]})
    assert build.status == "failed"
    assert build.attempts == 0
    assert [g.status for g in build.gates] == ["not_run"] * 4
    assert "import of 'os' is not allowed" in (build.last_error or "")
    assert fake.keys() == [("module", 0), ("module", 1)]


@pytest.mark.slow
def test_conformance_crash_is_triaged_as_server_and_fixed_by_an_edit():
    """The triage must name the server for a conformance failure; the fix call
    sees the explanation and the real failure; the edited module passes."""
    wrong_triage = {**SERVER_TRIAGE, "location": "test"}
    build, fake = _build(
        {
            "module": [{"code": BUGGY}],
            "tests": [{"code": TESTS}],
            "triage-1": [wrong_triage, SERVER_TRIAGE],
            "fix-1": [{"edits": NO_MATCH}, {"edits": FIX}],
        }
    )
    assert build.status == "passed", build.last_error
    assert build.attempts == 2
    assert build.repairs == (
        RepairAttempt(
            round=1,
            gate="conformance",
            failing_test="valid_calls/list_clinics",
            location="server",
            explanation=SERVER_TRIAGE["explanation"],
            edited="module",
            decision="kept",
            note="every gate passed",
            asserts_before=2,
            asserts_after=2,
        ),
    )
    assert fake.keys() == [
        ("module", 0),
        ("tests", 0),
        ("triage-1", 0),
        ("triage-1", 1),
        ("fix-1", 0),
        ("fix-1", 1),
    ]
    fix_prompt = fake.calls[4][2]
    assert SERVER_TRIAGE["explanation"] in fix_prompt
    assert "crashed: KeyError: 'town'" in fix_prompt
    assert build.module_code == MODULE
    assert [t.name for t in build.listed_tools] == [f.name for f in BLUEPRINT.functions]
    assert build.tool_list_problems == ()


@pytest.mark.slow
def test_edit_that_matches_nothing_ends_as_a_typed_failure_within_budget():
    """Every fix answer misses: each round is recorded, the server fails."""
    build, fake = _build(
        {
            "module": [{"code": BUGGY}],
            "tests": [{"code": TESTS}],
            "triage-1": [SERVER_TRIAGE],
            "fix-1": [{"edits": NO_MATCH}, {"edits": "no blocks at all"}],
            "triage-2": [SERVER_TRIAGE],
            "fix-2": [{"edits": NO_MATCH}, {"edits": NO_MATCH}],
        }
    )
    assert build.status == "failed"
    assert build.attempts == 1
    assert [(r.round, r.decision) for r in build.repairs] == [
        (1, "edit_failed"),
        (2, "edit_failed"),
    ]
    assert build.repairs[1].note.startswith(
        "fix: no valid answer after 2 attempt(s): ## 1 of 1 SEARCH/REPLACE blocks"
    )
    assert "KeyError: 'town'" in (build.last_error or "")
    assert [g.status for g in build.gates] == ["passed", "passed", "failed", "not_run"]
    assert len(fake.calls) == 8


@pytest.mark.slow
def test_module_that_does_not_import_fails_the_import_gate():
    """A module raising at import time is a failed import gate, nothing more."""
    cfg = CFG.model_copy(update={"max_fix_attempts": 0})
    broken = MODULE.replace("CONFIRM_TOOLS", "RATE = 1 / 0\nCONFIRM_TOOLS")
    build, _ = _build({"module": [{"code": broken}], "tests": [{"code": TESTS}]}, cfg)
    assert build.status == "failed"
    assert [(g.gate, g.status) for g in build.gates] == [
        ("syntax", "passed"),
        ("import", "failed"),
        ("conformance", "not_run"),
        ("policy_tests", "not_run"),
    ]
    assert "ZeroDivisionError: division by zero" in (build.last_error or "")


@pytest.mark.slow
def test_test_file_that_never_finishes_is_a_failure_naming_the_test():
    """The run's timeout stops a hanging test; the report names it."""
    cfg = CFG.model_copy(update={"max_fix_attempts": 0, "test_timeout_s": 8})
    hanging = (
        "def test_forever(call):\n    while call:\n        pass\n    assert call\n"
    )
    build, _ = _build({"module": [{"code": MODULE}], "tests": [{"code": hanging}]}, cfg)
    assert build.status == "failed"
    tests_gate = build.gates[-1]
    assert tests_gate.status == "failed"
    assert tests_gate.failing == (
        "unit_tests/test_DentalAppointments.py::test_forever",
    )
    assert "did not finish" in tests_gate.failure
    assert [g.status for g in build.gates[:3]] == ["passed"] * 3


@pytest.mark.slow
def test_worse_version_is_rolled_back_to_the_best_one():
    """A fix that breaks the import is rolled back; the next fix starts from the
    best version and passes."""
    breaking = """<<<<<<< SEARCH
CONFIRM_TOOLS = ("book_appointment",)
=======
RATE = 1 / 0
CONFIRM_TOOLS = ("book_appointment",)
>>>>>>> REPLACE
"""
    build, _ = _build(
        {
            "module": [{"code": BUGGY}],
            "tests": [{"code": TESTS}],
            "triage-1": [SERVER_TRIAGE],
            "fix-1": [{"edits": breaking}],
            "triage-2": [SERVER_TRIAGE],
            "fix-2": [{"edits": FIX}],
        }
    )
    assert [r.decision for r in build.repairs] == ["rolled_back", "kept"]
    assert build.repairs[0].note == "the edited version failed at import"
    assert build.status == "passed"
    assert "1 / 0" not in build.module_code
    assert build.attempts == 3


@pytest.mark.slow
def test_test_edit_that_drops_an_assertion_is_kept_and_reported():
    """With the conformance suite passing, a test edit may remove an assertion;
    the drop is reported in the build."""
    wrong = TESTS + (
        "\n\ndef test_list_clinics_answers(call, data):\n"
        '    call("authorize_patient", patient_id=data["Patient"][0]["patient_id"])\n'
        '    assert not call("list_clinics").is_error\n'
        '    assert call("list_clinics").content["clinics"] == []\n'
    )
    drop = """<<<<<<< SEARCH
    assert call("list_clinics").content["clinics"] == []
=======
>>>>>>> REPLACE
"""
    triage = {
        "location": "test",
        "failing_test": "test_list_clinics_answers",
        "explanation": "nothing in the policy says the clinic list is empty",
    }
    build, _ = _build(
        {
            "module": [{"code": MODULE}],
            "tests": [{"code": wrong}],
            "triage-1": [triage],
            "fix-1": [{"edits": drop}],
        }
    )
    assert build.status == "passed"
    assert [
        (r.edited, r.decision, r.asserts_before, r.asserts_after) for r in build.repairs
    ] == [("tests", "kept", 4, 3)]
    assert build.assertion_drops == ("round 1: assertions 4 -> 3",)
    assert build.assertion_count == 3
